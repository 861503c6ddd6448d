"""Callbacks through the dialplan's questions, on ivr's real web app and ledger, with the
PBX's side faked (the lab proves it on Asterisk: tests/lab/test_callbacks.py).  Every
refusal and every malformed question changes nothing: no AMI action, no ledger row, no
count."""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import replace
from pathlib import Path
from typing import Any, AsyncIterator
from urllib.parse import parse_qs

import pytest
from aiohttp.test_utils import TestClient, TestServer

from ivr.ami.client import Fields
from ivr.ami.codec import Message
from ivr.app import Services, build
from ivr.config import CallbackConfig, Config
from ivr.http.app import make_web
from ivr.ledger.store import Store
from ivr.routing import repeats
from tests.unit.test_desk_api import DIALPLAN, Clock, auth, config_for

UID = "1796000000.7"
TS = 1_796_000_000


class FakeAmi:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, str]]] = []

    async def action(self, name: str, fields: Fields | None = None,
                     timeout: float | None = None) -> Message:
        self.sent.append((name, dict(fields or {})))    # type: ignore[arg-type]
        return Message((("Response", "Success"),))

    def named(self, name: str) -> list[dict[str, str]]:
        return [f for n, f in self.sent if n == name]


Served = tuple[TestClient[Any, Any], Services, FakeAmi]


def with_callbacks(config: Config, **kw: Any) -> Config:
    return replace(config, callback=CallbackConfig(dial="PJSIP/{number}@trunk", attempts=2,
                                                   retry_seconds=1, block=("112", "8800*"), **kw))


@pytest.fixture
async def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Served]:
    async for s in serve(tmp_path, monkeypatch, with_callbacks(config_for(
            tmp_path, f"sqlite:///{tmp_path / 'ledger.db'}"))):
        yield s


async def serve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, config: Config
                ) -> AsyncIterator[Served]:
    app = build(config, clock=Clock())
    fake = FakeAmi()
    pbx = app.first
    monkeypatch.setattr(pbx.ami, "action", fake.action)
    pbx.ready = True
    async with TestClient(TestServer(make_web(app))) as client:
        await app.store.run(Store.migrate)
        yield client, app, fake
    app.callbacks.close()


def feed(app: Services, name: str, at: float, uid: str, **fields: str) -> None:
    app.first.on_event(Message((("Event", name), ("Timestamp", f"{TS + at:.6f}"),
                                ("Uniqueid", uid), *fields.items())))


def waiting_in_common(app: Services, uid: str = UID, number: str = "79101") -> None:
    feed(app, "QueueCallerJoin", 0, uid, Channel=f"PJSIP/c-{uid}", CallerIDNum=number,
         Queue="common", Context="ivr-queues", Exten="common", Priority="2")


def pressed_1(app: Services, uid: str = UID) -> None:
    feed(app, "QueueCallerLeave", 40, uid, Channel=f"PJSIP/c-{uid}", Queue="common",
         Context="ivr-callback-key", Exten="1", Priority="1")


async def ask(client: TestClient[Any, Any], path: str, **query: str) -> tuple[int, dict[str, str]]:
    resp = await client.get(f"/dialplan/v1/{path}", params=query, headers=DIALPLAN)
    text = await resp.text()
    return resp.status, {k: v[0] for k, v in parse_qs(text).items()}


def rows(app: Services, table: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(app.config.ledger.url.removeprefix("sqlite:///")) as conn:
        return conn.execute(f"SELECT * FROM {table}").fetchall()


def counted(app: Services, result: str) -> float:
    return app.registry.get_sample_value("ivr_callbacks_total", {
        "pbx": "default", "queue": "common", "result": result}) or 0.0


async def test_a_request_is_placed_dialed_once_retried_and_failed(served: Served) -> None:
    client, app, ami = served
    waiting_in_common(app)
    pressed_1(app)
    status, answer = await ask(client, "callback", uniqueid=UID, caller="79101", prio="1903999")
    assert status == 200 and answer["number"] == "79101"
    cb_id = answer["callback"]
    await asyncio.sleep(0.05)
    [origin] = ami.named("Originate")
    assert origin["Channel"] == f"Local/cb{cb_id}n1@ivr-callback-place/n"
    assert origin["CallerID"] == '"79101" <79101>'
    assert "_IVR_CB_PRIO=1903999" in origin["Variable"] and "_IVR_CB_QUEUE=common" in origin["Variable"]
    assert app.tracker.journeys[UID].done[-1].outcome == "callback"
    # The placeholder joins: waiting at place 1.
    holder = "1796000001.9"
    feed(app, "QueueCallerJoin", 41, holder, Channel=f"Local/cb{cb_id}n1@ivr-callback-place-00000001;2",
         CallerIDNum="79101", Queue="common")
    [(cb, position)] = app.callbacks.pending()
    assert (cb.placeholder, position, cb.attempts) == (holder, 1, 0)
    resp = await client.get("/api/v1/callbacks", headers=auth("supervisor"))
    assert resp.status == 200
    [shown] = (await resp.json())["callbacks"]
    assert (shown["number"], shown["position"], shown["state"]) == ("79101", 1, "waiting")
    assert (await client.get("/api/v1/callbacks", headers=auth("operator"))).status == 403
    # An agent takes it: one dial; the same placeholder asking again is refused.
    status, answer = await ask(client, "callback/dial", id=cb_id, n="1")
    assert answer == {"dial": "PJSIP/79101@trunk", "number": "79101", "timeout": "30"}
    assert (await ask(client, "callback/dial", id=cb_id, n="1"))[1] == {"error": "gone"}
    assert (await ask(client, "callback/result", id=cb_id, n="1", status="NOANSWER"))[1] == {"ok": "1"}
    await asyncio.sleep(1.3)                                   # callback.retry_seconds
    assert [o["Channel"] for o in ami.named("Originate")][1] == f"Local/cb{cb_id}n2@ivr-callback-place/n"
    assert "_IVR_CB_PRIO=1903999" in ami.named("Originate")[1]["Variable"]   # the same place
    assert (await ask(client, "callback/dial", id=cb_id, n="2"))[1]["dial"] == "PJSIP/79101@trunk"
    await ask(client, "callback/result", id=cb_id, n="2", status="BUSY")
    assert app.callbacks.pending() == [] and counted(app, "failed") == 1
    assert counted(app, "requested") == 1
    await app.ledger.flush()
    assert [r[3] for r in rows(app, "callback_events")] == [
        "placed", "queued", "dialing", "retry", "placed", "dialing", "failed"]
    [kept] = rows(app, "callbacks")
    assert kept[2] == UID          # linked to the call it came from


@pytest.mark.parametrize("caller, word", [("anonymous", "number"), ("112", "blocked"),
                                          ("880012", "blocked"), ("12", "number")])
async def test_a_number_ivr_will_not_call_is_refused_and_nothing_changes(
        served: Served, caller: str, word: str) -> None:
    client, app, ami = served
    waiting_in_common(app, number=caller)
    pressed_1(app)
    status, answer = await ask(client, "callback", uniqueid=UID, caller=caller)
    assert (status, answer) == (200, {"error": word, "back": "common"})
    await refused_changed_nothing(app, ami)


async def refused_changed_nothing(app: Services, ami: FakeAmi) -> None:
    await asyncio.sleep(0.05)
    await app.ledger.flush()
    assert ami.sent == [] and app.callbacks.pending() == []
    assert rows(app, "callbacks") == [] and counted(app, "requested") == 0


async def test_only_a_caller_in_a_queue_offering_callbacks_may_ask(served: Served) -> None:
    client, app, ami = served
    feed(app, "QueueCallerJoin", 0, UID, Channel="PJSIP/c-1", CallerIDNum="79101",
         Queue="first-line")
    assert (await ask(client, "callback", uniqueid=UID, caller="79101"))[1]["error"] == "queue"
    assert (await ask(client, "callback", uniqueid="1.2", caller="79101"))[1]["error"] == "queue"
    await refused_changed_nothing(app, ami)


async def test_a_second_request_from_the_same_number_is_refused(served: Served) -> None:
    client, app, ami = served
    for uid in (UID, "1796000005.1"):
        waiting_in_common(app, uid)
        pressed_1(app, uid)
    assert "callback" in (await ask(client, "callback", uniqueid=UID, caller="79101"))[1]
    assert (await ask(client, "callback", uniqueid="1796000005.1", caller="79101"))[1]["error"] \
        == "pending"
    assert len(app.callbacks.pending()) == 1


@pytest.mark.parametrize("path, query", [
    ("callback", {"uniqueid": "x; DROP", "caller": "79101"}),
    ("callback", {"uniqueid": UID, "caller": ""}),
    ("callback", {"uniqueid": UID, "caller": "79101\r\nAction: Originate"}),
    ("callback", {"uniqueid": UID, "caller": "79101", "prio": "1e9"}),
    ("callback", {"uniqueid": UID, "caller": "79101", "prio": "99999999999"}),
    ("callback/dial", {"id": "abc", "n": "1"}),
    ("callback/dial", {"id": "1", "n": "-1"}),
    ("callback/result", {"id": "1", "n": "1", "status": "answer; rm"}),
    ("callback/result", {"id": "1" * 21, "n": "1", "status": "ANSWER"}),
])
async def test_a_malformed_question_is_a_400_that_changes_nothing(
        served: Served, path: str, query: dict[str, str]) -> None:
    client, app, ami = served
    waiting_in_common(app)
    pressed_1(app)
    status, _ = await ask(client, path, **query)
    assert status == 400
    await refused_changed_nothing(app, ami)


async def test_callbacks_off_are_refused_and_not_offered(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    config = config_for(tmp_path, f"sqlite:///{tmp_path / 'ledger.db'}")
    async for client, app, ami in serve(tmp_path, monkeypatch, config):
        waiting_in_common(app)
        pressed_1(app)
        assert (await ask(client, "callback", uniqueid=UID, caller="79101"))[1]["error"] == "off"
        await refused_changed_nothing(app, ami)
        entry = (await ask(client, "entry", uniqueid="1796000009.1", caller="79102"))[1]
        assert "callback" not in entry


async def test_the_customer_calling_in_cancels_the_callback_and_keeps_its_place(
        served: Served) -> None:
    client, app, ami = served
    waiting_in_common(app)
    pressed_1(app)
    held = str(repeats.prio((TS - 100) * 1_000_000))     # the caller first joined 100 s ago
    cb_id = (await ask(client, "callback", uniqueid=UID, caller="79101", prio=held))[1]["callback"]
    holder = "1796000001.9"
    feed(app, "VarSet", 41, holder, Variable="IVR_ACCOUNT", Value="100101")
    feed(app, "QueueCallerJoin", 41, holder, Channel=f"Local/cb{cb_id}n1@ivr-callback-place-00000001;2",
         CallerIDNum="79101", Queue="common")
    assert app.tracker.journeys[holder].account == "100101"
    # Another known number is offered a callback at entry; the customer calling in takes
    # the callback's place, and the callback is cancelled: one of the two.
    other = (await ask(client, "entry", uniqueid="1796000010.1", caller="79102"))[1]
    assert other["callback"] == "1"
    entry = (await ask(client, "entry", uniqueid="1796000011.1", caller="79101"))[1]
    assert entry["prio"] == held
    assert entry["route"] == "first-line"      # its placeholder is no other line of the caller
    await asyncio.sleep(0.05)
    assert app.callbacks.pending() == [] and counted(app, "cancelled") == 1
    assert [f["Channel"] for f in ami.named("Hangup")] == [
        f"Local/cb{cb_id}n1@ivr-callback-place-00000001;2"]
    assert (await ask(client, "callback/dial", id=cb_id, n="1"))[1] == {"error": "unknown"}


async def test_the_same_account_calling_in_from_another_number_cancels_it_too(
        served: Served) -> None:
    client, app, ami = served
    feed(app, "VarSet", 0, UID, Variable="IVR_ACCOUNT", Value="100101")
    waiting_in_common(app)
    pressed_1(app)
    assert "callback" in (await ask(client, "callback", uniqueid=UID, caller="79101"))[1]
    # A second line of the same account may not ask again, and calling in cancels it.
    second = "1796000012.1"
    feed(app, "VarSet", 0, second, Variable="IVR_ACCOUNT", Value="100101")
    waiting_in_common(app, second, number="79999")
    pressed_1(app, second)
    assert (await ask(client, "callback", uniqueid=second, caller="79999"))[1]["error"] == "pending"
    await ask(client, "entry", uniqueid="1796000013.1", caller="5550123", asked="1", account="100101")
    assert app.callbacks.pending() == [] and counted(app, "cancelled") == 1


async def test_a_pending_callback_survives_a_restart_of_ivr(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    config = with_callbacks(config_for(tmp_path, f"sqlite:///{tmp_path / 'ledger.db'}"))
    async for client, app, ami in serve(tmp_path, monkeypatch, config):
        waiting_in_common(app)
        pressed_1(app)
        cb_id = (await ask(client, "callback", uniqueid=UID, caller="79101", prio="7"))[1]["callback"]
        await asyncio.sleep(0.05)
        await app.ledger.flush()
    async for client, app, ami in serve(tmp_path, monkeypatch, config):
        assert await app.callbacks.restore() == 1
        app.callbacks.resynced(app.first)        # the PBX holds no placeholder: placed again
        await asyncio.sleep(0.05)
        [origin] = ami.named("Originate")
        assert origin["Channel"] == f"Local/cb{cb_id}n2@ivr-callback-place/n"
        assert "_IVR_CB_PRIO=7" in origin["Variable"]


async def test_a_cancelled_placeholder_is_told_withdrawn_in_queue_log_too(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With ledger.queue_log_decisions, as for ivr's moves: `ivr ledger reconcile` then
    reads the placeholder's ABANDON as withdrawn, as the ledger has it."""
    config = with_callbacks(config_for(tmp_path, f"sqlite:///{tmp_path / 'ledger.db'}"))
    config = replace(config, ledger=replace(config.ledger, queue_log_decisions=True))
    async for client, app, ami in serve(tmp_path, monkeypatch, config):
        waiting_in_common(app)
        pressed_1(app)
        cb_id = (await ask(client, "callback", uniqueid=UID, caller="79101"))[1]["callback"]
        holder = "1796000001.9"
        feed(app, "QueueCallerJoin", 41, holder, CallerIDNum="79101", Queue="common",
             Channel=f"Local/cb{cb_id}n1@ivr-callback-place-00000001;2")
        await ask(client, "entry", uniqueid="1796000011.1", caller="79101")
        await asyncio.sleep(0.05)
        assert ami.named("QueueLog") == [{"Queue": "common", "Event": "IVRMOVE",
                                          "Uniqueid": holder, "Interface": "ivr",
                                          "Message": "withdrawn|"}]
