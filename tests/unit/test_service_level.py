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
