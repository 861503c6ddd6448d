"""`ivr ledger reconcile` at scale (issue 21, item 5) from the command line: several
queue_log files and rotated .gz ones, a damaged .gz, a period that seeks, the realtime
table filtered by the database, bad input, and the progress bar on a terminal."""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import sqlite3
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from ivr.cli import progress
from ivr.cli.main import main
from ivr.ledger.realtime import bound
from ivr.ledger.store import Store

ROOT = Path(__file__).resolve().parents[2]
LAB_LOG = ROOT / "tests" / "fixtures" / "queue_log" / "lab.queue_log"
T = 1_796_000_000                # 2026-11-30T00:53:20Z


def conf(tmp_path: Path) -> Path:
    db = tmp_path / "ledger.db"
    path = tmp_path / "ivr.toml"
    path.write_text(f'[ledger]\nurl = "sqlite:///{db}"\n')
    if not db.exists():
        assert main(["ledger", "migrate", "--config", str(path)]) == 0
    return path


def ivr(capsys: pytest.CaptureFixture[str], tmp_path: Path, *argv: str) -> tuple[int, str, str]:
    path = conf(tmp_path)
    capsys.readouterr()
    code = main(["ledger", "reconcile", *argv, "--config", str(path)])
    out, err = capsys.readouterr()
    return code, out, err


def reconciled(capsys: pytest.CaptureFixture[str], tmp_path: Path, *argv: str
               ) -> tuple[int, dict[str, Any]]:
    code, out, err = ivr(capsys, tmp_path, *argv, "--json")
    assert code in (0, 3), err
    body: dict[str, Any] = json.loads(out)
    return code, body


def calls(n: int, start: int = T, every: int = 40) -> list[str]:
    """n calls answered after 5 s, `every` seconds apart, as queue_log lines in order."""
    rows = []
    for i in range(n):
        at = start + every * i
        rows += [(at, f"{at}|{T}.{i}|first-line|NONE|ENTERQUEUE||7910{i}|1\n"),
                 (at + 5, f"{at + 5}|{T}.{i}|first-line|PJSIP/op1|CONNECT|5|x|1\n"),
                 (at + 65, f"{at + 65}|{T}.{i}|first-line|PJSIP/op1|COMPLETECALLER|5|60|1\n")]
    return [line for _, line in sorted(rows, key=lambda r: r[0])]


def test_rotated_files_in_any_order_read_as_one(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    lines = calls(300)
    whole = tmp_path / "whole"
    whole.write_text("".join(lines))
    old = tmp_path / "queue_log.2.gz"
    old.write_bytes(gzip.compress("".join(lines[:300]).encode()))
    (tmp_path / "queue_log.1").write_text("".join(lines[300:600]))
    (tmp_path / "queue_log").write_text("".join(lines[600:]))
    _, want = reconciled(capsys, tmp_path, "--queue-log", str(whole))
    assert len(want["missing_in_ledger"]) == 300
    _, got = reconciled(capsys, tmp_path, "--queue-log", str(tmp_path / "queue_log"),
                        str(old), str(tmp_path / "queue_log.1"))
    assert got == want


def test_a_cut_short_gz_is_read_up_to_the_damage_and_said_in_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = gzip.compress("".join(calls(3000)).encode())
    cut = tmp_path / "queue_log.2.gz"
    cut.write_bytes(data[: len(data) * 2 // 3])
    code, out, err = ivr(capsys, tmp_path, "--queue-log", str(cut), "--json")
    assert code == 3
    (line,) = err.strip().splitlines()
    assert line.startswith(f"ivr: {cut} is damaged after line ") and "cut short" in line
    body = json.loads(out)
    (damage,) = body["damaged"]
    assert damage["file"] == str(cut) and 0 < damage["after_line"] < 9000
    assert 0 < len(body["missing_in_ledger"]) < 3000
    code, out, err = ivr(capsys, tmp_path, "--queue-log", str(cut))
    assert code == 3 and "damaged" in out.splitlines()[-1] and len(err.strip().splitlines()) == 1


def test_a_period_reads_its_part_of_the_file_and_agrees_with_the_whole_read(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "queue_log"
    path.write_text("".join(calls(6000, every=60)))           # about four days
    day = ["--from", "2026-12-01", "--to", "2026-12-02"]
    _, whole = reconciled(capsys, tmp_path, "--queue-log", str(path))
    _, part = reconciled(capsys, tmp_path, "--queue-log", str(path), *day)
    lo = int(datetime(2026, 12, 1, tzinfo=timezone.utc).timestamp())
    assert part["missing_in_ledger"] == [s for s in whole["missing_in_ledger"]
                                         if lo <= s["entered_s"] < lo + 86400]
    assert len(part["missing_in_ledger"]) == 1440
    code, out, _ = ivr(capsys, tmp_path, "--queue-log", str(path), *day, "--backfill")
    assert code == 3 and out.splitlines()[-1].endswith("(1440 backfilled)")
    code, part = reconciled(capsys, tmp_path, "--queue-log", str(path), *day)
    assert code == 0 and part["matched"] == 1440


@pytest.mark.parametrize("argv, said", [
    (["--from", "2026-12-02", "--to", "2026-12-01"], "--from 2026-12-02 is not before --to"),
    (["--from", "2026-12-01"], "give --from and --to together"),
])
def test_a_bad_period_is_one_line_and_exit_2(argv: list[str], said: str, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = ivr(capsys, tmp_path, "--queue-log", str(LAB_LOG), *argv)
    assert code == 2 and out == "" and said in err and len(err.strip().splitlines()) == 1


def test_several_files_one_not_a_queue_log_is_refused_before_anything(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    passwd = tmp_path / "passwd"
    passwd.write_text("root:x:0:0:root:/root:/bin/bash\n")
    code, out, err = ivr(capsys, tmp_path, "--queue-log", str(LAB_LOG), str(passwd), "--backfill")
    assert code == 2 and out == ""
    assert err.strip() == (f"ivr: {passwd} is not a queue_log: none of its 1 line(s) reads as "
                           f"one (too few fields (1, need at least 5), line 1)")
    missing = tmp_path / "nope"
    code, out, err = ivr(capsys, tmp_path, "--queue-log", str(LAB_LOG), str(missing))
    assert code == 1 and err.strip() == f"ivr: cannot read queue_log {missing}: No such file or directory"


# -- the realtime table, filtered by the database -----------------------------------

def table(path: Path, kind: str, lines: list[str]) -> str:
    """A realtime queue_log table in SQLite, its time column as `kind` has it."""
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE queue_log (id INTEGER PRIMARY KEY, time TEXT, callid TEXT, "
               "queuename TEXT, agent TEXT, event TEXT, data1 TEXT, data2 TEXT, data3 TEXT, "
               "data4 TEXT, data5 TEXT)")
    db.execute("CREATE INDEX queue_log_time ON queue_log (time)")
    for line in lines:
        epoch, *rest = line.rstrip("\n").split("|")
        fields = (rest + [""] * 9)[:9]
        stamp: object = {"epoch": epoch, "iso": datetime.fromtimestamp(
            int(epoch), timezone.utc).strftime("%Y-%m-%d %H:%M:%S.000000"),
                         "int": int(epoch)}[kind]
        db.execute("INSERT INTO queue_log (time, callid, queuename, agent, event, data1, data2,"
                   " data3, data4, data5) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   (stamp, *fields))
    db.commit()
    db.close()
    return f"sqlite:///{path}"


@pytest.mark.parametrize("kind", ["epoch", "iso", "int"])
def test_the_table_read_over_a_period_is_the_file_read_over_it(
        kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = calls(6000, every=60)
    path = tmp_path / "queue_log"
    path.write_text("".join(lines))
    url = table(tmp_path / "asterisk.db", kind, lines)
    day = ["--from", "2026-12-01", "--to", "2026-12-02"]
    _, from_file = reconciled(capsys, tmp_path, "--queue-log", str(path), *day)
    _, from_table = reconciled(capsys, tmp_path, "--queue-log-db", url, *day)
    assert from_table == from_file and len(from_table["missing_in_ledger"]) == 1440
    _, whole = reconciled(capsys, tmp_path, "--queue-log-db", url)
    assert len(whole["missing_in_ledger"]) == 6000


def test_a_bound_takes_the_form_of_the_time_column() -> None:
    at = datetime.fromtimestamp(T, timezone.utc)
    assert bound(at, T) == at and bound(at.replace(tzinfo=None), T) == at.replace(tzinfo=None)
    assert bound("1796117591", T) == str(T) and bound("1796117591.25", T) == str(T)
    assert bound(1796117591, T) == T
    assert bound("2026-12-01 09:33:11.000123", T) == "2026-11-30 00:53:20"
    assert bound("2026-12-01T09:33:11", T) == "2026-11-30T00:53:20"


async def test_the_table_is_streamed_in_batches(tmp_path: Path) -> None:
    url = table(tmp_path / "asterisk.db", "epoch", calls(100))
    db = Store(url, read_only=True)
    try:
        sizes = [len(b) async for b in db.row_batches("queue_log", T + 400, T + 2000, size=7)]
        rows = await db.rows("queue_log", T + 400, T + 2000)
    finally:
        await db.close()
    assert max(sizes) == 7 and sum(sizes) == len(rows)
    assert all(T + 400 <= int(r[0]) < T + 2000 for r in rows)
    assert [int(r[0]) for r in rows] == sorted(int(r[0]) for r in rows)


# -- progress: on a terminal only, never with --json -----------------------------------

class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("json_out", [False, True])
def test_progress_is_drawn_on_a_terminal_and_never_with_json(
        json_out: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "queue_log"
    path.write_text("".join(calls(3000)))
    terminal = Terminal()
    conf(tmp_path)
    capsys.readouterr()
    monkeypatch.setattr("sys.stderr", terminal)
    argv = ["ledger", "reconcile", "--queue-log", str(path), "--config",
            str(tmp_path / "ivr.toml"), *(["--json"] if json_out else [])]
    assert main(argv) == 3
    out = capsys.readouterr().out
    if json_out:
        assert terminal.getvalue() == "" and json.loads(out)["matched"] == 0
    else:
        assert "reconcile" in terminal.getvalue()          # rich drew its bar, then cleared it
        assert out.splitlines()[-1] == "the ledger and queue_log do not agree: 3000 missing in the ledger"


def test_progress_is_wanted_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    import argparse
    monkeypatch.setattr("sys.stderr", io.StringIO())
    assert not progress.wanted(argparse.Namespace(json=False))
    monkeypatch.setattr("sys.stderr", Terminal())
    assert progress.wanted(argparse.Namespace(json=False))
    assert not progress.wanted(argparse.Namespace(json=True))
    assert not progress.wanted(argparse.Namespace(format="json"))
    assert progress.wanted(argparse.Namespace(format="csv"))


def test_the_lab_queue_log_gives_what_it_gave(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    from ivr.reconcile.compare import reconcile
    from ivr.reconcile.read import read_file
    log = read_file(LAB_LOG, {"first-line": 30})
    entries = [s.entered_s for s in log.stints()]
    want = reconcile(log, [], min(entries), max(entries) + 1, {"first-line": 30}).to_json()
    _, got = reconciled(capsys, tmp_path, "--queue-log", str(LAB_LOG))
    assert got == json.loads(json.dumps(want))
    asyncio.run(asyncio.sleep(0))
