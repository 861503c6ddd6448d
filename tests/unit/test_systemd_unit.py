"""systemd/ of the kit (ivr/kit/files): ivr.service valid for systemd, sandboxed, and
never tied to Asterisk; ivr-backup.service and ivr-backup.timer valid too, with ivr's
user, credentials and sandbox.

Needs `systemd-analyze` (Debian package `systemd`), but not systemd as PID 1:
`verify` and `security --offline=true` only read unit files. Without the
tool the tests skip, or fail when CI=true.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ivr.config import credentials
from ivr.kit import shipped
from tests.helpers import require_tool

SYSTEMD = shipped.directory() / "systemd"
UNIT = SYSTEMD / "ivr.service"
BACKUP = SYSTEMD / "ivr-backup.service"
TIMER = SYSTEMD / "ivr-backup.timer"
MAX_EXPOSURE = 2.0
# What ivr-backup.service may set otherwise than ivr.service: all else is the same.
BACKUP_OWN = {"Description", "Type", "ExecStart", "Nice", "IOSchedulingClass", "StateDirectory",
              "Restart", "RestartSec", "RestartPreventExitStatus", "TimeoutStopSec",
              "StartLimitIntervalSec", "After", "Wants", "WantedBy"}


@pytest.fixture(scope="module")
def analyze() -> str:
    return require_tool("systemd-analyze", "systemd")


def run(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, SYSTEMD_COLORS="0", SYSTEMD_PAGER="", LC_ALL="C.UTF-8")
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env)


def directives(text: str) -> list[tuple[str, str, str]]:
    """(section, key, value) for every assignment, in order; keys may repeat."""
    found: list[tuple[str, str, str]] = []
    section = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, _, value = line.partition("=")
        found.append((section, key.strip(), value.strip()))
    return found


def values(section: str, key: str, unit: Path = UNIT) -> list[str]:
    """Every space-separated value given to section/key (for list keys like After=)."""
    return [word for s, k, v in directives(unit.read_text()) if (s, k) == (section, key)
            for word in v.split()]


def verifiable_binary() -> str:
    """The ivr console script of the venv running the tests, else /bin/true."""
    ivr = Path(sys.executable).parent / "ivr"
    if ivr.is_file() and os.access(ivr, os.X_OK) and not re.search(r"\s", str(ivr)):
        return str(ivr)
    return "/bin/true"


def test_verify_is_clean(analyze: str, tmp_path: Path) -> None:
    # `systemd-analyze verify` also checks that ExecStart's binary exists and
    # is executable, and /opt/ivr/bin/ivr exists only on a deployed host. So
    # verify copies (same file names, in a temp dir, where the timer finds its
    # service) whose ExecStart points at this checkout's .venv/bin/ivr (or
    # /bin/true). Only the binary path changes: the shipped units stay as deployed.
    exec_start = "\nExecStart=/opt/ivr/bin/ivr "
    assert UNIT.read_text().count(exec_start) == 1, "the unit should run /opt/ivr/bin/ivr"
    assert BACKUP.read_text().count(exec_start) == 1, "the backup should run /opt/ivr/bin/ivr"
    copies = []
    for unit in (UNIT, BACKUP, TIMER):
        copy = tmp_path / unit.name
        copy.write_text(unit.read_text().replace(exec_start, f"\nExecStart={verifiable_binary()} "))
        copies.append(str(copy))

    done = run([analyze, "verify", *copies])

    assert (done.returncode, done.stdout + done.stderr) == (0, "")


@pytest.mark.parametrize("unit", [UNIT, BACKUP], ids=lambda u: u.name)
def test_exposure_is_low(analyze: str, unit: Path) -> None:
    # --offline: score the file itself, without asking a running systemd.
    # --threshold is on systemd's internal 0..100 scale (2.0 shown = 20).
    done = run([analyze, "security", "--offline=true",
                f"--threshold={int(MAX_EXPOSURE * 10)}", str(unit)])
    found = re.search(rf"Overall exposure level for {re.escape(unit.name)}: (\d+(?:\.\d+)?)",
                      done.stdout)
    assert found, done.stdout + done.stderr
    exposure = float(found.group(1))
    assert exposure <= MAX_EXPOSURE, done.stdout
    assert done.returncode == 0, done.stdout + done.stderr


def test_ordered_after_asterisk_but_never_bound_to_it() -> None:
    assert "asterisk.service" in values("Unit", "After")
    assert "network-online.target" in values("Unit", "After")
    assert "network-online.target" in values("Unit", "Wants")
    for key in ("Requires", "Requisite", "BindsTo", "PartOf", "Wants", "Upholds"):
        assert "asterisk.service" not in values("Unit", key), f"{key}=asterisk.service"


def test_restarts_on_failure_but_not_on_bad_config() -> None:
    assert values("Service", "Restart") == ["on-failure"]
    assert values("Service", "RestartSec") == ["2"]
    # Exit 2 is a bad configuration: a restart loop cannot fix it.
    assert values("Service", "RestartPreventExitStatus") == ["2"]


def test_runs_the_deployed_venv_with_the_config_and_secret_file() -> None:
    assert values("Service", "ExecStart") == [
        "/opt/ivr/bin/ivr", "run", "--config", "/etc/ivr/ivr.toml"]
    assert values("Service", "EnvironmentFile") == ["-/etc/ivr/ivr.env"]
    assert values("Service", "DynamicUser") == ["yes"]
    assert values("Service", "User") == ["ivr"]


def test_the_state_directory_is_ivrs_and_its_own() -> None:
    # ivr takes the first folder of $STATE_DIRECTORY (config.state_dir) for its ledger,
    # spool and key: the backup's list must begin with ivr's.
    assert values("Service", "StateDirectory") == ["ivr"]
    assert values("Service", "StateDirectoryMode") == ["0700"]
    assert values("Service", "StateDirectory", BACKUP) == ["ivr", "ivr-backup"]


def test_each_credential_is_one_ivr_reads_from_the_credstore() -> None:
    loaded = [v.split(":", 1) for v in values("Service", "LoadCredential")]
    names = {credentials.TOKENS, credentials.REGISTRY_KEY, credentials.LEDGER_URL,
             *credentials.PER_PBX}
    assert sorted(name for name, _ in loaded) == sorted(names)
    # Relative: looked up in /etc/credstore/ and skipped when absent (an absolute
    # path that is missing would stop the unit from starting).
    assert all(source == f"ivr.{name}" for name, source in loaded), loaded
    assert values("Service", "LoadCredential", BACKUP) == values("Service", "LoadCredential")


def test_the_backup_runs_as_ivr_in_the_same_sandbox() -> None:
    mine = {(k, v) for s, k, v in directives(UNIT.read_text()) if k not in BACKUP_OWN}
    theirs = {(k, v) for s, k, v in directives(BACKUP.read_text()) if k not in BACKUP_OWN}
    # ivr's own: it restarts on failure and reloads on SIGHUP; a oneshot backup does neither.
    assert mine - {("Restart", "on-failure"), ("ExecReload", "/bin/kill -HUP $MAINPID")} \
        == theirs, (mine ^ theirs)
    assert values("Service", "Type", BACKUP) == ["oneshot"]
    first = next(v for s, k, v in directives(BACKUP.read_text()) if k == "ExecStart")
    assert first.split() == ["/opt/ivr/bin/ivr", "ledger", "backup", "--config",
                             "/etc/ivr/ivr.toml", "--out", "/var/lib/ivr-backup"]


def test_the_timer_is_daily_persistent_and_spread() -> None:
    assert values("Timer", "OnCalendar", TIMER) == ["daily"]
    assert values("Timer", "Persistent", TIMER) == ["true"]
    assert values("Timer", "RandomizedDelaySec", TIMER) == ["2h"]
    assert values("Install", "WantedBy", TIMER) == ["timers.target"]
