"""A consistent copy of the ledger while ivr writes to it: `ivr ledger backup`.

SQLite: the online backup API (sqlite3.Connection.backup) in one step, which
reads one snapshot under a read transaction; in WAL mode the writer is never
held up, and the copy is a self-contained file (journal mode DELETE).
PostgreSQL: `pg_dump -Fc` (found on PATH), the password handed over in
PGPASSWORD, never on its command line.

The file is `ledger-YYYYMMDDTHHMMSSZ.db` (or `.pgdump`), named with the UTC
time, made 0600 under a temporary name in the same folder, fsynced, then
renamed: a backup that is there is whole.  Anything refused (BackupRefused:
no such folder, no ledger, no pg_dump) leaves nothing behind; a failure on the
way (BackupFailed) removes its temporary file.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from ivr.ledger.db import LedgerError, driver_url, redact


class BackupError(Exception):
    """One line a person can act on."""


class BackupRefused(BackupError):
    """Refused before anything was written (exit 2)."""


class BackupFailed(BackupError):
    """Failed on the way; nothing left behind (exit 1)."""


@dataclass(frozen=True)
class Backup:
    path: Path
    kind: str           # sqlite or postgresql
    bytes: int
    at: datetime

    def to_json(self) -> dict[str, object]:
        return {"path": str(self.path), "database": self.kind, "bytes": self.bytes,
                "at": self.at.isoformat(timespec="seconds").replace("+00:00", "Z")}


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite ledger URL (None for PostgreSQL or an in-memory one)."""
    try:
        parsed = make_url(driver_url(url))
    except (LedgerError, ArgumentError) as exc:
        raise BackupRefused(f"ledger.url {redact(url)!r}: {exc}") from None
    if parsed.get_backend_name() != "sqlite":
        return None
    if not parsed.database or parsed.database == ":memory:":
        raise BackupRefused("ledger.url is an in-memory SQLite database: nothing to back up")
    return Path(parsed.database)


def backup(url: str, out: Path, now: datetime | None = None) -> Backup:
    """Copy the ledger at `url` into folder `out`; the new file."""
    at = (now or datetime.now(timezone.utc)).astimezone(timezone.utc).replace(microsecond=0)
    if not out.is_dir():
        raise BackupRefused(f"--out {out}: no such folder")
    source = sqlite_path(url)
    if source is not None and not source.is_file():
        raise BackupRefused(f"no ledger at {source} (ivr makes it at its first start, "
                            f"or `ivr ledger migrate`)")
    pg_dump = None
    if source is None and (pg_dump := shutil.which("pg_dump")) is None:
        raise BackupRefused("pg_dump is not on PATH (Debian package postgresql-client)")
    final = out / f"ledger-{at.strftime('%Y%m%dT%H%M%SZ')}.{'db' if source else 'pgdump'}"
    if final.exists():
        raise BackupRefused(f"{final} exists already: one backup a second")
    temporary = out / f".{final.name}.{os.getpid()}.tmp"
    try:
        os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError as exc:
        raise BackupRefused(f"--out {out}: cannot write there: {exc.strerror or exc}") from None
    try:
        if source is not None:
            _sqlite(source, temporary)
        else:
            assert pg_dump is not None
            _pg_dump(pg_dump, url, temporary)
        _sync(temporary)
        os.rename(temporary, final)
        _sync(out)
        return Backup(final, "sqlite" if source else "postgresql", final.stat().st_size, at)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _sqlite(source: Path, target: Path) -> None:
    try:
        # mode=ro: the backup neither creates nor changes the ledger.
        src = sqlite3.connect(f"file:{quote(str(source.absolute()))}?mode=ro", uri=True)
        try:
            dst = sqlite3.connect(target)
            try:
                src.backup(dst)     # all pages in one step: one consistent snapshot
                dst.execute("PRAGMA journal_mode=DELETE")   # one file, no -wal beside it
            finally:
                dst.close()
        finally:
            src.close()
    except sqlite3.Error as exc:
        raise BackupFailed(f"ledger {source}: {type(exc).__name__}: {exc}") from None


def _pg_dump(program: str, url: str, target: Path) -> None:
    parsed = make_url(url)
    env = dict(os.environ)
    if parsed.password:
        env["PGPASSWORD"] = str(parsed.password)
    plain = URL.create("postgresql", parsed.username, None, parsed.host, parsed.port,
                       parsed.database, parsed.query)
    done = subprocess.run([program, "--format=custom", "--no-password", "--file", str(target),
                           "--dbname", plain.render_as_string(hide_password=False)],
                          env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if done.returncode != 0:
        said = (done.stderr or done.stdout).strip().splitlines()
        raise BackupFailed(f"pg_dump of {redact(url)} exited {done.returncode}: "
                           f"{said[0] if said else 'no message'}")


def _sync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
