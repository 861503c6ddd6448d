"""Reading never writes (issue 21, item 4).

Every report, history and reconcile command opens the ledger read-only.  A
ledger that does not exist, or whose schema is not this ivr's, is one line and
exit 2, and is left exactly as it was (a missing file is not created).  Only
`ivr ledger migrate` (and `ivr run`) migrate, on PostgreSQL under an advisory
lock.  `ivr ledger reconcile` says by its exit status whether the two agree.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from pathlib import Path
from typing import AsyncIterator

import pytest
from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import create_engine, text
from sqlalchemy.exc import SQLAlchemyError

from ivr.calls import records as rec
from ivr.cli.main import main
from ivr.desk import numbers
from ivr.ledger.store import MIGRATE_LOCK, MIGRATIONS, Store

ROOT = Path(__file__).resolve().parents[2]
LAB_LOG = ROOT / "tests" / "fixtures" / "queue_log" / "lab.queue_log"
MONTH = ["--from", "2026-11-01", "--to", "2026-12-01"]
# The newest migration, by its file name: what `ivr ledger migrate` brings a ledger to.
HEAD = max(p.name[:4] for p in (Path(MIGRATIONS) / "versions").glob("[0-9]*.py"))

# Every command that reads the ledger, as a person types it (--config is added).
READS = {
    "ledger calls": ["ledger", "calls", *MONTH],
    "ledger reconcile": ["ledger", "reconcile", "--queue-log", str(LAB_LOG)],
    "report billing": ["report", "billing", *MONTH],
    "report fcr": ["report", "fcr", *MONTH],
    "report downtime": ["report", "downtime", *MONTH],
    "registry verify": ["registry", "verify"],
    "registry export": ["registry", "export", *MONTH],
    "registry checkpoint": ["registry", "checkpoint"],
    "registry prove": ["registry", "prove", numbers.issue("ticket", 1)],
}


def config(tmp_path: Path, url: str, pbxs: tuple[str, ...] = ()) -> Path:
    path = tmp_path / "ivr.toml"
    tables = "".join(f'[pbx.{name}]\nhost = "10.0.0.{i}"\nusername = "ivr"\n\n'
                     for i, name in enumerate(pbxs, start=1))
    path.write_text(f'[ledger]\nurl = "{url}"\n\n[routing]\n'
                    f'directory = "{ROOT}/ivr/lab/files/subscribers.csv"\n\n'
                    f'[desk]\nregistry_key = "{tmp_path / "registry.key"}"\n\n{tables}')
    return path


def ivr(capsys: pytest.CaptureFixture[str], argv: list[str], conf: Path) -> tuple[int, str, str]:
    code = main([*argv, "--config", str(conf)])
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def ledger_at(path: Path, revision: str) -> None:
    """A SQLite ledger migrated up to `revision` only, as an older ivr left it (in WAL)."""
    engine = create_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA journal_mode=WAL")
        with engine.begin() as conn:
            alembic = AlembicConfig()
            alembic.set_main_option("script_location", str(MIGRATIONS))
            alembic.attributes["connection"] = conn
            command.upgrade(alembic, revision)
    finally:
        engine.dispose()


def call(pbx: str, n: int, entered_us: int) -> rec.CallRecord:
    visit = rec.VisitRecord(1, "first-line", entered_us, entered_us + 4_000_000, "answered",
                            4000, "op1")
    return rec.CallRecord(pbx, f"1796000000.{n}", f"1796000000.{n}", f"7910{n}", "", "",
                          entered_us, entered_us + 60_000_000, (visit,), "answered", True,
                          rec.LIVE, rec.MS, entered_us + 4_000_000, "first-line", "op1")


async def write(url: str, calls: list[rec.CallRecord]) -> None:
    store = Store(url)
    try:
        await store.migrate()
        await store.write(calls)
    finally:
        await store.close()


# -- a ledger that is not there, or not at this schema ---------------------------

@pytest.mark.parametrize("name", sorted(READS))
def test_a_missing_sqlite_ledger_is_one_line_and_is_not_created(
        name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "typo" / "x.db"
    code, out, err = ivr(capsys, READS[name], config(tmp_path, f"sqlite:///{db}"))
    assert code == 2 and out == ""
    assert one_line(err) == (f"ivr: the ledger at sqlite:///{db} does not exist: "
                             f"run `ivr ledger migrate`")
    assert not db.exists() and not db.parent.exists()


@pytest.mark.parametrize("name", sorted(READS))
def test_an_older_schema_is_one_line_and_the_file_is_left_byte_for_byte(
        name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "old.db"
    ledger_at(db, "0006")
    before = db.read_bytes()
    code, out, err = ivr(capsys, READS[name], config(tmp_path, f"sqlite:///{db}"))
    assert code == 2 and out == ""
    assert one_line(err) == (f"ivr: the ledger's schema is at 0006, this ivr needs {HEAD}: "
                             f"run `ivr ledger migrate`")
    assert db.read_bytes() == before


def test_migrate_brings_an_older_ledger_up_and_the_reads_then_work(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "old.db"
    ledger_at(db, "0006")
    conf = config(tmp_path, f"sqlite:///{db}")
    code, out, _ = ivr(capsys, ["ledger", "migrate"], conf)
    assert code == 0 and f"schema at revision {HEAD}" in out
    before = db.read_bytes()
    for name in ("ledger calls", "report billing", "report fcr", "registry verify"):
        code, _, err = ivr(capsys, READS[name], conf)
        assert code == 0, (name, err)
    assert db.read_bytes() == before


def test_a_newer_schema_is_exit_2_for_reads_and_for_migrate(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "newer.db"
    ledger_at(db, HEAD)
    engine = create_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    before = db.read_bytes()
    conf = config(tmp_path, f"sqlite:///{db}")
    for argv in (READS["report billing"], ["ledger", "migrate"]):
        code, out, err = ivr(capsys, argv, conf)
        assert code == 2 and out == ""
        assert "revision '9999', newer than this ivr knows" in one_line(err)
    assert db.read_bytes() == before


def test_an_empty_file_has_no_schema(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "empty.db"
    db.touch()
    code, _, err = ivr(capsys, READS["report billing"], config(tmp_path, f"sqlite:///{db}"))
    assert code == 2 and "has no schema: run `ivr ledger migrate`" in one_line(err)
    assert db.read_bytes() == b""


def test_an_empty_postgresql_database_is_refused_and_its_password_never_said(
        pg_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = pg_url.replace("postgres@", "postgres:Hunter2-never-said@")   # trust ignores it
    for name in ("ledger calls", "report billing", "registry verify"):
        code, _, err = ivr(capsys, READS[name], config(tmp_path, url))
        assert code == 2 and "has no schema: run `ivr ledger migrate`" in one_line(err), err
        assert "Hunter2" not in err and "***" in err

    async def tables() -> object:
        store = Store(pg_url)
        try:
            async with store.engine.connect() as conn:
                return (await conn.execute(text("SELECT count(*) FROM pg_tables "
                                                "WHERE schemaname = 'public'"))).scalar()
        finally:
            await store.close()
    assert asyncio.run(tables()) == 0


# -- read-only is the database's own rule, not the commands' care ------------------

@pytest.fixture(params=["sqlite", "postgresql"])
async def migrated(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    url = (f"sqlite:///{tmp_path / 'ledger.db'}" if request.param == "sqlite"
           else str(request.getfixturevalue("pg_url")))
    await write(url, [call("default", 1, 1_796_000_000_000_000)])
    yield url


async def test_a_read_only_store_cannot_write(migrated: str) -> None:
    reader = Store(migrated, read_only=True)
    try:
        assert await reader.require_schema() == HEAD
        with pytest.raises((SQLAlchemyError, sqlite3.Error), match="(?i)read-?only"):
            await reader.write([call("default", 2, 1_796_000_100_000_000)])
        with pytest.raises((SQLAlchemyError, sqlite3.Error), match="(?i)read-?only"):
            await reader.history("escalations", [{"pbx": "default", "uniqueid": "1.1", "at_us": 1,
                                                  "via": "api", "result": "accepted",
                                                  "incident": ""}])
        found = await reader.calls(0, 1 << 62)
        assert [c.uniqueid for c in found] == ["1796000000.1"]
    finally:
        await reader.close()


# -- migrating: only on purpose, and one at a time ---------------------------------

async def test_two_migrations_at_once_on_postgresql_take_turns(
        pg_url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ivr.ledger.store")
    holder, first, second = Store(pg_url), Store(pg_url), Store(pg_url)
    try:
        async with holder.engine.connect() as conn:
            await conn.execute(text(f"SELECT pg_advisory_lock({MIGRATE_LOCK})"))
            both = [asyncio.create_task(s.migrate()) for s in (first, second)]
            deadline = time.monotonic() + 10
            waiting = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            while (await conn.execute(text(waiting))).scalar() != 2:
                assert time.monotonic() < deadline, "the migrations never waited for the lock"
                await asyncio.sleep(0.02)
            assert not any(t.done() for t in both)
            assert (await conn.execute(text("SELECT to_regclass('alembic_version')"))).scalar() is None
            await conn.execute(text(f"SELECT pg_advisory_unlock({MIGRATE_LOCK})"))
            assert await asyncio.gather(*both) == [HEAD, HEAD]
    finally:
        for s in (holder, first, second):
            await s.close()
    migrations = [r for r in caplog.records if "migrating the schema" in r.getMessage()]
    assert len(migrations) == 1            # the second found the schema at head: nothing to do


# -- reconcile: the exit status says whether the two agree ---------------------------

def test_reconcile_exits_3_until_the_ledger_and_queue_log_agree(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conf = config(tmp_path, f"sqlite:///{tmp_path / 'ledger.db'}")
    assert ivr(capsys, ["ledger", "migrate"], conf)[0] == 0
    code, out, _ = ivr(capsys, READS["ledger reconcile"], conf)
    assert code == 3
    assert out.splitlines()[-1] == "the ledger and queue_log do not agree: 12 missing in the ledger"
    code, out, _ = ivr(capsys, [*READS["ledger reconcile"], "--backfill"], conf)
    assert code == 3 and out.splitlines()[-1].endswith("(12 backfilled)")
    code, out, _ = ivr(capsys, READS["ledger reconcile"], conf)
    assert code == 0
    assert out.splitlines()[-1] == "the ledger and queue_log agree: 12 stint(s) matched"


def test_reconcile_refuses_a_file_that_is_not_a_queue_log(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "ledger.db"
    conf = config(tmp_path, f"sqlite:///{db}")
    assert ivr(capsys, ["ledger", "migrate"], conf)[0] == 0
    passwd = tmp_path / "passwd"
    passwd.write_text("root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1::/usr/sbin:/bin/false\n")
    before = db.read_bytes()
    for backfill in ([], ["--backfill"]):
        code, out, err = ivr(capsys, ["ledger", "reconcile", "--queue-log", str(passwd),
                                      *backfill], conf)
        assert code == 2 and out == ""
        assert one_line(err).startswith(f"ivr: {passwd} is not a queue_log: none of its 2 line(s)")
    assert db.read_bytes() == before


@pytest.mark.parametrize("stints, said", [(20, None), (27, "and 7 more (--json for all)")])
def test_a_cut_text_list_says_how_much_more_there_is(
        stints: int, said: str | None, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    conf = config(tmp_path, f"sqlite:///{tmp_path / 'ledger.db'}")
    assert ivr(capsys, ["ledger", "migrate"], conf)[0] == 0
    log = tmp_path / "queue_log"
    log.write_text("".join(f"{1796000000 + i}|1796000000.{i}|first-line|NONE|ENTERQUEUE||7910|1\n"
                           f"{1796000004 + i}|1796000000.{i}|first-line|SIP/op1|CONNECT|4|x|1\n"
                           for i in range(stints)))
    code, out, _ = ivr(capsys, ["ledger", "reconcile", "--queue-log", str(log)], conf)
    assert code == 3
    listed = [line for line in out.splitlines()
              if line.startswith(("  missing in ledger     1796", "  missing in ledger     and"))]
    assert len(listed) == min(stints, 20) + (said is not None)
    if said is None:
        assert "more (--json" not in out
    else:
        assert listed[-1] == f"  missing in ledger     {said}"


# -- --pbx: one PBX's data, and a name the config does not have ----------------------

@pytest.mark.parametrize("name", ["ledger calls", "ledger reconcile", "report billing",
                                  "report fcr"])
def test_an_unknown_pbx_is_one_line_naming_the_known_ones_before_the_ledger_opens(
        name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "typo" / "x.db"
    conf = config(tmp_path, f"sqlite:///{db}", pbxs=("paris", "lyon"))
    code, out, err = ivr(capsys, [*READS[name], "--pbx", "nice"], conf)
    assert code == 2 and out == ""
    assert one_line(err) == "ivr: --pbx nice: not a PBX of the config (known: paris, lyon)"
    assert not db.parent.exists()


def test_pbx_keeps_a_report_to_that_pbx(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    t0 = 1_796_000_000_000_000          # 2026-11-30
    asyncio.run(write(url, [call("paris", 1, t0), call("paris", 2, t0 + 60_000_000),
                            call("lyon", 3, t0 + 120_000_000)]))
    conf = config(tmp_path, url, pbxs=("paris", "lyon"))

    def billing(*extra: str) -> dict[str, object]:
        code, out, err = ivr(capsys, ["report", "billing", *MONTH, "--json", *extra], conf)
        assert code == 0, err
        body: dict[str, object] = json.loads(out)
        return body
    paris, lyon, both = billing("--pbx", "paris"), billing("--pbx", "lyon"), billing()
    assert [b["totals"]["offered"] for b in (paris, lyon, both)] == [2, 1, 3]  # type: ignore[index]
    assert len({paris["digest"], lyon["digest"], both["digest"]}) == 3
    listed = billing("--pbx", "paris", "--calls")   # the calls read and hashed in Python
    assert listed["digest"] == paris["digest"]
    assert {c["pbx"] for c in listed["calls"]} == {"paris"}                    # type: ignore[attr-defined]
    code, out, _ = ivr(capsys, ["ledger", "calls", *MONTH, "--pbx", "lyon", "--json"], conf)
    assert code == 0 and [c["pbx"] for c in json.loads(out)["calls"]] == ["lyon"]
    code, out, _ = ivr(capsys, ["report", "fcr", *MONTH, "--pbx", "lyon"], conf)
    assert code == 0 and [q["answered"] for q in json.loads(out)["queues"]] == [1]
