"""The start-up backfill (ivr/reconcile/catchup.py) on the lab's queue_log fixture and a
ledger (SQLite and PostgreSQL) that lacks some of its calls, as after a SIGKILL."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from ivr import config as cfg
from ivr.ami.codec import Message
from ivr.app import build
from ivr.config import AmiConfig, Config, LedgerConfig
from ivr.calls.facts import JourneyEnded
from ivr.reconcile import catchup
from ivr.reconcile.backfill import backfill
from ivr.reconcile.compare import reconcile
from ivr.reconcile.read import read_file, read_lines
from ivr.reconcile.catchup import Source, StartupBackfill
from ivr.calls.records import CallRecord
from ivr.ledger.store import Store
from ivr.http.app import make_web
from tests.helpers import free_port

LAB = Path(__file__).parent.parent / "fixtures" / "queue_log" / "lab.queue_log"
OVERFLOW = {"first-line": 30}
US = 1_000_000
END = 1796117680          # the fixture's last row
PBX = "default"
# The calls the ledger has, as ivr wrote them live before it was killed: the newest
# ended at ...629, so the gap starts at ...624 (a margin of 5 s here).  ...580.3's
# last row is older (...589) but the ledger lacks it: going on at the kill.
LIVE = ("1796117579.0", "1796117579.1", "1796117580.2", "1796117589.8")
GAP = ("1796117580.3", "1796117590.9", "1796117630.16", "1796117631.17", "1796117631.18",
       "1796117640.22")


def truth(text: str | None = None) -> dict[str, CallRecord]:
    """Every call of the fixture as a backfill builds it, by uniqueid."""
    log = read_lines((text or LAB.read_text()).splitlines(), OVERFLOW)
    result = reconcile(log, [], 0, 2**40, OVERFLOW, PBX)
    return {c.uniqueid: c for c in backfill(result, log, [], PBX).calls}


def live(record: CallRecord) -> CallRecord:
    return replace(record, source="live", precision="ms")


def start(store: Store, source: Path | Source = LAB, going: set[str] | None = None,
          now: float = END + 5, lookback_s: int = catchup.LOOKBACK_S) -> StartupBackfill:
    """A start-up backfill; `going` is what the PBX says is in progress (a test changes it)."""
    async def in_progress() -> set[str]:
        return set(going) if going is not None else set()
    return StartupBackfill(store, source if isinstance(source, Source) else Source(file=source),
                           PBX, in_progress, OVERFLOW, clock=lambda: now, interval=0.01,
                           margin_s=5, lookback_s=lookback_s)


async def stored(store: Store) -> dict[str, CallRecord]:
    calls = await store.calls(0, 2**62)
    assert len({c.uniqueid for c in calls}) == len(calls)
    return {c.uniqueid: c for c in calls}


async def test_the_gap_is_written_once_and_a_second_start_writes_nothing(
        store: Store, caplog: pytest.LogCaptureFixture) -> None:
    every = truth()
    await store.write([live(every[uid]) for uid in LIVE])
    caplog.set_level(logging.INFO, "ivr.reconcile.catchup")
    first = start(store)
    assert await first.step() is False                   # nothing in progress: done
    have = await stored(store)
    assert set(have) == set(LIVE) | set(GAP)
    for uid in GAP:
        assert have[uid].source == "queue_log" and have[uid].visits == every[uid].visits
    assert first.to_json() == {
        "state": "done", "pbx": PBX, "from": "2026-12-01T09:33:44Z", "to": "2026-12-01T09:34:45Z",
        "stints": 9, "calls": 6, "written": 7, "in_progress": 0, "unended": 0, "error": None}
    line = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO][-1]
    assert "2026-12-01T09:33:44Z .. 2026-12-01T09:34:45Z" in line
    assert "9 stint(s) read, 6 call(s) and 7 visit(s) written" in line
    second = start(store, now=END + 60)
    assert await second.step() is False
    assert (second.calls, second.written) == (0, 0) and await stored(store) == have
    # A manual reconcile of the same span finds nothing missing in the ledger.
    log = read_file(LAB, OVERFLOW)
    after = reconcile(log, list(have.values()), END - 60, END + 1, OVERFLOW, PBX)
    assert after.missing_in_ledger == ()


async def test_a_call_in_progress_is_left_until_it_ends_then_written(store: Store) -> None:
    every = truth()
    await store.write([live(every[uid]) for uid in LIVE])
    talking = "1796117640.22"                            # its channel is still up
    going = {talking}
    b = start(store, going=going)
    assert await b.step() is True                        # another pass is needed
    assert talking not in await stored(store)
    assert b.to_json()["state"] == "catching_up" and b.to_json()["in_progress"] == 1
    going.clear()
    assert await b.step() is False                       # hung up: now it is written
    assert (await stored(store))[talking].visits == every[talking].visits
    assert (b.state, b.calls, b.written) == ("done", 6, 7)


# A caller waiting in first-line when Asterisk was restarted: queue_log never ends it.
GHOST = "1796117650.30"
GHOST_ROWS = f"1796117652|{GHOST}|first-line|NONE|ENTERQUEUE||79402|1\n"


async def test_a_stay_queue_log_never_ended_does_not_hold_the_backfill(
        store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    every = truth()
    await store.write([live(every[uid]) for uid in LIVE])
    path = tmp_path / "queue_log"
    path.write_text(LAB.read_text() + GHOST_ROWS)
    caplog.set_level(logging.INFO, "ivr.reconcile.catchup")
    b = start(store, path)
    assert await b.step() is False                       # not waited for: done at once
    have = await stored(store)
    assert GHOST not in have and set(have) == set(LIVE) | set(GAP)
    assert b.to_json()["state"] == "done" and b.to_json()["unended"] == 1
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1 and f"call {GHOST}: queue_log never ended its stay in " \
        "first-line (entered 2026-12-01T09:34:12Z)" in warned[0], warned


async def test_a_stay_that_ends_as_the_pbx_is_asked_is_written_not_called_unended(
        store: Store, tmp_path: Path) -> None:
    """The race step 6 reads queue_log again for: the caller hangs up after the first
    read and before the PBX is asked, so its end row is there by the second read."""
    every = truth()
    await store.write([live(every[uid]) for uid in LIVE])
    path = tmp_path / "queue_log"
    path.write_text(LAB.read_text() + GHOST_ROWS)

    async def in_progress() -> set[str]:
        if f"{GHOST}|first-line|NONE|ABANDON" not in path.read_text():
            with path.open("a") as f:
                f.write(f"1796117660|{GHOST}|first-line|NONE|ABANDON|1|1|8\n")
        return set()
    b = StartupBackfill(store, Source(file=path), PBX, in_progress, OVERFLOW,
                        clock=lambda: END + 5, margin_s=5)
    assert await b.step() is False
    ghost = (await stored(store))[GHOST]
    assert [(v.queue, v.outcome) for v in ghost.visits] == [("first-line", "abandoned")]
    assert b.to_json()["unended"] == 0


async def test_a_waiting_caller_with_a_channel_up_is_still_waited_for(
        store: Store, tmp_path: Path) -> None:
    every = truth()
    await store.write([live(every[uid]) for uid in LIVE])
    path = tmp_path / "queue_log"
    path.write_text(LAB.read_text() + GHOST_ROWS)
    b = start(store, path, going={GHOST})
    assert await b.step() is True
    assert b.to_json()["in_progress"] == 1 and b.to_json()["unended"] == 0


async def test_a_call_that_left_its_queues_long_before_the_gap_is_not_of_it(store: Store) -> None:
    every = truth()
    await store.write([live(every[uid]) for uid in LIVE])
    b = start(store, lookback_s=30)                      # ...580.3's last row: 35 s before
    assert await b.step() is False
    assert set(await stored(store)) == set(LIVE) | set(GAP) - {"1796117580.3"}


async def test_a_call_ivr_ended_live_gets_only_its_missed_stints_never_a_second_row(
        store: Store) -> None:
    every = truth()
    await store.write([live(every[uid]) for uid in LIVE])
    moved = "1796117590.9"            # first-line while ivr was down, common after the restart
    b = start(store)
    ended_live = live(every[moved])
    ended_live = replace(ended_live, visits=ended_live.visits[1:])   # ivr saw only common
    b.on_fact(JourneyEnded(moved, "answered", ended_live))
    assert await b.step() is True                        # its live record is on its way
    assert moved not in await stored(store)
    await store.write([ended_live])                      # the writer's batch lands
    assert await b.step() is False
    record = (await stored(store))[moved]
    assert record.source == "live"
    assert sorted((v.queue, v.outcome) for v in record.visits) == [
        ("common", "answered"), ("first-line", "timeout")]


@pytest.mark.parametrize("content", [None, b"\x00\xff\xfe garbage \x89PNG\r\n\x1a\n" * 50,
                                     b"1796117600|a|first-line\n" + b"|" * 9000])
async def test_a_queue_log_that_cannot_be_read_is_a_warning_and_changes_nothing(
        store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture,
        content: bytes | None) -> None:
    await store.write([live(truth()[uid]) for uid in LIVE])
    path = tmp_path / "queue_log"
    if content is not None:
        path.write_bytes(content)
    before = await stored(store)
    b = start(store, path)
    assert await b.step() is False
    assert await stored(store) == before
    assert b.calls == b.written == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings, "a queue_log that says nothing must be said"
    if content is None:
        assert b.to_json()["state"] == "failed" and "cannot read queue_log" in b.error
        assert "cannot read queue_log" in warnings[0]


async def test_an_empty_ledger_has_no_gap(store: Store) -> None:
    b = start(store)
    assert await b.step() is False
    assert b.state == "skipped" and await stored(store) == {}


async def test_run_waits_for_the_pbx_then_passes_until_nothing_is_in_progress(
        store: Store) -> None:
    every = truth()
    await store.write([live(every[uid]) for uid in LIVE])
    # Each pass asks twice: a look before it, and the answer after queue_log is read.
    answers: list[set[str] | None] = [None, None, set(), {"1796117640.22"}, set(), set()]

    async def in_progress() -> set[str]:
        answer = answers.pop(0)
        if answer is None:
            raise catchup.NotYet
        return answer
    b = StartupBackfill(store, Source(file=LAB), PBX, in_progress, OVERFLOW,
                        clock=lambda: END + 5, interval=0.01, margin_s=5, wait=0.01)
    await asyncio.wait_for(b.run(), 10)
    assert answers == [] and b.state == "done" and set(await stored(store)) >= set(GAP)


async def test_readyz_says_off_without_a_source_and_waiting_for_the_pbx(
        tmp_path: Path) -> None:
    ledger = LedgerConfig(url=f"sqlite:///{tmp_path / 'ledger.db'}")
    ami = AmiConfig(port=free_port(), username="ivr")
    for config, state in ((Config(ami=ami, ledger=ledger), "off"),
                          (Config(ami=ami, ledger=replace(ledger, queue_log=str(tmp_path / "no"))),
                           "waiting")):
        app = build(config)
        async with TestClient(TestServer(make_web(app))) as client:
            body: dict[str, Any] = await (await client.get("/readyz")).json()
            assert body["backfill"]["state"] == state


@pytest.mark.parametrize("body, message", [
    ('queue_log = "/q"\nqueue_log_db = "postgresql://a@b/c"\n', "give one queue_log source"),
    ('queue_log_db = "mysql://a:secret@b/c"\n', "ledger.queue_log_db: expected postgresql://"),
    ('queue_log_db = "b/c"\n', "ledger.queue_log_db: expected postgresql://"),
    ('queue_log_db = "postgresql://a@b/c"\nqueue_log_table = "x; DROP TABLE calls"\n',
     "ledger.queue_log_table: expected a plain table name"),
    ('queue_log = "/q"\nqueue_log_pbx = "paris"\n', "ledger.queue_log_pbx: 'paris' is not a PBX"),
    ('queue_log = 5\n', "ledger.queue_log: expected str"),
])
def test_a_bad_queue_log_source_is_one_line(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "ivr.toml"
    path.write_text("[ledger]\n" + body)
    with pytest.raises(cfg.ConfigError) as err:
        cfg.load(path, {})
    assert message in str(err.value) and "\n" not in str(err.value)
    assert "secret" not in str(err.value)


def test_the_queue_log_source_from_the_file_and_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "ivr.toml"
    path.write_text('[ledger]\nqueue_log = "/var/log/asterisk/queue_log"\n')
    assert catchup.source_of(cfg.load(path, {})) == Source(file=Path("/var/log/asterisk/queue_log"))
    path.write_text('[ledger]\nqueue_log_table = "ql"\n')
    env = {"IVR_LEDGER_QUEUE_LOG_DB": "postgresql://asterisk:pw@db/asterisk"}
    assert catchup.source_of(cfg.load(path, env)) == Source(db=env["IVR_LEDGER_QUEUE_LOG_DB"],
                                                             table="ql")
    assert catchup.source_of(cfg.load(None, {})) is None


async def test_the_realtime_table_is_read_as_the_file_is(store: Store, tmp_path: Path) -> None:
    every = truth()
    await store.write([live(every[uid]) for uid in LIVE])
    url = f"sqlite:///{tmp_path / 'asterisk.db'}"
    with sqlite3.connect(tmp_path / "asterisk.db") as conn:
        conn.execute("CREATE TABLE queue_log (time TEXT, callid TEXT, queuename TEXT, agent TEXT, "
                     "event TEXT, data1 TEXT, data2 TEXT, data3 TEXT, data4 TEXT, data5 TEXT)")
        for line in LAB.read_text().splitlines():
            fields = line.split("|")
            conn.execute("INSERT INTO queue_log VALUES (?,?,?,?,?,?,?,?,?,?)",
                         (fields + [""] * 10)[:10])
    b = start(store, Source(db=url, table="queue_log"))
    assert await b.step() is False
    assert (b.state, b.calls, b.written) == ("done", 6, 7)
    missing = start(store, Source(db=url, table="no_such_table"), now=END + 60)
    assert await missing.step() is False
    assert missing.state == "failed" and "no_such_table" in missing.error


class Broken(Store):
    async def run(self, query: Any, /, *args: Any, **kwargs: Any) -> Any:
        if query is Store.newest_us:
            raise RuntimeError("a bug")
        return await super().run(query, *args, **kwargs)


async def test_a_bug_fails_the_backfill_not_ivr(tmp_path: Path) -> None:
    b = start(Broken(f"sqlite:///{tmp_path / 'ledger.db'}"))
    assert await b.step() is False
    assert b.state == "failed" and "RuntimeError: a bug" in b.error


async def test_calls_ended_live_are_held_only_while_the_backfill_lasts(store: Store) -> None:
    every = truth()
    await store.write([live(every[uid]) for uid in LIVE])
    b = start(store)
    b.on_fact(JourneyEnded("1.1", "answered", live(every[LIVE[0]])))
    assert await b.step() is False
    b.on_fact(JourneyEnded("1.2", "answered", live(every[LIVE[1]])))
    assert b._ended_live == set()


async def test_not_yet_from_the_pbx_changes_nothing(store: Store) -> None:
    await store.write([live(truth()[uid]) for uid in LIVE])

    async def not_yet() -> set[str]:
        raise catchup.NotYet
    b = StartupBackfill(store, Source(file=LAB), PBX, not_yet, OVERFLOW, clock=lambda: END + 5)
    with pytest.raises(catchup.NotYet):
        await b.step()
    assert (b.state, b.from_s, b.calls) == ("waiting", None, 0)
    assert set(await stored(store)) == set(LIVE)


async def test_the_app_asks_the_pbx_once_resynced_and_the_spool_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = Config(ami=AmiConfig(port=free_port(), username="ivr"),
                    ledger=LedgerConfig(url=f"sqlite:///{tmp_path / 'ledger.db'}",
                                        queue_log=str(LAB)))
    app = build(config)
    b = catchup.for_app(app)
    assert b is not None and b.on_fact in app.listeners
    pbx = app.first

    async def channels(name: str) -> list[Message]:
        assert name == "CoreShowChannels"
        return [Message((("Event", "CoreShowChannel"), ("Uniqueid", "1796117640.22"))),
                Message((("Event", "CoreShowChannelsComplete"),))]
    monkeypatch.setattr(pbx.ami, "action_list", channels)
    with pytest.raises(catchup.NotYet):
        await b.in_progress()                            # not resynced yet
    pbx.ready = True
    app.ledger.spool.append([live(truth()[LIVE[0]])])
    with pytest.raises(catchup.NotYet):
        await b.in_progress()                            # the last ivr's records first
    app.ledger.spool.drop(len(app.ledger.spool.head(10)))
    assert await b.in_progress() == {"1796117640.22"}
