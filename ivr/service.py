"""`ivr run`: serve HTTP and follow the PBX until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web

from ivr.app import App, build
from ivr.config import Config
from ivr.web import make_web

log = logging.getLogger(__name__)


async def start(config: Config) -> tuple[App, web.AppRunner]:
    """Build the app and bind its HTTP site; raises OSError if the port is taken."""
    app = build(config)
    runner = web.AppRunner(make_web(app), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, config.listen_host, config.listen_port).start()
    except OSError:
        await runner.cleanup()
        raise
    log.info("ivr listening on http://%s:%d, AMI %s@%s:%d", config.listen_host,
             config.listen_port, config.ami.username, config.ami.host, config.ami.port)
    return app, runner


async def serve(config: Config) -> int:
    try:
        _, runner = await start(config)
    except OSError as exc:
        log.error("cannot listen on %s:%d: %s", config.listen_host, config.listen_port,
                  exc.strerror or exc)
        return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("stopping")
    await runner.cleanup()
    return 0
