"""The console's pages, in English and Russian, every asset shipped in the package.

Sign-in (`/console`) takes a role token (the API's, ivr/config/tokens.py) and keeps it
server-side: the browser holds only a session cookie (HttpOnly,
SameSite=Strict).  Sessions are kept in the ledger database too (the SHA-256
of the cookie and of the token, never either), so a restart of ivr signs
nobody out; a session whose token is no longer in the tokens file is not
restored.  The pages call the same JSON API as everyone else, with the
session and its CSRF token in a header (http/api/auth.py's auth_middleware accepts both), so
the console adds no second way to act on a call.  A form posted from another
origin is refused.  Each role has its pages; any other is 403.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import json
import logging
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from aiohttp.client_exceptions import ClientConnectionResetError

from ivr.calls import service as calls, views
from ivr.config import tokens as roles
from ivr.http import throttle
from ivr.app import App
from ivr.console import texts
from ivr.console.live import Hub
from ivr.desk.service import TICKET_MOVES
from ivr.ledger.db import LedgerError, problem
from ivr.ledger.store import Store
from ivr.reports import billing, service

log = logging.getLogger(__name__)
STATIC = Path(__file__).with_name("static")
COOKIE = "ivr_session"
SESSION_SECONDS = 12 * 3600
PAGES = {   # page -> roles that may open it
    "desk": frozenset({roles.OPERATOR, roles.SUPERVISOR, roles.ADMIN}),
    "board": frozenset({roles.SUPERVISOR, roles.ADMIN}),
    "office": frozenset({roles.OFFICE, roles.ADMIN}),
    "tickets": frozenset({roles.ENGINEER, roles.ADMIN}),
}
HOME = {roles.OPERATOR: "desk", roles.SUPERVISOR: "board", roles.OFFICE: "office",
        roles.ENGINEER: "tickets", roles.ADMIN: "board"}

TEXT = {lang: texts.words(lang) for lang in texts.LANGUAGES}
LABELS = {lang: texts.labels(lang) for lang in texts.LANGUAGES}


@dataclass
class Session:
    actor: roles.Actor
    csrf: str
    expires: float
    token: str = ""          # the fingerprint of the token signed in with (roles.fingerprint)


class Console:
    def __init__(self, app: App, guard: throttle.Guard | None = None) -> None:
        self.app = app
        self.guard = guard or throttle.Guard(None)   # wrong tokens at sign-in, per source
        self.sessions: dict[str, Session] = {}
        self.hub = Hub(app)
        self.streams: set[asyncio.Task[Any]] = set()
        self._today: tuple[float, float | None, int] | None = None   # (when, share, offered)

    def session(self, request: web.Request) -> Session | None:
        sid = _hash(request.cookies.get(COOKIE, ""))
        found = self.sessions.get(sid)
        if found is None or found.expires < time.time():
            self.sessions.pop(sid, None)
            return None
        return found

    async def restore_sessions(self, timeout: float = 5.0) -> None:
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
                self.sessions[r["sid_hash"]] = Session(actor, r["csrf"], r["expires_us"] / 1e6,
                                                       r["token_sha256"])
                restored += 1
        if rows:
            log.info("console: %d session(s) restored, %d whose token is gone", restored,
                     len(rows) - restored)

    def api_actor(self, request: web.Request) -> roles.Actor | None:
        """The console's own calls to /api/v1: the session cookie and its CSRF header."""
        found = self.session(request)
        # Bytes: compare_digest refuses text that is not ASCII (a header not UTF-8) with a 500.
        if found is None or not secrets.compare_digest(
                request.headers.get("X-CSRF-Token", "").encode("utf-8", "surrogatepass"),
                found.csrf.encode()):
            return None
        return found.actor

    def routes(self) -> list[web.AbstractRouteDef]:
        return [web.get("/console", self.sign_in_page), web.post("/console/sign-in", self.sign_in),
                web.post("/console/sign-out", self.sign_out),
                web.get("/console/desk/{member}", self.page("desk")),
                web.get("/console/board", self.page("board")),
                web.get("/console/office", self.page("office")),
                web.get("/console/tickets", self.page("tickets")),
                web.get("/console/events", self.events),
                web.get("/console/statement.csv", self.statement_csv),
                web.static("/console/static", STATIC)]

    # -- signing in ----------------------------------------------------------

    async def sign_in_page(self, request: web.Request) -> web.StreamResponse:
        found = self.session(request)
        if found is not None:
            raise web.HTTPFound(self._home(found.actor))
        return self._sign_in_form(request, "")

    def _sign_in_form(self, request: web.Request, problem: str, status: int = 200) -> web.Response:
        t = _texts(request)
        body = (f'<main><h1>{t["title"]}</h1>'
                f'<form class="sign-in" method="post" action="/console/sign-in">'
                f'<label for="token">{t["token"]}</label>'
                f'<input id="token" name="token" type="password" autocomplete="off" required>'
                f'<button type="submit">{t["sign_in"]}</button></form>'
                + (f'<p role="alert">{html.escape(problem)}</p>' if problem else "") + '</main>')
        return _page(request, t["title"], body, status=status)

    async def sign_in(self, request: web.Request) -> web.StreamResponse:
        if not _same_origin(request):
            return web.Response(status=403, text="cross-site request refused")
        source = throttle.source_of(request.remote)
        if wait := self.guard.retry_after(source):     # the token is not even read
            self.guard.refused(source, "console_sign_in")
            response = self._sign_in_form(request, _texts(request)["too_many"], status=429)
            response.headers["Retry-After"] = str(wait)
            return response
        form = await request.post()
        authorization = f"Bearer {form.get('token', '')}"
        actor = self.app.tokens.who(authorization)
        if actor is None:
            self.guard.failed(source, "console_sign_in", "wrong token at sign-in")
            return self._sign_in_form(request, _texts(request)["bad_token"], status=401)
        sid = secrets.token_urlsafe(32)
        now = time.time()
        session = self.sessions[_hash(sid)] = Session(actor, secrets.token_urlsafe(24),
                                                       now + SESSION_SECONDS,
                                                       roles.fingerprint(authorization))
        try:
            await self.app.store.run(Store.session_put, {
                "sid_hash": _hash(sid), "role": actor.role, "name": actor.name,
                "token_sha256": session.token, "csrf": session.csrf,
                "created_us": round(now * 1e6), "expires_us": round(session.expires * 1e6)})
        except LedgerError as exc:    # signed in all the same, until ivr restarts
            log.warning("console: %s %s's session is not kept in the ledger (%s): a restart "
                        "signs them out", actor.role, actor.name, exc)
        log.info("console: %s %s signed in", actor.role, actor.name)
        response = web.HTTPSeeOther(self._home(actor))
        response.set_cookie(COOKIE, sid, httponly=True, samesite="Strict", path="/",
                            max_age=SESSION_SECONDS)
        raise response

    async def sign_out(self, request: web.Request) -> web.StreamResponse:
        if not _same_origin(request):
            return web.Response(status=403, text="cross-site request refused")
        sid = _hash(request.cookies.get(COOKIE, ""))
        found = self.sessions.pop(sid, None)
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

    @staticmethod
    def _home(actor: roles.Actor) -> str:
        page = HOME[actor.role]
        return f"/console/desk/{actor.name}" if page == "desk" else f"/console/{page}"

    # -- pages -------------------------------------------------------------------

    def page(self, name: str) -> Any:
        async def handler(request: web.Request) -> web.StreamResponse:
            found = self.session(request)
            if found is None:
                raise web.HTTPFound("/console")
            t = _texts(request)
            member = request.match_info.get("member", "")
            if found.actor.role not in PAGES[name] or (member and not _may_watch(found.actor, member)):
                return _page(request, t["forbidden"],
                             f'<main><h1>403</h1><p role="alert">{t["forbidden"]}</p></main>',
                             status=403)
            lang = _lang(request)
            settings = {"page": name, "member": member, "csrf": found.csrf,
                        "actor": found.actor.to_json(), "lang": lang, "t": t,
                        "labels": LABELS[lang], "dispositions": calls.DISPOSITIONS,
                        "ticket_moves": TICKET_MOVES}
            role = LABELS[lang]["role"][found.actor.role]
            body = (f'<header><span>{html.escape(role)} '
                    f'{html.escape(found.actor.name)}</span>'
                    f'<form method="post" action="/console/sign-out">'
                    f'<button type="submit">{t["sign_out"]}</button></form>'
                    f'<a href="?lang={"en" if lang == "ru" else "ru"}">{t["language"]}</a>'
                    f'</header><main id="app"><h1>{t[name]}'
                    f'{(": " + html.escape(member)) if member else ""}</h1></main>'
                    f'<script type="application/json" id="settings">'
                    f'{html.escape(json.dumps(settings), quote=False)}</script>'
                    f'<script src="/console/static/console.js"></script>')
            return _page(request, t[name], body)
        return handler

    async def events(self, request: web.Request) -> web.StreamResponse:
        """Server-sent events: a desk gets its member's calls; the board the queues each second."""
        found = self.session(request)
        if found is None:
            return web.Response(status=401)
        member = request.query.get("member", "")
        if member and not _may_watch(found.actor, member):
            return web.Response(status=403)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                               "Cache-Control": "no-cache"})
        await response.prepare(request)
        task = asyncio.current_task()
        if task is not None:
            self.streams.add(task)
        try:
            await self._stream(response, found, member)
        except (ConnectionResetError, ClientConnectionResetError):
            pass          # the page went away: EventSource reconnects if it comes back
        finally:
            if task is not None:
                self.streams.discard(task)
        return response

    async def close_streams(self, _: web.Application) -> None:
        """On shutdown: end the live streams (they never end by themselves), so ivr stops
        at once instead of waiting out aiohttp's shutdown timeout for open pages."""
        for task in list(self.streams):
            task.cancel()

    async def _stream(self, response: web.StreamResponse, found: Session, member: str) -> None:
        if member:
            queue = self.hub.subscribe(member)
            try:
                await response.write(b": connected\n\n")
                if (now := self.hub.current(member)) is not None:   # opened during a call
                    card = await self.hub.card(now.uniqueid, member, now.wait_ms)
                    await response.write(f"event: answered\ndata: {json.dumps(card)}\n\n".encode())
                while True:
                    try:
                        event = await asyncio.wait_for(queue.get(), 15)
                    except TimeoutError:
                        await response.write(b": keep-alive\n\n")
                        continue
                    name = event.pop("event")
                    await response.write(f"event: {name}\ndata: {json.dumps(event)}\n\n".encode())
            finally:
                self.hub.unsubscribe(member, queue)
        board = found.actor.role in PAGES["board"]
        while True:       # ivr's live queues, pushed each second; the board's figures to it only
            queues = views.queues(self.app.config, self.app.pbxs.values(), self.app.clock())
            data: dict[str, Any] = {
                "queues": queues,
                # The registry's head: a page reloads its lists when it moves.
                "tickets_head": self.app.desk.head[0]}
            if board:
                data["service_level"] = await self._service_level(queues)
                data["complaints"] = [i.to_json(self.app.desk.now_us())
                                      for i in self.app.desk.items.values() if i.kind == "complaint"]
            await response.write(f"event: queues\ndata: {json.dumps(data)}\n\n".encode())
            await asyncio.sleep(1)

    async def _service_level(self, queues: dict[str, Any]) -> dict[str, Any]:
        """First-line's service level now (waiting callers still within their threshold)
        and today (the statement's payable share, from the ledger, every 30 s)."""
        first = self.app.config.queues[0]
        waiting = queues.get(first.name, {}).get("waiting", [])
        within = sum(1 for w in waiting if w["wait_seconds"] <= first.sla_seconds)
        now = time.monotonic()
        if self._today is None or now - self._today[0] > 30:
            zone = ZoneInfo(self.app.config.report.timezone)
            day = datetime.now(zone).date()
            p = billing.period(day.isoformat(), (day + timedelta(days=1)).isoformat(), zone.key)
            try:
                statement = await service.statement(self.app.store, self.app.config, p)
                self._today = (now, statement.totals.payable_share, statement.totals.offered)
            except Exception as exc:        # the ledger away: the board goes on without it
                log.warning("board: no service level for today: %s", exc)
                self._today = (now, None, 0)
        return {"queue": first.name, "threshold_seconds": first.sla_seconds,
                "waiting": len(waiting), "waiting_within": within,
                "today_share": self._today[1], "today_offered": self._today[2]}

    async def statement_csv(self, request: web.Request) -> web.StreamResponse:
        found = self.session(request)
        if found is None or found.actor.role not in PAGES["office"]:
            return web.Response(status=403)
        q = request.query
        try:
            p = service.period(self.app.config, q.get("from"), q.get("to"), q.get("tz"))
            statement = await service.statement(self.app.store, self.app.config, p)
        except billing.ReportError as exc:
            return web.Response(status=400, text=str(exc))
        return web.Response(text=billing.to_csv(statement, False), content_type="text/csv",
                            headers={"Content-Disposition": 'attachment; filename="statement.csv"'})



def _may_watch(actor: roles.Actor, member: str) -> bool:
    """Whose desk an actor may open: an operator their own; a supervisor or admin any."""
    if actor.role not in PAGES["desk"]:
        return False
    return actor.role != roles.OPERATOR or actor.name == member


def _hash(sid: str) -> str:
    """What the sessions are kept under: the cookie's SHA-256, never the cookie."""
    # A cookie that is not UTF-8 comes as lone surrogates: it matches no session, never a 500.
    return hashlib.sha256(sid.encode("utf-8", "surrogatepass")).hexdigest()


def _lang(request: web.Request) -> str:
    asked = request.query.get("lang") or request.cookies.get("ivr_lang", "")
    if asked in TEXT:
        return asked
    return "ru" if request.headers.get("Accept-Language", "").lower().startswith("ru") else "en"


def _texts(request: web.Request) -> dict[str, str]:
    return TEXT[_lang(request)]


def _same_origin(request: web.Request) -> bool:
    origin = request.headers.get("Origin")
    return origin is None or origin == f"{request.scheme}://{request.host}"


def _page(request: web.Request, title: str, body: str, status: int = 200) -> web.Response:
    lang = _lang(request)
    text = (f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<title>{html.escape(title)}</title>'
            f'<link rel="stylesheet" href="/console/static/console.css"></head>'
            f'<body>{body}</body></html>')
    response = web.Response(text=text, content_type="text/html", status=status,
                            headers={"Content-Security-Policy": "default-src 'self'",
                                     "X-Frame-Options": "DENY"})
    if request.query.get("lang") in TEXT:
        response.set_cookie("ivr_lang", request.query["lang"], samesite="Strict", path="/console")
    return response
