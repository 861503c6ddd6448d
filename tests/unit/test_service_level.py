"""First-line's service level on the board (reports/service_level.py): pure arithmetic."""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from ivr.config import Config, QueueConfig
from ivr.calls.records import FIRST_LINE
from ivr.reports import service_level as sl


def test_first_line_is_the_queue_named_so_wherever_it_is_listed() -> None:
    queues = (QueueConfig("common"), QueueConfig(FIRST_LINE, 20.0))
    assert Config(queues=queues).first_line == QueueConfig(FIRST_LINE, 20.0)
    assert Config().first_line.name == FIRST_LINE and Config().first_line.sla_seconds == 30.0
    # A config without it: the default's (its threshold), so the board still has figures.
    assert Config(queues=(QueueConfig("only"),)).first_line.name == FIRST_LINE


def test_now_counts_the_waiting_callers_within_the_threshold() -> None:
    first = QueueConfig(FIRST_LINE, 30.0)
    queues = {FIRST_LINE: {"waiting": [{"wait_seconds": 12.0}, {"wait_seconds": 30.0},
                                       {"wait_seconds": 30.5}]},
              "common": {"waiting": [{"wait_seconds": 1.0}]}}
    assert sl.level(first, queues, sl.Today(0.875, 8)) == {
        "queue": FIRST_LINE, "threshold_seconds": 30.0, "waiting": 3, "waiting_within": 2,
        "today_share": 0.875, "today_offered": 8}
    # Nobody waiting, nothing offered today (or the ledger away): zeros and no share.
    assert sl.level(first, {}, sl.Today()) == {
        "queue": FIRST_LINE, "threshold_seconds": 30.0, "waiting": 0, "waiting_within": 0,
        "today_share": None, "today_offered": 0}


def test_today_is_the_local_day_of_the_report_zone() -> None:
    moscow = ZoneInfo("Europe/Moscow")
    late_utc = datetime(2026, 11, 30, 22, 30, tzinfo=timezone.utc)     # 01:30 on 1 December there
    p = sl.today(late_utc, moscow)
    assert p.dates == ("2026-12-01",) and p.tz == "Europe/Moscow"
    assert p.from_us == round(datetime(2026, 12, 1, tzinfo=moscow).timestamp() * 1e6)
    assert p.to_us - p.from_us == 86_400 * 1_000_000


# -- the chart of the day: 15-minute intervals (edges, builder, the ledger's counts) ----

def test_a_day_is_96_quarter_hours_of_the_report_zone_and_a_dst_day_is_not() -> None:
    kathmandu = sl.today(datetime(2026, 11, 30, 12, tzinfo=timezone.utc), ZoneInfo("Asia/Kathmandu"))
    cuts = sl.edges(kathmandu)                  # +05:45: local quarter-hours, not UTC's
    day = sl.intervals(cuts, [], kathmandu.zone)
    assert len(day) == 96 and cuts[-1] == kathmandu.to_us
    assert (day[0].label, day[1].label, day[37].label, day[-1].label) == ("00:00", "00:15",
                                                                          "09:15", "23:45")
    spring = sl.today(datetime(2026, 3, 29, 12, tzinfo=timezone.utc), ZoneInfo("Europe/Berlin"))
    labels = [x.label for x in sl.intervals(sl.edges(spring), [], spring.zone)]
    assert len(labels) == 92 and labels[7:9] == ["01:45", "03:00"]     # 02:00 never was


def test_intervals_take_the_ledgers_counts_and_shares_are_of_the_offered() -> None:
    p = sl.today(datetime(2026, 11, 30, 12, tzinfo=timezone.utc), ZoneInfo("UTC"))
    day = sl.intervals(sl.edges(p), [(36, 4, 3, 2, 1), (38, 1, 0, 0, 1)], p.zone)
    assert (day[36].label, day[36].offered, day[36].within, day[36].share) == ("09:00", 4, 2, 0.5)
    assert day[37].share is None and day[38].share == 0.0
    assert day[36].to_json() == {"start": "09:00", "offered": 4, "answered": 3, "within": 2,
                                 "abandoned": 1, "share": 0.5}
    now = p.from_us + (10 * 3600 + 20 * 60) * 1_000_000       # 10:20
    shown = sl.shown(day, now)
    assert (shown[0].label, shown[-1].label) == ("07:00", "10:45")   # 4 hours to now's hour's end
    early = sl.intervals(sl.edges(p), [(4, 1, 1, 1, 0)], p.zone)     # a call at 01:00
    assert sl.shown(early, now)[0].label == "01:00"
    chart = sl.chart(QueueConfig(FIRST_LINE, 30.0), 0.8, day, now)
    assert (chart["offered"], chart["within"], chart["share"], chart["target"]) == (5, 2, 0.4, 0.8)
    assert [x["start"] for x in chart["intervals"]][:1] == ["07:00"]


def test_each_queues_day_counts_answered_abandoned_and_moved() -> None:
    rows = [("first-line", "answered", 5), ("first-line", "timeout", 2), ("first-line", "abandoned", 1),
            ("common", "withdrawn", 1), ("common", "answered", 2), ("elsewhere", "answered", 9)]
    day = sl.per_queue(rows, ("first-line", "common", "engineers"), FIRST_LINE, sl.Today(0.625, 8))
    assert day["first-line"] == {"offered": 8, "answered": 5, "abandoned": 1, "moved": 2,
                                 "payable_share": 0.625}
    assert day["common"] == {"offered": 3, "answered": 2, "abandoned": 0, "moved": 1,
                             "payable_share": None}
    assert day["engineers"]["offered"] == 0 and "elsewhere" not in day
