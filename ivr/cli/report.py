"""`ivr report billing|downtime|fcr`: reports from the ledger, read-only.

Like `ivr ledger`, these open the ledger database themselves (cli/common.py), so
they work whether ivr runs or not, and never write to it.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
import time
from pathlib import Path

from ivr import config as cfg
from ivr.cli import progress
from ivr.cli.common import ledger_epilog, run_with_store
from ivr.cli.grammar import Subparsers, config_option, pbx_of, pbx_option, period_options
from ivr.ledger.store import Store
from ivr.reports import billing, service


def add_parsers(sub: Subparsers) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    rep = sub.add_parser("report", help="reports from the ledger: billing, downtime, fcr",
                         description="Reports from the ledger, which they only read.",
                         epilog=ledger_epilog(times=True), formatter_class=fmt)
    rsub = rep.add_subparsers(dest="report_command", required=True, metavar="REPORT")
    bill = rsub.add_parser(
        "billing", help="the contractor's monthly statement",
        description=textwrap.fill(
            "Offered, payable (answered in first-line within its threshold), answered late, "
            "moved to common, abandoned and short abandons: in total, per day and per "
            "operator, with a SHA-256 digest over the call lines.", 78),
        epilog=ledger_epilog(times=True), formatter_class=fmt)
    config_option(bill)
    period_options(bill, required=True)
    pbx_option(bill)
    _output(bill, ("table", "csv", "json"))
    bill.add_argument("--calls", action="store_true", help="list every first-line call")
    bill.set_defaults(func=_billing)
    down = rsub.add_parser(
        "downtime", help="per account, the downtime of known incidents, for billing",
        description=textwrap.fill(
            "For every account of the directory (routing.directory): the time known incidents "
            "covered its area in the period (overlaps counted once, clipped to the period) and "
            "those incidents, for the provider's billing system.  Time, not money.  Incidents "
            "are not kept per PBX: the report covers them all.", 78),
        epilog=ledger_epilog(times=True), formatter_class=fmt)
    config_option(down)
    period_options(down, required=True)
    _output(down, ("csv", "json"))
    down.set_defaults(func=_downtime)
    first = rsub.add_parser(
        "fcr", help="first-contact resolution per queue and operator (JSON)",
        description=textwrap.fill(
            "For the calls answered in the period: how many were resolved at first contact, "
            "that is with no call from the same number or account within 24 h (and within 7 "
            "days) of their end; per queue and per operator who answered.  The output is "
            "JSON.", 78),
        epilog=ledger_epilog(times=True), formatter_class=fmt)
    config_option(first)
    period_options(first, required=True)
    pbx_option(first)
    first.set_defaults(func=_fcr)


def _output(p: argparse.ArgumentParser, formats: tuple[str, ...]) -> None:
    """--json, or --format (json there too, as before --json was everywhere)."""
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", dest="format", action="store_const", const="json",
                     help="machine-readable output (the same as --format json)")
    out.add_argument("--format", choices=formats, help=f"the output (default {formats[0]})")
    p.set_defaults(format=formats[0])


def _period(args: argparse.Namespace, config: cfg.Config) -> billing.Period:
    return service.period(config, args.start, args.end, args.tz)


def _billing(args: argparse.Namespace) -> int:
    async def work(config: cfg.Config, store: Store) -> int:
        p = _period(args, config)
        with progress.spinner(args, "the statement"):
            statement = await service.statement(store, config, p, args.calls,
                                                pbx_of(args, config))
        if args.format == "json":
            print(json.dumps(billing.to_json(statement, args.calls), indent=2))
        elif args.format == "csv":
            sys.stdout.write(billing.to_csv(statement, args.calls))
        else:
            print(billing.to_table(statement, args.calls))
        return 0
    return run_with_store(args, work, check=lambda config: _checked(args, config))


def _checked(args: argparse.Namespace, config: cfg.Config) -> None:
    """The period and the PBX, refused before the ledger is opened."""
    _period(args, config)
    pbx_of(args, config)


def _downtime(args: argparse.Namespace) -> int:
    from ivr.routing.directory import Directory
    from ivr.reports import downtime

    accounts: dict[str, str] = {}

    def read_accounts(config: cfg.Config) -> None:
        _period(args, config)
        if not config.routing.directory:
            raise billing.ReportError("no routing.directory: the report needs the accounts")
        accounts.update(Directory.load(Path(config.routing.directory)).accounts())

    async def work(config: cfg.Config, store: Store) -> int:
        p = _period(args, config)
        with progress.spinner(args, "downtime"):
            rows = await service.downtimes(store, accounts, p.from_us, p.to_us,
                                           round(time.time() * 1e6))
        if args.format == "json":
            print(json.dumps(downtime.to_json(accounts, rows, p.from_us, p.to_us), indent=2))
        else:
            sys.stdout.write(downtime.to_csv(accounts, rows))
        return 0
    return run_with_store(args, work, check=read_accounts)


def _fcr(args: argparse.Namespace) -> int:
    async def work(config: cfg.Config, store: Store) -> int:
        p = _period(args, config)
        with progress.spinner(args, "first-contact resolution"):
            found = await service.first_contact(store, p, pbx_of(args, config))
        print(json.dumps(found, indent=2))
        return 0
    return run_with_store(args, work, check=lambda config: _checked(args, config))
