"""The service desk by phone, on the lab with SIPp (DTMF as SIP INFO).

What the caller hears is checked on AMI: a second, unfiltered session sees
every prompt the dialplan plays (Newexten's AppData of Playback and Read).
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from pathlib import Path
from typing import AsyncIterator, Iterator

import pytest

from ivr.calls.facts import Entered, Exited, JourneyAnswered, JourneyEnded
from ivr.ledger.store import Store
from ivr.routing import prompts
from ivr.ami.codec import Message
from ivr.lab import traffic
from ivr.lab.pbx import PROMPTS, Lab
from tests.helpers import eventually
from tests.lab.conftest import Running
from tests.lab.test_queue_shapes import other_ami_client
from tests.lab.test_routing import Api, api  # noqa: F401  (the fixture)

pytestmark = pytest.mark.lab


class Heard:
    """Prompts played to each channel (by uniqueid), in order (by Playback, or as
    Read's prompt)."""

    def __init__(self) -> None:
        self.played: dict[str, list[str]] = defaultdict(list)
        self.bridged: dict[str, int] = defaultdict(int)     # BridgeEnter, by uniqueid
        # Where each channel went (context, exten): after a Redirect out of a bridge,
        # Asterisk names the old application in the first Newexten.
        self.places: dict[str, list[tuple[str, str]]] = defaultdict(list)

    def on(self, msg: Message) -> None:
        app, data = msg.get("Application"), msg.get("AppData") or ""
        if msg.event == "Newexten":
            self.places[msg.get("Uniqueid") or ""].append((msg.get("Context") or "",
                                                          msg.get("Exten") or ""))
        if msg.event == "Newexten" and app == "Playback":
            self.played[msg.get("Uniqueid") or ""].append(Path(data).name)
        elif msg.event == "Newexten" and app == "Read":      # Read(VAR,prompt,...)
            self.played[msg.get("Uniqueid") or ""].append(Path(data.split(",")[1]).name)
        elif msg.event == "BridgeEnter":
            self.bridged[msg.get("Uniqueid") or ""] += 1

    def of(self, uid: str) -> list[str]:
        return self.played.get(uid, [])

    def digits(self, uid: str, after: str) -> str:
        """The digits read after the prompt `after`."""
        heard = self.of(uid)
        rest = heard[heard.index(after) + 1:] if after in heard else []
        out = ""
        for name in rest:
            if not name.startswith("digit-"):
                break
            out += name.removeprefix("digit-")
        return out


@contextlib.asynccontextmanager
async def listening(lab: Lab) -> AsyncIterator[Heard]:
    heard = Heard()
    async with other_ami_client(lab, heard.on):
        yield heard


def answered_in(ivr: Running, queue: str) -> list[Exited]:
    return [f for f in ivr.of(Exited) if f.queue == queue
            and f.outcome == "answered"]


async def test_a_complaint_through_a_supervisor_read_back_at_9002(
        lab: Lab, ivr: Running, api: Api, phones: list[traffic.Sipp]) -> None:  # noqa: F811
    """op1 answers and transfers the caller to 9001; sup1 answers, the complaint is filed
    for the call (operator filled in: op1), and sup1 transfers the caller to 9002."""
    phones += [traffic.transferring_agent(op, ring_ms=1000, talk_ms=2000, target="9001")
               for op in ("op1", "op2", "op3", "op4")]
    phones += [traffic.transferring_agent(s, ring_ms=1000, talk_ms=5000, target="9002")
               for s in ("sup1", "sup2")]
    async with listening(lab) as heard:
        phones.append(traffic.callers(1, hold_ms=40_000, number_prefix="7910"))
        await eventually(lambda: bool(answered_in(ivr, "supervisors")), timeout=30,
                         what="a supervisor answered")
        [by_sup] = answered_in(ivr, "supervisors")
        uid = by_sup.uniqueid
        [by_op] = ivr.of(JourneyAnswered)          # the first answer: the operator
        status, complaint = await api("POST", "/api/v1/complaints",
                                      {"call": uid, "text": "the operator was rude"})
        assert status == 201, complaint
        assert complaint["operator"] == by_op.member != "sup1"
        await eventually(lambda: "goodbye" in heard.of(uid), timeout=20,
                         what=lambda: f"the numbers read back (heard {heard.of(uid)})")
    assert heard.digits(uid, "your-numbers") == complaint["number"]


async def test_the_state_of_a_number_by_phone(lab: Lab, ivr: Running, api: Api,  # noqa: F811
                                              phones: list[traffic.Sipp]) -> None:
    status, ticket = await api("POST", "/api/v1/tickets", {"account": "100101", "problem": "no link"})
    assert status == 201
    wrong = ticket["number"][:-1] + str((int(ticket["number"][-1]) + 1) % 10)
    async with listening(lab) as heard:
        # 2 in the greeting, then the number and #; then a wrong one.
        phones.append(traffic.typing_caller(f"2,,{ticket['number']}#", type_after_ms=1000,
                                            hold_ms=20_000, number_prefix="7911"))
        phones.append(traffic.typing_caller(f"2,,{wrong}#", type_after_ms=1000,
                                            hold_ms=20_000, number_prefix="7912"))

        def calls() -> dict[str, list[str]]:
            return {u: p for u, p in heard.played.items() if p and p[0] == "greeting"}
        await eventually(lambda: len(calls()) == 2 and all(
            "state-open" in p or "number-wrong" in p for p in calls().values()), timeout=30,
            what=lambda: f"both callers told (heard {calls()})")
    told = sorted(p[1:3] for p in calls().values())
    assert told == [["enter-number", "number-wrong"], ["enter-number", "state-open"]]
    assert not ivr.of(Entered)                  # neither went to a queue


async def test_a_claim_during_a_known_incident(lab: Lab, ivr: Running, api: Api,  # noqa: F811
                                               phones: list[traffic.Sipp]) -> None:
    status, incident = await api("POST", "/api/v1/incidents",
                                 {"area": "north", "message": "Fibre cut.", "expires_in": 3600})
    assert status == 201
    try:
        async with listening(lab) as heard:
            # 3, pressed once a second: only the claim offer takes it.
            phones.append(traffic.typing_caller(",".join("3" * 20), type_after_ms=500,
                                                hold_ms=30_000, number_prefix="7910"))
            await eventually(lambda: any("claim-filed" in p for p in heard.played.values()),
                             timeout=30, what=lambda: f"a claim filed (heard {dict(heard.played)})")
            [uid] = [u for u, p in heard.played.items() if "claim-filed" in p]
            await eventually(lambda: len(heard.digits(uid, "claim-filed")) == 8, timeout=10,
                             what="the claim's number read back")
        [claim] = [i for i in ivr.app.desk.items.values() if i.kind == "claim"]
        assert heard.digits(uid, "claim-filed") == claim.number
        assert claim.data["call"] == uid and claim.data["account"] == "100101"
        assert [s["id"] for s in claim.data["incidents"]] == [incident["id"]]
        assert claim.filed_by.role == "caller"
        played = heard.of(uid)
        assert played.index(f"incident-{incident['id']}") < played.index("claim-offer")
    finally:
        await api("DELETE", f"/api/v1/incidents/{incident['id']}")


@pytest.fixture
def russian(lab: Lab) -> Iterator[Path]:
    folder = lab.root / PROMPTS
    prompts.generate_static(folder, "ru")
    try:
        yield folder
    finally:
        prompts.generate_static(folder, "en")


async def test_the_prompts_in_russian(lab: Lab, ivr: Running, api: Api,  # noqa: F811
                                      phones: list[traffic.Sipp], russian: Path) -> None:
    assert (russian / "greeting.txt").read_text().startswith("Здравствуйте")
    status, ticket = await api("POST", "/api/v1/tickets", {"account": "100102", "problem": "slow"})
    async with listening(lab) as heard:
        phones.append(traffic.typing_caller(f"2,,{ticket['number']}#", type_after_ms=1500,
                                            hold_ms=25_000, number_prefix="7913"))
        await eventually(lambda: any("state-open" in p for p in heard.played.values()),
                         timeout=30, what=lambda: f"told in Russian (heard {dict(heard.played)})")
    [played] = [p for p in heard.played.values() if "state-open" in p]
    assert played[:3] == ["greeting", "enter-number", "state-open"]
    for name in played:        # every prompt heard is there, in Russian
        assert (russian / f"{name}.wav").is_file()
        assert (russian / f"{name}.txt").read_text() == prompts.TEXTS["ru"][name]


async def test_an_abusive_caller_is_warned_once_then_the_call_ended(
        lab: Lab, ivr: Running, api: Api, phones: list[traffic.Sipp]) -> None:  # noqa: F811
    phones += [traffic.agent(op, ring_ms=1000) for op in ("op1", "op2", "op3", "op4")]
    async with listening(lab) as heard:
        phones.append(traffic.callers(1, hold_ms=40_000, number_prefix="7914"))
        await eventually(lambda: bool(answered_in(ivr, "first-line")), timeout=20,
                         what="an operator answered")
        [fact] = answered_in(ivr, "first-line")
        uid = fact.uniqueid
        await eventually(lambda: heard.bridged[uid] >= 1, timeout=5, what="caller bridged")
        status, body = await api("POST", f"/api/v1/calls/{uid}/end", {"reason": "abuse"})
        assert status == 409 and "warn the caller first" in body["error"]
        status, body = await api("POST", f"/api/v1/calls/{uid}/warn")
        assert status == 202, body
        await eventually(lambda: ("ivr-abuse", "warn") in heard.places[uid], timeout=5,
                         what=lambda: f"the warning (went to {heard.places[uid][-3:]})")
        # Then back with the operator: bridged a second time, the call goes on.
        await eventually(lambda: heard.bridged[uid] >= 2, timeout=15,
                         what=lambda: f"bridged again (heard {heard.of(uid)})")
        assert not ivr.of(JourneyEnded)
        status, body = await api("POST", f"/api/v1/calls/{uid}/end", {"reason": "abuse"})
        assert status == 202, body
        await eventually(lambda: bool(ivr.of(JourneyEnded)), timeout=15, what="the call ended")
        assert heard.places[uid][-1] == ("ivr-abuse", "end")
    status, body = await api("POST", f"/api/v1/calls/{uid}/disposition", {"code": "abuse_ended"})
    assert status == 201, body
    for action in ("warn", "end", "disposition"):
        assert ivr.value("ivr_operator_actions_total", action=action) == 1
    await ivr.app.ledger.flush()
    rows = await ivr.app.store.run(Store.operator_actions, "default", uid)
    assert [(r["action"], r["value"]) for r in rows] == \
        [("warn", "abuse"), ("end", "abuse"), ("disposition", "abuse_ended")]


def lab_token(lab: Lab, name: str) -> str:
    """The console token of `name` in the lab's tokens file (ROLE NAME TOKEN lines)."""
    for line in Path(lab.status().tokens_file).read_text().splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] == name:
            return parts[2]
    raise AssertionError(f"no token of {name} in the lab's tokens file")


async def test_an_operator_acts_only_on_the_call_they_answered(
        lab: Lab, ivr: Running, api: Api, phones: list[traffic.Sipp]) -> None:  # noqa: F811
    """On a real call: op1 never answers (its phone rings on), so the call is another
    operator's; op1's warn and disposition are refused with nothing done, and the
    supervisor's warn reaches the caller."""
    phones.append(traffic.agent("op1", ring_ms=120_000))
    phones += [traffic.agent(op, ring_ms=1000) for op in ("op2", "op3", "op4")]
    op1, sup1 = lab_token(lab, "op1"), lab_token(lab, "sup1")
    async with listening(lab) as heard:
        # op1 may be rung first (rrmemory) for the queue's 15 s before another answers.
        phones.append(traffic.callers(1, hold_ms=45_000, number_prefix="7915"))
        await eventually(lambda: bool(ivr.of(JourneyAnswered)), timeout=40,
                         what="an operator answered")
        [answered] = ivr.of(JourneyAnswered)
        uid = answered.uniqueid
        assert answered.member in ("op2", "op3", "op4")
        await eventually(lambda: heard.bridged[uid] >= 1, timeout=5, what="caller bridged")
        for action, body in (("warn", None), ("end", {"reason": "abuse"}),
                             ("transfer", {"to": "supervisor"}),
                             ("disposition", {"code": "resolved"})):
            status, reply = await api("POST", f"/api/v1/calls/{uid}/{action}", body, token=op1)
            assert (status, reply.get("code")) == (403, "not_yours"), (action, reply)
        assert ("ivr-abuse", "warn") not in heard.places[uid]
        assert ivr.value("ivr_operator_actions_total", action="warn") == 0
        status, reply = await api("POST", f"/api/v1/calls/{uid}/warn", token=sup1)
        assert status == 202, reply
        await eventually(lambda: ("ivr-abuse", "warn") in heard.places[uid], timeout=5,
                         what=lambda: f"the warning (went to {heard.places[uid][-3:]})")
    assert ivr.value("ivr_operator_actions_total", action="warn") == 1
