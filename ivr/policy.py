"""Routing policy: pure decisions, no I/O.

For now one rule kind: a caller still waiting in a queue `after_ms` after
entering it is moved to another queue (first-line -> common at 30 s).  The
router asks `due_us` when to look again and `decide` at that moment; the
decision re-checks the journey, so a caller answered or gone in between is
left alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from ivr.journeys import Entered, Tracker, VisitState


@dataclass(frozen=True, slots=True)
class OverflowRule:
    from_queue: str
    to_queue: str
    after_ms: int


@dataclass(frozen=True, slots=True)
class Move:
    uniqueid: str
    channel: str
    from_queue: str
    to_queue: str
    reason: str           # "timeout" (the SLA move) or "withdrawn" (by hand)


Rules = Mapping[str, OverflowRule]


def due_us(entered: Entered, rules: Rules) -> int | None:
    """When (Asterisk clock, µs) the caller should be looked at again."""
    rule = rules.get(entered.queue)
    return None if rule is None else entered.at_us + rule.after_ms * 1000


def decide(tracker: Tracker, uniqueid: str, visit: int, rules: Rules) -> Move | None:
    """Move the caller on if it is still waiting in the very same visit."""
    j = tracker.journeys.get(uniqueid)
    v = j.visit if j is not None else None
    if j is None or v is None or v.id != visit or v.state is not VisitState.WAITING:
        return None
    rule = rules.get(v.queue)
    if rule is None:
        return None
    return Move(uniqueid, j.channel, v.queue, rule.to_queue, "timeout")
