"""`ivr run` and `ivr replay` take one path from an AMI message to the ledger.

Each recording of the lab's queue shapes (tests/fixtures/shapes/*.ami: the
whole AMI session ivr had, login and snapshot included, with every chunk's
arrival time) goes twice into a SQLite ledger of its own:

- as the service: build(config)'s Services and its Pbx, events handed to
  Pbx.on_event as AmiClient dispatches them, Pbx.resync answered with the
  recorded QueueStatus and CoreShowChannels, the container's clock at the
  recording's arrival times; its facts reach the ledger through Services.apply
  and the LedgerWriter, with the metrics, the router and the repeats.
- as `ivr replay` (pbx/replay.py, replay_files with the tracker `ivr replay`
  makes with its defaults, which agree with the service's default queues);
  its facts go to the same LedgerWriter of a second Services.

Both must give the same facts and the same ledger, byte for byte: every row of
every table, serialized as JSON.  This holds because both run
pbx/session.Session: if replay ran a copy of the service's steps that drifted
(an event it skips or keeps differently, a `now` other than the arrival
time, a snapshot timed otherwise, a Timestamp read or ignored differently)
some fact would change, and with it a call's outcome, time or wait in the
ledger.  test_a_drifting_copy_is_caught shows this comparison catches such a
drift: a replay whose session ignores Asterisk's Timestamp (timing every
event by its arrival, as a careless copy might) writes a different ledger.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import socket
import sqlite3
from pathlib import Path
from typing import Any, Iterator, cast

import pytest

from ivr.ami import events
from ivr.ami.client import AmiClient
from ivr.ami.codec import Codec, Message
from ivr.ami.recording import SENT, read_records
from ivr.app import Services, build
from ivr.calls.facts import Fact
from ivr.calls.judge import DEFAULT_THRESHOLD_MS, FIRST_LINE
from ivr.calls.tracker import Tracker
from ivr.config import AmiConfig, Config, LedgerConfig
from ivr.pbx.replay import Replay, replay_files
from ivr.pbx.session import Pbx, Session

SHAPES = sorted((Path(__file__).parents[1] / "fixtures" / "shapes").glob("*.ami"))
LISTS = ("queuestatus", "coreshowchannels")
BANNER = b"Asterisk Call Manager/"


@pytest.fixture
def port() -> Iterator[int]:
    """A port nobody answers on: the apps' own AMI clients are never started."""
    with socket.socket() as refusing:
        refusing.bind(("127.0.0.1", 0))
        yield refusing.getsockname()[1]


def make_app(tmp_path: Path, name: str, port: int, now: list[float]) -> Services:
    ledger = LedgerConfig(url=f"sqlite:///{tmp_path / name}.db")
    return build(Config(ami=AmiConfig(port=port, server_filter=False), ledger=ledger),
                 clock=lambda: now[0])


class RecordedAmi:
    """AmiClient's side of Pbx.resync: each list action is answered with the
    recording's reply to it, when that reply has come."""

    def __init__(self) -> None:
        self.asked: dict[str, asyncio.Future[list[Message]]] = {}

    async def action_list(self, name: str, fields: Any = None) -> list[Message]:
        future: asyncio.Future[list[Message]] = asyncio.get_running_loop().create_future()
        self.asked[name.lower()] = future
        return await future

    async def action(self, name: str, fields: Any = None, timeout: float | None = None) -> Message:
        """The read-class probe after a resync (a Setvar): Asterisk says Success."""
        return Message((("Response", "Success"),))


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


class Service:
    """The recording played to the service's Pbx, as AmiClient would route it."""

    def __init__(self, pbx: Pbx, now: list[float]) -> None:
        self.pbx, self.now, self.ami = pbx, now, RecordedAmi()
        self.lists: dict[str, str] = {}             # ActionID -> list action
        self.items: dict[str, list[Message]] = {}
        self.resyncs: list[asyncio.Task[None]] = []
        self.sent, self.codec = Codec(), Codec(keep=events.wanted)

    async def play(self, path: Path) -> None:
        for direction, at, data in read_records(path):
            assert at is not None
            self.now[0] = at
            if direction == SENT:
                await self.asked(data)
            else:
                await self.received(data)
        await asyncio.gather(*self.resyncs)

    async def asked(self, data: bytes) -> None:
        self.sent.receive_data(data)
        while (item := self.sent.next_event()) is not None:
            action = (item.get("Action") or "").lower() if isinstance(item, Message) else ""
            if isinstance(item, Message) and action in LISTS:
                self.lists[item["ActionID"]] = action
            if action == "queuestatus":     # the login's resync asks now
                self.resyncs.append(asyncio.create_task(self.pbx.resync(cast(AmiClient, self.ami))))
                await settle()

    async def received(self, data: bytes) -> None:
        if data.startswith(BANNER):         # a new connection, a new codec
            self.codec = Codec(keep=events.wanted)
        self.codec.receive_data(data)
        while (item := self.codec.next_event()) is not None:
            if isinstance(item, Message) and item.response is None:
                await self.route(item)

    async def route(self, msg: Message) -> None:
        action = self.lists.get(msg.action_id or "")
        if action is None:
            if msg.event not in (None, "FullyBooted"):
                self.pbx.on_event(msg)
        elif (msg.get("EventList") or "").lower() == "complete":
            self.ami.asked.pop(action).set_result(self.items.pop(action, []))
            await settle()
        else:
            self.items.setdefault(action, []).append(msg)


def replay_tracker() -> Tracker:
    """As `ivr replay` makes it with its defaults (cli/replay.py)."""
    return Tracker({FIRST_LINE: DEFAULT_THRESHOLD_MS}, first_line=FIRST_LINE)


async def to_ledger(app: Services, facts: list[Fact]) -> str:
    for fact in facts:
        app.ledger.on_fact(fact)
    return await dump(app)


async def dump(app: Services) -> str:
    """Every row of every table of the app's SQLite ledger, as JSON."""
    assert await app.ledger.flush()
    await app.store.close()
    path = app.config.ledger.url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        tables = [t for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                           "ORDER BY name")]
        rows = {t: sorted(db.execute(f'SELECT * FROM "{t}"').fetchall(), key=repr) for t in tables}
    return json.dumps(rows, default=repr)


def as_json(facts: list[Fact]) -> list[str]:
    return [json.dumps([type(f).__name__, dataclasses.asdict(f)], default=repr) for f in facts]


async def as_service(tmp_path: Path, port: int, path: Path) -> tuple[list[Fact], str]:
    now = [0.0]
    app = make_app(tmp_path, "service", port, now)
    facts: list[Fact] = []
    app.listeners.append(facts.append)
    try:
        await Service(app.first, now).play(path)
        assert app.first.ready          # resynced after its login, as live
    finally:
        app.first.router.close()
    return facts, await dump(app)


@pytest.mark.parametrize("path", SHAPES, ids=lambda p: p.stem)
async def test_a_recording_gives_the_same_ledger_run_and_replayed(
        tmp_path: Path, port: int, path: Path) -> None:
    facts, ledger = await as_service(tmp_path, port, path)
    replay = replay_files([path], replay_tracker())
    assert as_json(replay.facts) == as_json(facts)
    assert '"calls": [[' in ledger and '"visits": [[' in ledger     # something to compare
    replayed = await to_ledger(make_app(tmp_path, "replay", port, [0.0]), replay.facts)
    assert replayed == ledger


class _Careless(Session):
    """A copy of the path that times every event by its arrival."""

    def on_message(self, msg: Message, now: float) -> None:
        super().on_message(Message([h for h in msg.headers if h[0] != "Timestamp"]), now)


async def test_a_drifting_copy_is_caught(tmp_path: Path, port: int) -> None:
    path = next(p for p in SHAPES if "operators_answer_after_3s" in p.stem)
    _, ledger = await as_service(tmp_path, port, path)
    careless = Replay(replay_tracker())
    careless.session = _Careless(careless.tracker, careless.apply, name=careless.tracker.pbx)
    for direction, at, data in read_records(path):
        (careless.sent if direction == SENT else careless.receive)(data, at)
    careless.close()
    replayed = await to_ledger(make_app(tmp_path, "replay", port, [0.0]), careless.facts)
    assert replayed != ledger
