"""SIGHUP (issue 21 item 7): `ivr run` takes a new tokens file, subscriber directory and
dialplan secret without a restart; a broken one keeps the old with one ERROR line.
Run as an admin would: a real `ivr run` process, real signals, real HTTP."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

from tests.helpers import free_port

TOKEN_A, TOKEN_B = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
SECRET_1, SECRET_2 = "s" * 16 + "one", "s" * 16 + "two"


class Ivr:
    def __init__(self, tmp: Path) -> None:
        self.tmp, self.port, self.ami_port = tmp, free_port(), free_port()   # AMI: nobody
        self.tokens, self.directory, self.conf = tmp / "tokens", tmp / "subs.csv", tmp / "ivr.toml"
        self.lines: list[str] = []
        self.proc: subprocess.Popen[str] | None = None

    def configure(self, secret: str, extra: str = "") -> None:
        self.conf.write_text(
            f'[ami]\nport = {self.ami_port}\nusername = "ivr"\ndialplan_secret = "{secret}"\n'
            f'[api]\ntokens_file = "{self.tokens}"\n'
            f'[routing]\ndirectory = "{self.directory}"\n'
            f'[ledger]\nurl = "sqlite:///{self.tmp / "ledger.db"}"\n{extra}')

    def write_tokens(self, text: str) -> None:
        self.tokens.write_text(text)
        self.tokens.chmod(0o600)

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "import sys; from ivr.cli.main import main; sys.exit(main())",
             "run", "--config", str(self.conf), "--listen", f"127.0.0.1:{self.port}"],
            stderr=subprocess.PIPE, text=True, cwd=self.tmp,
            env={**os.environ, "STATE_DIRECTORY": str(self.tmp)})
        threading.Thread(target=lambda: self.lines.extend(self.proc.stderr or ()),  # type: ignore[union-attr]
                         daemon=True).start()
        self.wait_for("ivr listening")

    def wait_for(self, text: str, after: int = 0) -> list[str]:
        deadline = time.monotonic() + 30
        while not (found := [x for x in self.lines[after:] if text in x]):
            assert time.monotonic() < deadline, f"{text!r} not logged: {self.lines[-5:]}"
            time.sleep(0.02)
        return found

    def hup(self, until: str) -> list[str]:
        """SIGHUP, then the log lines it gave once `until` is logged."""
        assert self.proc is not None
        mark = len(self.lines)
        self.proc.send_signal(signal.SIGHUP)
        self.wait_for(until, mark)
        time.sleep(0.2)                      # the rest of this reload's lines
        return [x for x in self.lines[mark:] if "SIGHUP" in x]

    def api(self, token: str) -> int:
        return self._get("/api/v1/queues", {"Authorization": f"Bearer {token}"})[0]

    def entry(self, secret: str, caller: str) -> tuple[int, str]:
        return self._get(f"/dialplan/v1/entry?pbx=default&uniqueid=1.{caller}&caller={caller}",
                         {"X-Ivr-Secret": secret})

    def _get(self, path: str, headers: dict[str, str]) -> tuple[int, str]:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, ""


@pytest.fixture
def ivr(tmp_path: Path) -> Iterator[Ivr]:
    running = Ivr(tmp_path)
    running.write_tokens(f"admin alice {TOKEN_A}\n")
    running.directory.write_text("number,account,area\n79101,100101,north\n")
    running.configure(SECRET_1)
    running.start()
    yield running
    if running.proc is not None and running.proc.poll() is None:
        running.proc.kill()
        running.proc.wait()


def test_sighup_takes_new_tokens_directory_and_secret_and_keeps_running(ivr: Ivr) -> None:
    assert ivr.api(TOKEN_A) == 200 and ivr.api(TOKEN_B) == 401
    status, answer = ivr.entry(SECRET_1, "79101")
    assert status == 200 and "account=100101" in answer
    assert "account=" not in ivr.entry(SECRET_1, "79202")[1].replace("ask_account", "")

    ivr.write_tokens(f"admin bob {TOKEN_B}\n")
    ivr.directory.write_text("number,account,area\n79202,200202,south\n")
    ivr.configure(SECRET_2)
    said = ivr.hup("SIGHUP: dialplan")
    assert any("tokens reloaded: 1 token(s); added admin bob, removed admin alice" in x
               for x in said), said
    assert any("directory reloaded: 1 subscriber(s); 1 added, 1 removed, 0 changed" in x
               for x in said), said
    assert any("secrets or sources changed for default" in x for x in said), said
    assert not any("wait for a restart" in x for x in said), said
    assert not any(t in "".join(ivr.lines) for t in (TOKEN_A, TOKEN_B, SECRET_1, SECRET_2))

    assert ivr.api(TOKEN_A) == 401 and ivr.api(TOKEN_B) == 200
    assert ivr.entry(SECRET_1, "79202")[0] == 401
    assert "account=200202" in ivr.entry(SECRET_2, "79202")[1]


@pytest.mark.parametrize(("breaks", "says"), [
    ("tokens", "tokens not reloaded, keeping the old"),
    ("directory", "directory not reloaded, keeping the old"),
    ("config", "config not reloaded, keeping the old"),
])
def test_a_broken_file_on_sighup_keeps_the_old_with_one_error_line(ivr: Ivr, breaks: str,
                                                                   says: str) -> None:
    if breaks == "tokens":
        ivr.write_tokens(f"admin bob {TOKEN_B}\nwizard eve {TOKEN_A}\n")    # an unknown role
    elif breaks == "directory":
        ivr.directory.write_text("number,account,area\n79202,not-an-account,south\n")
    else:
        ivr.conf.write_text("[ami\nport = ")
    said = ivr.hup(says)
    errors = [x for x in said if " ERROR " in x]
    assert len(errors) == 1 and says in errors[0] and errors[0].count("\n") <= 1, said
    assert ivr.api(TOKEN_A) == 200 and ivr.api(TOKEN_B) == 401          # as before
    assert "account=100101" in ivr.entry(SECRET_1, "79101")[1]
    assert ivr.proc is not None and ivr.proc.poll() is None


def test_other_changes_on_sighup_are_said_to_wait_for_a_restart(ivr: Ivr) -> None:
    ivr.configure(SECRET_1, extra="[report]\ntimezone = \"Europe/Moscow\"\n")
    said = ivr.hup("SIGHUP: dialplan")
    assert any("other changes of the config wait for a restart" in x for x in said), said
    assert any("secrets or sources changed for no PBX" in x for x in said), said


def test_sigterm_after_a_reload_still_stops_cleanly(ivr: Ivr) -> None:
    ivr.hup("SIGHUP: dialplan")
    assert ivr.proc is not None
    ivr.proc.send_signal(signal.SIGTERM)
    assert ivr.proc.wait(timeout=15) == 0
