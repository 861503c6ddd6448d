"""The ledger as the commands that open it (`ivr ledger`, `ivr report`, `ivr
registry`) need it, and the epilogs that say so.  (Their options: cli/grammar.py.)

Reading commands open it read-only and check its schema first
(Store.require_schema), so a typo in a path, or an ivr newer than the database,
is one line and exit 2 and nothing is created; only `ivr ledger migrate` (and
`ivr run`) migrate.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import textwrap
from typing import Awaitable, Callable, Literal

from ivr import config as cfg
from ivr.cli.lab import with_lab_ledger
from ivr.ledger.db import LedgerError, SchemaError
from ivr.ledger.store import Store

Access = Literal["read", "write", "migrate"]

DATABASE = ("The database is ledger.url in --config (or IVR_LEDGER_URL): sqlite:///PATH (the "
            "default: ledger.db in ivr's state directory; on the lab, in the lab folder) or "
            "postgresql://USER@HOST:PORT/DB.")
READ_ONLY = ("It is opened read-only: a ledger that does not exist, or whose schema is not "
             "this ivr's, is one line and exit 2 (run `ivr ledger migrate`).")
TIMES = ("Times (--from, --to) are dates (2026-11-01) or ISO 8601 instants, in --tz "
         "(default report.timezone, UTC).")
STATUS = "exit status: 0 done, 1 the database or a file failed, 2 bad input or config."


def ledger_epilog(*, times: bool = False, read_only: bool = True, status: str = STATUS) -> str:
    """The epilog of a command that opens the ledger, naming only the options it has."""
    text = " ".join(part for part in (DATABASE, READ_ONLY if read_only else "",
                                      TIMES if times else "") if part)
    return textwrap.fill(text, 78) + "\n" + status + "\n"


# -- the ledger ------------------------------------------------------------------

def ledger_config(args: argparse.Namespace) -> cfg.Config:
    """The config, with the lab's ledger when neither AMI nor the ledger is configured."""
    return with_lab_ledger(cfg.load(getattr(args, "config", None), os.environ))


Work = Callable[[cfg.Config, Store], Awaitable[int]]


def run_with_store(args: argparse.Namespace, work: Work, access: Access = "read",
                   check: Callable[[cfg.Config], object] | None = None) -> int:
    """`work` on the ledger: read-only ("read"), writable ("write"), both with its
    schema checked first; or as it is, for the migration to bring up to date.
    `check(config)` runs before the ledger is opened: the command's input (a period,
    a PBX name, a key file) is refused before any work, whatever the ledger's state."""
    config = ledger_config(args)
    if check is not None:
        try:
            check(config)
        except LedgerError as exc:       # an input file that cannot be read
            print(f"ivr: {exc}", file=sys.stderr)
            return 1
    store = Store(config.ledger_url(), config.routing.first_line, read_only=access == "read")

    async def go() -> int:
        try:
            if access == "write":
                # Checked read-only first: a writable open already writes to a file that
                # is not a ledger yet (SQLite's header, WAL), and a refusal changes nothing.
                probe = Store(config.ledger_url(), config.routing.first_line, read_only=True)
                try:
                    await probe.require_schema()
                finally:
                    await probe.close()
            if access != "migrate":
                await store.require_schema()
            return await work(config, store)
        finally:
            await store.close()
    try:
        return asyncio.run(go())
    except SchemaError as exc:
        print(f"ivr: {exc}", file=sys.stderr)
        return 2
    except LedgerError as exc:
        print(f"ivr: {exc}", file=sys.stderr)
        return 1
