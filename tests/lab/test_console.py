"""The console in a real browser: Debian's chromium driven by Playwright, on the lab
with SIPp.  Controls are found by role and accessible name, as a person finds
them; a screenshot of every page is kept in artifacts/console/ (IVR_ARTIFACTS)."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import sys
import time
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from datetime import time as dtime
from pathlib import Path
from typing import TYPE_CHECKING, Any, AsyncIterator, Iterator
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web

from ivr import config as cfg
from ivr.app import Services
from ivr.calls import records as rec
from ivr.desk import numbers
from ivr.calls.facts import Entered, Exited, JourneyAnswered, JourneyEnded
from ivr.console.pages import Console
from ivr.lab import traffic
from ivr.lab.pbx import Lab
from ivr.service import start
from ivr.http.app import CONSOLE
from ivr.ledger.store import Store
from tests.helpers import eventually, require
from tests.lab import a11y
from tests.lab.conftest import Running, lab_config

if TYPE_CHECKING:       # playwright is imported where a test runs it: it may be missing
    from playwright.async_api import Browser, BrowserContext, Page

pytestmark = pytest.mark.lab
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("IVR_ARTIFACTS", ROOT / "artifacts")) / "console"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
TOKENS = {"operator": ("op1", "console-op1-token-00001"), "supervisor": ("sup1", "console-sup1-token-0001"),
          "office": ("anna", "console-anna-token-0001"), "engineer": ("eng1", "console-eng1-token-0001"),
          "wall": ("tv1", "console-tv1-token-000001")}


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def console_config(lab: Lab, tmp_path: Path) -> cfg.Config:
    tokens = tmp_path / "tokens"
    tokens.write_text("".join(f"{role} {name} {token}\n" for role, (name, token) in TOKENS.items()))
    tokens.chmod(0o600)
    config = lab_config(lab, ledger_url=f"sqlite:///{tmp_path / 'ledger.db'}")
    return replace(config, api=replace(config.api, tokens_file=str(tokens)))


class WithConsole(Running):
    """ivr running against the lab, with its web app and the console's pages in it."""

    def __init__(self, app: Services, web_app: web.Application) -> None:
        super().__init__(app)
        self.web_app = web_app
        self.console: Console = web_app[CONSOLE]


async def started(config: cfg.Config) -> tuple[WithConsole, web.AppRunner]:
    app, runner = await start(config)
    await eventually(lambda: app.ready and app.desk.loaded, timeout=15, what="ivr ready")
    return WithConsole(app, runner.app), runner


@pytest.fixture
async def ivr_console(lab: Lab, tmp_path: Path) -> AsyncIterator[WithConsole]:
    running, runner = await started(console_config(lab, tmp_path))
    yield running
    await runner.cleanup()


@pytest.fixture
def only_op1(lab: Lab) -> Iterator[None]:
    """The other operators paused in first-line: the call goes to op1 (rrmemory rings one
    member at a time, and op2..op4 have no phone here)."""
    others = ("op2", "op3", "op4")
    for other in others:
        lab.cli(f"queue pause member PJSIP/{other} queue first-line reason console-test")
    yield
    for other in others:
        lab.cli(f"queue unpause member PJSIP/{other} queue first-line")


@pytest.fixture
async def browser() -> AsyncIterator[Watched]:
    path = chromium()
    require(path is not None, "chromium is not installed (make setup)")
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        require(False, "playwright is not installed (make setup)")
        raise
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        watched = Watched(b)
        yield watched
        await b.close()
    # An error thrown in a page's script fails the test, even one nobody looked for.
    assert watched.errors == [], watched.errors


class Watched:
    """The browser, with every uncaught error of its pages' scripts kept."""

    def __init__(self, browser: Browser) -> None:
        self.browser = browser
        self.errors: list[str] = []

    async def new_context(self, **options: Any) -> BrowserContext:
        # The screenshots' size (a page that wants another, as the wall, says so).
        options.setdefault("viewport", VIEWPORT)
        context = await self.browser.new_context(**options)
        context.on("weberror", lambda e: self.errors.append(f"{e.page.url if e.page else ''}: {e.error}"))
        return context


VIEWPORT = {"width": 1280, "height": 800}
CONTROLS = ("button", "textbox", "combobox", "spinbutton", "link", "checkbox", "radio")


async def keep(page: Page, name: str, full_page: bool = False) -> None:
    """A screenshot of the page as it is (artifacts/console/NAME.png), once every control
    on it has an accessible name, as the browser computes it for a screen reader, and
    (the first time NAME is kept in a run) axe-core finds no serious or critical
    violation on it and Tab reaches each of its controls (tests/lab/a11y.py)."""
    tree = await page.locator("body").aria_snapshot()
    unnamed = [line.strip() for line in tree.splitlines()
               if re.match(rf"\s*- ({'|'.join(CONTROLS)})\b(?! \")", line)]
    assert unnamed == [], f"{name}: controls without an accessible name: {unnamed}\n{tree}"
    if name not in a11y.checked:
        await a11y.axe(page, name, ARTIFACTS)
        await a11y.tab_through(page, name)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=full_page)


def base(ivr: Running) -> str:
    return f"http://127.0.0.1:{ivr.app.config.listen_port}"


async def signed_in(browser: Watched, ivr: Running, role: str, lang: str = "en",
                    **options: Any) -> Page:
    page = await (await browser.new_context(**options)).new_page()
    await page.goto(f"{base(ivr)}/console?lang={lang}")
    await keep(page, "sign-in" if lang == "en" else f"sign-in-{lang}")
    await page.get_by_label({"en": "Token", "ru": "Токен"}[lang]).fill(TOKENS[role][1])
    await page.get_by_role("button", name={"en": "Sign in", "ru": "Войти"}[lang]).click()
    await page.wait_for_load_state()
    return page


async def seed_the_callers_past(ivr: WithConsole) -> str:
    """79101 (account 100101) called twice an hour ago: answered after 65 s, then gave up
    after 47 s; and has an open ticket (its number)."""
    from ivr.calls import records as rec
    from ivr.config.tokens import Actor
    from ivr.ledger.store import Store
    t = int((time.time() - 3600) * 1e6)
    at = (t, t + 600_000_000)
    answered = rec.VisitRecord(1, "first-line", at[0], at[0] + 65_000_000, "answered", 65_000, "op2")
    gave_up = rec.VisitRecord(1, "first-line", at[1], at[1] + 47_000_000, "abandoned", None, "")
    calls = [rec.CallRecord("default", "1700000000.1", "1700000000.1", "79101", "100101", "north",
                            at[0], at[0] + 300_000_000, (answered,), "answered", False, rec.LIVE, rec.MS,
                            at[0] + 65_000_000, "first-line", "op2"),
             rec.CallRecord("default", "1700000000.2", "1700000000.2", "79101", "100101", "north",
                            at[1], at[1] + 47_000_000, (gave_up,), "abandoned", False, rec.LIVE, rec.MS)]
    await ivr.app.store.run(Store.write, calls)
    ticket = await ivr.app.desk.file_ticket(Actor("operator", "op1"), "100101", None, "No link", False)
    return ticket.number


def on_the_call(timer: str) -> int:
    """The desk's timer (0:07, 1:02:03) in seconds."""
    seconds = 0
    for part in timer.split(":"):
        seconds = seconds * 60 + int(part)
    return seconds


async def test_a_call_answered_by_op1_pops_on_op1s_desk_and_escalates(
        lab: Lab, ivr_console: WithConsole, browser: Watched, phones: list[traffic.Sipp], only_op1: None) -> None:
    from playwright.async_api import expect
    ivr = ivr_console
    ticket = await seed_the_callers_past(ivr)
    page = await signed_in(browser, ivr, "operator")
    assert page.url.endswith("/console/desk/op1")
    card = page.get_by_role("region", name="Caller")
    await expect(card).to_contain_text("Waiting for a call")
    await keep(page, "desk-waiting")
    phones.append(traffic.agent("op1", ring_ms=1000))
    phones += [traffic.agent(eng, ring_ms=1000) for eng in ("eng1", "eng2")]
    phones.append(traffic.callers(1, hold_ms=30_000, number_prefix="7910"))     # 79101: 100101
    await eventually(lambda: bool(ivr.of(JourneyAnswered)), timeout=20, what="op1 answered")
    answered_at = time.monotonic()
    await expect(card).to_contain_text("100101", timeout=1000)     # within 1 s of the answer
    popped = time.monotonic() - answered_at
    await expect(card).to_contain_text("north")
    # The call's timer, from the answer, moving each second.
    timer = card.get_by_role("timer")
    first = on_the_call(await timer.inner_text())
    assert first <= 2, first
    await keep(page, "desk-call")
    await page.wait_for_timeout(2100)
    assert on_the_call(await timer.inner_text()) >= first + 2
    # The caller's recent calls and open items: rows of tables with their column headers.
    recent = card.get_by_role("table", name="Recent calls")
    await expect(recent.get_by_role("columnheader")).to_have_text(["When", "Outcome", "Wait"])
    await expect(recent.get_by_role("row").filter(has_text="abandoned")).to_contain_text(
        re.compile(r"abandoned · repeat\s*47 s"))
    await expect(recent.get_by_role("row").filter(has_text="answered")).to_contain_text("1 min 05 s")
    items = card.get_by_role("table", name="Open tickets and complaints")
    await expect(items.get_by_role("columnheader")).to_have_text(["Number", "Kind", "State"])
    await expect(items.get_by_role("row").filter(has_text=ticket)).to_contain_text(
        re.compile(rf"{ticket}\s*ticket\s*open"))
    escalate = page.get_by_role("button", name="Escalate")
    await expect(escalate).to_be_enabled()
    await escalate.click()
    await eventually(lambda: any(f.queue == "engineers" for f in ivr.of(Entered)),
                     timeout=10, what="the caller in engineers (seen on AMI)")
    await expect(page.get_by_role("status")).to_contain_text("Escalate")
    print(f"the card popped {popped * 1000:.0f} ms after the answer reached ivr")


async def test_a_desk_opened_during_a_call_gets_that_calls_card(
        lab: Lab, ivr_console: WithConsole, browser: Watched, phones: list[traffic.Sipp], only_op1: None) -> None:
    from playwright.async_api import expect
    ivr = ivr_console
    phones.append(traffic.agent("op1", ring_ms=1000))
    phones.append(traffic.callers(1, hold_ms=25_000, number_prefix="7910"))     # 79101: 100101
    await eventually(lambda: bool(ivr.of(JourneyAnswered)), timeout=20, what="op1 answered")
    page = await signed_in(browser, ivr, "operator")                # the desk opens now
    card = page.get_by_role("region", name="Caller")
    await expect(card).to_contain_text(re.compile(r"Account\s*100101\s*Area\s*north"), timeout=2000)
    await expect(page.get_by_role("button", name="Warn")).to_be_enabled()
    await page.wait_for_timeout(3000)
    before = on_the_call(await card.get_by_role("timer").inner_text())
    assert before >= 3, before
    # Reloaded mid-call, it comes back too, its timer still counting from the answer.
    await page.reload()
    await expect(page.get_by_role("region", name="Caller")).to_contain_text("100101", timeout=2000)
    assert on_the_call(await page.get_by_role("timer").inner_text()) >= before


async def test_a_known_incident_on_the_russian_desk_and_a_ticket_refused_for_it(
        lab: Lab, ivr_console: WithConsole, browser: Watched, phones: list[traffic.Sipp], only_op1: None) -> None:
    """The card shows the incident, Escalate is off and says why, and a ticket filed
    anyway is refused, in the operator's language (the API's error by its code)."""
    import aiohttp
    from playwright.async_api import expect
    ivr = ivr_console
    async with aiohttp.ClientSession() as http:
        resp = await http.post(f"{base(ivr)}/api/v1/incidents",
                               headers={"Authorization": f"Bearer {TOKENS['office'][1]}"},
                               json={"area": "north", "message": "Обрыв кабеля на севере, к 18:00 починят.",
                                     "expires_in": 3600})
        assert resp.status == 201, await resp.text()
    page = await signed_in(browser, ivr, "operator", "ru")
    card = page.get_by_role("region", name="Абонент")
    await expect(card).to_contain_text("Ожидание звонка")
    phones.append(traffic.agent("op1", ring_ms=1000))
    phones.append(traffic.callers(1, hold_ms=30_000, number_prefix="7910"))     # 79101: north
    await expect(card).to_contain_text("100101", timeout=30_000)   # after the announcement
    await expect(card.get_by_role("note")).to_have_text("Обрыв кабеля на севере, к 18:00 починят.")
    escalate = page.get_by_role("button", name="Передать инженерам")
    await expect(escalate).to_be_disabled()
    why = "Передать инженерам: Абонента затрагивает известная авария"
    await expect(escalate).to_have_accessible_description(why)
    await expect(page.get_by_text(why)).to_be_visible()
    await page.get_by_role("button", name="Оформить заявку").click()
    await expect(page.get_by_role("status")).to_have_text(
        "Отказано: в районе абонента известная авария, инженеры уже работают.")
    assert [i for i in ivr.app.desk.items.values() if i.kind == "ticket"] == []
    await keep(page, "desk-incident-ru")


async def test_a_complaint_from_the_board_is_found_at_the_office(
        lab: Lab, ivr_console: WithConsole, browser: Watched, phones: list[traffic.Sipp], only_op1: None) -> None:
    from playwright.async_api import expect
    ivr = ivr_console
    phones.append(traffic.agent("op1", ring_ms=1000))
    phones.append(traffic.callers(1, hold_ms=12_000, number_prefix="7910"))
    await eventually(lambda: bool(ivr.of(JourneyEnded)), timeout=30, what="a call answered and over")
    [ended] = ivr.of(JourneyEnded)
    await ivr.app.ledger.flush()

    board = await signed_in(browser, ivr, "supervisor")
    assert board.url.endswith("/console/board")
    await expect(board.get_by_role("region", name="Queues")).to_contain_text("first-line")
    # Today's service level, from the ledger: the one call, answered in 1 s.
    await expect(board.get_by_role("status", name="Service level")).to_contain_text("today 100.0 %")
    await board.get_by_role("textbox", name="Call").fill(ended.uniqueid)
    await board.get_by_role("textbox", name="Text").fill("The operator was rude.")
    await board.get_by_role("button", name="File complaint").click()
    status = board.get_by_role("form", name="Complaint for a call").get_by_role("status")
    await expect(status).to_contain_text("op1")
    number = (await status.inner_text()).split()[1]
    await keep(board, "board-complaint")

    office = await signed_in(browser, ivr, "office")
    assert office.url.endswith("/console/office")
    await office.get_by_role("textbox", name="Number").fill(number)
    await office.get_by_role("button", name="Find").click()
    await expect(office.get_by_role("status", name="Find by number")).to_have_text(
        f"complaint {number}: received")
    card = office.get_by_role("article", name=f"Complaint {number}")
    await expect(card).to_contain_text("Operatorop1")
    await office.get_by_role("button", name="Verify").click()
    await expect(office.get_by_role("status", name="Registry")).to_contain_text("✓")
    await office.get_by_role("button", name="Show", exact=True).click()
    chart = office.get_by_role("img", name=re.compile(r"^Statement \d{4}-\d\d-\d\d – "))
    await expect(chart).to_be_visible()
    assert await chart.locator("rect").count() > 0
    # An incident opened and closed from the office; its downtime per account.
    await office.get_by_role("textbox", name="Area").fill("north")
    await office.get_by_role("textbox", name="Message").fill("Fibre cut.")
    await office.get_by_role("button", name="Open incident").click()
    incidents = office.get_by_role("region", name="Incidents")
    await expect(incidents.get_by_role("listitem")).to_contain_text("north: Fibre cut.")
    assert ivr.app.incidents.covering("north") is not None
    await office.wait_for_timeout(1500)      # a second of downtime
    await office.get_by_role("button", name="Show downtime").click()
    await expect(office.get_by_role("table", name="Downtime")).to_contain_text("100101")
    await keep(office, "office-incident", full_page=True)
    await incidents.get_by_role("button", name=re.compile(r"^Close inc-")).click()
    await expect(incidents.get_by_role("listitem")).to_have_count(0)
    assert ivr.app.incidents.covering("north") is None

    engineer = await signed_in(browser, ivr, "engineer")
    await expect(engineer.get_by_role("heading", name="Engineers' tickets")).to_be_visible()
    await keep(engineer, "tickets")


async def test_the_checks_fail_a_page_that_breaks_their_rules(browser: Watched, tmp_path: Path) -> None:
    """What `keep` runs on every page is real: faint text fails axe (colour contrast, serious)
    and a button taken out of the Tab order fails the Tab walk."""
    page = await (await browser.new_context()).new_page()
    await page.set_content('<html lang="en"><title>Bad</title><main><h1>Bad</h1>'
                           '<p style="color:#aaa; background:#fff">Faint words</p>'
                           '<button type="button">Reached</button>'
                           '<button type="button" tabindex="-1">Never reached</button></main></html>')
    with pytest.raises(AssertionError, match="serious color-contrast"):
        await a11y.axe(page, "a-bad-page", tmp_path)
    with pytest.raises(AssertionError, match=r"Tab never reaches \['button \"Never reached\"'\]"):
        await a11y.tab_through(page, "a-bad-page")


OFFICE_INCIDENT = "inc-0ff1ce01"
UNKNOWN = numbers.issue("ticket", 5)      # a number of the right shape that was never issued


def past_call(pbx: str, day: date, n: int, outcome: str, wait_ms: int, payable: bool = False
              ) -> rec.CallRecord:
    """A first-line call of an earlier `day` (at noon UTC, + n minutes) as the ledger keeps it."""
    t = int(datetime.combine(day, dtime(12), timezone.utc).timestamp() * 1e6) + n * 60_000_000
    member = "op2" if outcome == "answered" else ""
    visit = rec.VisitRecord(1, "first-line", t, t + wait_ms * 1000, outcome, wait_ms, member)
    ended = t + wait_ms * 1000 + 30_000_000
    return rec.CallRecord(pbx, f"office.{day.isoformat()}.{n}", f"office.{day.isoformat()}.{n}",
                          "79102", "100102", "north", t, ended, (visit,),
                          outcome if outcome in ("answered", "abandoned") else "unanswered", payable,
                          rec.LIVE, rec.MS, t + wait_ms * 1000 if member else None,
                          "first-line" if member else "", member)


# A week of the statement, day by day (days before today): payable, answered late, moved to
# common (timeout), abandoned.
WEEK = [(4, 1, 2, 1), (6, 0, 1, 0), (3, 2, 0, 2), (0, 0, 0, 0), (7, 1, 3, 1), (5, 2, 1, 0)]


async def office_data(ivr: WithConsole) -> tuple[date, str, str]:
    """What the office looks at: a call answered live on the lab today, a week of earlier
    calls, an incident in the north that lasted 2 h 5 min (closed 55 min ago), the claim of
    account 100101 for it, and a complaint about today's call that the office forwarded with
    a note.  (The first day of the period, the claim's and the complaint's numbers.)"""
    import aiohttp
    [ended] = ivr.of(JourneyEnded)
    await ivr.app.ledger.flush()
    pbx = ivr.app.config.pbxs[0].name
    today = datetime.now(ZoneInfo(ivr.app.config.report.timezone)).date()
    calls = []
    for back, (paid, late, moved, gone) in enumerate(reversed(WEEK), start=1):
        day, n = today - timedelta(days=back), iter(range(100))
        calls += [past_call(pbx, day, next(n), "answered", 4000, True) for _ in range(paid)]
        calls += [past_call(pbx, day, next(n), "answered", 42_000) for _ in range(late)]
        calls += [past_call(pbx, day, next(n), "timeout", 30_000) for _ in range(moved)]
        calls += [past_call(pbx, day, next(n), "abandoned", 12_000) for _ in range(gone)]
    await ivr.app.store.run(Store.write, calls)
    now_us = int(time.time() * 1e6)
    await ivr.app.store.run(Store.history, "incidents", [{
        "id": OFFICE_INCIDENT, "area": "north", "message": "Fibre cut at the north exchange.",
        "opened_us": now_us - 3 * 3600_000_000, "expires_us": now_us + 3600_000_000,
        "closed_us": now_us - 55 * 60_000_000, "opened_by": "engineer eng1", "closed_by": "engineer eng1"}])

    def auth(role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {TOKENS[role][1]}"}
    since = datetime.fromtimestamp(now_us / 1e6 - 4 * 3600, timezone.utc).isoformat()
    async with aiohttp.ClientSession(base(ivr)) as http:
        async with http.post("/api/v1/claims", headers=auth("operator"), json={
                "account": "100101", "from": since, "to": datetime.now(timezone.utc).isoformat()}) as r:
            claim = await r.json()
            assert r.status == 201 and claim["downtime_seconds"] == 2 * 3600 + 5 * 60, claim
        async with http.post("/api/v1/complaints", headers=auth("supervisor"), json={
                "call": ended.uniqueid, "text": "The operator was rude."}) as r:
            complaint = await r.json()
            assert r.status == 201, complaint
        async with http.post(f"/api/v1/complaints/{complaint['number']}/events", headers=auth("office"),
                             json={"state": "forwarded", "note": "Sent to the contractor."}) as r:
            assert r.status == 200, await r.text()
    return today - timedelta(days=len(WEEK)), claim["number"], complaint["number"]


async def test_the_office_shows_its_statement_downtime_and_a_numbers_card(
        lab: Lab, ivr_console: WithConsole, browser: Watched, phones: list[traffic.Sipp], only_op1: None) -> None:
    """The office in English: the statement of a week as a chart (role img, named with its
    days) and a table, the downtime in hours and minutes with the claim that covers it, and
    a complaint's and a claim's card with their history; wrong numbers said so."""
    from playwright.async_api import expect
    ivr = ivr_console
    phones.append(traffic.agent("op1", ring_ms=1000))
    phones.append(traffic.callers(1, hold_ms=6_000, number_prefix="7910"))
    await eventually(lambda: bool(ivr.of(JourneyEnded)), timeout=30, what="a call answered and over")
    first, claim, complaint = await office_data(ivr)
    today = first + timedelta(days=len(WEEK))
    page = await signed_in(browser, ivr, "office", viewport={"width": 1280, "height": 800})
    await page.get_by_label("From", exact=True).fill(first.isoformat())
    await page.get_by_label("To", exact=True).fill((today + timedelta(days=1)).isoformat())
    await page.get_by_role("button", name="Show", exact=True).click()

    name = (f"Statement {first} – {today}: calls per day, offered, and of them payable, "
            "answered late, moved to common and abandoned")
    chart = page.get_by_role("img", name=name, exact=True)
    await expect(chart).to_be_visible()
    for word in ("Payable", "Answered late", "Moved to common", "Abandoned", "calls",
                 "Offered: the whole column, its number on top"):
        await expect(chart.locator("text", has_text=word).first).to_be_visible()
    # A column a day, a segment for each figure of the day that is not 0 (today: 1 payable).
    await expect(chart.locator("rect title")).to_have_count(
        sum(1 for day in WEEK for v in day if v) + 1)
    await expect(chart.locator("text.value")).to_have_text(
        [str(sum(d)) for d in WEEK if sum(d)] + ["1"])
    figures = page.get_by_role("table", name="Statement per day")
    await expect(figures.get_by_role("columnheader")).to_have_text(
        ["Date", "Offered", "Payable", "Answered late", "Moved to common", "Abandoned", "Other",
         "Payable share"])
    await expect(figures.get_by_role("row").filter(has_text=str(first))).to_have_text(
        re.compile(rf"^{first}\s*8\s*4\s*1\s*2\s*1\s*0\s*50\.0 %$"))
    await expect(figures.get_by_role("row").filter(has_text="Total")).to_have_text(
        re.compile(r"^Total\s*43\s*26\s*6\s*7\s*4\s*0\s*60\.5 %$"))

    downtime = page.get_by_role("table", name="Downtime")
    await expect(page.get_by_role("list", name="Incidents")).to_contain_text(
        f"{OFFICE_INCIDENT} · north · 2 h 5 min: Fibre cut at the north exchange.")
    await expect(downtime.get_by_role("row").filter(has_text="100101")).to_have_text(
        re.compile(rf"^100101\s*north\s*2 h 5 min\s*{OFFICE_INCIDENT}\s*{claim} filed · 2 h 5 min$"))
    await expect(downtime.get_by_role("row").filter(has_text="100102")).to_contain_text("none filed")
    await keep(page, "office", full_page=True)

    # A number: its card, with its history.
    await page.get_by_role("textbox", name="Number").fill(complaint)
    await page.get_by_role("button", name="Find", exact=True).click()
    card = page.get_by_role("article", name=f"Complaint {complaint}")
    await expect(card.locator("dl")).to_contain_text(re.compile(
        r"Stateforwarded.*Filed.*supervisor sup1.*Answer by.*Operatorop1.*Call answered.*"
        r"Caller7910\d.*Account100101.*TextThe operator was rude\."))
    history = card.get_by_role("table", name=f"History: Complaint {complaint}")
    await expect(history.get_by_role("columnheader")).to_have_text(["When", "Who", "What"])
    await expect(history.locator("tbody tr")).to_have_text([
        re.compile(r"supervisor sup1\s*Filed: received$"),
        re.compile(r"office anna\s*State: forwarded · Note: Sent to the contractor\.$")])
    await keep(page, "office-find")
    # The claim, from the downtime table: its card says what it counted.
    await downtime.get_by_role("button", name=f"Find {claim}").click()
    claim_card = page.get_by_role("article", name=f"Claim {claim}")
    await expect(claim_card).to_contain_text("Downtime2 h 5 min")
    await expect(claim_card).to_contain_text(f"{OFFICE_INCIDENT}: Fibre cut at the north exchange.")
    await expect(claim_card).to_contain_text("No change since it was filed.")
    # Wrong numbers: said so, and no card.
    found = page.get_by_role("status", name="Find by number")
    for typed, said in (("12345", "A number is digits only, at least 8 of them"),
                        (complaint[:-1] + str((int(complaint[-1]) + 1) % 10),
                         "That number is mistyped (its check digit is wrong)."),
                        (UNKNOWN, f"There is no such number. ({UNKNOWN})")):
        await page.get_by_role("textbox", name="Number").fill(typed)
        await page.get_by_role("button", name="Find", exact=True).click()
        await expect(found).to_contain_text(said)
        await expect(page.get_by_role("article")).to_have_count(0)


async def test_the_office_in_russian(
        lab: Lab, ivr_console: WithConsole, browser: Watched, phones: list[traffic.Sipp], only_op1: None) -> None:
    """The same office in Russian: the chart's name, the table, the downtime and the card."""
    from playwright.async_api import expect
    ivr = ivr_console
    phones.append(traffic.agent("op1", ring_ms=1000))
    phones.append(traffic.callers(1, hold_ms=6_000, number_prefix="7910"))
    await eventually(lambda: bool(ivr.of(JourneyEnded)), timeout=30, what="a call answered and over")
    first, claim, complaint = await office_data(ivr)
    today = first + timedelta(days=len(WEEK))
    page = await signed_in(browser, ivr, "office", "ru", viewport={"width": 1280, "height": 800})
    await page.get_by_label("С", exact=True).fill(first.isoformat())
    await page.get_by_label("По", exact=True).fill((today + timedelta(days=1)).isoformat())
    await page.get_by_role("button", name="Показать", exact=True).click()
    chart = page.get_by_role("img", name=f"Отчёт за {first} – {today}: звонки по дням, поступившие "
                                         "и из них оплачиваемые, отвеченные поздно, переведённые "
                                         "в общую очередь и брошенные", exact=True)
    await expect(chart).to_be_visible()
    await expect(chart.locator("text", has_text="Переведено в общую")).to_be_visible()
    figures = page.get_by_role("table", name="Отчёт по дням")
    await expect(figures.get_by_role("row").filter(has_text="Итого")).to_have_text(
        re.compile(r"^Итого\s*43\s*26\s*6\s*7\s*4\s*0\s*60\.5 %$"))
    downtime = page.get_by_role("table", name="Простой")
    await expect(downtime.get_by_role("row").filter(has_text="100101")).to_contain_text(
        re.compile(rf"2 ч 5 мин\s*{OFFICE_INCIDENT}\s*{claim} оформлен · 2 ч 5 мин"))
    await expect(downtime.get_by_role("row").filter(has_text="100102")).to_contain_text("не запрошен")
    # Every word is Russian but the data's own (the incident's id and message, the area).
    words = (await page.locator("main").inner_text()).replace("Скачать CSV", "")
    for data in (OFFICE_INCIDENT, "Fibre cut at the north exchange.", "north"):
        words = words.replace(data, "")
    assert re.findall(r"[A-Za-z]+", words) == [], words
    await keep(page, "office-ru", full_page=True)
    await page.get_by_role("textbox", name="Номер").fill(complaint)
    await page.get_by_role("button", name="Найти", exact=True).click()
    card = page.get_by_role("article", name=f"Жалоба {complaint}")
    await expect(card.locator("dl")).to_contain_text(re.compile(
        r"Состояниепередана.*Оформлено.*старший специалист sup1.*Ответить до.*Операторop1"))
    history = card.get_by_role("table", name=f"История: Жалоба {complaint}")
    await expect(history.get_by_role("columnheader")).to_have_text(["Когда", "Кто", "Что"])
    await expect(history.locator("tbody tr").last).to_contain_text(
        "офис anna" + "Состояние: передана · Заметка: Sent to the contractor.")
    await page.get_by_role("textbox", name="Номер").fill(UNKNOWN)
    await page.get_by_role("button", name="Найти", exact=True).click()
    await expect(page.get_by_role("status", name="Найти по номеру")).to_have_text(
        f"Такого номера нет. ({UNKNOWN})")
    await page.get_by_role("textbox", name="Номер").fill("999")
    await page.get_by_role("button", name="Найти", exact=True).click()
    await expect(page.get_by_role("status", name="Найти по номеру")).to_contain_text(
        "Номер состоит только из цифр")
    await keep(page, "office-find-ru")


async def test_a_role_without_access_gets_403(lab: Lab, ivr_console: WithConsole, browser: Watched) -> None:
    from playwright.async_api import expect
    page = await signed_in(browser, ivr_console, "operator")
    response = await page.goto(f"{base(ivr_console)}/console/office")
    assert response is not None and response.status == 403
    await expect(page.get_by_role("alert")).to_contain_text("Your role may not open this page.")
    await keep(page, "forbidden")


async def test_keyboard_only_and_in_russian(lab: Lab, ivr_console: WithConsole, browser: Watched) -> None:
    from playwright.async_api import expect

    from ivr.config.tokens import Actor
    ticket = await ivr_console.app.desk.file_ticket(Actor("operator", "op1"), "100101", None,
                                                    "Нет связи с утра", False)
    page = await (await browser.new_context(locale="ru-RU")).new_page()
    await page.goto(f"{base(ivr_console)}/console")
    await expect(page.get_by_role("button", name="Войти")).to_be_visible()
    await keep(page, "sign-in-ru")
    # Tab to the token, type it, Enter: no mouse.
    await page.keyboard.press("Tab")
    await expect(page.get_by_label("Токен")).to_be_focused()
    await page.keyboard.type(TOKENS["engineer"][1])
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name="Заявки инженеров")).to_be_visible()
    table = page.get_by_role("table", name="Открытые заявки")
    headers = ["Номер", "Лицевой счёт", "Проблема", "Срок", "Состояние", "Действия"]
    await expect(table.get_by_role("columnheader")).to_have_text(headers)
    row = table.get_by_role("row").filter(has_text=ticket.number)
    await expect(row).to_contain_text("открыта")
    # The engineer takes it, by keyboard too: focus the button, Enter.
    await row.get_by_role("button", name=f"{ticket.number} → в работе").focus()
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("status")).to_have_text(f"{ticket.number}: в работе")
    await expect(row).to_contain_text("в работе")
    assert ivr_console.app.desk.find(ticket.number).state == "in_progress"
    # Every word on the page is Russian: the Latin letters left are the header's name
    # of the signed-in engineer and the link to the English pages.
    words = await page.locator("main").inner_text()
    assert re.findall(r"[A-Za-z]+", words) == [], words
    await keep(page, "tickets-ru")

    board = await (await browser.new_context(locale="ru-RU")).new_page()
    await board.goto(f"{base(ivr_console)}/console")
    await board.get_by_label("Токен").fill(TOKENS["supervisor"][1])
    await board.get_by_role("button", name="Войти").click()
    queues = board.get_by_role("region", name="Очереди")
    await expect(queues.get_by_role("columnheader")).to_have_text(
        ["Очередь", "Ожидают", "Дольше всех ждёт", "Операторы", "Сегодня"])
    await expect(queues.get_by_role("row").filter(has_text="common")).to_contain_text("gen1: свободен")
    await expect(board.get_by_role("status", name="Уровень обслуживания")).to_contain_text(
        "first-line, 30 с: сейчас")
    await keep(board, "board-ru")


@pytest.fixture
def nobody_answers(lab: Lab) -> Iterator[None]:
    for op in ("op1", "op2", "op3", "op4"):
        lab.cli(f"queue pause member PJSIP/{op} queue first-line reason console-test")
    yield
    for op in ("op1", "op2", "op3", "op4"):
        lab.cli(f"queue unpause member PJSIP/{op} queue first-line")


async def test_the_board_moves_a_waiting_caller(lab: Lab, ivr_console: WithConsole, browser: Watched,
                                                phones: list[traffic.Sipp], nobody_answers: None) -> None:
    from playwright.async_api import expect
    ivr = ivr_console
    phones += [traffic.agent(g, ring_ms=1000) for g in ("gen1", "gen2")]
    phones.append(traffic.callers(1, hold_ms=25_000, number_prefix="7910"))
    board = await signed_in(browser, ivr, "supervisor")
    move = board.get_by_role("button", name="Move 79101 → common")
    await expect(move).to_be_visible(timeout=15_000)
    await move.click()
    await eventually(lambda: any(f.queue == "common" for f in ivr.of(Entered)),
                     timeout=10, what="the caller moved to common")
    [left] = [f for f in ivr.of(Exited) if f.queue == "first-line"]
    assert left.outcome == "withdrawn"


async def test_the_desk_sends_the_caller_to_a_supervisor(
        lab: Lab, ivr_console: WithConsole, browser: Watched, phones: list[traffic.Sipp], only_op1: None) -> None:
    from playwright.async_api import expect
    ivr = ivr_console
    page = await signed_in(browser, ivr, "operator")
    await expect(page.get_by_role("region", name="Caller")).to_contain_text("Waiting for a call")
    phones.append(traffic.agent("op1", ring_ms=1000))
    phones += [traffic.agent(s, ring_ms=1000) for s in ("sup1", "sup2")]
    phones.append(traffic.callers(1, hold_ms=30_000, number_prefix="7910"))
    await expect(page.get_by_role("region", name="Caller")).to_contain_text("100101", timeout=20_000)
    await page.get_by_role("button", name="To supervisor").click()
    await eventually(lambda: any(f.queue == "supervisors" and f.outcome == "answered"
                                 for f in ivr.of(Exited)), timeout=15,
                     what="a supervisor answered the caller")
    await expect(page.get_by_role("status")).to_contain_text("9001")


async def test_a_desk_reconnects_by_itself_after_its_stream_drops(
        lab: Lab, ivr_console: WithConsole, browser: Watched, phones: list[traffic.Sipp], only_op1: None) -> None:
    from playwright.async_api import expect
    ivr = ivr_console
    page = await signed_in(browser, ivr, "operator")
    await expect(page.get_by_role("region", name="Caller")).to_contain_text("Waiting for a call")
    await eventually(lambda: bool(ivr.console.hub.desks.get("op1")), timeout=5,
                     what="the desk's stream open")
    await ivr.console.close_streams(ivr.web_app)     # as aiohttp's on_shutdown calls it
    await eventually(lambda: not ivr.console.hub.desks.get("op1"), timeout=5,
                     what="the stream dropped")
    await eventually(lambda: bool(ivr.console.hub.desks.get("op1")), timeout=15,
                     what="the page reconnected by itself")
    phones.append(traffic.agent("op1", ring_ms=1000))
    phones.append(traffic.callers(1, hold_ms=20_000, number_prefix="7910"))
    await expect(page.get_by_role("region", name="Caller")).to_contain_text("100101", timeout=20_000)


async def test_a_restart_of_ivr_signs_nobody_out(
        lab: Lab, tmp_path: Path, browser: Watched, phones: list[traffic.Sipp], only_op1: None) -> None:
    """op1's desk stays open while ivr restarts: its stream reconnects to the new ivr with
    the same session (kept in the ledger), and the next call pops on it."""
    from playwright.async_api import expect
    config = console_config(lab, tmp_path)
    ivr, runner = await started(config)
    try:
        page = await signed_in(browser, ivr, "operator")
        await expect(page.get_by_role("region", name="Caller")).to_contain_text("Waiting for a call")
        await eventually(lambda: bool(ivr.console.hub.desks.get("op1")), timeout=5,
                         what="the desk's stream open")
    finally:
        await runner.cleanup()
    ivr, runner = await started(config)
    try:
        await eventually(lambda: bool(ivr.console.hub.desks.get("op1")), timeout=20,
                         what="the desk's stream open on the new ivr")
        assert page.url.endswith("/console/desk/op1")           # not sent back to sign-in
        phones.append(traffic.agent("op1", ring_ms=1000))
        phones.append(traffic.callers(1, hold_ms=20_000, number_prefix="7910"))
        await expect(page.get_by_role("region", name="Caller")).to_contain_text("100101",
                                                                               timeout=20_000)
        await keep(page, "desk-after-restart")
    finally:
        await runner.cleanup()


async def test_make_demo_prints_the_console_and_its_desk_pops_on_the_demos_calls(
        lab: Lab, tmp_path: Path, browser: Watched) -> None:
    """`ivr demo` (what make demo runs), as a person uses it: sign in as sup1 with the
    token the demo printed, and the board shows the demo's first callback in its place;
    sign in as op1, and the demo's calls pop on op1's desk with the caller's account and
    area (the demo's callers are in the lab's directory)."""
    from playwright.async_api import expect
    env = {**os.environ, "IVR_LEDGER_URL": f"sqlite:///{tmp_path / 'ledger.db'}"}
    demo = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).with_name("ivr")), "demo", "--minutes", "0.75",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=env)
    assert demo.stdout is not None
    printed: list[str] = []
    try:
        while not any(line.startswith("    engineer ") for line in printed):
            line = (await asyncio.wait_for(demo.stdout.readline(), 30)).decode()
            assert line, "the demo ended before printing the console:\n" + "".join(printed)
            printed.append(line)
        text = "".join(printed)
        url = re.search(r"the console at (http://\S+/console);", text)
        assert url is not None, text
        tokens = dict(re.findall(r"^    (operator op1|supervisor sup1|office anna|engineer eng1) (\S+)$",
                                 text, re.M))
        assert len(tokens) == 4, text
        board = await (await browser.new_context()).new_page()
        await board.goto(url[1])
        await board.get_by_label("Token").fill(tokens["supervisor sup1"])
        await board.get_by_role("button", name="Sign in").click()
        # The demo's first callback: 79301 pressed 1 in common, its place held on the board.
        callbacks = board.get_by_role("region", name="Callbacks pending")
        await expect(callbacks).to_contain_text(re.compile(r"79301 · common place 1"),
                                                timeout=25_000)
        await expect(board.get_by_role("region", name="Queues")).to_contain_text("↩ callback 79301")
        await keep(board, "demo-board-callback")
        page = await (await browser.new_context()).new_page()
        await page.goto(url[1])
        await page.get_by_label("Token").fill(tokens["operator op1"])
        await page.get_by_role("button", name="Sign in").click()
        card = page.get_by_role("region", name="Caller")
        await expect(card).to_contain_text("Waiting for a call")
        await expect(card).to_contain_text(re.compile(r"Caller: 7901\d+"), timeout=40_000)
        await expect(card).to_contain_text(re.compile(r"Account\s*201\d{3}\s*Area\s*(north|south|center)"))
        await keep(page, "demo-desk")
        rest = (await asyncio.wait_for(demo.stdout.read(), 90)).decode()
        assert await demo.wait() == 0, rest
        assert "The statement for the demo's calls" in rest, rest
    finally:
        if demo.returncode is None:
            demo.terminate()
            await demo.wait()


async def test_wrong_tokens_at_sign_in_are_throttled_in_the_pages_language(
        lab: Lab, ivr_console: WithConsole, browser: Watched) -> None:
    """Ten wrong tokens from one address, then even the right one is refused (429) with
    words in Russian, and nobody is signed in; each failure is counted."""
    from playwright.async_api import expect
    page = await (await browser.new_context(locale="ru-RU")).new_page()
    await page.goto(f"{base(ivr_console)}/console")
    for n in range(10):
        await page.get_by_label("Токен").fill(f"guess-{n:02}-not-a-token-of-anyone")
        await page.get_by_role("button", name="Войти").click()
        await expect(page.get_by_role("alert")).to_contain_text("Этот токен недействителен.")
    await page.get_by_label("Токен").fill(TOKENS["operator"][1])
    async with page.expect_response(lambda r: r.request.method == "POST") as answered:
        await page.get_by_role("button", name="Войти").click()
    response = await answered.value
    assert response.status == 429 and int(response.headers["retry-after"]) > 0
    await expect(page.get_by_role("alert")).to_contain_text(
        "Слишком много неверных токенов отсюда: подождите минуту и повторите.")
    await expect(page.get_by_role("button", name="Войти")).to_be_visible()   # not signed in
    assert ivr_console.console.sessions.active == {}
    failures = ivr_console.app.registry.get_sample_value(
        "ivr_auth_failures_total", {"kind": "console_sign_in"})
    assert failures == 10
    await keep(page, "sign-in-throttled-ru")


# -- the board's figures and the wallboard (issue 23) ----------------------------------

def board_config(lab: Lab, tmp_path: Path) -> cfg.Config:
    """The console's config with first-line's threshold at 10 s: a caller is late well
    before ivr moves them to common at 30 s (overflow_after_seconds)."""
    config = console_config(lab, tmp_path)
    first = config.first_line.name
    return replace(config, queues=tuple(replace(q, sla_seconds=10.0) if q.name == first else q
                                        for q in config.queues))


async def clock_of(page: Page, number: str) -> str:
    return await page.locator(".caller", has_text=number).locator(".clock").inner_text()


async def test_the_board_shows_live_waits_agents_times_and_the_chart_of_the_day(
        lab: Lab, tmp_path: Path, browser: Watched, phones: list[traffic.Sipp],
        nobody_answers: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Callers wait while the board is open: each wait clock moves in the page, the one
    past first-line's threshold is marked late in words, op1's time in its state runs;
    a caller who gave up is in today's figures and in the chart of the day (an image
    named "Service level..." and its table)."""
    from playwright.async_api import expect
    from ivr.console import today
    monkeypatch.setattr(today, "TODAY_SECONDS", 1)    # the ledger read again at once
    ivr, runner = await started(board_config(lab, tmp_path))
    try:
        phones.append(traffic.agent("op1", ring_ms=1000))                      # paused
        phones.append(traffic.callers(1, hold_ms=12_000, number_prefix="7930"))   # gives up
        phones.append(traffic.callers(1, hold_ms=45_000, number_prefix="7910"))
        await asyncio.sleep(4)
        phones.append(traffic.callers(1, hold_ms=45_000, number_prefix="7920"))   # 4 s later
        board = await signed_in(browser, ivr, "supervisor")
        await board.set_viewport_size({"width": 1280, "height": 800})
        queues = board.get_by_role("region", name="Queues")
        first = queues.get_by_role("row").filter(has_text="first-line")
        await expect(first).to_contain_text("79101", timeout=20_000)
        before = await clock_of(board, "79101")
        await board.wait_for_timeout(2_500)
        after = await clock_of(board, "79101")
        assert re.fullmatch(r"\d+:\d\d", before) and after != before, (before, after)
        await expect(first.locator(".caller", has_text="79101")).to_contain_text("⚠ late",
                                                                              timeout=15_000)
        assert "late" not in await first.locator(".caller", has_text="79201").inner_text()
        await expect(first).to_contain_text(re.compile(r"op1: paused \d+:\d\d"))
        await expect(first.locator(".caller", has_text="79101")).to_have_class(re.compile("late"))
        # The caller who gave up, from the ledger: today's figures and the chart.
        await eventually(lambda: bool([f for f in ivr.of(JourneyEnded) if f.outcome == "abandoned"]),
                         timeout=20, what="79301 gave up")
        await ivr.app.ledger.flush()
        await expect(first).to_contain_text("abandoned 1", timeout=10_000)
        chart = board.get_by_role("img", name=re.compile(r"^Service level"))
        await expect(chart).to_be_visible()
        await expect(chart).to_have_accessible_name(re.compile(r"^Service level, first-line, 10 s, "
                                                               r"today: 0 % \(1 offered\), target 80 %"))
        assert await chart.locator("rect").count() == 1 and await chart.locator("circle").count() == 1
        table = board.get_by_role("table", name=re.compile(r"^Service level"))
        await expect(table.get_by_role("columnheader")).to_have_text(
            ["Interval", "Offered", "Answered within 10 s", "Share", "Abandoned"])
        await expect(table.get_by_role("row").nth(1)).to_have_text(re.compile(r"^\d\d:\d\d100 %1$"))
        await keep(board, "board")
    finally:
        await runner.cleanup()


async def test_the_wall_at_1920x1080_recovers_by_itself_after_ivr_restarts(
        lab: Lab, tmp_path: Path, browser: Watched, phones: list[traffic.Sipp],
        nobody_answers: None) -> None:
    """The wall token opens the wallboard (and it has no control); callers waiting show
    with clocks, a late one marked.  ivr stops: the wall says it is reconnecting; ivr
    is back: the wall redraws by itself, still signed in, with the waiting callers."""
    from playwright.async_api import expect
    config = board_config(lab, tmp_path)
    ivr, runner = await started(config)
    try:
        phones.append(traffic.callers(1, hold_ms=80_000, number_prefix="7910"))
        await asyncio.sleep(4)
        phones.append(traffic.callers(1, hold_ms=80_000, number_prefix="7920"))
        page = await signed_in(browser, ivr, "wall")
        await page.set_viewport_size({"width": 1920, "height": 1080})
        assert page.url.endswith("/console/wall")
        first = page.get_by_role("region", name="first-line")
        await expect(first).to_contain_text("79201", timeout=25_000)
        await expect(first.locator(".caller", has_text="79101")).to_contain_text("⚠ late",
                                                                              timeout=15_000)
        await expect(page.get_by_role("img", name=re.compile(r"^Service level"))).to_be_visible()
        await expect(page.get_by_role("status", name="Service level")).to_contain_text("first-line")
        assert await page.locator("button, input, select, textarea, a[href]").count() == 0
        await keep(page, "wall")
    finally:
        await runner.cleanup()
    await expect(page.get_by_role("alert")).to_have_text("Reconnecting to ivr…", timeout=10_000)
    ivr, runner = await started(config)
    try:
        await expect(page.get_by_role("alert")).to_be_hidden(timeout=30_000)
        assert page.url.endswith("/console/wall")                  # not sent back to sign-in
        # Seen again by the new ivr (in first-line, or in common past 30 s).
        await expect(page.locator(".caller", has_text="79101")).to_be_visible()
        before = await clock_of(page, "79101")
        await page.wait_for_timeout(2_000)
        assert await clock_of(page, "79101") != before
        await keep(page, "wall-after-restart")
    finally:
        await runner.cleanup()
