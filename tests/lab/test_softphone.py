"""A real softphone on the lab: headless baresip registers as operator op1
and auto-answers a first-line queue call (docs/softphone.md).

Needs the Debian package baresip-core (`baresip`); without it the tests skip,
or fail when CI=true. At the end baresip is stopped (it unregisters on
SIGTERM) and the lab forgets every registration anyway: a stale contact
would make later lab tests ring a dead softphone next to SIPp.
"""

from __future__ import annotations

import re
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from ivr.lab import traffic
from ivr.lab.pbx import Lab
from tests.helpers import require_tool, eventually

pytestmark = pytest.mark.lab

AGENT = "op1"
# Paused while op1 takes the test call, so that the queue rings op1 first.
OTHERS = ("op2", "op3", "op4")
# Outside Asterisk's RTP range (20000-30000, rtp.conf) and SIPp's (31000 up).
RTP_PORTS = "45000-45999"


@dataclass
class Softphone:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    def output(self) -> str:
        return self.log.read_bytes().decode(errors="replace").replace("\r", "\n")


def _free(port: int, kind: socket.SocketKind) -> bool:
    with socket.socket(socket.AF_INET, kind) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def sip_port() -> int:
    """A port for baresip: it binds UDP and TCP on it, and TCP on the next one."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port < 65535 and all(_free(p, k) for p, k in (
                (port, socket.SOCK_DGRAM), (port, socket.SOCK_STREAM),
                (port + 1, socket.SOCK_STREAM))):
            return port
    raise AssertionError("no free port pair for baresip")


def write_config(folder: Path, port: int, password: str) -> None:
    # Headless: audio goes through aubridge (an in-process bridge, no sound
    # device); no stdio UI, since stdin is not a terminal.
    (folder / "config").write_text(f"""\
poll_method     epoll
sip_listen      127.0.0.1:{port}
audio_player    aubridge,{AGENT}
audio_source    aubridge,{AGENT}
audio_alert     aubridge,{AGENT}
rtp_ports       {RTP_PORTS}
module_path     /usr/lib/baresip/modules
module          g711.so
module          aubridge.so
module_app      account.so
module_app      menu.so
""")
    (folder / "accounts").write_text(
        f"<sip:{AGENT}@127.0.0.1>;auth_pass={password};regint=300;"
        "answermode=auto;audio_codecs=PCMU,PCMA\n")
    (folder / "accounts").chmod(0o600)


def contacts(lab: Lab) -> str:
    return lab.cli("pjsip show contacts")


def registered(lab: Lab, port: int) -> bool:
    # baresip registers a contact like sip:op1-0x55d0...@127.0.0.1:PORT.
    pattern = rf"\b{AGENT}/sip:{AGENT}[^@\s]*@127\.0\.0\.1:{port}\b"
    return re.search(pattern, contacts(lab)) is not None


@pytest.fixture
def softphone(lab: Lab, tmp_path: Path) -> Iterator[Softphone]:
    tool = require_tool("baresip", "baresip-core")
    folder = tmp_path / "baresip"
    folder.mkdir()
    port = sip_port()
    write_config(folder, port, lab.status().agent_passwords[AGENT])
    log = tmp_path / "baresip.log"
    with log.open("wb") as out:
        process = subprocess.Popen([tool, "-f", str(folder)], stdin=subprocess.DEVNULL,
                                   stdout=out, stderr=subprocess.STDOUT)
    phone = Softphone(process, port, log)
    try:
        yield phone
    finally:
        if process.poll() is None:
            process.terminate()  # SIGTERM: baresip unregisters, then exits
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        lab.hangup_all()
        lab.forget_registrations()


async def test_baresip_registers_as_an_operator(lab: Lab, softphone: Softphone) -> None:
    await eventually(lambda: registered(lab, softphone.port), timeout=15,
                     interval=0.5, what=f"baresip contact for {AGENT}\n{softphone.output()}")
    # The static contact stays next to it.
    assert f"{AGENT}/sip:{AGENT}@127.0.0.1:" in contacts(lab)

    softphone.process.terminate()
    assert softphone.process.wait(10) == 0
    await eventually(lambda: not registered(lab, softphone.port), timeout=10,
                     interval=0.5, what="baresip unregistered on SIGTERM")


async def test_baresip_auto_answers_a_queue_call(lab: Lab, softphone: Softphone,
                                                 phones: list[traffic.Sipp]) -> None:
    await eventually(lambda: registered(lab, softphone.port), timeout=15,
                     interval=0.5, what=f"baresip contact for {AGENT}\n{softphone.output()}")
    log_before = len(lab.queue_log())
    for other in OTHERS:
        lab.cli(f"queue pause member PJSIP/{other} queue first-line reason softphone-test")
    try:
        call = traffic.callers(1, hold_ms=8000, number_prefix="7950")
        phones.append(call)

        def answered() -> bool:
            return f"|first-line|{AGENT}|CONNECT|" in lab.queue_log()[log_before:]

        await eventually(answered, timeout=20, interval=0.2,
                         what=f"{AGENT} (baresip) answering\n{softphone.output()}")
        assert call.wait(timeout=20) == 0
        assert "Call established" in softphone.output()
    finally:
        for other in OTHERS:
            lab.cli(f"queue unpause member PJSIP/{other} queue first-line")
