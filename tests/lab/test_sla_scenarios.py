"""End to end on the lab PBX: SIPp callers and agents, ivr following over AMI.

Each scenario compares ivr's account of every call with what Asterisk
itself wrote in its queue_log (whole seconds, and a move by ivr shows there
as ABANDON followed by ENTERQUEUE in common: exactly what ivr must not call
an abandon).
"""

from __future__ import annotations

import time
from collections import defaultdict

import pytest

from ivr.calls.facts import Entered, Exited, JourneyAnswered, JourneyEnded
from ivr.lab import traffic
from ivr.ledger.store import Store
from ivr.reconcile.compare import reconcile
from ivr.reconcile.read import read_lines
from ivr.calls.records import CallRecord
from ivr.lab.pbx import Lab
from tests.helpers import eventually
from tests.lab.conftest import Running

pytestmark = pytest.mark.lab

FIRST, COMMON = "first-line", "common"
OPERATORS = ("op1", "op2", "op3", "op4")


def queue_log(lab: Lab, since: float) -> dict[str, list[tuple[str, str, list[str]]]]:
    """Asterisk's queue_log rows since `since`, by call: (queue, event, data)."""
    rows: dict[str, list[tuple[str, str, list[str]]]] = defaultdict(list)
    for line in lab.queue_log().splitlines():
        epoch, callid, queue, _agent, event, *data = line.split("|")
        if int(epoch) >= int(since) and callid != "NONE":
            rows[callid].append((queue, event, data))
    return rows


def exits(ivr: Running, queue: str) -> dict[str, Exited]:
    return {f.uniqueid: f for f in ivr.of(Exited) if f.queue == queue}


async def finished(ivr: Running, calls: int, timeout: float) -> None:
    await eventually(lambda: len(ivr.of(JourneyEnded)) >= calls, timeout=timeout,
                     interval=0.2, what=f"{calls} journeys ended")


async def ledger_agrees(ivr: Running, lab: Lab, since: float) -> list[CallRecord]:
    """The ledger holds every journey ivr ended, with the same outcomes, waits and
    payable verdicts as the metrics, and agrees with Asterisk's queue_log."""
    ended = {f.uniqueid for f in ivr.of(JourneyEnded)}
    await eventually(lambda: ivr.app.ledger.written >= len(ended) and ivr.app.ledger.backlog == 0,
                     timeout=5, what="the ledger written")
    calls = {c.uniqueid: c for c in await ivr.app.store.run(Store.calls, 0, 2**62)}
    assert set(calls) == ended
    for uid, call in calls.items():
        exited = [f for f in ivr.of(Exited) if f.uniqueid == uid]
        assert [(v.queue, v.outcome, v.wait_ms) for v in call.visits] == [
            (f.queue, f.outcome, f.wait_ms) for f in exited]
        answered = [f for f in ivr.of(JourneyAnswered) if f.uniqueid == uid]
        assert call.payable == any(f.payable for f in answered)
    overflow = {FIRST: 30}
    log = read_lines(lab.queue_log().splitlines(), overflow)
    result = reconcile(log, calls.values(), int(since), int(time.time()) + 1, overflow)
    assert result.matched == sum(len(c.visits) for c in calls.values())
    assert not result.missing_in_ledger and not result.missing_in_queue_log
    assert not result.disagreements, result.to_text()
    return list(calls.values())


@pytest.mark.recorded
async def test_operators_answer_after_3s_all_within_sla(
        lab: Lab, ivr: Running, phones: list[traffic.Sipp]) -> None:
    since = time.time()
    phones += [traffic.agent(op, ring_ms=3000) for op in OPERATORS]
    phones.append(traffic.callers(4, hold_ms=9000, rate=4, number_prefix="7910"))
    await finished(ivr, 4, timeout=40)

    answered = exits(ivr, FIRST)
    assert len(answered) == 4
    asterisk = queue_log(lab, since)
    for uid, fact in answered.items():
        assert fact.outcome == "answered" and fact.within_sla
        assert 3000 <= fact.wait_ms < 4000            # the agents ring 3 s
        connect = [d for q, e, d in asterisk[uid] if e == "CONNECT"]
        assert len(connect) == 1
        assert abs(fact.wait_ms / 1000 - int(connect[0][0])) < 1.0   # Asterisk's holdtime
    assert ivr.value("ivr_queue_answered_within_sla_total", queue=FIRST) == 4
    assert ivr.value("ivr_payable_calls_total") == 4
    assert ivr.value("ivr_journeys_total", outcome="answered") == 4
    assert ivr.value("ivr_queue_answer_wait_seconds_count", queue=FIRST) == 4
    assert ivr.value("ivr_queue_answer_wait_seconds_bucket", queue=FIRST, le="5.0") == 4
    ledger = await ledger_agrees(ivr, lab, since)
    assert len(ledger) == 4 and all(c.payable and c.source == "live" for c in ledger)


@pytest.mark.recorded
async def test_unanswered_callers_move_to_common_at_30s(
        lab: Lab, ivr: Running, phones: list[traffic.Sipp]) -> None:
    since = time.time()
    phones += [traffic.agent(op, ring_ms=120_000) for op in OPERATORS]   # nobody picks up
    phones += [traffic.agent(g, ring_ms=2000) for g in ("gen1", "gen2")]
    phones.append(traffic.callers(2, hold_ms=40_000, rate=2, number_prefix="7920"))
    await finished(ivr, 2, timeout=60)

    moved, answered = exits(ivr, FIRST), exits(ivr, COMMON)
    assert {f.outcome for f in moved.values()} == {"timeout"}
    assert {f.outcome for f in answered.values()} == {"answered"}
    assert moved.keys() == answered.keys() and len(moved) == 2
    asterisk = queue_log(lab, since)
    for uid, fact in moved.items():
        # 30.000 s on Asterisk's clock, and not a ring cycle (15 s) later.
        assert 30_000 <= fact.wait_ms < 30_500, fact
        events = [(q, e) for q, e, _ in asterisk[uid]]
        assert (FIRST, "ABANDON") in events and (COMMON, "ENTERQUEUE") in events
        assert (COMMON, "CONNECT") in events
    assert ivr.value("ivr_queue_exits_total", queue=FIRST, outcome="abandoned") == 0
    assert ivr.value("ivr_queue_exits_total", queue=FIRST, outcome="timeout") == 2
    assert ivr.value("ivr_queue_overflow_total", from_queue=FIRST, to_queue=COMMON) == 2
    assert ivr.value("ivr_payable_calls_total") == 0
    assert ivr.value("ivr_journeys_total", outcome="answered") == 2
    ledger = await ledger_agrees(ivr, lab, since)
    assert [[(v.queue, v.outcome) for v in c.visits] for c in ledger] == [
        [(FIRST, "timeout"), (COMMON, "answered")]] * 2
    # ivr told queue_log why it moved them (ledger.queue_log_decisions), for QueueMetrics & co.
    for uid in moved:
        assert (FIRST, "IVRMOVE", ["timeout", COMMON]) in queue_log(lab, since)[uid]


@pytest.mark.recorded
async def test_callers_hanging_up_after_10s_are_abandoned(
        lab: Lab, ivr: Running, phones: list[traffic.Sipp]) -> None:
    since = time.time()
    phones += [traffic.agent(op, ring_ms=120_000) for op in OPERATORS]
    phones.append(traffic.callers(3, hold_ms=10_000, rate=3, number_prefix="7930"))
    await finished(ivr, 3, timeout=30)

    left = exits(ivr, FIRST)
    assert {f.outcome for f in left.values()} == {"abandoned"} and len(left) == 3
    asterisk = queue_log(lab, since)
    for uid, fact in left.items():
        abandon = [d for q, e, d in asterisk[uid] if e == "ABANDON"]
        assert len(abandon) == 1
        assert abs(fact.wait_ms / 1000 - int(abandon[0][2])) < 1.0   # Asterisk's waittime
        assert 5000 < fact.wait_ms < 8000      # 10 s on the line, less the greeting
    assert ivr.value("ivr_queue_exits_total", queue=FIRST, outcome="timeout") == 0
    assert ivr.value("ivr_queue_abandon_wait_seconds_count", queue=FIRST) == 3
    assert ivr.value("ivr_journeys_total", outcome="abandoned") == 3
    ledger = await ledger_agrees(ivr, lab, since)
    assert {c.outcome for c in ledger} == {"abandoned"} and len(ledger) == 3


async def test_operator_answering_just_before_30s_is_payable(
        lab: Lab, ivr: Running, phones: list[traffic.Sipp]) -> None:
    since = time.time()
    ami = ivr.app.ami
    phones += [traffic.agent(op, ring_ms=3000) for op in OPERATORS]
    for op in OPERATORS:   # everyone is busy with something else...
        await ami.action("QueuePause", {"Queue": FIRST, "Interface": f"PJSIP/{op}", "Paused": "true"})
    try:
        phones.append(traffic.callers(1, hold_ms=40_000, rate=1, number_prefix="7940"))
        await eventually(lambda: bool(ivr.of(Entered)), timeout=10, what="caller queued")
        entered = ivr.of(Entered)[0]
        # ...until op1 is free 26 s after the caller queued, and rings 3 s.
        await eventually(lambda: time.time() >= entered.at_us / 1e6 + 26, timeout=30)
        await ami.action("QueuePause", {"Queue": FIRST, "Interface": "PJSIP/op1", "Paused": "false"})
        await finished(ivr, 1, timeout=50)
    finally:
        for op in OPERATORS:
            await ami.action("QueuePause", {"Queue": FIRST, "Interface": f"PJSIP/{op}", "Paused": "false"})

    (fact,) = exits(ivr, FIRST).values()
    assert fact.outcome == "answered" and 29_000 <= fact.wait_ms <= 30_000 and fact.within_sla
    (journey,) = ivr.of(JourneyAnswered)
    assert journey.payable
    connect = [d for q, e, d in queue_log(lab, since)[fact.uniqueid] if e == "CONNECT"]
    # Asterisk's holdtime is a difference of whole-second clocks: 29 or 30 for a 29.x s wait.
    assert abs(fact.wait_ms / 1000 - int(connect[0][0])) < 1.0
    assert ivr.value("ivr_payable_calls_total") == 1
    assert ivr.value("ivr_queue_exits_total", queue=FIRST, outcome="timeout") == 0
    (call,) = await ledger_agrees(ivr, lab, since)
    assert call.payable and call.answered_member == "op1"
