"""Bad values stopped where they enter, before the ledger: text a person typed is
refused with a 400, text from the PBX is made valid, AMI numbers are range-checked."""

from __future__ import annotations

import dataclasses
import json
import logging
import socket
from pathlib import Path
from typing import Any, AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from ivr.ami.codec import Message
from ivr.ami.events import parse
from ivr.app import Services, build
from ivr.config import AmiConfig, ApiConfig, Config, LedgerConfig
from ivr.routing.incidents import IncidentError, Incidents
from ivr.ledger.store import Store
from ivr.ledger.text import valid
from ivr.ledger.writer import History, LedgerWriter, Spool
from ivr.http.app import make_web
from tests.unit.test_ledger_writer import call

TOKEN = "test-token-for-bad-text"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def msg(*pairs: tuple[str, str]) -> Message:
    return Message(pairs)


def test_valid_replaces_nul_and_lone_surrogates_only() -> None:
    r = dataclasses.replace(call(1), caller="79\x00001", area="n\ud800rth")
    r = dataclasses.replace(r, visits=(dataclasses.replace(r.visits[0], member="op\udfff1"),))
    fixed = valid(r)
    assert isinstance(fixed, type(r))
    assert (fixed.caller, fixed.area, fixed.visits[0].member) == (
        "79\ufffd001", "n\ufffdrth", "op\ufffd1")
    good = call(2)
    assert valid(good) is good          # no copy for the usual record
    row = History("route_decisions", {"area": "\x00", "at_us": 1})
    assert valid(row) == History("route_decisions", {"area": "\ufffd", "at_us": 1})
    assert valid(dataclasses.replace(good, caller="Авария 😀")) == dataclasses.replace(
        good, caller="Авария 😀")       # a real character (even a pair's) stays


async def test_pbx_text_with_nul_or_a_surrogate_is_written_replaced(store: Store,
                                                                    tmp_path: Path) -> None:
    writer = LedgerWriter(store, Spool(tmp_path / "spool.jsonl", 100))
    writer.submit(dataclasses.replace(call(1), caller="79\x00001", area="\ud800"))
    assert await writer.flush()
    (kept,) = await store.calls(0, 2**62)
    assert (kept.caller, kept.area) == ("79\ufffd001", "\ufffd") and writer.quarantined == 0


@pytest.mark.parametrize("message", ["bad \ud800 text", "lone low \udc00", "nul \x00 here"])
def test_an_incident_message_that_is_not_text_is_refused(message: str) -> None:
    incidents = Incidents()
    with pytest.raises(IncidentError, match="^message must"):
        incidents.open("north", message, 60)
    assert incidents.active() == []


@pytest.fixture
async def app_client(tmp_path: Path) -> AsyncIterator[tuple[Services, TestClient[Any, Any]]]:
    with socket.socket() as refusing:
        refusing.bind(("127.0.0.1", 0))
        app = build(Config(ami=AmiConfig(port=refusing.getsockname()[1]),
                           api=ApiConfig(token=TOKEN),
                           ledger=LedgerConfig(url=f"sqlite:///{tmp_path / 'ledger.db'}")))
        async with TestClient(TestServer(make_web(app))) as client:
            yield app, client


@pytest.mark.parametrize("escaped", ["\\ud800", "\\udfff", "\\u0000"])
async def test_the_api_answers_a_400_for_a_lone_surrogate_or_nul(
        app_client: tuple[Services, TestClient[Any, Any]], escaped: str) -> None:
    app, client = app_client
    raw = ('{"area": "north", "message": "outage ' + escaped + '", "expires_in": 60}').encode()
    resp = await client.post("/api/v1/incidents", data=raw,
                             headers={**AUTH, "Content-Type": "application/json"})
    assert resp.status == 400
    # The body's lone surrogate is refused at the door (api._json), a NUL by the incident.
    assert (await resp.json())["error"].startswith(("message must", "message: not Unicode"))
    assert app.incidents.active() == [] and app.ledger.pending == []     # nothing changed
    resp = await client.post("/api/v1/incidents", headers=AUTH, json={
        "area": "north", "message": "outage", "expires_in": 60})
    assert resp.status == 201        # the same request without it is taken


HUGE = "99999999999999999999"


@pytest.mark.parametrize("frame", [
    (("Event", "AgentConnect"), ("Uniqueid", "1.7"), ("Queue", "first-line"),
     ("MemberName", "op1"), ("HoldTime", HUGE)),
    (("Event", "AgentConnect"), ("Uniqueid", "1.7"), ("Queue", "first-line"),
     ("MemberName", "op1"), ("HoldTime", "٣")),                  # a digit, but not ASCII
    (("Event", "AgentConnect"), ("Uniqueid", "1.7"), ("Queue", "first-line"),
     ("MemberName", "op1"), ("HoldTime", "86401")),
    (("Event", "QueueCallerAbandon"), ("Uniqueid", "1.7"), ("Queue", "first-line"),
     ("HoldTime", HUGE)),
    (("Event", "QueueMemberStatus"), ("Queue", "first-line"), ("MemberName", "op1"),
     ("Uniqueid", "1.7"), ("Status", HUGE)),
])
def test_ami_numbers_beyond_a_sane_bound_are_refused_naming_the_call(
        frame: tuple[tuple[str, str], ...]) -> None:
    with pytest.raises(ValueError, match=r"is not a number from 0 to \d+ \(call 1\.7\)"):
        parse(msg(*frame), now=1.0)


def test_ami_numbers_within_bounds_are_kept() -> None:
    answered = parse(msg(("Event", "AgentConnect"), ("Uniqueid", "1.7"), ("Queue", "q"),
                         ("MemberName", "op1"), ("HoldTime", "86400")), now=1.0)
    assert getattr(answered, "holdtime") == 86400
    left = parse(msg(("Event", "QueueCallerAbandon"), ("Uniqueid", "1.7"), ("Queue", "q"),
                     ("HoldTime", "")), now=1.0)
    assert getattr(left, "holdtime") is None     # absent, as before


async def test_an_untimestamped_event_with_a_huge_holdtime_is_skipped_and_the_ledger_flows(
        app_client: tuple[Services, TestClient[Any, Any]], caplog: pytest.LogCaptureFixture) -> None:
    """The issue's stall: the HoldTime reached the ledger and its batch failed for good."""
    app, client = app_client
    pbx = app.first
    with caplog.at_level(logging.WARNING, logger="ivr.pbx.session"):
        pbx.on_event(msg(("Event", "QueueCallerJoin"), ("Uniqueid", "1.7"),
                         ("Channel", "PJSIP/x-1"), ("Queue", "first-line"),
                         ("CallerIDNum", "79001")))
        pbx.on_event(msg(("Event", "AgentConnect"), ("Uniqueid", "1.7"), ("Queue", "first-line"),
                         ("MemberName", "op1"), ("HoldTime", HUGE)))
        pbx.on_event(msg(("Event", "Hangup"), ("Uniqueid", "1.7")))
    skipped = [r.getMessage() for r in caplog.records if "skipping AgentConnect" in r.getMessage()]
    assert len(skipped) == 1 and "1.7" in skipped[0]
    assert await app.ledger.flush()
    assert [c.uniqueid for c in await app.store.run(Store.calls, 0, 2**62)] == ["1.7"]
    ledger = (await (await client.get("/readyz")).json())["ledger"]
    assert ledger["quarantined"] == 0 and ledger["backlog"] == 0
    assert json.dumps(ledger)   # plain JSON
