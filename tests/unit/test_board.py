"""The board's and the wall's own parts: each agent's time in its state (kept by the
tracker from Asterisk's timestamps, shown by views), the wall role that opens the
wallboard and nothing else, and the stream that gives the board and the wall the
figures of today."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from ivr.ami import events as ev
from ivr.app import build
from ivr.calls import views
from ivr.calls.tracker import Tracker
from ivr.config import Config
from ivr.http.app import make_web
from ivr.ledger.store import Store
from tests.unit.test_console import csrf_of, first_event, sign_in
from tests.unit.test_desk_api import NOW, TOKENS, Clock, answered, config_for
S = 1_000_000
T0 = 1_796_000_000 * S


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[TestClient[Any, Any]]:
    """ivr's web app on a ledger with three calls of today (NOW is 00:53 UTC): two within
    30 s, one answered late."""
    app = build(config_for(tmp_path, f"sqlite:///{tmp_path / 'ledger.db'}"), clock=Clock())
    async with TestClient(TestServer(make_web(app))) as c:
        await app.store.run(Store.migrate)
        calls = [answered(55 + n) for n in range(3)]       # 00:48:20, 00:49:20, 00:50:20
        late = calls[2].visits[0]
        calls[2] = replace(calls[2], visits=(replace(late, wait_ms=45_000),), payable=False)
        assert all(int(c.entered_us) < NOW * 1e6 for c in calls)
        await app.store.run(Store.write, calls)
        await app.desk.load()
        yield c


def state(ts: int, member: str, status: int, paused: bool = False, in_call: bool = False,
          queue: str = "first-line") -> ev.MemberState:
    return ev.MemberState(ts, queue, member, status, paused, in_call)


class _Pbx:
    name = "default"

    def __init__(self, tracker: Tracker) -> None:
        self.tracker = tracker


def test_the_tracker_knows_since_when_each_member_is_in_its_state() -> None:
    t = Tracker()
    t.handle(state(T0, "op1", 1))                        # available
    t.handle(state(T0 + 5 * S, "op1", 1))                # the same news again: no new start
    assert t.members[("first-line", "op1")].state == "available"
    assert t.since[("first-line", "op1")] == T0
    t.handle(state(T0 + 9 * S, "op1", 1, paused=True))   # paused: a new state, a new start
    assert t.since[("first-line", "op1")] == T0 + 9 * S
    t.handle(state(T0 + 10 * S, "op2", 1))
    t.handle(ev.AgentAnswered(T0 + 12 * S, "1.1", "first-line", "op2", 2))   # in a call now
    assert t.members[("first-line", "op2")].state == "in_call"
    assert t.since[("first-line", "op2")] == T0 + 12 * S
    agents = views.queues(Config(), [_Pbx(t)], (T0 + 20 * S) / S)["first-line"]["agents"]
    assert [(a["name"], a["state"], a["state_seconds"]) for a in agents] == [
        ("op1", "paused", 11.0), ("op2", "in_call", 8.0)]
    # A reconnect's snapshot: op1 still paused keeps its start, op2 now free starts anew.
    t.resync(ev.Snapshot(T0 + 30 * S, (), (state(T0 + 30 * S, "op1", 1, paused=True),
                                            state(T0 + 30 * S, "op2", 1)), frozenset()))
    assert t.since == {("first-line", "op1"): T0 + 9 * S, ("first-line", "op2"): T0 + 30 * S}
    t.handle(ev.MemberRemoved(T0 + 31 * S, "first-line", "op2"))
    assert ("first-line", "op2") not in t.since


async def test_the_wall_role_opens_the_wallboard_and_nothing_else(client: TestClient[Any, Any]) -> None:
    assert await sign_in(client, "wall") == "/console/wall"
    page = await client.get("/console/wall")
    html = await page.text()
    assert page.status == 200 and '<script type="module" src="/console/static/wall.js">' in html
    assert "sign-out" not in html and "<button" not in html and "?lang=" not in html   # no control
    for other in ("/console/board", "/console/office", "/console/tickets", "/console/desk/op1",
                  "/console/statement.csv?from=2026-11-01&to=2026-12-01"):
        assert (await client.get(other, allow_redirects=False)).status == 403, other
    assert (await client.get("/console/events?member=op1")).status == 403
    # Its stream: the queues, first-line's level and the figures of today; no complaint.
    name, data = await first_event(client)
    assert name == "today" and set(data) == {"queues", "chart"}
    assert data["chart"]["queue"] == "first-line" and data["chart"]["target"] == 0.8
    name, data = await first_event(client, wanted="queues")
    assert data["service_level"]["today_offered"] == 3 and "complaints" not in data
    assert "callbacks" not in data
    name, data = await first_event(client)
    assert data["queues"]["first-line"] == {"offered": 3, "answered": 3, "abandoned": 0,
                                            "moved": 0, "payable_share": 2 / 3}
    [interval] = [x for x in data["chart"]["intervals"] if x["offered"]]
    assert interval == {"start": "00:45", "offered": 3, "answered": 3, "within": 2,
                        "abandoned": 0, "share": 2 / 3}
    # The API, with the session and its CSRF token or with the token itself: 403 everywhere.
    csrf = csrf_of(html)
    bearer = {"Authorization": f"Bearer {TOKENS['wall'][1]}"}
    for method, path in (("GET", "/api/v1/queues"), ("GET", "/api/v1/incidents"),
                         ("GET", "/api/v1/calls?from=2026-11-01&to=2026-12-01"),
                         ("GET", "/api/v1/tickets"), ("GET", "/api/v1/claims/10000012"),
                         ("POST", "/api/v1/incidents")):
        for headers in ({"X-CSRF-Token": csrf}, bearer):
            resp = await client.request(method, path, headers=headers, json={})
            assert resp.status == 403, (method, path, resp.status)
            assert "wall tv1 may not do this" in (await resp.json())["error"]


async def test_the_supervisor_and_the_office_open_the_wall_and_get_its_figures(
        client: TestClient[Any, Any]) -> None:
    for role in ("supervisor", "office"):
        client.session.cookie_jar.clear()
        await sign_in(client, role)
        assert (await client.get("/console/wall")).status == 200
        name, data = await first_event(client)
        assert name == "today" and data["chart"]["offered"] == 3, role
    client.session.cookie_jar.clear()
    await sign_in(client, "operator")
    assert (await client.get("/console/wall")).status == 403
    name, data = await first_event(client)
    assert name == "queues" and "service_level" not in data


def test_a_wall_token_in_the_tokens_file(tmp_path: Path) -> None:
    from ivr.config import tokens as roles
    path = tmp_path / "tokens"
    path.write_text("wall tv1 a-token-for-the-wallboard-0001\n")
    path.chmod(0o600)
    assert list(roles.read(path).values()) == [roles.Actor("wall", "tv1")]
    assert roles.WALL not in roles.EVERYONE
