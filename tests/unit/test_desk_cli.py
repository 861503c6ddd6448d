"""`ivr report downtime` and `ivr report fcr` from the shell, over a real SQLite ledger."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from pathlib import Path

import pytest

from ivr.cli.main import main
from ivr.ledger.store import Store
from tests.unit.test_desk_api import ROOT, answered

H = 3600 * 1_000_000
T0 = 1_796_000_000 * 1_000_000          # 2026-11-30T00:53:20Z


def incident(id_: str, area: str, opened_h: float, hours: float, closed: bool = True) -> dict[str, object]:
    opened = int(T0 + opened_h * H)
    end = opened + int(hours * H)
    return {"id": id_, "area": area, "message": "outage", "opened_us": opened,
            "expires_us": end if not closed else end + 10 * H,
            "closed_us": end if closed else None, "opened_by": "eng1", "closed_by": "eng1" if closed else None}


@pytest.fixture
def ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    db = tmp_path / "ledger.db"
    store = Store(f"sqlite:///{db}")

    async def fill() -> None:
        await store.migrate()
        await store.history("incidents", [incident("inc-a", "north", 1, 2),
                                          incident("inc-b", "*", 2, 2, closed=False),
                                          incident("inc-c", "south", 30, 1)])
        await store.write([answered(n) for n in range(3)])
        await store.close()
    asyncio.run(fill())
    config = tmp_path / "ivr.toml"
    config.write_text(f'[routing]\ndirectory = "{ROOT}/ivr/lab/files/subscribers.csv"\n')
    monkeypatch.setenv("IVR_LEDGER_URL", f"sqlite:///{db}")
    monkeypatch.setenv("IVR_CONFIG", str(config))
    return db


def test_downtime_per_account_as_csv_and_json(ledger: Path, capsys: pytest.CaptureFixture[str]) -> None:
    period = ["--from", "2026-11-30T00:00:00Z", "--to", "2026-12-01T00:00:00Z"]
    assert main(["report", "downtime", *period]) == 0
    rows = {r["account"]: r for r in csv.DictReader(io.StringIO(capsys.readouterr().out))}
    # north: inc-a (1-3 h) and everywhere inc-b (2-4 h): 3 h, overlap once.
    assert rows["100101"]["area"] == "north" and float(rows["100101"]["downtime_seconds"]) == 3 * 3600
    assert rows["100101"]["incidents"] == "inc-a inc-b"
    # south: only inc-b today (inc-c is tomorrow): 2 h.
    assert float(rows["100201"]["downtime_seconds"]) == 2 * 3600
    assert main(["report", "downtime", *period, "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    [north] = [a for a in doc["accounts"] if a["account"] == "100101"]
    assert north["downtime_seconds"] == 10800 and len(north["incidents"]) == 2


def test_downtime_needs_the_directory(ledger: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    monkeypatch.setenv("IVR_CONFIG", str(empty))
    assert main(["report", "downtime", "--from", "2026-11-30", "--to", "2026-12-01"]) == 2
    assert capsys.readouterr().err.strip() == "ivr: no routing.directory: the report needs the accounts"


def test_first_contact_resolution_from_the_shell(ledger: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "fcr", "--from", "2026-11-29", "--to", "2026-12-01"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["operators"][0]["operator"] == "op2" and doc["operators"][0]["answered"] == 3
