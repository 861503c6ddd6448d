"""Replays of AMI transcripts captured from the lab PBX (tests/fixtures/capture.py).

The transcripts are real Asterisk 22 traffic; the expected figures below are
what the lab run produced, and any way of cutting the bytes into reads must
give the very same facts.
"""

from __future__ import annotations

import random

import pytest
from prometheus_client import CollectorRegistry

from ivr.ami import events
from ivr.calls.facts import Entered, Exited, JourneyAnswered, JourneyEnded, Overflowed
from ivr.calls.tracker import Tracker
from ivr.metrics.families import Metrics
from ivr.metrics.live import LiveCollector
from tests.replay import Replay, transcript

QUEUES = ("first-line", "common", "engineers")


def exits(r: Replay) -> list[tuple[str, str]]:
    return [(f.queue, f.outcome) for f in r.of(Exited)]


@pytest.mark.parametrize("name", ["answered", "moved", "abandoned", "fallback_timeout", "resync"])
def test_any_chunking_gives_the_same_facts(name: str) -> None:
    data = transcript(name)
    whole = Replay().feed(data)
    rng = random.Random(name)
    randomly = Replay().feed(data, (rng.randint(1, 700) for _ in iter(int, 1)))
    bytewise = Replay().feed(data, (1 for _ in iter(int, 1)))
    assert whole.malformed == randomly.malformed == bytewise.malformed == 0
    assert whole.facts == randomly.facts == bytewise.facts
    assert whole.events > 0


def test_answered_by_operators_after_3s() -> None:
    r = Replay().feed(transcript("answered"))
    assert exits(r) == [("first-line", "answered")] * 2
    for fact in r.of(Exited):
        assert fact.within_sla and 3000 <= fact.wait_ms < 3100
    assert all(f.payable for f in r.of(JourneyAnswered))
    assert [f.outcome for f in r.of(JourneyEnded)] == ["answered"] * 2


def test_moved_by_ivr_at_30s_is_a_timeout_not_an_abandon() -> None:
    """Asterisk raised QueueCallerAbandon (and queue_log says ABANDON) for this move."""
    data = transcript("moved")
    assert b"Event: QueueCallerAbandon" in data and b"Variable: IVR_MOVE" in data
    r = Replay().feed(data)
    assert exits(r) == [("first-line", "timeout"), ("common", "answered")]
    moved = r.of(Exited)[0]
    assert 30_000 <= moved.wait_ms <= 30_010
    assert [(f.from_queue, f.to_queue) for f in r.of(Overflowed)] == [
        ("first-line", "common")]
    (answered,) = r.of(JourneyAnswered)
    assert not answered.payable and answered.queue == "common"


def test_dialplan_fallback_timeout_is_a_timeout() -> None:
    """ivr was not running: Queue()'s own timeout moved the caller (QUEUESTATUS=TIMEOUT)."""
    data = transcript("fallback_timeout")
    assert b"Variable: IVR_MOVE" not in data and b"Value: TIMEOUT" in data
    r = Replay().feed(data)
    assert exits(r) == [("first-line", "timeout"), ("common", "answered")]
    assert 30_000 <= r.of(Exited)[0].wait_ms < 32_000


def test_callers_hanging_up_are_abandoned() -> None:
    r = Replay().feed(transcript("abandoned"))
    assert exits(r) == [("first-line", "abandoned")] * 2
    assert [f.outcome for f in r.of(JourneyEnded)] == ["abandoned"] * 2


def test_metrics_from_a_replay() -> None:
    registry = CollectorRegistry()
    r = Replay(metrics=Metrics(registry, QUEUES, [30.0])).feed(transcript("moved"))
    value = registry.get_sample_value
    assert value("ivr_queue_entered_total", {"pbx": "default", "queue": "first-line"}) == 1
    assert value("ivr_queue_exits_total", {"pbx": "default", "queue": "first-line", "outcome": "timeout"}) == 1
    assert value("ivr_queue_exits_total", {"pbx": "default", "queue": "first-line", "outcome": "abandoned"}) == 0
    assert value("ivr_queue_overflow_total", {"pbx": "default", "from_queue": "first-line", "to_queue": "common"}) == 1
    assert value("ivr_queue_answered_within_sla_total", {"pbx": "default", "queue": "common"}) == 1
    assert value("ivr_payable_calls_total", {"pbx": "default"}) == 0
    assert value("ivr_journey_answer_wait_seconds_count", {"pbx": "default"}) == 1
    # A bucket edge exactly at the threshold, and zero series for idle queues.
    assert value("ivr_queue_answer_wait_seconds_bucket", {"pbx": "default", "queue": "common", "le": "30.0"}) == 1
    assert value("ivr_queue_entered_total", {"pbx": "default", "queue": "engineers"}) == 0
    assert len(r.facts) > 0


class _Ami:
    up, reconnects, events_received, malformed_frames = True, 0, 0, 0


class _Pbx:
    def __init__(self, tracker: Tracker) -> None:
        self.name, self.tracker, self.ami = "default", tracker, _Ami()


def test_resync_snapshot_recovers_the_waiting_caller() -> None:
    """After a restart ivr knows nothing: the snapshot alone must bring the caller back."""
    r = Replay().feed(transcript("resync"))
    queue_status, channels = r.lists["snap-queues"], r.lists["snap-channels"]
    entry = next(m for m in queue_status if m.event == "QueueEntry")
    now = r.tracker.journeys[entry["Uniqueid"]].first_entered_us / 1e6 + int(entry["Wait"]) + 0.5
    snap = events.snapshot(queue_status, channels, now)
    assert len(snap.members) == 8            # op1-4, gen1-2, eng1-2
    fresh = Replay()
    fresh.apply(fresh.tracker.resync(snap))
    (entered,) = fresh.of(Entered)
    assert entered.queue == "first-line" and entered.recovered
    assert fresh.tracker.agent_counts("first-line")["ringing"] >= 1
    # The same snapshot on the tracker that saw it all live changes nothing.
    assert r.tracker.resync(snap) == []
    registry = CollectorRegistry()
    registry.register(LiveCollector([_Pbx(fresh.tracker)], QUEUES, clock=lambda: now))
    here = {"pbx": "default", "queue": "first-line"}
    assert registry.get_sample_value("ivr_queue_waiting_calls", here) == 1
    oldest = registry.get_sample_value("ivr_queue_oldest_wait_seconds", here)
    assert oldest == int(entry["Wait"])      # all QueueEntry tells: whole seconds
    assert registry.get_sample_value("ivr_ami_up", {"pbx": "default"}) == 1


@pytest.mark.parametrize("name", ["answered", "moved", "abandoned", "fallback_timeout", "resync"])
def test_skipping_noise_undecoded_changes_no_fact(name: str) -> None:
    """events.wanted drops frames on bytes alone: it must drop nothing that matters."""
    data = transcript(name)
    filtered, everything = Replay().feed(data), Replay().feed(data, keep=False)
    assert filtered.facts == everything.facts and filtered.lists == everything.lists
    assert filtered.events == everything.events        # every followed event still parsed
