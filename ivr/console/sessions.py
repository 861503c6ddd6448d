"""Who is signed in to the console, and as whom.

Sign-in (`/console`) takes a role token (the API's, ivr/config/tokens.py) and keeps it
server-side: the browser holds only a session cookie (HttpOnly,
SameSite=Strict).  Sessions are kept in the ledger database too (the SHA-256
of the cookie and of the token, never either), so a restart of ivr signs
nobody out; a session whose token is no longer in the tokens file is not
restored.  The pages call the same JSON API as everyone else, with the
session and its CSRF token in a header (api.auth_middleware accepts both), so
the console adds no second way to act on a call.  A form posted from another
origin is refused.  Each role has its pages (PAGES); any other is 403.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import time
from dataclasses import dataclass

from aiohttp import web

from ivr.app import Services
from ivr.config import tokens as roles
from ivr.console import render
from ivr.http import throttle
from ivr.ledger.db import LedgerError, problem
from ivr.ledger.store import Store

log = logging.getLogger(__name__)
COOKIE = "ivr_session"
SESSION_SECONDS = 12 * 3600
PAGES = {   # page -> roles that may open it
    "desk": frozenset({roles.OPERATOR, roles.SUPERVISOR, roles.ADMIN}),
    "board": frozenset({roles.SUPERVISOR, roles.ADMIN}),
    "office": frozenset({roles.OFFICE, roles.ADMIN}),
    "tickets": frozenset({roles.ENGINEER, roles.ADMIN}),
    # The wallboard, for a TV: the board's figures without a control.
    "wall": frozenset({roles.SUPERVISOR, roles.OFFICE, roles.ADMIN, roles.WALL}),
}
HOME = {roles.OPERATOR: "desk", roles.SUPERVISOR: "board", roles.OFFICE: "office",
        roles.ENGINEER: "tickets", roles.ADMIN: "board", roles.WALL: "wall"}


@dataclass
class Session:
    actor: roles.Actor
    csrf: str
    expires: float
    token: str = ""          # the fingerprint of the token signed in with (roles.fingerprint)


class Sessions:
    """The sessions of this ivr (`active`, by the cookie's hash), kept in the ledger too."""

    def __init__(self, app: Services, guard: throttle.Guard) -> None:
        self.app = app
        self.guard = guard       # wrong tokens at sign-in, per source
        self.active: dict[str, Session] = {}

    def find(self, request: web.Request) -> Session | None:
        sid = _hash(request.cookies.get(COOKIE, ""))
        found = self.active.get(sid)
        if found is None or found.expires < time.time():
            self.active.pop(sid, None)
            return None
        return found

    def api_actor(self, request: web.Request) -> roles.Actor | None:
        """The console's own calls to /api/v1: the session cookie and its CSRF header."""
        found = self.find(request)
        # Bytes: compare_digest refuses text that is not ASCII (a header not UTF-8) with a 500.
        if found is None or not secrets.compare_digest(
                request.headers.get("X-CSRF-Token", "").encode("utf-8", "surrogatepass"),
                found.csrf.encode()):
            return None
        return found.actor

    async def restore(self, timeout: float = 5.0) -> None:
        """At start: the sessions the ledger keeps whose token is still in the tokens file
        (a token taken away or replaced ends its sessions)."""
        try:
            rows = await asyncio.wait_for(self.app.store.run(Store.sessions, round(time.time() * 1e6)),
                                          timeout)
        except Exception as exc:      # unreachable or slow: people sign in again
            reason = str(exc) if isinstance(exc, LedgerError) else problem(exc) or "timed out"
            log.warning("console: the sessions cannot be read from the ledger (%s); "
                        "everyone signs in again", reason)
            return
        restored = 0
        for r in rows:
            actor = roles.Actor(r["role"], r["name"])
            if self.app.tokens.holder_of(r["token_sha256"]) == actor:
                self.active[r["sid_hash"]] = Session(actor, r["csrf"], r["expires_us"] / 1e6,
                                                     r["token_sha256"])
                restored += 1
        if rows:
            log.info("console: %d session(s) restored, %d whose token is gone", restored,
                     len(rows) - restored)

    def routes(self) -> list[web.AbstractRouteDef]:
        return [web.get("/console", self.sign_in_page), web.post("/console/sign-in", self.sign_in),
                web.post("/console/sign-out", self.sign_out)]

    async def sign_in_page(self, request: web.Request) -> web.StreamResponse:
        found = self.find(request)
        if found is not None:
            raise web.HTTPFound(home(found.actor))
        return _form(request, "")

    async def sign_in(self, request: web.Request) -> web.StreamResponse:
        if not same_origin(request):
            return web.Response(status=403, text="cross-site request refused")
        source = throttle.source_of(request.remote)
        if wait := self.guard.retry_after(source):     # the token is not even read
            self.guard.refused(source, "console_sign_in")
            response = _form(request, "too_many", status=429)
            response.headers["Retry-After"] = str(wait)
            return response
        form = await request.post()
        authorization = f"Bearer {form.get('token', '')}"
        actor = self.app.tokens.who(authorization)
        if actor is None:
            self.guard.failed(source, "console_sign_in", "wrong token at sign-in")
            return _form(request, "bad_token", status=401)
        sid = await self._open(actor, roles.fingerprint(authorization))
        log.info("console: %s %s signed in", actor.role, actor.name)
        response = web.HTTPSeeOther(home(actor))
        response.set_cookie(COOKIE, sid, httponly=True, samesite="Strict", path="/",
                            max_age=SESSION_SECONDS)
        raise response

    async def _open(self, actor: roles.Actor, token: str) -> str:
        """A new session of `actor`, kept in the ledger if it can be: its cookie."""
        sid = secrets.token_urlsafe(32)
        now = time.time()
        session = self.active[_hash(sid)] = Session(actor, secrets.token_urlsafe(24),
                                                    now + SESSION_SECONDS, token)
        try:
            await self.app.store.run(Store.session_put, {
                "sid_hash": _hash(sid), "role": actor.role, "name": actor.name,
                "token_sha256": session.token, "csrf": session.csrf,
                "created_us": round(now * 1e6), "expires_us": round(session.expires * 1e6)})
        except LedgerError as exc:    # signed in all the same, until ivr restarts
            log.warning("console: %s %s's session is not kept in the ledger (%s): a restart "
                        "signs them out", actor.role, actor.name, exc)
        return sid

    async def sign_out(self, request: web.Request) -> web.StreamResponse:
        if not same_origin(request):
            return web.Response(status=403, text="cross-site request refused")
        sid = _hash(request.cookies.get(COOKIE, ""))
        found = self.active.pop(sid, None)
        if found is not None:
            log.info("console: %s %s signed out", found.actor.role, found.actor.name)
            try:
                await self.app.store.run(Store.session_drop, sid)
            except LedgerError as exc:
                log.warning("console: %s %s's session stays in the ledger until it expires "
                            "(%s); it is over in this ivr", found.actor.role, found.actor.name, exc)
        response = web.HTTPSeeOther("/console")
        response.del_cookie(COOKIE, path="/")
        raise response


def home(actor: roles.Actor) -> str:
    page = HOME[actor.role]
    return f"/console/desk/{actor.name}" if page == "desk" else f"/console/{page}"


def may_watch(actor: roles.Actor, member: str) -> bool:
    """Whose desk an actor may open: an operator their own; a supervisor or admin any."""
    if actor.role not in PAGES["desk"]:
        return False
    return actor.role != roles.OPERATOR or actor.name == member


def same_origin(request: web.Request) -> bool:
    origin = request.headers.get("Origin")
    return origin is None or origin == f"{request.scheme}://{request.host}"


def _form(request: web.Request, problem_word: str, status: int = 200) -> web.Response:
    """The sign-in form, with the words of `problem_word` (a texts.WORDS key) if any."""
    words = render.words(request)
    return render.page(request, "sign_in.html", status,
                       problem=words[problem_word] if problem_word else "")


def _hash(sid: str) -> str:
    """What the sessions are kept under: the cookie's SHA-256, never the cookie."""
    # A cookie that is not UTF-8 comes as lone surrogates: it matches no session, never a 500.
    return hashlib.sha256(sid.encode("utf-8", "surrogatepass")).hexdigest()
