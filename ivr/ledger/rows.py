"""The history tables' rows, typed: one frozen dataclass a table, its fields the table's
columns (schema.py), so a row is checked by mypy where it is made, not by the database
where it lands.

The services make them and hand them to the writer (`LedgerWriter.keep`); the spool
and the store take them as `History(table, row)`, their form on disk, which older
spool files share.  An incident is kept once (IncidentRow) and closed once
(IncidentClose), its only change.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar

from ivr.ledger.outbox import Message
from ivr.ledger.spool import History

INCIDENT_CLOSES = "incident_closes"   # a pseudo-table for Store.history: closes an incident


@dataclass(frozen=True, slots=True)
class Escalation:
    """An escalation decided, via the API or a transfer: accepted, refused, failed."""

    table: ClassVar[str] = "escalations"
    pbx: str
    uniqueid: str
    at_us: int
    via: str
    result: str
    incident: str


@dataclass(frozen=True, slots=True)
class RouteDecision:
    """The route the dialplan was given for a caller's entry."""

    table: ClassVar[str] = "route_decisions"
    pbx: str
    uniqueid: str
    at_us: int
    route: str
    account: str
    area: str
    incident: str


@dataclass(frozen=True, slots=True)
class RepeatCall:
    """A call judged a repeat (or concurrent) of an earlier one."""

    table: ClassVar[str] = "repeats"
    pbx: str
    uniqueid: str
    at_us: int
    kind: str
    repeat_of: str
    first_us: int


@dataclass(frozen=True, slots=True)
class OperatorAction:
    """A warning, an end for abuse, or a disposition, by a person."""

    table: ClassVar[str] = "operator_actions"
    pbx: str
    uniqueid: str
    at_us: int
    action: str
    value: str
    actor_role: str
    actor: str


@dataclass(frozen=True, slots=True)
class IncidentRow:
    """A known incident as kept: opened once; closed_us and closed_by once closed."""

    table: ClassVar[str] = "incidents"
    id: str
    area: str
    message: str
    opened_us: int
    expires_us: int
    opened_by: str
    closed_us: int | None = None
    closed_by: str | None = None

    @classmethod
    def of(cls, row: dict[str, Any]) -> IncidentRow:
        return cls(**{f.name: row[f.name] for f in fields(cls)})


@dataclass(frozen=True, slots=True)
class IncidentClose:
    """The closing of an incident kept before."""

    table: ClassVar[str] = INCIDENT_CLOSES
    id: str
    closed_us: int
    closed_by: str


@dataclass(frozen=True, slots=True)
class CallbackRow:
    """A request for a callback, kept once (ivr/callbacks/)."""

    table: ClassVar[str] = "callbacks"
    id: str
    pbx: str
    origin: str
    number: str
    account: str
    queue: str
    prio: int
    requested_us: int

    @classmethod
    def of(cls, row: dict[str, Any]) -> CallbackRow:
        return cls(**{f.name: row[f.name] for f in fields(cls)})


@dataclass(frozen=True, slots=True)
class CallbackEvent:
    """What became of a callback: placed, dialing, connected, retry, failed, cancelled."""

    table: ClassVar[str] = "callback_events"
    callback: str
    at_us: int
    event: str
    attempt: int
    uniqueid: str = ""
    reason: str = ""


# Message: a webhook's outbox row, kept with the incident it tells of (ledger/outbox.py).
HistoryRow = (Escalation | RouteDecision | RepeatCall | OperatorAction | IncidentRow | IncidentClose
              | CallbackRow | CallbackEvent | Message)


def history(row: HistoryRow) -> History:
    """The row as the spool and the store take it."""
    return History(row.table, asdict(row))
