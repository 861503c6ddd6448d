"""The dialplan's callback questions (the dialplan side is extensions_ivr.conf's
[ivr-callback-key], [ivr-callback] and [ivr-callback-place]):

    GET /dialplan/v1/callback?uniqueid=U&caller=N[&prio=P]     callback=ID, or error=WORD
        key 1 in a queue offering callbacks: take the request (WORD: off, number,
        blocked, queue, pending); the caller then hears their number and goodbye
    GET /dialplan/v1/callback/dial?id=ID&n=N                    dial=STRING&number=N, or error=WORD
        an agent took placeholder N of callback ID: the one dial (WORD: unknown, gone)
    GET /dialplan/v1/callback/result?id=ID&n=N&status=DIALSTATUS   ok=1
        from the dial's h extension: what became of it

Same door as every dialplan question (dialplan_auth.py); a malformed one is a 400 with
an empty body and changes nothing.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import urlencode

from aiohttp import web

from ivr.app import Services
from ivr.callbacks.service import CallbackRefused
from ivr.pbx.session import Pbx

log = logging.getLogger(__name__)
_UNIQUEID = re.compile(r"(?:[A-Za-z0-9_.-]{1,64}-)?[0-9]+\.[0-9]+")
_NUMBER = re.compile(r"\+?[0-9A-Za-z*#().\- ]{1,32}")
_ID = re.compile(r"[0-9]{1,20}")
_N = re.compile(r"[0-9]{1,3}")
_PRIO = re.compile(r"-?[0-9]{1,10}")
_STATUS = re.compile(r"[A-Z]{1,16}")


def request(app: Services, pbx: Pbx, r: web.Request) -> web.Response:
    q = r.query
    uid, caller, prio = q.get("uniqueid", ""), q.get("caller", ""), q.get("prio", "")
    if not _UNIQUEID.fullmatch(uid) or not _NUMBER.fullmatch(caller) \
            or (prio and not _PRIO.fullmatch(prio)):
        log.warning("bad callback request from the dialplan: %s", r.query_string[:200])
        return web.Response(status=400)
    try:
        cb = app.callbacks.request(pbx, uid, caller, int(prio or 0))
    except CallbackRefused as exc:
        log.info("call %s (%s): no callback: %s", uid, caller, exc)
        return web.Response(text=urlencode({"error": exc.word, "back": app.calls.dialplan.extension(
            app.callbacks.queue_of(pbx, uid))}))
    digits = "".join(c for c in cb.row.number if c.isdigit())    # read back digit by digit
    return web.Response(text=urlencode({"callback": cb.id, "number": digits}))


def dial(app: Services, pbx: Pbx, r: web.Request) -> web.Response:
    cb_id, n = r.query.get("id", ""), r.query.get("n", "")
    if not _ID.fullmatch(cb_id) or not _N.fullmatch(n):
        return web.Response(status=400)
    try:
        dial_string, cb = app.callbacks.dial(pbx.name, cb_id, int(n))
    except CallbackRefused as exc:
        log.info("callback %s: not dialed: %s", cb_id, exc)
        return web.Response(text=urlencode({"error": exc.word}))
    return web.Response(text=urlencode({"dial": dial_string, "number": cb.row.number,
                                        "timeout": app.config.callback.ring_seconds}))


def result(app: Services, pbx: Pbx, r: web.Request) -> web.Response:
    cb_id, n, status = r.query.get("id", ""), r.query.get("n", ""), r.query.get("status", "")
    if not _ID.fullmatch(cb_id) or not _N.fullmatch(n) or not _STATUS.fullmatch(status or "NONE"):
        return web.Response(status=400)
    cb = app.callbacks.result(pbx.name, cb_id, int(n), status or "NONE")
    return web.Response(text=urlencode({"ok": "1" if cb is not None else ""}))
