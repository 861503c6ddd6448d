"""Reports are bounded: a period longer than report.max_days is refused before any work,
a report past report.deadline_seconds is a 503, /healthz answers while a big report is
drawn, and SIGTERM stops a real `ivr run` in the middle of one.

The big ledger is 300,000 calls in November 2026, written straight into SQLite
(a recursive INSERT: seconds, where the writer would take minutes)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import replace
from pathlib import Path
from typing import Any, AsyncIterator, Iterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from ivr.cli import main as cli
from ivr.app import Services, build
from ivr.config import ApiConfig, Config, LedgerConfig, ReportConfig
from ivr.ledger.store import Store
from ivr.http.app import make_web
from tests.helpers import eventually, free_port

NOVEMBER_US = 1_793_491_200_000_000      # 2026-11-01T00:00:00Z
BIG = 300_000                            # calls, one every 2 s from the 1st of November
TOKEN = "office-anna-token-000000001"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MONTH = "from=2026-11-01&to=2026-12-01"


def big_ledger(path: Path, n: int) -> None:
    async def migrate() -> None:
        store = Store(f"sqlite:///{path}")
        await store.migrate()
        await store.close()
    asyncio.run(migrate())
    db = sqlite3.connect(path)
    db.execute("""WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
        INSERT INTO calls (pbx, uniqueid, linkedid, caller, account, area, entered_us, ended_us,
          outcome, payable, source, precision, answered_us, answered_queue, answered_member,
          fl_entered_us, fl_wait_ms, fl_outcome, fl_member, fl_line)
        SELECT 'default', 'u' || i, 'u' || i, '7910' || (i % 5000), '1001' || (i % 500), 'north',
          :t + i * 2000000, :t + i * 2000000 + 60000000, 'answered', 1, 'live', 'ms',
          :t + i * 2000000 + 4000000, 'first-line', 'op' || (i % 20),
          :t + i * 2000000, 4000, 'answered', 'op' || (i % 20), 'line' || i FROM n"""
               .replace("?", str(n - 1)), {"t": NOVEMBER_US})
    db.commit()
    db.close()


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("big") / "ledger.db"
    big_ledger(path, BIG)
    return path


def tokens_file(folder: Path) -> Path:
    path = folder / "tokens"
    path.write_text(f"office anna {TOKEN}\n")
    path.chmod(0o600)
    return path


@pytest.fixture
async def served(tmp_path: Path, ledger: Path) -> AsyncIterator[tuple[TestClient[Any, Any], Services]]:
    config = Config(api=ApiConfig(tokens_file=str(tokens_file(tmp_path))),
                    ledger=LedgerConfig(url=f"sqlite:///{ledger}"))
    app = build(config)
    async with TestClient(TestServer(make_web(app))) as client:
        yield client, app


@pytest.mark.parametrize("path", ["reports/billing", "reports/fcr", "reports/downtime", "calls"])
@pytest.mark.parametrize("query", [
    "from=1000-01-01&to=3000-01-01",        # what grew ivr to 2.4 GB
    "from=0001-01-01&to=9999-12-31",
    "from=2025-01-01&to=2026-01-03",        # 367 days
    "from=2026-12-01&to=2026-11-01",        # from after to
    "from=0000-01-01&to=2026-01-01",
    "from=2026-01-01&to=10000-01-01",
    "from=1e308&to=2026-01-01",
    "from=2026-01-01&to=" + "9" * 400,
    "from=2026-01-01",
])
async def test_bad_or_too_long_periods_are_a_json_400(served: Any, path: str, query: str) -> None:
    client, _ = served
    resp = await client.get(f"/api/v1/{path}?{query}", headers=AUTH)
    assert resp.status == 400, await resp.text()
    assert "error" in await resp.json()


async def test_a_year_is_allowed_and_max_days_is_config(served: Any) -> None:
    client, app = served
    resp = await client.get("/api/v1/reports/billing?from=2025-01-01&to=2026-01-02", headers=AUTH)
    assert resp.status == 200                    # 366 days, the default bound
    # The services are built once from a config: a week's bound is another ivr's.
    week = build(replace(app.config, report=replace(app.config.report, max_days=7)))
    async with TestClient(TestServer(make_web(week))) as client:
        resp = await client.get("/api/v1/reports/billing?from=2025-01-01&to=2025-01-09",
                                headers=AUTH)
        assert resp.status == 400 and "report.max_days" in (await resp.json())["error"]


async def test_healthz_answers_while_a_big_report_is_drawn(served: Any,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    client, _ = served
    caplog.set_level(logging.INFO, logger="ivr.http.api.reports")
    report = asyncio.create_task(client.get(f"/api/v1/reports/billing?{MONTH}&calls=1",
                                            headers=AUTH))
    await eventually(lambda: "billing report" in caplog.text, timeout=10, what="the report's start")
    health = await client.get("/healthz")
    assert health.status == 200
    assert not report.done(), "the report ended before /healthz: it was not big enough to tell"
    resp = await report
    assert resp.status == 200 and (await resp.json())["totals"]["offered"] == BIG


async def test_a_report_past_its_deadline_is_a_json_503(tmp_path: Path, ledger: Path) -> None:
    config = Config(api=ApiConfig(tokens_file=str(tokens_file(tmp_path))),
                    ledger=LedgerConfig(url=f"sqlite:///{ledger}"),
                    report=ReportConfig(deadline_seconds=0.001))
    app = build(config)
    async with TestClient(TestServer(make_web(app))) as client:
        resp = await client.get(f"/api/v1/reports/fcr?{MONTH}", headers=AUTH)
        body = await resp.json()
        assert resp.status == 503 and "report.deadline_seconds" in body["error"]
        # ivr goes on: the next request is answered.
        assert (await client.get("/healthz")).status == 200


def test_the_cli_refuses_a_too_long_period_in_one_line(capsys: pytest.CaptureFixture[str],
                                                       tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path))
    conf = tmp_path / "ivr.toml"
    conf.write_text(f'[ledger]\nurl = "sqlite:///{tmp_path / "empty.db"}"\n')
    code = cli.main(["report", "billing", "--from", "1000-01-01", "--to", "3000-01-01",
                     "--config", str(conf)])
    err = capsys.readouterr().err
    assert code == 2 and "report.max_days" in err and len(err.strip().splitlines()) == 1


# -- SIGTERM during a long report, on a real `ivr run` ---------------------------

def slow_ledger(path: Path) -> None:
    """A ledger whose calls take the database minutes to read: `calls` is a view that
    spins a while for each of its 400 rows, as a database under load or a huge table
    would.  Its query runs in the driver's thread, where no cancellation reaches it."""
    big_ledger(path, 400)
    db = sqlite3.connect(path)
    db.executescript("""
        ALTER TABLE calls RENAME TO calls_kept;
        CREATE VIEW calls AS SELECT k.* FROM calls_kept k
          WHERE (WITH RECURSIVE spin(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM spin
                                            WHERE i < 300000)
                 SELECT count(*) FROM spin WHERE i <> length(k.uniqueid)) > 0;""")
    db.commit()
    db.close()


@pytest.fixture
def ivr_run(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int]]:
    ledger = tmp_path / "slow.db"
    slow_ledger(ledger)
    port, refused = free_port(), free_port()
    conf = tmp_path / "ivr.toml"
    conf.write_text(f'[ami]\nport = {refused}\nusername = "ivr"\n'
                    f'[api]\ntokens_file = "{tokens_file(tmp_path)}"\n'
                    f'[ledger]\nurl = "sqlite:///{ledger}"\n')
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; from ivr.cli.main import main; sys.exit(main())",
         "run", "--config", str(conf), "--listen", f"127.0.0.1:{port}"],
        stderr=subprocess.PIPE, text=True, cwd=tmp_path,
        env={**os.environ, "STATE_DIRECTORY": str(tmp_path)})
    try:
        yield proc, port
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_sigterm_stops_ivr_during_a_long_report(ivr_run: tuple[subprocess.Popen[str], int]) -> None:
    proc, port = ivr_run
    assert proc.stderr is not None
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stderr or ()), daemon=True)
    reader.start()
    wait_for(lambda: any("ivr listening" in line for line in lines), 30, "ivr listening", lines)
    answered: list[int] = []

    def ask() -> None:
        request = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/reports/fcr?{MONTH}",
                                         headers=AUTH)
        try:
            with urllib.request.urlopen(request, timeout=60) as resp:
                answered.append(resp.status)
        except urllib.error.HTTPError as err:
            answered.append(err.code)
        except OSError:
            answered.append(0)              # the connection closed by the stopping ivr
    asker = threading.Thread(target=ask, daemon=True)
    asker.start()
    wait_for(lambda: any("fcr report" in line for line in lines), 30, "the report's start", lines)
    proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 10
    while proc.poll() is None:
        assert time.monotonic() < deadline, f"ivr still running 10 s after SIGTERM: {lines[-5:]}"
        time.sleep(0.05)
    reader.join(5)
    asker.join(5)
    assert any("stopping" in line for line in lines)
    assert answered != [200], "the report ended before ivr stopped: it was not long enough to tell"


def wait_for(condition: Any, seconds: float, what: str, lines: list[str]) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"{what} not seen within {seconds} s: {lines[-5:]}"
        time.sleep(0.02)


HANGING = """
import asyncio, sys, threading
from aiohttp import web
from ivr import service
from ivr.config import AmiConfig, Config

async def hang(self: web.AppRunner) -> None:
    await asyncio.Event().wait()          # a cleanup that never ends

web.AppRunner.cleanup = hang
service.STOP_SECONDS = 1.0
# A thread that is no daemon and never ends, as a driver's stuck in a query.
threading.Thread(target=threading.Event().wait).start()
config = Config(ami=AmiConfig(port=int(sys.argv[1]), username="ivr"), listen_port=int(sys.argv[2]))
sys.exit(service.run(service.serve(config)))
"""


def test_sigterm_stops_ivr_even_when_its_cleanup_hangs(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", HANGING, str(free_port()), str(port)],
                            stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                            env={**os.environ, "STATE_DIRECTORY": str(tmp_path)})
    try:
        assert proc.stderr is not None
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(proc.stderr or ()), daemon=True)
        reader.start()
        deadline = time.monotonic() + 30
        while b"200" not in _health(port):
            assert proc.poll() is None and time.monotonic() < deadline, lines[-5:]
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        while proc.poll() is None:
            assert time.monotonic() < deadline, "ivr still running 10 s after SIGTERM"
            time.sleep(0.05)
        reader.join(5)
        assert proc.returncode == 1
        assert any("exiting without it" in line for line in lines), lines[-5:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _health(port: int) -> bytes:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
            return str(resp.status).encode()
    except OSError:
        return b""
