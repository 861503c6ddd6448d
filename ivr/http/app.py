"""HTTP: /metrics, /healthz (alive), /readyz (logged in to AMI and resynced),
/dialplan/v1 (routes for Asterisk), /api/v1 (the control API) and /console
(the people's pages, console/); and /metrics alone on http.metrics_listen."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, AsyncIterator

from aiohttp import web
from prometheus_client.aiohttp import make_aiohttp_handler

from ivr.http.api import auth, calls, callbacks, desk, incidents, reports
from ivr.http import dialplan as dialplan_http, openapi, throttle
from ivr.http.dialplan_auth import DialplanAuth
from ivr.console.pages import Console
from ivr.reconcile import catchup
from ivr.app import Services
from ivr.pbx import classes
from ivr.pbx.session import Pbx
from ivr.desk.service import Desk
from ivr.ledger.db import LedgerError

log = logging.getLogger(__name__)
APP = web.AppKey("ivr", Services)
CONSOLE = web.AppKey("console", Console)
# None without a queue_log source (ledger.queue_log or ledger.queue_log_db).
BACKFILL: web.AppKey[catchup.StartupBackfill | None] = web.AppKey("backfill")
DIALPLAN_AUTH = web.AppKey("dialplan_auth", DialplanAuth)   # the PBXs' secrets, for SIGHUP


def make_web(app: Services) -> web.Application:
    guard = throttle.Guard(app.registry)    # wrong credentials of the API, console and dialplan
    console = Console(app, guard)
    checked = auth.auth_middleware(app.tokens, console.api_actor, guard)
    w = web.Application(middlewares=[checked], client_max_size=64 * 1024)
    w[APP] = app
    w[CONSOLE] = console
    w[BACKFILL] = catchup.for_app(app)     # now: it hears every call ivr ends from the start
    w[DIALPLAN_AUTH] = DialplanAuth(app.config.pbxs, guard)
    w.add_routes(dialplan_http.routes(app, guard, w[DIALPLAN_AUTH]))
    w.add_routes(auth.routes(api_routes(app)))
    w.add_routes(openapi.routes())
    console.install(w)             # its templates and routes
    w.on_shutdown.append(console.close_streams)
    w.router.add_get("/metrics", make_aiohttp_handler(app.registry))
    w.router.add_get("/healthz", healthz)
    w.router.add_get("/readyz", readyz)
    w.cleanup_ctx.append(_ami_running)
    return w


def make_metrics_web(app: Services) -> web.Application:
    """http.metrics_listen's app: /metrics of the same registry, and nothing else, so an
    address open to Prometheus opens neither the API, the console nor the dialplan's."""
    w = web.Application(client_max_size=1024)
    w.router.add_get("/metrics", make_aiohttp_handler(app.registry))
    return w


def api_routes(app: Services) -> list[auth.Route]:
    """Every /api/v1 route but the description, with the roles that may call it."""
    return (incidents.routes(app.routing, app.clock) + calls.routes(app.calls, app.config)
            + reports.routes(app.store, app.config, app.directory, app.desk)
            + desk.routes(app.desk, app.calls.live_call) + callbacks.routes(app.callbacks))


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"alive": True})


async def readyz(request: web.Request) -> web.Response:
    """200 when every PBX is logged in and resynced.  The top-level AMI keys sum the
    PBXs up (the first error names its PBX when there are several); `pbx` has each."""
    app = request.app[APP]
    ledger = app.ledger
    pbxs = {p.name: _pbx_state(p) for p in app.pbxs.values()}
    errors = [(name, s["last_error"]) for name, s in pbxs.items() if s["last_error"]]
    several = len(pbxs) > 1
    body = {"ready": app.ready, "ami_up": all(s["ami_up"] for s in pbxs.values()),
            "last_error": (f"pbx {errors[0][0]}: {errors[0][1]}" if several else errors[0][1])
            if errors else None,
            # False once an event of this connection came without Timestamp: waits are
            # then Asterisk's HoldTime, in whole seconds.
            "ami_timestamps": app.timestamps,
            # What the AMI user reads of what ivr needs (call, agent, dialplan): yes, no,
            # unknown (pbx/classes.py).  dialplan "no": exits told by the channel alone.
            "ami_classes": classes.merged([p.classes.state() for p in app.pbxs.values()]),
            # The session's server-side event filter: advanced, regex, off, or why none.
            "ami_event_filter": app.event_filter,
            "pbx": pbxs,
            # The ledger never makes ivr unready: routing goes on while records wait.
            # quarantined: records the database refused, held in the quarantine file
            # (`ivr ledger quarantine`); dropped: records lost since start.
            "ledger": {"ok": ledger.healthy, "backlog": ledger.backlog,
                       "write_errors": ledger.write_errors, "last_error": ledger.last_error or None,
                       "quarantined": ledger.quarantine.count, "dropped": ledger.dropped},
            # What ivr missed while down, written back from queue_log at start (catchup.py).
            "backfill": b.to_json() if (b := request.app[BACKFILL]) is not None else {"state": "off"}}
    return web.json_response(body, status=200 if app.ready else 503)


def _pbx_state(pbx: Pbx) -> dict[str, Any]:
    return {"ready": pbx.ready, "ami_up": pbx.ami.up, "last_error": pbx.ami.last_error,
            "ami": pbx.address, "ami_timestamps": pbx.timestamps,
            "ami_classes": pbx.classes.state(), "ami_event_filter": pbx.event_filter}


async def _ami_running(w: web.Application) -> AsyncIterator[None]:
    """The AMI loop, the ledger writer and the webhooks' sender live as long as the web
    app: started and cancelled here.  On stop the ledger writes what it holds, or spools
    it; a webhook cut off in the middle is sent again at the next start."""
    app = w[APP]
    # What the ledger remembers comes back before the first call: incidents (after the
    # schema's migration), then repeat callers and console sessions side by side.  A
    # ledger that does not answer is waited for once, not three times.
    if await app.routing.restore_incidents():
        await asyncio.gather(app.routing.restore_repeats(), w[CONSOLE].restore_sessions(),
                             app.callbacks.restore())
    else:
        log.warning("repeat callers and console sessions start from nothing")
    tasks = [asyncio.create_task(pbx.ami.run(), name=f"ami {pbx.name}")
             for pbx in app.pbxs.values()]
    tasks.append(asyncio.create_task(app.ledger.run(), name="ledger"))
    tasks.append(asyncio.create_task(load_desk(app.desk), name="desk"))
    tasks.append(asyncio.create_task(app.webhooks.run(), name="webhooks"))
    if (backfill := w[BACKFILL]) is not None:
        tasks.append(asyncio.create_task(backfill.run(), name="backfill"))
    yield
    for pbx in app.pbxs.values():
        pbx.router.close()
    app.callbacks.close()
    for task in tasks:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await app.webhooks.close()
    await app.ledger.close()
    await app.store.close()


async def load_desk(desk: Desk, retry: float = 5.0) -> None:
    """Read the registry into the desk; until the ledger answers, try again."""
    while True:
        try:
            await desk.load()
            return
        except LedgerError as exc:
            log.warning("service desk: cannot read the registry (%s); retrying in %.0f s",
                        exc, retry)
            await asyncio.sleep(retry)
