"""ivr logged in as an AMI user that reads no `dialplan` class, as a PBX's read-only
monitoring user often is: no VarSet reaches it, so no QUEUESTATUS and no IVR_MOVE.
It says so (/readyz ami_classes) and tells queue exits by the caller's channel
(calls/judge.silent_exit), each judged here against Asterisk's queue_log."""

from __future__ import annotations

import time

import pytest

from ivr.calls.facts import Exited, JourneyEnded
from ivr.lab import traffic
from ivr.lab.pbx import Lab
from tests.helpers import eventually
from tests.lab.conftest import Running
from tests.lab.test_sla_scenarios import finished, queue_log

pytestmark = [pytest.mark.lab]


def exits_of(ivr: Running, uid: str) -> list[tuple[str, str]]:
    return [(f.queue, f.outcome) for f in ivr.of(Exited) if f.uniqueid == uid]


def ended(ivr: Running) -> dict[str, str]:
    return {f.uniqueid: f.outcome for f in ivr.of(JourneyEnded)}


async def test_the_monitoring_user_is_seen_to_lack_the_dialplan_class(
        lab: Lab, ivr_monitor: Running) -> None:
    pbx = ivr_monitor.app.first
    await eventually(lambda: pbx.classes.state()["dialplan"] == "no", timeout=10,
                     what=lambda: f"dialplan known missing: {pbx.classes.state()}")


async def test_the_full_user_is_seen_to_read_the_dialplan_class(lab: Lab, ivr: Running) -> None:
    """The probe's VarSet of a global comes back through ivr's session filter."""
    pbx = ivr.app.first
    await eventually(lambda: pbx.classes.state()["dialplan"] == "yes", timeout=10,
                     what=lambda: f"dialplan known read: {pbx.classes.state()}")


@pytest.mark.recorded
async def test_without_the_dialplan_class_a_timeout_runs_on_and_a_hang_up_abandons(
        lab: Lab, ivr_monitor: Running, phones: list[traffic.Sipp]) -> None:
    """Two callers of Queue(shape-tmo,,,,4), then Wait(1) and Hangup(); no QUEUESTATUS
    reaches ivr.  One waits the 4 s out: Asterisk raises QueueCallerAbandon for the
    timeout too, and the Hangup at another priority tells ivr the channel ran on.
    The other hangs up at 2 s, where Queue() ran: abandoned."""
    since = time.time()
    phones.append(traffic.callers(1, hold_ms=9000, number_prefix="7971", service="8711"))
    phones.append(traffic.callers(1, hold_ms=2000, number_prefix="7972", service="8711"))
    await finished(ivr_monitor, 2, timeout=20)
    by_caller = {f.record.caller[:4]: f for f in ivr_monitor.of(JourneyEnded)}
    rows = queue_log(lab, since)
    for number, exit_, outcome, row in (("7971", "timeout", "unanswered", "EXITWITHTIMEOUT"),
                                        ("7972", "abandoned", "abandoned", "ABANDON")):
        journey = by_caller[number]
        assert exits_of(ivr_monitor, journey.uniqueid) == [("shape-tmo", exit_)], number
        assert journey.outcome == outcome, number
        asterisk = [e for q, e, _d in rows[journey.uniqueid] if q == "shape-tmo"]
        assert asterisk[-1] == row, (number, asterisk)


@pytest.mark.recorded
async def test_without_the_dialplan_class_a_second_queue_after_a_timeout_is_a_new_visit(
        lab: Lab, ivr_monitor: Running, phones: list[traffic.Sipp]) -> None:
    """Queue(shape-tmo,,,,4) times out, Queue(shape-next) at the next priority
    answers: a timeout, then an answered visit; never `transferred`."""
    since = time.time()
    phones.append(traffic.agent("gen2", ring_ms=1000))
    phones.append(traffic.callers(1, hold_ms=9000, number_prefix="7973", service="8712"))
    await finished(ivr_monitor, 1, timeout=25)
    [(uid, outcome)] = ended(ivr_monitor).items()
    assert exits_of(ivr_monitor, uid) == [("shape-tmo", "timeout"), ("shape-next", "answered")]
    assert outcome == "answered"
    events = [(q, e) for q, e, _d in queue_log(lab, since)[uid] if e != "RINGNOANSWER"]
    assert ("shape-tmo", "EXITWITHTIMEOUT") in events and ("shape-next", "CONNECT") in events


@pytest.mark.recorded
async def test_without_the_dialplan_class_nor_timestamps_first_line_is_judged_as_asterisk(
        lab: Lab, ivr_monitor: Running, phones: list[traffic.Sipp]) -> None:
    """first-line on a PBX with neither: a caller hangs up a few seconds into it
    (abandoned), and one waits past 30 s, moved to common by ivr (its IVR_MOVE unseen:
    the Redirect at the move threshold is the timeout) and answered there.  Both
    numbers are unknown: the dialplan asks for an account (3 s) before first-line."""
    lab.event_timestamps(False)
    try:
        since = time.time()
        phones += [traffic.agent(g, ring_ms=1000) for g in ("gen1", "gen2")]
        phones.append(traffic.callers(1, hold_ms=11_000, number_prefix="7974"))
        phones.append(traffic.callers(1, hold_ms=50_000, number_prefix="7975"))
        await finished(ivr_monitor, 2, timeout=70)
    finally:
        lab.event_timestamps(True)
    by_caller = {f.record.caller[:4]: f for f in ivr_monitor.of(JourneyEnded)}
    hung_up, moved = by_caller["7974"], by_caller["7975"]
    assert exits_of(ivr_monitor, hung_up.uniqueid) == [("first-line", "abandoned")]
    assert exits_of(ivr_monitor, moved.uniqueid) == [("first-line", "timeout"),
                                                     ("common", "answered")]
    assert {hung_up.record.precision, moved.record.precision} == {"s"}
    asterisk = queue_log(lab, since)
    assert [e for q, e, _d in asterisk[hung_up.uniqueid] if q == "first-line"][-1] == "ABANDON"
    # queue_log says ABANDON for ivr's Redirect too; ivr's own IVRMOVE row says why.
    moves = [d for q, e, d in asterisk[moved.uniqueid] if e == "IVRMOVE"]
    assert moves and moves[0][0] == "timeout", asterisk[moved.uniqueid]
    [abandon] = [d for q, e, d in asterisk[hung_up.uniqueid] if e == "ABANDON"]
    [visit] = hung_up.record.visits
    assert visit.wait_ms == int(abandon[2]) * 1000       # Asterisk's own whole seconds
