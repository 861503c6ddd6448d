"""Who may act on a call: the one decision the API, the console and the dialplan share.

The route tables (http/api/calls.py) say which roles may take an action at all; this
module says on which calls.  The console's pages call the same API with a
session, so they meet the same decision; the dialplan acts as its PBX
(`Actor("pbx", NAME)`, named by the dialplan secret that matched).

- an operator: only the call they are talking to, that is the call whose last
  answered visit their member answered (the queue member's name is the name of
  the operator's token: `operator op1 TOKEN` answers as member op1); and a
  disposition for any call they answered;
- a supervisor: any call of the PBXs ivr follows (the contractor's center is
  all of them: ivr follows no PBX of another center);
- the office and the admin: any call;
- a PBX: only its own calls, so one PBX cannot speak for another;
- anyone else: none.

A refusal is a value, not an exception: the caller answers 403 with its
`code` before anything is done (no AMI action, no ledger row, no metric).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from ivr.config import tokens as roles
from ivr.calls.journeys import Journey
from ivr.calls.records import CallRecord, VisitRecord

PBX = "pbx"                     # the dialplan's actor role: Actor(PBX, pbx name)
NOT_YOURS = "not_yours"
ANY_CALL = frozenset({roles.SUPERVISOR, roles.OFFICE, roles.ADMIN})


@dataclass(frozen=True, slots=True)
class Call:
    """What the decision needs to know of a call."""

    pbx: str
    handler: str       # the member who answered its last answered visit, or ""
    answerers: frozenset[str] = frozenset()    # every member who answered a visit of it


@dataclass(frozen=True, slots=True)
class Refusal:
    message: str
    code: str = NOT_YOURS


def of_journey(pbx: str, journey: Journey) -> Call:
    return Call(pbx, last_answerer(journey.done), _answerers(journey.done))


def of_record(record: CallRecord) -> Call:
    return Call(record.pbx, last_answerer(record.visits) or record.answered_member,
                _answerers(record.visits) | {record.answered_member} - {""})


def _answerers(visits: Iterable[VisitRecord]) -> frozenset[str]:
    return frozenset(v.member for v in visits if v.outcome == "answered" and v.member)


def last_answerer(visits: Iterable[VisitRecord]) -> str:
    """Who took the call last: after a transfer to supervisors, the supervisor."""
    found = ""
    for v in visits:
        if v.outcome == "answered" and v.member:
            found = v.member
    return found


def decide(actor: roles.Actor, call: Call, closing: bool = False) -> Refusal | None:
    """None when `actor` may act on `call`, else why not.  `closing`: a disposition,
    which an operator gives for a call they answered even after handing it on (to a
    supervisor at 9001, say), not only the one they are talking to now."""
    if actor.role in ANY_CALL:
        return None
    if actor.role == PBX:
        if actor.name == call.pbx:
            return None
        return Refusal(f"pbx {actor.name} may not act on a call of pbx {call.pbx}")
    if actor.role == roles.OPERATOR:
        if (call.handler and call.handler == actor.name) or (closing and actor.name in call.answerers):
            return None
        # Not whose call it is: an operator learns nothing of another's calls.
        return Refusal(f"operator {actor.name} may act only on the call they are talking to")
    return Refusal(f"{actor.role} {actor.name} may not act on calls")
