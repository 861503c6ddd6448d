"""Routing policy: pure decisions, no I/O.

Overflow: a caller still waiting in a queue `after_ms` after entering it is
moved to another queue (first-line -> common at 30 s).  The router asks
`due_us` when to look again and `decide` at that moment; the decision
re-checks the journey, so a caller answered or gone in between is left alone.

Entry and escalation: the dialplan asks (ivr/http/dialplan.py) and gets a
Route back; here only the decision, from the directory and the incidents.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Protocol
from urllib.parse import urlencode

from ivr.routing.directory import Subscriber
from ivr.routing.incidents import Incident
from ivr.calls.facts import Entered
from ivr.calls.judge import FIRST_LINE
from ivr.calls.tracker import Tracker

ENGINEERS = "engineers"


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


def move_by_hand(tracker: Tracker, uniqueid: str, to_queue: str) -> Move | str:
    """A supervisor moves a waiting caller; a string says why not."""
    j = tracker.journeys.get(uniqueid)
    v = j.visit if j is not None else None
    if j is None:
        return "unknown call"
    if v is None or not j.waiting:
        return "the caller is not waiting in a queue"
    if v.queue == to_queue:
        return f"the caller is already waiting in {to_queue}"
    return Move(uniqueid, j.channel, v.queue, to_queue, "withdrawn")


Rules = Mapping[str, OverflowRule]


def due_us(entered: Entered, rules: Rules) -> int | None:
    """When (Asterisk clock, µs) the caller should be looked at again."""
    rule = rules.get(entered.queue)
    return None if rule is None else entered.at_us + rule.after_ms * 1000


def decide(tracker: Tracker, uniqueid: str, visit: int, rules: Rules) -> Move | None:
    """Move the caller on if it is still waiting in the very same visit."""
    j = tracker.journeys.get(uniqueid)
    v = j.visit if j is not None else None
    if j is None or v is None or v.id != visit or not j.waiting:
        return None
    rule = rules.get(v.queue)
    if rule is None:
        return None
    return Move(uniqueid, j.channel, v.queue, rule.to_queue, "timeout")


# -- entry and escalation: asked by the dialplan over HTTP --------------------

@dataclass(frozen=True, slots=True)
class Route:
    """A routing answer for the dialplan: `route` names an [ivr-queues] extension.

    `announce` names a prompt (in the dialplan's IVR_PROMPTS) to play first.
    `route` "refused" (an escalation refused) is no extension: the dialplan
    plays the announcement and ends the call politely.
    """

    route: str
    account: str = ""
    area: str = ""
    announce: str = ""
    incident: str = ""
    ask_account: bool = False
    prio: int = 0               # Asterisk's QUEUE_PRIO (repeats.py); 0: none given
    callback: bool = False      # the caller may press 1 for a callback (callbacks/)

    def as_query(self) -> str:
        fields = {"route": self.route, "account": self.account, "area": self.area,
                  "announce": self.announce, "incident": self.incident,
                  "ask_account": "1" if self.ask_account else "",
                  # During a known incident an identified caller may claim the downtime (3).
                  "claim": "1" if self.incident and self.account and self.route not in (
                      "refused", "concurrent") else "",
                  "prio": str(self.prio) if self.prio else "",
                  "callback": "1" if self.callback else ""}
        return urlencode({k: v for k, v in fields.items() if v})

    @property
    def label(self) -> str:
        """For ivr_route_decisions_total{route}."""
        if self.ask_account:
            return "ask-account"
        if self.route == "concurrent":
            return "concurrent"
        return "incident" if self.incident and self.route != "refused" else self.route


class Lookup(Protocol):
    def by_number(self, number: str) -> Subscriber | None: ...
    def by_account(self, account: str) -> Subscriber | None: ...


class Known(Protocol):
    def covering(self, area: str | None) -> Incident | None: ...


def entry(caller: str, typed: str, asked: bool, directory: Lookup, incidents: Known,
          prompt: Callable[[Incident], str]) -> Route:
    """A new caller: identify by number, else by typed account, and announce a known incident."""
    sub = directory.by_account(typed) if typed else directory.by_number(caller)
    incident = incidents.covering(sub.area if sub else None)
    announce = prompt(incident) if incident else ""
    if sub is None:
        return Route(FIRST_LINE, announce=announce, incident=incident.id if incident else "",
                     ask_account=not asked and not typed)
    return Route(FIRST_LINE, sub.account, sub.area, announce, incident.id if incident else "")


def escalation(area: str | None, incidents: Known, prompt: Callable[[Incident], str]) -> Route:
    """An operator escalates: refused while a known incident covers the caller."""
    incident = incidents.covering(area)
    if incident is None:
        return Route(ENGINEERS)
    return Route("refused", announce=prompt(incident), incident=incident.id)
