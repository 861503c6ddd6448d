"""`ivr ledger backup` and `ivr ledger purge`: keeping the ledger, and keeping it small.

backup copies the ledger while ivr writes to it (ivr/ledger/backup.py); purge
deletes the calls older than ledger.retention_days and their per-call history,
never the registry (ivr/ledger/retention.py).  Neither creates nor migrates a
ledger: a missing one, or one whose schema is not this ivr's, is refused in one
line (exit 2) with nothing changed.  ivr-backup.service runs both, daily.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import textwrap
import time
from datetime import datetime, timezone
from pathlib import Path

from ivr import config as cfg
from ivr.cli.lab import with_lab_ledger
from ivr.desk.service import Desk
from ivr.ledger import backup
from ivr.ledger.db import LedgerError, redact
from ivr.ledger.retention import Purged, head_revision, sqlite_revision
from ivr.ledger.store import Store
from ivr.routing.directory import Directory
from ivr.routing.incidents import Incidents

DAY_US = 86_400 * 1_000_000


class Refused(Exception):
    """Nothing done, one line (exit 2)."""


def add_parsers(lsub: argparse._SubParsersAction[argparse.ArgumentParser], epilog: str) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    back = lsub.add_parser(
        "backup", help="a consistent copy of the ledger, while ivr runs",
        description=textwrap.fill(
            "Copy the ledger into DIR as ledger-YYYYMMDDTHHMMSSZ.db (SQLite, by its online "
            "backup API) or .pgdump (PostgreSQL, by pg_dump -Fc, found on PATH; restore with "
            "pg_restore), mode 0600, under a temporary name until it is whole.  Prints its path.",
            78),
        epilog=epilog, formatter_class=fmt)
    back.add_argument("--out", type=Path, required=True, metavar="DIR",
                      help="the folder to write the backup into (it must exist)")
    back.add_argument("--config", type=Path, help="TOML config file (default: $IVR_CONFIG)")
    back.add_argument("--json", action="store_true",
                      help='machine-readable: {"path", "database", "bytes", "at"}')
    back.set_defaults(func=_backup)
    purge = lsub.add_parser(
        "purge", help="delete the calls older than ledger.retention_days",
        description=textwrap.fill(
            "Delete the calls entered more than ledger.retention_days ago, their visits and "
            "their per-call history (escalations, route decisions, operator actions, repeats), "
            "in batches.  Never the registry (tickets, complaints, claims and their log), "
            "incidents, nor a call that a ticket not closed or a complaint not answered "
            "names.  Prints the rows per table.", 78),
        epilog=epilog, formatter_class=fmt)
    purge.add_argument("--config", type=Path, help="TOML config file (default: $IVR_CONFIG)")
    purge.add_argument("--dry-run", action="store_true",
                       help="count what would be deleted, delete nothing")
    purge.add_argument("--json", action="store_true",
                       help='machine-readable: {"retention_days", "before", "dry_run", '
                            '"tables", "kept_for_desk"}')
    purge.set_defaults(func=_purge)


def _config(args: argparse.Namespace) -> cfg.Config:
    return with_lab_ledger(cfg.load(args.config, os.environ))


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
    config = _config(args)
    days = config.ledger.retention_days
    try:
        if not days:
            raise Refused("ledger.retention_days is not set: nothing to purge")
        url = config.ledger_url()
        before_us = int(time.time() * 1e6) - days * DAY_US
        done = asyncio.run(_purged(config, url, before_us, args.dry_run))
    except (Refused, backup.BackupRefused) as exc:
        print(f"ivr: {exc}", file=sys.stderr)
        return 2
    except LedgerError as exc:
        print(f"ivr: {exc}", file=sys.stderr)
        return 1
    before = datetime.fromtimestamp(before_us / 1e6, timezone.utc).isoformat(timespec="seconds")
    before = before.replace("+00:00", "Z")
    if args.json:
        print(json.dumps({"retention_days": days, "before": before, "dry_run": args.dry_run,
                          "tables": done.tables, "kept_for_desk": done.kept_for_desk}, indent=2))
        return 0
    print(f"{'would delete' if args.dry_run else 'deleted'} the rows of calls entered before "
          f"{before} (ledger.retention_days = {days}):")
    for table, count in done.tables.items():
        print(f"  {table:<18} {count:>10}")
    print(f"kept {done.kept_for_desk} old call(s) that a ticket or complaint in hand names"
          + (" (dry run: nothing deleted)" if args.dry_run else ""))
    return 0


async def _purged(config: cfg.Config, url: str, before_us: int, dry_run: bool) -> Purged:
    path = backup.sqlite_path(url) if url.lower().startswith("sqlite") else None
    if path is not None and not path.is_file():
        raise Refused(f"no ledger at {path}: nothing to purge")
    head = head_revision()
    if path is not None:
        _current(url, sqlite_revision(path), head)      # before the store opens (and writes) it
    store = Store(url, config.routing.first_line)
    try:
        _current(url, await store.revision(), head)
        desk = Desk(store, Directory.empty(), Incidents(), config.desk)
        await desk.load()
        return await store.purge(before_us, desk.calls_in_hand(), dry_run)
    finally:
        await store.close()


def _current(url: str, revision: str | None, head: str) -> None:
    if revision != head:
        raise Refused(f"the ledger {redact(url)} is at schema {revision or 'none'}, not "
                      f"{head}: run `ivr ledger migrate` first")
