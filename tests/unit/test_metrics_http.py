"""/metrics as `ivr run` serves it, on a real socket: the process's own series beside
ivr's, no `_created` series, ivr_build_info with the version."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import ivr
from ivr.config import AmiConfig, Config, LedgerConfig
from ivr.service import start
from tests.helpers import free_port, http_get


def config_for(tmp_path: Path, **given: object) -> Config:
    return Config(ami=AmiConfig(port=free_port()), listen_port=free_port(),
                  ledger=LedgerConfig(url=f"sqlite:///{tmp_path / 'ledger.db'}"), **given)


async def scrape(url: str) -> tuple[int, str]:
    # In a thread: the ivr under test serves on this very event loop.
    return await asyncio.to_thread(http_get, url)


async def test_the_exposition_has_the_process_series_and_no_created(tmp_path: Path) -> None:
    config = config_for(tmp_path)
    app, runner = await start(config)
    try:
        status, text = await scrape(f"http://127.0.0.1:{config.listen_port}/metrics")
    finally:
        await runner.cleanup()
    assert status == 200
    names = set(re.findall(r"^([a-z_]+)[{ ]", text, flags=re.M))
    assert not {n for n in names if n.endswith("_created")}, sorted(names)
    assert {"process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds",
            "process_start_time_seconds", "python_info", "python_gc_collections_total"} <= names
    assert f'ivr_build_info{{version="{ivr.__version__}"}} 1.0' in text.splitlines()
    # ivr's own families are still there, with their series at zero from the start.
    assert 'ivr_queue_entered_total{pbx="default",queue="first-line"} 0.0' in text
