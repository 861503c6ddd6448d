"""Who reads what the service desk keeps, over ivr's real web app: complaints the
office, the admin and the supervisors (operators and engineers get 403, for the
list, by number and in the registry); tickets the roles that work them, and an
operator only the tickets they filed."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any, AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from ivr.app import Services, build
from ivr.http.app import make_web
from ivr.ledger.store import Store
from tests.unit.test_desk_api import Clock, answered, config_for, get, post

OP2_TOKEN = "operator-op2-token-0002"


@contextlib.asynccontextmanager
async def with_op2(tmp_path: Path) -> AsyncIterator[tuple[TestClient[Any, Any], Services]]:
    """ivr over HTTP with a second operator's token, three calls op2 answered in the
    ledger, and the desk loaded."""
    config = config_for(tmp_path, f"sqlite:///{tmp_path / 'ledger.db'}")
    tokens = Path(config.api.tokens_file)
    tokens.write_text(tokens.read_text() + f"operator op2 {OP2_TOKEN}\n")
    app = build(config, clock=Clock())
    async with TestClient(TestServer(make_web(app))) as client:
        await app.store.run(Store.migrate)
        await app.store.run(Store.write, [answered(n) for n in range(3)])
        await app.desk.load()
        yield client, app
        await app.store.close()


@pytest.fixture
async def desk(tmp_path: Path) -> AsyncIterator[tuple[TestClient[Any, Any], Services]]:
    async with with_op2(tmp_path) as found:
        yield found


async def as_op2(client: TestClient[Any, Any], method: str, path: str,
                 body: Any = None) -> tuple[int, Any]:
    resp = await client.request(method, path, headers={"Authorization": f"Bearer {OP2_TOKEN}"},
                                data=None if body is None else json.dumps(body))
    return resp.status, await resp.json()


async def test_complaints_are_read_by_the_office_the_admin_and_supervisors(desk: Any) -> None:
    client, app = desk
    status, c = await post(client, "/api/v1/complaints", "supervisor",
                           {"call": "1795996400.1", "text": "rude to me"})
    assert status == 201
    for role in ("supervisor", "office", "admin"):
        status, body = await get(client, f"/api/v1/complaints/{c['number']}", role)
        assert status == 200 and body["text"] == "rude to me", role
        status, body = await get(client, "/api/v1/complaints", role)
        assert status == 200 and [x["number"] for x in body["complaints"]] == [c["number"]]
    for role in ("operator", "engineer"):
        for path in (f"/api/v1/complaints/{c['number']}", "/api/v1/complaints",
                     "/api/v1/registry"):
            status, body = await get(client, path, role)
            assert status == 403 and "rude to me" not in json.dumps(body), (role, path)
        status, body = await post(client, f"/api/v1/complaints/{c['number']}/events", role,
                                  {"note": "seen"})
        assert status == 403
    status, body = await get(client, "/api/v1/registry", "office")
    assert status == 200 and "rude to me" in json.dumps(body["entries"])


async def test_an_operator_reads_and_notes_only_the_tickets_they_filed(desk: Any) -> None:
    client, app = desk
    status, mine = await post(client, "/api/v1/tickets", "operator",
                              {"account": "100101", "problem": "no link"})
    assert status == 201
    status, theirs = await as_op2(client, "POST", "/api/v1/tickets",
                                  {"account": "100102", "problem": "slow"})
    assert status == 201
    status, body = await get(client, "/api/v1/tickets", "operator")
    assert status == 200 and [t["number"] for t in body["tickets"]] == [mine["number"]]
    status, body = await get(client, f"/api/v1/tickets/{mine['number']}", "operator")
    assert status == 200 and body["problem"] == "no link"
    status, body = await get(client, f"/api/v1/tickets/{theirs['number']}", "operator")
    assert status == 403 and body["code"] == "not_yours" and "slow" not in json.dumps(body)
    before = len(app.desk.items[theirs["number"]].events)
    status, body = await post(client, f"/api/v1/tickets/{theirs['number']}/events", "operator",
                              {"note": "mine now"})
    assert status == 403 and len(app.desk.items[theirs["number"]].events) == before
    status, body = await post(client, f"/api/v1/tickets/{mine['number']}/events", "operator",
                              {"note": "the caller called again"})
    assert status == 200 and body["events"][-1]["note"] == "the caller called again"
    # The roles that work tickets read them all.
    for role in ("engineer", "supervisor", "office", "admin"):
        status, body = await get(client, "/api/v1/tickets", role)
        assert status == 200 and len(body["tickets"]) == 2, role
        status, _ = await get(client, f"/api/v1/tickets/{theirs['number']}", role)
        assert status == 200


@pytest.mark.parametrize("number", ["20000010x", "", "%00", "9" * 40, "10000012;rm"])
async def test_a_hostile_number_is_a_4xx_for_any_reader(desk: Any, number: str) -> None:
    client, _ = desk
    for role in ("operator", "office"):
        status, body = await get(client, f"/api/v1/complaints/{number}", role)
        assert 400 <= status < 500 and "error" in body
