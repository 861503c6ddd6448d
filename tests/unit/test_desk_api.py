"""The service desk over HTTP: ivr's real web app, a real ledger (SQLite, and
PostgreSQL for the tampering checks), tokens with roles from a tokens file."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any, AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from ivr.app import Services, build
from ivr.config import AmiConfig, ApiConfig, Config, DeskConfig, LedgerConfig, RoutingConfig
from ivr.calls import records as rec
from ivr.http.app import make_web
from ivr.ledger.store import Store

ROOT = Path(__file__).resolve().parents[2]
TOKENS = {"operator": ("op1", "operator-op1-token-0001"),
          "supervisor": ("sup1", "supervisor-sup1-token-01"),
          "office": ("anna", "office-anna-token-000001"),
          "engineer": ("eng1", "engineer-eng1-token-0001"),
          "admin": ("root", "admin-root-token-0000001"),
          "wall": ("tv1", "wall-tv1-token-000000001")}
NOW = 1_796_000_000.0          # 2026-11-30T00:53:20Z
DIALPLAN = {"X-Ivr-Secret": "dialplan-secret-of-default"}    # what the PBX's dialplan sends


def auth(role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[role][1]}"}


def answered(n: int, member: str = "op2", account: str = "100101") -> rec.CallRecord:
    t = int((NOW - 3600 + n * 60) * 1e6)
    visit = rec.VisitRecord(1, "first-line", t, t + 4_000_000, "answered", 4000, member)
    return rec.CallRecord("default", f"1795996400.{n}", f"1795996400.{n}", "79101", account,
                          "north", t, t + 60_000_000, (visit,), "answered", True, rec.LIVE,
                          rec.MS, t + 4_000_000, "first-line", member)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def config_for(tmp_path: Path, url: str) -> Config:
    tokens = tmp_path / "tokens"
    tokens.write_text("# role name token\n" + "".join(
        f"{role} {name} {token}\n" for role, (name, token) in TOKENS.items()))
    tokens.chmod(0o600)
    with socket.socket() as refusing:
        refusing.bind(("127.0.0.1", 0))
        port = refusing.getsockname()[1]
    return Config(ami=AmiConfig(port=port, dialplan_secret=DIALPLAN["X-Ivr-Secret"]),
                  api=ApiConfig(tokens_file=str(tokens)),
                  ledger=LedgerConfig(url=url),
                  routing=RoutingConfig(directory=str(ROOT / "ivr/lab/files/subscribers.csv")),
                  desk=DeskConfig(ticket_due_hours=24.0, complaint_deadline_days=30.0))


@pytest.fixture
async def desk(tmp_path: Path) -> AsyncIterator[tuple[TestClient[Any, Any], Services, Clock]]:
    clock = Clock()
    app = build(config_for(tmp_path, f"sqlite:///{tmp_path / 'ledger.db'}"), clock=clock)
    async with TestClient(TestServer(make_web(app))) as client:
        await app.store.run(Store.migrate)
        await app.store.run(Store.write, [answered(n) for n in range(3)])
        await app.desk.load()
        yield client, app, clock


async def post(client: TestClient[Any, Any], path: str, role: str, body: Any) -> tuple[int, Any]:
    resp = await client.post(path, headers=auth(role), data=json.dumps(body))
    return resp.status, await resp.json()


async def get(client: TestClient[Any, Any], path: str, role: str) -> tuple[int, Any]:
    resp = await client.get(path, headers=auth(role))
    return resp.status, await resp.json()


def metric(app: Services, name: str) -> float:
    return app.registry.get_sample_value(name) or 0.0


async def test_a_ticket_from_filing_to_closing(desk: Any) -> None:
    client, app, clock = desk
    status, t = await post(client, "/api/v1/tickets", "operator",
                           {"account": "100101", "problem": "no link since morning", "insisted": True})
    assert status == 201
    assert t["number"] == "10000012" and t["state"] == "open" and t["area"] == "north"
    assert t["due"] == "2026-12-01T00:53:20Z"          # 24 h after filing
    assert t["filed_by"] == {"role": "operator", "name": "op1"}
    status, listed = await get(client, "/api/v1/tickets?state=open", "engineer")
    assert status == 200 and [x["number"] for x in listed["tickets"]] == ["10000012"]
    assert metric(app, "ivr_tickets_opened_total") == 1 and metric(app, "ivr_tickets_open") == 1

    status, moved = await post(client, "/api/v1/tickets/10000012/events", "engineer",
                               {"state": "in_progress", "note": "on my way"})
    assert status == 200 and moved["state"] == "in_progress"
    clock.now += 3 * 3600
    status, moved = await post(client, "/api/v1/tickets/10000012/events", "engineer",
                               {"state": "resolved", "note": "line replaced"})
    assert moved["state"] == "resolved"
    assert [e["by"]["name"] for e in moved["events"]] == ["eng1", "eng1"]
    assert metric(app, "ivr_tickets_resolved_total") == 1
    assert metric(app, "ivr_ticket_resolve_seconds_sum") == pytest.approx(3 * 3600)
    status, closed = await post(client, "/api/v1/tickets/10000012/events", "admin", {"state": "closed"})
    assert status == 200 and closed["state"] == "closed"
    # Out of order: nothing comes after closed.
    status, body = await post(client, "/api/v1/tickets/10000012/events", "engineer",
                              {"state": "in_progress"})
    assert status == 409 and "closed: it cannot go to in_progress" in body["error"]
    assert body["code"] == "state_order"
    assert app.desk.head[0] == 4


async def test_the_contractor_files_and_comments_but_never_moves_or_deletes(desk: Any) -> None:
    client, app, _ = desk
    _, t = await post(client, "/api/v1/tickets", "operator", {"account": "100102", "problem": "slow"})
    path = f"/api/v1/tickets/{t['number']}"
    status, body = await post(client, f"{path}/events", "operator", {"state": "resolved"})
    assert status == 403 and "may add a note" in body["error"]
    status, body = await post(client, f"{path}/events", "supervisor", {"note": "caller rang again"})
    assert status == 200 and body["events"][-1]["note"] == "caller rang again"
    for role in ("operator", "supervisor", "admin"):
        resp = await client.delete(path, headers=auth(role))
        assert resp.status == 405 and "GET" in resp.headers["Allow"]
        resp = await client.put(path, headers=auth(role), data="{}")
        assert resp.status == 405
    status, body = await post(client, "/api/v1/complaints", "operator",
                              {"call": "1795996400.1", "text": "rude"})
    assert status == 403 and "operator op1 may not do this" in body["error"]
    assert app.desk.head[0] == 2          # the filing and the note; nothing else written


async def test_a_ticket_is_refused_only_under_a_known_incident(desk: Any) -> None:
    client, app, _ = desk
    status, incident = await post(client, "/api/v1/incidents", "engineer",
                                  {"area": "north", "message": "fibre cut", "expires_in": 3600})
    assert status == 201
    status, body = await post(client, "/api/v1/tickets", "operator",
                              {"account": "100101", "problem": "no link", "insisted": True})
    assert status == 409 and body["incident"] == incident["id"] and body["code"] == "incident"
    assert metric(app, "ivr_tickets_refused_total") == 1
    [refusal] = await app.desk.entries()
    assert refusal.event == "refused" and refusal.data["incident"] == incident["id"]
    # Another area is not covered.
    status, _ = await post(client, "/api/v1/tickets", "operator", {"account": "100201", "problem": "x"})
    assert status == 201


@pytest.mark.parametrize("body, status, message", [
    ({"account": "999999", "problem": "x"}, 404, "unknown account"),
    ({"call": "1795000000.9", "problem": "x"}, 404, "the ledger has no call"),
    ({"problem": "x"}, 400, "give an account or a call"),
    ({"account": "100101", "problem": ""}, 400, "problem: must not be empty"),
    ({"account": "100101", "problem": "x", "insisted": "yes"}, 400, "insisted"),
    ({"account": "100101", "problem": "x", "priority": 1}, 400, "unknown field"),
])
async def test_bad_tickets_write_nothing(desk: Any, body: dict[str, Any], status: int,
                                         message: str) -> None:
    client, app, _ = desk
    got, answer = await post(client, "/api/v1/tickets", "operator", body)
    assert got == status and message in answer["error"]
    assert app.desk.head[0] == 0 and await app.desk.entries() == []


async def test_numbers_given_wrong_are_told_so(desk: Any) -> None:
    client, _, _ = desk
    await post(client, "/api/v1/tickets", "operator", {"account": "100101", "problem": "x"})
    status, body = await get(client, "/api/v1/tickets/10000013", "office")
    assert status == 400 and "wrong check digit" in body["error"]
    status, body = await get(client, "/api/v1/tickets/10000020", "office")
    assert status == 404 and body["error"] == "no ticket 10000020"
    status, body = await get(client, "/api/v1/complaints/10000012", "office")
    assert status == 404 and "is a ticket number" in body["error"]


async def test_a_complaint_names_the_operator_from_the_ledger(desk: Any) -> None:
    client, app, clock = desk
    status, c = await post(client, "/api/v1/complaints", "supervisor",
                           {"call": "1795996400.1", "text": "was rude and hung up"})
    assert status == 201
    assert c["number"] == "20000011"
    assert c["operator"] == "op2" and c["call_at"] == "2026-11-29T23:54:24Z"
    assert c["state"] == "received" and c["due"] == "2026-12-30T00:53:20Z"
    # Given by operator and time instead: the nearest call that operator answered.
    status, by_time = await post(client, "/api/v1/complaints", "supervisor",
                                 {"operator": "op2", "at": "2026-11-29T23:56:00Z", "text": "again"})
    assert status == 201 and by_time["call"] == "1795996400.2"
    status, body = await post(client, "/api/v1/complaints", "supervisor",
                              {"operator": "op9", "at": "2026-11-29T23:56:00Z", "text": "x"})
    assert status == 404 and "no call answered by op9" in body["error"]
    # The office moves it; the supervisor may not.
    path = f"/api/v1/complaints/{c['number']}/events"
    status, _ = await post(client, path, "supervisor", {"state": "forwarded"})
    assert status == 403
    status, moved = await post(client, path, "office", {"state": "forwarded", "note": "to QA"})
    assert status == 200 and moved["state"] == "forwarded"
    # A complaint's number under /tickets is not a ticket.
    status, body = await post(client, f"/api/v1/tickets/{c['number']}/events", "admin",
                              {"state": "closed"})
    assert status == 404 and "is a complaint number, not a ticket number" in body["error"]
    status, seen = await get(client, f"/api/v1/complaints/{c['number']}", "office")
    assert seen["state"] == "forwarded"
    assert metric(app, "ivr_complaints_filed_total") == 2 and metric(app, "ivr_complaints_open") == 2
    clock.now += 31 * 86400
    assert metric(app, "ivr_complaints_overdue") == 2


async def test_a_claim_counts_overlapping_incidents_once(desk: Any) -> None:
    client, app, clock = desk
    start = clock.now
    for area, after, lasts in (("north", 0, 3600), ("*", 1800, 3600), ("south", 0, 7200)):
        clock.now = start + after
        await post(client, "/api/v1/incidents", "engineer",
                   {"area": area, "message": "outage", "expires_in": lasts})
    clock.now = start + 3 * 3600
    await app.ledger.flush()
    status, claim = await post(client, "/api/v1/claims", "operator",
                               {"account": "100101", "from": start - 600, "to": start + 4000})
    assert status == 201 and claim["number"].startswith("3")
    # north 0..3600 and everywhere 1800..5400, clipped at 4000: 4000 s, counted once.
    assert claim["downtime_seconds"] == 4000
    assert len(claim["incidents"]) == 2
    status, body = await post(client, "/api/v1/claims", "operator",
                              {"account": "100101", "from": "yesterday", "to": start})
    assert status == 400 and "from" in body["error"]


async def test_the_registry_is_the_offices(desk: Any) -> None:
    client, _, _ = desk
    await post(client, "/api/v1/tickets", "operator", {"account": "100101", "problem": "x"})
    status, body = await get(client, "/api/v1/registry", "supervisor")
    assert status == 403
    status, body = await get(client, "/api/v1/registry", "office")
    assert status == 200 and body["intact"] and len(body["entries"]) == 1
    assert body["head"]["seq"] == 1 and body["entries"][0]["hash"] == body["head"]["hash"]


async def test_the_registry_survives_a_restart(tmp_path: Path) -> None:
    config = config_for(tmp_path, f"sqlite:///{tmp_path / 'ledger.db'}")
    first = build(config, clock=Clock())
    async with TestClient(TestServer(make_web(first))) as client:
        await first.store.run(Store.migrate)
        await first.desk.load()
        await post(client, "/api/v1/tickets", "operator", {"account": "100101", "problem": "x"})
    again = build(config, clock=Clock())
    async with TestClient(TestServer(make_web(again))) as client:
        await again.desk.load()
        status, t = await get(client, "/api/v1/tickets/10000012", "engineer")
        assert status == 200 and t["problem"] == "x"
        _, t2 = await post(client, "/api/v1/tickets", "operator", {"account": "100101", "problem": "y"})
        assert t2["number"] == "10000020"          # the next, not the first again


# -- tampering done directly in the database -----------------------------------

async def filed(config: Config, n: int) -> None:
    app = build(config, clock=Clock())
    async with TestClient(TestServer(make_web(app))) as client:
        await app.store.run(Store.migrate)
        await app.desk.load()
        for i in range(n):
            status, _ = await post(client, "/api/v1/tickets", "operator",
                                   {"account": "100101", "problem": f"fault {i}"})
            assert status == 201


def verify(config: Config, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "IVR_LEDGER_URL": config.ledger.url}
    return subprocess.run([str(Path(sys.executable).parent / "ivr"), "registry", "verify"], env=env,
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)


TAMPERING = [
    ("UPDATE registry SET body = replace(body, 'fault 1', 'nothing') WHERE seq = 2",
     "entry 2 (ticket 10000020) altered"),
    ("DELETE FROM registry WHERE seq = 2", "entry 2 removed"),
    ("DELETE FROM registry WHERE seq = 3", "entry 3-3 removed"),
    ("UPDATE registry SET actor = 'nobody' WHERE seq = 1", "entry 1 (ticket 10000012) altered"),
]


@pytest.mark.parametrize("sql, problem", TAMPERING)
async def test_verify_catches_tampering_in_sqlite(tmp_path: Path, sql: str, problem: str) -> None:
    config = config_for(tmp_path, f"sqlite:///{tmp_path / 'ledger.db'}")
    await filed(config, 3)
    assert verify(config, tmp_path).returncode == 0
    with sqlite3.connect(tmp_path / "ledger.db") as db:
        db.execute(sql)
    done = verify(config, tmp_path)
    assert done.returncode == 1 and problem in done.stderr, done.stderr


@pytest.mark.parametrize("sql, problem", TAMPERING)
async def test_verify_catches_tampering_in_postgresql(tmp_path: Path, pg_url: str, sql: str,
                                                      problem: str) -> None:
    import asyncpg  # type: ignore[import-untyped]  # no stubs, no py.typed
    config = config_for(tmp_path, pg_url)
    await filed(config, 3)
    assert verify(config, tmp_path).returncode == 0
    db = await asyncpg.connect(pg_url)
    try:
        await db.execute(sql)
    finally:
        await db.close()
    done = verify(config, tmp_path)
    assert done.returncode == 1 and problem in done.stderr, done.stderr


# -- what the dialplan asks (/dialplan/v1: numbers, status, claim) --------------

async def dialplan(client: TestClient[Any, Any], path: str) -> dict[str, str]:
    from urllib.parse import parse_qsl
    resp = await client.get(path, headers=DIALPLAN)
    assert resp.status == 200
    return dict(parse_qsl(await resp.text(), keep_blank_values=True))


async def test_the_dialplan_reads_back_the_numbers_of_a_call(desk: Any) -> None:
    client, _, _ = desk
    _, t = await post(client, "/api/v1/tickets", "operator", {"call": "1795996400.1", "problem": "x"})
    _, c = await post(client, "/api/v1/complaints", "supervisor", {"call": "1795996400.1", "text": "y"})
    await post(client, "/api/v1/tickets", "operator", {"call": "1795996400.2", "problem": "z"})
    answer = await dialplan(client, "/dialplan/v1/numbers?uniqueid=1795996400.1&pbx=default")
    assert answer == {"numbers": f"{t['number']}-{c['number']}", "count": "2"}
    assert await dialplan(client, "/dialplan/v1/numbers?uniqueid=1795996400.9") == \
        {"numbers": "", "count": "0"}
    assert (await client.get("/dialplan/v1/numbers?uniqueid=x;rm", headers=DIALPLAN)).status == 400


async def test_a_caller_asks_for_a_state_by_number(desk: Any) -> None:
    client, _, _ = desk
    _, t = await post(client, "/api/v1/tickets", "operator", {"account": "100101", "problem": "x"})
    assert await dialplan(client, f"/dialplan/v1/status?number={t['number']}") == \
        {"kind": "ticket", "state": "open"}
    typo = t["number"][:-1] + str((int(t["number"][-1]) + 1) % 10)
    assert await dialplan(client, f"/dialplan/v1/status?number={typo}") == {"error": "wrong"}
    assert await dialplan(client, "/dialplan/v1/status?number=10000020") == {"error": "unknown"}
    assert await dialplan(client, "/dialplan/v1/status?number=") == {"error": "wrong"}


# -- dispositions, and the statement's calls left without one --------------------

async def test_dispositions_and_the_statement(desk: Any) -> None:
    client, app, _ = desk
    # op2 answered it: op1 may not close it (tests/unit/test_calls_access.py), op2's supervisor may.
    status, body = await post(client, "/api/v1/calls/1795996400.1/disposition", "supervisor",
                              {"code": "resolved"})
    assert status == 201 and body == {"result": "recorded", "code": "resolved"}
    status, body = await post(client, "/api/v1/calls/1795996400.1/disposition", "operator",
                              {"code": "fine"})
    assert status == 400 and "code: one of resolved" in body["error"]
    status, body = await post(client, "/api/v1/calls/1790000000.1/disposition", "operator",
                              {"code": "resolved"})
    assert status == 404
    status, body = await post(client, "/api/v1/calls/1795996400.1/disposition", "engineer",
                              {"code": "resolved"})
    assert status == 403
    assert app.registry.get_sample_value("ivr_operator_actions_total",
                                         {"pbx": "default", "action": "disposition"}) == 1
    await app.ledger.flush()
    status, statement = await get(client, "/api/v1/reports/billing?from=2026-11-29&to=2026-12-01",
                                  "supervisor")
    assert status == 200
    [op2] = statement["operators"]
    assert op2["operator"] == "op2" and op2["answered"] == 3 and op2["without_disposition"] == 2


async def test_warn_and_end_need_a_call_with_an_operator(desk: Any) -> None:
    client, _, _ = desk
    status, body = await post(client, "/api/v1/calls/1795996400.1/warn", "operator", {})
    assert status == 404 and body["error"] == "unknown call"      # ended: not in progress
    status, body = await post(client, "/api/v1/calls/1795996400.1/end", "operator", {"reason": "rude"})
    assert status == 400 and "only for abuse" in body["error"]
    status, body = await post(client, "/api/v1/calls/1795996400.1/transfer", "operator", {"to": "x"})
    assert status == 400 and "to: one of supervisor, read_back" in body["error"]
    status, body = await post(client, "/api/v1/calls/1795996400.1/transfer", "operator",
                              {"to": "supervisor"})
    assert status == 404
    status, _ = await post(client, "/api/v1/calls/1795996400.1/transfer", "engineer", {"to": "supervisor"})
    assert status == 403


async def test_first_contact_resolution_over_http(desk: Any) -> None:
    client, _, _ = desk
    status, body = await get(client, "/api/v1/reports/fcr?from=2026-11-29&to=2026-12-01", "office")
    assert status == 200
    # The same caller three times a minute apart: only the last call was the last word.
    assert body["operators"] == [{"operator": "op2", "answered": 3, "fcr_24h": 1, "fcr_7d": 1,
                                  "fcr_24h_share": 0.3333, "fcr_7d_share": 0.3333}]
    status, _ = await get(client, "/api/v1/reports/fcr?from=2026-11-29&to=2026-12-01", "operator")
    assert status == 403


async def test_the_statement_pays_once_per_caller_when_asked(tmp_path: Path) -> None:
    config = config_for(tmp_path, f"sqlite:///{tmp_path / 'ledger.db'}")
    config = replace(config, report=replace(config.report, pay_once_per_caller=True))
    app = build(config, clock=Clock())
    async with TestClient(TestServer(make_web(app))) as client:
        await app.store.run(Store.migrate)
        await app.store.run(Store.write, [answered(n) for n in range(3)])
        status, statement = await get(client, "/api/v1/reports/billing?from=2026-11-29&to=2026-12-01",
                                      "office")
        assert status == 200
        assert statement["totals"]["payable"] == 3 and statement["payable_once_per_caller"] == 1


async def test_the_downtime_report_over_http(desk: Any) -> None:
    client, app, clock = desk
    await post(client, "/api/v1/incidents", "engineer", {"area": "north", "message": "cut", "expires_in": 7200})
    clock.now += 3600
    await app.ledger.flush()
    status, body = await get(client, "/api/v1/reports/downtime?from=2026-11-30&to=2026-12-02", "office")
    assert status == 200
    by_account = {a["account"]: a for a in body["accounts"]}
    assert by_account["100101"]["downtime_seconds"] == 3600      # open: counted up to now
    assert by_account["100201"]["downtime_seconds"] == 0
    status, _ = await get(client, "/api/v1/reports/downtime?from=2026-11-30&to=2026-12-02", "operator")
    assert status == 403


async def test_a_claim_and_the_report_agree_before_the_ledger_has_the_incident(desk: Any) -> None:
    """An incident opened a moment ago may still be in the ledger writer's batch: the
    report counts it as the claim does (one function gathers the incidents for both)."""
    client, app, clock = desk
    await post(client, "/api/v1/incidents", "engineer", {"area": "north", "message": "cut", "expires_in": 7200})
    clock.now += 600
    assert await app.store.run(Store.incidents_between, 0, 2**62) == []     # not written yet
    status, body = await get(client, "/api/v1/reports/downtime?from=2026-11-30&to=2026-12-02", "office")
    assert status == 200
    assert {a["account"]: a["downtime_seconds"] for a in body["accounts"]}["100101"] == 600
    status, claim = await post(client, "/api/v1/claims", "office",
                               {"account": "100101", "from": "2026-11-30T00:00:00Z",
                                "to": "2026-12-02T00:00:00Z"})
    assert status == 201 and claim["downtime_seconds"] == 600
