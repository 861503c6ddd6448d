"""The office's downloads: the statement of a period as CSV (the same statement as
the API's report and `ivr report`), for a signed-in office or admin."""

from __future__ import annotations

from functools import partial

from aiohttp import web

from ivr.app import Services
from ivr.console.sessions import PAGES, Sessions
from ivr.reports import billing, service


def routes(app: Services, sessions: Sessions) -> list[web.AbstractRouteDef]:
    return [web.get("/console/statement.csv", partial(statement_csv, app, sessions))]


async def statement_csv(app: Services, sessions: Sessions, request: web.Request) -> web.StreamResponse:
    found = sessions.find(request)
    if found is None or found.actor.role not in PAGES["office"]:
        return web.Response(status=403)
    q = request.query
    try:
        p = service.period(app.config, q.get("from"), q.get("to"), q.get("tz"))
        statement = await service.statement(app.store, app.config, p)
    except billing.ReportError as exc:
        return web.Response(status=400, text=str(exc))
    return web.Response(text=billing.to_csv(statement, False), content_type="text/csv",
                        headers={"Content-Disposition": 'attachment; filename="statement.csv"'})
