"""`ivr demo`: the lab, ivr and SIPp traffic together, with a live summary.

Operators op1 and op2 answer after 4 s; op3 and op4 are away (their phones
ring and nobody answers), so at busy moments callers wait in first-line and
are moved to common at 30 s, where gen1 and gen2 answer after 10 s.  A few
impatient callers hang up after 8 s.  The callers (7901M, 7902M) are in the
lab's directory, so their cards on the console's desks show an account.

Every 45 s a customer (79301, 79401, ... in turn) is moved by the demo, as a
supervisor would on the board, from first-line to common, presses 1 there and
hangs up: the board shows their callback in its place until gen1 or gen2 takes
it, and the lab's customer phone (127.0.0.1:5300) answers the dial after 2 s.

When Debian's prometheus is installed, a Prometheus with the shipped rules
scrapes the demo on 127.0.0.1:9090: point Grafana's provisioned datasource
(grafana/ of `ivr kit`) at it to watch the dashboard move.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import subprocess
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TextIO

from ivr.app import Services
from ivr.calls.service import CallError
from ivr.config import Config
from ivr.config import tokens as roles
from ivr.kit import shipped
from ivr.lab import traffic
from ivr.lab.pbx import Lab
from ivr.calls.records import DEFAULT_PBX
from ivr.ledger.db import LedgerError
from ivr.ledger.store import Store
from ivr.reports import billing, service
from ivr.service import start

LINE = ("{t:>5.0f}s  entered {entered:>3.0f}  answered in 30 s {within:>3.0f}  "
        "moved to common {moved:>3.0f}  abandoned {abandoned:>3.0f}  payable {payable:>3.0f}  "
        "waiting {waiting:>2.0f}  oldest {oldest:>5.1f}s")


def log_to_file(console: TextIO, folder: Path) -> Path | None:
    """On a terminal, ivr's full log goes to a file in `folder` and the terminal keeps
    the demo's own lines and ivr's warnings; the file, or None off a terminal (a pipe,
    CI), where everything stays on `console` as before."""
    if not console.isatty():
        return None
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"demo-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}.log"
    root = logging.getLogger()
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    for handler in list(root.handlers):
        root.removeHandler(handler)
    to_file = logging.FileHandler(path, encoding="utf-8")
    to_file.setFormatter(fmt)
    on_terminal = logging.StreamHandler(console)
    on_terminal.setLevel(logging.WARNING)
    on_terminal.setFormatter(fmt)
    root.addHandler(to_file)
    root.addHandler(on_terminal)
    print(f"ivr demo: ivr's full log goes to {path} (here: the summary and warnings)",
          file=console, flush=True)
    return path


async def demo(config: Config, minutes: float) -> int:
    app, runner = await start(config)
    phones = [traffic.agent("op1", 4000), traffic.agent("op2", 4000),
              traffic.agent("op3", 120_000), traffic.agent("op4", 120_000),
              traffic.agent("gen1", 10_000), traffic.agent("gen2", 10_000),
              traffic.customer(2000, talk_ms=8000)]
    count = int(minutes * 60 / 4)
    calls = [traffic.callers(count, 40_000, rate=0.25, number_prefix="7901"),
             traffic.callers(max(1, count // 6), 8_000, rate=0.04, number_prefix="7902")]
    print(f"ivr demo: metrics at http://{config.listen_host}:{config.listen_port}/metrics")
    print(f"ivr demo: the console at http://{config.listen_host}:{config.listen_port}/console; "
          f"sign in with a token of {config.api.tokens_file}:")
    for line in _tokens(config.api.tokens_file):
        print(f"    {line}")
    prometheus = _prometheus(config)
    started, since = time.monotonic(), time.time()
    try:
        ticks = 0
        while time.monotonic() - started < minutes * 60:
            if ticks % 90 == 0:
                calls.append(traffic.typing_caller("1", type_after_ms=8000, hold_ms=20_000,
                                                   number_prefix=CALLBACKS[ticks // 90 % 5]))
            await asyncio.sleep(0.5)
            await _to_common(app)
            ticks += 1
            if ticks % 10 == 0:
                print(LINE.format(t=time.monotonic() - started, **_summary(app.registry)),
                      flush=True)
    finally:
        for sipp in calls + phones:
            sipp.stop()
        await asyncio.to_thread(Lab().hangup_all)   # the calls SIPp left: they end, and are kept
        await asyncio.sleep(2)
        if prometheus is not None:
            prometheus.terminate()
            prometheus.wait(10)
        await runner.cleanup()                      # the ledger writes what it holds
    await _statement(config, since)
    return 0


CALLBACKS = ("7930", "7940", "7950", "7960", "7970")   # 79301, 79401...: in the directory
_SUPERVISOR = roles.Actor(roles.SUPERVISOR, "demo")


async def _to_common(app: Services) -> None:
    """The demo's callback customers, waiting in first-line, moved to common (the board's
    move), where they press 1."""
    for j in app.tracker.waiting("first-line"):
        if j.caller[:-1] in CALLBACKS:
            try:
                await app.calls.move(_SUPERVISOR, j.uniqueid, "common")
            except CallError as exc:
                print(f"ivr demo: {j.caller} not moved to common: {exc}")


async def _statement(config: Config, since: float) -> None:
    """The contractor's statement for the demo's own calls, from the SQLite ledger."""
    store = Store(config.ledger_url(), config.routing.first_line)
    start, end = _iso(since - 1), _iso(time.time() + 1)
    try:
        p = billing.period(start, end, config.report.timezone)
        statement = await service.statement(store, config, p)
    except LedgerError as exc:
        print(f"ivr demo: no statement: {exc}")
        return
    finally:
        await store.close()
    print(f"\nThe statement for the demo's calls, from the ledger at {config.ledger_url()}\n"
          f"(`ivr report billing --from {start} --to {end}` prints it again).\n"
          "Callers still waiting when the demo stopped were hung up: they count as abandoned.\n")
    print(billing.to_table(statement, with_calls=False))


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="seconds")


RULES = shipped.directory() / "prometheus" / "rules"


def _prometheus(config: Config) -> subprocess.Popen[bytes] | None:
    binary = shutil.which("prometheus")
    if binary is None or not RULES.is_dir():
        print("ivr demo: no prometheus installed: no dashboard data (make setup installs it)")
        return None
    folder = Path(tempfile.mkdtemp(prefix="ivr-demo-prometheus-"))
    (folder / "prometheus.yml").write_text(
        "global: {scrape_interval: 5s, evaluation_interval: 15s}\n"
        f"rule_files: ['{RULES}/*.yml']\n"
        "scrape_configs:\n  - job_name: ivr\n"
        f"    static_configs: [{{targets: ['{config.listen_host}:{config.listen_port}']}}]\n")
    process = subprocess.Popen(
        [binary, f"--config.file={folder / 'prometheus.yml'}", f"--storage.tsdb.path={folder / 'data'}",
         "--web.listen-address=127.0.0.1:9090"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    print("ivr demo: Prometheus with ivr's rules at http://127.0.0.1:9090 "
          "(Grafana: the provisioning of `ivr kit` points there)")
    return process


def _summary(registry: object) -> dict[str, float]:
    def value(name: str, **labels: str) -> float:
        labels = {"pbx": DEFAULT_PBX, **labels}      # the lab is the one PBX
        return registry.get_sample_value(name, labels) or 0.0  # type: ignore[attr-defined]
    q = {"queue": "first-line"}
    return {
        "entered": value("ivr_queue_entered_total", **q),
        "within": value("ivr_queue_answered_within_sla_total", **q),
        "moved": value("ivr_queue_overflow_total", from_queue="first-line", to_queue="common"),
        "abandoned": value("ivr_queue_exits_total", outcome="abandoned", **q),
        "payable": value("ivr_payable_calls_total"),
        "waiting": value("ivr_queue_waiting_calls", **q),
        "oldest": value("ivr_queue_oldest_wait_seconds", **q),
    }


def _tokens(path: str) -> list[str]:
    """ROLE NAME TOKEN lines of the lab's tokens file (the demo's own, on loopback)."""
    try:
        return [line for line in Path(path).read_text().splitlines() if line and line[0] != "#"]
    except OSError:
        return []
