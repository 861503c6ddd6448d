"""The ledger store against SQLite (a file in tmp_path) and PostgreSQL (tests/pg.py).

Every test that takes `url` runs on both; the PostgreSQL half is skipped
outside CI when PostgreSQL is missing (and fails with CI=true).  Each
PostgreSQL test has a database of its own in one shared cluster.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, AsyncIterator, Callable

import pytest
from sqlalchemy import Connection, func, insert, inspect, select, text
from sqlalchemy.ext.asyncio import create_async_engine

from ivr.calls import records as rec
from ivr.config import Config
from ivr.ledger import schema as t
from ivr.ledger.db import LedgerError, driver_url
from ivr.ledger.store import MIGRATIONS, Store
from ivr.reports import billing, service
from tests.pg import PgCluster

HEAD, PREVIOUS = "0009", "0001"
FL = "first-line"
T0 = 1_764_547_200_000_000          # 2025-12-01T00:00:00Z in µs
S = 1_000_000                       # one second in µs


@pytest.fixture
async def store(url: str) -> AsyncIterator[Store]:
    s = Store(url)
    assert await s.migrate() == HEAD
    try:
        yield s
    finally:
        await s.close()


# -- records ----------------------------------------------------------------------

def visit(seq: int, queue: str, entered: int, wait_ms: int | None = 2000,
          outcome: str = "answered", member: str = "") -> rec.VisitRecord:
    left = None if wait_ms is None else entered + wait_ms * 1000
    return rec.VisitRecord(seq, queue, entered, left, outcome, wait_ms, member)


def call(uid: str, entered: int, visits: tuple[rec.VisitRecord, ...] | None = None,
         caller: str = "+3312345678", account: str = "A1", pbx: str = "pbx1",
         outcome: str = "answered", payable: bool = True,
         source: str = rec.LIVE) -> rec.CallRecord:
    if visits is None:
        visits = (visit(1, FL, entered, 2000, "answered", "op1"),)
    answered = next((v for v in visits if v.outcome == "answered"), None)
    ended = max((v.left_us or v.entered_us) for v in visits) + 60 * S
    return rec.CallRecord(
        pbx, uid, f"{uid}-link", caller, account, "north", entered, ended, visits, outcome,
        payable, source, rec.MS if source == rec.LIVE else rec.SECONDS,
        answered.left_us if answered else None,
        answered.queue if answered else "", answered.member if answered else "")


async def count(store: Store, table: str) -> int:
    async with store.engine.connect() as conn:
        return int((await conn.execute(
            select(func.count()).select_from(t.metadata.tables[table]))).scalar_one())


async def rows(store: Store, query: Any) -> list[Any]:
    async with store.engine.connect() as conn:
        return list((await conn.execute(query)).all())


def upgrade_to(revision: str) -> Callable[[Connection], None]:
    """Alembic's upgrade to `revision`, handed a connection exactly as store._upgrade does."""
    def run(conn: Connection) -> None:
        from alembic import command
        from alembic.config import Config as AlembicConfig
        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
    return run


def table_shapes(conn: Connection) -> dict[str, dict[str, Any]]:
    insp = inspect(conn)
    shapes: dict[str, dict[str, Any]] = {}
    for name in insp.get_table_names():
        if name == "alembic_version":
            continue
        shapes[name] = {
            "columns": [c["name"] for c in insp.get_columns(name)],
            "nullable": {c["name"]: bool(c["nullable"]) for c in insp.get_columns(name)},
            "primary_key": sorted(insp.get_pk_constraint(name)["constrained_columns"]),
            "indexes": sorted((i["name"], tuple(i["column_names"]))
                              for i in insp.get_indexes(name)),
        }
    return shapes


def declared_shapes() -> dict[str, dict[str, Any]]:
    return {
        table.name: {
            "columns": [c.name for c in table.columns],
            "nullable": {c.name: bool(c.nullable) for c in table.columns},
            "primary_key": sorted(c.name for c in table.primary_key.columns),
            "indexes": sorted((str(i.name), tuple(c.name for c in i.columns))
                              for i in table.indexes),
        }
        for table in t.metadata.sorted_tables
    }


# -- migrations ---------------------------------------------------------------------

async def test_migrate_from_empty_reaches_head(url: str) -> None:
    s = Store(url)
    try:
        assert await s.revision() is None
        assert await s.migrate() == HEAD
        assert await s.revision() == HEAD
        assert await s.migrate() == HEAD                  # again: nothing to do
        assert await count(s, "calls") == 0
        if s.dialect == "sqlite":
            async with s.engine.connect() as conn:
                mode = (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar_one()
            assert str(mode).lower() == "wal"
    finally:
        await s.close()


async def test_migrations_create_the_declared_schema(store: Store) -> None:
    """ivr/ledger/schema.py and the migrations must not drift apart."""
    async with store.engine.connect() as conn:
        made = await conn.run_sync(table_shapes)
    declared = declared_shapes()
    assert sorted(made) == sorted(declared)
    for name in declared:
        assert made[name]["columns"] == declared[name]["columns"], name
        assert made[name]["nullable"] == declared[name]["nullable"], name
        assert made[name]["primary_key"] == declared[name]["primary_key"], name
        assert made[name]["indexes"] == declared[name]["indexes"], name


async def test_migrate_from_the_previous_schema_keeps_rows(url: str) -> None:
    engine = create_async_engine(driver_url(url))
    try:
        async with engine.begin() as conn:
            await conn.run_sync(upgrade_to(PREVIOUS))
            await conn.execute(insert(t.calls).values(
                pbx="pbx1", uniqueid="old.1", linkedid="old.1", caller="+331", account="A1",
                area="north", entered_us=T0, ended_us=T0 + 90 * S, outcome="answered",
                payable=True, source=rec.LIVE, precision=rec.MS, answered_us=T0 + 5 * S,
                answered_queue=FL, answered_member="op1", fl_entered_us=T0, fl_wait_ms=5000,
                fl_outcome="answered", fl_member="op1"))
        async with engine.connect() as conn:
            before = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        assert "calls" in before and "incidents" not in before
    finally:
        await engine.dispose()

    s = Store(url)
    try:
        assert await s.revision() == PREVIOUS
        assert await s.migrate() == HEAD
        assert await s.revision() == HEAD
        [old] = await s.calls(T0, T0 + S)
        assert (old.uniqueid, old.caller, old.answered_member) == ("old.1", "+331", "op1")
        async with s.engine.connect() as conn:
            after = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        assert {"incidents", "escalations", "route_decisions"} <= after
        async with s.engine.connect() as conn:   # 0003 wrote the old call's statement line
            line = (await conn.execute(select(t.calls.c.fl_line))).scalar_one()
        assert line == rec.statement_line("pbx1", "old.1", T0, 5000, "answered", "op1", True,
                                          rec.LIVE)
        assert await s.write([call("new.1", T0 + 10 * S)]) in (0, 1)
        assert await count(s, "calls") == 2
    finally:
        await s.close()


async def test_an_unknown_newer_revision_is_refused(url: str) -> None:
    s = Store(url)
    try:
        await s.migrate()
        async with s.engine.begin() as conn:
            await conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    finally:
        await s.close()
    s = Store(url)
    try:
        with pytest.raises(LedgerError, match="newer") as err:
            await s.migrate()
        assert "9999" in str(err.value) and "\n" not in str(err.value)
        assert await s.revision() == "9999"               # left as it was
    finally:
        await s.close()


# -- writes ---------------------------------------------------------------------------

async def test_writing_the_same_records_twice_writes_them_once(store: Store) -> None:
    batch = [
        call("1.1", T0),
        call("1.2", T0 + S, (visit(1, FL, T0 + S, 30_000, "timeout"),
                             visit(2, "common", T0 + 31 * S, 4000, "answered", "op7")),
             outcome="answered", payable=False),
        call("1.3", T0 + 2 * S, (visit(1, FL, T0 + 2 * S, 3000, "abandoned"),),
             outcome="abandoned", payable=False),
    ]
    assert await store.write(batch) == 3
    assert (await count(store, "calls"), await count(store, "visits")) == (3, 4)
    assert await store.write(batch) == 0
    assert (await count(store, "calls"), await count(store, "visits")) == (3, 4)
    # Old and new together: only the new one counts and lands.
    assert await store.write([*batch, call("1.4", T0 + 3 * S)]) == 1
    assert (await count(store, "calls"), await count(store, "visits")) == (4, 5)
    assert await store.write([]) == 0


async def test_a_rewritten_call_keeps_its_first_version(store: Store) -> None:
    first = call("2.1", T0, (visit(1, FL, T0, None, rec.UNOBSERVED),),
                 outcome="unknown", payable=False, source=rec.RESYNC)
    await store.write([first])
    await store.write([call("2.1", T0, outcome="answered", payable=True)])
    [got] = await store.calls(T0, T0 + S)
    assert (got.outcome, got.source, got.visits) == ("unknown", rec.RESYNC, first.visits)


async def test_each_value_lands_in_its_named_column(store: Store) -> None:
    # Rows go to the driver as tuples in the table's column order: a misplaced value
    # of the same type would pass every count.
    two = call("3.1", T0, (visit(1, "common", T0, 1500, "transferred"),
                           visit(2, FL, T0 + 5 * S, 2500, "answered", "op3")),
               caller="+33999", account="A77")
    await store.write([two])
    [row] = await rows(store, select(t.calls))
    got = dict(zip([c.name for c in t.calls.columns], row))
    assert got == {
        "pbx": "pbx1", "uniqueid": "3.1", "linkedid": "3.1-link", "caller": "+33999",
        "account": "A77", "area": two.area, "entered_us": T0, "ended_us": two.ended_us,
        "outcome": "answered", "payable": True, "source": rec.LIVE, "precision": rec.MS,
        "answered_us": two.answered_us, "answered_queue": FL, "answered_member": "op3",
        "fl_entered_us": T0 + 5 * S, "fl_wait_ms": 2500, "fl_outcome": "answered",
        "fl_member": "op3",
        "fl_line": rec.statement_line("pbx1", "3.1", T0 + 5 * S, 2500, "answered", "op3",
                                      True, rec.LIVE)}
    visits = await rows(store, select(t.visits).order_by(t.visits.c.seq))
    assert [dict(zip([c.name for c in t.visits.columns], v)) for v in visits] == [
        {"pbx": "pbx1", "uniqueid": "3.1", "seq": 1, "queue": "common", "entered_us": T0,
         "left_us": T0 + 1500 * 1000, "outcome": "transferred", "wait_ms": 1500, "member": "",
         "source": rec.LIVE},
        {"pbx": "pbx1", "uniqueid": "3.1", "seq": 2, "queue": FL, "entered_us": T0 + 5 * S,
         "left_us": T0 + 5 * S + 2500 * 1000, "outcome": "answered", "wait_ms": 2500,
         "member": "op3", "source": rec.LIVE}]


async def test_a_backfill_writes_calls_and_visits_in_one_go(store: Store) -> None:
    # Two inserts into visits in one transaction (the calls' own, then the loose ones).
    await store.write([call("4.0", T0)])
    whole = call("4.1", T0 + S, source=rec.QUEUE_LOG)
    loose = [("pbx1", "4.0", visit(2, "common", T0 + 40 * S, 1000, "abandoned"))]
    await store.backfill([whole], loose)
    assert (await count(store, "calls"), await count(store, "visits")) == (2, 3)
    await store.backfill([whole], loose)
    assert (await count(store, "calls"), await count(store, "visits")) == (2, 3)


# -- reads ------------------------------------------------------------------------------

async def test_calls_filters_and_returns_visits_in_order(store: Store) -> None:
    three = (visit(1, FL, T0 + 10 * S, 30_000, "timeout"),
             visit(2, "common", T0 + 40 * S, 20_000, "transferred"),
             visit(3, "second-line", T0 + 60 * S, 1000, "answered", "op9"))
    await store.write([
        call("3.3", T0 + 10 * S, three, caller="+331", account="A1"),
        call("3.1", T0, caller="+331", account="A2"),
        call("3.2", T0 + 5 * S, caller="+332", account="A1", pbx="pbx2"),
        call("3.4", T0 + 3600 * S, caller="+331", account="A1"),        # later
        call("3.0", T0 - S, caller="+331", account="A1"),               # earlier
    ])
    got = await store.calls(T0, T0 + 3600 * S)
    assert [c.uniqueid for c in got] == ["3.1", "3.2", "3.3"]           # oldest first
    assert got[2].visits == three
    assert got[2].answered_member == "op9" and got[2].answered_queue == "second-line"
    assert got[0] == call("3.1", T0, caller="+331", account="A2")       # round trip
    assert [c.uniqueid for c in await store.calls(T0, T0 + 3600 * S, caller="+331")] \
        == ["3.1", "3.3"]
    assert [c.uniqueid for c in await store.calls(T0, T0 + 3600 * S, account="A1")] \
        == ["3.2", "3.3"]
    assert [c.uniqueid for c in await store.calls(T0 - S, T0 + 7200 * S, caller="+331",
                                                  account="A1")] == ["3.0", "3.3", "3.4"]
    assert [c.uniqueid for c in await store.calls(T0, T0 + 3600 * S, pbx="pbx2")] == ["3.2"]
    assert [c.uniqueid for c in await store.calls(T0 - S, T0 + 7200 * S, limit=2)] \
        == ["3.0", "3.1"]
    assert await store.calls(T0 + 7200 * S, T0 + 9000 * S) == []
    # [from, to): the bound `to` itself is outside.
    assert [c.uniqueid for c in await store.calls(T0, T0 + 5 * S)] == ["3.1"]


async def test_billing_calls_judge_the_first_first_line_visit(store: Store) -> None:
    await store.write([
        # Entered vip first, then first-line twice: the first first-line visit counts.
        call("4.1", T0, (visit(1, "vip", T0, 1000, "timeout"),
                         visit(2, FL, T0 + 2 * S, 30_000, "timeout"),
                         visit(3, "common", T0 + 32 * S, 5000, "transferred"),
                         visit(4, FL, T0 + 40 * S, 1000, "answered", "op2")),
             outcome="answered", payable=False),
        call("4.2", T0 + 5 * S, (visit(1, FL, T0 + 5 * S, 4000, "answered", "op1"),)),
        call("4.3", T0 + 6 * S, (visit(1, FL, T0 + 6 * S, None, rec.UNOBSERVED),),
             outcome="unknown", payable=False, source=rec.RESYNC),
        call("4.4", T0 + 7 * S, (visit(1, "common", T0 + 7 * S, 1000, "answered", "op3"),)),
        # Entered any queue before the period, first-line inside it: in the statement.
        call("4.5", T0 - 10 * S, (visit(1, "vip", T0 - 10 * S, 12_000, "timeout"),
                                  visit(2, FL, T0 + 2 * S + 1, 500, "abandoned")),
             outcome="abandoned", payable=False),
        call("4.6", T0 + 3600 * S),                                    # after the period
    ])
    got = sorted(await store.billing_calls(T0, T0 + 3600 * S), key=lambda b: b.uniqueid)
    assert got == [
        rec.BillingCall("pbx1", "4.1", T0 + 2 * S, 30_000, "timeout", "", False, rec.LIVE),
        rec.BillingCall("pbx1", "4.2", T0 + 5 * S, 4000, "answered", "op1", True, rec.LIVE),
        rec.BillingCall("pbx1", "4.3", T0 + 6 * S, None, rec.UNOBSERVED, "", False,
                        rec.RESYNC),
        rec.BillingCall("pbx1", "4.5", T0 + 2 * S + 1, 500, "abandoned", "", False, rec.LIVE),
    ]
    assert all(type(b.payable) is bool for b in got)
    assert await store.billing_calls(T0 + 3600 * S + 1, T0 + 7200 * S) == []


async def test_the_statement_counts_the_calls_judged_in_whole_seconds(store: Store) -> None:
    # Live with Timestamps (ms), live without them (s), backfilled from queue_log (s),
    # one of each outside the period, and one that never entered first-line.
    untimed = replace(call("6.2", T0 + 2 * S), precision=rec.SECONDS)
    await store.write([
        call("6.1", T0 + S), untimed, call("6.3", T0 + 3 * S, source=rec.QUEUE_LOG),
        call("6.4", T0 + 86_400 * S, source=rec.QUEUE_LOG),           # the next day
        call("6.5", T0 + 4 * S, (visit(1, "common", T0 + 4 * S, 1000, "answered", "op3"),),
             payable=False, source=rec.QUEUE_LOG),
    ])
    assert await store.judged_in_seconds(T0, T0 + 3600 * S) == 2
    assert await store.judged_in_seconds(T0, T0 + 2 * S) == 0          # [from, to)
    assert await store.judged_in_seconds(T0 + 86_400 * S, T0 + 86_401 * S) == 1
    config = Config()
    statement = await service.statement(store, config, billing.period(
        "2025-12-01", "2025-12-02", "UTC", None))
    assert statement.judged_in_seconds == 2 and statement.totals.offered == 3
    assert billing.to_json(statement, with_calls=False)["judged_in_seconds"] == 2


async def test_add_visits_fills_first_line_only_where_empty(store: Store) -> None:
    # Known to the ledger without a first-line visit (a resync saw only common).
    bare = call("5.1", T0, (visit(1, "common", T0, 2000, "answered", "op4"),), payable=False)
    full = call("5.2", T0 + S)                       # has its first-line visit already
    await store.write([bare, full])
    assert [b.uniqueid for b in await store.billing_calls(T0 - 60 * S, T0 + 60 * S)] == ["5.2"]

    backfill = [("pbx1", "5.1", visit(2, FL, T0 - 30 * S, 25_000, "abandoned")),
                ("pbx1", "5.1", visit(3, FL, T0 - 3 * S, 1000, "withdrawn")),
                ("pbx1", "5.2", visit(2, FL, T0 + 90 * S, 100, "abandoned"))]
    await store.add_visits(backfill)
    expected = sorted([
        rec.BillingCall("pbx1", "5.1", T0 - 30 * S, 25_000, "abandoned", "", False, rec.LIVE),
        rec.BillingCall("pbx1", "5.2", T0 + S, 2000, "answered", "op1", True, rec.LIVE),
    ], key=lambda b: b.uniqueid)

    async def state() -> tuple[list[rec.BillingCall], int, list[Any]]:
        billing = sorted(await store.billing_calls(T0 - 60 * S, T0 + 120 * S),
                         key=lambda b: b.uniqueid)
        sources = await rows(store, select(t.visits.c.uniqueid, t.visits.c.seq,
                                           t.visits.c.source)
                             .order_by(t.visits.c.uniqueid, t.visits.c.seq))
        return billing, await count(store, "visits"), sources

    once = await state()
    assert once[0] == expected
    assert once[1] == 5
    assert once[2] == [("5.1", 1, rec.LIVE), ("5.1", 2, rec.QUEUE_LOG), ("5.1", 3, rec.QUEUE_LOG),
                       ("5.2", 1, rec.LIVE), ("5.2", 2, rec.QUEUE_LOG)]
    # Visits of a call come back ordered by when they began.
    [c51] = await store.calls(T0, T0 + S)
    assert [v.seq for v in c51.visits] == [2, 3, 1]

    await store.add_visits(backfill)                  # idempotent
    await store.add_visits([])
    assert await state() == once
    # The line the backfill wrote in SQL is the one Python writes: the digests agree.
    from ivr.reports import billing as bill
    assert await store.statement_digest(T0 - 60 * S, T0 + 120 * S) == bill.digest(
        sorted(expected, key=lambda b: (b.entered_us, b.pbx, b.uniqueid)))


async def test_history_appends(store: Store) -> None:
    esc = {"pbx": "pbx1", "uniqueid": "6.1", "at_us": T0, "via": "api", "result": "accepted",
           "incident": ""}
    route = {"pbx": "pbx1", "uniqueid": "6.1", "at_us": T0, "route": "first-line",
             "account": "A1", "area": "north", "incident": ""}
    await store.history("escalations", [esc, {**esc, "at_us": T0 + S, "via": "transfer"}])
    await store.history("escalations", [esc])                      # the same again: appended
    await store.history("route_decisions", [route])
    await store.history("route_decisions", [])
    e = t.escalations.c
    got = await rows(store, select(e.id, e.uniqueid, e.at_us, e.via).order_by(e.id))
    assert [(uid, at, via) for _, uid, at, via in got] == \
        [("6.1", T0, "api"), ("6.1", T0 + S, "transfer"), ("6.1", T0, "api")]
    assert len({row[0] for row in got}) == 3                          # ids assigned
    assert await count(store, "route_decisions") == 1


# -- failures ---------------------------------------------------------------------------

async def test_an_unreachable_database_is_one_line() -> None:
    s = Store("postgresql://postgres@127.0.0.1:1/x")
    try:
        with pytest.raises(LedgerError) as err:
            await s.migrate()
    finally:
        await s.close()
    message = str(err.value)
    assert "\n" not in message
    assert "127.0.0.1:1" in message
    assert "refused" in message.lower() or "connect" in message.lower()


@pytest.mark.parametrize("bad", ["mysql://u@h/db", "ledger.db", "sqlite:/relative.db"])
def test_an_unknown_scheme_is_refused_at_once(bad: str) -> None:
    with pytest.raises(LedgerError, match="unknown scheme"):
        Store(bad)


async def test_the_store_outlives_a_database_restart(pg_cluster: PgCluster,
                                                     pg_url: str) -> None:
    """PgCluster.stop()/start() keep the port and the data; the store's pool reconnects."""
    s = Store(pg_url)
    port = pg_cluster.port
    try:
        await s.migrate()
        await s.write([call("7.1", T0)])
        pg_cluster.stop()
        try:
            with pytest.raises(LedgerError):
                await s.migrate()
        finally:
            pg_cluster.start()                        # the other tests share this cluster
        assert pg_cluster.port == port
        assert [c.uniqueid for c in await s.calls(T0, T0 + S)] == ["7.1"]
    finally:
        await s.close()


async def test_console_sessions_expire_and_are_deleted(store: Store) -> None:
    for sid, expires in (("a" * 64, 1_000), ("b" * 64, 3_000)):
        await store.session_put({"sid_hash": sid, "role": "office", "name": "anna", "csrf": "x",
                                 "token_sha256": "f" * 64, "created_us": 0, "expires_us": expires})
    assert [r["sid_hash"] for r in await store.sessions(2_000)] == ["b" * 64]
    assert [r["sid_hash"] for r in await store.sessions(0)] == ["b" * 64]    # a is gone
    with pytest.raises(LedgerError):                                         # one sid, one row
        await store.session_put({"sid_hash": "b" * 64, "role": "office", "name": "x", "csrf": "y",
                                 "token_sha256": "f" * 64, "created_us": 0, "expires_us": 9_000})
    await store.session_drop("b" * 64)
    assert await store.sessions(0) == []


async def test_what_a_restart_reads_back_for_the_repeat_callers(store: Store) -> None:
    early = call("9.1", T0, (visit(1, FL, T0, 20_000, "abandoned"),), outcome="abandoned",
                 payable=False)                          # ended at T0 + 80 s
    late = call("9.2", T0 + 100 * S, (visit(1, FL, T0 + 100 * S, 30_000, "timeout"),),
                outcome="unanswered", payable=False)    # ended at T0 + 190 s
    await store.write([early, late])
    await store.history("repeats", [{"pbx": "pbx1", "uniqueid": "9.2", "at_us": T0 + 100 * S,
                                     "kind": "after_abandon", "repeat_of": "9.1", "first_us": T0}])
    assert [r.uniqueid for r in await store.ended_since(T0 + 100 * S, T0)] == ["9.2"]
    assert [r.uniqueid for r in await store.ended_since(T0, T0)] == ["9.1", "9.2"]
    assert [r.uniqueid for r in await store.ended_since(T0, T0 + S)] == ["9.2"]    # entered after
    assert await store.repeat_firsts(T0, T0 + 200 * S) == {"9.2": T0}
    assert await store.repeat_firsts(T0 + 101 * S, T0 + 200 * S) == {}
