"""The ledger writer: batches off the hot path, a spool on disk while the
database is away, nothing lost and nothing doubled when it comes back.
The database here is a real SQLite file; its outage is a store that raises."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, Callable, Concatenate, Coroutine, Mapping, ParamSpec, Sequence, TypeVar, cast

import pytest

from ivr.calls.facts import Fact, JourneyEnded
from ivr.calls import records as rec
from ivr.ledger.store import Store
from ivr.ledger.writer import History, LedgerWriter, Spool


def call(n: int) -> rec.CallRecord:
    t = 1_796_000_000_000_000 + n * 1_000_000
    visit = rec.VisitRecord(1, "first-line", t, t + 3_000_000, "answered", 3000, "op1")
    return rec.CallRecord("default", f"1796000000.{n}", f"1796000000.{n}", f"79{n:03}", "", "",
                          t, t + 9_000_000, (visit,), "answered", True, rec.LIVE, rec.MS,
                          t + 3_000_000, "first-line", "op1")


P = ParamSpec("P")
T = TypeVar("T")


class Behind:
    """The real store behind the writer's Ledger interface; the writer's two queries
    (Store.migrate, Store.write) go through `migrate` and `write`, which fakes override."""

    def __init__(self, store: Store) -> None:
        self.store, self.url, self.first_line = store, store.url, store.first_line

    async def migrate(self) -> str:
        return await self.store.migrate()

    async def write(self, records: Sequence[rec.CallRecord],
                    history: Mapping[str, Sequence[dict[str, Any]]] | None = None) -> int:
        return await self.store.write(records, history)

    async def run(self, query: Callable[Concatenate[Store, P], Coroutine[Any, Any, T]], /,
                  *args: P.args, **kwargs: P.kwargs) -> T:
        if query is Store.migrate:
            return cast(T, await self.migrate())
        if query is Store.write:
            return cast(T, await cast(Any, self.write)(*args, **kwargs))
        return await query(self.store, *args, **kwargs)

    async def close(self) -> None:
        await self.store.close()


class Flaky(Behind):
    """The real store, or an outage: `down` makes every call raise as a dead server would."""

    def __init__(self, store: Store) -> None:
        super().__init__(store)
        self.down, self.writes = False, 0

    def _check(self) -> None:
        if self.down:
            raise ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 5432)")

    async def migrate(self) -> str:
        self._check()
        return await self.store.migrate()

    async def write(self, records: Sequence[rec.CallRecord],
                    history: Mapping[str, Sequence[dict[str, Any]]] | None = None) -> int:
        self._check()
        self.writes += 1
        return await self.store.write(records, history)


@pytest.fixture
async def store(tmp_path: Path) -> Any:
    s = Store(f"sqlite:///{tmp_path / 'ledger.db'}")
    yield s
    await s.close()


def ended(n: int) -> JourneyEnded:
    r = call(n)
    return JourneyEnded(r.uniqueid, r.outcome, r)


async def test_records_are_batched_into_one_write(store: Store, tmp_path: Path) -> None:
    db = Flaky(store)
    writer = LedgerWriter(db, Spool(tmp_path / "spool.jsonl", 100))
    for n in range(50):
        writer.on_fact(ended(n))
    assert writer.backlog == 50 and db.writes == 0     # nothing touched the database yet
    assert await writer.flush()
    assert db.writes == 1 and writer.backlog == 0 and writer.written == 50
    assert len(await store.calls(0, 2**62)) == 50


async def test_an_outage_spools_to_disk_and_the_return_writes_everything_once(
        store: Store, tmp_path: Path) -> None:
    db = Flaky(store)
    spool = Spool(tmp_path / "spool.jsonl", 1000)
    writer = LedgerWriter(db, spool, batch=7)     # the spool drains in several batches
    writer.submit(call(0))
    assert await writer.flush()
    db.down = True
    for n in range(1, 40):
        writer.submit(call(n))
    writer.submit(History("escalations", {"pbx": "default", "uniqueid": "1796000000.3",
                                          "at_us": 1, "via": "api", "result": "accepted",
                                          "incident": ""}))
    assert not await writer.flush()
    assert writer.write_errors == 1 and "ConnectionRefusedError" in writer.last_error
    assert not writer.healthy
    assert spool.count == 40 and writer.pending == [] and writer.backlog == 40
    header, *lines = (tmp_path / "spool.jsonl").read_text().splitlines()
    assert json.loads(header) == {"ivr_spool": 1}     # ivr's own file
    assert len(lines) == 40 and json.loads(lines[0])["call"]["uniqueid"] == "1796000000.1"
    # The call written before the outage is spooled again by a retry that half worked:
    spool.append([call(0)])
    for n in range(40, 60):
        writer.submit(call(n))
    db.down = False
    assert await writer.flush()
    assert writer.healthy and writer.backlog == 0 and spool.count == 0
    assert not (tmp_path / "spool.jsonl").exists()
    ledger = await store.calls(0, 2**62)
    assert [c.uniqueid for c in ledger] == [f"1796000000.{n}" for n in range(60)]


async def test_a_spool_left_by_a_crash_is_written_first_on_start(store: Store, tmp_path: Path) -> None:
    Spool(tmp_path / "spool.jsonl", 100).append([call(1), call(2)])
    writer = LedgerWriter(Flaky(store), Spool(tmp_path / "spool.jsonl", 100))
    assert writer.backlog == 2
    assert await writer.flush()
    assert [c.uniqueid for c in await store.calls(0, 2**62)] == ["1796000000.1", "1796000000.2"]


async def test_a_full_spool_drops_and_counts(store: Store, tmp_path: Path) -> None:
    db = Flaky(store)
    db.down = True
    writer = LedgerWriter(db, Spool(tmp_path / "spool.jsonl", 5))
    for n in range(8):
        writer.submit(call(n))
    assert not await writer.flush()
    assert writer.spool.count == 5 and writer.dropped == 3


async def test_close_writes_or_spools_what_is_pending(store: Store, tmp_path: Path) -> None:
    db = Flaky(store)
    db.down = True
    writer = LedgerWriter(db, Spool(tmp_path / "spool.jsonl", 100))
    writer.submit(call(1))
    await writer.close()
    assert writer.spool.count == 1 and writer.pending == []


class Hung(Flaky):
    """A database that takes a write and never answers."""

    async def write(self, records: Sequence[rec.CallRecord],
                    history: Mapping[str, Sequence[dict[str, Any]]] | None = None) -> int:
        self.writes += 1
        await asyncio.Event().wait()
        return 0


async def test_a_forced_exit_spills_what_a_hung_write_holds(store: Store, tmp_path: Path) -> None:
    """SIGTERM whose cleanup hangs (service.serve): the writer's records reach the spool,
    and the next start writes each once."""
    db = Hung(store)
    writer = LedgerWriter(db, Spool(tmp_path / "spool.jsonl", 100))
    writer.submit(call(1))
    writer.submit(call(2))
    flushing = asyncio.create_task(writer.flush())
    while not db.writes:               # the write has the batch and hangs
        await asyncio.sleep(0.01)
    writer.spill()
    assert writer.pending == [] and writer.spool.count == 2
    flushing.cancel()
    again = LedgerWriter(store, Spool(tmp_path / "spool.jsonl", 100))
    assert await again.flush()
    assert sorted(c.uniqueid for c in await store.calls(0, 2**62)) == [call(1).uniqueid,
                                                                        call(2).uniqueid]
    assert again.spool.count == 0


def test_one_broken_consumer_does_not_stop_the_others(tmp_path: Path) -> None:
    from ivr.app import build
    from ivr.config import Config, LedgerConfig
    app = build(Config(ledger=LedgerConfig(url=f"sqlite:///{tmp_path / 'l.db'}",
                                           spool=str(tmp_path / "spool.jsonl"))))
    seen: list[Fact] = []

    def broken(fact: Fact) -> None:
        raise RuntimeError("a bug in one consumer")
    app.first.consumers.insert(0, broken)       # ahead of metrics, router and ledger
    app.listeners.append(seen.append)
    app.apply([ended(1)], app.first)
    assert seen == [ended(1)]
    assert app.ledger.backlog == 1
    assert app.registry.get_sample_value("ivr_journeys_total",
                                         {"pbx": "default", "outcome": "answered"}) == 1
    assert app.registry.get_sample_value("ivr_ledger_backlog_records", {}) == 1


async def test_incidents_are_kept_in_the_ledger_and_come_back_after_a_restart(tmp_path: Path) -> None:
    from ivr.app import build
    from ivr.config import Config, LedgerConfig, RoutingConfig
    from ivr.routing.incidents import Incidents
    now = [1_796_000_000.0]
    file = tmp_path / "incidents.json"
    Incidents(lambda: now[0], file).open("north", "A fibre cut in the north.", 3600)
    config = Config(ledger=LedgerConfig(url=f"sqlite:///{tmp_path / 'l.db'}"),
                    routing=RoutingConfig(incidents_file=str(file)))
    first = build(config, clock=lambda: now[0])
    await first.routing.restore_incidents()           # the file's incident goes into the ledger
    south = await first.routing.open_incident("south", "Power works in the south.", 600)
    gone = await first.routing.open_incident("east", "Fixed soon.", 600)
    first.routing.close_incident(gone.id)
    assert await first.ledger.flush()
    await first.store.close()
    file.unlink()                                     # migrated: the file is no longer needed
    now[0] += 60
    second = build(replace_routing(config), clock=lambda: now[0])
    assert second.incidents.active() == []
    await second.routing.restore_incidents()
    assert sorted(i.area for i in second.incidents.active()) == ["north", "south"]
    rows = await second.store.run(Store.open_incidents, 0)
    assert {r.opened_by for r in rows} == {"incidents_file", "api"}
    await second.store.close()


def replace_routing(config: Any) -> Any:
    from dataclasses import replace
    from ivr.config import RoutingConfig
    return replace(config, routing=RoutingConfig())


async def test_a_batch_is_written_whole_or_not_at_all(store: Store) -> None:
    """Calls and history rows share one transaction: a retry doubles no history row."""
    await store.migrate()
    bad: dict[str, list[dict[str, object]]] = {
        "escalations": [{"pbx": "default", "uniqueid": "1.1", "at_us": 1, "via": "api",
                         "result": "accepted", "incident": ""},
                        {"pbx": "default"}]}            # the second row lacks its columns
    with pytest.raises(Exception):
        await store.write([call(1)], bad)
    assert await store.calls(0, 2**62) == []
    good = {"escalations": bad["escalations"][:1]}
    assert await store.write([call(1)], good) == 1
    assert await store.write([call(1)], {}) == 0
    async with store.engine.connect() as conn:
        (n,) = (await conn.exec_driver_sql("SELECT count(*) FROM escalations")).one()
    assert n == 1
