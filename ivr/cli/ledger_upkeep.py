"""`ivr ledger backup` and `ivr ledger purge`: keeping the ledger, and keeping it small.

backup copies the ledger while ivr writes to it (ivr/ledger/backup.py); purge
deletes the calls older than ledger.retention_days and their per-call history,
never the registry (ivr/ledger/retention.py).  Neither creates nor migrates a
ledger: a missing one, or one whose schema is not this ivr's, is refused in one
line (exit 2) with nothing changed.  ivr-backup.service runs both, daily.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
import time
from datetime import datetime, timezone
from pathlib import Path

from ivr import config as cfg
from ivr.cli.common import ledger_config, ledger_epilog, run_with_store
from ivr.cli.grammar import Subparsers, UsageError, config_option, json_option
from ivr.desk.service import Desk
from ivr.ledger import backup
from ivr.ledger.store import Store
from ivr.routing.directory import Directory
from ivr.routing.incidents import Incidents

DAY_US = 86_400 * 1_000_000


def add_parsers(lsub: Subparsers) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    back = lsub.add_parser(
        "backup", help="a consistent copy of the ledger, while ivr runs",
        description=textwrap.fill(
            "Copy the ledger into DIR as ledger-YYYYMMDDTHHMMSSZ.db (SQLite, by its online "
            "backup API) or .pgdump (PostgreSQL, by pg_dump -Fc, found on PATH; restore with "
            "pg_restore), mode 0600, under a temporary name until it is whole.  Prints its path.",
            78),
        epilog=ledger_epilog(), formatter_class=fmt)
    back.add_argument("--out", type=Path, required=True, metavar="DIR",
                      help="the folder to write the backup into (it must exist)")
    config_option(back)
    json_option(back, 'machine-readable: {"path", "database", "bytes", "at"}')
    back.set_defaults(func=_backup)
    purge = lsub.add_parser(
        "purge", help="delete the calls older than ledger.retention_days",
        description=textwrap.fill(
            "Delete the calls entered more than ledger.retention_days ago, their visits and "
            "their per-call history (escalations, route decisions, operator actions, repeats), "
            "in batches.  Never the registry (tickets, complaints, claims and their log), "
            "incidents, nor a call that a ticket not closed or a complaint not answered "
            "names.  Prints the rows per table.", 78),
        epilog=ledger_epilog(read_only=False), formatter_class=fmt)
    config_option(purge)
    purge.add_argument("--dry-run", action="store_true",
                       help="count what would be deleted, delete nothing")
    json_option(purge, 'machine-readable: {"retention_days", "before", "dry_run", '
                       '"tables", "kept_for_desk"}')
    purge.set_defaults(func=_purge)


def _config(args: argparse.Namespace) -> cfg.Config:
    return ledger_config(args)


def _backup(args: argparse.Namespace) -> int:
    config = _config(args)
    try:
        made = backup.backup(config.ledger_url(), args.out)
    except backup.BackupRefused as exc:
        print(f"ivr: {exc}", file=sys.stderr)
        return 2
    except backup.BackupFailed as exc:
        print(f"ivr: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(made.to_json(), indent=2) if args.json else made.path)
    return 0


def _purge(args: argparse.Namespace) -> int:
    def check(config: cfg.Config) -> None:
        if not config.ledger.retention_days:
            raise UsageError("ledger.retention_days is not set: nothing to purge")

    async def work(config: cfg.Config, store: Store) -> int:
        days = config.ledger.retention_days
        before_us = int(time.time() * 1e6) - days * DAY_US
        desk = Desk(store, Directory.empty(), Incidents(), config.desk)
        await desk.load()
        done = await store.purge(before_us, desk.calls_in_hand(), args.dry_run)
        before = datetime.fromtimestamp(before_us / 1e6, timezone.utc) \
            .isoformat(timespec="seconds").replace("+00:00", "Z")
        if args.json:
            print(json.dumps({"retention_days": days, "before": before, "dry_run": args.dry_run,
                              "tables": done.tables, "kept_for_desk": done.kept_for_desk},
                             indent=2))
            return 0
        print(f"{'would delete' if args.dry_run else 'deleted'} the rows of calls entered "
              f"before {before} (ledger.retention_days = {days}):")
        for table, count in done.tables.items():
            print(f"  {table:<18} {count:>10}")
        print(f"kept {done.kept_for_desk} old call(s) that a ticket or complaint in hand names"
              + (" (dry run: nothing deleted)" if args.dry_run else ""))
        return 0
    # A dry run reads only; a purge opens the ledger writable, its schema checked first.
    return run_with_store(args, work, access="read" if args.dry_run else "write", check=check)
