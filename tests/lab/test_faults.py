"""Faults on the lab with traffic running: PBX restart, a stalled AMI link,
ivr killed and restarted, a wrong secret.  Nothing may be counted twice,
no gauge may stick, and ivr must come back on its own."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from ivr.calls.judge import OUTCOMES
from ivr.lab import traffic
from ivr.lab.pbx import AMI_PORT, Lab, port_open
from ivr.service import start
from tests.helpers import eventually, free_port, http_get
from tests.lab.conftest import Running, lab_config

pytestmark = pytest.mark.lab
OPERATORS = ("op1", "op2", "op3", "op4")
IVR = str(Path(sys.executable).with_name("ivr"))


def invariants(ivr: Running, queue: str) -> None:
    """entered = exits + unobserved + waiting, and no gauge below zero."""
    exits = sum(ivr.value("ivr_queue_exits_total", queue=queue, outcome=o) for o in OUTCOMES)
    unobserved = ivr.value("ivr_queue_exits_unobserved_total", queue=queue)
    waiting = ivr.value("ivr_queue_waiting_calls", queue=queue)
    assert ivr.value("ivr_queue_entered_total", queue=queue) == exits + unobserved + waiting
    assert waiting >= 0 and ivr.value("ivr_queue_oldest_wait_seconds", queue=queue) >= 0


async def test_pbx_restart_with_calls_in_flight(lab: Lab, ivr: Running, phones: list[traffic.Sipp]) -> None:
    phones += [traffic.agent(op, ring_ms=120_000) for op in OPERATORS]
    phones.append(traffic.callers(3, hold_ms=60_000, rate=3, number_prefix="7910"))
    await eventually(lambda: ivr.value("ivr_queue_waiting_calls", queue="first-line") == 3,
                     timeout=15, interval=0.1, what="3 callers waiting")
    await asyncio.to_thread(lab.down)
    await eventually(lambda: not ivr.app.ready, timeout=10, what="ivr noticed the PBX went away")
    await asyncio.to_thread(lab.up)
    back = time.monotonic()
    await eventually(lambda: port_open(AMI_PORT), timeout=10)
    await eventually(lambda: ivr.app.ready, timeout=5, interval=0.01, what="ivr resynced")
    assert time.monotonic() - back < 2.5      # lab.up returns once AMI accepts: ≤ 2 s after that
    assert ivr.app.ami.reconnects == 1
    # The three callers died with the PBX: counted once, as unobserved (never as
    # abandoned: Asterisk's SoftHangupRequest says SHUTDOWN), gauges back at 0.
    assert ivr.value("ivr_queue_entered_total", queue="first-line") == 3
    assert ivr.value("ivr_queue_exits_unobserved_total", queue="first-line") == 3
    assert ivr.value("ivr_queue_exits_total", queue="first-line", outcome="abandoned") == 0
    assert ivr.value("ivr_queue_waiting_calls", queue="first-line") == 0
    assert ivr.value("ivr_journeys_total", outcome="unknown") == 3
    invariants(ivr, "first-line")
    # And it follows new calls as before.
    phones.append(traffic.callers(1, hold_ms=5000, rate=1, number_prefix="7920"))
    await eventually(lambda: ivr.value("ivr_queue_entered_total", queue="first-line") == 4, timeout=15)
    invariants(ivr, "first-line")


class StallingProxy:
    """TCP proxy to AMI that can stop forwarding without closing: a half-open link."""

    def __init__(self) -> None:
        self.stalled = False
        self.connections = 0

    async def __aenter__(self) -> "StallingProxy":
        self.server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        up_r, up_w = await asyncio.open_connection("127.0.0.1", AMI_PORT)
        await asyncio.gather(self._pipe(reader, up_w), self._pipe(up_r, writer), return_exceptions=True)

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        while data := await src.read(65536):
            while self.stalled:
                await asyncio.sleep(0.05)       # hold the bytes: nothing closes, nothing flows
            dst.write(data)
            await dst.drain()


async def test_stalled_ami_link_found_by_ping_and_reconnected(lab: Lab) -> None:
    async with StallingProxy() as proxy:
        config = lab_config(lab, listen_port=free_port())
        config = replace(config, ami=replace(config.ami, port=proxy.port))
        app, runner = await start(config)
        try:
            await eventually(lambda: app.ready, timeout=10)
            proxy.stalled = True
            stalled_at = time.monotonic()
            await eventually(lambda: not app.ready, timeout=12, interval=0.05, what="stall detected")
            detected = time.monotonic() - stalled_at
            assert detected < 10, detected           # ping every 5 s, answer within 3 s
            assert "ping unanswered" in (app.ami.last_error or "")
            proxy.stalled = False
            await eventually(lambda: app.ready, timeout=10, what="reconnected through the proxy")
            assert proxy.connections == 2 and app.ami.reconnects == 1
        finally:
            proxy.stalled = False
            await runner.cleanup()


async def test_ivr_killed_and_restarted_recovers_waiting_callers(lab: Lab, phones: list[traffic.Sipp]) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("IVR_")}

    def launch() -> subprocess.Popen[str]:
        return subprocess.Popen([IVR, "run", "--listen", f"127.0.0.1:{port}"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def metric(name: str) -> float | None:
        for line in http_get(base + "/metrics")[1].splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
        return None

    first = launch()
    try:
        await eventually(lambda: http_get(base + "/readyz")[0] == 200, timeout=15)
        phones += [traffic.agent(op, ring_ms=120_000) for op in OPERATORS]
        phones.append(traffic.callers(2, hold_ms=60_000, rate=2, number_prefix="7930"))
        waiting = 'ivr_queue_waiting_calls{pbx="default",queue="first-line"}'
        await eventually(lambda: metric(waiting) == 2, timeout=15, interval=0.2)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    time.sleep(3)                                    # the callers keep waiting meanwhile
    second = launch()
    try:
        await eventually(lambda: http_get(base + "/readyz")[0] == 200, timeout=15)
        assert metric(waiting) == 2                  # recovered from the resync
        assert metric('ivr_queue_entered_total{pbx="default",queue="first-line"}') == 2
        oldest = metric('ivr_queue_oldest_wait_seconds{pbx="default",queue="first-line"}')
        assert oldest is not None and 3 <= oldest <= 20
    finally:
        second.send_signal(signal.SIGTERM)
        _, err = second.communicate(timeout=10)
    assert second.returncode == 0, err


async def test_wrong_secret_is_one_clear_error_and_retried(lab: Lab) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("IVR_")}
    env.update(IVR_AMI_USERNAME="ivr", IVR_AMI_SECRET="not-the-secret")
    proc = subprocess.Popen([IVR, "run", "--listen", f"127.0.0.1:{port}"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        def login_failed() -> bool:
            status, body = http_get(f"http://127.0.0.1:{port}/readyz")
            return status == 503 and "login failed" in body
        await eventually(login_failed, timeout=15, interval=0.2, what="/readyz says login failed")
        await asyncio.sleep(3)                        # it keeps retrying, and stays up
        assert proc.poll() is None and http_get(f"http://127.0.0.1:{port}/healthz")[0] == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    failures = [line for line in err.splitlines() if "login failed" in line]
    assert len(failures) >= 2 and "Traceback" not in err       # retried, one line each
    assert "not-the-secret" not in err and proc.returncode == 0
