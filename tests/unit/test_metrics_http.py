"""/metrics as `ivr run` serves it, on real sockets: the process's own series beside
ivr's, no `_created` series, ivr_build_info with the version; and http.metrics_listen,
/metrics alone on an address of its own, checked and refused as http.listen is."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import ivr
from ivr.cli.main import main
from ivr.config import AmiConfig, Config, LedgerConfig, load
from ivr.service import start
from tests.helpers import free_port, http_get

IVR = Path(sys.executable).with_name("ivr")


def config_for(tmp_path: Path, metrics_listen: tuple[str, int] | None = None) -> Config:
    return Config(ami=AmiConfig(port=free_port()), listen_port=free_port(),
                  ledger=LedgerConfig(url=f"sqlite:///{tmp_path / 'ledger.db'}"),
                  metrics_listen=metrics_listen)


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


# -- http.metrics_listen: /metrics alone on an address of its own ------------------------

def test_metrics_listen_from_the_file_then_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "ivr.toml"
    path.write_text('[http]\nlisten = "127.0.0.1:9105"\nmetrics_listen = "0.0.0.0:9106"\n')
    assert load(path, {}).metrics_listen == ("0.0.0.0", 9106)
    assert load(path, {"IVR_METRICS_LISTEN": "[::1]:9107"}).metrics_listen == ("::1", 9107)
    assert load(None, {}).metrics_listen is None


@pytest.mark.parametrize(("toml", "env", "needles"), [
    ('metrics_listen = "nohost"', {}, ("http.metrics_listen", "HOST:PORT", "'nohost'")),
    ('metrics_listen = "127.0.0.1:65536"', {}, ("http.metrics_listen", "HOST:PORT")),
    ("", {"IVR_METRICS_LISTEN": ":9106"}, ("IVR_METRICS_LISTEN", "HOST:PORT")),
    ('listen = "127.0.0.1:9200"\nmetrics_listen = "127.0.0.1:9200"', {},
     ("http.metrics_listen", "127.0.0.1:9200", "http.listen")),
    ('listen = "127.0.0.1:9200"\nmetrics_listen = "0.0.0.0:9200"', {},
     ("http.metrics_listen", "0.0.0.0:9200", "http.listen")),
])
def test_a_bad_metrics_listen_is_one_line_and_exit_2(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        toml: str, env: dict[str, str], needles: tuple[str, ...]) -> None:
    for var in [v for v in os.environ if v.startswith("IVR_")]:
        monkeypatch.delenv(var)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    path = tmp_path / "ivr.toml"
    path.write_text(f'[http]\n{toml}\n[ami]\nusername = "ivr"\n')
    assert main(["run", "--config", str(path)]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("ivr: bad config:") and all(n in line for n in needles), line


async def test_metrics_listen_serves_metrics_alone_on_a_real_socket(tmp_path: Path) -> None:
    metrics_port = free_port()
    config = config_for(tmp_path, metrics_listen=("127.0.0.1", metrics_port))
    app, runner = await start(config)
    main_url, metrics_url = (f"http://127.0.0.1:{port}" for port in (config.listen_port,
                                                                     metrics_port))
    try:
        app.metrics.entered.labels(pbx="default", queue="common").inc()
        (status, text), (main_status, main_text) = [await scrape(f"{url}/metrics")
                                                    for url in (metrics_url, main_url)]
        assert status == main_status == 200
        line = 'ivr_queue_entered_total{pbx="default",queue="common"} 1.0'
        assert line in text.splitlines() and line in main_text.splitlines()  # one registry
        # Nothing but /metrics there: no health, no API, no console, no dialplan.
        for path in ("/healthz", "/readyz", "/api/v1/queues", "/console", "/dialplan/v1/entry"):
            assert (await scrape(metrics_url + path))[0] == 404, path
        assert (await scrape(main_url + "/healthz"))[0] == 200
    finally:
        await runner.cleanup()
    assert (await scrape(f"{metrics_url}/metrics"))[0] == 0     # closed with the main site


def test_a_taken_metrics_port_is_one_line_and_exit_1(tmp_path: Path) -> None:
    with socket.socket() as taken, socket.socket() as refusing:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        refusing.bind(("127.0.0.1", 0))      # bound, not listening: AMI connects are refused
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("IVR_")}
        env.update(IVR_LAB_DIR=str(tmp_path / "lab"), IVR_AMI_USERNAME="ivr-test",
                   IVR_AMI_SECRET="metrics-Secr3t", IVR_AMI_PORT=str(refusing.getsockname()[1]),
                   IVR_METRICS_LISTEN=address, IVR_LEDGER_URL=f"sqlite:///{tmp_path / 'l.db'}")
        done = subprocess.run([str(IVR), "run", "--listen", f"127.0.0.1:{free_port()}"], env=env,
                              capture_output=True, text=True, timeout=20)
    assert done.returncode == 1, done.stderr
    errors = [line for line in done.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1 and f"cannot listen on {address}: address already in use" in errors[0], \
        done.stderr
    assert "Traceback" not in done.stderr
