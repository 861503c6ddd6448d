"""One ivr, two PBXs: each its own tracker and series; the API tells their calls apart."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from ivr.ami.codec import Message
from ivr.app import Services, build
from ivr.config import AmiConfig, ApiConfig, Config, LedgerConfig, PbxConfig
from ivr.http.app import make_web

TOKEN = "t0ken-for-the-several-pbxs-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
UID = "1796000000.7"


@pytest.fixture
def ports() -> Iterator[tuple[int, int]]:
    with socket.socket() as a, socket.socket() as b:
        a.bind(("127.0.0.1", 0))
        b.bind(("127.0.0.1", 0))
        yield a.getsockname()[1], b.getsockname()[1]


@pytest.fixture
async def two(ports: tuple[int, int], tmp_path: Path) -> AsyncIterator[tuple[Services, TestClient[Any, Any]]]:
    config = Config(pbx=(PbxConfig("paris", AmiConfig(port=ports[0], username="ivr")),
                         PbxConfig("lyon", AmiConfig(port=ports[1], username="ivr"))),
                    api=ApiConfig(token=TOKEN),
                    ledger=LedgerConfig(url=f"sqlite:///{tmp_path / 'ledger.db'}"))
    app = build(config)
    async with TestClient(TestServer(make_web(app))) as client:
        yield app, client


def join(uid: str, queue: str = "first-line") -> Message:
    return Message((("Event", "QueueCallerJoin"), ("Timestamp", "1796000000.100000"),
                    ("Uniqueid", uid), ("Channel", f"PJSIP/c-{uid}"), ("CallerIDNum", "79101"),
                    ("Queue", queue)))


async def test_each_pbx_has_its_callers_and_its_series(two: tuple[Services, TestClient[Any, Any]]) -> None:
    app, client = two
    app.pbxs["paris"].on_event(join("1796000000.1"))
    app.pbxs["lyon"].on_event(join("1796000000.2"))
    app.pbxs["lyon"].on_event(join("1796000000.3"))
    assert [len(p.tracker.waiting("first-line")) for p in app.pbxs.values()] == [1, 2]
    value = app.registry.get_sample_value
    assert value("ivr_queue_entered_total", {"pbx": "paris", "queue": "first-line"}) == 1
    assert value("ivr_queue_entered_total", {"pbx": "lyon", "queue": "first-line"}) == 2
    assert value("ivr_queue_waiting_calls", {"pbx": "lyon", "queue": "first-line"}) == 2
    assert value("ivr_ami_up", {"pbx": "paris"}) == 0
    ready = await (await client.get("/readyz")).json()
    assert set(ready["pbx"]) == {"paris", "lyon"}
    assert ready["ready"] is False and ready["pbx"]["lyon"]["ready"] is False
    assert ready["last_error"] is None or ready["last_error"].startswith("pbx ")
    queues = await (await client.get("/api/v1/queues", headers=AUTH)).json()
    assert queues["queues"]["first-line"]["threshold_seconds"] == 30.0
    waiting = queues["queues"]["first-line"]["waiting"]
    assert sorted(w["pbx"] for w in waiting) == ["lyon", "lyon", "paris"]


async def test_the_same_uniqueid_on_two_pbxs_needs_its_pbx(two: tuple[Services, TestClient[Any, Any]]) -> None:
    app, client = two
    for pbx in app.pbxs.values():
        pbx.on_event(join(UID))
    resp = await client.post(f"/api/v1/calls/{UID}/escalate", headers=AUTH)
    assert resp.status == 409
    body = await resp.json()
    assert "several PBXs" in body["error"] and sorted(body["pbx"]) == ["lyon", "paris"]
    # Named, it is that PBX's call: still waiting, so not escalated.
    resp = await client.post(f"/api/v1/calls/{UID}/escalate?pbx=lyon", headers=AUTH)
    body = await resp.json()
    assert resp.status == 409 and body["code"] == "not_in_call" and body["error"] == (
        "only a call in progress with an operator can be escalated")
    view = await (await client.get(f"/api/v1/calls/{UID}?pbx=lyon", headers=AUTH)).json()
    assert view["pbx"] == "lyon"
    resp = await client.get(f"/api/v1/calls/{UID}?pbx=nowhere", headers=AUTH)
    assert resp.status == 404


def test_the_demo_summary_reads_the_lab_pbx_series() -> None:
    from prometheus_client import CollectorRegistry

    from ivr.lab.demo import _summary
    from ivr.calls.facts import Entered
    from ivr.metrics.families import Metrics
    registry = CollectorRegistry()
    metrics = Metrics(registry, ("first-line", "common"), [30.0, 30.0])
    metrics.record(Entered("1.1", "PJSIP/a-1", "first-line", 0, 1))
    assert _summary(registry)["entered"] == 1
