"""Who calls /api/v1: bearer tokens that carry a role (ivr/config/tokens.py:
api.tokens_file, and api.token as admin), or the console's session.

With no token configured the control API is off (403 with a reason);
/metrics and the health checks stay open.  Each route names the roles that
may call it (the route tables of calls.py, incidents.py, reports.py and
desk.py here); another role gets a 403 saying so.  Every error is JSON with an
`error` message (http/errors.py); a request either happens whole or changes
nothing.
"""

from __future__ import annotations

from typing import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

from ivr.calls.service import CallError
from ivr.config import tokens as roles
from ivr.desk.service import DeskError
from ivr.http import errors, throttle
from ivr.http.errors import error

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ACTOR = web.RequestKey("actor", roles.Actor)     # who the request's token names
OPENAPI_PATH = "/api/v1/openapi.json"   # the API's description (openapi.py): no secret, no token
Route = tuple[str, str, str, frozenset[str], Handler]   # method, path, name, roles, handler


def allowed(name: str, who: frozenset[str], handler: Handler) -> Handler:
    """`handler` for the roles `who` only; the services' errors as JSON (errors.py)."""
    async def checked(request: web.Request) -> web.StreamResponse:
        actor = request[ACTOR]
        if actor.role not in who:
            return error(403, f"{actor.role} {actor.name} may not do this ({name}); "
                              f"allowed: {', '.join(sorted(who))}")
        try:
            return await handler(request)
        except (CallError, DeskError, errors.BadRequest) as exc:
            return errors.answer(exc)
    return checked


def routes(table: list[Route]) -> list[web.RouteDef]:
    return [web.route(method, path, allowed(name, who, handler))
            for method, path, name, who, handler in table]


def auth_middleware(tokens: roles.Tokens,
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
        if not len(tokens):
            return error(403, "the control API is off: no token configured (api.tokens_file, "
                              "api.token, IVR_API_TOKENS_FILE or IVR_API_TOKEN)")
        actor = _actor(request, tokens, session_actor, guard)
        if isinstance(actor, web.Response):
            return actor
        request[ACTOR] = actor
        try:
            return await handler(request)
        except web.HTTPException as exc:      # aiohttp's own 404/405/413: JSON too
            if exc.status < 400:
                raise
            allow = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else {}
            return web.json_response({"error": exc.reason}, status=exc.status, headers=allow)
    return check_token


def _actor(request: web.Request, tokens: roles.Tokens,
           session_actor: Callable[[web.Request], roles.Actor | None],
           guard: throttle.Guard) -> roles.Actor | web.Response:
    """Who the request's token or session names, else its 401 (or 429 when throttled)."""
    authorization = request.headers.get("Authorization", "")
    if authorization:
        source = throttle.source_of(request.remote)
        if wait := guard.retry_after(source):
            guard.refused(source, "api_token")
            return error(429, f"too many wrong tokens from {source}: try again in {wait} s",
                         code="throttled", headers={"Retry-After": str(wait)})
        actor = tokens.who(authorization)
        if actor is None:
            guard.failed(source, "api_token", f"{request.method} {request.path[:100]}")
    else:
        actor = session_actor(request)
    return error(401, "missing or wrong bearer token") if actor is None else actor
