"""`ivr run`: serve HTTP and follow the PBX until SIGINT or SIGTERM; SIGHUP reloads
the tokens file, the subscriber directory and the dialplan secrets."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import signal
import socket
from dataclasses import replace
from typing import Any, Callable, Coroutine, TypeVar

import uvloop
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from ivr.ami.recording import Recorder
from ivr import app as wiring
from ivr.app import Services, build
from ivr.config import Config, ConfigError
from ivr.config.tokens import TokensError
from ivr.http.app import APP, DIALPLAN_AUTH, make_metrics_web, make_web
from ivr.routing.directory import DirectoryError

log = logging.getLogger(__name__)
T = TypeVar("T")
# SIGTERM stops ivr within 10 s whatever it is doing: requests still running (a long
# report) are given HANDLERS_SECONDS and then cancelled, and the whole cleanup (the
# ledger's last batch included) STOP_SECONDS.  systemd's TimeoutStopSec is longer.
HANDLERS_SECONDS = 2.0
STOP_SECONDS = 8.0


class OneLineBadRequests(logging.Filter):
    """aiohttp logs a request its parser refuses (a NUL in a header, say) as an ERROR with
    a traceback, though it answers it 400 and nothing failed: anyone who reaches the port
    could fill the log with tracebacks.  Such a record becomes one WARNING line."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            first = (exc.message or type(exc).__name__).strip().splitlines()[0]
            record.msg, record.args = "%s: refused (%d): %s", (record.getMessage(), exc.code, first)
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


BAD_REQUESTS = OneLineBadRequests()


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run ivr's main coroutine on uvloop, libuv's event loop for asyncio.

    At 50 calls/s on the lab ivr wakes for about a thousand reads, writes and
    timers a second; uvloop's loop and transports cost less each than
    asyncio's own (bench-load: 4.4 -> 3.9 ms of CPU a call).
    """
    return uvloop.run(main)


class CannotListen(OSError):
    """An address of ivr's that cannot be bound (taken, or not this host's): which one."""

    def __init__(self, address: str, exc: OSError) -> None:
        super().__init__(exc.errno, exc.strerror or str(exc))
        self.address = address


async def start(config: Config, recorder: Recorder | None = None) -> tuple[Services, web.AppRunner]:
    """Bind the HTTP port (and http.metrics_listen's), then build the app and start it
    (AMI included).  The metrics site stops with the main one (runner.cleanup).

    Binding comes first so a taken port fails before ivr logs in anywhere.
    Raises CannotListen (an OSError) if a port is taken.
    """
    sock = _bind(config.listen_host, config.listen_port)
    metrics_sock = None
    if config.metrics_listen is not None:
        try:
            metrics_sock = _bind(*config.metrics_listen)
        except OSError:
            sock.close()
            raise
    logging.getLogger("aiohttp.server").addFilter(BAD_REQUESTS)   # once, however often started
    app = build(config, recorder=recorder)
    web_app = make_web(app)
    metrics: web.AppRunner | None = None
    if metrics_sock is not None:
        metrics = web.AppRunner(make_metrics_web(app), access_log=None,
                                shutdown_timeout=HANDLERS_SECONDS)
        web_app.on_cleanup.append(functools.partial(_stop, metrics))
    runner = web.AppRunner(web_app, access_log=None, shutdown_timeout=HANDLERS_SECONDS)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    if metrics is not None and metrics_sock is not None:
        await metrics.setup()
        await web.SockSite(metrics, metrics_sock).start()
    log.info("ivr listening on http://%s%s, AMI %s; event loop %s", _shown(sock),
             f" (/metrics also on http://{_shown(metrics_sock)})" if metrics_sock else "",
             ", ".join(f"{p.ami.username}@{p.ami.host}:{p.ami.port}"
                       + (f" (pbx {p.name})" if config.pbx else "") for p in config.pbxs),
             type(asyncio.get_running_loop()).__module__.partition(".")[0])
    return app, runner


async def _stop(metrics: web.AppRunner, _: web.Application) -> None:
    await metrics.cleanup()


def _shown(sock: socket.socket) -> str:
    """HOST:PORT as bound (a port 0 of the config is the one the system gave)."""
    host, port = sock.getsockname()[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise CannotListen(f"{host}:{port}", exc) from exc
    return sock


def reload(web_app: web.Application, load: Callable[[], Config]) -> None:
    """SIGHUP: the config read again, and from it the tokens, the directory and the
    dialplan secrets taken in place, each on its own: a bad one keeps the old with one
    ERROR line.  Calls, sessions and the AMI connections go on untouched; any other
    change of the config waits for a restart, and the log says so."""
    app = web_app[APP]
    try:
        config = load()
    except ConfigError as exc:
        log.error("SIGHUP: config not reloaded, keeping the old: %s", exc)
        return
    try:
        log.info("SIGHUP: tokens reloaded: %s", app.tokens.replace_with(wiring.tokens(config)))
    except TokensError as exc:
        log.error("SIGHUP: tokens not reloaded, keeping the old: %s", exc)
    try:
        log.info("SIGHUP: directory reloaded: %s",
                 app.directory.replace_with(wiring.directory(config)))
    except DirectoryError as exc:
        log.error("SIGHUP: directory not reloaded, keeping the old: %s", exc)
    log.info("SIGHUP: dialplan %s", web_app[DIALPLAN_AUTH].replace_with(config.pbxs))
    if _fixed(config) != _fixed(app.config):
        log.warning("SIGHUP: other changes of the config wait for a restart")


def _fixed(config: Config) -> Config:
    """The config but what SIGHUP reloads: secrets, tokens, the directory's file."""
    def ami(a: Any) -> Any:
        return replace(a, dialplan_secret="", dialplan_sources=())
    return replace(config, ami=ami(config.ami), pbx=tuple(replace(p, ami=ami(p.ami))
                                                          for p in config.pbx),
                   api=replace(config.api, tokens_file="", token=""),
                   routing=replace(config.routing, directory=None))


async def serve(config: Config, recorder: Recorder | None = None,
                load: Callable[[], Config] | None = None) -> int:
    try:
        app, runner = await start(config, recorder)
    except OSError as exc:
        where = exc.address if isinstance(exc, CannotListen) else \
            f"{config.listen_host}:{config.listen_port}"
        log.error("cannot listen on %s: %s", where, (exc.strerror or str(exc)).lower())
        return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if load is not None:
        loop.add_signal_handler(signal.SIGHUP, reload, runner.app, load)
    await stop.wait()
    log.info("stopping")
    try:
        await asyncio.wait_for(runner.cleanup(), STOP_SECONDS)
    except asyncio.TimeoutError:
        log.error("stopping: the cleanup was not done after %g s; exiting without it "
                  "(%d ledger records to the spool)", STOP_SECONDS, len(app.ledger.pending))
        app.ledger.spill()
        # A thread stuck in the database (a driver's, not a daemon) would keep the
        # interpreter from exiting: SIGTERM must stop ivr all the same.
        logging.shutdown()
        os._exit(1)
    return 0
