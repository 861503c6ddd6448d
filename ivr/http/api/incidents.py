"""/api/v1/incidents: known incidents, opened and closed by people (routing/service.py)."""

from __future__ import annotations

from typing import Callable

from aiohttp import web

from ivr.config import tokens as roles
from ivr.http.api.auth import ACTOR, Route
from ivr.http.api.body import body_of
from ivr.http.errors import BadRequest, error
from ivr.routing.incidents import IncidentError
from ivr.routing.service import Routing

WHO = frozenset({roles.ENGINEER, roles.OFFICE, roles.ADMIN})


def routes(routing: Routing, clock: Callable[[], float]) -> list[Route]:
    h = _Handlers(routing, clock)
    return [("POST", "/api/v1/incidents", "open_incident", WHO, h.open),
            ("GET", "/api/v1/incidents", "incidents", roles.EVERYONE, h.list),
            ("DELETE", "/api/v1/incidents/{id}", "close_incident", WHO, h.close)]


class _Handlers:
    def __init__(self, routing: Routing, clock: Callable[[], float]) -> None:
        self.routing, self.clock = routing, clock

    async def open(self, request: web.Request) -> web.Response:
        body = await body_of(request, {"area", "message", "expires_in"})
        try:
            incident = await self.routing.open_incident(body.get("area"), body.get("message"),
                                                        body.get("expires_in"),
                                                        by=request[ACTOR].name)
        except IncidentError as exc:
            raise BadRequest(str(exc)) from None
        return web.json_response(incident.to_json(self.clock()), status=201)

    async def list(self, request: web.Request) -> web.Response:
        now = self.clock()
        return web.json_response({"incidents": [i.to_json(now)
                                                for i in self.routing.incidents.active()]})

    async def close(self, request: web.Request) -> web.Response:
        incident = self.routing.close_incident(request.match_info["id"], by=request[ACTOR].name)
        if incident is None:
            return error(404, f"no active incident {request.match_info['id']!r}")
        return web.json_response({"closed": incident.id})
