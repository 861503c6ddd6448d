"""The lab PBX itself: status, and what a customer can and cannot reach."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from ivr.lab import traffic
from ivr.lab.pbx import Lab

pytestmark = pytest.mark.lab
IVR = str(Path(sys.executable).with_name("ivr"))


def test_status_json_gives_ami_credentials(lab: Lab) -> None:
    done = subprocess.run([IVR, "lab", "status", "--json"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0
    status = json.loads(done.stdout)
    assert status["running"] is True
    assert status["ami"] == {"host": "127.0.0.1", "port": 5038, "username": "ivr",
                             "secret": lab.status().ami.secret}
    secret = Path(status["root"]).parent / "secrets" / "ami"
    assert secret.stat().st_mode & 0o777 == 0o600


def test_the_root_names_this_machine_without_dns(lab: Lab) -> None:
    """Asterisk looks up its own hostname for every call's media: no DNS query may be needed."""
    for name in (socket.gethostname(), "localhost"):
        done = subprocess.run(["chroot", str(lab.root), "getent", "hosts", name],
                              capture_output=True, text=True, timeout=10)
        assert done.returncode == 0 and done.stdout.split()[0] in ("127.0.0.1", "::1"), (name, done)


@pytest.mark.parametrize("number", ["8801", "100", "9000", "op1", "eng1", "first-line", "common", "engineers"])
def test_customers_reach_only_the_hotline(lab: Lab, phones: list[traffic.Sipp], number: str) -> None:
    call = traffic.expect_404(number)
    phones.append(call)
    assert call.wait(timeout=20) == 0, f"dialling {number} did not get a SIP 404"


def test_the_hotline_itself_is_not_a_404(lab: Lab, phones: list[traffic.Sipp]) -> None:
    """The check above can fail: 8800 answers, so expecting a 404 there fails."""
    call = traffic.expect_404("8800")
    phones.append(call)
    assert call.wait(timeout=20) != 0
