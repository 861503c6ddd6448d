"""`ivr ledger backup`: a consistent copy while ivr writes, 0600, whole or not there.

SQLite through the online backup API while another connection writes; PostgreSQL
through pg_dump -Fc into the throwaway cluster of tests/pg.py, restored with
pg_restore and counted.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import sqlite3
import subprocess
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import pytest

from ivr.cli.main import main
from ivr.ledger import backup
from ivr.ledger.store import Store
from tests import pg
from tests.helpers import require_tool

T0 = 1_764_547_200_000_000          # 2025-12-01T00:00:00Z in µs
NAME = re.compile(r"ledger-\d{8}T\d{6}Z\.(db|pgdump)")


def migrated(url: str) -> None:
    async def go() -> None:
        store = Store(url)
        await store.migrate()
        await store.close()
    asyncio.run(go())


def insert_call(db: sqlite3.Connection, i: int) -> None:
    """One call and its two visits, in one transaction, as ivr's writer commits a batch."""
    with db:
        db.execute("INSERT INTO calls (pbx, uniqueid, linkedid, caller, account, area, "
                   "entered_us, ended_us, outcome, payable, source, precision, answered_queue, "
                   "answered_member) VALUES ('default', ?, ?, '79100000000', 'A1', 'north', ?, ?, "
                   "'answered', 1, 'live', 'ms', 'first-line', 'op1')",
                   (f"u{i}", f"u{i}", T0 + i, T0 + i + 1))
        for seq in (1, 2):
            db.execute("INSERT INTO visits (pbx, uniqueid, seq, queue, entered_us, outcome, "
                       "member, source) VALUES ('default', ?, ?, 'first-line', ?, 'answered', "
                       "'op1', 'live')", (f"u{i}", seq, T0 + i))


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    path = tmp_path / "ledger.db"
    migrated(f"sqlite:///{path}")
    return path


def config(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "ivr.toml"
    path.write_text(f'[ami]\nusername = "ivr"\n[ledger]\nurl = "{url}"\n')
    return path


@pytest.fixture
def writing(ledger: Path) -> Iterator[list[int]]:
    """Another connection writing calls into the ledger (WAL) until the test ends;
    yields the number written so far."""
    written = [0]
    stop = threading.Event()

    def write() -> None:
        db = sqlite3.connect(ledger, timeout=5)
        db.execute("PRAGMA journal_mode=WAL")
        while not stop.is_set():
            insert_call(db, written[0])
            written[0] += 1
        db.close()
    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    try:
        while written[0] < 200:
            threading.Event().wait(0.005)
        yield written
    finally:
        stop.set()
        thread.join(10)


def test_a_sqlite_backup_is_consistent_while_another_connection_writes(
        tmp_path: Path, ledger: Path, writing: list[int],
        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "backups"
    out.mkdir()
    before = writing[0]
    code = main(["ledger", "backup", "--out", str(out), "--config",
                 str(config(tmp_path, f"sqlite:///{ledger}"))])
    after = writing[0]
    printed = capsys.readouterr().out.strip()
    assert code == 0
    made = Path(printed)
    assert made.parent == out and NAME.fullmatch(made.name), printed
    assert [p.name for p in out.iterdir()] == [made.name]      # no temporary left
    assert made.stat().st_mode & 0o777 == 0o600
    copy = sqlite3.connect(made)
    calls = copy.execute("SELECT count(*) FROM calls").fetchone()[0]
    visits = copy.execute("SELECT count(*) FROM visits").fetchone()[0]
    assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert copy.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert copy.execute("SELECT version_num FROM alembic_version").fetchone()[0]
    copy.close()
    # One snapshot, taken during the command (the counter moves just after each commit).
    assert before <= calls <= after + 1 and visits == 2 * calls
    deadline = time.monotonic() + 10
    while writing[0] <= calls + 100:                 # the writer was never held up
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_the_json_form_and_a_second_backup_in_the_same_second(
        tmp_path: Path, ledger: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "b"
    out.mkdir()
    assert main(["ledger", "backup", "--out", str(out), "--json", "--config",
                 str(config(tmp_path, f"sqlite:///{ledger}"))]) == 0
    said = json.loads(capsys.readouterr().out)
    assert set(said) == {"path", "database", "bytes", "at"}
    assert said["database"] == "sqlite" and said["bytes"] == Path(said["path"]).stat().st_size
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    first = backup.backup(f"sqlite:///{ledger}", out, at)
    assert first.path.name == "ledger-20260102T030405Z.db"
    with pytest.raises(backup.BackupRefused, match="exists already"):
        backup.backup(f"sqlite:///{ledger}", out, at)
    assert len(list(out.iterdir())) == 2


@pytest.mark.parametrize("case", ["no folder", "no ledger", "no pg_dump"])
def test_refusals_are_one_line_exit_2_and_write_nothing(
        tmp_path: Path, ledger: Path, case: str, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    out, url = tmp_path / "out", f"sqlite:///{ledger}"
    out.mkdir()
    if case == "no folder":
        out = tmp_path / "missing"
    elif case == "no ledger":
        url = f"sqlite:///{tmp_path / 'typo' / 'ledger.db'}"
    else:
        url = "postgresql://ivr@127.0.0.1:1/ivr"
        monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    conf = config(tmp_path, url)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    code = main(["ledger", "backup", "--out", str(out), "--config", str(conf)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("ivr: "), err
    assert {"no folder": "no such folder", "no ledger": "no ledger at",
            "no pg_dump": "pg_dump is not on PATH"}[case] in err
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_pg_dump_gets_the_password_in_its_environment_not_its_arguments(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    def fake(argv: list[str], env: dict[str, str], **_: Any) -> subprocess.CompletedProcess[str]:
        seen.update(argv=argv, env=env)
        return subprocess.CompletedProcess(argv, 1, "", "pg_dump: error: connection refused\n")
    monkeypatch.setattr(shutil, "which", lambda _: "/usr/bin/pg_dump")
    monkeypatch.setattr(subprocess, "run", fake)
    with pytest.raises(backup.BackupFailed) as err:
        backup.backup("postgresql+asyncpg://ivr:s3cret@db:5433/ivr", tmp_path)
    assert str(err.value) == ("pg_dump of postgresql+asyncpg://ivr:***@db:5433/ivr exited 1: "
                              "pg_dump: error: connection refused")
    assert "s3cret" not in " ".join(seen["argv"]) and seen["env"]["PGPASSWORD"] == "s3cret"
    assert seen["argv"][-1] == "postgresql://ivr@db:5433/ivr"
    assert list(tmp_path.iterdir()) == []        # the temporary file went with the failure


def test_a_postgresql_backup_restores(tmp_path: Path, pg_url: str,
                                      pg_cluster: pg.PgCluster) -> None:
    require_tool("pg_dump", "postgresql-client")
    restore = require_tool("pg_restore", "postgresql-client")
    migrated(pg_url)
    db = pg_url.rsplit("/", 1)[1]
    psql = [str(pg_cluster.bin / "psql"), "-h", "127.0.0.1", "-p", str(pg_cluster.port),
            "-U", pg.SUPERUSER, "-At", "-c"]
    subprocess.run([*psql, "INSERT INTO incidents VALUES ('i1', 'north', 'fibre cut', 1, 2, "
                    "NULL, 'admin', NULL)", db], check=True, capture_output=True)
    made = backup.backup(pg_url, tmp_path)
    assert made.kind == "postgresql" and made.path.suffix == ".pgdump"
    assert made.path.stat().st_mode & 0o777 == 0o600
    target = pg_cluster.createdb(f"{db}_restored").rsplit("/", 1)[1]
    subprocess.run([restore, "-h", "127.0.0.1", "-p", str(pg_cluster.port), "-U", pg.SUPERUSER,
                    "-d", target, str(made.path)], check=True, capture_output=True)
    counted = subprocess.run([*psql, "SELECT count(*) FROM incidents", target],
                             check=True, capture_output=True, text=True)
    assert counted.stdout.strip() == "1"
    assert os.listdir(tmp_path) == [made.path.name]
