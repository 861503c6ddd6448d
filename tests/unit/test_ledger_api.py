"""GET /api/v1/reports/billing and /api/v1/calls: ivr's real web app over a
real SQLite ledger, behind the API token; the same service as the CLI."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any, AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from ivr.app import build
from ivr.config import AmiConfig, ApiConfig, Config, LedgerConfig
from ivr.http.app import make_web
from ivr.ledger.store import Store
from tests.unit.test_ledger_writer import call

TOKEN = "test-token-for-the-ledger-api"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
# call(n) enters at 1_796_000_000 + n s: 2026-11-30T...Z; the period covers them.
PERIOD = "from=2026-11-29&to=2026-12-02"


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[TestClient[Any, Any]]:
    with socket.socket() as refusing:
        refusing.bind(("127.0.0.1", 0))
        config = Config(ami=AmiConfig(port=refusing.getsockname()[1]), api=ApiConfig(token=TOKEN),
                        ledger=LedgerConfig(url=f"sqlite:///{tmp_path / 'ledger.db'}"))
        app = build(config)
        async with TestClient(TestServer(make_web(app))) as c:
            await app.store.run(Store.migrate)
            await app.store.run(Store.write, [call(n) for n in range(3)])
            yield c


async def test_the_statement_over_http(client: TestClient[Any, Any]) -> None:
    resp = await client.get(f"/api/v1/reports/billing?{PERIOD}&tz=Europe/Moscow&calls=1",
                            headers=AUTH)
    assert resp.status == 200
    body = await resp.json()
    assert body["totals"]["offered"] == 3 and body["totals"]["payable"] == 3
    assert body["period"]["timezone"] == "Europe/Moscow"
    assert [c["uniqueid"] for c in body["calls"]] == [f"1796000000.{n}" for n in range(3)]
    assert len(body["digest"]) == 64


@pytest.mark.parametrize("query, message", [
    ("from=2026-12-02&to=2026-11-29", "is not before"),
    (f"{PERIOD}&tz=Mars/Base", "unknown time zone"),
    ("to=2026-11-29", "give both from and to"),
])
async def test_bad_statement_requests_are_a_json_400(client: TestClient[Any, Any], query: str,
                                                     message: str) -> None:
    resp = await client.get(f"/api/v1/reports/billing?{query}", headers=AUTH)
    assert resp.status == 400 and message in (await resp.json())["error"]


async def test_the_statement_needs_the_token(client: TestClient[Any, Any]) -> None:
    assert (await client.get(f"/api/v1/reports/billing?{PERIOD}")).status == 401


async def test_a_callers_history(client: TestClient[Any, Any]) -> None:
    resp = await client.get(f"/api/v1/calls?caller=79001&{PERIOD}", headers=AUTH)
    assert resp.status == 200
    (found,) = (await resp.json())["calls"]
    assert found["uniqueid"] == "1796000000.1" and found["visits"][0]["member"] == "op1"
    resp = await client.get(f"/api/v1/calls?account=nobody&{PERIOD}", headers=AUTH)
    assert (await resp.json())["calls"] == []
