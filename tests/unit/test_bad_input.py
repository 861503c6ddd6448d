"""Bad input is a JSON 4xx that changes nothing: the findings of issue 18.

Instants out of any calendar (1e308, NaN, 2**63), lone surrogates in every text
field of the desk's bodies and of an incident, transfer targets that are not
text, and Authorization or Cookie headers that are not UTF-8, sent as raw bytes
over a socket (a middleware of the test records what the server received)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from aiohttp.typedefs import Handler

from ivr.app import Services, build
from ivr.http.app import make_web
from ivr.ledger.store import Store
from tests.unit.test_desk_api import Clock, answered, auth, config_for

HUGE = ["1e308", "NaN", "Infinity", "-Infinity", "-1", str(2**63), str(-2**63), "1e20",
        '"soon"', "true", "false", "[]", "{}", '"9999999999999999999999"', '"10000-01-01"']


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[TestClient[Any, Any], Services, list[Any]]]:
    app = build(config_for(tmp_path, f"sqlite:///{tmp_path / 'ledger.db'}"), clock=Clock())
    seen: list[Any] = []

    @web.middleware
    async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
        seen.append((request.headers.get("Authorization"), request.headers.get("Cookie")))
        return await handler(request)
    server = make_web(app)
    server.middlewares.insert(0, record)
    async with TestClient(TestServer(server)) as client:
        await app.store.run(Store.migrate)
        await app.store.run(Store.write, [answered(n) for n in range(3)])
        await app.desk.load()
        yield client, app, seen


async def raw_post(client: TestClient[Any, Any], path: str, role: str, text: str) -> tuple[int, Any]:
    """`text` as the body, verbatim: NaN and 2**63 are what JSON parsers take."""
    resp = await client.post(path, headers=auth(role), data=text.encode())
    return resp.status, await resp.json()


async def unchanged(app: Services) -> None:
    assert app.desk.head[0] == 0 and await app.desk.entries() == []
    assert not app.incidents.active()


@pytest.mark.parametrize("value", HUGE)
async def test_a_claims_instants_must_be_times(served: Any, value: str) -> None:
    client, app, _ = served
    for body in (f'{{"account": "100101", "from": {value}, "to": "2026-11-30T00:00:00Z"}}',
                 f'{{"account": "100101", "from": "2026-11-29T00:00:00Z", "to": {value}}}'):
        status, answer = await raw_post(client, "/api/v1/claims", "operator", body)
        assert 400 <= status < 500 and "error" in answer, (body, status, answer)
    await unchanged(app)


@pytest.mark.parametrize("value", HUGE)
async def test_a_complaints_instant_must_be_a_time(served: Any, value: str) -> None:
    client, app, _ = served
    body = f'{{"operator": "op2", "at": {value}, "text": "rude"}}'
    status, answer = await raw_post(client, "/api/v1/complaints", "supervisor", body)
    assert 400 <= status < 500 and "error" in answer, (value, status, answer)
    await unchanged(app)


@pytest.mark.parametrize("query", ["from=1e308", "to=" + "9" * 400, "from=10000-01-01",
                                   "from=0000-01-01", "to=-1", "from=NaN"])
async def test_the_registrys_query_must_be_times(served: Any, query: str) -> None:
    client, _, _ = served
    resp = await client.get(f"/api/v1/registry?{query}", headers=auth("office"))
    assert resp.status == 400 and "error" in await resp.json()


LONE = "\ud800"
BODIES = [
    ("/api/v1/tickets", "operator", {"account": "100101", "problem": "x"}, ["account", "problem"]),
    ("/api/v1/complaints", "supervisor", {"operator": "op2", "at": "2026-11-29T23:00:00Z",
                                         "text": "rude"}, ["operator", "at", "text"]),
    ("/api/v1/claims", "operator", {"account": "100101", "from": "2026-11-29T00:00:00Z",
                                    "to": "2026-11-30T00:00:00Z"}, ["account", "from", "to"]),
    ("/api/v1/incidents", "engineer", {"area": "north", "message": "fibre cut",
                                      "expires_in": 600}, ["area", "message"]),
]


@pytest.mark.parametrize("path, role, body, fields", BODIES, ids=[b[0] for b in BODIES])
async def test_a_lone_surrogate_in_any_text_field_is_a_400(served: Any, path: str, role: str,
                                                          body: dict[str, Any],
                                                          fields: list[str]) -> None:
    client, app, _ = served
    for name in fields:
        for text in (LONE, f"a{LONE}b", "\udfff"):
            sent = json.dumps({**body, name: text})       # escaped: "\ud800" on the wire
            status, answer = await raw_post(client, path, role, sent)
            assert status == 400 and name in answer["error"], (name, status, answer)
    sent = json.dumps({**body, "x" + LONE: 1})            # in a key too
    status, answer = await raw_post(client, path, role, sent)
    assert status == 400, answer
    await unchanged(app)


async def test_a_lone_surrogate_in_a_note_or_state_is_a_400(served: Any) -> None:
    client, app, _ = served
    status, ticket = await raw_post(client, "/api/v1/tickets", "operator",
                                    '{"account": "100101", "problem": "no link"}')
    assert status == 201
    path = f"/api/v1/tickets/{ticket['number']}/events"
    for body in ({"note": LONE}, {"state": "in_progress", "note": f"on my way {LONE}"},
                 {"state": LONE}):
        status, answer = await raw_post(client, path, "engineer", json.dumps(body))
        assert status == 400, answer
    status, kept = await raw_post(client, path, "engineer", '{"note": "fine"}')
    assert status == 200 and [e.get("note") for e in kept["events"]] == ["fine"]


@pytest.mark.parametrize("to", ["[]", "{}", "null", "1", "true", '["supervisor"]',
                                '{"supervisor": 1}', '"' + LONE.encode("unicode_escape").decode() + '"'])
async def test_transfer_to_anything_but_a_name_is_a_400(served: Any, to: str) -> None:
    client, _, _ = served
    status, answer = await raw_post(client, "/api/v1/calls/1795996400.1/transfer", "operator",
                                    f'{{"to": {to}}}')
    assert status == 400 and answer["error"].startswith("to: ")


@pytest.mark.parametrize("code", ["[]", "{}", "null"])
async def test_disposition_and_end_take_text_only(served: Any, code: str) -> None:
    client, _, _ = served
    status, _ = await raw_post(client, "/api/v1/calls/1795996400.1/disposition", "operator",
                               f'{{"code": {code}}}')
    assert status == 400
    status, _ = await raw_post(client, "/api/v1/calls/1795996400.1/end", "operator",
                               f'{{"reason": {code}}}')
    assert status == 400


# -- headers that are not UTF-8, as raw bytes --------------------------------------

async def raw_request(client: TestClient[Any, Any], head: bytes) -> tuple[int, bytes]:
    assert client.port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    writer.write(head)
    await writer.drain()
    answer = await reader.read()
    writer.close()
    status = int(answer.split(b" ", 2)[1])
    return status, answer.partition(b"\r\n\r\n")[2]


@pytest.mark.parametrize("header", [
    b"Authorization: Bearer \xff\xfe-not-utf8-token-000000",
    b"Authorization: \xc3\x28",
    b"Authorization: Bearer " + "операторский-токен-000".encode(),
    b"Cookie: ivr_session=\xff\xfe\xfd",
    b"Cookie: ivr_session=\xed\xa0\x80abc",
    b"Cookie: ivr_session=abc\r\nX-CSRF-Token: \xff\xfe",
    b"Cookie: ivr_lang=\xff",
])
@pytest.mark.parametrize("path", [b"/api/v1/queues", b"/api/v1/tickets", b"/console/board"])
async def test_headers_not_utf8_are_a_4xx(served: Any, header: bytes, path: bytes) -> None:
    client, _, seen = served
    status, body = await raw_request(
        client, b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + header + b"\r\n\r\n")
    if path.startswith(b"/api/"):
        assert 400 <= status < 500 and "error" in json.loads(body), (status, body)
    else:                           # the console sends a stranger to its sign-in page
        assert status in (302, 400, 401, 403), (status, body)
    got = seen[-1][0] if header.startswith(b"Authorization") else seen[-1][1]
    assert got is not None and got.encode("utf-8", "surrogateescape") == \
        header.split(b": ", 1)[1].split(b"\r\n")[0], "the server did not get the raw bytes"


async def test_a_csrf_header_not_utf8_with_a_good_session_is_a_401(served: Any) -> None:
    client, _, seen = served
    resp = await client.post("/console/sign-in", data={"token": auth("supervisor")["Authorization"][7:]},
                             allow_redirects=False)
    assert resp.status == 303
    sid = resp.cookies["ivr_session"].value
    for csrf in (b"\xff\xfe", "жжж".encode()):
        status, body = await raw_request(client, b"GET /api/v1/queues HTTP/1.1\r\nHost: x\r\n"
                                         b"Connection: close\r\nCookie: ivr_session=" + sid.encode()
                                         + b"\r\nX-CSRF-Token: " + csrf + b"\r\n\r\n")
        assert status == 401 and "error" in json.loads(body), (status, body)
        assert seen[-1][1] == f"ivr_session={sid}"


@pytest.mark.parametrize("query", [
    "reports/billing?from=2026-11-01&to=2026-12-01&tz=%ED%A0%80",
    "reports/billing?from=2026-11-01&to=2026-12-01&tz=%FF",
    "reports/billing?from=2026-11-01&to=2026-12-01&tz=Europe/%00",
    "reports/billing?from=%ED%A0%80&to=2026-12-01",
    "reports/billing?from=2026-11-01&to=2026-12-01&calls=" + "9" * 5000,
    "calls?from=2026-11-01&to=2026-12-01&caller=%ED%A0%80",
    "calls?from=2026-11-01&to=2026-12-01&account=%FF%FE",
    "calls?from=99999999999999999999&to=2026-12-01",
    "calls/1795996400.1?pbx=%ED%A0%80",
    "tickets?state=%ED%A0%80",
    "complaints?state=%FF",
    "registry?from=%ED%A0%80",
    "registry?from=2026-01-01&to=" + "1" * 5000,
])
async def test_query_strings_odd_or_huge_get_no_5xx(served: Any, query: str) -> None:
    client, _, _ = served
    resp = await client.get(f"/api/v1/{query}", headers=auth("office"))
    assert resp.status < 500 and resp.content_type == "application/json", (resp.status,
                                                                            await resp.text())
