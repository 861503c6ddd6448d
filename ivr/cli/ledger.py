"""`ivr ledger ...`: the call ledger from the shell (`ivr report ...`: cli/report.py).

These commands open the ledger database themselves (ledger.url, or
IVR_LEDGER_URL; on the lab, the lab's), so they work whether ivr runs or not.
Only `migrate` changes the schema; `calls` and `reconcile` read (cli/common.py),
and `reconcile --backfill` writes calls into a ledger already at this schema.
Exit status: 0 done, 1 the database or a file failed, 2 bad input or config,
3 (reconcile) the ledger and queue_log do not agree.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import sys
import textwrap
from datetime import datetime, timezone, tzinfo
from pathlib import Path
from typing import Iterator

from ivr import config as cfg
from ivr.calls.records import to_dict
from ivr.cli.common import STATUS, ledger_config, ledger_epilog, run_with_store
from ivr.cli.grammar import (Subparsers, UsageError, config_option, json_option, pbx_of,
                             pbx_option, period_options)
from ivr.ledger.db import redact
from ivr.ledger.quarantine import Quarantine
from ivr.ledger.quarantine import path_for as quarantine_path
from ivr.ledger.store import Store
from ivr.ledger.text import clean
from ivr.cli import ledger_upkeep, progress
from ivr.reconcile import catchup
from ivr.reconcile.compare import Reconciliation
from ivr.reconcile.files import LogFile, NotQueueLog, open_files
from ivr.reconcile.listing import Listing
from ivr.reconcile.scan import Options, Scan, scan
from ivr.reconcile.sources import FileSource, TableSource
from ivr.reports import billing, service

RECONCILE_STATUS = ("exit status: 0 the ledger and queue_log agree, 1 the database or a file "
                    "failed, 2 bad input or config (a file that is not a queue_log), 3 stints "
                    "missing on either side, or disagreeing.")
KEEP_TEXT = 20                 # items of each list a text report shows
KEEP_JSON = 1000               # ... and --json holds in memory, the rest spilled to a file
QUARANTINE_EPILOG = ("The quarantine is the file beside ledger.spool of --config (or beside a "
                     "SQLite ledger).\n" + STATUS + "\n")


def add_parsers(sub: Subparsers) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    led = sub.add_parser("ledger", help="the call ledger: migrate, calls, reconcile, quarantine, "
                                        "backup, purge",
                         description="The per-call ledger the contractor's bill is built from.",
                         epilog=ledger_epilog(times=True, read_only=False), formatter_class=fmt)
    lsub = led.add_subparsers(dest="ledger_command", required=True, metavar="ACTION")
    mig = lsub.add_parser("migrate", help="create or upgrade the ledger's schema in place",
                          description=textwrap.fill(
                              "Create the ledger's tables, or upgrade them to this ivr's schema "
                              "(`ivr run` does it too at start).  On PostgreSQL under an "
                              "advisory lock: two at once migrate one after the other.", 78),
                          epilog=ledger_epilog(read_only=False), formatter_class=fmt)
    config_option(mig)
    mig.set_defaults(func=_migrate)
    _calls_parser(lsub)
    _reconcile_parser(lsub)
    qua = lsub.add_parser(
        "quarantine", help="the records the ledger database refused",
        description=textwrap.fill(
            "List the records the ledger database refused (bad data, not an absent database), "
            "kept whole with the error in the quarantine file beside ledger.spool.  The database "
            "is not opened.", 78),
        epilog=QUARANTINE_EPILOG, formatter_class=fmt)
    config_option(qua)
    json_option(qua)
    qua.set_defaults(func=_quarantine)
    ledger_upkeep.add_parsers(lsub)    # backup, purge


def _calls_parser(lsub: Subparsers) -> None:
    calls = lsub.add_parser("calls", help="calls in a period, by caller number or account",
                            description=textwrap.fill(
                                "The calls that entered a queue in the period, oldest first, "
                                f"with their visits (at most {service.MAX_CALLS}).", 78),
                            epilog=ledger_epilog(times=True),
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    config_option(calls)
    period_options(calls, required=True)
    who = calls.add_mutually_exclusive_group()
    who.add_argument("--caller", metavar="NUMBER", help="only this caller number")
    who.add_argument("--account", help="only this account")
    pbx_option(calls)
    json_option(calls)
    calls.set_defaults(func=_calls)


def _reconcile_parser(lsub: Subparsers) -> None:
    rec = lsub.add_parser(
        "reconcile", help="check the ledger against Asterisk's queue_log",
        description=textwrap.fill(
            "Match every queue stint of Asterisk's queue_log with the ledger by callid = "
            "uniqueid: matched, missing in the ledger, missing in queue_log, and disagreements "
            "(outcome, or a wait more than queue_log's 1 s apart).  Without --from and --to, "
            "the whole of queue_log.  The ledger is read only, unless --backfill.", 78),
        epilog=ledger_epilog(times=True, status=textwrap.fill(RECONCILE_STATUS, 78)),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    config_option(rec)
    src = rec.add_mutually_exclusive_group(required=True)
    src.add_argument("--queue-log", type=Path, nargs="+", metavar="FILE",
                     help="Asterisk's queue_log file, or several (queue_log queue_log.1 "
                          "queue_log.2.gz ...: read in time order, .gz as they are)")
    src.add_argument("--queue-log-db", metavar="URL",
                     help="a PostgreSQL database Asterisk writes its realtime queue_log into")
    rec.add_argument("--queue-log-table", default="queue_log", metavar="NAME",
                     help="the realtime table (default queue_log)")
    period_options(rec, required=False)
    pbx_option(rec, "the first; uniqueids repeat across PBXs")
    rec.add_argument("--backfill", action="store_true",
                     help="write the calls and stints the ledger lacks, from queue_log, to the "
                          "second (the only way this command writes)")
    json_option(rec)
    rec.set_defaults(func=_reconcile)


def _period(args: argparse.Namespace, config: cfg.Config) -> billing.Period:
    return service.period(config, args.start, args.end, args.tz)


# -- the commands -------------------------------------------------------------

def _migrate(args: argparse.Namespace) -> int:
    async def work(config: cfg.Config, store: Store) -> int:
        revision = await store.migrate()
        print(f"ledger {redact(store.url)}: schema at revision {revision}")
        return 0
    return run_with_store(args, work, access="migrate")


def _calls(args: argparse.Namespace) -> int:
    async def work(config: cfg.Config, store: Store) -> int:
        p = _period(args, config)
        with progress.spinner(args, "calls"):
            found = await service.history(store, p, args.caller, args.account,
                                          pbx_of(args, config))
        if args.json:
            print(json.dumps({"calls": [to_dict(c) for c in found]}, indent=2))
            return 0
        for c in found:
            path = " > ".join(f"{v.queue}:{v.outcome}" for v in c.visits)
            print(f"{_iso(c.entered_us, p.zone)}  {c.uniqueid:<20} {c.caller:<14} "
                  f"{c.account or '-':<10} {c.outcome:<10} {path}")
        cut = len(found) >= service.MAX_CALLS
        print(f"{len(found)} call(s)" + (", the most one listing holds: narrow --from and --to "
                                         "for the rest" if cut else ""))
        return 0
    return run_with_store(args, work, check=lambda config: (_period(args, config),
                                                            pbx_of(args, config)))


def _quarantine(args: argparse.Namespace) -> int:
    config = ledger_config(args)
    held = Quarantine(quarantine_path(config.spool_path()), read_only=True)
    try:
        entries = list(held.entries())
    except OSError as exc:
        print(f"ivr: cannot read {held.path}: {exc.strerror}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({"path": str(held.path), "count": len(entries), "records": entries},
                         indent=2))
        return 0
    for e in entries:
        at = e.get("at_us")
        when = _iso(at, timezone.utc) if isinstance(at, int) else "-"
        # clean(): a refused record may hold a lone surrogate, which no terminal can print.
        print(clean(f"{when}  {_what(e.get('item'))}  {e.get('error')}"))
    print(f"{len(entries)} record(s) quarantined in {held.path}")
    return 0


def _what(item: object) -> str:
    if isinstance(item, dict) and isinstance(item.get("call"), dict):
        return f"call {item['call'].get('pbx')}/{item['call'].get('uniqueid')}"
    if isinstance(item, dict) and "history" in item:
        return f"{item['history']} row"
    return "?"


def _iso(us: int, zone: tzinfo) -> str:
    return datetime.fromtimestamp(us / 1e6, zone).isoformat(timespec="milliseconds")


def _reconcile(args: argparse.Namespace) -> int:
    files: list[LogFile] = []

    def check(config: cfg.Config) -> None:
        pbx_of(args, config)
        _reconcile_window(args, config)
        if args.queue_log:
            try:
                files.extend(open_files(args.queue_log))
            except NotQueueLog as exc:
                raise UsageError(str(exc)) from None

    async def work(config: cfg.Config, store: Store) -> int:
        first = store.first_line
        options = Options(pbx_of(args, config) or config.pbxs[0].name,
                          catchup.overflow_of(config), *_reconcile_window(args, config),
                          backfill=args.backfill, first_line=first,
                          threshold_s=round(next((q.sla_seconds for q in config.queues
                                                  if q.name == first), 30.0)),
                          keep=KEEP_JSON if args.json else KEEP_TEXT, spill=args.json)
        with progress.bar(args, "backfill" if args.backfill else "reconcile") as bar:
            result, rows = await _scan(args, store, files, options, bar)
        try:
            return _report(args, result, rows)
        finally:
            for items in (result.missing_in_ledger, result.missing_in_queue_log,
                          result.disagreements, result.bad_lines):
                if isinstance(items, Listing):
                    items.close()        # the temporary file --json's lists spilled to
    return run_with_store(args, work, access="write" if args.backfill else "read", check=check)


def _report(args: argparse.Namespace, result: Reconciliation, rows: int) -> int:
    if rows and len(result.bad_lines) == rows:
        where = ", ".join(map(str, args.queue_log)) if args.queue_log \
            else f"table {args.queue_log_table}"
        print(f"ivr: {where} is not a queue_log: none of its {rows} line(s) reads as "
              f"one ({result.bad_lines[0].reason}, line {result.bad_lines[0].line})",
              file=sys.stderr)
        return 2
    for damage in result.damaged:
        print(f"ivr: {damage}", file=sys.stderr)
    if args.json:
        result.write_json(sys.stdout)
    else:
        print(result.to_text(KEEP_TEXT) + "\n" + result.summary())
    return 0 if result.agrees else 3


@contextlib.contextmanager
def _few_collections() -> Iterator[None]:
    """A month's read makes millions of short-lived objects and holds a few thousand
    calls at a time; with the collector's default thresholds its full passes over
    every object the imports made took a third of the time (one day of a generated
    1.5M-call month: 6.0 s, against 3.4 s with these).  Restored after."""
    before = gc.get_threshold()
    gc.freeze()                  # what the imports made: never garbage, never scanned again
    gc.set_threshold(100_000, 50, 100)
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()


async def _scan(args: argparse.Namespace, store: Store, files: list[LogFile], options: Options,
                bar: progress.Bar | None) -> tuple[Reconciliation, int]:
    """The reconciliation, and how many rows of queue_log were read."""
    with _few_collections():
        return await _scan_source(args, store, files, options, bar)


async def _scan_source(args: argparse.Namespace, store: Store, files: list[LogFile],
                       options: Options, bar: progress.Bar | None) -> tuple[Reconciliation, int]:
    start, stop = (None, None) if options.whole else (
        (options.from_s or 0) - options.max_stay_s, (options.to_s or 0) + options.max_stay_s)
    if files:
        the_scan = Scan(store, options, bar)
        # Past the period, only the rows of its own calls are worth parsing.
        follow = None if options.whole else (options.to_s or 0, the_scan.stream.holds)
        source = FileSource(files, start, stop, bar, follow)
        return await the_scan.run(source), source.rows
    db = Store(args.queue_log_db, read_only=True)     # Asterisk's table: ivr only reads it
    try:
        table = TableSource(db, args.queue_log_table, start, stop, bar)
        return await scan(store, table, options, bar), table.rows
    finally:
        await db.close()


def _reconcile_window(args: argparse.Namespace,
                      config: cfg.Config) -> tuple[int | None, int | None]:
    """--from and --to in epoch seconds (the period's whole seconds), or None and None."""
    if not (args.start or args.end):
        return None, None
    if not (args.start and args.end):
        raise billing.ReportError("give --from and --to together")
    p = _period(args, config)
    return p.from_us // 1_000_000, -(-p.to_us // 1_000_000)
