"""Facts: what the tracker says happened to a call, and nothing else.

`Tracker.handle(event)` returns them; metrics, routing, the console and the
ledger consume them.  Frozen values, compared as they are in the tests.
"""

from __future__ import annotations

from dataclasses import dataclass

from ivr.calls import records as rec


@dataclass(frozen=True, slots=True)
class Entered:
    uniqueid: str
    channel: str
    queue: str
    at_us: int
    visit: int
    recovered: bool = False


@dataclass(frozen=True, slots=True)
class Exited:
    uniqueid: str
    queue: str
    outcome: str
    wait_ms: int
    visit: int
    within_sla: bool = False


@dataclass(frozen=True, slots=True)
class Overflowed:
    uniqueid: str
    from_queue: str
    to_queue: str


@dataclass(frozen=True, slots=True)
class JourneyAnswered:
    uniqueid: str
    queue: str
    member: str
    wait_ms: int          # from first entering any queue
    payable: bool


@dataclass(frozen=True, slots=True)
class JourneyEnded:
    uniqueid: str
    outcome: str          # answered, abandoned, unanswered, unknown
    record: rec.CallRecord   # the whole call, for the ledger


@dataclass(frozen=True, slots=True)
class Unobserved:
    """The caller left `queue` while ivr was not connected."""

    uniqueid: str
    queue: str
    visit: int


# QUEUESTATUS of a Queue() that never let the caller in, in lower case: the reasons.
NOT_ADMITTED_REASONS = ("full", "joinempty", "joinunavail")


@dataclass(frozen=True, slots=True)
class NotAdmitted:
    """Queue() refused the caller at the door (QUEUESTATUS FULL, JOINEMPTY or
    JOINUNAVAIL): no QueueCallerJoin, so no visit; `reason` in lower case."""

    uniqueid: str
    reason: str


Fact = Entered | Exited | Overflowed | JourneyAnswered | JourneyEnded | Unobserved | NotAdmitted
