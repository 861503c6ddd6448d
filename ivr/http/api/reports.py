"""/api/v1/reports/{billing,downtime,fcr} and /api/v1/calls (a caller's history):
read from the ledger for a period, ?from=&to=&tz=.

Judging and rendering run off the event loop (reports/bounded.py): /healthz and
the calls' events go on meanwhile.  A bad or too long period is a 400, the
ledger's failure or report.deadline_seconds passed a 503.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Awaitable, Callable

from aiohttp import web

from ivr.calls.records import to_dict
from ivr.config import Config
from ivr.config import tokens as roles
from ivr.desk import claims
from ivr.desk.service import Desk
from ivr.http.api.auth import ACTOR, Route
from ivr.http.errors import error
from ivr.ledger.offloop import OffLoop
from ivr.ledger.db import LedgerError
from ivr.reports import billing, service
from ivr.reports.billing import ReportError
from ivr.reports.bounded import in_thread, within
from ivr.routing.directory import Directory

log = logging.getLogger(__name__)
READERS = frozenset({roles.SUPERVISOR, roles.OFFICE, roles.ADMIN})


def routes(store: OffLoop, config: Config, directory: Directory, desk: Desk) -> list[Route]:
    h = _Handlers(store, config, directory, desk)
    return [("GET", "/api/v1/calls", "calls", roles.EVERYONE, h.calls),
            ("GET", "/api/v1/reports/billing", "billing", READERS, h.billing),
            ("GET", "/api/v1/reports/downtime", "downtime", READERS, h.downtime),
            ("GET", "/api/v1/reports/fcr", "fcr", READERS, h.fcr)]


class _Handlers:
    def __init__(self, store: OffLoop, config: Config, directory: Directory, desk: Desk) -> None:
        self.store, self.config, self.directory, self.desk = store, config, directory, desk

    async def _report(self, request: web.Request, what: str,
                      make: Callable[[billing.Period], Awaitable[Any]]) -> web.Response:
        """The JSON of `make(period)` for ?from=&to=&tz=."""
        q = request.query
        try:
            p = service.period(self.config, q.get("from"), q.get("to"), q.get("tz"))
            log.info("%s report %r .. %r (%s) for %s %s: started", what, q.get("from"), q.get("to"),
                     p.tz, request[ACTOR].role, request[ACTOR].name)
            text = await within(self.config.report.deadline_seconds, f"the {what} report",
                                _rendered(make(p)))
        except ReportError as exc:
            return error(400, str(exc))
        except LedgerError as exc:            # ReportTimeout included
            return error(503, str(exc))
        return web.Response(text=text, content_type="application/json")

    async def calls(self, request: web.Request) -> web.Response:
        """A caller's history from the ledger: ?caller= or ?account=, from=, to=."""
        q = request.query

        async def found(p: billing.Period) -> dict[str, Any]:
            calls = await service.history(self.store, p, q.get("caller") or None,
                                          q.get("account") or None)
            return await in_thread(lambda: {"calls": [to_dict(c) for c in calls]})
        return await self._report(request, "calls", found)

    async def billing(self, request: web.Request) -> web.Response:
        """The contractor's statement: ?from=&to=&tz=[&calls=1]."""
        with_calls = request.query.get("calls") == "1"

        async def made(p: billing.Period) -> dict[str, Any]:
            statement = await service.statement(self.store, self.config, p, with_calls)
            return await in_thread(billing.to_json, statement, with_calls)
        return await self._report(request, "billing", made)

    async def downtime(self, request: web.Request) -> web.Response:
        """Every account's downtime of known incidents, with the claims that cover it:
        ?from=&to=&tz= (for billing)."""
        accounts = self.directory.accounts()
        return await self._report(request, "downtime", lambda p: claims.downtime_report(
            self.desk, accounts, p.from_us, p.to_us))

    async def fcr(self, request: web.Request) -> web.Response:
        """First-contact resolution per queue and operator: ?from=&to=&tz=."""
        return await self._report(request, "fcr", lambda p: service.first_contact(self.store, p))


async def _rendered(work: Awaitable[Any]) -> str:
    found = await work
    return await in_thread(json.dumps, found)
