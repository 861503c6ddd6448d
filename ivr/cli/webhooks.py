"""`ivr webhooks list|retry`: the webhooks' outbox from the shell.

    ivr webhooks list [--dead] [--json] [--limit N]   the messages, the newest first
    ivr webhooks retry ID                             a dead-lettered message sent again

Like `ivr ledger`, these open the ledger database themselves (ledger.url or
IVR_LEDGER_URL), whether ivr runs or not; a running ivr sends a retried message
at its next pass (within a second or so), a stopped one when it starts.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from typing import Any

from ivr import config as cfg
from ivr.cli.common import ledger_epilog, run_with_store
from ivr.cli.grammar import config_option, json_option
from ivr.ledger.outbox import DEAD, DELIVERED, PENDING
from ivr.ledger.store import Store
from ivr.ledger.text import clean

STATES = """\
A message is pending (sent, or tried again after a backoff: 5 s doubling to 1 h,
with jitter), delivered (a 2xx), or dead (no 2xx within 24 h, or a 410 Gone).
"""
STATUS = "exit status: 0 done, 1 the database failed, 2 an unknown or not dead ID, or bad config."


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    hooks = sub.add_parser("webhooks", help="the webhooks' outbox: list, retry",
                           description="Events of the desk and of incidents, signed (Standard "
                                       "Webhooks) and sent to [webhooks.NAME] endpoints.",
                           epilog=STATES, formatter_class=fmt)
    wsub = hooks.add_subparsers(dest="webhooks_command", required=True, metavar="ACTION")
    ls = wsub.add_parser("list", help="the outbox's messages, the newest first",
                         epilog=STATES + ledger_epilog(), formatter_class=fmt)
    config_option(ls)
    ls.add_argument("--dead", action="store_true", help="only the dead-lettered ones")
    json_option(ls, "machine-readable, with each payload")
    ls.add_argument("--limit", type=_positive, default=100, metavar="N",
                    help="at most N messages (default 100)")
    ls.set_defaults(func=_list)
    retry = wsub.add_parser("retry", help="send a dead-lettered message again (same webhook-id)",
                            epilog=STATES + ledger_epilog(read_only=False, status=STATUS),
                            formatter_class=fmt)
    config_option(retry)
    retry.add_argument("id", metavar="ID", help="the message's id (msg_...), from the list")
    retry.set_defaults(func=_retry)


def _positive(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or not 0 < int(text) <= 1_000_000:
        raise argparse.ArgumentTypeError(f"expected a count from 1 to 1000000, got {text!r}")
    return int(text)


def _list(args: argparse.Namespace) -> int:
    async def work(config: cfg.Config, store: Store) -> int:
        rows, total = await store.outbox_list(DEAD if args.dead else None, args.limit)
        if args.json:
            print(json.dumps({"count": total, "messages": [_json(r) for r in rows]}, indent=2))
            return 0
        if rows:
            print(f"{'ID':<28}  {'ENDPOINT':<12} {'EVENT':<16} {'STATE':<9} {'ATTEMPTS':>8}  "
                  f"{'NEXT ATTEMPT':<20}  LAST ERROR")
        for r in rows:
            print(clean(f"{r['id']:<28}  {r['endpoint']:<12} {r['event']:<16} {r['state']:<9} "
                        f"{r['attempts']:>8}  {_next(r):<20}  {r['last_error'] or '-'}"))
        more = f" ({total - len(rows)} more: --limit)" if total > len(rows) else ""
        print(f"{total} {'dead ' if args.dead else ''}message(s){more}")
        return 0
    return run_with_store(args, work)


def _retry(args: argparse.Namespace) -> int:
    async def work(config: cfg.Config, store: Store) -> int:
        now_us = round(datetime.now(timezone.utc).timestamp() * 1e6)
        state = await store.outbox_requeue(args.id, now_us)
        shown = clean(args.id[:60])
        if state is None:
            print(f"ivr: no webhook message {shown!r} (ivr webhooks list)", file=sys.stderr)
            return 2
        if state != DEAD:
            why = {PENDING: "it is pending, and is sent without a retry",
                   DELIVERED: "it was delivered"}.get(state, f"it is {state}")
            print(f"ivr: webhook message {shown} is not dead-lettered: {why}", file=sys.stderr)
            return 2
        print(f"webhook message {shown} is pending again: ivr sends it at its next pass")
        return 0
    return run_with_store(args, work, access="write")


def _json(r: dict[str, Any]) -> dict[str, Any]:
    try:
        payload: Any = json.loads(r["body"])
    except ValueError:
        payload = r["body"]
    return {"id": r["id"], "endpoint": r["endpoint"], "event": r["event"], "state": r["state"],
            "attempts": r["attempts"], "created": _iso(r["created_us"]),
            "next_attempt": _iso(r["next_us"]) if r["state"] == PENDING else None,
            "delivered": _iso(r["delivered_us"]) if r["delivered_us"] is not None else None,
            "last_error": r["last_error"] or None, "payload": payload}


def _next(r: dict[str, Any]) -> str:
    return _iso(r["next_us"]) if r["state"] == PENDING else "-"


def _iso(us: int) -> str:
    return datetime.fromtimestamp(us / 1e6, timezone.utc).isoformat(timespec="seconds") \
        .replace("+00:00", "Z")
