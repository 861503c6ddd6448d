"""The ledger on the lab, against Asterisk's own queue_log: ivr killed and
restarted, backfilling the gap from queue_log by itself, and a PostgreSQL
outage with traffic running.  Counted from queue_log here by the simplest reading, not
by ivr's reconciler, so the two accounts are independent."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from ivr.calls.facts import Exited, JourneyEnded
from ivr.lab import traffic
from ivr.lab.pbx import Lab
from ivr.ledger.store import Store
from ivr.service import start
from tests.helpers import eventually, free_port, http_get
from tests.lab.conftest import Running, lab_config

pytestmark = pytest.mark.lab
IVR = str(Path(sys.executable).with_name("ivr"))
FIRST = "first-line"


def first_line_counts(lab: Lab, since: int, until: int) -> Counter[str]:
    """Per call, how its first stint in first-line ended, straight from queue_log."""
    entered: dict[str, int] = {}
    verdict: dict[str, str] = {}
    for line in lab.queue_log().splitlines():
        t, callid, queue, _agent, event, *data = line.split("|")
        if callid == "NONE":
            continue
        if queue == FIRST and event == "ENTERQUEUE" and callid not in entered and since <= int(t) < until:
            entered[callid] = int(t)
        elif callid in entered and callid not in verdict:
            if queue == FIRST and event == "CONNECT":
                verdict[callid] = "payable" if int(data[0]) <= 30 else "answered_late"
            elif queue == FIRST and event == "EXITWITHTIMEOUT":
                verdict[callid] = "timeout"         # the dialplan's fallback, with ivr down
            elif queue == FIRST and event == "ABANDON":
                verdict[callid] = "abandoned?"      # a hang-up, or ivr's move: the next row tells
            elif event == "ENTERQUEUE" and queue != FIRST:
                verdict[callid] = "timeout"
        elif verdict.get(callid) == "abandoned?" and event == "ENTERQUEUE":
            verdict[callid] = "timeout"             # ABANDON then common: ivr moved it at 30 s
    counts = Counter(v.rstrip("?") for v in verdict.values())
    counts["offered"] = len(entered)
    return counts


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).isoformat()


def run_ivr(*args: str, env: dict[str, str], statuses: tuple[int, ...] = (0,)) -> dict[str, Any]:
    done = subprocess.run([IVR, *args, "--json"] if "billing" not in args else [IVR, *args],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode in statuses, done.stderr
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


def ledger_calls(db: Path) -> int:
    """How many calls the ledger holds (0 before its schema exists)."""
    try:
        with sqlite3.connect(db) as conn:
            return int(conn.execute("SELECT count(*) FROM calls").fetchone()[0])
    except sqlite3.Error:
        return 0


def backfill_state(base: str) -> dict[str, Any]:
    status, body = http_get(base + "/readyz")
    return json.loads(body)["backfill"] if status == 200 else {}


async def test_sigkill_mid_traffic_then_the_restart_backfills_by_itself(
        lab: Lab, phones: list[traffic.Sipp], tmp_path: Path) -> None:
    """ivr is killed mid-traffic and started again, with ledger.queue_log set: the
    ledger's statement equals queue_log's with no manual step.  The gap holds calls
    that began and ended while ivr was down (backfilled at start), callers waiting
    across the restart (recovered and recorded live), and one talking to op1 across
    it, whom the resync does not recover (backfilled once it hangs up)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    db = tmp_path / "ledger.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("IVR_")}
    env["IVR_LEDGER_URL"] = f"sqlite:///{db}"
    config = tmp_path / "ivr.toml"
    config.write_text(f"[ledger]\nqueue_log = {json.dumps(str(lab.queue_log_path))}\n")

    def launch() -> subprocess.Popen[str]:
        return subprocess.Popen([IVR, "run", "--config", str(config), "--listen",
                                 f"127.0.0.1:{port}"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    since = int(time.time())
    first = launch()
    try:
        await eventually(lambda: http_get(base + "/readyz")[0] == 200, timeout=15)
        # op1 answers in 2 s; op2-op4 never do, so the callers op1 cannot take wait.
        phones += [traffic.agent("op1", ring_ms=2000)]
        phones += [traffic.agent(op, ring_ms=120_000) for op in ("op2", "op3", "op4")]
        phones += [traffic.agent(g, ring_ms=2000) for g in ("gen1", "gen2")]
        phones.append(traffic.callers(4, hold_ms=36_000, rate=0.5, number_prefix="7950"))
        phones.append(traffic.callers(3, hold_ms=7_000, rate=0.5, number_prefix="7951"))
        await eventually(lambda: ledger_calls(db) >= 1, timeout=20, what="a call written live")
    finally:
        first.send_signal(signal.SIGKILL)            # callers keep coming, waiting and leaving
        first.wait(10)
    phones.append(traffic.callers(2, hold_ms=6_000, rate=0.5, number_prefix="7952"))
    await asyncio.sleep(8)                           # ivr is down: these two come and go
    second = launch()
    try:
        await eventually(lambda: http_get(base + "/readyz")[0] == 200, timeout=15)
        for sipp in phones[-3:]:
            await asyncio.to_thread(sipp.wait, 90)   # every caller has hung up
        await eventually(lambda: backfill_state(base).get("state") == "done", timeout=60,
                         interval=0.5, what=lambda: f"backfill done: {backfill_state(base)}")
        told = backfill_state(base)
    finally:
        second.send_signal(signal.SIGTERM)
        _, err = second.communicate(timeout=15)
    assert second.returncode == 0, err
    assert "backfill from queue_log (pbx default)" in err, err
    assert "call(s) in progress, looked at again" in err, err  # those across the restart
    until = int(time.time()) + 1
    truth = first_line_counts(lab, since, until)
    assert truth["offered"] == 9 and truth["payable"] >= 1, truth
    assert told["calls"] >= 2 and told["written"] >= told["calls"], told   # the downtime's two
    window = ["--from", iso(since), "--to", iso(until), "--tz", "UTC"]
    statement = run_ivr("report", "billing", *window, "--format", "json", "--calls", env=env)
    totals = statement["totals"]
    for key in ("offered", "payable", "answered_late", "timeout", "abandoned"):
        assert totals[key] == truth[key], (key, totals, truth)        # 0 lost, 0 doubled
    sources = Counter(c["source"] for c in statement["calls"])
    assert sources["queue_log"] >= 2 and sources["live"] >= 1, sources
    # A manual reconcile after the automatic backfill finds nothing missing.
    # Exit 3 is any difference, a disagreeing wait too: what is judged here is the missing.
    after = run_ivr("ledger", "reconcile", "--queue-log", str(lab.queue_log_path), *window,
                    env=env, statuses=(0, 3))
    assert after["missing_in_ledger"] == [] and after["backfilled"] == 0, after


async def test_postgres_down_30s_with_traffic_loses_and_doubles_nothing(
        lab: Lab, phones: list[traffic.Sipp], pg_cluster: Any) -> None:
    url = pg_cluster.createdb(f"outage_{os.getpid()}")
    app, runner = await start(lab_config(lab, ledger_url=url))
    running = Running(app)
    try:
        await eventually(lambda: app.ready and app.ledger.healthy, timeout=15, what="ready")
        phones += [traffic.agent(op, ring_ms=1000) for op in ("op1", "op2", "op3", "op4")]
        # Unknown numbers: greeting and the 3 s account prompt, then first-line.
        phones.append(traffic.callers(40, hold_ms=12_000, rate=1, number_prefix="7960"))
        await eventually(lambda: len(running.of(JourneyEnded)) >= 3, timeout=20)
        await asyncio.to_thread(pg_cluster.stop)
        down = time.monotonic()
        await eventually(lambda: app.ledger.last_error != "", timeout=10, what="outage seen")
        status, body = await asyncio.to_thread(http_get, f"http://127.0.0.1:{app.config.listen_port}/readyz")
        assert status == 200, body                           # routing stays ready
        assert json.loads(body)["ledger"]["last_error"]
        await asyncio.sleep(max(0.0, 30 - (time.monotonic() - down)))
        held = app.ledger.backlog
        await asyncio.to_thread(pg_cluster.start)
        await asyncio.to_thread(phones[-1].wait, 90)
        w = app.ledger
        await eventually(lambda: w.backlog == 0 and w.healthy and
                         len(running.of(JourneyEnded)) >= 40, timeout=30,
                         what=lambda: f"flushed: backlog {w.backlog}, error {w.last_error!r}, "
                                      f"{len(running.of(JourneyEnded))} ended")
        assert held > 0 and app.ledger.write_errors > 0
        ended = [f.uniqueid for f in running.of(JourneyEnded)]
        stored = await app.store.run(Store.calls, 0, 2**62)
        assert sorted(c.uniqueid for c in stored) == sorted(ended) and len(ended) == 40
        visits = sum(len(c.visits) for c in stored)
        assert visits == len(running.of(Exited))          # 0 lost, 0 doubled
        assert running.value("ivr_ledger_backlog_records") == 0
        # An outage is spooled and retried, never taken for bad data.
        assert app.ledger.quarantine.count == 0 and app.ledger.dropped == 0
    finally:
        await runner.cleanup()
