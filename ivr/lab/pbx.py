"""The lab PBX: a real Asterisk 22, chrooted in a Debian unstable root.

Debian 12 has no asterisk package; unstable does.  We build a minimal root
with debootstrap once (under the cache folder), then run Asterisk chrooted
there, bound to loopback, with the shipped dialplans (ivr/kit/files/dialplans)
unchanged plus a lab-only overlay (endpoints, queue members, an AMI user with a
generated secret).  Everything a test or `make demo` needs about the running lab is in
`LabStatus`.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from string import Template

from ivr.kit import shipped

log = logging.getLogger(__name__)

FILES = Path(__file__).with_name("files")
PACKAGES = "asterisk,asterisk-modules,asterisk-config"
CONF_DIR = "etc/ivr-lab"
PIDFILE = "run/asterisk/asterisk.pid"
VAR_DIRS = ("var/lib/asterisk", "run/asterisk", "var/log/asterisk",
            "var/spool/asterisk", "var/cache/asterisk")
READY_MARK = ".ivr-lab-ready"
PROMPTS = "var/lib/asterisk/sounds/ivr"   # the dialplan's IVR_PROMPTS, inside the root
SUBSCRIBERS = FILES / "subscribers.csv"

# The topology is fixed and documented in the README: name -> SIP port.
AGENTS = {"op1": 5071, "op2": 5072, "op3": 5073, "op4": 5074, "sup1": 5075, "sup2": 5076,
          "eng1": 5081, "eng2": 5082, "gen1": 5091, "gen2": 5092}
SIP_PORT = 5060
AMI_PORT = 5038
AMI_USER = "ivr"
# A read-only monitoring user as many PBXs have one: no `dialplan` class, so no VarSet.
AMI_MONITOR_USER = "ivr-monitor"


class LabError(Exception):
    """A lab failure a person can act on; the message is one line."""


@dataclass(frozen=True)
class AmiCredentials:
    host: str
    port: int
    username: str
    secret: str


@dataclass(frozen=True)
class LabStatus:
    name: str               # "default", or a named lab's (`ivr lab up --name b`)
    running: bool
    pid: int | None
    root: str
    ami: AmiCredentials
    sip: str
    agent_passwords: dict[str, str]
    api_token: str
    prompts_dir: str
    subscribers: str
    queue_log: str          # Asterisk's queue_log file, read by `ivr ledger reconcile`
    ledger: str             # the ledger database ivr keeps for the lab
    tokens_file: str = ""   # the console's sign-in tokens, one per role (ROLE NAME TOKEN)
    dialplan_secret: str = ""   # in the lab's [globals] (IVR_DIALPLAN_SECRET); ivr's on the lab
    ami_monitor: AmiCredentials | None = None   # the same AMI without the dialplan class

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


DEFAULT_NAME = "default"
NAMED_OFFSET = 100     # a named lab's ports: SIP 5160, AMI 5138, agents 5171.., RTP 40000..


def default_cache_dir(name: str = DEFAULT_NAME) -> Path:
    env = os.environ.get("IVR_LAB_DIR")
    suffix = "" if name == DEFAULT_NAME else f"-{name}"
    if env:
        return Path(env + suffix)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "ivr" / f"lab{suffix}"


def default_dialplans_dir() -> Path:
    return shipped.directory() / "dialplans"


class Lab:
    """One lab PBX.  The default one has the documented ports; a named one (`ivr lab up
    --name b`, a second PBX for several-PBX tests) has its own folder, a copy of the
    default lab's root, and every port NAMED_OFFSET higher; its dialplan names itself
    to ivr as IVR_PBX=<name>."""

    def __init__(self, cache_dir: Path | None = None, dialplans: Path | None = None,
                 name: str = DEFAULT_NAME) -> None:
        if not re.fullmatch(r"[a-z][a-z0-9-]{0,15}", name):
            raise LabError(f"lab name {name!r}: expected a-z, 0-9 and '-', starting with a letter")
        self.name = name
        self.dir = cache_dir or default_cache_dir(name)
        self.root = self.dir / "root"
        self.dialplans = dialplans or default_dialplans_dir()
        self.offset = 0 if name == DEFAULT_NAME else NAMED_OFFSET
        self.sip_port = SIP_PORT + self.offset
        self.ami_port = AMI_PORT + self.offset
        self.agents = {agent: port + self.offset for agent, port in AGENTS.items()}

    # -- status -----------------------------------------------------------

    def running(self) -> bool:
        """Whether the lab's Asterisk runs; reads only its pid file, creates nothing."""
        return self._pid() is not None

    def status(self) -> LabStatus:
        pid = self._pid()
        return LabStatus(
            name=self.name, running=pid is not None, pid=pid, root=str(self.root),
            ami=AmiCredentials("127.0.0.1", self.ami_port, AMI_USER, self._secret("ami")),
            sip=f"127.0.0.1:{self.sip_port}",
            agent_passwords={name: self._secret(f"agent-{name}") for name in AGENTS},
            api_token=self._secret("api-token"), prompts_dir=str(self.root / PROMPTS),
            subscribers=str(SUBSCRIBERS), queue_log=str(self.queue_log_path),
            ledger=self.ledger_url(), tokens_file=str(self._tokens_file()),
            dialplan_secret=self._secret("dialplan"),
            ami_monitor=AmiCredentials("127.0.0.1", self.ami_port, AMI_MONITOR_USER,
                                       self._secret("ami-monitor")),
        )

    def _tokens_file(self) -> Path:
        """A token for each role of the console (op1, sup1, anna, eng1, and the wallboard's
        screen tv1), mode 0600.  Written once: a lab made before the wall role keeps its
        file (a second ivr on the lab may not know the role yet); `ivr tokens new wall
        tv1 --file` adds it."""
        path = self.dir / "secrets" / "tokens"
        if not path.exists():
            people = (("operator", "op1"), ("supervisor", "sup1"), ("office", "anna"),
                      ("engineer", "eng1"), ("wall", "tv1"))
            text = "".join(f"{role} {name} {self._secret('token-' + name)}-{name}\n"
                           for role, name in people)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(text)
        return path

    @property
    def queue_log_path(self) -> Path:
        return self.root / "var/log/asterisk/queue_log"

    def ledger_url(self) -> str:
        return f"sqlite:///{self.dir / 'ledger.db'}"

    def _pid(self) -> int | None:
        try:
            pid = int((self.root / PIDFILE).read_text().strip())
            os.kill(pid, 0)
        except (OSError, ValueError):
            return None
        return pid

    def _secret(self, name: str) -> str:
        """A generated secret kept in the lab folder, mode 0600."""
        path = self.dir / "secrets" / name
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(18))
        return path.read_text().strip()

    # -- up ---------------------------------------------------------------

    def up(self, fresh: bool = False, boot_timeout: float = 60.0) -> LabStatus:
        _require_root()
        if self._pid() is not None:
            if not fresh:
                return self._reload()
            self.down()
        self.build(fresh=fresh)
        _require_free_ports(self.sip_port, self.ami_port)
        self.write_config()
        self._prompts()
        self._mount()
        self._start()
        self._wait_booted(boot_timeout)
        return self.status()

    def _reload(self) -> LabStatus:
        """Already running: load this checkout's dialplans and overlay again."""
        self.write_config()
        self._prompts()
        self.cli("core reload")
        log.info("lab asterisk already running (pid %s): configuration reloaded", self._pid())
        return self.status()

    def build(self, fresh: bool = False) -> None:
        if (self.root / READY_MARK).exists() and not fresh:
            return
        if self.name != DEFAULT_NAME:
            self._copy_default_root()
            return
        if shutil.which("debootstrap") is None:
            raise LabError("debootstrap is not installed (run `make setup`)")
        self._unmount()
        tmp = self.dir / "root.new"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.parent.mkdir(parents=True, exist_ok=True)
        mirror = host_mirror()
        log.info("building the lab root with debootstrap (about a minute) into %s", tmp)
        cmd = ["debootstrap", "--variant=minbase", f"--include={PACKAGES}",
               "unstable", str(tmp), mirror]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:]
            raise LabError(f"building the lab root failed: {' '.join(tail) or done.returncode}")
        (tmp / READY_MARK).write_text(mirror + "\n")
        shutil.rmtree(self.root, ignore_errors=True)
        tmp.rename(self.root)

    def _copy_default_root(self) -> None:
        """A named lab's root is the default lab's, copied (built first if need be)."""
        source = Lab(default_cache_dir(), self.dialplans)
        if not (source.root / READY_MARK).exists():
            source.build()
        self._unmount()
        tmp = self.dir / "root.new"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.parent.mkdir(parents=True, exist_ok=True)
        # --one-file-system: a running default lab's /proc and /dev mounts stay behind.
        _run(["cp", "-a", "--one-file-system", "--reflink=auto", str(source.root), str(tmp)],
             f"copying the lab root for lab {self.name}")
        for d in ("run/asterisk", "var/log/asterisk", "var/spool/asterisk", "var/lib/asterisk/astdb.sqlite3"):
            target = tmp / d
            if target.is_dir():
                shutil.rmtree(target)
            else:
                target.unlink(missing_ok=True)
        shutil.rmtree(self.root, ignore_errors=True)
        tmp.rename(self.root)

    def write_config(self) -> None:
        conf = self.root / CONF_DIR
        shutil.rmtree(conf, ignore_errors=True)
        (conf / "ivr").mkdir(parents=True)
        for src in sorted(self.dialplans.glob("*.conf")):
            shutil.copyfile(src, conf / "ivr" / src.name)
        for src in FILES.glob("*.conf"):
            if not src.name.startswith("pjsip_"):
                (conf / src.name).write_text(self._render(src.name))
        (conf / "pjsip.conf").write_text(self._pjsip())
        os.chmod(conf / "manager.conf", 0o600)
        os.chmod(conf / "extensions.conf", 0o600)      # the dialplan secret
        os.chmod(conf / "pjsip.conf", 0o600)
        for d in VAR_DIRS:
            (self.root / d).mkdir(parents=True, exist_ok=True)
        self._hosts()

    def _hosts(self) -> None:
        """Name this machine inside the root, so Asterisk never asks DNS for it.

        For every call's media Asterisk looks up its own hostname (and, failing
        that, A.ROOT-SERVERS.NET).  debootstrap leaves no /etc/hosts, so each
        call went to the nameserver; where that drops some queries, calls
        stalled for 5 s timeouts and most calls failed at 20 calls/s.
        """
        (self.root / "etc" / "hosts").write_text(
            f"127.0.0.1 localhost {socket.gethostname()}\n::1 localhost\n")

    def _prompts(self) -> None:
        """The spoken prompts, generated from text (espeak-ng, sox)."""
        from ivr.routing import prompts
        try:
            prompts.generate_static(self.root / PROMPTS)
        except prompts.PromptError as exc:
            log.warning("no generated prompts (%s): callers hear silence instead", exc)

    def event_timestamps(self, on: bool) -> None:
        """The lab variant of a PBX with `timestampevents = no` (on=False), and back.
        Applies to AMI sessions from their next event; `ivr lab up` always turns it on."""
        conf = self.root / CONF_DIR / "manager.conf"
        conf.write_text(self._render("manager.conf", timestampevents="yes" if on else "no"))
        os.chmod(conf, 0o600)
        self.cli("manager reload")

    def _render(self, template: str, **extra: str | int) -> str:
        rtp = 20000 + 200 * self.offset      # clear of SIPp's media ports (31000 on)
        values = {"ami_port": self.ami_port, "ami_user": AMI_USER, "sip_port": self.sip_port,
                  "ami_secret": self._secret("ami"), "timestampevents": "yes",
                  "ami_monitor_user": AMI_MONITOR_USER,
                  "ami_monitor_secret": self._secret("ami-monitor"),
                  "dialplan_secret": self._secret("dialplan"),
                  "pbx_name": self.name, "rtp_start": rtp, "rtp_end": rtp + 9999, **extra}
        return Template((FILES / template).read_text()).substitute(values)

    def _pjsip(self) -> str:
        parts = [self._render("pjsip_head.conf")]
        for name, port in self.agents.items():
            parts.append(self._render("pjsip_agent.conf", name=name, port=port,
                                      password=self._secret(f"agent-{name}")))
        return "".join(parts)

    def _mount(self) -> None:
        for sub, args in (("proc", ["-t", "proc", "proc"]), ("dev", ["--bind", "/dev"])):
            target = self.root / sub
            if not os.path.ismount(target):
                _run(["mount", *args, str(target)], f"mounting {sub} into the lab root")

    def _unmount(self) -> None:
        for sub in ("dev", "proc"):
            target = self.root / sub
            if os.path.ismount(target):
                subprocess.run(["umount", "-l", str(target)], check=False)

    def _start(self) -> None:
        (self.root / PIDFILE).unlink(missing_ok=True)
        _run(["chroot", str(self.root), "/usr/sbin/asterisk",
              "-C", f"/{CONF_DIR}/asterisk.conf"], "starting asterisk")

    def _wait_booted(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._cli("core waitfullybooted", timeout=5) and port_open(self.ami_port):
                log.info("lab asterisk fully booted (pid %s)", self._pid())
                return
            if self._pid() is None and time.monotonic() > deadline - timeout + 5:
                break
            time.sleep(0.2)
        raise LabError(f"asterisk did not boot; see {self.root}/var/log/asterisk/messages.log")

    def cli(self, command: str) -> str:
        """Run an Asterisk CLI command in the lab and return its output."""
        return self._cli(command, timeout=15) or ""

    def _cli(self, command: str, timeout: float) -> str | None:
        cmd = ["chroot", str(self.root), "/usr/sbin/asterisk",
               "-C", f"/{CONF_DIR}/asterisk.conf", "-rx", command]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        return done.stdout if done.returncode == 0 else None

    # -- down -------------------------------------------------------------

    def down(self, timeout: float = 10.0) -> None:
        pid = self._pid()
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
            if not _wait_gone(pid, timeout):
                os.kill(pid, signal.SIGKILL)
                _wait_gone(pid, timeout)
        self._unmount()

    def hangup_all(self) -> None:
        """End every call in the lab (a SIPp killed mid-call never sends BYE)."""
        self.cli("channel request hangup all")

    def forget_registrations(self) -> None:
        """Drop softphone registrations: queue calls then ring only the static contacts."""
        self.cli("database deltree registrar")

    def queue_log(self) -> str:
        path = self.queue_log_path
        return path.read_text() if path.exists() else ""


def host_mirror(sources: Path = Path("/etc/apt")) -> str:
    """The Debian mirror this host already uses (never hard-coded here)."""
    for path in sorted(sources.glob("sources.list.d/*.sources")):
        for line in path.read_text().splitlines():
            if line.startswith("URIs:") and "security" not in line:
                return line.split()[1]
    lst = sources / "sources.list"
    if lst.exists():
        for line in lst.read_text().splitlines():
            words = line.split()
            if words[:1] == ["deb"] and "security" not in line:
                return next(w for w in words[1:] if "://" in w)
    raise LabError("no Debian mirror found in the host's apt sources")


def _require_root() -> None:
    if os.geteuid() != 0:
        raise LabError("the lab needs root (chroot and mount); run it with sudo")


def _require_free_ports(sip_port: int, ami_port: int) -> None:
    for kind, port in ((socket.SOCK_DGRAM, sip_port), (socket.SOCK_STREAM, ami_port)):
        with socket.socket(socket.AF_INET, kind) as s:
            # As Asterisk binds: connections in TIME_WAIT do not make a port taken.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                proto = "udp" if kind == socket.SOCK_DGRAM else "tcp"
                raise LabError(f"port 127.0.0.1:{port}/{proto} is taken; stop what uses it") from None


def port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except OSError:
            return True
        time.sleep(0.1)
    return False


def _run(cmd: list[str], what: str) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise LabError(f"{what} failed: {(done.stderr or done.stdout).strip()[:200]}")
