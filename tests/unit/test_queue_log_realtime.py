"""`ivr ledger reconcile --queue-log-db`: Asterisk's realtime queue_log table in
PostgreSQL (contrib/realtime layout) reads as the file does.  The rows are our
lab's queue_log, put into a real PostgreSQL table the way res_config_pgsql
writes them (time as a timestamp, data1..data5)."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import TypedDict

import pytest
from sqlalchemy import text

from ivr.cli.main import main
from ivr.ledger.store import Store

LAB_LOG = Path(__file__).resolve().parents[1] / "fixtures" / "queue_log" / "lab.queue_log"
TABLE = """CREATE TABLE queue_log (
    id BIGSERIAL PRIMARY KEY, time TIMESTAMP, callid VARCHAR(80), queuename VARCHAR(256),
    agent VARCHAR(80), event VARCHAR(32), data1 VARCHAR(100), data2 VARCHAR(100),
    data3 VARCHAR(100), data4 VARCHAR(100), data5 VARCHAR(100))"""


class Reconciled(TypedDict):
    """`ivr ledger reconcile --json` (Reconciliation.to_json)."""

    matched: int
    missing_in_ledger: list[dict[str, object]]
    missing_in_queue_log: list[dict[str, object]]
    disagreements: list[dict[str, object]]
    backfilled: int
    bad_lines: list[dict[str, object]]
    open: int


async def _fill(url: str) -> None:
    store = Store(url)
    try:
        async with store.engine.begin() as conn:
            await conn.execute(text(TABLE))
            for line in LAB_LOG.read_text().splitlines():
                epoch, callid, queue, agent, event, *data = line.split("|")
                data = (data + [""] * 5)[:5]
                await conn.execute(text(
                    "INSERT INTO queue_log (time, callid, queuename, agent, event, data1, data2,"
                    " data3, data4, data5) VALUES (:t, :c, :q, :a, :e, :d1, :d2, :d3, :d4, :d5)"),
                    {"t": datetime.fromtimestamp(int(epoch), timezone.utc).replace(tzinfo=None),
                     "c": callid, "q": queue, "a": agent, "e": event,
                     **{f"d{i + 1}": d for i, d in enumerate(data)}})
    finally:
        await store.close()


def reconcile(capsys: pytest.CaptureFixture[str], *args: str, status: int = 3) -> Reconciled:
    """`ivr ledger reconcile --json`: exit 3 while the two disagree, 0 once they agree."""
    assert main(["ledger", "reconcile", *args, "--json"]) == status
    report: Reconciled = json.loads(capsys.readouterr().out)
    return report


def migrated_ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                    capsys: pytest.CaptureFixture[str]) -> None:
    """An empty ledger at this schema: reconcile reads it and never migrates it."""
    monkeypatch.setenv("IVR_LEDGER_URL", f"sqlite:///{tmp_path / 'ledger.db'}")
    assert main(["ledger", "migrate"]) == 0
    assert "schema at revision" in capsys.readouterr().out


def test_the_realtime_table_reads_as_the_file(pg_url: str, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    asyncio.run(_fill(pg_url))
    migrated_ledger(tmp_path, monkeypatch, capsys)
    from_file = reconcile(capsys, "--queue-log", str(LAB_LOG))
    from_db = reconcile(capsys, "--queue-log-db", pg_url)
    assert from_db == from_file
    assert from_db["bad_lines"] == [] and from_db["matched"] == 0
    assert len(from_db["missing_in_ledger"]) == 12     # every stint of the lab's run
    filled = reconcile(capsys, "--queue-log-db", pg_url, "--backfill")
    assert filled["backfilled"] == 12
    again = reconcile(capsys, "--queue-log-db", pg_url, status=0)    # all match: exit 0
    assert again["missing_in_ledger"] == [] and again["matched"] == 12


def test_a_missing_table_is_one_line(pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    migrated_ledger(tmp_path, monkeypatch, capsys)
    assert main(["ledger", "reconcile", "--queue-log-db", pg_url, "--queue-log-table", "nope"]) == 1
    err = capsys.readouterr().err.strip()
    assert "queue_log table nope" in err and "\n" not in err


@pytest.mark.parametrize("period, stints", [(("2026-12-01", "2026-12-02"), 12),
                                            (("2026-12-02", "2026-12-03"), 0),
                                            (("2026-12-01T09:34:00", "2026-12-01T10:00"), 1)])
def test_a_period_is_filtered_by_the_database_as_the_file_is_read(
        period: tuple[str, str], stints: int, pg_url: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    asyncio.run(_fill(pg_url))
    migrated_ledger(tmp_path, monkeypatch, capsys)
    window = ["--from", period[0], "--to", period[1]]
    from_file = reconcile(capsys, "--queue-log", str(LAB_LOG), *window,
                          status=3 if stints else 0)
    from_db = reconcile(capsys, "--queue-log-db", pg_url, *window, status=3 if stints else 0)
    assert from_db == from_file and len(from_db["missing_in_ledger"]) == stints


async def test_the_table_s_rows_of_a_period_come_in_batches(pg_url: str) -> None:
    await _fill(pg_url)
    db = Store(pg_url, read_only=True)
    try:
        start = int(datetime(2026, 12, 1, 9, 34, tzinfo=timezone.utc).timestamp())
        batches = [b async for b in db.row_batches("queue_log", start, start + 60, size=4)]
    finally:
        await db.close()
    rows = [r for b in batches for r in b]
    assert max(map(len, batches)) == 4 and rows
    assert all(start <= r[0].replace(tzinfo=timezone.utc).timestamp() < start + 60 for r in rows)
