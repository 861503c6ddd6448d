"""The console's pages, in English and Russian, every asset shipped in the package.

Each page is a template (templates/page.html) that hands its settings to the page's
own ES module (static/PAGE.js); the module builds the page from ivr's JSON API and
the live events served here (/console/events).  Who may open which page, and
signing in, are sessions.py's; the office's CSV download is export.py's.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any, Awaitable, Callable

from aiohttp import web
from aiohttp.client_exceptions import ClientConnectionResetError

from ivr.calls import views
from ivr.calls.service import DISPOSITIONS
from ivr.config import tokens as roles
from ivr.http import throttle
from ivr.app import Services
from ivr.console import export, render
from ivr.console.live import Hub
from ivr.console.sessions import PAGES, Session, Sessions, may_watch
from ivr.console.today import Today
from ivr.desk.service import TICKET_MOVES
from ivr.reports import service_level as sl

log = logging.getLogger(__name__)
STATIC = Path(__file__).with_name("static")


class Console:
    def __init__(self, app: Services, guard: throttle.Guard | None = None) -> None:
        self.app = app
        self.guard = guard or throttle.Guard(None)   # wrong tokens at sign-in, per source
        self.sessions = Sessions(app, self.guard)
        self.hub = Hub(app)
        self.streams: set[asyncio.Task[Any]] = set()
        self.today = Today(app)          # the figures of today, read every TODAY_SECONDS

    def api_actor(self, request: web.Request) -> roles.Actor | None:
        return self.sessions.api_actor(request)

    async def restore_sessions(self, timeout: float = 5.0) -> None:
        await self.sessions.restore(timeout)

    def install(self, w: web.Application) -> None:
        """The console on the web app `w`: its templates and its routes."""
        render.setup(w)
        w.add_routes(self.routes())

    def routes(self) -> list[web.AbstractRouteDef]:
        return [*self.sessions.routes(),
                web.get("/console/desk/{member}", self.page("desk")),
                web.get("/console/board", self.page("board")),
                web.get("/console/wall", self.page("wall")),
                web.get("/console/office", self.page("office")),
                web.get("/console/tickets", self.page("tickets")),
                web.get("/console/events", self.events),
                *export.routes(self.app, self.sessions),
                web.static("/console/static", STATIC)]

    # -- pages -------------------------------------------------------------------

    def page(self, name: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handler(request: web.Request) -> web.StreamResponse:
            found = self.sessions.find(request)
            if found is None:
                raise web.HTTPFound("/console")
            member = request.match_info.get("member", "")
            if found.actor.role not in PAGES[name] or (member and not may_watch(found.actor, member)):
                return render.page(request, "forbidden.html", 403)
            return _page(request, name, member, found)
        return handler

    async def events(self, request: web.Request) -> web.StreamResponse:
        """Server-sent events: a desk gets its member's calls; the other pages the queues
        each second, and the board and the wall the figures of today when they change."""
        found = self.sessions.find(request)
        if found is None:
            return web.Response(status=401)
        member = request.query.get("member", "")
        if member and not may_watch(found.actor, member):
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
            await self._desk(response, member)
        else:
            await self._queues(response, found.actor.role)

    async def _desk(self, response: web.StreamResponse, member: str) -> None:
        """A desk's calls: the card of each call `member` answers, and its end."""
        queue = self.hub.subscribe(member)
        try:
            await response.write(b": connected\n\n")
            if (now := self.hub.current(member)) is not None:   # opened during a call
                card = await self.hub.card(now.uniqueid, member, now.wait_ms)
                await response.write(_event("answered", card))
            while True:
                try:
                    event = await asyncio.wait_for(queue.get(), 15)
                except TimeoutError:
                    await response.write(b": keep-alive\n\n")
                    continue
                name = event.pop("event")
                await response.write(_event(name, event))
        finally:
            self.hub.unsubscribe(member, queue)

    async def _queues(self, response: web.StreamResponse, role: str) -> None:
        """ivr's live queues, pushed each second; to the board and the wall, first-line's
        service level too and, when read again (today.py), the figures of today; to the
        board only, the complaints and the callbacks."""
        board, wall = role in PAGES["board"], role in PAGES["wall"]
        sent: dict[str, Any] | None = None
        while True:
            queues = views.queues(self.app.config, self.app.pbxs.values(), self.app.clock())
            data: dict[str, Any] = {
                "queues": queues,
                # The registry's head: a page reloads its lists when it moves.
                "tickets_head": self.app.desk.head[0]}
            if board or wall:
                today = await self.today.figures()
                if today is not sent:
                    await response.write(_event("today", {"queues": today["queues"],
                                                          "chart": today["chart"]}))
                    sent = today
                data["service_level"] = sl.level(self.app.config.first_line, queues,
                                                 today["statement"])
            if board:
                data["complaints"] = [i.to_json(self.app.desk.now_us())
                                      for i in self.app.desk.items.values() if i.kind == "complaint"]
                data["callbacks"] = [cb.to_json(place) for cb, place in self.app.callbacks.pending()]
            await response.write(_event("queues", data))
            await asyncio.sleep(1)


def _page(request: web.Request, name: str, member: str, found: Session) -> web.Response:
    """Page `name` for `found`'s actor: the template and the settings its module reads."""
    lang = render.lang(request)
    settings = {"page": name, "member": member, "csrf": found.csrf,
                "actor": found.actor.to_json(), "lang": lang, "t": render.TEXT[lang],
                "labels": render.LABELS[lang], "dispositions": DISPOSITIONS,
                "ticket_moves": TICKET_MOVES}
    return render.page(request, "page.html", page=name, member=member, actor=found.actor,
                       role=render.LABELS[lang]["role"][found.actor.role],
                       other_lang="en" if lang == "ru" else "ru", settings=settings)


def _event(name: str, data: Any) -> bytes:
    """One server-sent event."""
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()
