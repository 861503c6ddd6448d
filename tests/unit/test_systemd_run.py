"""`ivr run` as the kit's systemd/ivr.service runs it: another user, credentials, a state directory.

As root, the test does what systemd does for the unit: it runs ivr as an
unprivileged UID (nobody, through setpriv) with the unit's umask, gives it a 0700 credentials folder
of its own (CREDENTIALS_DIRECTORY) holding the tokens and the AMI secret, and a
0700 state folder (STATE_DIRECTORY), with no AMI to reach.  The config names a
root-owned 0600 tokens file that this user cannot read, as /etc/ivr/tokens is
on a host: the credential is what makes it work.  Without root, setpriv, or a
Python that user may run, the test skips (fails with CI=true).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

from tests.helpers import free_port, http_get, require

UID = GID = 65534          # nobody, nogroup
UMASK = 0o077              # the unit's UMask=
ROOT = Path(__file__).resolve().parents[2]
TOKEN = "office-anna-credential-0000000001"
AMI_SECRET = "ami-secret-from-the-credential"
LAUNCH = ("import site, sys; site.addsitedir(sys.argv.pop(1)); "
          "from ivr.cli.main import main; sys.exit(main())")


def as_nobody(*argv: str) -> list[str]:
    return ["setpriv", f"--reuid={UID}", f"--regid={GID}", "--clear-groups", "--", *argv]


def python_for_nobody(env: dict[str, str]) -> str | None:
    """A Python of this version that nobody may run, with this venv's packages (whose
    interpreter may live under root's 0700 home): sys.executable, else the system's."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for candidate in (sys.executable, f"/usr/bin/{version}"):
        done = subprocess.run(as_nobody(candidate, "-c", LAUNCH.split("from")[0] + "import ivr",
                                        sysconfig.get_paths()["purelib"]),
                              env=env, capture_output=True, timeout=30, cwd="/")
        if done.returncode == 0:
            return candidate
    return None


def owned(path: Path, mode: int, text: str | None = None) -> Path:
    if text is None:
        path.mkdir()
    else:
        path.write_text(text)
    os.chown(path, UID, GID)
    path.chmod(mode)
    return path


@pytest.fixture
def host() -> Iterator[Path]:
    """A folder everyone may enter (pytest's tmp_path is root's 0700 one)."""
    require(os.geteuid() == 0, "running ivr as another user needs root")
    require(shutil.which("setpriv") is not None, "setpriv is missing (util-linux)")
    folder = Path(tempfile.mkdtemp(prefix="ivr-unit-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_ivr_runs_as_the_unit_runs_it(host: Path) -> None:
    secret_file = host / "tokens"                    # as /etc/ivr/tokens: root's, 0600
    secret_file.write_text(f"admin root {'r' * 30}\n")
    secret_file.chmod(0o600)
    creds = owned(host / "credentials", 0o700)
    owned(creds / "tokens", 0o400, f"office anna {TOKEN}\n")
    owned(creds / "ami-secret", 0o400, AMI_SECRET + "\n")
    state = owned(host / "state", 0o700)
    port, ami = free_port(), free_port()             # nothing listens on `ami`
    config = host / "ivr.toml"
    config.write_text(f'[ami]\nport = {ami}\nusername = "ivr"\n'
                      f'[api]\ntokens_file = "{secret_file}"\n')
    config.chmod(0o644)
    env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8", "PYTHONPATH": str(ROOT),
           "HOME": "/nonexistent", "STATE_DIRECTORY": str(state)}
    python = python_for_nobody(env)
    require(python is not None, "no Python that uid 65534 may run (the venv's lives under a "
                                "0700 home, and /usr/bin has none of this version)")
    assert python is not None
    argv = as_nobody(python, "-c", LAUNCH, sysconfig.get_paths()["purelib"], "run",
                     "--config", str(config), "--listen", f"127.0.0.1:{port}")

    # Without the credential the unit's user cannot read root's tokens file: one line, exit 2.
    refused = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, cwd="/",
                             umask=UMASK)
    assert refused.returncode == 2, refused.stderr
    assert f"api.tokens_file {secret_file}: Permission denied" in refused.stderr

    log = host / "stderr.log"
    with log.open("wb") as err:
        proc = subprocess.Popen(argv, env={**env, "CREDENTIALS_DIRECTORY": str(creds)},
                                stdout=subprocess.DEVNULL, stderr=err, cwd="/", umask=UMASK)
    try:
        deadline = time.monotonic() + 30
        while http_get(f"http://127.0.0.1:{port}/healthz")[0] != 200:
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        status, body = http_get(f"http://127.0.0.1:{port}/readyz")
        assert status == 503 and json.loads(body)["ami_up"] is False
        assert ask(port, TOKEN) == 200                   # the credential's token
        assert ask(port, "r" * 30) == 401                # the unreadable file's: never read
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = log.read_text()
    assert "connection refused" in text and AMI_SECRET not in text and TOKEN not in text
    for made in ("ledger.db", "registry.key"):           # ivr's files, in the state folder
        info = (state / made).stat()
        assert (info.st_uid, info.st_mode & 0o077) == (UID, 0), made


def ask(port: int, token: str) -> int:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/queues",
                                     headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
