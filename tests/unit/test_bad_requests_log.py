"""A request aiohttp's parser refuses is answered 400 and logged as one WARNING line,
not an ERROR with a traceback that anyone reaching the port could repeat at will."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from ivr.config import AmiConfig, Config, LedgerConfig
from ivr.service import start
from tests.helpers import free_port


async def test_a_nul_in_a_header_is_a_400_and_one_warning_line(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    port = free_port()
    config = Config(ami=AmiConfig(port=free_port()), listen_port=port,
                    ledger=LedgerConfig(url=f"sqlite:///{tmp_path / 'ledger.db'}"))
    app, runner = await start(config)
    try:
        with caplog.at_level(logging.INFO, logger="aiohttp.server"):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Probe: \x00\r\n\r\n")
            await writer.drain()
            status_line = await asyncio.wait_for(reader.readline(), 5)
            writer.close()
            assert status_line.split()[1] == b"400", status_line
            for _ in range(100):               # the log line follows the answer
                if any(r.name == "aiohttp.server" for r in caplog.records):
                    break
                await asyncio.sleep(0.01)
        records = [r for r in caplog.records if r.name == "aiohttp.server"]
        assert [(r.levelname, r.exc_info) for r in records] == [("WARNING", None)]
        line = records[0].getMessage()
        assert "refused (400)" in line and "\n" not in line, line
    finally:
        await runner.cleanup()
