"""The ledger's counts of the board's chart of the day (Store.service_intervals) and of
each queue's day (Store.queue_outcomes), on SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from ivr.calls import records as rec
from ivr.ledger.store import Store
from ivr.reports import service_level as sl

QUARTER = 15 * 60 * 1_000_000


def call(n: int, entered_us: int, outcome: str, wait_ms: int,
         then: str | None = None) -> rec.CallRecord:
    """A call that first entered first-line at `entered_us` and left it `outcome` after
    `wait_ms`; `then` a second visit (common), answered."""
    left = entered_us + wait_ms * 1000
    visits = [rec.VisitRecord(1, "first-line", entered_us, left, outcome, wait_ms,
                              "op1" if outcome == "answered" else "")]
    if then:
        visits.append(rec.VisitRecord(2, then, left, left + 1_000_000, "answered", 1000, "gen1"))
    answered = outcome == "answered" or then is not None
    return rec.CallRecord("default", f"1796000000.{n}", f"1796000000.{n}", "79101", "", "",
                          entered_us, left + 9_000_000, tuple(visits),
                          "answered" if answered else "abandoned",
                          outcome == "answered" and wait_ms <= 30_000, rec.LIVE, rec.MS,
                          left if answered else None, "first-line" if outcome == "answered" else "",
                          "op1" if outcome == "answered" else "")


async def test_the_intervals_count_by_the_report_zone_and_30_000_ms_is_within(store: Store) -> None:
    zone = ZoneInfo("Asia/Kathmandu")           # +05:45: local quarter-hours are not UTC's
    day = sl.today(datetime(2026, 11, 30, 6, tzinfo=timezone.utc), zone)
    nine = round(datetime(2026, 11, 30, 9, 0, tzinfo=zone).timestamp() * 1e6)
    await store.write([
        call(1, nine, "answered", 30_000),                  # exactly at 09:00, exactly 30.000 s
        call(2, nine + QUARTER - 1, "answered", 30_001),    # 09:14:59.999999, 1 ms late
        call(3, nine + 60_000_000, "abandoned", 4_000),
        call(4, nine + QUARTER, "timeout", 30_000, then="common"),   # 09:15: the next interval
        call(5, day.from_us - 1, "answered", 1_000),        # yesterday
        call(6, day.to_us, "answered", 1_000),              # tomorrow
        call(7, day.from_us, "answered", 2_000),            # 00:00, the first interval
    ])
    cuts = sl.edges(day)
    rows = await store.service_intervals(cuts, 30_000)
    assert rows == [(0, 1, 1, 1, 0), (36, 3, 2, 1, 1), (37, 1, 0, 0, 0)]
    chart = sl.intervals(cuts, rows, zone)
    assert (chart[36].label, chart[36].share) == ("09:00", 1 / 3)
    assert chart[37].label == "09:15" and chart[37].share == 0.0
    # One interval, no cut: the same counts (a GROUP BY of no column).
    assert await store.service_intervals([nine, nine + QUARTER], 30_000) == [(0, 3, 2, 1, 1)]
    assert await store.service_intervals([nine, nine + QUARTER], 30_001) == [(0, 3, 2, 2, 1)]
    assert await store.service_intervals([nine, nine + QUARTER], 30_000, pbx="other") == []
    # Each queue's day: its visits by outcome.
    assert await store.queue_outcomes(day.from_us, day.to_us) == [
        ("common", "answered", 1), ("first-line", "abandoned", 1), ("first-line", "answered", 3),
        ("first-line", "timeout", 1)]
