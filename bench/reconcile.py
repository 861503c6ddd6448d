"""Reconcile at a large center's scale: `ivr ledger reconcile` over a generated month.

    python -m bench.reconcile [--calls 1500000] [--days 30] [--data DIR]
    .venv-bench/bin/python bench/reconcile.py          (as bench/run.sh runs it)

A month of queue_log (November 2026, UTC) is generated with --calls calls, in
time order, as Asterisk 22's app_queue writes it: ENTERQUEUE, RINGNOANSWER and
RINGCANCELED, CONNECT then COMPLETECALLER or COMPLETEAGENT, ABANDON, the 30 s
move to common (ABANDON, IVRMOVE, ENTERQUEUE), EXITEMPTY, WITHDRAW,
EXITWITHKEY, and the queue-level PAUSE/UNPAUSE rows.  The matching ledger
(SQLite, migrated) holds the same calls as ivr records them live, to the
millisecond, except the calls of three outages (ivr down, about 1 % of the
month), which the reconcile finds missing and the backfill writes.

Each figure is the real command, `ivr ledger reconcile ... --json`, run in a
child process of its own (the same Python as this one) with its output to a
file; the child reports its wall time and its peak RSS (getrusage ru_maxrss):

day        --from 2026-11-15 --to 2026-11-16 over the month's file (median
           of --day-runs, 3; first, after --rest seconds, 60: this VM slows
           down after sustained CPU)
month      --from 2026-11-01 --to 2026-12-01 over the same file
backfill   the month with --backfill, on a copy of the ledger

Targets: the month's peak RSS within 1.5x of the day's (reconcile and backfill
alike), and the day out of the month's file in 3 s or less.  The figures are
printed whether they are met or not.  --data DIR keeps the generated month
there and reuses it (the default is a temporary folder, removed at the end);
--calls N makes a smaller month for a quick run.  The last lines are
name=value pairs, then the same figures as one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

if __package__ in (None, ""):                 # run as a script (bench/run.sh): the repo root
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.machine import describe  # noqa: E402

S = 1_000_000
FL, COMMON = "first-line", "common"
MONTH_FROM, MONTH_TO = "2026-11-01", "2026-12-01"
DAY_FROM, DAY_TO = "2026-11-15", "2026-11-16"
RSS_RATIO_TARGET = 1.5
DAY_TARGET_S = 3.0
OUTAGES = 3                    # ivr down three times a month ...
OUTAGE_SHARE = 0.01            # ... for about 1 % of it in all


def epoch(day: str) -> int:
    return int(datetime.fromisoformat(day).replace(tzinfo=timezone.utc).timestamp())


# -- the generated month --------------------------------------------------------------

@dataclass
class Stay:
    """One stay in a queue as the generator decides it."""

    queue: str
    entered_s: int
    frac_us: int               # the ledger's sub-second part of the entry
    wait_s: int
    outcome: str               # the ledger's outcome
    end: str                   # queue_log's end row
    member: str = ""


class Month:
    """Deterministic calls over [from_s, to_s): their queue_log rows, and their ledger records."""

    def __init__(self, calls: int, from_s: int, to_s: int, seed: int = 21) -> None:
        self.calls, self.from_s, self.to_s = calls, from_s, to_s
        self.rng = random.Random(seed)
        self.members = [f"PJSIP/op{i}" for i in range(1, 81)]
        span = to_s - from_s
        width = int(span * OUTAGE_SHARE / OUTAGES)
        starts = sorted(self.rng.randrange(from_s, to_s - width) for _ in range(OUTAGES))
        self.outages = [(s, s + width) for s in starts]
        self.missing = 0

    def ivr_down(self, at_s: int) -> bool:
        return any(a <= at_s < b for a, b in self.outages)

    def stays(self, entered_s: int) -> tuple[list[Stay], int]:
        """The call's stays, and when it ended (its last queue_log row)."""
        r = self.rng
        frac = r.randrange(S)
        roll = r.random()
        if roll < 0.62:
            wait = min(29, int(r.expovariate(1 / 9)))
            s = Stay(FL, entered_s, frac, wait, "answered", r.choice(("COMPLETECALLER", "COMPLETEAGENT")),
                     r.choice(self.members))
            return [s], entered_s + wait + r.randrange(30, 900)
        if roll < 0.74:
            wait = min(29, int(r.expovariate(1 / 10)))
            return [Stay(FL, entered_s, frac, wait, "abandoned", "ABANDON")], entered_s + wait
        if roll < 0.92:                                        # moved to common at 30 s
            moved = Stay(FL, entered_s, frac, 30, "timeout", "ABANDON")
            at = entered_s + 30
            wait = r.randrange(1, 120)
            if r.random() < 0.8:
                second = Stay(COMMON, at, frac, wait, "answered", "COMPLETECALLER",
                              r.choice(self.members))
                return [moved, second], at + wait + r.randrange(30, 900)
            return [moved, Stay(COMMON, at, frac, wait, "abandoned", "ABANDON")], at + wait
        if roll < 0.95:
            wait = r.randrange(0, 29)
            return [Stay(FL, entered_s, frac, wait, "empty", "EXITEMPTY")], entered_s + wait
        if roll < 0.97:
            wait = r.randrange(0, 29)
            return [Stay(FL, entered_s, frac, wait, "withdrawn", "WITHDRAW")], entered_s + wait
        wait = r.randrange(2, 29)
        return [Stay(FL, entered_s, frac, wait, "exit_with_key", "EXITWITHKEY")], entered_s + wait

    def rows(self, uid: str, caller: str, stays: list[Stay], ended_s: int
             ) -> Iterator[tuple[int, str]]:
        """queue_log's rows of one call, each (time, line without its time)."""
        r = self.rng
        for n, s in enumerate(stays):
            yield s.entered_s, f"{uid}|{s.queue}|NONE|ENTERQUEUE||{caller}|1"
            left = s.entered_s + s.wait_s
            if s.wait_s > 15:
                yield s.entered_s + 15, f"{uid}|{s.queue}|{r.choice(self.members)}|RINGNOANSWER|15000"
            if s.outcome == "answered":
                yield left, f"{uid}|{s.queue}|{s.member}|CONNECT|{s.wait_s}|{uid}1|{min(s.wait_s, 4)}"
                talk = max(1, ended_s - left)
                yield ended_s, f"{uid}|{s.queue}|{s.member}|{s.end}|{s.wait_s}|{talk}|1"
            elif s.end == "ABANDON":
                yield left, f"{uid}|{s.queue}|{r.choice(self.members)}|RINGCANCELED|{r.randrange(9999)}"
                yield left, f"{uid}|{s.queue}|NONE|ABANDON|1|1|{s.wait_s}"
                if n + 1 < len(stays):
                    yield left, f"{uid}|{s.queue}|NONE|IVRMOVE|timeout|{stays[n + 1].queue}"
            elif s.end == "EXITWITHKEY":
                yield left, f"{uid}|{s.queue}|NONE|EXITWITHKEY|5|1|1|{s.wait_s}"
            elif s.end == "WITHDRAW":
                yield left, f"{uid}|{s.queue}|NONE|WITHDRAW|1|1|{s.wait_s}|"
            else:
                yield left, f"{uid}|{s.queue}|NONE|{s.end}|1|1|{s.wait_s}"

    def record(self, uid: str, caller: str, stays: list[Stay], ended_s: int) -> Any:
        from ivr.calls import judge
        from ivr.calls import records as rec
        r = self.rng
        visits = []
        for n, s in enumerate(stays, start=1):
            entered = s.entered_s * S + s.frac_us
            wait_ms = s.wait_s * 1000 + r.randrange(1000)
            visits.append(rec.VisitRecord(n, s.queue, entered, entered + wait_ms * 1000,
                                          s.outcome, wait_ms, s.member))
        answered = next((v for v in visits if v.outcome == "answered"), None)
        payable = answered is not None and answered.queue == FL and answered.wait_ms is not None \
            and answered.wait_ms <= 30_000
        return rec.CallRecord(
            "default", uid, uid, caller, "", "", visits[0].entered_us, ended_s * S + visits[0].entered_us % S,
            tuple(visits), judge.call_outcome(answered is not None, visits[-1].outcome), payable,
            rec.LIVE, rec.MS, answered.left_us if answered else None,
            answered.queue if answered else "", answered.member if answered else "")

    def generate(self, log_path: Path, ledger_url: str, batch: int = 5000) -> dict[str, int]:
        """Write the queue_log file and the ledger; their counts."""
        from ivr.ledger.store import Store

        async def go() -> dict[str, int]:
            store = Store(ledger_url)
            await store.migrate()
            pending: list[tuple[int, int, str]] = []      # (time, order, line) not written yet
            order = lines = written = 0
            records: list[Any] = []
            step = (self.to_s - self.from_s) / self.calls
            with open(log_path, "w", encoding="utf-8") as out:
                for n in range(self.calls):
                    entered_s = self.from_s + int(n * step)
                    while pending and pending[0][0] < entered_s:
                        at, _, line = heapq.heappop(pending)
                        out.write(f"{at}|{line}\n")
                        lines += 1
                    if n % 2000 == 0:                        # agents pause and come back
                        member = self.rng.choice(self.members)
                        for event in ("PAUSE", "UNPAUSE"):
                            heapq.heappush(pending, (entered_s, order, f"NONE|{FL}|{member}|{event}|"))
                            order += 1
                    uid = f"{entered_s}.{n}"
                    caller = f"+3361{self.rng.randrange(10**7):07d}"
                    stays, ended_s = self.stays(entered_s)
                    for at, line in self.rows(uid, caller, stays, ended_s):
                        heapq.heappush(pending, (at, order, line))
                        order += 1
                    if self.ivr_down(entered_s):
                        self.missing += 1
                    else:
                        records.append(self.record(uid, caller, stays, ended_s))
                    if len(records) >= batch:
                        written += await store.write(records)
                        records = []
                while pending:
                    at, _, line = heapq.heappop(pending)
                    out.write(f"{at}|{line}\n")
                    lines += 1
            written += await store.write(records)
            await store.close()
            return {"calls": self.calls, "lines": lines, "ledger_calls": written,
                    "missing_calls": self.missing}
        return asyncio.run(go())


# -- one measured run, in a child process ------------------------------------------------

def child(argv: list[str], out_path: str) -> None:
    """`ivr ARGV` with stdout to out_path; prints {seconds, status, rss_kib, base_kib}."""
    from bench.machine import vm_rss_kib
    from ivr.cli.main import main
    base = vm_rss_kib()
    saved = sys.stdout
    with open(out_path, "w", encoding="utf-8") as out:
        sys.stdout = out
        started = time.perf_counter()
        try:
            status = main(argv)
        finally:
            seconds = time.perf_counter() - started
            sys.stdout = saved
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": seconds, "status": status, "rss_kib": peak, "base_kib": base}))


def measure(name: str, argv: list[str], data: Path, ledger: Path) -> dict[str, Any]:
    out = data / f"{name}.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("IVR_")}
    env["IVR_LEDGER_URL"] = f"sqlite:///{ledger}"
    env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent)
    done = subprocess.run([sys.executable, "-m", "bench.reconcile", "--child", str(out), "--",
                           *argv], env=env, capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parent.parent)
    if done.returncode != 0:
        sys.exit(f"bench/reconcile.py: {name} failed: {done.stderr.strip()[-2000:]}")
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    try:
        report = json.loads(out.read_text())
    except ValueError:
        sys.exit(f"bench/reconcile.py: {name}: no JSON report (exit {figures['status']}): "
                 f"{done.stderr.strip()[-500:]}")
    figures.update(name=name, matched=report["matched"],
                   missing_in_ledger=len(report["missing_in_ledger"]),
                   missing_in_queue_log=len(report["missing_in_queue_log"]),
                   disagreements=len(report["disagreements"]), open=report["open"],
                   backfilled=report["backfilled"], bad_lines=len(report["bad_lines"]))
    out.unlink()
    return figures


# -- the benchmark ---------------------------------------------------------------------

def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--calls", type=int, default=1_500_000, help="calls in the month (1,500,000)")
    p.add_argument("--data", type=Path, help="keep the generated month here, and reuse it")
    p.add_argument("--seed", type=int, default=21)
    p.add_argument("--day-runs", type=int, default=3, help="runs of the day, median (3)")
    p.add_argument("--rest", type=float, default=60.0,
                   help="seconds of rest before the day's runs (60): the VM slows down "
                        "after sustained CPU, such as the generation or other benchmarks")
    p.add_argument("--only", nargs="+", choices=("month", "day", "backfill"),
                   default=["month", "day", "backfill"], help="the runs to measure")
    p.add_argument("--child", metavar="OUT", help=argparse.SUPPRESS)
    p.add_argument("argv", nargs="*", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args.argv, args.child)
        return 0
    print(describe())
    data = args.data or Path(tempfile.mkdtemp(prefix="ivr-bench-reconcile-"))
    try:
        return run(args, data)
    finally:
        if args.data is None:
            shutil.rmtree(data, ignore_errors=True)


def run(args: argparse.Namespace, data: Path) -> int:
    data.mkdir(parents=True, exist_ok=True)
    log, ledger = data / "queue_log", data / "ledger.db"
    stamp = data / "generated.json"
    wanted = {"calls": args.calls, "seed": args.seed}
    made = json.loads(stamp.read_text()) if stamp.exists() else {}
    if {k: made.get(k) for k in wanted} != wanted or not log.exists() or not ledger.exists():
        for f in (log, ledger, stamp):
            f.unlink(missing_ok=True)
        started = time.perf_counter()
        counts = Month(args.calls, epoch(MONTH_FROM), epoch(MONTH_TO), args.seed).generate(
            log, f"sqlite:///{ledger}")
        made = {**wanted, **counts, "generate_s": round(time.perf_counter() - started, 1)}
        stamp.write_text(json.dumps(made))
    print(f"month: {made['calls']:,} calls, {made['lines']:,} queue_log lines "
          f"({log.stat().st_size / 2**20:,.0f} MiB), ledger {made['ledger_calls']:,} calls "
          f"({ledger.stat().st_size / 2**20:,.0f} MiB), {made['missing_calls']:,} missing from it"
          + (f"; generated in {made['generate_s']} s" if "generate_s" in made else ""))
    base = ["ledger", "reconcile", "--queue-log", str(log), "--json"]
    runs: dict[str, dict[str, Any]] = {}
    if "day" in args.only:
        # First, and rested: this VM slows down after a minute or two of full CPU (a day
        # run just after the month's took 3.2-3.6 s, after an 80 s busy loop 2.7-3.4 s,
        # rested 2.0-2.6 s).  And short enough to run a few times: the median.
        if args.rest:
            print(f"resting {args.rest:.0f} s before the day (--rest)", flush=True)
            time.sleep(args.rest)
        days = sorted((measure("day", [*base, "--from", DAY_FROM, "--to", DAY_TO], data, ledger)
                       for _ in range(args.day_runs)), key=lambda r: r["seconds"])
        runs["day"] = {**days[len(days) // 2], "runs_s": [round(d["seconds"], 2) for d in days]}
    if "month" in args.only:
        runs["month"] = measure("month", [*base, "--from", MONTH_FROM, "--to", MONTH_TO],
                                data, ledger)
    if "backfill" in args.only:
        copy = data / "ledger-backfill.db"
        shutil.copyfile(ledger, copy)
        try:
            runs["backfill"] = measure("backfill", [*base, "--from", MONTH_FROM, "--to",
                                                    MONTH_TO, "--backfill"], data, copy)
        finally:
            copy.unlink(missing_ok=True)
    return report(runs)


def report(runs: dict[str, dict[str, Any]]) -> int:
    print(f"{'run':<10}{'seconds':>9}{'peak RSS MiB':>14}{'start MiB':>11}{'exit':>6}"
          f"{'matched':>11}{'missing':>9}{'backfilled':>12}")
    for name, r in runs.items():
        print(f"{name:<10}{r['seconds']:>9.2f}{r['rss_kib'] / 1024:>14.1f}"
              f"{r['base_kib'] / 1024:>11.1f}{r['status']:>6}{r['matched']:>11,}"
              f"{r['missing_in_ledger']:>9,}{r['backfilled']:>12,}")
    pairs: dict[str, float] = {f"{n}_{k}": round(r[v] / d, 2) for n, r in runs.items()
                               for k, v, d in (("s", "seconds", 1), ("rss_mib", "rss_kib", 1024))}
    day = runs.get("day")
    if day is not None:
        print(f"target: one day out of the month's file in <= {DAY_TARGET_S:.0f} s: "
              f"{day['seconds']:.2f} s (median of {', '.join(map(str, day['runs_s']))}) "
              f"{'met' if day['seconds'] <= DAY_TARGET_S else 'NOT met'}")
        for name in ("month", "backfill"):
            if name in runs:
                ratio = runs[name]["rss_kib"] / day["rss_kib"]
                pairs[f"{name}_rss_vs_day"] = round(ratio, 2)
                print(f"target: {name}'s peak RSS within {RSS_RATIO_TARGET}x of the day's: "
                      f"{ratio:.2f}x {'met' if ratio <= RSS_RATIO_TARGET else 'NOT met'}")
    for k, v in pairs.items():
        print(f"{k}={v}")
    print(json.dumps({"runs": runs, **pairs}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
