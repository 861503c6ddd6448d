"""app_queue's harder shapes on the lab (issue 20), each judged against queue_log:
the 30 s edge to a tenth of a second, ring-no-answer rounds, members nobody may
ring, and an answered caller taken away by another AMI client."""

from __future__ import annotations

import asyncio
import time

import pytest

from ivr.ami.codec import Message
from ivr.calls.facts import Exited, JourneyAnswered, JourneyEnded, NotAdmitted
from ivr.lab import traffic
from ivr.lab.pbx import Lab
from tests.helpers import eventually
from tests.lab.conftest import Running
from tests.lab.test_queue_shapes import other_ami_client
from tests.lab.test_sla_scenarios import finished, queue_log

pytestmark = [pytest.mark.lab, pytest.mark.recorded]


def visits(ivr: Running, uid: str) -> list[tuple[str, str, int]]:
    return [(f.queue, f.outcome, f.wait_ms) for f in ivr.of(Exited) if f.uniqueid == uid]


def by_number(ivr: Running) -> dict[str, JourneyEnded]:
    return {f.record.caller[:4]: f for f in ivr.of(JourneyEnded)}


def events(rows: list[tuple[str, str, list[str]]], queue: str) -> list[str]:
    return [e for q, e, _d in rows if q == queue]


# Answer() waits up to 500 ms for the caller's first voice frame, and SIPp sends
# none: a caller of 8713 joins first-line about 0.5 s after its call is answered.
ANSWER_DELAY_MS = 500


async def test_hanging_up_at_29_9_s_is_an_abandon_and_at_30_1_s_the_move_came_first(
        lab: Lab, ivr: Running, phones: list[traffic.Sipp]) -> None:
    """Straight into first-line (8713, no greeting) while its members ring: one
    caller hangs up about 29.9 s in, the other about 30.1 s in, after ivr's move
    at 30.000 s."""
    since = time.time()
    phones.append(traffic.callers(1, hold_ms=29_900 + ANSWER_DELAY_MS, number_prefix="7976",
                                  service="8713"))
    phones.append(traffic.callers(1, hold_ms=30_100 + ANSWER_DELAY_MS, number_prefix="7977",
                                  service="8713"))
    await finished(ivr, 2, timeout=45)
    early, late = by_number(ivr)["7976"], by_number(ivr)["7977"]
    [(queue, outcome, waited)] = visits(ivr, early.uniqueid)
    assert (queue, outcome) == ("first-line", "abandoned") and 29_500 <= waited < 30_000, waited
    assert early.outcome == "abandoned" and not early.record.payable
    late_visits = visits(ivr, late.uniqueid)
    assert late_visits[0][:2] == ("first-line", "timeout") and 30_000 <= late_visits[0][2] < 30_100
    # It hung up as it reached common, or before Queue(common) took it.
    assert [v[:2] for v in late_visits[1:]] in ([], [("common", "abandoned")])
    assert not late.record.payable
    asterisk = queue_log(lab, since)
    assert events(asterisk[early.uniqueid], "first-line")[-1] == "ABANDON"
    assert "IVRMOVE" in events(asterisk[late.uniqueid], "first-line")
    assert "IVRMOVE" not in events(asterisk[early.uniqueid], "first-line")


async def test_members_ringing_unanswered_before_a_timeout_are_one_visit(
        lab: Lab, ivr: Running, phones: list[traffic.Sipp]) -> None:
    """op1 and op2 are rung 2 s a round, 1 s apart, and never answer; Queue()'s 7 s
    run out after three rounds (the last cut short): RINGNOANSWER per member per
    round in queue_log, and still one visit, a timeout, for ivr."""
    since = time.time()
    phones += [traffic.agent(op, ring_ms=60_000) for op in ("op1", "op2")]
    phones.append(traffic.callers(1, hold_ms=12_000, number_prefix="7978", service="8714"))
    await finished(ivr, 1, timeout=25)
    [ended] = ivr.of(JourneyEnded)
    [(queue, outcome, waited)] = visits(ivr, ended.uniqueid)
    assert (queue, outcome) == ("shape-rna", "timeout") and 6_500 <= waited <= 8_000
    rows = queue_log(lab, since)[ended.uniqueid]
    names = [e for q, e, _d in rows]
    assert names.count("RINGNOANSWER") >= 4, rows           # 2 members, 2 rounds or more
    assert names[-1] == "EXITWITHTIMEOUT", rows
    assert names.count("ENTERQUEUE") == 1, rows


async def test_a_paused_member_and_a_penalty_out_of_range_ring_nobody_and_time_out(
        lab: Lab, ivr: Running, phones: list[traffic.Sipp]) -> None:
    since = time.time()
    async with other_ami_client(lab) as other:
        reply = await other.action("QueuePause", {"Queue": "shape-paused", "Interface": "PJSIP/op3",
                                                  "Paused": "true", "Reason": "lab"})
        assert reply.response == "Success"
        try:
            phones.append(traffic.callers(1, hold_ms=9000, number_prefix="7979", service="8715"))
            phones.append(traffic.callers(1, hold_ms=9000, number_prefix="7980", service="8716"))
            await finished(ivr, 2, timeout=20)
        finally:
            await other.action("QueuePause", {"Queue": "shape-paused", "Interface": "PJSIP/op3",
                                              "Paused": "false"})
    asterisk = queue_log(lab, since)
    for number, queue in (("7979", "shape-paused"), ("7980", "shape-penalty")):
        ended = by_number(ivr)[number]
        [(q, outcome, waited)] = visits(ivr, ended.uniqueid)
        assert (q, outcome) == (queue, "timeout") and 3_500 <= waited <= 5_000
        rows = events(asterisk[ended.uniqueid], queue)
        assert rows == ["ENTERQUEUE", "EXITWITHTIMEOUT"], rows      # nobody was rung


async def test_an_answered_caller_redirected_by_another_client_stays_one_answered_visit(
        lab: Lab, ivr: Running, phones: list[traffic.Sipp]) -> None:
    since = time.time()
    phones.append(traffic.agent("gen2", ring_ms=1000))
    phones.append(traffic.callers(1, hold_ms=12_000, number_prefix="7981", service="8717"))
    await eventually(lambda: bool(ivr.of(JourneyAnswered)), timeout=15, what="gen2 answered")
    [answered] = ivr.of(JourneyAnswered)
    await asyncio.sleep(1.0)
    channel = next(j.channel for j in ivr.app.tracker.journeys.values()
                   if j.uniqueid == answered.uniqueid)
    async with other_ami_client(lab) as other:
        reply = await other.action("Redirect", {"Channel": channel, "Context": "lab-after-redirect",
                                                "Exten": "s", "Priority": "1"})
        assert reply.response == "Success"
    await finished(ivr, 1, timeout=15)
    [ended] = ivr.of(JourneyEnded)
    assert [v[:2] for v in visits(ivr, ended.uniqueid)] == [("shape-next", "answered")]
    assert ended.outcome == "answered"
    rows = events(queue_log(lab, since)[ended.uniqueid], "shape-next")
    assert rows.count("ENTERQUEUE") == 1 and "CONNECT" in rows, rows


async def test_a_full_queue_and_an_empty_one_refuse_callers_at_the_door(
        lab: Lab, ivr: Running, phones: list[traffic.Sipp]) -> None:
    """maxlen = 1 and joinempty = no: no QueueCallerJoin, no visit, no queue_log row;
    counted as not admitted, by reason."""
    since = time.time()
    phones.append(traffic.callers(1, hold_ms=8000, number_prefix="7982", service="8718"))
    await eventually(lambda: bool(ivr.app.tracker.waiting("shape-full")), timeout=10,
                     what="the first caller waiting in shape-full")
    phones.append(traffic.callers(1, hold_ms=3000, number_prefix="7983", service="8718"))
    phones.append(traffic.callers(1, hold_ms=3000, number_prefix="7984", service="8719"))
    await eventually(lambda: len(ivr.of(NotAdmitted)) == 2, timeout=10, what="two refused")
    await finished(ivr, 1, timeout=15)
    refused = {f.reason: f.uniqueid for f in ivr.of(NotAdmitted)}
    assert set(refused) == {"full", "joinempty"}
    assert ivr.value("ivr_queue_not_admitted_total", reason="full") == 1
    assert ivr.value("ivr_queue_not_admitted_total", reason="joinempty") == 1
    [ended] = ivr.of(JourneyEnded)                     # only the caller let in
    assert [v[:2] for v in visits(ivr, ended.uniqueid)] == [("shape-full", "timeout")]
    asterisk = queue_log(lab, since)
    assert all(uid not in asterisk for uid in refused.values()), asterisk


async def test_the_caller_blind_transfers_the_answered_member_one_answered_visit(
        lab: Lab, ivr: Running, phones: list[traffic.Sipp]) -> None:
    """The caller REFERs gen2, who answered it in shape-next, to 8720: ivr says
    answered, and no visit more. queue_log ends the stay with BLINDTRANSFER or, now
    and then (6 runs in 6 gave BLINDTRANSFER; one CI run under load gave the other),
    COMPLETECALLER: the caller's channel leaves as it transfers, and app_queue hears
    of the transfer (bridge topic) and of the hangup (channel topic) through two
    stasis routers, so whichever comes first is the one it writes."""
    since = time.time()
    phones.append(traffic.agent("gen2", ring_ms=1000))
    phones.append(traffic.transferring_caller(talk_ms=5000, target="8720", service="8717"))
    await finished(ivr, 1, timeout=20)
    [ended] = ivr.of(JourneyEnded)
    assert [v[:2] for v in visits(ivr, ended.uniqueid)] == [("shape-next", "answered")]
    assert ended.outcome == "answered" and ivr.app.tracker.journeys == {}
    rows = events(queue_log(lab, since)[ended.uniqueid], "shape-next")
    assert rows.count("ENTERQUEUE") == 1 and "CONNECT" in rows, rows
    assert rows[-1] in ("BLINDTRANSFER", "COMPLETECALLER"), rows


async def test_a_member_sent_on_after_the_caller_hangs_up_is_no_visit(
        lab: Lab, ivr: Running, phones: list[traffic.Sipp]) -> None:
    """Queue(shape-next,F(lab-after-member^s^1)): gen2's leg runs more dialplan after
    the caller hangs up; it is no caller of a queue, so no journey and no visit."""
    since = time.time()
    phones.append(traffic.agent("gen2", ring_ms=1000))
    phones.append(traffic.callers(1, hold_ms=5000, number_prefix="7986", service="8721"))
    await finished(ivr, 1, timeout=20)
    await asyncio.sleep(2.0)                          # the member's Wait(1), then Hangup
    [ended] = ivr.of(JourneyEnded)
    assert [v[:2] for v in visits(ivr, ended.uniqueid)] == [("shape-next", "answered")]
    assert len(ivr.of(Exited)) == 1 and ivr.app.tracker.journeys == {}
    rows = events(queue_log(lab, since)[ended.uniqueid], "shape-next")
    assert rows.count("ENTERQUEUE") == 1 and "COMPLETECALLER" in rows, rows


def member_channel(lab: Lab, device: str) -> str:
    """The one channel of `device` (PJSIP/gen2) up on the lab now."""
    concise = lab.cli("core show channels concise").splitlines()
    [channel] = [line.split("!")[0] for line in concise if line.startswith(f"{device}-")]
    return channel


async def test_the_member_completes_an_attended_transfer_one_answered_visit(
        lab: Lab, ivr: Running, phones: list[traffic.Sipp]) -> None:
    """gen2 answers in shape-next (Queue() with t), consults 8724 (AMI Atxfer, which
    sends the atxfer code into the bridge for gen2) and hangs up: the caller is
    bridged with 8724.  queue_log: ATTENDEDTRANSFER; ivr: answered, no visit more."""
    since = time.time()
    phones.append(traffic.agent("gen2", ring_ms=1000))
    phones.append(traffic.callers(1, hold_ms=15_000, number_prefix="7987", service="8723"))
    await eventually(lambda: bool(ivr.of(JourneyAnswered)), timeout=15, what="gen2 answered")
    await asyncio.sleep(1.0)
    gen2 = member_channel(lab, "PJSIP/gen2")
    completed: list[Message] = []                    # ivr's own filter keeps these out

    def on_event(message: Message) -> None:
        if message.get("Event") == "AgentComplete":
            completed.append(message)

    async with other_ami_client(lab, on_event) as other:
        reply = await other.action("Atxfer", {"Channel": gen2, "Exten": "8724",
                                              "Context": "ivr-customers"})
        assert reply.response == "Success", reply
        await eventually(lambda: "Local/8724@ivr-customers" in lab.cli("core show channels concise"),
                         timeout=10, what="gen2 consulting 8724")
        await asyncio.sleep(1.0)
        reply = await other.action("Hangup", {"Channel": gen2})
        assert reply.response == "Success", reply
        await finished(ivr, 1, timeout=15)
        await eventually(lambda: bool(completed), timeout=5, what="AgentComplete")
    assert [(m.get("Queue"), m.get("Reason")) for m in completed] == [("shape-next", "transfer")]
    [ended] = ivr.of(JourneyEnded)
    assert [v[:2] for v in visits(ivr, ended.uniqueid)] == [("shape-next", "answered")]
    assert ended.outcome == "answered" and ivr.app.tracker.journeys == {}
    rows = events(queue_log(lab, since)[ended.uniqueid], "shape-next")
    assert rows.count("ENTERQUEUE") == 1 and "CONNECT" in rows, rows
    assert rows[-1] == "ATTENDEDTRANSFER", rows


async def test_a_member_forwarding_with_a_302_is_answered_where_it_points(
        lab: Lab, ivr: Running, phones: list[traffic.Sipp]) -> None:
    """op3's phone answers shape-fwd's call with a 302 to lab-fwd; app_queue places
    Local/lab-fwd@ivr-agents itself and gen2 answers there: one answered visit, and
    queue_log's CONNECT names op3, the member whose phone forwarded."""
    since = time.time()
    phones.append(traffic.forwarding_agent("op3", target="lab-fwd"))
    phones.append(traffic.agent("gen2", ring_ms=1000))
    phones.append(traffic.callers(1, hold_ms=5000, number_prefix="7988", service="8722"))
    await finished(ivr, 1, timeout=20)
    [ended] = ivr.of(JourneyEnded)
    [(queue, outcome, waited)] = visits(ivr, ended.uniqueid)
    assert (queue, outcome) == ("shape-fwd", "answered") and waited < 5_000
    [answered] = ivr.of(JourneyAnswered)
    assert answered.member == "op3"
    rows = queue_log(lab, since)[ended.uniqueid]
    assert [e for _q, e, _d in rows][:2] == ["ENTERQUEUE", "CONNECT"], rows
