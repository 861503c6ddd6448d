"""The `ivr` command: help, config errors, and `ivr run` as a real process.

The process tests never need the lab PBX: AMI credentials come from the
environment and point at a local port that is bound but not listening, so
every connect is refused at once.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import free_port
from tests.helpers import http_get as get

from ivr.cli.main import main

IVR = Path(sys.executable).with_name("ivr")
SECRET = "cli-Secr3t-never-logged"
IVR_VARS = ("IVR_CONFIG", "IVR_LISTEN", "IVR_LOG_LEVEL", "IVR_AMI_HOST", "IVR_AMI_PORT",
            "IVR_AMI_USERNAME", "IVR_AMI_SECRET", "IVR_LAB_DIR")


@pytest.fixture(autouse=True)
def clean_ivr_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process runs read os.environ: keep the developer's IVR_* out of them."""
    for var in IVR_VARS:
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def refusing_port() -> Iterator[int]:
    """A port bound but not listening: connects are refused and nobody can take it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def ivr_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in IVR_VARS}
    env["IVR_LAB_DIR"] = str(tmp_path / "lab")  # a run must never touch the real lab
    env.update(extra)
    return env


def ami_env(tmp_path: Path, ami_port: int) -> dict[str, str]:
    return ivr_env(tmp_path, IVR_AMI_PORT=str(ami_port), IVR_AMI_USERNAME="ivr-test",
                   IVR_AMI_SECRET=SECRET)


def help_text(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 0
    return capsys.readouterr().out


def poll(url: str, until: int, timeout: float = 10.0) -> tuple[int, str]:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            status, body = get(url)
            if status == until:
                return status, body
            last = status
        except OSError as exc:  # not listening yet
            last = exc
        time.sleep(0.05)
    raise AssertionError(f"{url} did not answer {until} within {timeout} s (last: {last!r})")


# -- help --------------------------------------------------------------------

def test_top_level_help_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    out = help_text(capsys, ["--help"])
    for word in ("run", "lab", "demo", "SLA", "Prometheus"):
        assert word in out


def test_run_help_says_what_a_user_needs(capsys: pytest.CaptureFixture[str]) -> None:
    out = help_text(capsys, ["run", "--help"])
    for word in ("/metrics", "/healthz", "/readyz", "IVR_AMI_SECRET", "IVR_CONFIG",
                 "--listen", "--config", "--log-level", "9105", "5038"):
        assert word in out, word
    assert "2 bad configuration" in " ".join(out.split())


def test_lab_help_says_what_a_user_needs(capsys: pytest.CaptureFixture[str]) -> None:
    out = help_text(capsys, ["lab", "--help"])
    for word in ("up", "down", "status", "IVR_LAB_DIR", "root", "5038"):
        assert word in out, word


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2
    assert "usage: ivr" in capsys.readouterr().err


# -- bad configuration: exit 2, one line ---------------------------------------

def assert_bad_config(code: int, err: str, *needles: str) -> None:
    assert code == 2
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("ivr: bad config:")
    for needle in needles:
        assert needle in lines[0]


def test_bad_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "ivr.toml"
    path.write_text("[ami]\nport = \"abc\"\n")
    code = main(["run", "--config", str(path)])
    captured = capsys.readouterr()
    assert_bad_config(code, captured.err, "ami.port")
    assert captured.out == ""


def test_missing_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.toml"
    code = main(["run", "--config", str(missing)])
    assert_bad_config(code, capsys.readouterr().err, str(missing))


def test_bad_config_named_by_ivr_config(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "ivr.toml"
    path.write_text("colour = \"blue\"\n")
    monkeypatch.setenv("IVR_CONFIG", str(path))
    code = main(["run"])
    assert_bad_config(code, capsys.readouterr().err, "colour")


def test_bad_listen_flag(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["run", "--listen", "nohost"])
    assert_bad_config(code, capsys.readouterr().err, "--listen", "'nohost'")


def test_bad_config_from_the_console_script(tmp_path: Path) -> None:
    path = tmp_path / "ivr.toml"
    path.write_text("[ami\n")
    done = subprocess.run([str(IVR), "run", "--config", str(path)], env=ivr_env(tmp_path),
                          capture_output=True, text=True, timeout=10)
    assert_bad_config(done.returncode, done.stderr, "not valid TOML")


def test_run_without_an_ami_user_nor_a_running_lab_is_one_line(tmp_path: Path) -> None:
    done = subprocess.run([str(IVR), "run"], env=ivr_env(tmp_path),
                          capture_output=True, text=True, timeout=10)
    assert_bad_config(done.returncode, done.stderr, "no AMI username configured",
                      "IVR_AMI_USERNAME", "ivr lab up")
    assert not (tmp_path / "lab").exists()    # no lab secrets made up on the way


# -- ivr run as a process --------------------------------------------------------

def test_run_with_listen_port_taken_exits_1(tmp_path: Path, taken_port: int,
                                            refusing_port: int) -> None:
    address = f"127.0.0.1:{taken_port}"
    done = subprocess.run([str(IVR), "run", "--listen", address],
                          env=ami_env(tmp_path, refusing_port),
                          capture_output=True, text=True, timeout=10)
    assert done.returncode == 1, done.stderr
    errors = [line for line in done.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1, done.stderr
    assert f"cannot listen on {address}" in errors[0]
    assert "address already in use" in errors[0].lower()
    assert "Traceback" not in done.stderr


@pytest.fixture
def running(tmp_path: Path, refusing_port: int) -> Iterator[tuple[subprocess.Popen[bytes], int,
                                                                  Path]]:
    """`ivr run` against a PBX that refuses connections; yields (process, http port, stderr)."""
    http_port = free_port()
    stderr = tmp_path / "stderr.log"
    with stderr.open("wb") as err:
        proc = subprocess.Popen([str(IVR), "run", "--listen", f"127.0.0.1:{http_port}",
                                 "--log-level", "DEBUG", "--trace-ami"],
                                env=ami_env(tmp_path, refusing_port),
                                stdout=subprocess.DEVNULL, stderr=err)
    try:
        yield proc, http_port, stderr
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def test_run_against_unreachable_pbx_serves_and_stops_cleanly(
        running: tuple[subprocess.Popen[bytes], int, Path], refusing_port: int) -> None:
    proc, http_port, stderr = running
    base = f"http://127.0.0.1:{http_port}"

    poll(f"{base}/healthz", until=200)

    deadline = time.monotonic() + 10
    while True:
        status, body = get(f"{base}/readyz")
        ready = json.loads(body)
        if ready["last_error"] is not None or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert status == 503
    assert ready["ready"] is False
    assert ready["ami_up"] is False
    assert ready["last_error"] == f"connection refused to 127.0.0.1:{refusing_port}"

    status, metrics = get(f"{base}/metrics")
    assert status == 200
    lines = metrics.splitlines()
    assert 'ivr_ami_up{pbx="default"} 0.0' in lines
    assert 'ivr_queue_entered_total{pbx="default",queue="first-line"} 0.0' in lines

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0
    log = stderr.read_text()
    assert "connection refused" in log
    assert "event loop uvloop" in log     # ivr.service.run, what a deployment runs
    assert "ivr-test@127.0.0.1" in log  # the credentials were read and reached the logs...
    assert SECRET not in log  # ...but never the secret


# -- ivr lab status ------------------------------------------------------------

def test_lab_status_json_when_no_lab(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IVR_LAB_DIR", str(tmp_path))
    code = main(["lab", "status", "--json"])
    status = json.loads(capsys.readouterr().out)
    assert code == 3
    assert status["running"] is False
    assert status["pid"] is None
    assert status["root"] == str(tmp_path / "root")
    assert set(status["ami"]) == {"host", "port", "username", "secret"}
    assert (status["ami"]["host"], status["ami"]["port"]) == ("127.0.0.1", 5038)
    assert status["ami"]["secret"]


def test_lab_status_dir_flag_wins_over_env(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IVR_LAB_DIR", str(tmp_path / "from-env"))
    code = main(["lab", "--dir", str(tmp_path / "from-flag"), "status"])
    out = capsys.readouterr().out
    assert code == 3
    assert out.startswith("lab stopped;")
    assert str(tmp_path / "from-flag" / "root") in out
