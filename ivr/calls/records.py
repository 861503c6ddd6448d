"""The ledger's record of one call: what the bill is built from.

The tracker emits one CallRecord when a journey ends (JourneyEnded.record);
the queue_log backfill builds them from Asterisk's own account for calls
ivr missed.  Times are integer microseconds since the epoch on Asterisk's
clock; waits are whole milliseconds (floored), as the tracker judges them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping

# The PBX's configured name while ivr follows one PBX.
DEFAULT_PBX = "default"
# The queue whose answers are paid: the statement judges a call by its first visit here.
FIRST_LINE = "first-line"
# Where a record came from, and how precise its times are.
LIVE, RESYNC, QUEUE_LOG = "live", "resync", "queue_log"
SOURCES = (LIVE, RESYNC, QUEUE_LOG)
MS, SECONDS = "ms", "s"
# A visit that ended while ivr was not connected: nobody saw why it ended.
UNOBSERVED = "unobserved"


@dataclass(frozen=True, slots=True)
class VisitRecord:
    """One stay in one queue.  `seq` counts the call's visits from 1 (the ledger key)."""

    seq: int
    queue: str
    entered_us: int
    left_us: int | None          # None when the exit was unobserved
    outcome: str                 # judge.OUTCOMES, or UNOBSERVED
    wait_ms: int | None          # None when the exit was unobserved
    member: str = ""             # who answered, for an answered visit


@dataclass(frozen=True, slots=True)
class CallRecord:
    pbx: str
    uniqueid: str
    linkedid: str
    caller: str
    account: str
    area: str
    entered_us: int              # first entry into any queue
    ended_us: int
    visits: tuple[VisitRecord, ...]
    outcome: str                 # the journey's: answered, abandoned, unanswered, unknown
    payable: bool
    source: str                  # LIVE, RESYNC or QUEUE_LOG
    precision: str               # MS, or SECONDS for recovered and backfilled calls
    answered_us: int | None = None   # the first answer
    answered_queue: str = ""
    answered_member: str = ""

    def first_visit(self, queue: str) -> VisitRecord | None:
        """The call's first visit to `queue` (the one a first-line bill judges)."""
        return next((v for v in self.visits if v.queue == queue), None)


def statement_line(pbx: str, uniqueid: str, entered_us: int, wait_ms: int | None, outcome: str,
                   operator: str, payable: bool, source: str) -> str:
    """A call's canonical line in the contractor's statement, the one definition:
    `pbx|uniqueid|entered_us|wait_ms|outcome|operator|payable|source` and a newline, wait_ms
    empty when unknown, payable 1 or 0.  The statement's digest is SHA-256 over these
    lines in (entered_us, pbx, uniqueid) order; the ledger keeps each call's line."""
    wait = "" if wait_ms is None else wait_ms
    return f"{pbx}|{uniqueid}|{entered_us}|{wait}|{outcome}|{operator}|{'1' if payable else '0'}|{source}\n"


@dataclass(frozen=True, slots=True)
class BillingCall:
    """One call as the contractor's statement sees it: its first visit to first-line."""

    pbx: str
    uniqueid: str
    entered_us: int              # when it first entered first-line
    wait_ms: int | None          # that visit's wait; None when its exit was unobserved
    outcome: str                 # that visit's outcome
    operator: str                # the member who answered that visit, else ""
    payable: bool                # answered in first-line within the threshold of first entering it
    source: str


def to_dict(r: CallRecord) -> dict[str, Any]:
    """A record as plain JSON values (the spool's line format)."""
    return asdict(r)


def from_dict(d: Mapping[str, Any]) -> CallRecord:
    """The inverse of to_dict; raises KeyError/TypeError on a line that is not one."""
    visits = tuple(VisitRecord(**v) for v in d["visits"])
    return CallRecord(**{**d, "visits": visits})
