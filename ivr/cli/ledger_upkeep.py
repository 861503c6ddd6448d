"""`ivr ledger backup`: keeping the ledger.

backup copies the ledger while ivr writes to it (ivr/ledger/backup.py).  It
neither creates nor migrates a ledger: a missing one is refused in one line
(exit 2) with nothing changed.  ivr-backup.service runs it daily.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import textwrap
from pathlib import Path

from ivr import config as cfg
from ivr.cli.lab import with_lab_ledger
from ivr.ledger import backup


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
