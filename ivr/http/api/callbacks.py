"""/api/v1/callbacks: the callbacks pending now, each with its place (callbacks/service.py)."""

from __future__ import annotations

from aiohttp import web

from ivr.callbacks.service import Callbacks
from ivr.config import tokens as roles
from ivr.http.api.auth import Route

WHO = frozenset({roles.SUPERVISOR, roles.OFFICE, roles.ADMIN})


def routes(callbacks: Callbacks) -> list[Route]:
    async def pending(request: web.Request) -> web.Response:
        return web.json_response({"callbacks": [cb.to_json(position)
                                                for cb, position in callbacks.pending()]})
    return [("GET", "/api/v1/callbacks", "callbacks", WHO, pending)]
