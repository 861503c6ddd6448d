"""The contractor's statement: categories, days, operators, digest, renderers."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import random
from datetime import datetime, timedelta, timezone
from itertools import count
from zoneinfo import ZoneInfo

import pytest

from ivr.calls.records import BillingCall
from ivr.reports import billing
from ivr.reports.billing import ReportError, build, period

_uids = count(1)
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def us(iso: str) -> int:
    """Epoch microseconds of an ISO datetime with an offset."""
    return (datetime.fromisoformat(iso) - EPOCH) // timedelta(microseconds=1)


def call(at: str, outcome: str = "answered", wait: int | None = 1000, *,
         payable: bool | None = None, operator: str | None = None, pbx: str = "pbx1",
         uid: str | None = None, source: str = "live") -> BillingCall:
    if payable is None:
        payable = outcome == "answered" and wait is not None and wait <= 30_000
    if operator is None:
        operator = "op1" if outcome == "answered" else ""
    return BillingCall(pbx, uid or f"1793000000.{next(_uids)}", us(at), wait, outcome,
                       operator, payable, source)


NOV = period("2026-11-01", "2026-12-01", "Europe/Moscow")


# -- categories ----------------------------------------------------------------

def test_every_call_falls_in_exactly_one_category() -> None:
    calls = [call("2026-11-03T10:00:00+03:00", "answered", 12_000),             # payable
             call("2026-11-03T10:01:00+03:00", "answered", 30_001),             # late
             call("2026-11-03T10:02:00+03:00", "timeout", 30_000),
             call("2026-11-03T10:03:00+03:00", "abandoned", 20_000),
             call("2026-11-03T10:04:00+03:00", "withdrawn", 3_000),
             call("2026-11-03T10:05:00+03:00", "transferred", 4_000),
             call("2026-11-03T10:06:00+03:00", "empty", 0),
             call("2026-11-03T10:07:00+03:00", "unobserved", None),
             call("2026-11-03T10:08:00+03:00", "exit_with_key", 7_000)]
    t = build(calls, NOV).totals
    assert (t.offered, t.payable, t.answered_late, t.timeout, t.abandoned, t.other) == \
        (9, 1, 1, 1, 1, 5)
    assert t.payable + t.answered_late + t.timeout + t.abandoned + t.other == t.offered


def test_payable_wins_over_the_outcome() -> None:
    t = build([call("2026-11-03T10:00:00+03:00", "transferred", 2_000, payable=True)], NOV).totals
    assert (t.payable, t.other) == (1, 0)


@pytest.mark.parametrize("outcome,kind", [("answered", "answered_late"), ("timeout", "timeout"),
                                          ("abandoned", "abandoned"), ("withdrawn", "other"),
                                          ("unobserved", "other"), ("exit_with_key", "other")])
def test_category_of_an_unpaid_call(outcome: str, kind: str) -> None:
    assert billing.category(False, outcome) == kind
    assert billing.category(True, outcome) == "payable"


def test_short_abandons_are_within_5000_ms_inclusive() -> None:
    calls = [call("2026-11-03T10:00:00+03:00", "abandoned", 5_000),
             call("2026-11-03T10:01:00+03:00", "abandoned", 5_001),
             call("2026-11-03T10:02:00+03:00", "abandoned", 0),
             call("2026-11-03T10:03:00+03:00", "abandoned", None),     # wait unknown: not short
             call("2026-11-03T10:04:00+03:00", "withdrawn", 100)]      # not an abandon
    t = build(calls, NOV).totals
    assert (t.abandoned, t.short_abandoned) == (4, 2)
    assert build(calls, NOV, short_abandon_ms=5_001).totals.short_abandoned == 3


def test_payable_share() -> None:
    calls = [call(f"2026-11-03T10:0{i}:00+03:00", "answered", 1_000) for i in range(3)]
    calls.append(call("2026-11-03T10:05:00+03:00", "abandoned", 40_000))
    statement = build(calls, NOV)
    assert statement.totals.payable_share == 0.75
    assert build([], NOV).totals.payable_share is None
    assert billing.to_json(build([], NOV), False)["totals"]["payable_share"] is None


# -- the period and its days -----------------------------------------------------

def test_period_bounds_and_days_of_a_month() -> None:
    assert NOV.from_us == us("2026-11-01T00:00:00+03:00")
    assert NOV.to_us == us("2026-12-01T00:00:00+03:00")
    assert NOV.tz == "Europe/Moscow" and NOV.zone.key == "Europe/Moscow"
    assert len(NOV.dates) == 30 and len(NOV.boundaries) == 31
    assert NOV.dates[0] == "2026-11-01" and NOV.dates[-1] == "2026-11-30"
    assert NOV.boundaries[1] == us("2026-11-02T00:00:00+03:00")


def test_a_call_lands_on_its_local_day() -> None:
    calls = [call("2026-11-02T22:30:00+00:00")]
    moscow = build(calls, period("2026-11-01", "2026-11-05", "Europe/Moscow"))
    utc = build(calls, period("2026-11-01", "2026-11-05", "UTC"))
    assert [d.date for d in moscow.days if d.counts.offered] == ["2026-11-03"]
    assert [d.date for d in utc.days if d.counts.offered] == ["2026-11-02"]


def test_dst_days_last_25_and_23_hours_and_every_day_is_listed() -> None:
    autumn = period("2026-10-24", "2026-10-27", "Europe/Berlin")
    hours = [(b - a) / 3_600_000_000 for a, b in zip(autumn.boundaries, autumn.boundaries[1:])]
    assert autumn.dates == ("2026-10-24", "2026-10-25", "2026-10-26")
    assert hours == [24, 25, 24]
    spring = period("2026-03-28", "2026-03-31", "Europe/Berlin")
    assert [(b - a) / 3_600_000_000
            for a, b in zip(spring.boundaries, spring.boundaries[1:])] == [24, 23, 24]

    late_on_the_long_day = call("2026-10-25T23:30:00+01:00")     # 22:30 UTC
    statement = build([late_on_the_long_day], autumn)
    assert [(d.date, d.counts.offered) for d in statement.days] == \
        [("2026-10-24", 0), ("2026-10-25", 1), ("2026-10-26", 0)]


def test_a_date_the_zone_skips_is_not_listed() -> None:
    samoa = period("2011-12-29", "2012-01-01", "Pacific/Apia")   # 2011-12-30 never happened
    assert samoa.dates == ("2011-12-29", "2011-12-31")
    assert len(samoa.boundaries) == 3


def test_datetime_bounds() -> None:
    p = period("2026-11-03T12:00", "2026-11-04T06:00:00+03:00", "Europe/Moscow")
    assert p.from_us == us("2026-11-03T12:00:00+03:00")
    assert p.dates == ("2026-11-03", "2026-11-04")
    assert p.boundaries == (p.from_us, us("2026-11-04T00:00:00+03:00"), p.to_us)


def test_calls_outside_the_period_are_excluded() -> None:
    p = period("2026-11-03", "2026-11-04", "Europe/Moscow")
    calls = [call("2026-11-02T23:59:59.999999+03:00"),
             call("2026-11-03T00:00:00+03:00"),              # from: inside
             call("2026-11-03T23:59:59.999999+03:00"),
             call("2026-11-04T00:00:00+03:00")]              # to: outside
    statement = build(calls, p)
    assert statement.totals.offered == 2
    assert [c.entered_us for c in statement.calls] == [calls[1].entered_us, calls[2].entered_us]


@pytest.mark.parametrize("args,message", [
    (("2026-11-01", "2026-12-01", "Mars/Base"), "unknown time zone 'Mars/Base'"),
    (("2026-11-01", "2026-12-01", ""), "unknown time zone ''"),
    (("2026-11-01", "2026-12-01", "../etc/passwd"), "unknown time zone '../etc/passwd'"),
    (("2026-11-01", "2026-12-01", "Europe"), "unknown time zone 'Europe'"),
    (("2026-12-01", "2026-11-01", "UTC"), "--from 2026-12-01 is not before --to 2026-11-01"),
    (("2026-11-01", "2026-11-01", "UTC"), "--from 2026-11-01 is not before --to 2026-11-01"),
    (("2026-13-01", "2026-12-01", "UTC"),
     "--from '2026-13-01' is not a date (YYYY-MM-DD) or an ISO 8601 datetime"),
    (("2026-11-01", "soon", "UTC"),
     "--to 'soon' is not a date (YYYY-MM-DD) or an ISO 8601 datetime"),
])
def test_bad_periods_raise_one_clear_line(args: tuple[str, str, str], message: str) -> None:
    with pytest.raises(ReportError) as caught:
        period(*args)
    assert str(caught.value) == message
    assert isinstance(caught.value, ValueError)


# -- operators -------------------------------------------------------------------

def test_operators_count_their_answered_calls_sorted_by_name() -> None:
    calls = [call("2026-11-03T10:00:00+03:00", "answered", 1_000, operator="zoe"),
             call("2026-11-03T10:01:00+03:00", "answered", 31_000, operator="zoe"),
             call("2026-11-03T10:02:00+03:00", "answered", 2_000, operator="anna"),
             call("2026-11-04T10:02:00+03:00", "answered", 2_000, operator="anna"),
             call("2026-11-03T10:03:00+03:00", "abandoned", 2_000, operator="")]
    rows = [(o.operator, o.answered, o.payable, o.answered_late)
            for o in build(calls, NOV).operators]
    assert rows == [("anna", 2, 2, 0), ("zoe", 2, 1, 1)]


# -- order and digest ---------------------------------------------------------------

def month_of_calls(n: int = 300) -> list[BillingCall]:
    rnd = random.Random(7)
    outcomes = ["answered", "answered", "answered", "abandoned", "timeout", "withdrawn",
                "unobserved"]
    calls = []
    for i in range(n):
        outcome = rnd.choice(outcomes)
        wait = None if outcome == "unobserved" else rnd.randrange(60_000)
        entered = NOV.from_us + rnd.randrange(NOV.to_us - NOV.from_us)
        calls.append(BillingCall(rnd.choice(["pbx1", "pbx2"]), f"{entered // 1_000_000}.{i}",
                                 entered, wait, outcome,
                                 rnd.choice(["a", "b", "c"]) if outcome == "answered" else "",
                                 outcome == "answered" and wait is not None and wait <= 30_000,
                                 rnd.choice(["live", "resync", "queue_log"])))
    return calls


def test_digest_is_the_sha256_of_the_documented_lines() -> None:
    calls = [call("2026-11-03T10:00:01.123456+03:00", "answered", 12_345, operator="PJSIP/101",
                  pbx="pbx1", uid="1793000000.7"),
             call("2026-11-03T10:00:00+03:00", "unobserved", None, pbx="pbx2",
                  uid="1793000000.9", source="resync")]
    text = (f"pbx2|1793000000.9|{calls[1].entered_us}||unobserved||0|resync\n"
            f"pbx1|1793000000.7|{calls[0].entered_us}|12345|answered|PJSIP/101|1|live\n")
    statement = build(calls, NOV)
    assert statement.digest == hashlib.sha256(text.encode()).hexdigest()
    assert billing.call_line(calls[0]) == text.splitlines(keepends=True)[1]


def test_digest_does_not_depend_on_input_order() -> None:
    calls = month_of_calls()
    shuffled = calls[:]
    random.Random(1).shuffle(shuffled)
    a, b = build(calls, NOV), build(shuffled, NOV)
    assert a.digest == b.digest and a.calls == b.calls and a == b
    keys = [(c.entered_us, c.pbx, c.uniqueid) for c in a.calls]
    assert keys == sorted(keys)


def test_digest_changes_when_one_wait_changes() -> None:
    calls = month_of_calls()
    changed = calls[:]
    changed[42] = dataclasses.replace(calls[42], wait_ms=(calls[42].wait_ms or 0) + 1)
    assert build(calls, NOV).digest != build(changed, NOV).digest


def test_calls_in_the_same_microsecond_sort_by_pbx_then_uniqueid() -> None:
    at = "2026-11-03T10:00:00+03:00"
    calls = [call(at, pbx="pbx2", uid="1"), call(at, pbx="pbx1", uid="2"),
             call(at, pbx="pbx1", uid="1"), call("2026-11-03T09:00:00+03:00", uid="0")]
    order = [(c.pbx, c.uniqueid) for c in build(calls, NOV).calls]
    assert order == [("pbx1", "0"), ("pbx1", "1"), ("pbx1", "2"), ("pbx2", "1")]
    assert build(calls, NOV).digest == build(calls[::-1], NOV).digest


def test_days_add_up_to_the_totals() -> None:
    statement = build(month_of_calls(), NOV)
    assert len(statement.days) == 30
    for field in billing.COUNT_FIELDS:
        assert sum(getattr(d.counts, field) for d in statement.days) == \
            getattr(statement.totals, field)
    answered = statement.totals.payable + statement.totals.answered_late
    assert sum(o.answered for o in statement.operators) == answered


# -- renderers ------------------------------------------------------------------------

def test_json_keys_are_exactly_the_documented_ones() -> None:
    statement = build([call("2026-11-03T10:00:01.123456+03:00", "answered", 1_500,
                            operator="op7", uid="1793.1")], NOV)
    doc = billing.to_json(statement, with_calls=True)
    assert list(doc) == ["period", "totals", "days", "operators", "calls", "digest", "repeats",
                         "payable_once_per_caller", "judged_in_seconds", "callbacks"]
    assert doc["period"] == {"from": "2026-11-01T00:00:00+03:00",
                             "to": "2026-12-01T00:00:00+03:00", "timezone": "Europe/Moscow"}
    assert list(doc["totals"]) == ["offered", "payable", "answered_late", "timeout", "abandoned",
                                   "short_abandoned", "other", "payable_share"]
    assert doc["totals"]["payable_share"] == 1.0
    assert len(doc["days"]) == 30
    assert list(doc["days"][2]) == ["date", "offered", "payable", "answered_late", "timeout",
                                    "abandoned", "short_abandoned", "other"]
    assert doc["days"][2]["date"] == "2026-11-03" and doc["days"][2]["payable"] == 1
    assert doc["operators"] == [{"operator": "op7", "answered": 1, "payable": 1,
                                 "answered_late": 0, "without_disposition": 0}]
    assert doc["calls"] == [{"uniqueid": "1793.1", "pbx": "pbx1",
                             "entered": "2026-11-03T10:00:01.123456+03:00", "wait_ms": 1500,
                             "outcome": "answered", "operator": "op7", "payable": True,
                             "source": "live"}]
    assert doc["digest"] == statement.digest
    json.dumps(doc)
    assert billing.to_json(statement, with_calls=False)["calls"] == []


def test_entered_is_shown_with_microseconds_even_when_zero() -> None:
    statement = build([call("2026-11-03T10:00:00+03:00")], NOV)
    assert billing.to_json(statement, True)["calls"][0]["entered"] == \
        "2026-11-03T10:00:00.000000+03:00"


@pytest.mark.parametrize("tz,around", [
    ("Europe/Berlin", "2026-10-25T01:00:00+00:00"),       # the autumn change
    ("Europe/Berlin", "2026-03-29T01:00:00+00:00"),       # the spring change
    ("Asia/Kathmandu", "2026-11-03T00:00:00+00:00"),      # +05:45
    ("Europe/Amsterdam", "1935-06-01T00:00:00+00:00"),    # +00:19:32, seconds in the offset
])
def test_entered_is_the_local_time_of_the_instant(tz: str, around: str) -> None:
    zone, centre, rnd = ZoneInfo(tz), us(around), random.Random(3)
    instants = [centre + rnd.randrange(-7_200_000_000, 7_200_000_000) for _ in range(500)]
    instants += [centre - 1, centre, centre + 1]
    entered = billing._Entered(zone)
    for at in instants:
        expected = (EPOCH + timedelta(microseconds=at)).astimezone(zone)
        assert entered(at) == expected.isoformat(timespec="microseconds")


def test_csv_of_days_parses_back() -> None:
    statement = build(month_of_calls(), NOV)
    text = billing.to_csv(statement, with_calls=False)
    assert "\r\n" in text
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[0] == ["date", *billing.COUNT_FIELDS]
    assert [r[0] for r in rows[1:-1]] == list(NOV.dates)
    assert rows[-1] == ["total", *(str(getattr(statement.totals, f))
                                   for f in billing.COUNT_FIELDS)]
    assert [int(r[2]) for r in rows[1:-1]] == [d.counts.payable for d in statement.days]


def test_csv_of_calls_parses_back_even_with_awkward_fields() -> None:
    awkward = call("2026-11-03T10:00:00+03:00", "answered", 1_000, operator='Ann "A", desk 2',
                   uid="1793.5")
    unobserved = call("2026-11-03T11:00:00+03:00", "unobserved", None, uid="1793.6")
    text = billing.to_csv(build([unobserved, awkward], NOV), with_calls=True)
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows == [list(billing.CALL_FIELDS),
                    ["1793.5", "pbx1", "2026-11-03T10:00:00.000000+03:00", "1000", "answered",
                     'Ann "A", desk 2', "1", "live"],
                    ["1793.6", "pbx1", "2026-11-03T11:00:00.000000+03:00", "", "unobserved",
                     "", "0", "live"]]


def test_table_shows_period_share_days_operators_and_digest_last() -> None:
    calls = [call("2026-11-03T10:00:00+03:00", "answered", 1_000, operator="anna"),
             call("2026-11-03T10:01:00+03:00", "abandoned", 40_000),
             call("2026-11-03T10:02:00+03:00", "answered", 2_000, operator="")]
    statement = build(calls, NOV)
    text = billing.to_table(statement, with_calls=False)
    lines = text.splitlines()
    assert "2026-11-01T00:00:00+03:00" in lines[0] and "Europe/Moscow" in lines[0]
    assert "66.67 %" in text
    assert any(line.startswith("2026-11-30") for line in lines)
    assert any(line.startswith("anna") for line in lines)
    assert any(line.startswith("(unknown)") for line in lines)
    assert lines[-1].endswith(statement.digest)
    header = next(line for line in lines if line.startswith("date"))
    day = next(line for line in lines if line.startswith("2026-11-03"))
    assert len(header) == len(day)                     # right-aligned under the header
    with_calls = billing.to_table(statement, with_calls=True)
    assert "2026-11-03T10:01:00.000000+03:00" in with_calls
    assert with_calls.splitlines()[-1] == lines[-1]


def test_empty_statement_renders() -> None:
    statement = build([], period("2026-11-01", "2026-11-02", "UTC"))
    assert statement.digest == hashlib.sha256(b"").hexdigest()
    assert "-" in billing.to_table(statement, True)
    assert billing.to_csv(statement, True).splitlines() == [",".join(billing.CALL_FIELDS)]


def naive_statement(calls: list[BillingCall], p: billing.Period,
                    short_ms: int = 5000) -> tuple[dict[str, dict[str, int]], str]:
    """The rules the slow, obvious way: a datetime per call, a sort by tuple."""
    zone = ZoneInfo(p.tz)
    days: dict[str, dict[str, int]] = {}
    inside = sorted((c for c in calls if p.from_us <= c.entered_us < p.to_us),
                    key=lambda c: (c.entered_us, c.pbx, c.uniqueid))
    for c in inside:
        day = (EPOCH + timedelta(microseconds=c.entered_us)).astimezone(zone).date().isoformat()
        counts = days.setdefault(day, dict.fromkeys(billing.COUNT_FIELDS, 0))
        counts["offered"] += 1
        if c.payable:
            counts["payable"] += 1
        elif c.outcome == "answered":
            counts["answered_late"] += 1
        elif c.outcome == "timeout":
            counts["timeout"] += 1
        elif c.outcome == "abandoned":
            counts["abandoned"] += 1
            counts["short_abandoned"] += c.wait_ms is not None and c.wait_ms <= short_ms
        else:
            counts["other"] += 1
    text = "".join(f"{c.pbx}|{c.uniqueid}|{c.entered_us}|"
                   f"{'' if c.wait_ms is None else c.wait_ms}|{c.outcome}|{c.operator}|"
                   f"{1 if c.payable else 0}|{c.source}\n" for c in inside)
    return days, hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.parametrize("tz", ["Europe/Berlin", "America/New_York", "Asia/Kolkata"])
def test_matches_the_obvious_implementation(tz: str) -> None:
    p = period("2026-10-01", "2026-11-03", tz)
    rnd = random.Random(tz)
    day_us = 86_400_000_000
    calls: list[BillingCall] = []
    for i in range(2_000):
        entered = p.from_us - day_us + rnd.randrange(p.to_us - p.from_us + 2 * day_us)
        if i % 50 == 0 and calls:
            entered = calls[-1].entered_us               # ties in the same microsecond
        outcome = rnd.choice(["answered", "answered", "abandoned", "timeout", "transferred",
                              "unobserved"])
        wait = None if outcome == "unobserved" else rnd.randrange(10_000)
        calls.append(BillingCall(rnd.choice(["p1", "p2"]), f"u{rnd.randrange(500)}", entered,
                                 wait, outcome, rnd.choice(["x", "y"]), rnd.random() < 0.4,
                                 "live"))
    statement = build(calls, p)
    days, digest = naive_statement(calls, p)
    assert {d.date: billing.to_json(statement, False)["days"][i]
            for i, d in enumerate(statement.days) if d.counts.offered} == \
        {date: {"date": date, **counts} for date, counts in days.items()}
    assert statement.digest == digest
