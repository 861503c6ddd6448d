"""A record the ledger database refuses is quarantined, counted and listed, and the
records after it flow on; a database that is away is spooled, never quarantined.
On SQLite and PostgreSQL (tests/pg.py), with ivr's real store."""

from __future__ import annotations

import dataclasses
import json
import socket
import sqlite3
from pathlib import Path
from typing import Any, Mapping, Sequence

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import exc as sa_exc

from ivr.cli import main as cli
from ivr.app import build
from ivr.config import AmiConfig, Config, LedgerConfig
from ivr.ledger import quarantine as qr
from ivr.calls import records as rec
from ivr.ledger.db import LedgerError
from ivr.ledger.store import Store
from ivr.ledger.writer import History, LedgerWriter, Spool
from ivr.http.app import make_web
from tests.unit.test_ledger_writer import Behind, Flaky, call

HUGE = 10**20      # AMI's `HoldTime: 99999999999999999999`, had it reached a record


def refused_call(n: int) -> rec.CallRecord:
    """A call no database takes: its wait overflows any integer column."""
    r = call(n)
    return dataclasses.replace(r, visits=(dataclasses.replace(r.visits[0], wait_ms=HUGE),))


def escalation(uid: str, at_us: int) -> History:
    return History("escalations", {"pbx": "default", "uniqueid": uid, "at_us": at_us,
                                   "via": "api", "result": "accepted", "incident": ""})


def quarantined(path: Path) -> list[dict[str, Any]]:
    header, *lines = path.read_text().splitlines()
    assert json.loads(header) == {"ivr_quarantine": 1}
    return [json.loads(line) for line in lines]


async def test_a_refused_record_between_two_good_ones(store: Store, tmp_path: Path) -> None:
    writer = LedgerWriter(store, Spool(tmp_path / "spool.jsonl", 100))
    for r in (call(1), refused_call(2), call(3)):
        writer.submit(r)
    assert await writer.flush()
    assert [c.uniqueid for c in await store.calls(0, 2**62)] == ["1796000000.1", "1796000000.3"]
    assert writer.written == 2 and writer.quarantined == 1 and writer.quarantine.count == 1
    assert writer.healthy and writer.backlog == 0 and writer.dropped == 0
    (kept,) = quarantined(tmp_path / "spool.quarantine.jsonl")
    assert kept["item"]["call"]["uniqueid"] == "1796000000.2"
    assert kept["item"]["call"]["visits"][0]["wait_ms"] == HUGE      # the record whole
    assert kept["error"] and isinstance(kept["at_us"], int)
    # It stays out of the way: the next records are written at once.
    writer.submit(call(4))
    assert await writer.flush()
    assert len(await store.calls(0, 2**62)) == 3 and writer.quarantined == 1


async def test_refused_records_in_a_large_batch_are_isolated(store: Store, tmp_path: Path) -> None:
    writer = LedgerWriter(store, Spool(tmp_path / "spool.jsonl", 1000))
    bad = {7, 60, 61, 99}
    for n in range(100):
        writer.submit(refused_call(n) if n in bad else call(n))
    writer.submit(escalation("1796000000.5", 1))
    writer.submit(escalation("1796000000.6", HUGE))     # a history row refused too
    assert await writer.flush()
    assert len(await store.calls(0, 2**62)) == 96
    kept = quarantined(writer.quarantine.path)
    assert [k["item"].get("call", {}).get("uniqueid") for k in kept] == [
        *(f"1796000000.{n}" for n in sorted(bad)), None]
    assert kept[-1]["item"]["history"] == "escalations"
    assert writer.quarantined == 5


async def test_a_spooled_refused_record_no_longer_stalls_the_spool(store: Store,
                                                                  tmp_path: Path) -> None:
    """The issue's stall: the bad record went to the spool and was retried first, forever."""
    Spool(tmp_path / "spool.jsonl", 100).append([refused_call(1), call(2)])
    writer = LedgerWriter(store, Spool(tmp_path / "spool.jsonl", 100))
    writer.submit(call(3))
    assert await writer.flush()
    assert [c.uniqueid for c in await store.calls(0, 2**62)] == ["1796000000.2", "1796000000.3"]
    assert writer.quarantined == 1 and not (tmp_path / "spool.jsonl").exists()


async def test_a_database_away_is_spooled_never_quarantined(store: Store, tmp_path: Path) -> None:
    db = Flaky(store)
    writer = LedgerWriter(db, Spool(tmp_path / "spool.jsonl", 100))
    db.down = True
    for r in (call(1), refused_call(2), call(3)):
        writer.submit(r)
    assert not await writer.flush()
    assert writer.spool.count == 3 and writer.quarantined == 0
    assert not writer.quarantine.path.exists()
    db.down = False
    assert await writer.flush()
    assert writer.spool.count == 0 and writer.quarantined == 1
    assert len(await store.calls(0, 2**62)) == 2


class GoesAway(Behind):
    """The real store, which goes away after `writes` successful writes."""

    def __init__(self, store: Store, writes: int) -> None:
        super().__init__(store)
        self.left = writes

    async def write(self, records: Sequence[rec.CallRecord],
                    history: Mapping[str, Sequence[dict[str, Any]]] | None = None) -> int:
        new = await self.store.write(records, history)    # a refusal raises here
        if self.left <= 0:
            raise ConnectionResetError(104, "Connection reset by peer")
        self.left -= 1
        return new


async def test_the_database_going_away_while_a_batch_is_split_doubles_nothing(
        tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'ledger.db'}")
    try:
        db = GoesAway(store, writes=1)
        writer = LedgerWriter(db, Spool(tmp_path / "spool.jsonl", 100))
        writer.submit(escalation("1796000000.1", 1))
        writer.submit(call(1))
        writer.submit(refused_call(2))
        writer.submit(call(3))
        # [e, 1] is written, [2] is refused and quarantined, then [3] finds the database away.
        assert not await writer.flush()
        assert writer.quarantined == 1 and writer.spool.count == 1
        db.left = 10
        assert await writer.flush()
        async with store.engine.connect() as conn:
            rows = (await conn.exec_driver_sql("SELECT count(*) FROM escalations")).scalar()
        assert rows == 1 and len(await store.calls(0, 2**62)) == 2
    finally:
        await store.close()


@pytest.mark.parametrize("exc, is_refused", [
    (ConnectionRefusedError(111, "refused"), False),
    (TimeoutError(), False),
    (LedgerError("ledger sqlite:///x: OperationalError: database is locked"), False),
    (sa_exc.OperationalError("INSERT", {}, Exception("database is locked")), False),
    (sa_exc.IntegrityError("INSERT", {}, Exception("NOT NULL constraint failed")), True),
    (sa_exc.DataError("INSERT", {}, Exception("value out of range")), True),
    (OverflowError("Python int too large to convert to SQLite INTEGER"), True),
    (UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed"), True),
    (RuntimeError("a bug"), False),
    (sqlite3.ProgrammingError("Error binding parameter 4: type 'list' is not supported"), True),
    (sqlite3.ProgrammingError("Cannot operate on a closed database."), False),
    (sqlite3.OperationalError("database is locked"), False),
])
def test_refused_or_away(exc: BaseException, is_refused: bool) -> None:
    assert qr.refused(exc) is is_refused


def test_a_sqlstate_decides_for_drivers_errors() -> None:
    class PgError(Exception):
        def __init__(self, sqlstate: str) -> None:
            self.sqlstate = sqlstate
    assert qr.refused(PgError("22003"))          # numeric_value_out_of_range
    assert qr.refused(PgError("23502"))          # not_null_violation
    assert not qr.refused(PgError("08006"))      # connection_failure
    assert not qr.refused(PgError("57P01"))      # admin_shutdown


async def test_the_flow_on_is_counted_shown_and_listed(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """One bad record between two good ones, in ivr's real app: two written, one
    quarantined, the counter at 1, /readyz and `ivr ledger quarantine --json` show it."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    with socket.socket() as refusing:
        refusing.bind(("127.0.0.1", 0))
        app = build(Config(ami=AmiConfig(port=refusing.getsockname()[1]),
                           ledger=LedgerConfig(url=url, spool=str(tmp_path / "spool.jsonl"))))
        async with TestClient(TestServer(make_web(app))) as client:
            for r in (call(1), refused_call(2), call(3)):
                app.ledger.submit(r)
            assert await app.ledger.flush()
            assert len(await app.store.run(Store.calls, 0, 2**62)) == 2
            ledger = (await (await client.get("/readyz")).json())["ledger"]
            assert ledger["quarantined"] == 1 and ledger["dropped"] == 0 and ledger["ok"]
            metrics = await (await client.get("/metrics")).text()
            assert "ivr_ledger_quarantined_records_total 1.0" in metrics
    config = tmp_path / "ivr.toml"
    config.write_text(f'[ledger]\nurl = "{url}"\nspool = "{tmp_path / "spool.jsonl"}"\n')
    capsys.readouterr()
    assert cli.main(["ledger", "quarantine", "--json", "--config", str(config)]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["count"] == 1 and listed["path"] == str(tmp_path / "spool.quarantine.jsonl")
    (entry,) = listed["records"]
    assert entry["item"]["call"]["uniqueid"] == "1796000000.2" and entry["error"]
    assert cli.main(["ledger", "quarantine", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "call default/1796000000.2" in out and "1 record(s) quarantined" in out


def test_an_empty_quarantine_lists_nothing(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "ivr.toml"
    config.write_text(f'[ledger]\nurl = "sqlite:///{tmp_path / "l.db"}"\n'
                      f'spool = "{tmp_path / "spool.jsonl"}"\n')
    assert cli.main(["ledger", "quarantine", "--json", "--config", str(config)]) == 0
    assert json.loads(capsys.readouterr().out)["records"] == []


def test_a_foreign_file_where_the_quarantine_goes_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    foreign = tmp_path / "spool.quarantine.jsonl"
    foreign.write_bytes(b"somebody's notes\n")
    config = tmp_path / "ivr.toml"
    config.write_text(f'[ledger]\nurl = "sqlite:///{tmp_path / "l.db"}"\n'
                      f'spool = "{tmp_path / "spool.jsonl"}"\n')
    assert cli.main(["ledger", "quarantine", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "not ivr's" in err
    assert foreign.read_bytes() == b"somebody's notes\n"


def test_the_listing_reads_a_damaged_quarantine_and_changes_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    held = tmp_path / "spool.quarantine.jsonl"
    good = {"at_us": 1, "error": "OverflowError: too big", "item": {"call": {"uniqueid": "1.1"}}}
    content = (b'{"ivr_quarantine":1}\n' + json.dumps(good).encode() + b"\n[1, 2]\nnot json\n"
               + b'{"at_us": 2, "error": "x", "it')      # an append in progress
    held.write_bytes(content)
    config = tmp_path / "ivr.toml"
    config.write_text(f'[ledger]\nurl = "sqlite:///{tmp_path / "l.db"}"\n'
                      f'spool = "{tmp_path / "spool.jsonl"}"\n')
    assert cli.main(["ledger", "quarantine", "--json", "--config", str(config)]) == 0
    records = json.loads(capsys.readouterr().out)["records"]
    assert records[0] == good
    assert [r["error"] for r in records[1:]] == ["unreadable line 3", "unreadable line 4",
                                                 "unreadable line 5"]
    assert held.read_bytes() == content          # read only: nothing cut


async def test_a_torn_quarantine_line_is_cut_before_the_next_record(store: Store,
                                                                   tmp_path: Path) -> None:
    held = tmp_path / "spool.quarantine.jsonl"
    held.write_bytes(b'{"ivr_quarantine":1}\n{"at_us": 2, "error": "x", "it')   # a crash mid-append
    writer = LedgerWriter(store, Spool(tmp_path / "spool.jsonl", 100))
    assert writer.quarantine.count == 0
    writer.submit(refused_call(1))
    assert await writer.flush()
    (kept,) = quarantined(held)
    assert kept["item"]["call"]["uniqueid"] == "1796000000.1"


async def test_a_spool_line_of_the_wrong_types_is_quarantined(store: Store, tmp_path: Path) -> None:
    """A spool line edited by hand: the JSON decodes, the database cannot take it."""
    path = tmp_path / "spool.jsonl"
    Spool(path, 100).append([call(1)])
    wrong = rec.to_dict(call(2))
    wrong["caller"] = [1, 2]        # no driver encodes a list as text
    with path.open("ab") as f:
        f.write(json.dumps({"call": wrong}).encode() + b"\n")
    Spool(path, 100).append([call(3)])
    writer = LedgerWriter(store, Spool(path, 100))
    assert await writer.flush()
    assert [c.uniqueid for c in await store.calls(0, 2**62)] == ["1796000000.1", "1796000000.3"]
    (kept,) = quarantined(writer.quarantine.path)
    assert kept["item"]["call"]["caller"] == [1, 2]
