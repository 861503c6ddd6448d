"""`ivr registry ...`: the service desk's registry from the shell.

    ivr registry verify                  check the whole chain; exit 1 names the first bad entry
    ivr registry export --from --to      the entries made in the period and the chain's head

and the registry as a transparency log (key, checkpoint, prove, witness,
verify --checkpoint/--proof): cli_registry.py.

Like `ivr ledger`, these open the ledger database themselves (ledger.url or
IVR_LEDGER_URL), read-only, so the provider's office can check a registry
whether ivr runs or not, and hold the exported head against a later check.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap

from ivr import config as cfg
from ivr.cli import registry as cli_registry
from ivr.cli.common import ledger_epilog, run_with_store
from ivr.cli.grammar import Subparsers, config_option, period_options
from ivr.desk import registry
from ivr.ledger.store import Store
from ivr.reports import service


VERIFY_STATUS = ("exit status: 0 intact (with --checkpoint: consistent; with --proof: "
                 "included), 1 not (what is wrong is named) or the database failed, 2 bad input "
                 "or config (a checkpoint, proof or key that is not one).")


def add_parsers(sub: Subparsers) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    reg = sub.add_parser("registry", help="the service desk's registry: verify, export, key, checkpoint, prove, witness",
                         description=textwrap.fill(
                             "Tickets, complaints and claims, and each change of theirs, kept "
                             "as a chain of entries each hashed over the one before.", 78),
                         epilog=ledger_epilog(), formatter_class=fmt)
    rsub = reg.add_subparsers(dest="registry_command", required=True, metavar="ACTION")
    ver = rsub.add_parser(
        "verify", help="check the chain: exit 1 naming the first entry altered, removed or inserted",
        epilog=ledger_epilog(status=textwrap.fill(VERIFY_STATUS, 78)), formatter_class=fmt)
    config_option(ver)
    cli_registry.verify_args(ver)
    ver.set_defaults(func=_verify)
    exp = rsub.add_parser("export", help="the entries of a period and the chain's head, as JSON",
                          epilog=ledger_epilog(times=True), formatter_class=fmt)
    config_option(exp)
    period_options(exp, required=True)
    exp.set_defaults(func=_export)
    cli_registry.add_parsers(rsub)


def _verify(args: argparse.Namespace) -> int:
    if args.checkpoint is not None or args.proof is not None:
        return cli_registry.verify(args)

    async def work(config: cfg.Config, store: Store) -> int:
        rows, head = await store.registry()
        verdict = registry.verify((registry.of_row(r) for r in rows), head)
        if not verdict.intact:
            print(f"ivr registry: NOT intact: {verdict.problem}", file=sys.stderr)
            return 1
        print(f"registry intact: {verdict.entries} entries, head {verdict.head[0]} "
              f"{verdict.head[1]}")
        return 0
    return run_with_store(args, work)


def _export(args: argparse.Namespace) -> int:
    async def work(config: cfg.Config, store: Store) -> int:
        # The whole registry is read to be verified: its period only filters, so it is
        # not held to report.max_days.
        p = service.period(config, args.start, args.end, args.tz, bounded=False)
        rows, head = await store.registry()
        entries = [registry.of_row(r) for r in rows]
        verdict = registry.verify(entries, head)
        print(json.dumps({
            "from_us": p.from_us, "to_us": p.to_us,
            "entries": [e.to_json() for e in entries if p.from_us <= e.at_us < p.to_us],
            "head": {"seq": verdict.head[0], "hash": verdict.head[1]},
            "intact": verdict.intact, "problem": verdict.problem}, indent=1, ensure_ascii=False))
        return 0 if verdict.intact else 1
    return run_with_store(args, work, check=lambda config: service.period(
        config, args.start, args.end, args.tz, bounded=False))
