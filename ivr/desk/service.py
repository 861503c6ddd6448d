"""The service desk: tickets, complaints and downtime claims, kept in the registry.

The registry (registry.py) is the record: every filing and every change is
an entry, appended to the ledger's database before the caller hears a number
or an HTTP client gets its 201, so a SIGKILL loses nothing that was
answered; the webhooks' messages about an entry (desk/events.py) are
written in its transaction.  What the desk serves (a ticket's state, the
open ones, the overdue) is folded from those entries in memory, at start
from the whole chain and then entry by entry.

The rules:
- a ticket is refused only when a known incident covers the caller's area;
  the refusal is an entry too.  States: open -> in_progress -> resolved ->
  closed (resolved may go back to in_progress).  Engineers and admins move
  tickets; anybody who may read one may add a note.
- a complaint names the operator who answered and when, taken from the
  ledger.  States: received -> forwarded -> answered, moved by the office.
- a claim is the downtime of the caller's area over a period (reports/downtime.py).
- the contractor's roles file and comment; nobody alters or deletes.

Every method raises a DeskError (BadInput, NotAllowed, NotFound, Conflict or
Unavailable, with a one-line message) for what it refuses, and writes nothing then.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

from ivr.config import tokens as roles
from ivr.config import DeskConfig
from ivr.desk import numbers, registry
from ivr.routing.directory import Directory
from ivr.routing.incidents import Incidents
from ivr.calls.records import CallRecord
from ivr.ledger.db import LedgerError
from ivr.ledger.store import Ledger, Store
from ivr.reports import downtime, service

log = logging.getLogger(__name__)

TICKET, COMPLAINT, CLAIM = "ticket", "complaint", "claim"
CALLER = "caller"        # the registry's actor_role for what a caller does by phone
TICKET_MOVES = {"open": ("in_progress", "resolved"), "in_progress": ("resolved",),
                "resolved": ("closed", "in_progress"), "closed": ()}
COMPLAINT_MOVES = {"received": ("forwarded",), "forwarded": ("answered",), "answered": ()}
OPEN_TICKET = ("open", "in_progress")
MAX_TEXT = 2000
NEAR_US = 15 * 60 * 1_000_000       # a complaint's call given by time: within 15 minutes
HOUR_US, DAY_US = 3600 * 1_000_000, 86400 * 1_000_000


# Who reads what the desk keeps, body and events: a complaint names an operator and
# a caller's account, so not operators or engineers; a ticket, the roles that work
# it.  An operator reads (and notes) the tickets they filed only: what they need to
# tell a caller, and nothing of other operators' callers.  http/api/desk.py's ROLES say
# who may call a route at all; this says which items.
READERS = {TICKET: frozenset({roles.ENGINEER, roles.SUPERVISOR, roles.OFFICE, roles.ADMIN}),
           COMPLAINT: frozenset({roles.SUPERVISOR, roles.OFFICE, roles.ADMIN}),
           CLAIM: roles.EVERYONE}


def may_read(actor: roles.Actor, item: Item) -> bool:
    return actor.role in READERS[item.kind] or (item.kind == TICKET and item.filed_by == actor)


class DeskError(Exception):
    """Refused or failed, and nothing written; `extra` is what else the answer says
    (a `code`, the incident).  What a client is told for each kind (an HTTP status, a
    word for the dialplan) is http/errors.py's."""
    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.message, self.extra = message, extra


class BadInput(DeskError):
    """The request's own fault: a bad value, a missing field."""


class NotAllowed(DeskError):
    """Not for this actor (an item they may not read, a state they may not set)."""


class NotFound(DeskError):
    """No such item, account or call."""


class Conflict(DeskError):
    """Not now, or not for this item (an incident covers it, a state out of order)."""


class Unavailable(DeskError):
    """The registry or the ledger does not answer (or is not read yet)."""


@dataclass
class Item:
    """A ticket, complaint or claim as its entries have it so far."""
    kind: str
    number: str
    state: str
    filed_us: int
    data: dict[str, Any]
    filed_by: roles.Actor
    due_us: int | None = None
    closed_us: int | None = None
    events: list[dict[str, Any]] = field(default_factory=list)

    def overdue(self, now_us: int) -> bool:
        done = self.state in ("resolved", "closed", "answered") or self.kind == CLAIM
        return not done and self.due_us is not None and now_us > self.due_us

    def to_json(self, now_us: int) -> dict[str, Any]:
        return {"number": self.number, "kind": self.kind, "state": self.state, **self.data,
                "filed_at": iso(self.filed_us), "filed_by": self.filed_by.to_json(),
                "due": iso(self.due_us) if self.due_us is not None else None,
                "overdue": self.overdue(now_us), "events": self.events}


def iso(us: int) -> str:
    return datetime.fromtimestamp(us / 1e6, timezone.utc).isoformat(timespec="seconds") \
        .replace("+00:00", "Z")


class Desk:
    def __init__(self, store: Ledger, directory: Directory, incidents: Incidents,
                 config: DeskConfig = DeskConfig(), clock: Callable[[], float] = time.time,
                 events: Callable[[registry.Entry], list[dict[str, Any]]] | None = None) -> None:
        self.store, self.directory, self.incidents = store, directory, incidents
        self.config, self.clock = config, clock
        self.events = events      # an entry's webhook messages (desk/events.py), kept with it
        self.items: dict[str, Item] = {}
        self.head: tuple[int, str] = (0, registry.GENESIS)
        self.filed: dict[str, int] = {TICKET: 0, COMPLAINT: 0, CLAIM: 0}
        self.refused = 0
        self.listeners: list[Callable[[registry.Entry, Item | None], None]] = []
        self.loaded = False
        self._lock = asyncio.Lock()

    def now_us(self) -> int:
        return int(self.clock() * 1e6)

    # -- the chain ------------------------------------------------------------

    async def load(self) -> None:
        """Fold the whole registry (at start).  A broken chain is logged, not fatal:
        `ivr registry verify` names the entry; new entries follow the head."""
        rows, head = await self.store.run(Store.registry)
        entries = [registry.of_row(r) for r in rows]
        verdict = registry.verify(entries, head)
        if not verdict.intact:
            log.error("the registry is not intact: %s (ivr registry verify)", verdict.problem)
        self.items, self.filed, self.refused = {}, {k: 0 for k in self.filed}, 0
        for e in entries:
            self._fold(e)
        if head is not None:
            self.head = head
        elif entries:
            self.head = (entries[-1].seq, entries[-1].hash)
        self.loaded = True
        log.info("service desk: %d entries, %d tickets, %d complaints, %d claims",
                 len(entries), self.filed[TICKET], self.filed[COMPLAINT], self.filed[CLAIM])

    async def _append(self, kind: str, number: str, event: str, actor: roles.Actor,
                      data: dict[str, Any], at_us: int | None = None) -> registry.Entry:
        if not self.loaded:
            raise Unavailable("the service desk has not read its registry yet")
        entry = registry.make(self.head, at_us if at_us is not None else self.now_us(), kind,
                              number, event, actor.role, actor.name, data)
        try:
            await self.store.run(Store.registry_append, entry.row(),
                                 self.events(entry) if self.events else [])
        except LedgerError as exc:
            raise Unavailable(f"the registry could not be written: {exc}") from None
        self.head = (entry.seq, entry.hash)
        item = self._fold(entry)
        for listener in self.listeners:
            try:
                listener(entry, item)
            except Exception:
                log.exception("desk listener failed on entry %d", entry.seq)
        return entry

    def _fold(self, e: registry.Entry) -> Item | None:
        data, actor = e.data, roles.Actor(e.actor_role, e.actor)
        if e.event == "refused":
            self.refused += 1
            return None
        if e.event == "filed":
            self.filed[e.kind] = self.filed.get(e.kind, 0) + 1
            first = {TICKET: "open", COMPLAINT: "received", CLAIM: "filed"}[e.kind]
            due = data.pop("due_us", None)
            new = self.items[e.number] = Item(e.kind, e.number, first, e.at_us, data, actor, due)
            return new
        item = self.items.get(e.number)
        if item is None:
            return None
        change = {"at": iso(e.at_us), "by": actor.to_json(), "note": data.get("note", "")}
        if e.event == "state":
            item.state = str(data["state"])
            change["state"] = item.state
            if item.state in ("resolved", "answered") and item.closed_us is None:
                item.closed_us = e.at_us
            elif item.state == "in_progress":
                item.closed_us = None
        item.events.append(change)
        return item

    async def verify(self) -> registry.Verdict:
        try:
            rows, head = await self.store.run(Store.registry)
        except LedgerError as exc:
            raise Unavailable(str(exc)) from None
        return registry.verify((registry.of_row(r) for r in rows), head)

    async def entries(self, from_us: int | None = None, to_us: int | None = None
                      ) -> list[registry.Entry]:
        try:
            rows, _ = await self.store.run(Store.registry, from_us, to_us)
        except LedgerError as exc:
            raise Unavailable(str(exc)) from None
        return [registry.of_row(r) for r in rows]

    # -- tickets --------------------------------------------------------------

    async def file_ticket(self, actor: roles.Actor, account: str | None, call: CallRecord | None,
                          problem: object, insisted: object) -> Item:
        text = _text(problem, "problem")
        if not isinstance(insisted, bool):
            raise BadInput("insisted: expected true or false")
        account, area, uniqueid = self._whose(account, call)
        async with self._lock:
            incident = self.incidents.covering(area)
            if incident is not None:
                await self._append(TICKET, "", "refused", actor, {
                    "account": account, "area": area, "call": uniqueid, "problem": text,
                    "insisted": insisted, "incident": incident.id})
                raise Conflict(f"a known incident covers area {area}: the engineers are "
                               f"on it already", incident=incident.id, code="incident")
            now = self.now_us()
            number = numbers.issue(TICKET, self.filed[TICKET] + 1)
            due = now + round(self.config.ticket_due_hours * HOUR_US)
            await self._append(TICKET, number, "filed", actor, {
                "account": account, "area": area, "call": uniqueid, "problem": text,
                "insisted": insisted, "due_us": due}, at_us=now)
        return self.items[number]

    def _whose(self, account: str | None, call: CallRecord | None) -> tuple[str, str, str | None]:
        if call is not None and call.account:
            return call.account, call.area, call.uniqueid
        if not isinstance(account, str) or not account:
            if call is None:
                raise BadInput("give an account or a call")
            raise Conflict(f"call {call.uniqueid} has no account (the caller was not "
                           f"identified): give the account too")
        subscriber = self.directory.by_account(account)
        if subscriber is None:
            raise NotFound(f"unknown account {account!r}")
        return subscriber.account, subscriber.area, call.uniqueid if call is not None else None

    async def change(self, actor: roles.Actor, number: object, state: object,
                     note: object, kind: str | None = None) -> Item:
        """A state change or a note on a ticket or complaint (of that kind, if given)."""
        item = self.readable(actor, number, kind)
        if item.kind == CLAIM:
            raise Conflict(f"claim {item.number} has no states")
        text = "" if note is None else _text(note, "note", required=False)
        if state is None:
            if not text:
                raise BadInput("give a state, a note, or both")
            async with self._lock:
                await self._append(item.kind, item.number, "note", actor, {"note": text})
            return item
        moves = TICKET_MOVES if item.kind == TICKET else COMPLAINT_MOVES
        if not isinstance(state, str) or state not in moves:
            raise BadInput(f"state: one of {', '.join(moves)}")
        movers = (roles.ENGINEER, roles.ADMIN) if item.kind == TICKET else (roles.OFFICE, roles.ADMIN)
        if actor.role not in movers:
            raise NotAllowed(f"a {actor.role} may add a note to {item.kind} {item.number}, "
                             f"not change its state")
        async with self._lock:
            if state not in moves[item.state]:
                allowed = ", ".join(moves[item.state]) or "none"
                raise Conflict(f"{item.kind} {item.number} is {item.state}: it cannot go "
                               f"to {state} (next: {allowed})", code="state_order")
            await self._append(item.kind, item.number, "state", actor, {"state": state, "note": text})
        return item

    def find(self, number: object, kind: str | None = None) -> Item:
        try:
            found_kind, digits = numbers.parse(str(number))
        except numbers.NumberError as exc:
            raise BadInput(str(exc), code="bad_number") from None
        if kind is not None and found_kind != kind:
            raise NotFound(f"{digits} is a {found_kind} number, not a {kind} number")
        item = self.items.get(digits)
        if item is None:
            raise NotFound(f"no {found_kind} {digits}", code="no_number")
        return item

    def readable(self, actor: roles.Actor, number: object, kind: str | None = None) -> Item:
        """find(), for someone who may read the item (may_read), else a 403."""
        item = self.find(number, kind)
        if not may_read(actor, item):
            raise NotAllowed(f"{actor.role} {actor.name} may not read {item.kind} {item.number}",
                            code="not_yours")
        return item

    def tickets(self, state: str | None = None) -> list[Item]:
        if state is not None and state not in TICKET_MOVES:
            raise BadInput(f"state: one of {', '.join(TICKET_MOVES)}")
        return [i for i in self.items.values() if i.kind == TICKET
                and (state is None or i.state == state)]

    # -- complaints -----------------------------------------------------------

    async def file_complaint(self, actor: roles.Actor, call: CallRecord | None,
                             operator: object, at_us: int | None, text: object) -> Item:
        body = _text(text, "text")
        if call is None:
            if not isinstance(operator, str) or not operator or at_us is None:
                raise BadInput("give the call, or the operator and the time (at)")
            near = await self._calls_answered(operator, at_us)
            if not near:
                raise NotFound(f"the ledger has no call answered by {operator} within "
                               f"15 minutes of {iso(at_us)}")
            call = min(near, key=lambda c: abs((c.answered_us or 0) - at_us))
        if not call.answered_member or call.answered_us is None:
            raise Conflict(f"call {call.uniqueid} was never answered: there is no "
                           f"operator to complain about", code="never_answered")
        async with self._lock:
            now = self.now_us()
            number = numbers.issue(COMPLAINT, self.filed[COMPLAINT] + 1)
            due = now + round(self.config.complaint_deadline_days * DAY_US)
            await self._append(COMPLAINT, number, "filed", actor, {
                "call": call.uniqueid, "pbx": call.pbx, "operator": call.answered_member,
                "queue": call.answered_queue, "call_at": iso(call.answered_us),
                "caller": call.caller, "account": call.account, "text": body, "due_us": due},
                at_us=now)
        return self.items[number]

    async def _calls_answered(self, member: str, at_us: int) -> list[CallRecord]:
        try:
            return await self.store.run(Store.answered_by, member, at_us - NEAR_US, at_us + NEAR_US)
        except LedgerError as exc:
            raise Unavailable(str(exc)) from None

    async def ledger_call(self, uniqueid: object) -> CallRecord:
        if not isinstance(uniqueid, str) or not uniqueid:
            raise BadInput("call: expected the call's uniqueid")
        try:
            found = await self.store.run(Store.call, uniqueid)
        except LedgerError as exc:
            raise Unavailable(str(exc)) from None
        if not found:
            raise NotFound(f"the ledger has no call {uniqueid} (a call is there once it ended)")
        return found[-1]

    # -- claims ---------------------------------------------------------------

    async def downtime(self, area: str, from_us: int, to_us: int) -> downtime.Downtime:
        """The area's downtime in [from_us, to_us), as the downtime report counts it."""
        try:
            found = await service.downtimes(self.store, {area: area}, from_us, to_us,
                                            self.now_us(), self.incidents.active())
        except LedgerError as exc:
            raise Unavailable(str(exc)) from None
        return found[area]

    async def claim_by_phone(self, uniqueid: str, caller: str, account: str) -> Item:
        """The caller pressed 3 during a known incident's announcement (before any queue):
        a claim for the incident's whole span, from its start to its expiry (the downtime
        so far is counted now), filed by the caller.  `account` is the one ivr gave the
        dialplan at entry."""
        subscriber = self.directory.by_account(account) if account else None
        if subscriber is None:
            raise Conflict(f"call {uniqueid}: the caller was not identified")
        incident = self.incidents.covering(subscriber.area)
        if incident is None:
            raise Conflict(f"no known incident covers area {subscriber.area!r} now")
        return await self.file_claim(roles.Actor(CALLER, caller or "unknown"), subscriber.account,
                                     int(incident.started_at * 1e6),
                                     int(incident.expires_at * 1e6), call=uniqueid)

    def numbers_for_call(self, uniqueid: str) -> list[str]:
        """What was filed during a call (tickets, complaints, claims), in filing order."""
        return [i.number for i in sorted(self.items.values(), key=lambda i: i.filed_us)
                if i.data.get("call") == uniqueid]

    async def file_claim(self, actor: roles.Actor, account: object, from_us: int,
                         to_us: int, call: str | None = None) -> Item:
        if not isinstance(account, str) or not account:
            raise BadInput("account: expected the caller's account")
        subscriber = self.directory.by_account(account)
        if subscriber is None:
            raise NotFound(f"unknown account {account!r}")
        if from_us >= to_us:
            raise BadInput("from must be before to")
        if from_us > self.now_us():
            raise BadInput("from is in the future")
        found = await self.downtime(subscriber.area, from_us, to_us)
        async with self._lock:
            number = numbers.issue(CLAIM, self.filed[CLAIM] + 1)
            await self._append(CLAIM, number, "filed", actor, {
                "account": subscriber.account, "area": subscriber.area, "call": call,
                "from": iso(from_us), "to": iso(to_us), **found.to_json()})
        return self.items[number]

    def calls_in_hand(self) -> frozenset[str]:
        """The uniqueids that a ticket not closed or a complaint not answered names: what
        `ivr ledger purge` keeps in the ledger whatever their age."""
        return frozenset(str(i.data["call"]) for i in self.items.values()
                         if i.data.get("call") and i.state not in ("closed", "answered")
                         and i.kind in (TICKET, COMPLAINT))

    # -- what the metrics read --------------------------------------------------

    def open_and_overdue(self, kind: str) -> tuple[int, int]:
        now = self.now_us()
        live = [i for i in self.items.values() if i.kind == kind
                and i.state in (OPEN_TICKET if kind == TICKET else ("received", "forwarded"))]
        return len(live), sum(1 for i in live if i.overdue(now))


def _text(value: object, name: str, required: bool = True) -> str:
    if not isinstance(value, str):
        raise BadInput(f"{name}: expected text")
    text = value.strip()
    if required and not text:
        raise BadInput(f"{name}: must not be empty")
    if len(text) > MAX_TEXT:
        raise BadInput(f"{name}: at most {MAX_TEXT} characters")
    return text
