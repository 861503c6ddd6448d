"""Ledger: records/s through Store.write, and the contractor's statement over 1M calls.

    python -m bench.ledger [--records 100000] [--calls 1000000] [--runs 3]
    .venv-bench/bin/python bench/ledger.py            (as bench/run.sh runs it)

On SQLite (a file in a temporary directory) and on PostgreSQL (a throwaway
cluster of its own, tests/pg.py: 127.0.0.1, fsync off, as in the tests):

write      --records generated CallRecords (1-3 visits each, mixed outcomes:
           answered in first-line, abandoned, timed out to common and
           answered or abandoned there, transferred on, withdrawn,
           unobserved) written with Store.write in batches of --batch
           (2000, as ivr's writer does), each run into a fresh, migrated database.  Median of
           --runs.  Target >= 20,000 records/s.
statement  --calls generated calls of one month (2026-11, Europe/Paris) are
           loaded with Store.write in batches of --load-batch (the load is
           reported, not the measured part), then ANALYZE.  Timed, first
           run and median of --runs: the statement as `ivr report billing`
           and the API serve it (service.statement: the database counts by
           day, operator and category and hashes the call lines), target
           <= 2 s; and the statement with its call lines (--calls):
           Store.billing_calls (fetch) plus billing.build (build).  The two
           must agree, digest included, or the bench fails.

The last lines are name=value pairs, then the same figures as one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import json
import os
import pstats
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):                 # run as a script (bench/run.sh): the repo root
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, select, text  # noqa: E402

from bench.machine import describe  # noqa: E402
from ivr.calls import records as rec  # noqa: E402
from ivr.ledger import schema as t  # noqa: E402
from ivr.ledger.store import Store  # noqa: E402
from tests.pg import PgCluster, missing  # noqa: E402

FL, COMMON, SECOND = "first-line", "common", "second-line"
WRITE_TARGET = 20_000          # records/s
STATEMENT_TARGET = 2.0         # seconds
MONTH = ("2026-11-01", "2026-12-01", "Europe/Paris")
S = 1_000_000


# -- generated calls ----------------------------------------------------------------

class Calls:
    """Deterministic, realistic CallRecords, spread over [from_us, to_us)."""

    def __init__(self, from_us: int, to_us: int, seed: int = 7) -> None:
        self.from_us, self.to_us = from_us, to_us
        self.rng = random.Random(seed)
        self.members = [f"op{i}" for i in range(1, 41)]
        self.accounts = [f"A{i:04d}" for i in range(300)]
        self.areas = ["north", "south", "east", "west", "centre"]
        self.n = 0

    def batches(self, total: int, size: int) -> Iterator[list[rec.CallRecord]]:
        step = (self.to_us - self.from_us) / total      # entries in time order, as they come
        for start in range(0, total, size):
            yield [self.one(self.from_us + int((start + i) * step))
                   for i in range(min(size, total - start))]

    def one(self, entered: int) -> rec.CallRecord:
        r = self.rng
        self.n += 1
        uid = f"{entered // S}.{self.n}"
        pbx = "pbx1" if self.n % 4 else "pbx2"
        roll = r.random()
        visits: list[rec.VisitRecord] = []
        payable = False
        source, precision = rec.LIVE, rec.MS
        if roll < 0.62:                                  # answered in first-line in time
            wait = int(r.expovariate(1 / 8000)) % 30_000
            visits.append(self._visit(1, FL, entered, wait, "answered", r.choice(self.members)))
            payable = True
        elif roll < 0.64:                                # answered after the limit (late move)
            wait = r.randrange(30_000, 34_000)
            visits.append(self._visit(1, FL, entered, wait, "answered", r.choice(self.members)))
        elif roll < 0.76:                                # hung up in first-line
            wait = int(r.expovariate(1 / 9000)) % 30_000
            visits.append(self._visit(1, FL, entered, wait, "abandoned"))
        elif roll < 0.94:                                # 30 s, moved to common
            visits.append(self._visit(1, FL, entered, 30_000, "timeout"))
            at = entered + 30 * S + r.randrange(50_000)
            wait = r.randrange(1000, 120_000)
            if r.random() < 0.8:
                visits.append(self._visit(2, COMMON, at, wait, "answered", r.choice(self.members)))
                if r.random() < 0.1:                     # and transferred on
                    visits[-1] = self._visit(2, COMMON, at, wait, "transferred")
                    at2 = at + wait * 1000 + 200_000
                    visits.append(self._visit(3, SECOND, at2, r.randrange(1000, 60_000),
                                              "answered", r.choice(self.members)))
            else:
                visits.append(self._visit(2, COMMON, at, wait, "abandoned"))
        elif roll < 0.97:                                # withdrawn or empty
            visits.append(self._visit(1, FL, entered, r.randrange(0, 30_000),
                                      r.choice(("withdrawn", "empty"))))
        else:                                            # ivr was away: recovered, unobserved
            visits.append(rec.VisitRecord(1, FL, entered, None, rec.UNOBSERVED, None, ""))
            source, precision = rec.RESYNC, rec.SECONDS
        answered = next((v for v in visits if v.outcome == "answered"), None)
        last = visits[-1]
        ended = (last.left_us or last.entered_us) + r.randrange(10, 400) * S
        outcome = ("answered" if answered else "abandoned" if last.outcome == "abandoned"
                   else "unknown" if last.outcome == rec.UNOBSERVED else "unanswered")
        return rec.CallRecord(
            pbx, uid, uid, f"+3361{r.randrange(10**7):07d}", r.choice(self.accounts),
            r.choice(self.areas), entered, ended, tuple(visits), outcome, payable, source,
            precision, answered.left_us if answered else None,
            answered.queue if answered else "", answered.member if answered else "")

    @staticmethod
    def _visit(seq: int, queue: str, entered: int, wait_ms: int, outcome: str,
               member: str = "") -> rec.VisitRecord:
        return rec.VisitRecord(seq, queue, entered, entered + wait_ms * 1000, outcome, wait_ms,
                               member)


# -- databases ----------------------------------------------------------------------

class Databases:
    def __init__(self, which: Sequence[str]) -> None:
        self.which = list(which)
        self.tmp = Path(tempfile.mkdtemp(prefix="ivr-bench-ledger-"))
        self.pg: PgCluster | None = None
        self.n = 0
        if "postgresql" in self.which:
            why = missing()
            if why:
                sys.exit(f"bench/ledger.py: {why} (or pass --only sqlite)")
            self.pg = PgCluster()
            started = time.perf_counter()
            self.pg.start()
            self.pg_start_s = time.perf_counter() - started

    def fresh(self, kind: str) -> str:
        self.n += 1
        if kind == "sqlite":
            return f"sqlite:///{self.tmp}/ledger{self.n}.db"
        assert self.pg is not None
        return self.pg.createdb(f"bench{self.n}")

    def close(self) -> None:
        if self.pg is not None:
            self.pg.cleanup()
        for f in self.tmp.iterdir():
            f.unlink()
        self.tmp.rmdir()


async def table_count(store: Store, table: str) -> int:
    async with store.engine.connect() as conn:
        return int((await conn.execute(
            select(func.count()).select_from(t.metadata.tables[table]))).scalar_one())


# -- write ----------------------------------------------------------------------------

async def bench_write(dbs: Databases, kind: str, records: list[list[rec.CallRecord]],
                      runs: int) -> dict[str, Any]:
    total = sum(map(len, records))
    visits = sum(len(r.visits) for batch in records for r in batch)
    rates: list[float] = []
    for _ in range(runs):
        store = Store(dbs.fresh(kind))
        await store.migrate()
        gc.collect()
        started = time.perf_counter()
        for batch in records:
            await store.write(batch)
        seconds = time.perf_counter() - started
        calls, stored_visits = await table_count(store, "calls"), await table_count(store, "visits")
        await store.close()
        if (calls, stored_visits) != (total, visits):
            sys.exit(f"bench/ledger.py: {kind} holds {calls} calls and {stored_visits} visits, "
                     f"not {total} and {visits}")
        rates.append(total / seconds)
    return {"records": total, "visits": visits, "rates": rates,
            "median": statistics.median(rates)}


# -- statement --------------------------------------------------------------------------

async def load(store: Store, kind: str, calls: int, batch: int,
               period: Any) -> tuple[float, float]:
    gen = Calls(period.from_us, period.to_us, seed=11)
    loaded = 0.0                                  # Store.write's time, not the generator's
    for records in gen.batches(calls, batch):
        started = time.perf_counter()
        await store.write(records)
        loaded += time.perf_counter() - started
    started = time.perf_counter()
    async with store.engine.begin() as conn:
        await conn.execute(text("ANALYZE"))
    return loaded, time.perf_counter() - started


async def bench_statement(dbs: Databases, kind: str, calls: int, load_batch: int, runs: int,
                          profile: bool) -> dict[str, Any]:
    """The statement as ivr serves it (the database counts and hashes: service.statement),
    and with its call lines (every call fetched and judged in Python: --calls)."""
    from ivr.config import Config
    from ivr.reports import billing, service
    period = billing.period(*MONTH)
    store = Store(dbs.fresh(kind))
    await store.migrate()
    loaded_s, analyze_s = await load(store, kind, calls, load_batch, period)
    counted: list[float] = []
    fetches: list[float] = []
    builds: list[float] = []
    offered = 0
    for _ in range(runs):
        gc.collect()
        started = time.perf_counter()
        served = await service.statement(store, Config(), period)   # type: ignore[arg-type]
        counted.append(time.perf_counter() - started)
        gc.collect()
        started = time.perf_counter()
        got = await store.billing_calls(period.from_us, period.to_us)
        fetched = time.perf_counter() - started
        statement = billing.build(got, period)
        builds.append(time.perf_counter() - started - fetched)
        fetches.append(fetched)
        if (served.digest, served.totals, served.days) != (statement.digest, statement.totals,
                                                             statement.days):
            sys.exit(f"bench/ledger.py: {kind}: the counted statement differs from the built one")
        offered = statement.totals.offered
        del got, statement
    if offered != calls:
        sys.exit(f"bench/ledger.py: {kind} statement offered {offered:,}, not {calls:,}")
    profiled = ""
    if profile:
        profiled = await profile_statement(store, period)
    await store.close()
    totals = [f + b for f, b in zip(fetches, builds)]
    return {"calls": calls, "load_s": loaded_s, "load_rate": calls / loaded_s,
            "analyze_s": analyze_s, "counted": counted, "fetch": fetches, "build": builds,
            "total": totals, "median_counted": statistics.median(counted),
            "median_total": statistics.median(totals),
            "median_fetch": statistics.median(fetches), "median_build": statistics.median(builds),
            "profile": profiled}


async def profile_statement(store: Store, period: Any) -> str:
    from ivr.reports import billing
    got = await store.billing_calls(period.from_us, period.to_us)
    prof = cProfile.Profile()
    prof.runcall(billing.build, got, period)
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(12)
    return out.getvalue()


# -- the report -----------------------------------------------------------------------

def ok(good: bool) -> str:
    return "ok" if good else "MISSED"


async def run(args: argparse.Namespace) -> None:
    kinds = [k for k in ("sqlite", "postgresql") if k in args.only.split(",")]
    dbs = Databases(kinds)
    try:
        if dbs.pg is not None:
            print(f"ledger: PostgreSQL cluster {dbs.pg.bin} on 127.0.0.1:{dbs.pg.port} "
                  f"(fsync off) started in {dbs.pg_start_s:.2f} s", flush=True)
        from ivr.reports import billing
        p = billing.period(*MONTH)
        records = list(Calls(p.from_us, p.to_us).batches(args.records, args.batch))
        writes = {}
        for kind in kinds:
            writes[kind] = await bench_write(dbs, kind, records, args.runs)
            w = writes[kind]
            print(f"  write {kind:<10} {w['median']:>9,.0f} records/s (runs: "
                  + ", ".join(f"{x:,.0f}" for x in w["rates"]) + ")", flush=True)
        del records
        statements = {}
        for kind in kinds:
            statements[kind] = await bench_statement(dbs, kind, args.calls, args.load_batch,
                                                     args.runs, args.profile)
            s = statements[kind]
            print(f"  statement {kind:<10} {s['median_counted']:.2f} s counted by the database; "
                  f"with call lines {s['median_total']:.2f} s (fetch {s['median_fetch']:.2f} + "
                  f"build {s['median_build']:.2f}); loaded {s['calls']:,} in {s['load_s']:.1f} s",
                  flush=True)
    finally:
        dbs.close()

    w0 = next(iter(writes.values()))
    print(f"\nledger: Store.write, {w0['records']:,} records ({w0['visits']:,} visits) in "
          f"batches of {args.batch:,}, fresh database each run; median of {args.runs}")
    for kind, w in writes.items():
        print(f"  {kind:<10} {w['median']:>10,.0f} records/s  ({min(w['rates']):,.0f}-"
              f"{max(w['rates']):,.0f})  target >= {WRITE_TARGET:,}: "
              f"{ok(w['median'] >= WRITE_TARGET)}")
    print(f"\nledger: statement of {MONTH[0]}..{MONTH[1]} ({MONTH[2]}) over {args.calls:,} calls;"
          f" first run / median of {args.runs} (seconds). counted: service.statement (GROUP BY"
          f" and digest in the database); with lines: Store.billing_calls + billing.build")
    print(f"  {'':<10} {'counted':>12} {'fetch':>12} {'build':>12} {'with lines':>12}   "
          f"target <= {STATEMENT_TARGET:g} s   load (not timed)")
    for kind, s in statements.items():
        def pair(key: str) -> str:
            return f"{s[key][0]:.2f}/{statistics.median(s[key]):.2f}"
        print(f"  {kind:<10} {pair('counted'):>12} {pair('fetch'):>12} {pair('build'):>12} "
              f"{pair('total'):>12}   {ok(s['median_counted'] <= STATEMENT_TARGET):<19}"
              f"{s['load_s']:.1f} s ({s['load_rate']:,.0f} calls/s; ANALYZE "
              f"{s['analyze_s']:.1f} s)")
    for kind, s in statements.items():
        if s["profile"]:
            print(f"\ncProfile of billing.build on {kind}:\n{s['profile']}")
    print(describe())
    figures: dict[str, Any] = {}
    for kind, w in writes.items():
        figures[f"ledger_write_{kind}_records_per_s"] = round(w["median"])
    for kind, s in statements.items():
        figures[f"ledger_statement_{kind}_s"] = round(s["median_counted"], 3)
        figures[f"ledger_statement_with_calls_{kind}_s"] = round(s["median_total"], 3)
        figures[f"ledger_statement_{kind}_fetch_s"] = round(s["median_fetch"], 3)
        figures[f"ledger_statement_{kind}_build_s"] = round(s["median_build"], 3)
        figures[f"ledger_load_{kind}_calls_per_s"] = round(s["load_rate"])
    for name, value in figures.items():
        print(f"{name}={value}")
    print(json.dumps({"bench": "ledger", "records": args.records, "calls": args.calls,
                      **figures}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--records", type=int, default=100_000, help="records written (100000)")
    ap.add_argument("--batch", type=int, default=2000, help="records per Store.write (2000, as the writer)")
    ap.add_argument("--calls", type=int, default=1_000_000,
                    help="calls in the statement's month (1000000)")
    ap.add_argument("--load-batch", type=int, default=20_000,
                    help="records per Store.write when loading them (20000)")
    ap.add_argument("--runs", type=int, default=3, help="timed runs of each (3)")
    ap.add_argument("--only", default="sqlite,postgresql",
                    help="databases, comma-separated (sqlite,postgresql)")
    ap.add_argument("--profile", action="store_true", help="also cProfile billing.build")
    args = ap.parse_args()
    os.environ.setdefault("PGTZ", "UTC")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
