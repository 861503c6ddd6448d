"""The statement counted by the database (a GROUP BY and a digest) is the very
statement `billing.build` makes from the calls themselves, on SQLite and on a
real PostgreSQL: the same totals, days, operators and digest."""

from __future__ import annotations

import random

import pytest

from ivr.calls import records as rec
from ivr.ledger.store import Store
from ivr.reports import billing

OUTCOMES = ("answered", "answered", "abandoned", "timeout", "withdrawn", "empty",
            "transferred", rec.UNOBSERVED)
# 2026-10-24 .. 2026-10-27 in Berlin: 2026-10-25 has 25 hours.
FROM_US = 1_792_792_800_000_000 - 86_400_000_000


def generated(n: int, seed: int) -> list[rec.CallRecord]:
    rng = random.Random(seed)
    calls = []
    for i in range(n):
        t = FROM_US + rng.randrange(4 * 86_400_000_000)
        outcome = rng.choice(OUTCOMES)
        wait = None if outcome == rec.UNOBSERVED else rng.choice((0, 4999, 5000, 5001, 29_999,
                                                                  30_000, 30_001, rng.randrange(90_000)))
        member = rng.choice(("op1", "op2", "Op3", "op.4")) if outcome == "answered" else ""
        payable = outcome == "answered" and wait is not None and wait <= 30_000
        visit = rec.VisitRecord(1, "first-line", t, None if wait is None else t + wait * 1000,
                                outcome, wait, member)
        uid = f"{1_792_000_000 + rng.randrange(10)}.{i}"       # ties in time, mixed uniqueids
        calls.append(rec.CallRecord(rng.choice(("default", "b")), uid, uid, "7900", "", "", t,
                                    t + 60_000_000, (visit,), "answered" if payable else "unanswered",
                                    payable, rng.choice(rec.SOURCES), rec.MS,
                                    visit.left_us if outcome == "answered" else None,
                                    "first-line" if outcome == "answered" else "", member))
    calls.append(calls[0].__class__(**{**rec.to_dict(calls[0]), "uniqueid": "tie.1",
                                       "visits": calls[0].visits}))   # the same microsecond
    return calls


@pytest.mark.parametrize("tz", ["Europe/Berlin", "Asia/Kathmandu", "UTC"])
async def test_counted_by_the_database_equals_built_from_the_calls(url: str, tz: str) -> None:
    store = Store(url)
    try:
        await store.migrate()
        await store.write(generated(3000, seed=len(tz)))
        p = billing.period("2026-10-24T06:00", "2026-10-27", tz)
        built = billing.build(await store.billing_calls(p.from_us, p.to_us), p, 5000)
        tally = [billing.Tally(*row) for row in await store.statement_tally(p.boundaries, 5000)]
        counted = billing.from_tally(p, tally, await store.statement_digest(p.from_us, p.to_us), 5000)
        assert built.totals.offered > 1500 and built.totals.short_abandoned > 0
        assert counted.totals == built.totals
        assert counted.days == built.days and len(counted.days) == 3   # 24th (from 06:00), 25th, 26th
        assert counted.operators == built.operators
        assert counted.digest == built.digest
    finally:
        await store.close()


async def test_an_empty_period(url: str) -> None:
    store = Store(url)
    try:
        await store.migrate()
        p = billing.period("2026-11-01", "2026-11-03", "UTC")
        counted = billing.from_tally(p, [], await store.statement_digest(p.from_us, p.to_us))
        assert counted == billing.build([], p)
    finally:
        await store.close()


async def test_a_period_of_one_day(url: str) -> None:
    """No cut between days: the day is a constant, which must not reach the GROUP BY
    (found by the console's browser test: SQLite read it as a column's position)."""
    store = Store(url)
    try:
        await store.migrate()
        await store.write(generated(500, seed=7))
        p = billing.period("2026-10-25", "2026-10-26", "UTC")
        built = billing.build(await store.billing_calls(p.from_us, p.to_us), p, 5000)
        tally = [billing.Tally(*row) for row in await store.statement_tally(p.boundaries, 5000)]
        counted = billing.from_tally(p, tally, await store.statement_digest(p.from_us, p.to_us), 5000)
        assert built.totals.offered > 50 and counted.totals == built.totals
        assert counted.days == built.days and len(counted.days) == 1
    finally:
        await store.close()
