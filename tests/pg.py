"""A throwaway PostgreSQL cluster for tests and benchmarks; no running server assumed.

    cluster = PgCluster()          # finds the newest /usr/lib/postgresql/*/bin
    cluster.start()                # initdb on first start (~1 s), then pg_ctl start
    cluster.createdb("ivr")
    url = cluster.url("ivr")       # postgresql://postgres@127.0.0.1:PORT/ivr
    cluster.stop()                 # fast shutdown; start() again: same port, same data
    cluster.cleanup()              # stop and remove the data directory

The cluster lives in a temporary directory owned by the `postgres` user
(initdb and postgres refuse to run as root, so as root they run through
runuser; as any other user they run as that user).  It listens on 127.0.0.1
only, on a free port, with its unix socket inside that directory, trust
authentication, and fsync off: for tests, never for data anyone keeps.
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

SUPERUSER = "postgres"
OS_USER = "postgres"      # who runs the server when we are root

_CONF = """
# tests/pg.py: a throwaway cluster
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = '{sockets}'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 50
shared_buffers = 128MB
work_mem = 16MB
log_min_messages = warning
"""


class PgError(RuntimeError):
    """The cluster could not be made, started, stopped or asked for a database."""


def find_bin() -> Path | None:
    """The newest PostgreSQL bin directory with initdb and pg_ctl, or None."""
    def version(path: str) -> tuple[int, ...]:
        name = Path(path).parent.name
        return tuple(int(p) for p in re.findall(r"\d+", name)) or (0,)

    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True):
        if (Path(candidate) / "initdb").is_file() and (Path(candidate) / "pg_ctl").is_file():
            return Path(candidate)
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(initdb).resolve().parent
    return None


def missing() -> str | None:
    """Why a cluster cannot be made on this machine, or None when it can."""
    if find_bin() is None:
        return ("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb nor initdb "
                "on PATH; Debian package postgresql)")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(OS_USER)
        except KeyError:
            return f"running as root but there is no {OS_USER!r} user to run PostgreSQL as"
        if shutil.which("runuser") is None:
            return "running as root but runuser (util-linux) is missing"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PgCluster:
    def __init__(self, bin_dir: Path | str | None = None, port: int | None = None) -> None:
        found = Path(bin_dir) if bin_dir is not None else find_bin()
        if found is None:
            raise PgError(missing() or "PostgreSQL is not installed")
        self.bin = found
        self.port = port or _free_port()
        self.base: Path | None = None      # the temporary directory, made on first start
        self.running = False
        self._as_root = os.geteuid() == 0

    # -- paths ------------------------------------------------------------------

    @property
    def data(self) -> Path:
        assert self.base is not None, "the cluster has not been started"
        return self.base / "data"

    @property
    def logfile(self) -> Path:
        assert self.base is not None, "the cluster has not been started"
        return self.base / "postgres.log"

    def url(self, db: str = "ivr") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{db}"

    # -- running its programs --------------------------------------------------

    def _server_cmd(self, program: str, *args: str) -> list[str]:
        cmd = [str(self.bin / program), *args]
        return ["runuser", "-u", OS_USER, "--", *cmd] if self._as_root else cmd

    def _run(self, cmd: list[str], timeout: float = 60) -> str:
        env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PGTZ": "UTC"}
        env.pop("PGDATA", None)
        try:
            done = subprocess.run(cmd, cwd=self.base or None, env=env, capture_output=True,
                                  text=True, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise PgError(f"{' '.join(cmd)}: no answer within {timeout} s") from exc
        if done.returncode != 0:
            raise PgError(f"{' '.join(cmd)} exited {done.returncode}: "
                          f"{(done.stderr or done.stdout).strip()}{self._log_tail()}")
        return done.stdout

    def _log_tail(self, lines: int = 15) -> str:
        try:
            tail = self.logfile.read_text(errors="replace").splitlines()[-lines:]
        except (OSError, AssertionError):
            return ""
        return "\n--- postgres.log ---\n" + "\n".join(tail) if tail else ""

    # -- the cluster ------------------------------------------------------------

    def _init(self) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="ivr-pg-"))
        if self._as_root:
            pw = pwd.getpwnam(OS_USER)
            os.chown(self.base, pw.pw_uid, pw.pw_gid)
        os.chmod(self.base, 0o700)
        self._run(self._server_cmd("initdb", "-D", str(self.data), "-U", SUPERUSER,
                                   "--auth=trust", "--no-sync", "-E", "UTF8",
                                   "--locale=C"))
        self._write_conf()
        atexit.register(self.cleanup)

    def _write_conf(self) -> None:
        # Appending keeps the file's owner (postgres) and overrides initdb's defaults.
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(_CONF.format(port=self.port, sockets=self.base))

    def start(self, timeout: float = 30) -> None:
        """Start the server (initdb first if there is no cluster yet); waits until it accepts."""
        if self.running:
            return
        first = self.base is None
        if first:
            self._init()
        for attempt in range(3):
            try:
                self._run(self._server_cmd("pg_ctl", "start", "-w", "-t", str(int(timeout)),
                                           "-D", str(self.data), "-l", str(self.logfile)),
                          timeout=timeout + 10)
                break
            except PgError as exc:
                # Someone took the port between choosing it and binding it: only on
                # the first start may the port change (a restart keeps its port).
                if first and attempt < 2 and "already in use" in str(exc):
                    self.port = _free_port()
                    self._write_conf()
                    continue
                raise
        self.running = True

    def stop(self, mode: str = "fast", timeout: float = 30) -> None:
        """Stop the server (fast: disconnect clients, roll back, shut down cleanly).

        The data directory and port stay, so a later start() brings the same
        databases back on the same URL.
        """
        if not self.running:
            return
        self._run(self._server_cmd("pg_ctl", "stop", "-w", "-t", str(int(timeout)),
                                   "-m", mode, "-D", str(self.data)), timeout=timeout + 10)
        self.running = False

    def createdb(self, name: str) -> str:
        """Create database `name` (owned by the superuser); its URL."""
        self._run([str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port),
                   "-U", SUPERUSER, "-w", name])
        return self.url(name)

    def cleanup(self) -> None:
        """Stop the server if it runs and remove the whole directory."""
        if self.base is None:
            return
        if self.running:
            try:
                self.stop(mode="immediate")
            except PgError:
                pass
        if self._postmaster_alive():
            # A server we did not see stop (a failed stop, a start from elsewhere).
            try:
                self._run(self._server_cmd("pg_ctl", "stop", "-w", "-m", "immediate",
                                           "-D", str(self.data)))
            except PgError:
                pass
        shutil.rmtree(self.base, ignore_errors=True)
        self.base = None
        self.running = False
        atexit.unregister(self.cleanup)

    def _postmaster_alive(self) -> bool:
        try:
            pid = int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError, AssertionError):
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def wait_ready(self, timeout: float = 10) -> None:
        """Until the server accepts TCP connections (start() already waits; for restarts
        done by other means)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise PgError(f"nothing listens on 127.0.0.1:{self.port} "
                                  f"after {timeout} s") from None
                time.sleep(0.05)

    def __enter__(self) -> PgCluster:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.cleanup()
