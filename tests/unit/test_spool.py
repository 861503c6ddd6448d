"""The spool is ivr's own file: a header line marks it, nothing without it is read,
cut or deleted (checked byte for byte), torn lines are cut and counted."""

from __future__ import annotations

import hashlib
import json
import os
import socket
from pathlib import Path
from typing import Any

import pytest

from ivr.cli import main as cli
from ivr.app import build
from ivr.config import AmiConfig, Config, ConfigError, LedgerConfig
from ivr.ledger.spool import Spool, SpoolError
from ivr.ledger.store import Store
from ivr.ledger.writer import LedgerWriter
from tests.unit.test_ledger_writer import Flaky, call


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def uids(spool: Spool) -> list[str]:
    return [getattr(i, "uniqueid", "") for i in spool.head(100)]


@pytest.fixture
async def store(tmp_path: Path) -> Any:
    s = Store(f"sqlite:///{tmp_path / 'ledger.db'}")
    yield s
    await s.close()


@pytest.mark.parametrize("content", [
    b"",                                         # an empty file is not a spool either
    b"line one\nline two\n",
    b'{"ivr_spool":2}\n{"call":{}}\n',           # a foreign (or future) header
    b'{"other":1}\n',
    b'{"ivr_spool":1}',                          # no newline: not a header ivr wrote
    b"\x00\xff\xfe" * 100,
])
def test_a_file_that_is_not_a_spool_is_refused_and_left_byte_for_byte(
        tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "spool.jsonl"
    path.write_bytes(content)
    before = sha(path)
    with pytest.raises(SpoolError, match="not ivr's"):
        Spool(path, 100)
    assert sha(path) == before


def test_a_folder_or_a_fifo_is_refused_without_opening_it(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(SpoolError, match="not a regular file"):
        Spool(fifo, 100)      # opening a FIFO to read would block ivr's start
    with pytest.raises(SpoolError, match="not a regular file"):
        Spool(tmp_path, 100)


async def test_the_spool_pointed_at_the_ledger_is_a_config_error(store: Store,
                                                                 tmp_path: Path) -> None:
    await store.migrate()
    await store.write([call(1)])
    db = tmp_path / "ledger.db"
    before = sha(db)
    with pytest.raises(SpoolError, match="ledger database's own file"):
        LedgerWriter(store, Spool(db, 100, store.url))
    with pytest.raises(SpoolError):        # the writer checks its store's URL itself
        LedgerWriter(store, Spool(tmp_path / "ledger.db-wal", 100))
    link = tmp_path / "alias.jsonl"
    os.link(db, link)
    with pytest.raises(SpoolError):        # a hard link to it too
        LedgerWriter(store, Spool(link, 100))
    assert sha(db) == before and len(await store.calls(0, 2**62)) == 1


def test_a_ledger_not_yet_created_is_refused_as_a_spool_too(tmp_path: Path) -> None:
    db = tmp_path / "later.db"
    with pytest.raises(SpoolError, match="ledger database's own file"):
        Spool(db, 100, f"sqlite:///{db}")
    assert not db.exists()


def test_build_refuses_the_ledger_as_its_spool(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    db.write_bytes(b"SQLite format 3\x00" + b"\x00" * 100)
    before = sha(db)
    with pytest.raises(ConfigError):
        build(Config(ledger=LedgerConfig(url=f"sqlite:///{db}", spool=str(db))))
    assert sha(db) == before


@pytest.mark.parametrize("what", ["other", "ledger"])
def test_ivr_run_exits_2_in_one_line_and_leaves_the_file(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], what: str) -> None:
    db = tmp_path / "ledger.db"
    db.write_bytes(b"SQLite format 3\x00" + b"\x01" * 4000)
    other = tmp_path / "notes.txt"
    other.write_bytes(b"not a spool\n" * 50)
    target = db if what == "ledger" else other
    before = sha(target)
    with socket.socket() as refusing:
        refusing.bind(("127.0.0.1", 0))
        config = tmp_path / "ivr.toml"
        config.write_text(f'[ami]\nusername = "ivr"\nsecret = "x"\nport = '
                          f'{refusing.getsockname()[1]}\n[ledger]\nurl = "sqlite:///{db}"\n'
                          f'spool = "{target}"\n')
        assert cli.main(["run", "--config", str(config), "--listen", "127.0.0.1:0"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("ivr: bad config: ledger.spool")
    assert sha(target) == before


def test_a_new_spool_starts_with_its_header(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "spool.jsonl"
    spool = Spool(path, 100)
    assert not path.exists()            # nothing is made until a record needs it
    assert spool.append([call(1), call(2)]) == 2
    header, *lines = path.read_text().splitlines()
    assert json.loads(header) == {"ivr_spool": 1} and len(lines) == 2
    again = Spool(path, 100)
    assert again.count == 2 and uids(again) == ["1796000000.1", "1796000000.2"]
    assert [p.name for p in path.parent.iterdir()] == ["spool.jsonl"]   # no temporary left


def test_a_torn_last_line_at_start_is_cut_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "spool.jsonl"
    Spool(path, 100).append([call(1), call(2)])
    whole = path.read_bytes()
    path.write_bytes(whole + b'{"call":{"pbx":"default","uniq')    # the disk filled up here
    spool = Spool(path, 100)
    assert spool.count == 2 and spool.dropped == 1
    assert path.read_bytes() == whole
    spool.append([call(3)])            # appended after a whole line, not glued to the torn one
    assert uids(Spool(path, 100)) == ["1796000000.1", "1796000000.2", "1796000000.3"]


def test_a_torn_tail_left_by_a_failed_append_is_cut_before_the_next(tmp_path: Path) -> None:
    path = tmp_path / "spool.jsonl"
    spool = Spool(path, 100)
    spool.append([call(1)])
    with path.open("ab") as f:          # an append that failed halfway, its records held
        f.write(b'{"call":{"pbx":"def')  # by the writer in memory: not counted dropped
    spool.append([call(2)])
    assert spool.dropped == 0 and spool.count == 2
    assert uids(Spool(path, 100)) == ["1796000000.1", "1796000000.2"]


async def test_a_line_that_is_not_a_record_is_counted_dropped(store: Store,
                                                              tmp_path: Path) -> None:
    path = tmp_path / "spool.jsonl"
    Spool(path, 100).append([call(1)])
    with path.open("ab") as f:
        f.write(b'{"call": {"pbx": 1}}\nnot json\n')
    Spool(path, 100).append([call(2)])
    writer = LedgerWriter(store, Spool(path, 100))
    assert writer.backlog == 4
    assert await writer.flush()
    assert writer.dropped == 2 and writer.backlog == 0 and not path.exists()
    assert len(await store.calls(0, 2**62)) == 2


async def test_a_spool_replaced_by_a_foreign_file_is_not_deleted(store: Store,
                                                                 tmp_path: Path) -> None:
    path = tmp_path / "spool.jsonl"
    db = Flaky(store)
    writer = LedgerWriter(db, Spool(path, 100))
    db.down = True
    writer.submit(call(1))
    assert not await writer.flush()
    path.write_bytes(b"somebody else's file\n")    # replaced while ivr ran
    before = sha(path)
    db.down = False
    writer.submit(call(2))
    assert await writer.flush()
    assert path.exists() and sha(path) == before
    assert writer.dropped == 1 and len(await store.calls(0, 2**62)) == 1   # call(2)


async def test_a_full_disk_keeps_records_in_memory_and_counts_what_cannot_be_held(
        store: Store, tmp_path: Path) -> None:
    blocked = tmp_path / "folder"
    db = Flaky(store)
    db.down = True
    writer = LedgerWriter(db, Spool(blocked / "spool.jsonl", 3))
    blocked.write_text("")      # a file where its folder goes: the spool cannot be made
    for n in range(5):
        writer.submit(call(n))
    assert not await writer.flush()
    assert len(writer.pending) == 3 and writer.dropped == 2
    db.down = False
    assert await writer.flush()
    assert len(await store.calls(0, 2**62)) == 3
