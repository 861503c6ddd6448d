"""`ivr ledger ...` and `ivr report ...`: the call ledger from the shell.

These commands open the ledger database themselves (ledger.url, or
IVR_LEDGER_URL; on the lab, the lab's), so they work whether ivr runs or not.
Exit status: 0 done, 1 the database or a file failed, 2 bad input or config.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import textwrap
import time
from dataclasses import replace
from datetime import datetime, timezone, tzinfo
from pathlib import Path
from typing import Awaitable, Callable

from ivr import config as cfg
from ivr.cli import ledger_upkeep
from ivr.cli.lab import with_lab_ledger
from ivr.reconcile import catchup
from ivr.reconcile.backfill import backfill
from ivr.reconcile.compare import reconcile
from ivr.reconcile.read import QueueLog
from ivr.ledger.quarantine import Quarantine
from ivr.ledger.quarantine import path_for as quarantine_path
from ivr.ledger.text import clean
from ivr.calls.records import to_dict
from ivr.ledger.db import LedgerError, redact
from ivr.ledger.store import Store
from ivr.reports import billing, service

LEDGER_EPILOG = """\
The database is ledger.url in --config (or IVR_LEDGER_URL): sqlite:///PATH
(the default: ledger.db in ivr's state directory; on the lab, in the lab
folder) or postgresql://USER@HOST:PORT/DB.  Times (--from, --to) are dates
(2026-11-01) or ISO 8601 instants, in --tz (default report.timezone, UTC).
exit status: 0 done, 1 the database or a file failed, 2 bad input or config.
"""


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    _ledger_parser(sub)
    _report_parser(sub)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help="TOML config file (default: $IVR_CONFIG)")


def _period_args(p: argparse.ArgumentParser, required: bool) -> None:
    p.add_argument("--from", dest="start", required=required, metavar="T",
                   help="start of the period, inclusive (date or ISO 8601)")
    p.add_argument("--to", dest="end", required=required, metavar="T",
                   help="end of the period, exclusive")
    p.add_argument("--tz", help="time zone of the dates (default report.timezone)")


def _ledger_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    led = sub.add_parser("ledger",
                         help="the call ledger: migrate, calls, reconcile, backup, purge",
                         description="The per-call ledger the contractor's bill is built from.",
                         epilog=LEDGER_EPILOG, formatter_class=fmt)
    lsub = led.add_subparsers(dest="ledger_command", required=True, metavar="ACTION")
    mig = lsub.add_parser("migrate", help="create or upgrade the ledger's schema in place",
                          epilog=LEDGER_EPILOG, formatter_class=fmt)
    _common(mig)
    mig.set_defaults(func=_migrate)
    calls = lsub.add_parser("calls", help="calls in a period, by caller number or account",
                            epilog=LEDGER_EPILOG, formatter_class=fmt)
    _common(calls)
    _period_args(calls, required=True)
    who = calls.add_mutually_exclusive_group()
    who.add_argument("--caller", metavar="NUMBER", help="only this caller number")
    who.add_argument("--account", help="only this account")
    calls.add_argument("--json", action="store_true", help="machine-readable")
    calls.set_defaults(func=_calls)
    rec = lsub.add_parser(
        "reconcile", help="check the ledger against Asterisk's queue_log",
        description=textwrap.fill(
            "Match every queue stint of Asterisk's queue_log with the ledger by callid = "
            "uniqueid: matched, missing in the ledger, missing in queue_log, and disagreements "
            "(outcome, or a wait more than queue_log's 1 s apart).  Without --from and --to, "
            "the whole of queue_log.", 78),
        epilog=LEDGER_EPILOG, formatter_class=fmt)
    _common(rec)
    src = rec.add_mutually_exclusive_group(required=True)
    src.add_argument("--queue-log", type=Path, metavar="FILE", help="Asterisk's queue_log file")
    src.add_argument("--queue-log-db", metavar="URL",
                     help="a PostgreSQL database Asterisk writes its realtime queue_log into")
    rec.add_argument("--queue-log-table", default="queue_log", metavar="NAME",
                     help="the realtime table (default queue_log)")
    _period_args(rec, required=False)
    rec.add_argument("--pbx", metavar="NAME",
                     help="the PBX whose queue_log this is, with several [pbx.NAME] tables "
                          "(default: the first; uniqueids repeat across PBXs)")
    rec.add_argument("--backfill", action="store_true",
                     help="write the calls and stints the ledger lacks, from queue_log, to the second")
    rec.add_argument("--json", action="store_true", help="machine-readable")
    rec.set_defaults(func=_reconcile)
    qua = lsub.add_parser(
        "quarantine", help="the records the ledger database refused",
        description=textwrap.fill(
            "List the records the ledger database refused (bad data, not an absent database), "
            "kept whole with the error in the quarantine file beside ledger.spool.  The database "
            "is not opened.", 78),
        epilog=LEDGER_EPILOG, formatter_class=fmt)
    _common(qua)
    qua.add_argument("--json", action="store_true", help="machine-readable")
    qua.set_defaults(func=_quarantine)
    ledger_upkeep.add_parsers(lsub, LEDGER_EPILOG)    # backup, purge


def _report_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    rep = sub.add_parser("report", help="reports from the ledger: billing, downtime")
    rsub = rep.add_subparsers(dest="report_command", required=True, metavar="REPORT")
    bill = rsub.add_parser(
        "billing", help="the contractor's monthly statement",
        description=textwrap.fill(
            "Offered, payable (answered in first-line within its threshold), answered late, "
            "moved to common, abandoned and short abandons: in total, per day and per "
            "operator, with a SHA-256 digest over the call lines.", 78),
        epilog=LEDGER_EPILOG, formatter_class=fmt)
    _common(bill)
    _period_args(bill, required=True)
    bill.add_argument("--format", choices=("table", "csv", "json"), default="table")
    bill.add_argument("--calls", action="store_true", help="list every first-line call")
    bill.set_defaults(func=_billing)
    down = rsub.add_parser(
        "downtime", help="per account, the downtime of known incidents, for billing",
        description=textwrap.fill(
            "For every account of the directory (routing.directory): the time known incidents "
            "covered its area in the period (overlaps counted once, clipped to the period) and "
            "those incidents, for the provider's billing system.  Time, not money.", 78),
        epilog=LEDGER_EPILOG, formatter_class=fmt)
    _common(down)
    _period_args(down, required=True)
    down.add_argument("--format", choices=("csv", "json"), default="csv")
    down.set_defaults(func=_downtime)
    first = rsub.add_parser(
        "fcr", help="first-contact resolution per queue and operator",
        description=textwrap.fill(
            "For the calls answered in the period: how many were resolved at first contact, "
            "that is with no call from the same number or account within 24 h (and within 7 "
            "days) of their end; per queue and per operator who answered.", 78),
        epilog=LEDGER_EPILOG, formatter_class=fmt)
    _common(first)
    _period_args(first, required=True)
    first.set_defaults(func=_fcr)


# -- config -------------------------------------------------------------------

def ledger_config(args: argparse.Namespace) -> cfg.Config:
    """The config, with the lab's ledger when neither AMI nor the ledger is configured."""
    return with_lab_ledger(cfg.load(getattr(args, "config", None), os.environ))


def run_with_store(args: argparse.Namespace,
         work: Callable[[cfg.Config, Store], Awaitable[int]]) -> int:
    config = ledger_config(args)
    store = Store(config.ledger_url(), config.routing.first_line)

    async def go() -> int:
        try:
            return await work(config, store)
        finally:
            await store.close()
    try:
        return asyncio.run(go())
    except LedgerError as exc:
        print(f"ivr: {exc}", file=sys.stderr)
        return 1


def _period(args: argparse.Namespace, config: cfg.Config) -> billing.Period:
    return service.period(config, args.start, args.end, args.tz)


# -- the commands -------------------------------------------------------------

def _migrate(args: argparse.Namespace) -> int:
    async def work(config: cfg.Config, store: Store) -> int:
        revision = await store.migrate()
        print(f"ledger {redact(store.url)}: schema at revision {revision}")
        return 0
    return run_with_store(args, work)


def _calls(args: argparse.Namespace) -> int:
    async def work(config: cfg.Config, store: Store) -> int:
        p = _period(args, config)
        await store.migrate()
        found = await service.history(store, p, args.caller, args.account)
        if args.json:
            print(json.dumps({"calls": [to_dict(c) for c in found]}, indent=2))
        else:
            for c in found:
                path = " > ".join(f"{v.queue}:{v.outcome}" for v in c.visits)
                print(f"{_iso(c.entered_us, p.zone)}  {c.uniqueid:<20} {c.caller:<14} "
                      f"{c.account or '-':<10} {c.outcome:<10} {path}")
            print(f"{len(found)} call(s)")
        return 0
    return run_with_store(args, work)


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
    async def work(config: cfg.Config, store: Store) -> int:
        overflow = catchup.overflow_of(config)
        log = await _read_queue_log(args, overflow)
        from_s, to_s = _reconcile_window(args, config, log)
        await store.migrate()
        calls = await store.calls(from_s * 1_000_000 - 86_400_000_000, to_s * 1_000_000)
        names = [p.name for p in config.pbxs]
        pbx = args.pbx or names[0]
        if pbx not in names:
            raise cfg.ConfigError(f"--pbx {pbx}: not a PBX of the config (known: {', '.join(names)})")
        result = reconcile(log, calls, from_s, to_s, overflow, pbx)
        if args.backfill:
            first = store.first_line
            fill = backfill(result, log, calls, pbx, first,
                            round(next((q.sla_seconds for q in config.queues
                                        if q.name == first), 30.0)))
            await store.backfill(fill.calls, fill.visits)
            result = replace(result, backfilled=fill.count)
        print(json.dumps(result.to_json(), indent=2) if args.json else result.to_text())
        return 0
    return run_with_store(args, work)


async def _read_queue_log(args: argparse.Namespace, overflow: dict[str, int]) -> QueueLog:
    # The same reader as ivr's start-up backfill.
    return await catchup.read_queue_log(
        catchup.Source(args.queue_log, args.queue_log_db or "", args.queue_log_table), overflow)


def _reconcile_window(args: argparse.Namespace, config: cfg.Config,
                      log: QueueLog) -> tuple[int, int]:
    if args.start or args.end:
        if not (args.start and args.end):
            raise billing.ReportError("give --from and --to together")
        p = _period(args, config)
        return p.from_us // 1_000_000, -(-p.to_us // 1_000_000)
    entries = [s.entered_s for s in log.stints()]
    return (min(entries), max(entries) + 1) if entries else (0, 0)


def _billing(args: argparse.Namespace) -> int:
    async def work(config: cfg.Config, store: Store) -> int:
        p = _period(args, config)
        await store.migrate()
        statement = await service.statement(store, config, p, args.calls)
        if args.format == "json":
            print(json.dumps(billing.to_json(statement, args.calls), indent=2))
        elif args.format == "csv":
            sys.stdout.write(billing.to_csv(statement, args.calls))
        else:
            print(billing.to_table(statement, args.calls))
        return 0
    return run_with_store(args, work)


def _downtime(args: argparse.Namespace) -> int:
    from ivr.routing.directory import Directory
    from ivr.reports import downtime

    async def work(config: cfg.Config, store: Store) -> int:
        p = _period(args, config)
        if not config.routing.directory:
            raise billing.ReportError("no routing.directory: the report needs the accounts")
        accounts = Directory.load(Path(config.routing.directory)).accounts()
        await store.migrate()
        rows = await service.downtimes(store, accounts, p.from_us, p.to_us,
                                       round(time.time() * 1e6))
        if args.format == "json":
            print(json.dumps(downtime.to_json(accounts, rows, p.from_us, p.to_us), indent=2))
        else:
            sys.stdout.write(downtime.to_csv(accounts, rows))
        return 0
    return run_with_store(args, work)


def _fcr(args: argparse.Namespace) -> int:
    async def work(config: cfg.Config, store: Store) -> int:
        p = _period(args, config)
        await store.migrate()
        print(json.dumps(await service.first_contact(store, p), indent=2))
        return 0
    return run_with_store(args, work)
