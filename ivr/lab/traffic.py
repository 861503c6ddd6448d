"""SIPp user agents for the lab: agents that ring then answer, and callers.

Each SIPp gets its own signalling port and media port (it binds the media
port and the one two above, so media ports are handed out four apart).
"""

from __future__ import annotations

import itertools
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from string import Template

from ivr.lab.pbx import AGENTS, SIP_PORT, LabError

SCENARIOS = Path(__file__).with_name("sipp")
HOTLINE = "8800"
_media_ports = itertools.count(31000, 4)
_caller_ports = itertools.count(5200)


def _free(ports: itertools.count[int]) -> int:
    """The next port of `ports` no other process holds on 127.0.0.1 (UDP): a SIPp left
    running by an earlier, killed run keeps its ports, and a SIPp given one exits."""
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise LabError("no free port")      # an endless count: never reached


@dataclass
class Sipp:
    """One running SIPp process; stop() ends it, wait() lets it finish."""

    name: str
    process: subprocess.Popen[bytes]
    workdir: Path
    _stopped: bool = field(default=False, repr=False)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def wait(self, timeout: float) -> int:
        return self.process.wait(timeout)

    def invites(self) -> int:
        """Calls it was sent (run with -trace_msg): INVITEs of distinct Call-IDs, so a
        retransmission is not a second dial."""
        calls: set[str] = set()
        for log in self.workdir.glob("*_messages.log"):
            for block in log.read_text(errors="replace").split("\n\n"):
                if block.lstrip().startswith("INVITE sip:"):
                    calls.update(line.split(":", 1)[1].strip() for line in block.splitlines()
                                 if line.lower().startswith("call-id:"))
        return len(calls)

    def stats(self) -> dict[str, str]:
        """SIPp's last statistics row (run with stats=True): TotalCallCreated, FailedCall(C)..."""
        files = sorted(self.workdir.glob("*_.csv"))
        if not files:
            return {}
        lines = [line for line in files[-1].read_text().splitlines() if line.strip()]
        return dict(zip(lines[0].split(";"), lines[-1].split(";")))


def agent(name: str, ring_ms: int, offset: int = 0) -> Sipp:
    """The SIP phone of lab agent `name`: rings ring_ms, then answers.  `offset`: a
    named lab's (Lab.offset), whose agents listen that much higher."""
    port = AGENTS[name] + offset
    return _start(f"agent-{name}{'-' + str(offset) if offset else ''}", "agent.xml",
                  {"ring_ms": ring_ms}, ["-p", str(port)], SIP_PORT + offset)


CUSTOMER_PORT = 5300      # where the lab's trunk calls customers back (pjsip_head.conf)


def customer(ring_ms: int, talk_ms: int = 0) -> Sipp:
    """The phone of every customer the lab calls back (127.0.0.1:5300): rings ring_ms,
    then answers (longer than callback.ring_seconds: never); with talk_ms it hangs up
    that long after answering, else the other end does.  `invites()` counts the calls
    it was sent."""
    values: dict[str, object] = {"ring_ms": ring_ms, "talk_ms": talk_ms}
    scenario = "customer.xml" if talk_ms else "agent.xml"
    return _start("customer", scenario, values, ["-p", str(CUSTOMER_PORT), "-trace_msg"])


def transferring_agent(name: str, ring_ms: int, talk_ms: int, target: str = "9000") -> Sipp:
    """An operator who answers, talks talk_ms, then blind-transfers the caller to `target`."""
    values = {"ring_ms": ring_ms, "talk_ms": talk_ms, "target": target, "name": name}
    return _start(f"agent-{name}", "agent_transfer.xml", values, ["-p", str(AGENTS[name])])


def forwarding_agent(name: str, target: str) -> Sipp:
    """The phone of lab agent `name`, forwarded: every call gets a 302 to `target`."""
    return _start(f"agent-{name}", "agent_forward.xml", {"target": target},
                  ["-p", str(AGENTS[name])])


def callers(count: int, hold_ms: int, rate: float = 10.0,
            number_prefix: str = "7900", service: str = HOTLINE,
            concurrent: int | None = None, stats: bool = False, sip_port: int = SIP_PORT) -> Sipp:
    """`count` customers calling `service`, each on the line for hold_ms."""
    args = ["-s", service, "-m", str(count), "-r", str(rate), "-rp", "1000",
            "-l", str(concurrent or count), "-p", str(_free(_caller_ports))]
    if stats:
        args += ["-trace_stat", "-fd", "1"]
    return _start(f"callers-{number_prefix}", "caller.xml",
                  {"hold_ms": hold_ms, "number_prefix": number_prefix}, args, sip_port)


_INFO = """  <send retrans="500">
    <![CDATA[
      INFO sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:$number_prefix[call_number]@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: $cseq INFO
      Max-Forwards: 70
      Content-Type: application/dtmf-relay
      Content-Length: [len]

      Signal=$digit
      Duration=160
    ]]>
  </send>
  <recv response="200"/>
  <pause milliseconds="250"/>
"""


def typing_caller(digits: str, type_after_ms: int, hold_ms: int,
                  number_prefix: str = "5550", service: str = HOTLINE) -> Sipp:
    """One customer who types `digits` on the keypad (SIP INFO) type_after_ms after answer;
    each "," in `digits` is a pause of a second (as a person listening to a prompt)."""
    keys = digits.replace(",", "")
    blocks, cseq = [], 2
    for d in digits:
        if d == ",":
            blocks.append('  <pause milliseconds="1000"/>\n')
            continue
        blocks.append(Template(_INFO).substitute(number_prefix=number_prefix, cseq=cseq, digit=d))
        cseq += 1
    values = {"hold_ms": hold_ms, "type_after_ms": type_after_ms, "number_prefix": number_prefix,
              "digits": keys, "dtmf": "".join(blocks), "bye_cseq": cseq}
    args = ["-s", service, "-m", "1", "-p", str(_free(_caller_ports))]
    return _start(f"typing-{number_prefix}", "caller_dtmf.xml", values, args)


def transferring_caller(talk_ms: int, target: str, service: str = HOTLINE,
                        number_prefix: str = "7985") -> Sipp:
    """One customer who calls `service`, and talk_ms after the call is up
    blind-transfers whoever is on the other end (REFER) to `target`."""
    args = ["-s", service, "-m", "1", "-p", str(_free(_caller_ports))]
    values = {"talk_ms": talk_ms, "target": target, "number_prefix": number_prefix}
    return _start(f"transferring-{number_prefix}", "caller_transfer.xml", values, args)


def expect_404(service: str, number_prefix: str = "7999") -> Sipp:
    """One customer dialling `service`; SIPp exits 0 only if it gets a 404."""
    args = ["-s", service, "-m", "1", "-p", str(_free(_caller_ports)), "-recv_timeout", "5000"]
    return _start(f"rejected-{service}", "rejected.xml", {"number_prefix": number_prefix}, args)


def _start(name: str, scenario: str, values: dict[str, object], args: list[str],
           sip_port: int = SIP_PORT) -> Sipp:
    if shutil.which("sipp") is None:
        raise LabError("sipp is not installed (run `make setup`)")
    workdir = Path(tempfile.mkdtemp(prefix=f"ivr-{name}-"))
    xml = workdir / scenario
    xml.write_text(Template((SCENARIOS / scenario).read_text()).substitute(values))
    cmd = ["sipp", "-sf", str(xml), "-i", "127.0.0.1", "-mp", str(_free(_media_ports)),
           "-nostdin", "-trace_err", *args, f"127.0.0.1:{sip_port}"]
    process = subprocess.Popen(cmd, cwd=workdir, stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return Sipp(name, process, workdir)
