"""The service desk over HTTP: /api/v1/tickets, /complaints, /claims, /registry
(its checkpoint and consistency proofs: registry.py).

Thin: each handler reads its input and asks the Desk (desk/service.py); a
DeskError becomes its JSON 4xx/5xx in one place (http/errors.py).  Who may call
what is ROLES, checked by `allowed` before any handler runs; the desk refuses a
state change by a role that may only add notes.  There is no DELETE and no
PUT: aiohttp answers 405 for them, with the methods that exist.
"""

from __future__ import annotations

import logging
from typing import Callable

from aiohttp import web

from ivr.config import tokens as roles
from ivr.http.api.auth import ACTOR, Route
from ivr.http.api.body import body_of
from ivr.http.errors import BadRequest
from ivr.http.api import registry as registry_api
from ivr.desk.service import TICKET, COMPLAINT, CLAIM, Desk, Item, may_read
from ivr.calls.records import CallRecord
from ivr.reports.billing import ReportError, instant

log = logging.getLogger(__name__)

ALL = roles.EVERYONE
ROLES: dict[str, frozenset[str]] = {
    "file_ticket": frozenset({roles.OPERATOR, roles.SUPERVISOR, roles.OFFICE, roles.ADMIN}),
    "tickets": ALL, "ticket": ALL, "ticket_event": ALL,
    "file_complaint": frozenset({roles.SUPERVISOR, roles.OFFICE, roles.ADMIN}),
    "complaints": frozenset({roles.SUPERVISOR, roles.OFFICE, roles.ADMIN}),
    "complaint": frozenset({roles.SUPERVISOR, roles.OFFICE, roles.ADMIN}), "complaint_event": frozenset({roles.SUPERVISOR, roles.OFFICE, roles.ADMIN}),
    "file_claim": frozenset({roles.OPERATOR, roles.SUPERVISOR, roles.OFFICE, roles.ADMIN}),
    "claim": ALL,
    "registry": frozenset({roles.OFFICE, roles.ADMIN}),
    # A checkpoint is a size and a hash: it hides nothing and proves what it says,
    # so the contractor's supervisor may hold ivr to it as well as the provider's
    # office, admin and engineers (their witness runs with one of these tokens);
    # operators have no use for it.
    "registry_checkpoint": frozenset({roles.OFFICE, roles.ADMIN, roles.SUPERVISOR,
                                      roles.ENGINEER}),
    "registry_consistency": frozenset({roles.OFFICE, roles.ADMIN, roles.SUPERVISOR,
                                       roles.ENGINEER}),
}


def routes(desk: Desk, live_call: Callable[[str], CallRecord | None]) -> list[Route]:
    h = _Handlers(desk, live_call)
    log_http = registry_api.Handlers(desk)
    table = [
        ("POST", "/api/v1/tickets", "file_ticket", h.file_ticket),
        ("GET", "/api/v1/tickets", "tickets", h.tickets),
        ("GET", "/api/v1/tickets/{number}", "ticket", h.ticket),
        ("POST", "/api/v1/tickets/{number}/events", "ticket_event", h.ticket_event),
        ("POST", "/api/v1/complaints", "file_complaint", h.file_complaint),
        ("GET", "/api/v1/complaints", "complaints", h.complaints),
        ("GET", "/api/v1/complaints/{number}", "complaint", h.complaint),
        ("POST", "/api/v1/complaints/{number}/events", "complaint_event", h.complaint_event),
        ("POST", "/api/v1/claims", "file_claim", h.file_claim),
        ("GET", "/api/v1/claims/{number}", "claim", h.claim),
        ("GET", "/api/v1/registry", "registry", h.registry),
        ("GET", "/api/v1/registry/checkpoint", "registry_checkpoint", log_http.checkpoint),
        ("GET", "/api/v1/registry/consistency", "registry_consistency", log_http.consistency),
    ]
    return [(method, path, name, ROLES[name], handler) for method, path, name, handler in table]


class _Handlers:
    def __init__(self, desk: Desk, live_call: Callable[[str], CallRecord | None]) -> None:
        self.desk, self.live_call = desk, live_call

    def _json(self, item: Item, status: int = 200) -> web.Response:
        return web.json_response(item.to_json(self.desk.now_us()), status=status)

    async def _call(self, uniqueid: object) -> CallRecord:
        """A call in progress (as it is now), else the ledger's."""
        if isinstance(uniqueid, str) and (live := self.live_call(uniqueid)) is not None:
            return live
        return await self.desk.ledger_call(uniqueid)

    async def file_ticket(self, request: web.Request) -> web.Response:
        b = await body_of(request, {"account", "call", "problem", "insisted"})
        call = await self._call(b["call"]) if b.get("call") is not None else None
        item = await self.desk.file_ticket(request[ACTOR], b.get("account"), call,
                                           b.get("problem"), b.get("insisted", False))
        log.info("ticket %s filed by %s for account %s", item.number, request[ACTOR].name,
                 item.data["account"])
        return self._json(item, 201)

    async def tickets(self, request: web.Request) -> web.Response:
        found = [i for i in self.desk.tickets(request.query.get("state"))
                 if may_read(request[ACTOR], i)]      # an operator: the ones they filed
        now = self.desk.now_us()
        return web.json_response({"tickets": [i.to_json(now) for i in found]})

    async def ticket(self, request: web.Request) -> web.Response:
        return self._json(self.desk.readable(request[ACTOR], request.match_info["number"], TICKET))

    async def ticket_event(self, request: web.Request) -> web.Response:
        return await self._event(request, TICKET)

    async def complaint_event(self, request: web.Request) -> web.Response:
        return await self._event(request, COMPLAINT)

    async def _event(self, request: web.Request, kind: str) -> web.Response:
        b = await body_of(request, {"state", "note"})
        return self._json(await self.desk.change(request[ACTOR], request.match_info["number"],
                                                 b.get("state"), b.get("note"), kind))

    async def file_complaint(self, request: web.Request) -> web.Response:
        b = await body_of(request, {"call", "operator", "at", "text"})
        call = await self._call(b["call"]) if b.get("call") is not None else None
        at_us = _instant(b["at"], "at") if b.get("at") is not None else None
        item = await self.desk.file_complaint(request[ACTOR], call, b.get("operator"), at_us,
                                              b.get("text"))
        log.info("complaint %s filed by %s against %s (call %s)", item.number,
                 request[ACTOR].name, item.data["operator"], item.data["call"])
        return self._json(item, 201)

    async def complaints(self, request: web.Request) -> web.Response:
        now = self.desk.now_us()
        found = [i for i in self.desk.items.values() if i.kind == COMPLAINT
                 and request.query.get("state") in (None, i.state) and may_read(request[ACTOR], i)]
        return web.json_response({"complaints": [i.to_json(now) for i in found]})

    async def complaint(self, request: web.Request) -> web.Response:
        return self._json(self.desk.readable(request[ACTOR], request.match_info["number"], COMPLAINT))

    async def file_claim(self, request: web.Request) -> web.Response:
        b = await body_of(request, {"account", "from", "to"})
        item = await self.desk.file_claim(request[ACTOR], b.get("account"),
                                          _instant(b.get("from"), "from"), _instant(b.get("to"), "to"))
        log.info("claim %s filed by %s for account %s: %.0f s of downtime", item.number,
                 request[ACTOR].name, item.data["account"], item.data["downtime_seconds"])
        return self._json(item, 201)

    async def claim(self, request: web.Request) -> web.Response:
        return self._json(self.desk.find(request.match_info["number"], CLAIM))

    async def registry(self, request: web.Request) -> web.Response:
        """Entries made in [from, to) (all without them), and the chain's check."""
        q = request.query
        from_us = _instant(q["from"], "from") if q.get("from") else None
        to_us = _instant(q["to"], "to") if q.get("to") else None
        verdict = await self.desk.verify()
        entries = await self.desk.entries(from_us, to_us)
        return web.json_response({"entries": [e.to_json() for e in entries],
                                  "head": {"seq": verdict.head[0], "hash": verdict.head[1]},
                                  "intact": verdict.intact, "problem": verdict.problem})


# An instant of the desk lies in [1970, 10000): epoch seconds past it (1e308, 2**63)
# would overflow the ledger's 64-bit microseconds, and NaN or Infinity has no time.
LAST_SECOND = 253_402_300_799           # 9999-12-31T23:59:59Z


def _instant(value: object, name: str) -> int:
    """`value` (ISO 8601 text, or epoch seconds) in µs since the epoch, or BadRequest."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not 0 <= value <= LAST_SECOND:      # False for NaN too
            raise BadRequest(f"{name}: epoch seconds from 0 to {LAST_SECOND}, got {value!r}")
        return int(value * 1e6)
    if not isinstance(value, str):
        raise BadRequest(f"{name}: expected an ISO 8601 time or epoch seconds")
    try:
        found = instant(value, "UTC", name)
    except ReportError as exc:
        raise BadRequest(str(exc)) from None
    if not 0 <= found <= LAST_SECOND * 1_000_000:
        raise BadRequest(f"{name}: {value!r} is not between 1970 and 9999")
    return found
