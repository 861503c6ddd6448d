"""A PBX with `timestampevents = no`: ivr says so (a warning a connection, a counter,
/readyz) and bounds waits by Asterisk's HoldTime (journeys.py)."""

from __future__ import annotations

import logging
import socket
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import generate_latest

from ivr.ami.codec import Message
from ivr.app import build
from ivr.config import AmiConfig, Config, LedgerConfig
from ivr.http.app import make_web


def msg(*pairs: tuple[str, str]) -> Message:
    return Message(pairs)


def counter(app: Any) -> float:
    for line in generate_latest(app.registry).decode().splitlines():
        if line.startswith('ivr_ami_untimestamped_events_total{pbx="default"} '):
            return float(line.split()[1])
    raise AssertionError("ivr_ami_untimestamped_events_total is not exported")


async def test_untimestamped_events_are_counted_warned_once_and_shown(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as refusing:
        refusing.bind(("127.0.0.1", 0))
        config = Config(ami=AmiConfig(port=refusing.getsockname()[1]),
                        ledger=LedgerConfig(url=f"sqlite:///{tmp_path / 'ledger.db'}"))
        app = build(config)
        async with TestClient(TestServer(make_web(app))) as client:
            app.first.on_event(msg(("Event", "Hangup"), ("Timestamp", "1795530561.000001"),
                             ("Uniqueid", "0.1")))
            assert counter(app) == 0 and app.timestamps
            assert (await (await client.get("/readyz")).json())["ami_timestamps"] is True

            with caplog.at_level(logging.WARNING, logger="ivr.pbx.session"):
                app.first.on_event(msg(("Event", "QueueCallerJoin"), ("Uniqueid", "1.1"),
                                 ("Channel", "PJSIP/x-1"), ("Queue", "first-line")))
                app.first.on_event(msg(("Event", "Hangup"), ("Uniqueid", "1.1")))
                app.first.on_event(msg(("Event", "Newexten"), ("Uniqueid", "1.1")))   # not followed
            assert counter(app) == 2
            warnings = [r for r in caplog.records if "without Timestamp" in r.getMessage()]
            assert len(warnings) == 1 and "timestampevents = no" in warnings[0].getMessage()
            assert (await (await client.get("/readyz")).json())["ami_timestamps"] is False
