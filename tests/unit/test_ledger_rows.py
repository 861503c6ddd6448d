"""The typed history rows: each is its table's columns, no more and no fewer, and what
the writer keeps of one is what the store reads back."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from ivr.ledger import rows, schema
from ivr.ledger.spool import Spool
from ivr.ledger.store import Store
from ivr.ledger.writer import LedgerWriter

TYPED = (rows.Escalation, rows.RouteDecision, rows.RepeatCall, rows.OperatorAction,
         rows.IncidentRow)


@pytest.mark.parametrize("row", TYPED, ids=lambda r: r.table)
def test_a_typed_row_has_its_tables_columns(row: type[rows.HistoryRow]) -> None:
    table = schema.metadata.tables[row.table]
    columns = {c.name for c in table.columns if not (c.primary_key and c.autoincrement is True)}
    assert {f.name for f in fields(row)} == columns


def test_an_incident_close_names_the_incidents_columns_it_sets() -> None:
    closing = {f.name for f in fields(rows.IncidentClose)}
    assert closing <= {c.name for c in schema.incidents.columns}
    assert rows.history(rows.IncidentClose("inc-1", 5, "api")).table == rows.INCIDENT_CLOSES


async def test_kept_rows_are_read_back_typed(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'ledger.db'}")
    writer = LedgerWriter(store, Spool(tmp_path / "spool.jsonl", 100))
    writer.keep(rows.IncidentRow("inc-a", "north", "A fibre cut.", 1_000_000, 9_000_000, "api"))
    writer.keep(rows.IncidentRow("inc-b", "south", "Power works.", 2_000_000, 9_000_000, "api"))
    writer.keep(rows.IncidentClose("inc-b", 3_000_000, "supervisor"))
    writer.keep(rows.Escalation("default", "1.1", 4_000_000, "api", "accepted", ""))
    try:
        assert await writer.flush()
        assert await store.open_incidents(5_000_000) == [
            rows.IncidentRow("inc-a", "north", "A fibre cut.", 1_000_000, 9_000_000, "api")]
    finally:
        await store.close()
