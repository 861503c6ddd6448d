"""Repeat callers: judged at entry, with the clock passed in."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from ivr.ledger.store import Store
from ivr.routing import repeats
from ivr.calls import records as rec
from ivr.routing.repeats import Repeats

T0 = 1_796_000_000.0
S = 1_000_000


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@dataclass
class Waiting:
    uniqueid: str
    account: str
    first_entered_us: int


def ended(uid: str, caller: str, account: str, at: float, outcome: str,
          first_line: str = "abandoned") -> rec.CallRecord:
    t = int(at * S)
    visit = rec.VisitRecord(1, "first-line", t - 20 * S, t, first_line, 20_000)
    return rec.CallRecord("default", uid, uid, caller, account, "north", t - 20 * S, t, (visit,),
                          outcome, False, rec.LIVE, rec.MS)


def test_a_caller_who_hangs_up_and_calls_again_keeps_their_place() -> None:
    clock = Clock()
    r = Repeats(600, clock)
    first = r.judge("1.1", "79101", "100101", [])
    assert first.kind is None and first.first_us == int(T0 * S)
    clock.now += 20
    r.ended(ended("1.1", "79101", "100101", clock.now, "abandoned"))
    clock.now += 5
    again = r.judge("1.2", "79101", "100101", [])
    assert (again.kind, again.repeat_of) == ("after_abandon", "1.1")
    assert again.first_us == first.first_us and again.prio == first.prio
    # A newcomer now is behind them: a lower QUEUE_PRIO.
    assert r.judge("1.3", "79555", "", []).prio < again.prio
    # The third try still counts from the first join.
    clock.now += 20
    r.ended(ended("1.2", "79101", "100101", clock.now, "abandoned"))
    assert r.judge("1.4", "79101", "", []).first_us == first.first_us


def test_the_same_account_from_another_number_is_a_repeat_too() -> None:
    clock = Clock()
    r = Repeats(600, clock)
    r.judge("2.1", "79101", "100101", [])
    clock.now += 40
    r.ended(ended("2.1", "79101", "100101", clock.now, "unanswered", first_line="timeout"))
    verdict = r.judge("2.2", "79999", "100101", [])
    assert verdict.kind == "after_timeout" and verdict.repeat_of == "2.1"


def test_two_lines_at_once_is_concurrent() -> None:
    clock = Clock()
    r = Repeats(600, clock)
    r.judge("3.1", "79101", "100101", [])
    line = Waiting("3.1", "100101", int(T0 * S))
    verdict = r.judge("3.2", "79102", "100101", [line])
    assert (verdict.kind, verdict.repeat_of) == ("concurrent", "3.1")
    assert r.judge("3.3", "79103", "100103", [line]).kind is None


def test_no_repeat_after_an_answer_or_outside_the_window() -> None:
    clock = Clock()
    r = Repeats(600, clock)
    r.judge("4.1", "79101", "100101", [])
    r.ended(ended("4.1", "79101", "100101", clock.now, "abandoned"))
    clock.now += 601
    assert r.judge("4.2", "79101", "100101", []).kind is None        # the window is over
    r.ended(ended("4.2", "79101", "100101", clock.now, "abandoned"))
    r.judge("4.3", "79101", "100101", [])
    r.ended(ended("4.3", "79101", "100101", clock.now, "answered"))
    assert r.judge("4.4", "79101", "100101", []).kind is None        # answered: chain ended


def test_a_restart_remembers_who_just_hung_up() -> None:
    """restore() puts back what the ledger kept: the calls that ended lately, in the order
    they ended (an answer after an abandon ends the chain), and the first join of those
    that were repeats themselves."""
    clock = Clock()
    r = Repeats(600, clock)
    records = [ended("5.2", "79101", "100101", T0 - 60, "abandoned"),      # a repeat of 5.1
               ended("5.3", "79102", "100102", T0 - 200, "abandoned"),
               ended("5.4", "79102", "100102", T0 - 100, "answered"),       # ... then answered
               ended("5.5", "79103", "100103", T0 - 700, "abandoned")]      # out of the window
    firsts = {"5.2": int((T0 - 500) * S)}
    assert r.restore(records, firsts) == 1
    again = r.judge("5.6", "79101", "", [])
    assert (again.kind, again.repeat_of, again.first_us) == ("after_abandon", "5.2", firsts["5.2"])
    assert r.judge("5.7", "", "100102", []).kind is None
    assert r.judge("5.8", "79103", "100103", []).kind is None


def test_prio_is_higher_for_an_earlier_first_join_and_fits_32_bits() -> None:
    assert repeats.prio(int(T0 * S)) > repeats.prio(int((T0 + 1) * S))
    assert 0 < repeats.prio(int(T0 * S)) < 2**31
    assert 0 < repeats.prio(int(3_000_000_000 * S)) < 2**31         # year 2065


# -- first-contact resolution and paying one answer per caller (reports/fcr.py) ----

from ivr.reports import fcr  # noqa: E402

H = 3600 * S


def contact(uid: str, caller: str, account: str, at_h: float, member: str = "op1",
            payable: bool = True) -> fcr.Contact:
    t = int(T0 * S + at_h * H)
    return fcr.Contact(uid, caller, account, t, t + 60 * S, "first-line" if member else "",
                       member, payable)


def test_first_contact_resolution_per_queue_and_operator() -> None:
    calls = [contact("a", "79101", "100101", 0),                   # calls again after 2 days
             contact("b", "79102", "100102", 1, member="op2"),     # never again
             contact("c", "79103", "100103", 2),                   # again in 1 h, other number
             contact("a2", "79101", "100101", 48, member=""),
             contact("c2", "79999", "100103", 3, member="")]
    got = fcr.resolution(calls, int(T0 * S), int(T0 * S + 24 * H))
    assert got["operators"] == [
        {"operator": "op1", "answered": 2, "fcr_24h": 1, "fcr_7d": 0,
         "fcr_24h_share": 0.5, "fcr_7d_share": 0.0},
        {"operator": "op2", "answered": 1, "fcr_24h": 1, "fcr_7d": 1,
         "fcr_24h_share": 1.0, "fcr_7d_share": 1.0}]
    assert got["queues"] == [{"queue": "first-line", "answered": 3, "fcr_24h": 2, "fcr_7d": 1,
                              "fcr_24h_share": 0.6667, "fcr_7d_share": 0.3333}]


def test_one_payable_answer_per_caller_per_window() -> None:
    window = 600 * S
    calls = [contact("1", "79101", "100101", 0), contact("2", "79101", "100101", 0.05),
             contact("3", "79555", "100101", 0.1),       # another number, the same account
             contact("4", "79101", "100101", 0.5),       # 30 min later: paid again
             contact("5", "79102", "100102", 0.05), contact("6", "79103", "", 0, payable=False)]
    assert fcr.payable_once(calls, window) == 3


async def test_ivr_restarted_gives_a_redial_the_place_of_the_call_before_the_restart(
        tmp_path: Path) -> None:
    """A caller hung up (the ledger has the call), ivr restarted: their next call is still
    a repeat, and the dialplan gets the first call's QUEUE_PRIO."""
    from urllib.parse import parse_qs

    from aiohttp.test_utils import TestClient, TestServer

    from ivr.app import build
    from ivr.http.app import make_web
    from tests.unit.test_desk_api import DIALPLAN, config_for
    clock = Clock()
    app = build(config_for(tmp_path, f"sqlite:///{tmp_path / 'ledger.db'}"), clock=clock)
    await app.store.run(Store.migrate)
    lost = ended("1795999900.1", "79101", "100101", T0 - 60, "abandoned")
    await app.store.run(Store.write, [lost])
    await app.store.close()

    app = build(config_for(tmp_path, f"sqlite:///{tmp_path / 'ledger.db'}"), clock=clock)
    async with TestClient(TestServer(make_web(app))) as client:       # starts as ivr run does
        resp = await client.get("/dialplan/v1/entry?uniqueid=1796000000.7&caller=79101",
                                headers=DIALPLAN)
        answer = parse_qs(await resp.text())
    assert answer["route"] == ["first-line"]
    assert answer["prio"] == [str(repeats.prio(lost.entered_us))]
    assert app.registry.get_sample_value("ivr_repeat_calls_total",
                                         {"pbx": "default", "kind": "after_abandon"}) == 1


async def test_a_ledger_that_does_not_answer_at_start_is_tried_once(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The incidents find the ledger away; repeat callers and sessions are not tried
    again (each would wait out its own timeout before the first call is followed)."""
    import logging
    import socket

    from aiohttp.test_utils import TestClient, TestServer

    from ivr.app import build
    from ivr.http.app import make_web
    from tests.unit.test_desk_api import config_for
    with socket.socket() as refusing:
        refusing.bind(("127.0.0.1", 0))
        port = refusing.getsockname()[1]
    app = build(config_for(tmp_path, f"postgresql://ivr:x@127.0.0.1:{port}/ivr"), clock=Clock())
    caplog.set_level(logging.INFO)
    async with TestClient(TestServer(make_web(app))) as client:
        assert (await client.get("/healthz")).status == 200
    said = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("incidents: the ledger cannot be read") for m in said)
    assert "repeat callers and console sessions start from nothing" in said
    assert not any(m.startswith(("repeat callers: the ledger", "console: the sessions"))
                   for m in said)


@pytest.mark.parametrize("typed", ["", "100402", "999999", "*"])
async def test_an_unknown_number_is_judged_once_on_its_last_question(tmp_path: Path,
                                                                      typed: str) -> None:
    """Issue 20, item 7: an unknown number hung up in first-line and calls again.  The
    first question (it asks for the account) judges nothing; the second (asked=1) is
    the call's last, whatever was typed: nothing, an account, one not in the directory,
    or a key that is none.  There the call is a repeat, counted once, with its place."""
    from urllib.parse import parse_qs, quote

    from aiohttp.test_utils import TestClient, TestServer

    from ivr.app import build
    from ivr.http.app import make_web
    from tests.unit.test_desk_api import DIALPLAN, config_for
    app = build(config_for(tmp_path, f"sqlite:///{tmp_path / 'ledger.db'}"), clock=Clock())
    lost = ended("1795999900.1", "55611", "", T0 - 3, "abandoned")
    app.routing.repeats.ended(lost)

    def counted() -> float:
        return app.registry.get_sample_value(
            "ivr_repeat_calls_total", {"pbx": "default", "kind": "after_abandon"}) or 0.0

    async with TestClient(TestServer(make_web(app))) as client:
        async def ask(query: str) -> dict[str, list[str]]:
            resp = await client.get(f"/dialplan/v1/entry?uniqueid=1796000000.7&caller=55611"
                                    f"{query}", headers=DIALPLAN)
            assert resp.status == 200
            return parse_qs(await resp.text())

        first = await ask("")
        assert first == {"route": ["first-line"], "ask_account": ["1"]} and counted() == 0
        last = await ask(f"&account={quote(typed)}&asked=1")
        assert "ask_account" not in last and last["prio"] == [str(repeats.prio(lost.entered_us))]
        assert last.get("account") == (["100402"] if typed == "100402" else None)
        assert counted() == 1
