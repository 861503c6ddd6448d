"""Config that cannot hurt: every number has a range, and an error never shows a secret."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from ivr.cli import main as cli
from ivr import config as cfg
from ivr.config import BOUNDS, ConfigError, load

# Where each bounded key lives in a config file.
TABLES = {"port": "ami", "ping_interval": "ami", "ping_timeout": "ami",
          "sla_seconds": "queues.a", "ticket_due_hours": "desk", "complaint_deadline_days": "desk",
          "repeat_window_seconds": "routing", "spool_max_records": "ledger",
          "short_abandon_seconds": "report", "max_days": "report", "deadline_seconds": "report",
          "service_level_target": "report",
          "retention_days": "ledger", "attempts": "callback", "retry_seconds": "callback",
          "ring_seconds": "callback"}


def error_of(tmp_path: Path, text: str) -> str:
    path = tmp_path / "ivr.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load(path, {})
    message = str(err.value)
    assert "\n" not in message
    return message


def test_every_number_of_the_config_has_a_bound() -> None:
    classes = [cfg.AmiConfig, cfg.QueueConfig, cfg.ApiConfig, cfg.DeskConfig, cfg.RoutingConfig,
               cfg.LedgerConfig, cfg.ReportConfig, cfg.PromptsConfig]
    numeric = {f.name for c in classes for f in dataclasses.fields(c)
               if str(f.type).startswith(("int", "float"))}
    assert numeric and numeric <= set(BOUNDS), numeric - set(BOUNDS)


@pytest.mark.parametrize("key", sorted(set(BOUNDS) - {"overflow_after_seconds"}))
def test_each_number_out_of_its_range_is_one_line_naming_the_key_and_range(tmp_path: Path,
                                                                          key: str) -> None:
    least, most, _ = BOUNDS[key]
    table = TABLES[key]
    for value in (least / 2 if least > 0 else -1, most * 2):
        shown = int(value) if key in ("port", "spool_max_records", "max_days",
                                      "retention_days", "attempts", "ring_seconds") else value
        if isinstance(shown, int) and shown == least:
            shown = least - 1
        message = error_of(tmp_path, f"[{table}]\n{key} = {shown!r}\n")
        assert message.startswith(f"{table}.{key}: expected"), message
        assert f"from {least:g} to {most:g}" in message, message


def test_overflow_after_seconds_is_bounded_too(tmp_path: Path) -> None:
    message = error_of(tmp_path, '[queues.a]\n[queues.b]\noverflow_to = "a"\n'
                                 "overflow_after_seconds = 1e9\n")
    assert message.startswith("queues.b.overflow_after_seconds: expected float from 1 to 3600")


@pytest.mark.parametrize("text, key", [
    ("[ami]\nping_interval = 0.000001\n", "ami.ping_interval"),     # 45,927 Pings in 9 s
    ("[desk]\ncomplaint_deadline_days = 1e300\n", "desk.complaint_deadline_days"),
    ("[desk]\nticket_due_hours = 87601\n", "desk.ticket_due_hours"),  # past ten years
    ("[ami]\nping_timeout = nan\n", "ami.ping_timeout"),
    ("[report]\nmax_days = 0\n", "report.max_days"),
])
def test_the_findings_are_refused(tmp_path: Path, text: str, key: str) -> None:
    assert error_of(tmp_path, text).startswith(key)


def test_the_service_level_target_is_a_share(tmp_path: Path) -> None:
    assert load_text(tmp_path, "").report.service_level_target == 0.8
    assert load_text(tmp_path, "[report]\nservice_level_target = 0.95\n").report.service_level_target == 0.95
    assert load_text(tmp_path, "[report]\nservice_level_target = 1\n").report.service_level_target == 1
    for wrong in ("0", "80", "1.01", '"high"'):
        assert error_of(tmp_path, f"[report]\nservice_level_target = {wrong}\n").startswith(
            "report.service_level_target: expected float"), wrong
    assert "from 0.01 to 1, got 80" in error_of(tmp_path, "[report]\nservice_level_target = 80\n")


def test_the_bounds_themselves_are_allowed(tmp_path: Path) -> None:
    config = load_text(tmp_path, "[ami]\nping_interval = 0.5\nping_timeout = 600\n"
                                 "[desk]\ncomplaint_deadline_days = 3650\n[report]\nmax_days = 3660\n")
    assert config.ami.ping_interval == 0.5 and config.report.max_days == 3660


def load_text(tmp_path: Path, text: str) -> cfg.Config:
    path = tmp_path / "ivr.toml"
    path.write_text(text)
    return load(path, {})


SECRET = 1234567890123


@pytest.mark.parametrize("text, key", [
    (f"[ami]\nsecret = {SECRET}\n", "ami.secret"),
    (f"[pbx.east]\nsecret = {SECRET}\n", "pbx.east.secret"),
    (f"[api]\ntoken = {SECRET}\n", "api.token"),
    (f"[api]\ntoken = [{SECRET}]\n", "api.token"),
    (f"[ledger]\nurl = {SECRET}\n", "ledger.url"),
    (f'[ami]\nsecret = {{ value = "{SECRET}" }}\n', "ami.secret"),
])
def test_an_error_never_shows_a_secret(tmp_path: Path, text: str, key: str) -> None:
    message = error_of(tmp_path, text)
    assert message.startswith(f"{key}: expected str, got ") and str(SECRET) not in message


def test_ivr_run_says_it_in_one_line_and_exits_2(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "ivr.toml"
    path.write_text(f'[ami]\nusername = "ivr"\nsecret = {SECRET}\nping_interval = 0.000001\n')
    assert cli.main(["run", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and str(SECRET) not in err
    assert "ami.secret: expected str, got int" in err


def test_a_retention_of_zero_keeps_forever_and_under_30_days_is_refused(tmp_path: Path) -> None:
    assert load_text(tmp_path, "[ledger]\nretention_days = 0\n").ledger.retention_days == 0
    assert load_text(tmp_path, "[ledger]\nretention_days = 30\n").ledger.retention_days == 30
    assert error_of(tmp_path, "[ledger]\nretention_days = 7\n") == (
        "ledger.retention_days: expected int 0 (off) or from 30 to 36500 days, got 7")
