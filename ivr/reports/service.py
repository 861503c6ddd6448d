"""What the CLI, the control API and the service desk share: the statement, a
caller's history and the downtime, read from the ledger store.  Bad input raises
billing.ReportError (one line)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any, Iterable, Mapping

from ivr.config import Config
from ivr.routing.incidents import Incident
from ivr.calls.records import CallRecord
from ivr.ledger.store import Ledger, Store
from ivr.reports import billing, downtime, fcr
from ivr.reports.bounded import in_thread
from ivr.routing.repeats import KINDS as REPEAT_KINDS


MAX_CALLS = 10_000   # a caller's history is for people: a page, not a dump


def period(config: Config, start: str | None, end: str | None, tz: str | None,
           bounded: bool = True) -> billing.Period:
    """[start, end) in tz (report.timezone), at most report.max_days long unless not
    `bounded` (what filters a whole read, as the registry's export, needs no bound)."""
    if not start or not end:
        raise billing.ReportError("give both from and to (dates like 2026-11-01, or ISO 8601)")
    return billing.period(start, end, tz or config.report.timezone,
                          config.report.max_days if bounded else None)


async def statement(store: Ledger, config: Config, p: billing.Period,
                    with_calls: bool = False, pbx: str | None = None) -> billing.Statement:
    """The statement of period `p`, of one PBX's calls or (pbx None) of all.  Without
    its call lines the database counts and hashes (a GROUP BY and one pass); with them
    every call is read and judged here."""
    short_ms = round(config.report.short_abandon_seconds * 1000)
    undisposed = asyncio.ensure_future(store.run(Store.undisposed, p.from_us, p.to_us, pbx))
    try:
        if not with_calls:
            tally, digest = await asyncio.gather(
                store.run(Store.statement_tally, p.boundaries, short_ms, pbx),
                store.run(Store.statement_digest, p.from_us, p.to_us, pbx))
            built = billing.from_tally(p, (billing.Tally(*row) for row in tally), digest, short_ms)
        else:
            calls = await store.run(Store.billing_calls, p.from_us, p.to_us, pbx)
            # A month is a million calls (0.85 s of work): never on the caller's event loop.
            built = await in_thread(billing.build, calls, p, short_ms)
        missing = await undisposed
        repeated = await store.run(Store.repeat_counts, p.from_us, p.to_us, pbx)
        in_seconds = await store.run(Store.judged_in_seconds, p.from_us, p.to_us, pbx)
        callbacks = await store.run(Store.callback_counts, p.from_us, p.to_us, pbx)
        once = None
        if config.report.pay_once_per_caller:
            window = round(config.routing.repeat_window_seconds * 1e6)
            rows = await store.run(Store.contacts, p.from_us, p.to_us, pbx)
            once = await in_thread(lambda: fcr.payable_once([fcr.Contact(*r) for r in rows], window))
    finally:
        undisposed.cancel()             # cut short (a deadline): no orphan query left behind
    return replace(built, operators=tuple(
        replace(o, without_disposition=missing.get(o.operator, 0)) for o in built.operators),
        repeats=tuple((kind, repeated.get(kind, 0)) for kind in REPEAT_KINDS), payable_once=once,
        judged_in_seconds=in_seconds, callbacks=tuple(callbacks.items()))


async def first_contact(store: Ledger, p: billing.Period,
                        pbx: str | None = None) -> dict[str, Any]:
    """First-contact resolution of the calls answered in `p` (reports/fcr.py), of one
    PBX's calls or (pbx None) of all."""
    rows = await store.run(Store.contacts, p.from_us, p.to_us + fcr.WINDOWS[-1][1], pbx)
    resolution = await in_thread(
        lambda: fcr.resolution((fcr.Contact(*r) for r in rows), p.from_us, p.to_us))
    return {"from_us": p.from_us, "to_us": p.to_us, **resolution}


async def history(store: Ledger, p: billing.Period, caller: str | None = None,
                  account: str | None = None, pbx: str | None = None) -> list[CallRecord]:
    return await store.run(Store.calls, p.from_us, p.to_us, caller=caller, account=account,
                           pbx=pbx, limit=MAX_CALLS)


async def downtimes(store: Ledger, accounts: Mapping[str, str], from_us: int, to_us: int,
                    now_us: int, open_now: Iterable[Incident] = ()) -> dict[str, downtime.Downtime]:
    """Each account's downtime in [from_us, to_us) (accounts: account -> area), counted
    up to now.  The incidents are the ledger's, and those `open_now` in this process
    the ledger has not got yet (its writer batches): a claim and the report agree.
    Raises LedgerError."""
    rows = await store.run(Store.incidents_between, from_us, to_us)
    kept = {r["id"] for r in rows}
    rows += [{"id": i.id, "area": i.area, "message": i.message, "closed_us": None,
              "opened_us": round(i.started_at * 1e6), "expires_us": round(i.expires_at * 1e6)}
             for i in open_now if i.id not in kept]
    return downtime.report(accounts, rows, from_us, to_us, now_us)
