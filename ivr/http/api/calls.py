"""/api/v1/queues and /api/v1/calls/{uniqueid}: what is going on, and the actions
on a call in progress (or, for a disposition, ended).

Thin: each handler reads its request, calls calls/service.py and answers;
the service's errors become their JSON answers in http/errors.py.
"""

from __future__ import annotations

from aiohttp import web

from ivr.calls import service, views
from ivr.calls.service import Calls
from ivr.config import tokens as roles
from ivr.http.api.auth import ACTOR, Route
from ivr.http.api.body import body_of
from ivr.http.errors import BadRequest, error
from ivr.config import Config

ALL = roles.EVERYONE
OPERATORS = frozenset({roles.OPERATOR, roles.SUPERVISOR, roles.ADMIN})
SUPERVISORS = frozenset({roles.SUPERVISOR, roles.ADMIN})


def routes(calls: Calls, config: Config) -> list[Route]:
    h = _Handlers(calls, config)
    return [
        ("GET", "/api/v1/queues", "queues", ALL, h.queues),
        ("GET", "/api/v1/calls/{uniqueid}", "call", ALL, h.call),
        ("POST", "/api/v1/calls/{uniqueid}/escalate", "escalate", OPERATORS, h.escalate),
        ("POST", "/api/v1/calls/{uniqueid}/move", "move", SUPERVISORS, h.move),
        ("POST", "/api/v1/calls/{uniqueid}/warn", "warn", OPERATORS, h.warn),
        ("POST", "/api/v1/calls/{uniqueid}/end", "end", OPERATORS, h.end),
        ("POST", "/api/v1/calls/{uniqueid}/disposition", "disposition", OPERATORS,
         h.disposition),
        ("POST", "/api/v1/calls/{uniqueid}/transfer", "transfer", OPERATORS, h.transfer),
    ]


def _call(request: web.Request) -> tuple[str, str | None]:
    """The path's uniqueid and the PBX named by ?pbx= (None: the one that has it)."""
    return request.match_info["uniqueid"], request.query.get("pbx")


class _Handlers:
    def __init__(self, calls: Calls, config: Config) -> None:
        self.calls, self.config = calls, config

    async def queues(self, request: web.Request) -> web.Response:
        return web.json_response({"queues": views.queues(self.config, self.calls.pbxs.values(),
                                                         self.calls.clock())})

    async def call(self, request: web.Request) -> web.Response:
        found = self.calls.find(*_call(request))
        return web.json_response(views.call(*found[0])) if found else error(404, "unknown call")

    async def escalate(self, request: web.Request) -> web.Response:
        queue = await self.calls.escalate(request[ACTOR], *_call(request))
        return web.json_response({"result": "accepted", "queue": queue}, status=202)

    async def move(self, request: web.Request) -> web.Response:
        queue = (await body_of(request)).get("queue")
        if not isinstance(queue, str):
            raise BadRequest(f"unknown queue {queue!r} (known: {', '.join(self.calls.queues)})")
        moved = await self.calls.move(request[ACTOR], request.match_info["uniqueid"], queue,
                                      request.query.get("pbx"))
        return web.json_response({"result": "moved", "from": moved.from_queue, "to": queue},
                                 status=202)

    async def warn(self, request: web.Request) -> web.Response:
        await self.calls.warn(request[ACTOR], *_call(request))
        return web.json_response({"result": "warned"}, status=202)

    async def end(self, request: web.Request) -> web.Response:
        body = await body_of(request)
        if body.get("reason") != "abuse" or set(body) - {"reason"}:
            raise BadRequest('give {"reason": "abuse"}: ivr ends a call only for abuse')
        await self.calls.end(request[ACTOR], *_call(request))
        return web.json_response({"result": "ended"}, status=202)

    async def transfer(self, request: web.Request) -> web.Response:
        """{"to": "supervisor"} (9001) or {"to": "read_back"} (9002), as the phone would."""
        body = await body_of(request)
        to = body.get("to")
        if not isinstance(to, str) or to not in service.TRANSFERS or set(body) - {"to"}:
            raise BadRequest(f"to: one of {', '.join(service.TRANSFERS)}")
        extension = await self.calls.transfer(request[ACTOR], request.match_info["uniqueid"], to,
                                              request.query.get("pbx"))
        return web.json_response({"result": "transferred", "to": extension}, status=202)

    async def disposition(self, request: web.Request) -> web.Response:
        body = await body_of(request)
        code = body.get("code")
        if not isinstance(code, str) or code not in service.DISPOSITIONS or set(body) - {"code"}:
            raise BadRequest(f"code: one of {', '.join(service.DISPOSITIONS)}")
        await self.calls.disposition(request[ACTOR], request.match_info["uniqueid"], code,
                                     request.query.get("pbx"))
        return web.json_response({"result": "recorded", "code": code}, status=201)
