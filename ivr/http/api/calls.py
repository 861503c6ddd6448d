"""The control API, /api/v1, behind bearer tokens that carry a role (ivr/config/tokens.py:
api.tokens_file, and api.token as admin).

With no token configured the control API is off (403 with a reason);
/metrics and the health checks stay open.  Each route names the roles that
may call it (ROLES here, and the service desk's in desk/api.py); another
role gets a 403 saying so.  Every error is JSON with an `error` message; a
request either happens whole or changes nothing.
"""

from __future__ import annotations

import functools
import json
import logging
from typing import Any, Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

from ivr.pbx import actions
from ivr.calls import access as calls_access
from ivr.routing import policy
from ivr.config import tokens as roles
from ivr.http import throttle
from ivr.app import App
from ivr.pbx.session import Pbx
from ivr.desk.service import DeskError
from ivr.calls.journeys import Journey
from ivr.routing.incidents import IncidentError
from ivr.calls.records import to_dict
from ivr.ledger.db import LedgerError
from ivr.ledger.store import Store
from ivr.reports import billing, downtime, service
from ivr.reports.billing import ReportError
from ivr.reports.bounded import in_thread, within

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ACTOR = web.RequestKey("actor", roles.Actor)     # who the request's token names

ALL = roles.EVERYONE
_INCIDENTS = frozenset({roles.ENGINEER, roles.OFFICE, roles.ADMIN})
_OPERATORS = frozenset({roles.OPERATOR, roles.SUPERVISOR, roles.ADMIN})
# How an operator closes an answered call.
DISPOSITIONS = ("resolved", "ticket", "escalated", "incident_informed", "complaint", "claim",
                "abuse_ended")
OPENAPI_PATH = "/api/v1/openapi.json"   # the API's description (openapi.py): no secret, no token


def error(status: int, message: str, headers: dict[str, str] | None = None,
          **extra: Any) -> web.Response:
    return web.json_response({"error": message, **extra}, status=status, headers=headers)


def routes(app: App) -> list[web.RouteDef]:
    h = _Handlers(app)
    table = [
        ("POST", "/api/v1/incidents", "open_incident", _INCIDENTS, h.open_incident),
        ("GET", "/api/v1/incidents", "incidents", ALL, h.list_incidents),
        ("DELETE", "/api/v1/incidents/{id}", "close_incident", _INCIDENTS, h.close_incident),
        ("GET", "/api/v1/queues", "queues", ALL, h.queues),
        ("GET", "/api/v1/calls", "calls", ALL, h.calls),
        ("GET", "/api/v1/calls/{uniqueid}", "call", ALL, h.call),
        ("GET", "/api/v1/reports/billing", "billing",
         frozenset({roles.SUPERVISOR, roles.OFFICE, roles.ADMIN}), h.billing),
        ("GET", "/api/v1/reports/downtime", "downtime",
         frozenset({roles.SUPERVISOR, roles.OFFICE, roles.ADMIN}), h.downtime),
        ("GET", "/api/v1/reports/fcr", "fcr",
         frozenset({roles.SUPERVISOR, roles.OFFICE, roles.ADMIN}), h.fcr),
        ("POST", "/api/v1/calls/{uniqueid}/escalate", "escalate",
         frozenset({roles.OPERATOR, roles.SUPERVISOR, roles.ADMIN}), h.escalate),
        ("POST", "/api/v1/calls/{uniqueid}/move", "move",
         frozenset({roles.SUPERVISOR, roles.ADMIN}), h.move),
        ("POST", "/api/v1/calls/{uniqueid}/warn", "warn", _OPERATORS, h.warn),
        ("POST", "/api/v1/calls/{uniqueid}/end", "end", _OPERATORS, h.end),
        ("POST", "/api/v1/calls/{uniqueid}/disposition", "disposition", _OPERATORS, h.disposition),
        ("POST", "/api/v1/calls/{uniqueid}/transfer", "transfer", _OPERATORS, h.transfer),
    ]
    return [web.route(method, path, allowed(name, who, handler))
            for method, path, name, who, handler in table]


def allowed(name: str, who: frozenset[str], handler: Handler) -> Handler:
    """`handler` for the roles `who` only; the service desk's errors as JSON."""
    async def checked(request: web.Request) -> web.StreamResponse:
        actor = request[ACTOR]
        if actor.role not in who:
            return error(403, f"{actor.role} {actor.name} may not do this ({name}); "
                              f"allowed: {', '.join(sorted(who))}")
        try:
            return await handler(request)
        except DeskError as exc:
            return error(exc.status, exc.message, **exc.extra)
    return checked


def auth_middleware(app: App,
                    session_actor: Callable[[web.Request], roles.Actor | None] = lambda r: None,
                    guard: throttle.Guard | None = None) -> Middleware:
    """A bearer token, or (the console's pages) a session cookie with its CSRF header.
    Wrong tokens are logged and throttled per source address (throttle.py)."""
    guard = guard or throttle.Guard(None)
    @web.middleware
    async def check_token(request: web.Request, handler: Handler) -> web.StreamResponse:
        described = request.method in ("GET", "HEAD") and request.path == OPENAPI_PATH
        if not request.path.startswith("/api/") or described:
            return await handler(request)
        if not len(app.tokens):
            return error(403, "the control API is off: no token configured (api.tokens_file, "
                              "api.token, IVR_API_TOKENS_FILE or IVR_API_TOKEN)")
        authorization = request.headers.get("Authorization", "")
        if authorization:
            source = throttle.source_of(request.remote)
            if wait := guard.retry_after(source):
                guard.refused(source, "api_token")
                return error(429, f"too many wrong tokens from {source}: try again in {wait} s",
                             code="throttled", headers={"Retry-After": str(wait)})
            actor = app.tokens.who(authorization)
            if actor is None:
                guard.failed(source, "api_token", f"{request.method} {request.path[:100]}")
        else:
            actor = session_actor(request)
        if actor is None:
            return error(401, "missing or wrong bearer token")
        request[ACTOR] = actor
        try:
            return await handler(request)
        except web.HTTPException as exc:      # aiohttp's own 404/405/413: JSON too
            if exc.status < 400:
                raise
            allow = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else {}
            return web.json_response({"error": exc.reason}, status=exc.status, headers=allow)
    return check_token


def _refused(request: web.Request, call: calls_access.Call,
             closing: bool = False) -> web.Response | None:
    """The call-action decision (calls_access): None, or its 403 before anything is done."""
    actor = request[ACTOR]
    refusal = calls_access.decide(actor, call, closing)
    if refusal is None:
        return None
    log.warning("call %s: %s %s refused (%s): %s", request.match_info.get("uniqueid", ""),
                actor.role, actor.name, request.path.rsplit("/", 1)[-1], refusal.message)
    return error(403, refusal.message, code=refusal.code)


async def _json(request: web.Request) -> dict[str, Any] | web.Response:
    try:
        # The bytes, not request.json(): a declared charset is not ours to trust.
        body = json.loads(await request.read())
    except (ValueError, RecursionError):   # JSONDecodeError, UnicodeDecodeError, too deep or long
        return error(400, "the body is not valid JSON")
    if not isinstance(body, dict):
        return error(400, "the body must be a JSON object")
    if (problem := not_unicode(body)) is not None:
        return error(400, problem)
    return body


def not_unicode(body: dict[str, Any]) -> str | None:
    """What in a JSON body is not Unicode text (a lone surrogate such as "\\ud800", which
    JSON lets through and UTF-8 cannot write), or None.  Refused here, before anything is
    kept: else the desk's registry or a log line would fail half-way with a 500."""
    def bad(value: Any) -> bool:
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return True
            return False
        if isinstance(value, dict):
            return any(bad(k) or bad(v) for k, v in value.items())
        return isinstance(value, list) and any(bad(v) for v in value)

    for key, value in body.items():
        if bad(key):
            return "a field's name is not Unicode text (a lone surrogate)"
        if bad(value):
            return f"{key}: not Unicode text (a lone surrogate)"
    return None


class _Handlers:
    def __init__(self, app: App) -> None:
        self.app = app

    async def open_incident(self, request: web.Request) -> web.Response:
        body = await _json(request)
        if isinstance(body, web.Response):
            return body
        unknown = set(body) - {"area", "message", "expires_in"}
        if unknown:
            return error(400, f"unknown field(s): {', '.join(sorted(unknown))}")
        try:
            incident = self.app.incidents.open(body.get("area"), body.get("message"), body.get("expires_in"))
        except IncidentError as exc:
            return error(400, str(exc))
        self.app.incident_opened(incident, by=request[ACTOR].name)
        await self.app.make_incident_prompt(incident)
        log.info("incident %s opened for area %s: %s", incident.id, incident.area, incident.message)
        return web.json_response(incident.to_json(self.app.clock()), status=201)

    async def list_incidents(self, request: web.Request) -> web.Response:
        now = self.app.clock()
        return web.json_response({"incidents": [i.to_json(now) for i in self.app.incidents.active()]})

    async def close_incident(self, request: web.Request) -> web.Response:
        incident = self.app.incidents.close(request.match_info["id"])
        if incident is None:
            return error(404, f"no active incident {request.match_info['id']!r}")
        self.app.forget_incident_prompt(incident)
        self.app.incident_closed(incident, by=request[ACTOR].name)
        log.info("incident %s closed", incident.id)
        return web.json_response({"closed": incident.id})

    async def queues(self, request: web.Request) -> web.Response:
        return web.json_response({"queues": self.app.queues_view()})

    async def _report(self, request: web.Request, what: str,
                      make: Callable[[billing.Period], Awaitable[Any]]) -> web.Response:
        """The JSON of `make(period)` for ?from=&to=&tz=: a 400 for a bad or too long period,
        a 503 past report.deadline_seconds.  Judging and rendering run off the event loop
        (reports/bounded.py): /healthz and the calls' events go on meanwhile."""
        q = request.query
        try:
            p = service.period(self.app.config, q.get("from"), q.get("to"), q.get("tz"))
            log.info("%s report %r .. %r (%s) for %s %s: started", what, q.get("from"), q.get("to"),
                     p.tz, request[ACTOR].role, request[ACTOR].name)
            text = await within(self.app.config.report.deadline_seconds, f"the {what} report",
                                self._rendered(make(p)))
        except ReportError as exc:
            return error(400, str(exc))
        except LedgerError as exc:            # ReportTimeout included
            return error(503, str(exc))
        return web.Response(text=text, content_type="application/json")

    @staticmethod
    async def _rendered(work: Awaitable[Any]) -> str:
        found = await work
        return await in_thread(json.dumps, found)

    async def calls(self, request: web.Request) -> web.Response:
        """A caller's history from the ledger: ?caller= or ?account=, from=, to=."""
        q = request.query

        async def found(p: billing.Period) -> dict[str, Any]:
            calls = await service.history(self.app.store, p, q.get("caller") or None,
                                          q.get("account") or None)
            return await in_thread(lambda: {"calls": [to_dict(c) for c in calls]})
        return await self._report(request, "calls", found)

    async def billing(self, request: web.Request) -> web.Response:
        """The contractor's statement: ?from=&to=&tz=[&calls=1]."""
        with_calls = request.query.get("calls") == "1"

        async def made(p: billing.Period) -> dict[str, Any]:
            statement = await service.statement(self.app.store, self.app.config, p, with_calls)
            return await in_thread(billing.to_json, statement, with_calls)
        return await self._report(request, "billing", made)

    async def downtime(self, request: web.Request) -> web.Response:
        """Every account's downtime of known incidents: ?from=&to=&tz= (for billing)."""
        accounts = self.app.directory.accounts()

        async def made(p: billing.Period) -> dict[str, Any]:
            found = await service.downtimes(self.app.store, accounts, p.from_us, p.to_us,
                                            round(self.app.clock() * 1e6),
                                            self.app.incidents.active())
            return downtime.to_json(accounts, found, p.from_us, p.to_us)
        return await self._report(request, "downtime", made)

    async def fcr(self, request: web.Request) -> web.Response:
        """First-contact resolution per queue and operator: ?from=&to=&tz=."""
        return await self._report(request, "fcr",
                                  lambda p: service.first_contact(self.app.store, p))

    async def call(self, request: web.Request) -> web.Response:
        view = self.app.call_view(request.match_info["uniqueid"], request.query.get("pbx"))
        return web.json_response(view) if view else error(404, "unknown call")

    def _find(self, request: web.Request) -> tuple[Pbx, Journey] | web.Response:
        """The call in progress of the path, on ?pbx= or the one PBX that has it."""
        found = self.app.find_call(request.match_info["uniqueid"], request.query.get("pbx"))
        if not found:
            return error(404, "unknown call")
        if len(found) > 1:
            return error(409, "this uniqueid is on several PBXs: add ?pbx=NAME",
                         pbx=[p.name for p, _ in found])
        return found[0]

    async def escalate(self, request: web.Request) -> web.Response:
        uid = request.match_info["uniqueid"]
        found = self._answered(request, " can be escalated")
        if isinstance(found, web.Response):
            return found
        pbx, journey = found
        route = policy.escalation(journey.area or None, self.app.incidents, self.app.prompt_for)
        self.app.metrics.decided(route, 0.0, pbx.name)
        if route.route != policy.ENGINEERS:
            self.app.escalated(uid, "api", "refused_incident", route.incident, pbx)
            return error(409, "refused: a known incident covers this caller", incident=route.incident,
                         code="incident")
        try:
            await actions.escalate(pbx.ami, journey.channel, uid)
        except Exception as exc:
            self.app.escalated(uid, "api", "failed", pbx=pbx)
            return error(502, f"the PBX did not move the call: {exc}")
        self.app.escalated(uid, "api", "accepted", pbx=pbx)
        self.app.operator_action(pbx, uid, "escalate", policy.ENGINEERS, request[ACTOR])
        return web.json_response({"result": "accepted", "queue": policy.ENGINEERS}, status=202)

    async def move(self, request: web.Request) -> web.Response:
        body = await _json(request)
        if isinstance(body, web.Response):
            return body
        queue = body.get("queue")
        if not isinstance(queue, str) or queue not in self.app.config.queue_names:
            known = ", ".join(self.app.config.queue_names)
            return error(400, f"unknown queue {queue!r} (known: {known})")
        found = self._find(request)
        if isinstance(found, web.Response):
            return found
        pbx, journey = found
        if (refused := _refused(request, calls_access.of_journey(pbx.name, journey))) is not None:
            return refused
        decision = policy.move_by_hand(pbx.tracker, request.match_info["uniqueid"], queue)
        if isinstance(decision, str):
            return error(404 if decision == "unknown call" else 409, decision)
        try:
            await actions.move(pbx.ami, decision)
        except Exception as exc:
            return error(502, f"the PBX did not move the call: {exc}")
        self.app.metrics.decided(policy.Route("move"), 0.0, pbx.name)
        self.app.operator_action(pbx, request.match_info["uniqueid"], "move", queue, request[ACTOR])
        return web.json_response({"result": "moved", "from": decision.from_queue, "to": queue},
                                 status=202)

    # -- the operator's actions on a call in progress (or, for a disposition, ended) --

    def _answered(self, request: web.Request, what: str = "") -> tuple[Pbx, Journey] | web.Response:
        """The route's call if an operator has it now, else a 409 (what: what only such
        a call may have done to it)."""
        found = self._find(request)
        if isinstance(found, web.Response):
            return found
        if not found[1].with_operator:
            return error(409, f"only a call in progress with an operator{what}", code="not_in_call")
        refused = _refused(request, calls_access.of_journey(found[0].name, found[1]))
        return refused if refused is not None else found

    async def warn(self, request: web.Request) -> web.Response:
        found = self._answered(request)
        if isinstance(found, web.Response):
            return found
        return await self._act(request, found, actions.warn, "warn", "abuse",
                               "play the warning", {"result": "warned"})

    async def _act(self, request: web.Request, found: tuple[Pbx, Journey],
                   act: Callable[[Any, str, str], Awaitable[None]], action: str, value: str,
                   what: str, answer: dict[str, str]) -> web.Response:
        """Do `act` on the caller's channel; kept and counted once the PBX did it, then
        `answer` (202)."""
        pbx, journey = found
        try:
            await act(pbx.ami, journey.channel, journey.uniqueid)
        except Exception as exc:
            return error(502, f"the PBX did not {what}: {exc}")
        self.app.operator_action(pbx, journey.uniqueid, action, value, request[ACTOR])
        return web.json_response(answer, status=202)

    async def end(self, request: web.Request) -> web.Response:
        body = await _json(request)
        if isinstance(body, web.Response):
            return body
        if body.get("reason") != "abuse" or set(body) - {"reason"}:
            return error(400, 'give {"reason": "abuse"}: ivr ends a call only for abuse')
        found = self._answered(request)
        if isinstance(found, web.Response):
            return found
        pbx, journey = found
        if (pbx.name, journey.uniqueid) not in self.app.warned:
            return error(409, "warn the caller first (POST .../warn): a call is ended for abuse "
                              "only after one warning", code="warn_first")
        return await self._act(request, found, actions.end_for_abuse, "end", "abuse",
                               "end the call", {"result": "ended"})

    async def transfer(self, request: web.Request) -> web.Response:
        """{"to": "supervisor"} (9001) or {"to": "read_back"} (9002), as the phone would."""
        body = await _json(request)
        if isinstance(body, web.Response):
            return body
        to = body.get("to")
        if not isinstance(to, str) or to not in actions.TRANSFERS or set(body) - {"to"}:
            return error(400, f"to: one of {', '.join(actions.TRANSFERS)}")
        found = self._answered(request)
        if isinstance(found, web.Response):
            return found
        return await self._act(request, found, functools.partial(actions.transfer, to=str(to)),
                               "transfer", str(to), "transfer the call",
                               {"result": "transferred", "to": actions.TRANSFERS[str(to)]})

    async def disposition(self, request: web.Request) -> web.Response:
        body = await _json(request)
        if isinstance(body, web.Response):
            return body
        code = body.get("code")
        if not isinstance(code, str) or code not in DISPOSITIONS or set(body) - {"code"}:
            return error(400, f"code: one of {', '.join(DISPOSITIONS)}")
        uid = request.match_info["uniqueid"]
        found = self._find(request)
        if isinstance(found, web.Response) and found.status != 404:
            return found                  # on several PBXs
        if not isinstance(found, web.Response):
            pbx_name, answered = found[0].name, found[1].answered
            call = calls_access.of_journey(pbx_name, found[1])
        else:                             # no longer in progress: the ledger's
            try:
                # A call that just ended may still be in the writer's batch.
                await self.app.ledger.flush()
                kept = await self.app.store.run(Store.call, uid)
            except LedgerError as exc:
                return error(503, str(exc))
            if not kept:
                return error(404, "unknown call")
            pbx_name, answered = kept[-1].pbx, kept[-1].answered_member != ""
            call = calls_access.of_record(kept[-1])
        if (refused := _refused(request, call, closing=True)) is not None:
            return refused
        if not answered:
            return error(409, "the call was never answered: there is nothing to close",
                         code="never_answered")
        self.app.operator_action(self.app.pbxs.get(pbx_name) or self.app.first, uid,
                                 "disposition", str(code), request[ACTOR])
        return web.json_response({"result": "recorded", "code": code}, status=201)
