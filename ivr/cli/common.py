"""What every `ivr` command group shares: the grammar of its options, and the ledger
opened the way a command needs it.

The grammar, the same in every group:

- `--config FILE` on every command that reads the config, after the action; a
  group's own options (`ivr lab --dir`, `ivr incident --url`) may come before the
  action or after it (shared(): the action's copy defaults to SUPPRESS, so a value
  given before the action is not overwritten by the action's default);
- `--json` wherever the output is for machines (`--format csv` where CSV exists);
- `--pbx NAME` wherever the data is per PBX; a name the config does not have is
  exit 2, one line naming those it has (pbx_of).

The ledger: reading commands open it read-only and check its schema first
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
from pathlib import Path
from typing import Awaitable, Callable, Literal, TypeAlias

from ivr import config as cfg
from ivr.cli.lab import with_lab_ledger
from ivr.ledger.db import LedgerError, SchemaError
from ivr.ledger.store import Store

# A string: argparse._SubParsersAction is generic to the type checker only.
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
Access = Literal["read", "write", "migrate"]

DATABASE = ("The database is ledger.url in --config (or IVR_LEDGER_URL): sqlite:///PATH (the "
            "default: ledger.db in ivr's state directory; on the lab, in the lab folder) or "
            "postgresql://USER@HOST:PORT/DB.")
READ_ONLY = ("It is opened read-only: a ledger that does not exist, or whose schema is not "
             "this ivr's, is one line and exit 2 (run `ivr ledger migrate`).")
WRITES = ("It is written, never migrated: a ledger that does not exist, or whose schema is "
          "not this ivr's, is one line and exit 2 (run `ivr ledger migrate`).")
TIMES = ("Times (--from, --to) are dates (2026-11-01) or ISO 8601 instants, in --tz "
         "(default report.timezone, UTC).")
STATUS = "exit status: 0 done, 1 the database or a file failed, 2 bad input or config."


class UsageError(Exception):
    """An option's value that cannot be used (an unknown PBX...): one line, exit 2."""


def ledger_epilog(*, times: bool = False, access: Access = "read", status: str = STATUS) -> str:
    """The epilog of a command that opens the ledger, naming only the options it has."""
    said = {"read": READ_ONLY, "write": WRITES, "migrate": ""}[access]
    text = " ".join(part for part in (DATABASE, said, TIMES if times else "") if part)
    return textwrap.fill(text, 78) + "\n" + status + "\n"


# -- options -------------------------------------------------------------------

def config_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, metavar="FILE",
                   help="TOML config file (default: $IVR_CONFIG)")


def json_option(p: argparse.ArgumentParser, what: str = "machine-readable output") -> None:
    p.add_argument("--json", action="store_true", help=what)


def pbx_option(p: argparse.ArgumentParser, default: str = "all of them") -> None:
    p.add_argument("--pbx", metavar="NAME",
                   help=f"only this PBX's data, a [pbx.NAME] of the config (default: {default})")


def period_options(p: argparse.ArgumentParser, required: bool) -> None:
    p.add_argument("--from", dest="start", required=required, metavar="T",
                   help="start of the period, inclusive (date or ISO 8601)")
    p.add_argument("--to", dest="end", required=required, metavar="T",
                   help="end of the period, exclusive")
    p.add_argument("--tz", help="time zone of the dates (default report.timezone)")


def shared(group: argparse.ArgumentParser,
           *adders: Callable[[argparse.ArgumentParser], None]) -> argparse.ArgumentParser:
    """The group's options, on the group itself and on a parent parser for its actions
    (`parents=[...]`), so they may be given before the action or after it.  The
    action's copies default to SUPPRESS: argparse copies an action's namespace over
    the group's, and a default there would erase a value given before the action."""
    parent = argparse.ArgumentParser(add_help=False)
    for add in adders:
        add(group)
        add(parent)
    for action in parent._actions:
        action.default = argparse.SUPPRESS
    return parent


def pbx_of(args: argparse.Namespace, config: cfg.Config) -> str | None:
    """--pbx, checked against the config's PBXs (None when not given)."""
    name: str | None = getattr(args, "pbx", None)
    names = [p.name for p in config.pbxs]
    if name is not None and name not in names:
        raise UsageError(f"--pbx {name}: not a PBX of the config (known: {', '.join(names)})")
    return name


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
        check(config)
    store = Store(config.ledger_url(), read_only=access == "read")

    async def go() -> int:
        try:
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
