"""`ivr ledger purge`: calls past ledger.retention_days go, the registry never moves.

On SQLite and PostgreSQL: old calls with their visits and per-call history are
deleted, newer ones kept; the registry, incidents and console sessions are the
same rows before and after; a call that an open complaint names is kept; a dry
run changes nothing and counts what the real run then deletes.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from ivr.cli.main import main
from ivr.desk import registry
from ivr.ledger import schema as t
from ivr.ledger.retention import UNTOUCHED
from ivr.ledger.store import Store
from tests.unit.test_ledger_store import call

DAY = 86_400 * 1_000_000
NOW = int(time.time() * 1e6)
OLD, NEW = NOW - 100 * DAY, NOW - 10 * DAY        # retention 90 days: OLD goes, NEW stays
PER_CALL = ("escalations", "route_decisions", "operator_actions", "repeats")


def history(uid: str, at: int) -> dict[str, list[dict[str, Any]]]:
    key = {"pbx": "pbx1", "uniqueid": uid, "at_us": at}
    return {"escalations": [{**key, "via": "api", "result": "accepted", "incident": ""}],
            "route_decisions": [{**key, "route": "first-line", "account": "A1", "area": "north",
                                 "incident": ""}],
            "operator_actions": [{**key, "action": "warn", "value": "", "actor_role": "operator",
                                  "actor": "op1"}],
            "repeats": [{**key, "kind": "after_abandon", "repeat_of": "x", "first_us": at}]}


async def fill(url: str) -> None:
    """Four old calls (old3 named by an open complaint, old4 by a closed ticket), two
    new ones, each with a row in every per-call table; an old route decision of a
    call the ledger never had; an old incident, the registry, a console session."""
    store = Store(url)
    await store.migrate()
    for uid, at in (("old1", OLD), ("old2", OLD + 1), ("old3", OLD + 2), ("old4", OLD + 3),
                    ("new1", NEW), ("new2", NEW + 1)):
        await store.write([call(uid, at)], history(uid, at + 5))
    await store.write([], {"route_decisions": history("never-ended", OLD)["route_decisions"],
                           "incidents": [{"id": "i1", "area": "north", "message": "cut",
                                          "opened_us": OLD, "expires_us": OLD + DAY,
                                          "closed_us": None, "opened_by": "admin",
                                          "closed_by": None}]})
    head: tuple[int, str] = (0, registry.GENESIS)
    for kind, number, event, data in (
            ("complaint", "C-1", "filed", {"call": "old3", "pbx": "pbx1", "text": "rude"}),
            ("ticket", "T-1", "filed", {"call": "old4", "problem": "no line"}),
            ("ticket", "T-1", "state", {"state": "closed"})):
        entry = registry.make(head, OLD + 10, kind, number, event, "office", "anna", data)
        await store.registry_append(entry.row())
        head = (entry.seq, entry.hash)
    await store.session_put({"sid_hash": "s" * 64, "role": "admin", "name": "root",
                             "token_sha256": "t" * 64, "csrf": "c" * 64, "created_us": OLD,
                             "expires_us": OLD + DAY})
    await store.close()


def dump(url: str, tables: tuple[str, ...]) -> dict[str, list[tuple[Any, ...]]]:
    async def go() -> dict[str, list[tuple[Any, ...]]]:
        store = Store(url)
        try:
            async with store.engine.connect() as conn:
                return {name: sorted((tuple(r) for r in await conn.execute(
                    select(t.metadata.tables[name]))), key=repr) for name in tables}
        finally:
            await store.close()
    return asyncio.run(go())


def conf(tmp_path: Path, url: str, days: int | None = 90) -> Path:
    path = tmp_path / "ivr.toml"
    retention = f"retention_days = {days}\n" if days is not None else ""
    path.write_text(f'[ami]\nusername = "ivr"\n[ledger]\nurl = "{url}"\n{retention}')
    return path


def purge(capsys: pytest.CaptureFixture[str], path: Path, *flags: str) -> tuple[int, Any, str]:
    code = main(["ledger", "purge", "--config", str(path), "--json", *flags])
    out, err = capsys.readouterr()
    return code, json.loads(out) if out else None, err


def test_old_calls_go_new_ones_and_the_registry_stay(tmp_path: Path, url: str,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    asyncio.run(fill(url))
    everything = tuple(t.metadata.tables)
    before = dump(url, everything)
    path = conf(tmp_path, url)

    code, dry, _ = purge(capsys, path, "--dry-run")
    assert code == 0 and dry["dry_run"] is True
    assert set(dry) == {"retention_days", "before", "dry_run", "tables", "kept_for_desk"}
    assert dump(url, everything) == before                      # a dry run deletes nothing

    code, done, _ = purge(capsys, path)
    assert code == 0 and done["dry_run"] is False
    expected = {"calls": 3, "visits": 3, "escalations": 3, "route_decisions": 4,
                "operator_actions": 3, "repeats": 3}
    assert done["tables"] == dry["tables"] == expected
    assert done["kept_for_desk"] == dry["kept_for_desk"] == 1
    assert done["retention_days"] == 90 and done["before"].endswith("Z")
    after = dump(url, everything)
    assert {r[1] for r in after["calls"]} == {"old3", "new1", "new2"}
    assert {r[1] for r in after["visits"]} == {"old3", "new1", "new2"}
    for table in PER_CALL:
        assert {r[2] for r in after[table]} == {"old3", "new1", "new2"}, table
    for table in UNTOUCHED:                     # registry, its head, incidents, sessions
        assert after[table] == before[table] and before[table], table

    code, again, _ = purge(capsys, path)       # nothing left to purge
    assert code == 0 and set(again["tables"].values()) == {0}


def test_small_batches_purge_the_same(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/ledger.db"
    asyncio.run(fill(url))

    async def go() -> Any:
        store = Store(url)
        try:
            return await store.purge(NOW - 90 * DAY, frozenset({"old3"}), False, batch=1)
        finally:
            await store.close()
    done = asyncio.run(go())
    assert (done.tables["calls"], done.tables["route_decisions"], done.kept_for_desk) == (3, 4, 1)
    assert {r[1] for r in dump(url, ("calls",))["calls"]} == {"old3", "new1", "new2"}


def test_the_text_form_names_each_table(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path}/ledger.db"
    asyncio.run(fill(url))
    assert main(["ledger", "purge", "--dry-run", "--config", str(conf(tmp_path, url))]) == 0
    out = capsys.readouterr().out
    assert out.startswith("would delete the rows of calls entered before ")
    for table in ("calls", "visits", *PER_CALL):
        assert f"  {table} " in out
    assert out.rstrip().endswith("(dry run: nothing deleted)")


@pytest.mark.parametrize("case, said", [
    ("unset", "ledger.retention_days is not set: nothing to purge"),
    ("zero", "ledger.retention_days is not set: nothing to purge"),
    ("missing", "does not exist: run `ivr ledger migrate`"),
    ("empty", "has no schema: run `ivr ledger migrate`")])
def test_refusals_are_one_line_exit_2_and_change_nothing(
        tmp_path: Path, case: str, said: str, capsys: pytest.CaptureFixture[str]) -> None:
    ledger = tmp_path / "ledger.db"
    if case == "empty":
        sqlite3.connect(ledger).close()
    elif case != "missing":
        asyncio.run(fill(f"sqlite:///{ledger}"))
    days = {"unset": None, "zero": 0}.get(case, 90)
    path = conf(tmp_path, f"sqlite:///{ledger}", days)
    files = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    code, out, err = purge(capsys, path)
    assert (code, out) == (2, None)
    assert err == f"ivr: {said}\n" if case in ("unset", "zero") else said in err, err
    assert err.count("\n") == 1
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == files
