"""What the CLI and the control API share: the statement and a caller's history,
read from the ledger store.  Bad input raises billing.ReportError (one line)."""

from __future__ import annotations

import asyncio
from typing import Protocol

from ivr.config import Config
from ivr.ledger.records import BillingCall, CallRecord
from ivr.reports import billing


class Ledger(Protocol):
    """What is read here: a Store, or the app's OffLoop one."""

    async def calls(self, from_us: int, to_us: int, caller: str | None = None,
                    account: str | None = None, pbx: str | None = None,
                    limit: int | None = None) -> list[CallRecord]: ...

    async def billing_calls(self, from_us: int, to_us: int) -> list[BillingCall]: ...

MAX_CALLS = 10_000   # a caller's history is for people: a page, not a dump


def period(config: Config, start: str | None, end: str | None, tz: str | None) -> billing.Period:
    if not start or not end:
        raise billing.ReportError("give both from and to (dates like 2026-11-01, or ISO 8601)")
    return billing.period(start, end, tz or config.report.timezone)


async def statement(store: Ledger, config: Config, p: billing.Period) -> billing.Statement:
    calls = await store.billing_calls(p.from_us, p.to_us)
    # A month is a million calls (0.85 s of work): never on the caller's event loop.
    return await asyncio.to_thread(billing.build, calls, p,
                                   round(config.report.short_abandon_seconds * 1000))


async def history(store: Ledger, p: billing.Period, caller: str | None = None,
                  account: str | None = None) -> list[CallRecord]:
    return await store.calls(p.from_us, p.to_us, caller=caller, account=account, limit=MAX_CALLS)
