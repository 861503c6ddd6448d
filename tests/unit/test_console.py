"""The console's sign-in, sessions, CSRF and roles, over ivr's real web app
(the pages themselves are driven in a real browser: tests/lab/test_console.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from ivr.app import build
from ivr.http.app import make_web
from ivr.ledger.store import Store
from tests.unit.test_desk_api import TOKENS, Clock, answered, config_for


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[TestClient[Any, Any]]:
    app = build(config_for(tmp_path, f"sqlite:///{tmp_path / 'ledger.db'}"), clock=Clock())
    async with TestClient(TestServer(make_web(app))) as c:
        await app.store.run(Store.migrate)
        await app.store.run(Store.write, [answered(n) for n in range(3)])
        await app.desk.load()
        yield c


async def sign_in(client: TestClient[Any, Any], role: str) -> str:
    resp = await client.post("/console/sign-in", data={"token": TOKENS[role][1]},
                             allow_redirects=False)
    assert resp.status == 303
    cookie = resp.cookies["ivr_session"]
    assert cookie["httponly"] and cookie["samesite"] == "Strict"
    return str(resp.headers["Location"])


def csrf_of(page: str) -> str:
    settings = page.split('<script type="application/json" id="settings">', 1)[1].split("</script>")[0]
    return str(json.loads(settings.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&"))["csrf"])


async def test_the_sign_in_page_names_its_controls(client: TestClient[Any, Any]) -> None:
    page = await (await client.get("/console")).text()
    assert '<label for="token">Token</label>' in page and ">Sign in</button>" in page
    ru = await (await client.get("/console?lang=ru")).text()
    assert '<html lang="ru">' in ru and "Войти" in ru


async def test_each_role_lands_on_its_own_page(client: TestClient[Any, Any]) -> None:
    assert await sign_in(client, "operator") == "/console/desk/op1"
    client.session.cookie_jar.clear()
    assert await sign_in(client, "office") == "/console/office"
    client.session.cookie_jar.clear()
    assert await sign_in(client, "engineer") == "/console/tickets"


async def test_a_wrong_token_and_a_cross_site_form_are_refused(client: TestClient[Any, Any]) -> None:
    resp = await client.post("/console/sign-in", data={"token": "nope"}, allow_redirects=False)
    assert resp.status == 401 and "not valid" in await resp.text()
    resp = await client.post("/console/sign-in", data={"token": TOKENS["admin"][1]},
                             headers={"Origin": "https://evil.example"}, allow_redirects=False)
    assert resp.status == 403 and "ivr_session" not in resp.cookies


async def test_another_roles_page_is_403(client: TestClient[Any, Any]) -> None:
    await sign_in(client, "operator")
    assert (await client.get("/console/desk/op1")).status == 200
    for page in ("/console/office", "/console/board", "/console/tickets"):
        assert (await client.get(page)).status == 403
    assert (await client.get("/console/statement.csv?from=2026-11-01&to=2026-12-01")).status == 403


async def test_the_pages_act_through_the_api_with_session_and_csrf(client: TestClient[Any, Any]) -> None:
    await sign_in(client, "office")
    csrf = csrf_of(await (await client.get("/console/office")).text())
    # Without the CSRF header the session alone is not enough (a cross-site fetch has no token).
    assert (await client.get("/api/v1/registry")).status == 401
    resp = await client.get("/api/v1/registry", headers={"X-CSRF-Token": csrf})
    assert resp.status == 200 and (await resp.json())["intact"] is True
    resp = await client.get("/console/statement.csv?from=2026-11-29&to=2026-12-01")
    assert resp.status == 200 and resp.content_type == "text/csv"
    # Signed out, the session is gone.
    await client.post("/console/sign-out", allow_redirects=False)
    assert (await client.get("/api/v1/registry", headers={"X-CSRF-Token": csrf})).status == 401


async def test_the_assets_are_shipped_with_ivr(client: TestClient[Any, Any]) -> None:
    for asset in ("console.js", "desk.js", "board.js", "office.js", "tickets.js", "console.css"):
        resp = await client.get(f"/console/static/{asset}")
        assert resp.status == 200 and len(await resp.read()) > 500
    page = await (await client.get("/console")).text()
    assert "http" not in page.split("<body>")[0].replace("http-equiv", "")    # no CDN


async def test_each_page_loads_its_own_module_and_escapes_what_it_echoes(
        client: TestClient[Any, Any]) -> None:
    await sign_in(client, "supervisor")
    for page, path in (("board", "/console/board"), ("desk", "/console/desk/op1")):
        html = await (await client.get(path)).text()
        assert f'<script type="module" src="/console/static/{page}.js"></script>' in html
    html = await (await client.get("/console/desk/%3Cb%3Eop1")).text()    # a member named <b>op1
    assert ": &lt;b&gt;op1</h1>" in html and "<b>" not in html
    # No page-level globals: the shared names are exports of console.js, imported by each page.
    static = Path(__file__).parents[2] / "ivr" / "console" / "static"
    for module in ("desk", "board", "office", "tickets"):
        script = (static / f"{module}.js").read_text()
        assert script.startswith("import {") and 'from "./console.js";' in script.splitlines()[0]
        assert not re.search(r"^(const|let|var) ", script, re.M), module


async def test_the_card_has_the_callers_calls_repeats_flagged_and_open_items(tmp_path: Path) -> None:
    from dataclasses import replace

    from ivr.ami.codec import Message
    from ivr.console.live import Hub
    from ivr.calls import records as rec
    from tests.unit.test_desk_api import Clock
    clock = Clock()
    app = build(config_for(tmp_path, f"sqlite:///{tmp_path / 'ledger.db'}"), clock=clock)
    await app.store.run(Store.migrate)
    lost = replace(answered(3), uniqueid="1795996400.9", linkedid="1795996400.9",
                   outcome="abandoned", payable=False, answered_us=None, answered_queue="",
                   answered_member="", visits=(rec.VisitRecord(1, "first-line", 0, 1, "abandoned",
                                                               None, ""),))
    await app.store.run(Store.write, [answered(0), lost])
    await app.desk.load()
    from ivr.config.tokens import Actor
    op1, eng1 = Actor("operator", "op1"), Actor("engineer", "eng1")
    still_open = await app.desk.file_ticket(op1, "100101", None, "no link", False)
    done = await app.desk.file_ticket(op1, "100101", None, "slow", False)
    await app.desk.change(eng1, done.number, "resolved", None)
    await app.desk.file_ticket(op1, "100102", None, "another account", False)
    pbx = app.pbxs["default"]
    fields: tuple[tuple[str, str], ...]
    for fields in ((("Event", "VarSet"), ("Uniqueid", "1796000000.5"), ("Channel", "PJSIP/c-5"),
                    ("Variable", "IVR_ACCOUNT"), ("Value", "100101")),
                   (("Event", "VarSet"), ("Uniqueid", "1796000000.5"), ("Channel", "PJSIP/c-5"),
                    ("Variable", "IVR_AREA"), ("Value", "north")),
                   (("Event", "QueueCallerJoin"), ("Uniqueid", "1796000000.5"),
                    ("Channel", "PJSIP/c-5"), ("CallerIDNum", "79101"), ("Queue", "first-line"))):
        pbx.on_event(Message(fields))
    hub = Hub(app)
    assert hub.current("op1") is None                  # waiting: nobody has the call yet
    for fields in ((("Event", "QueueCallerLeave"), ("Timestamp", "1796000002.000000"),
                    ("Uniqueid", "1796000000.5"), ("Channel", "PJSIP/c-5"), ("Queue", "first-line")),
                   (("Event", "AgentConnect"), ("Timestamp", "1796000002.010000"),
                    ("Uniqueid", "1796000000.5"), ("Queue", "first-line"),
                    ("MemberName", "op1"), ("HoldTime", "2"))):
        pbx.on_event(Message(fields))
    now = hub.current("op1")           # a desk opened now gets this call's card
    assert now is not None and now.uniqueid == "1796000000.5" and hub.current("op2") is None
    clock.now = 1796000007.5           # 5.49 s after op1 answered (the AgentConnect)
    card = await hub.card("1796000000.5", "op1", 2500)
    assert (card["caller"], card["account"], card["area"]) == ("79101", "100101", "north")
    assert card["on_call_ms"] == 5490               # the desk's timer starts from here
    # Each recent call's wait: to its answer (4 s), or to its end when nobody answered (60 s).
    assert [(r["uniqueid"], r["outcome"], r["repeat"], r["wait_ms"]) for r in card["recent"]] == [
        ("1795996400.0", "answered", False, 4000), ("1795996400.9", "abandoned", True, 60_000)]
    assert card["repeats"] == 1 and card["can_escalate"] and card["incident"] is None
    assert card["open"] == [{"number": still_open.number, "kind": "ticket", "state": "open"}]
    # A known incident over the caller's area: on the card, and Escalate is off.
    app.incidents.open("north", "Fibre cut.", 3600)
    card = await hub.card("1796000000.5", "op1", 2500)
    assert card["incident"]["message"] == "Fibre cut." and not card["can_escalate"]
    await app.store.close()


def test_every_word_of_the_pages_is_in_both_languages() -> None:
    import re

    from ivr.console import texts
    script = "".join(p.read_text() for p in Path(texts.__file__).with_name("static").glob("*.js"))
    used = set(re.findall(r"\bwords\.([a-z_]+)", script)) | {"offered", "payable"}   # words[key]
    assert used - set(texts.WORDS) == set(), "the pages' modules use words texts.py lacks"
    for key, (en, ru) in texts.WORDS.items():
        assert en and ru, key
        # A Russian word is Russian: no Latin letters but the names ivr and CSV (and
        # the link to the English pages, which names English).
        if key != "language":
            assert not re.search(r"[A-Za-z]", ru.replace("ivr", "").replace("CSV", "")), key


def test_no_word_is_written_twice() -> None:
    """A key twice in a dict literal keeps the last silently: the board's "late" once
    became the office's "Answered late" so."""
    import ast

    from ivr.console import texts
    tree = ast.parse(Path(texts.__file__).read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            keys = [str(k.value) for k in node.keys if isinstance(k, ast.Constant)]
            assert sorted({k for k in keys if keys.count(k) > 1}) == [], f"line {node.lineno}"


def test_every_code_the_pages_show_has_a_label_in_both_languages() -> None:
    from ivr.calls import service as calls
    from ivr.config import tokens as roles
    from ivr.calls.judge import OUTCOMES
    from ivr.calls.tracker import AGENT_STATES
    from ivr.console import texts
    from ivr.desk import service as desk
    from ivr.calls.records import UNOBSERVED
    expected = {
        "role": set(roles.ROLES),
        "outcome": set(OUTCOMES) | {"unanswered", "unknown", UNOBSERVED},
        "agent": set(AGENT_STATES),
        "kind": {desk.TICKET, desk.COMPLAINT, desk.CLAIM},
        "state": set(desk.TICKET_MOVES) | set(desk.COMPLAINT_MOVES) | {"filed"},
        "disposition": set(calls.DISPOSITIONS),
    }
    for space, codes in expected.items():
        assert codes <= set(texts.LABELS[space]), (space, codes - set(texts.LABELS[space]))
        ru = texts.labels("ru")[space]
        assert all(ru[c] and ru[c] != c for c in codes), space


async def test_a_restart_signs_nobody_out_but_sign_out_and_a_changed_token_do(tmp_path: Path) -> None:
    """Sessions are kept in the ledger (hashes only): a new ivr on the same ledger knows
    them, unless they signed out or their token was taken away or replaced."""
    import hashlib
    import sqlite3

    config = config_for(tmp_path, f"sqlite:///{tmp_path / 'ledger.db'}")

    async def ivr() -> Any:
        app = build(config, clock=Clock())
        client = TestClient(TestServer(make_web(app)))
        await client.start_server()
        return client

    first = await ivr()
    cookies = {}
    for role in ("office", "engineer", "supervisor", "operator"):
        first.session.cookie_jar.clear()
        await sign_in(first, role)
        cookies[role] = first.session.cookie_jar.filter_cookies(first.make_url("/"))["ivr_session"].value
    await first.post("/console/sign-out", allow_redirects=False)      # the operator leaves
    await first.close()
    kept = sqlite3.connect(tmp_path / "ledger.db").execute(
        "SELECT sid_hash, role, token_sha256 FROM console_sessions ORDER BY role").fetchall()
    assert kept == [(hashlib.sha256(cookies[r].encode()).hexdigest(), r,
                     hashlib.sha256(TOKENS[r][1].encode()).hexdigest())
                    for r in ("engineer", "office", "supervisor")]
    assert not any(secret in str(kept) for secret in [*cookies.values(),
                                                      *(t for _, t in TOKENS.values())])

    # Before the restart the engineer's token is taken away and the supervisor's replaced.
    tokens = Path(config.api.tokens_file)
    lines = [line for line in tokens.read_text().splitlines() if not line.startswith("engineer ")]
    tokens.write_text("".join(line.replace(TOKENS["supervisor"][1], "a-new-token-for-sup1-0001") + "\n"
                              for line in lines))
    second = await ivr()
    try:
        page = await second.get("/console/office", allow_redirects=False,
                                headers={"Cookie": f"ivr_session={cookies['office']}"})
        assert page.status == 200
        csrf = csrf_of(await page.text())
        resp = await second.get("/api/v1/registry", headers={
            "Cookie": f"ivr_session={cookies['office']}", "X-CSRF-Token": csrf})
        assert resp.status == 200
        for gone, path in (("engineer", "/console/tickets"), ("supervisor", "/console/board"),
                           ("operator", "/console/desk/op1")):
            resp = await second.get(path, allow_redirects=False,
                                    headers={"Cookie": f"ivr_session={cookies[gone]}"})
            assert resp.status == 302 and resp.headers["Location"] == "/console", gone
    finally:
        await second.close()


async def first_event(client: TestClient[Any, Any], query: str = "",
                      wanted: str = "") -> tuple[str, dict[str, Any]]:
    """The stream's first event (of the name `wanted`, if given)."""
    resp = await client.get(f"/console/events{query}")
    assert resp.status == 200 and resp.content_type == "text/event-stream"
    name, data = "", ""
    while not data or (wanted and name != wanted):
        line = (await resp.content.readline()).decode().rstrip("\n")
        if line.startswith("event: "):
            name, data = line[7:], ""
        elif line.startswith("data: "):
            data = line[6:]
    resp.close()
    return name, json.loads(data)


async def test_an_operator_watches_their_own_desk_and_only_the_board_gets_its_figures(
        client: TestClient[Any, Any]) -> None:
    await sign_in(client, "operator")                         # op1
    assert (await client.get("/console/desk/op2")).status == 403
    assert (await client.get("/console/events?member=op2")).status == 403
    # The queues stream without the board's figures (complaints, today's statement).
    name, data = await first_event(client)
    assert name == "queues" and "first-line" in data["queues"]
    assert "complaints" not in data and "service_level" not in data
    client.session.cookie_jar.clear()
    await sign_in(client, "supervisor")
    assert (await client.get("/console/desk/op2")).status == 200
    name, data = await first_event(client, wanted="queues")
    assert data["service_level"]["queue"] == "first-line" and data["complaints"] == []


def test_every_error_code_of_the_api_has_words_in_both_languages() -> None:
    import re

    import ivr
    from ivr.console import texts
    root = Path(ivr.__file__).parent
    codes = {c for path in root.rglob("*.py")     # code="x" (an answer's), code = "x" (an error's)
             for c in re.findall(r'\bcode ?= ?"([a-z_]+)"', path.read_text())}
    assert {"not_in_call", "incident", "warn_first", "state_order"} <= codes
    assert codes == set(texts.LABELS["error"])
    from ivr.http import errors
    # The services' errors have their statuses in http/errors.py; the handlers' own, error(NNN.
    statuses = {str(s) for s in errors.STATUS.values()} | {
        s for path in (root / "http").rglob("*.py")
        for s in re.findall(r"\berror\((\d{3})", path.read_text())}
    assert statuses <= set(texts.LABELS["status"]), statuses - set(texts.LABELS["status"])
