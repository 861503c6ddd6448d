"""The grammar every `ivr` command group shares, the same in every group:

- `--config FILE` on every command that reads the config, after the action; a
  group's own options (`ivr lab --dir`, `ivr incident --url`) may come before the
  action or after it (shared(): the action's copy defaults to SUPPRESS, so a value
  given before the action is not overwritten by the action's default);
- `--json` wherever the output is for machines (`--format csv` where CSV exists);
- `--pbx NAME` wherever the data is per PBX; a name the config does not have is
  exit 2, one line naming those it has (pbx_of).

tests/unit/test_cli_grammar.py holds every command to it.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable, TypeAlias

from ivr import config as cfg

# A string: argparse._SubParsersAction is generic to the type checker only.
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


class UsageError(Exception):
    """An option's value that cannot be used (an unknown PBX...): one line, exit 2."""


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
