"""Wrong tokens (API) and failed sign-ins (console): a WARNING with the source and
never the token, ivr_auth_failures_total{kind}, and after 10 in 60 s from one
address a 429 with Retry-After for any credential from it until the window passes."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from ivr.app import Services, build
from ivr.http.throttle import Guard
from ivr.http.app import make_web
from ivr.ledger.store import Store
from tests.unit.test_desk_api import TOKENS, Clock, auth, config_for


@pytest.fixture
async def web(tmp_path: Path) -> AsyncIterator[tuple[TestClient[Any, Any], Services]]:
    app = build(config_for(tmp_path, f"sqlite:///{tmp_path / 'ledger.db'}"), clock=Clock())
    async with TestClient(TestServer(make_web(app))) as client:
        await app.store.run(Store.migrate)
        yield client, app
        await app.store.close()


def failures(app: Services, kind: str) -> float:
    return app.registry.get_sample_value("ivr_auth_failures_total", {"kind": kind}) or 0.0


async def test_a_burst_of_wrong_tokens_is_logged_counted_and_throttled(
        web: Any, caplog: pytest.LogCaptureFixture) -> None:
    client, app = web
    caplog.set_level(logging.WARNING, logger="ivr.throttle")
    assert failures(app, "api_token") == 0 and failures(app, "dialplan_secret") == 0
    for n in range(10):
        resp = await client.get("/api/v1/queues", headers={"Authorization": f"Bearer guess-{n:012d}"})
        assert resp.status == 401
    assert failures(app, "api_token") == 10
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("127.0.0.1" in line and "GET /api/v1/queues" in line for line in lines)
    assert not any("guess-" in line for line in lines)            # never the token
    # Throttled: the right token too, and the guess is not even counted.
    for headers in ({"Authorization": "Bearer guess-again-000000"}, auth("admin")):
        resp = await client.get("/api/v1/queues", headers=headers)
        body = await resp.json()
        assert resp.status == 429 and body["code"] == "throttled"
        assert 1 <= int(resp.headers["Retry-After"]) <= 60
    assert failures(app, "api_token") == 10
    # Health and metrics present no credential: never throttled.
    assert (await client.get("/healthz")).status == 200


async def test_failed_sign_ins_are_throttled_too(web: Any, caplog: pytest.LogCaptureFixture) -> None:
    client, app = web
    caplog.set_level(logging.WARNING, logger="ivr.throttle")
    for _ in range(10):
        resp = await client.post("/console/sign-in", data={"token": "not-a-token-at-all"},
                                 allow_redirects=False)
        assert resp.status == 401
    assert failures(app, "console_sign_in") == 10
    resp = await client.post("/console/sign-in", data={"token": TOKENS["admin"][1]},
                             allow_redirects=False)
    assert resp.status == 429 and int(resp.headers["Retry-After"]) >= 1
    assert "Too many wrong tokens" in await resp.text()
    assert any("sign in from 127.0.0.1" in r.getMessage() for r in caplog.records)
    assert not any("not-a-token-at-all" in r.getMessage() for r in caplog.records)
    # The API and the console share the count: the same source is throttled there too.
    assert (await client.get("/api/v1/queues", headers=auth("admin"))).status == 429


class Tick:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_window_passes_and_only_failures_count() -> None:
    tick = Tick()
    guard = Guard(CollectorRegistry(), limit=3, window=60.0, clock=tick)
    for _ in range(2):
        guard.failed("10.0.0.1", "api_token", "x")
        tick.now += 10
    assert guard.retry_after("10.0.0.1") == 0              # 2 of 3
    guard.failed("10.0.0.1", "api_token", "x")
    assert guard.retry_after("10.0.0.1") == 40              # the first one is 20 s old
    assert guard.retry_after("10.0.0.2") == 0               # per source
    tick.now += 40
    assert guard.retry_after("10.0.0.1") == 0               # the first left the window
    tick.now += 100
    assert guard.retry_after("10.0.0.1") == 0 and "10.0.0.1" not in guard._failures


@pytest.mark.parametrize("authorization", ["Bearer", "Bearer ", "Basic abc", "Bearer caf\xe9-token-00000000",
                                           "Bearer " + "a" * 8000])
async def test_hostile_authorization_headers_are_401_and_counted(web: Any, authorization: str) -> None:
    client, app = web
    resp = await client.get("/api/v1/queues", headers={"Authorization": authorization})
    assert resp.status == 401 and "error" in await resp.json()
    assert failures(app, "api_token") == 1
