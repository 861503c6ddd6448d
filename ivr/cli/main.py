"""The `ivr` command: the top parser, and each error a command raises as its exit status.

Each command group lives in its own module of ivr/cli/ and adds its parsers here; the
grammar they share (--config, --json, --pbx, the ledger opened read-only) is
ivr/cli/common.py; the lab's errors are said by ivr/cli/lab.py, the one CLI module
that knows the lab.
"""

from __future__ import annotations

import argparse
import logging
import sys
from importlib import metadata

import ivr
from ivr import config as cfg
from ivr.cli import (desk as cli_desk, incidents as cli_incidents, kit as cli_kit,
                     lab as cli_lab, ledger as cli_ledger, prompts as cli_prompts,
                     replay as cli_replay, report as cli_report, run as cli_run,
                     tokens as cli_tokens, webhooks as cli_webhooks)
from ivr.cli.grammar import UsageError
from ivr.config.tokens import TokensError
from ivr.reports.billing import ReportError
from ivr.routing.directory import DirectoryError
from ivr.routing.incidents import IncidentError


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)   # ivr logs its own migration line
    try:
        return int(args.func(args))
    except (cfg.ConfigError, DirectoryError, IncidentError, TokensError) as exc:
        print(f"ivr: bad config: {exc}", file=sys.stderr)
        return 2
    except (ReportError, UsageError) as exc:
        print(f"ivr: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0


def version() -> str:
    """The installed distribution's version; the source's when ivr runs uninstalled."""
    try:
        return metadata.version("ivr")
    except metadata.PackageNotFoundError:
        return ivr.__version__


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ivr", description=cli_run.DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"ivr {version()}",
                   help="print ivr's version and exit")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    cli_run.add_parser(sub)
    cli_lab.add_lab_parser(sub)
    cli_incidents.add_parser(sub)
    cli_ledger.add_parsers(sub)
    cli_report.add_parsers(sub)
    cli_replay.add_parsers(sub)
    cli_desk.add_parsers(sub)
    cli_tokens.add_parsers(sub)
    cli_prompts.add_parser(sub)
    cli_webhooks.add_parsers(sub)
    cli_kit.add_parser(sub)
    cli_lab.add_demo_parser(sub)
    return p
