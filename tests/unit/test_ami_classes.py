"""What the AMI user may read (ivr/pbx/classes.py): events' Privilege, the dialplan
probe after each login, /readyz's ami_classes and the one WARNING with the line
for manager.conf."""

from __future__ import annotations

import asyncio
import logging
import socket
from pathlib import Path
from typing import Mapping

import pytest
from aiohttp.test_utils import TestClient, TestServer

from ivr.ami.codec import Message
from ivr.app import build
from ivr.config import AmiConfig, Config, LedgerConfig
from ivr.http.app import make_web
from ivr.pbx import classes
from ivr.pbx.classes import PROBE, Classes, merged


def msg(*pairs: tuple[str, str]) -> Message:
    return Message(pairs)


def echo(value: str, privilege: str = "dialplan,all") -> Message:
    """Asterisk's VarSet of a global variable, as a dialplan reader gets it."""
    return msg(("Event", "VarSet"), ("Privilege", privilege), ("Channel", "none"),
               ("Uniqueid", "none"), ("Variable", PROBE), ("Value", value))


def test_a_class_is_yes_once_an_event_of_it_came() -> None:
    c = Classes()
    c.start("t1")
    assert c.state() == {"call": "unknown", "agent": "unknown", "dialplan": "unknown"}
    assert not c.saw(msg(("Event", "QueueCallerJoin"), ("Privilege", "agent,all")))
    assert not c.saw(msg(("Event", "Hangup"), ("Privilege", "call,all")))
    assert c.state() == {"call": "yes", "agent": "yes", "dialplan": "unknown"}


def test_the_probes_echo_says_dialplan_and_is_consumed() -> None:
    c = Classes()
    c.start("t1")
    assert c.saw(echo("t1")) is True
    assert c.state()["dialplan"] == "yes"
    assert c.expire("t1") is False                 # answered: nothing to say


def test_no_echo_within_the_wait_says_dialplan_is_missing_once() -> None:
    c = Classes()
    c.start("t1")
    assert c.expire("t1") is True and c.state()["dialplan"] == "no"
    assert c.expire("t1") is False                 # said once


@pytest.mark.parametrize("privilege", ["", ",,,", "dialplan" * 500, "all,all", "DIALPLAN,all",
                                       "\x00dialplan", " originate , command "])
def test_hostile_privileges_and_strangers_echoes_name_no_class(privilege: str) -> None:
    c = Classes()
    c.start("t1")
    c.saw(msg(("Event", "Newexten"), ("Privilege", privilege)))
    # Another client's IVR_PROBE (its Privilege forged away): not ours, never a call's.
    assert c.saw(echo("someone-else's", privilege=privilege)) is True
    assert c.state() == {"call": "unknown", "agent": "unknown", "dialplan": "unknown"}
    assert c.expire("t1") is True


def test_a_stale_probe_says_nothing_of_a_newer_connection() -> None:
    c = Classes()
    c.start("old")
    c.start("new")                                 # reconnected before the old one expired
    assert c.expire("old") is False and c.state()["dialplan"] == "unknown"
    assert c.saw(echo("old", privilege="")) and c.state()["dialplan"] == "unknown"
    assert c.saw(echo("new", privilege="")) and c.state()["dialplan"] == "yes"


def test_any_varset_proves_the_dialplan_class() -> None:
    c = Classes()
    c.start("t1")
    assert not c.saw(msg(("Event", "VarSet"), ("Privilege", "dialplan,all"),
                         ("Variable", "QUEUESTATUS"), ("Value", "TIMEOUT")))
    assert c.state()["dialplan"] == "yes" and c.expire("t1") is False


def test_several_pbxs_merge_to_the_worst() -> None:
    yes = {"call": "yes", "agent": "yes", "dialplan": "yes"}
    assert merged([yes, yes]) == yes
    assert merged([yes, {**yes, "dialplan": "no"}])["dialplan"] == "no"
    assert merged([yes, {**yes, "agent": "unknown"}])["agent"] == "unknown"
    assert classes.advice("ivr") == "[ivr] read = system,call,agent,dialplan"


class Ami:
    """What probe_classes needs of AmiClient: `action`, remembered."""

    def __init__(self, refuse: bool = False) -> None:
        self.sent: list[tuple[str, dict[str, str]]] = []
        self.refuse = refuse

    async def action(self, name: str, fields: Mapping[str, str] | None = None,
                     timeout: float | None = None) -> Message:
        self.sent.append((name, dict(fields or {})))
        if self.refuse:
            raise TimeoutError("no answer")
        return msg(("Response", "Success"))


@pytest.fixture
def refusing_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_readyz_and_the_log_say_what_the_user_lacks(
        tmp_path: Path, refusing_port: int, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("ivr.pbx.session.PROBE_WAIT_S", 0.05)
    config = Config(ami=AmiConfig(port=refusing_port, username="monitor"),
                    ledger=LedgerConfig(url=f"sqlite:///{tmp_path / 'ledger.db'}"))
    app = build(config)
    ami = Ami()
    async with TestClient(TestServer(make_web(app))) as client:
        with caplog.at_level(logging.WARNING, logger="ivr.pbx.session"):
            await app.first.probe_classes(ami)      
            [(name, fields)] = ami.sent
            assert name == "Setvar" and fields["Variable"] == PROBE and "Channel" not in fields
            app.first.on_event(msg(("Event", "Hangup"), ("Privilege", "call,all"),
                                   ("Uniqueid", "1.1")))
            await asyncio.sleep(0.2)                  # no echo: the user lacks dialplan
        body = await (await client.get("/readyz")).json()
        assert body["ami_classes"] == {"call": "yes", "agent": "unknown", "dialplan": "no"}
        assert body["pbx"]["default"]["ami_classes"]["dialplan"] == "no"
        [warning] = [r.getMessage() for r in caplog.records if "dialplan class" in r.getMessage()]
        assert "[monitor] read = system,call,agent,dialplan" in warning

        caplog.clear()
        await app.first.probe_classes(ami)            # the next login: the user was fixed
        app.first.on_event(echo(ami.sent[-1][1]["Value"]))
        await asyncio.sleep(0.2)
        body = await (await client.get("/readyz")).json()
        assert body["ami_classes"]["dialplan"] == "yes"
        assert not [r for r in caplog.records if "dialplan class" in r.getMessage()]


async def test_a_refused_probe_leaves_the_class_unknown(
        tmp_path: Path, refusing_port: int, caplog: pytest.LogCaptureFixture) -> None:
    config = Config(ami=AmiConfig(port=refusing_port),
                    ledger=LedgerConfig(url=f"sqlite:///{tmp_path / 'ledger.db'}"))
    app = build(config)
    with caplog.at_level(logging.WARNING, logger="ivr.pbx.session"):
        await app.first.probe_classes(Ami(refuse=True)) 
    assert app.first.classes.state()["dialplan"] == "unknown"
    assert any("cannot probe its read classes" in r.getMessage() for r in caplog.records)
