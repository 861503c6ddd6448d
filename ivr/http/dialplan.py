"""Answers for the dialplan, asked through Asterisk's CURL() with a 1 s deadline.

    GET /dialplan/v1/entry?uniqueid=U&caller=N[&asked=1&account=A][&pbx=NAME]
    GET /dialplan/v1/escalate?uniqueid=U[&pbx=NAME]
    GET /dialplan/v1/numbers?uniqueid=U[&pbx=NAME]   numbers=N1-N2  (filed during the call)
    GET /dialplan/v1/status?number=N                 kind=ticket&state=open, or error=wrong|unknown
    GET /dialplan/v1/claim?uniqueid=U&account=A[&caller=N][&pbx=NAME]
                                                     number=N, or error=...  (files the claim)
    GET /dialplan/v1/callback[/dial|/result]?...     a callback (dialplan_callbacks.py)

Only the PBX may ask (dialplan_auth.py): its own secret in X-Ivr-Secret, from
its dialplan_sources where given, else 401/403 with an empty body.  The
secret names the PBX; `pbx` (the dialplan's IVR_PBX global), when sent, must
be that PBX's name.

An unknown number's first answer has ask_account=1: the dialplan then asks
again with asked=1 and what the caller typed (`account`, empty when nothing,
keypad keys as typed), and that answer routes the call.  Each call is judged
a repeat caller or not once, on the answer with no ask_account (routing/service.py).

The answer is a query string (`route=first-line&area=north&...`) that
CURLOPT(hashcompat) turns into HASH(ivr,...).  A bad request gets a 400
with an empty body: the dialplan then takes its default route.

Why HTTP and not FastAGI: Asterisk enforces the deadline itself
(CURLOPT httptimeout), so a hung ivr can never hold a call, and the answer
is one stateless request on the aiohttp app ivr already runs.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Awaitable, Callable
from urllib.parse import urlencode

from aiohttp import web

from ivr.http import dialplan_callbacks as callbacks, errors, throttle
from ivr.app import Services
from ivr.pbx.session import Pbx
from ivr.desk.service import DeskError
from ivr.http.dialplan_auth import DialplanAuth

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.Response]]
_NUMBER = re.compile(r"\+?[0-9A-Za-z*#().\- ]{1,32}")
_ACCOUNT = re.compile(r"[0-9]{1,16}")
# What a caller types at the account prompt (Read() stops at #): an account, or
# keys that are none (*, A-D), which go on unidentified but are still judged.
_TYPED = re.compile(r"[0-9*A-D]{1,16}")
# Asterisk's Uniqueid: epoch.sequence, behind the SystemName and a dash when one is set.
_UNIQUEID = re.compile(r"(?:[A-Za-z0-9_.-]{1,64}-)?[0-9]+\.[0-9]+")


def routes(app: Services, guard: throttle.Guard | None = None,
           auth: DialplanAuth | None = None) -> list[web.RouteDef]:
    auth = auth or DialplanAuth(app.config.pbxs, guard or throttle.Guard(None))

    def answering(answer: Callable[[Pbx, web.Request], web.Response]) -> Handler:
        """`answer` for the PBX whose secret the request carries; else the refusal."""
        async def handler(request: web.Request) -> web.Response:
            pbx = auth.pbx_of(request)
            return _closing(pbx if isinstance(pbx, web.Response) else answer(app.pbxs[pbx], request))
        return handler

    async def claim(request: web.Request) -> web.Response:
        pbx = auth.pbx_of(request)
        return _closing(pbx if isinstance(pbx, web.Response) else await _claim(app, request))

    return [web.get("/dialplan/v1/entry", answering(lambda pbx, r: _entry(app, pbx, r))),
            web.get("/dialplan/v1/escalate", answering(lambda pbx, r: _escalate(app, pbx, r))),
            web.get("/dialplan/v1/numbers", answering(lambda _, r: _numbers(app, r))),
            web.get("/dialplan/v1/status", answering(lambda _, r: _status(app, r))),
            web.get("/dialplan/v1/claim", claim),
            web.get("/dialplan/v1/callback", answering(lambda pbx, r: callbacks.request(app, pbx, r))),
            web.get("/dialplan/v1/callback/dial", answering(lambda pbx, r: callbacks.dial(app, pbx, r))),
            web.get("/dialplan/v1/callback/result",
                    answering(lambda pbx, r: callbacks.result(app, pbx, r)))]


def _entry(app: Services, pbx: Pbx, request: web.Request) -> web.Response:
    started = time.perf_counter()
    q = request.query
    uid, caller, typed = q.get("uniqueid", ""), q.get("caller", ""), q.get("account", "")
    asked = q.get("asked", "")
    if not _UNIQUEID.fullmatch(uid) or (caller and not _NUMBER.fullmatch(caller)) \
            or (typed and not _TYPED.fullmatch(typed)) or asked not in ("", "1"):
        log.warning("bad entry request from the dialplan: %s", request.query_string[:200])
        return web.Response(status=400)
    route = app.routing.entry(pbx.name, uid, caller, typed, asked == "1", started)
    log.info("call %s (%s) on %s: %s", uid, caller or "no number", pbx.name, route.as_query())
    return web.Response(text=route.as_query())


def _escalate(app: Services, pbx: Pbx, request: web.Request) -> web.Response:
    started = time.perf_counter()
    uid = request.query.get("uniqueid", "")
    if not _UNIQUEID.fullmatch(uid):
        log.warning("bad escalate request from the dialplan: %s", request.query_string[:200])
        return web.Response(status=400)
    route = app.calls.escalate_by_transfer(pbx, uid, started)
    return web.Response(text=route.as_query())


def _numbers(app: Services, request: web.Request) -> web.Response:
    uid = request.query.get("uniqueid", "")
    if not _UNIQUEID.fullmatch(uid):
        return web.Response(status=400)
    found = app.desk.numbers_for_call(uid)
    log.info("call %s: the dialplan reads back %s", uid, ", ".join(found) or "no number")
    return web.Response(text=urlencode({"numbers": "-".join(found), "count": len(found)}))


def _status(app: Services, request: web.Request) -> web.Response:
    """A caller asks by phone for the state of a number they typed."""
    try:
        item = app.desk.find(request.query.get("number", ""))
    except DeskError as exc:
        answer = errors.dialplan_word(exc, errors.STATUS_WORDS)
        log.info("a caller asked for number %r: %s", request.query.get("number", "")[:20], answer)
        return web.Response(text=urlencode({"error": answer}))
    return web.Response(text=urlencode({"kind": item.kind, "state": item.state}))


async def _claim(app: Services, request: web.Request) -> web.Response:
    q = request.query
    uid, caller, account = q.get("uniqueid", ""), q.get("caller", ""), q.get("account", "")
    if not _UNIQUEID.fullmatch(uid) or (caller and not _NUMBER.fullmatch(caller)) \
            or not _ACCOUNT.fullmatch(account):
        return web.Response(status=400)
    try:
        item = await app.desk.claim_by_phone(uid, caller, account)
    except DeskError as exc:
        log.warning("call %s: no claim by phone: %s", uid, exc.message)
        return web.Response(text=urlencode({"error": errors.dialplan_word(exc, errors.CLAIM_WORDS)}))
    log.info("call %s: claim %s filed by phone (%.0f s of downtime so far)", uid, item.number,
             item.data["downtime_seconds"])
    return web.Response(text=urlencode({"number": item.number}))


def _closing(response: web.Response) -> web.Response:
    """Each call asks from its own channel thread, whose CURL handle would keep
    the connection open until the call ends: about 500 idle connections at
    50 calls/s, each a file descriptor and an aiohttp handler in ivr."""
    response.force_close()
    return response
