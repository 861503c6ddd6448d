"""The record a journey leaves behind, and the ledger it lands in: from lab
transcripts replayed through the real pipeline into a real SQLite store."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.ami import events
from ivr.calls.facts import JourneyEnded
from ivr.calls.tracker import Tracker
from ivr.calls import records as rec
from ivr.ledger.store import Store
from tests.replay import Replay, transcript


def records(r: Replay) -> list[rec.CallRecord]:
    return [f.record for f in r.of(JourneyEnded)]


def test_an_answered_call_is_recorded_whole() -> None:
    first, second = records(Replay().feed(transcript("answered")))
    assert first.pbx == "default" and first.uniqueid == first.linkedid == "1795530561.42"
    assert first.caller == "79501" and first.outcome == "answered" and first.payable
    assert first.source == rec.LIVE and first.precision == rec.MS
    (visit,) = first.visits
    assert visit.seq == 1 and visit.queue == "first-line" and visit.outcome == "answered"
    assert visit.member == first.answered_member == "op2"
    assert visit.entered_us == first.entered_us == 1795530563082667
    assert first.answered_us == visit.left_us == 1795530566093212
    assert visit.wait_ms == (1795530566093212 - 1795530563082667) // 1000
    assert first.ended_us >= first.answered_us
    assert second.uniqueid != first.uniqueid


def test_a_moved_call_keeps_both_visits() -> None:
    (call,) = records(Replay().feed(transcript("moved")))
    assert [(v.seq, v.queue, v.outcome) for v in call.visits] == [
        (1, "first-line", "timeout"), (2, "common", "answered")]
    left = call.visits[0].left_us
    assert left is not None and left <= call.visits[1].entered_us
    assert 30_000 <= (call.visits[0].wait_ms or 0) <= 30_010
    assert not call.payable and call.answered_queue == "common"
    assert call.first_visit("first-line") == call.visits[0]


def test_an_abandoned_call_is_recorded_as_abandoned() -> None:
    calls = records(Replay().feed(transcript("abandoned")))
    assert calls and all(c.outcome == "abandoned" and not c.payable for c in calls)
    assert all(c.visits[-1].outcome == "abandoned" and c.answered_us is None for c in calls)


def test_recovered_callers_are_recorded_to_the_second_as_resync() -> None:
    """After a restart the snapshot brings a caller back; its record says so."""
    live = Replay().feed(transcript("resync"))
    queue_status, channels = live.lists["snap-queues"], live.lists["snap-channels"]
    entry = next(m for m in queue_status if m.event == "QueueEntry")
    now = live.tracker.journeys[entry["Uniqueid"]].first_entered_us / 1e6 + int(entry["Wait"]) + 0.5
    fresh = Replay()
    fresh.apply(fresh.tracker.resync(events.snapshot(queue_status, channels, now)))
    fresh.apply(fresh.tracker.handle(events.HangupAsked(round((now + 2) * 1e6), entry["Uniqueid"])))
    fresh.apply(fresh.tracker.handle(events.Hangup(round((now + 2) * 1e6), entry["Uniqueid"])))
    (call,) = records(fresh)
    assert call.uniqueid == entry["Uniqueid"]
    assert call.source == rec.RESYNC and call.precision == rec.SECONDS
    assert call.entered_us == round(now * 1e6) - int(entry["Wait"]) * 1_000_000
    assert [(v.queue, v.outcome) for v in call.visits] == [("first-line", "abandoned")]


def test_the_record_names_the_configured_pbx() -> None:
    (call,) = records(Replay(tracker=Tracker(pbx="north")).feed(transcript("moved")))
    assert call.pbx == "north"


def test_a_record_survives_the_spool_format() -> None:
    for call in records(Replay().feed(transcript("moved"))):
        assert rec.from_dict(rec.to_dict(call)) == call


@pytest.mark.parametrize("name", ["answered", "moved", "abandoned"])
async def test_the_same_traffic_fed_twice_gives_the_same_ledger(name: str, tmp_path: Path) -> None:
    """A replay (or a resync that sees the same calls end) writes nothing twice."""
    store = Store(f"sqlite:///{tmp_path / 'ledger.db'}")
    await store.migrate()
    try:
        once = records(Replay().feed(transcript(name)))
        assert await store.write(once) == len(once) > 0
        ledger = await store.calls(0, 2**62)
        again = records(Replay().feed(transcript(name)))
        assert await store.write(again) == 0
        assert await store.calls(0, 2**62) == ledger
        assert {c.uniqueid: c for c in ledger} == {c.uniqueid: c for c in once}
    finally:
        await store.close()
