"""The ledger's spool: records the database could not take yet, in ivr's own file.

One JSON object a line, oldest first, after a header line `{"ivr_spool":1}`
that marks the file as ivr's.  ivr never reads, truncates or deletes a file
without that header: `ledger.spool` naming some other existing file, or the
SQLite ledger itself, is a config error (SpoolError, exit 2 at `ivr run`)
and the file is left byte for byte.  A new spool is written whole (header
and first records) to a temporary file and linked into place, so a spool
never exists without its header and an existing file is never replaced.

Written items are skipped by a byte offset, and the file is deleted once
all of it is written: never rewritten per batch.  A crash in between writes
some items again at the next start, which idempotent writes make harmless.
A torn last line (a crash or a full disk in the middle of an append) is cut
off before anything is appended after it, so it never swallows the next
record; a torn line found at start was a record, and it is counted dropped.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from ivr.config import ConfigError
from ivr.calls import records as rec

log = logging.getLogger(__name__)

SPOOL_HEADER = {"ivr_spool": 1}


class SpoolError(ConfigError):
    """ledger.spool names a file that is not ivr's: the message is one line."""


@dataclass(frozen=True, slots=True)
class History:
    """A row for a history table (escalations, route_decisions)."""

    table: str
    row: dict[str, Any]


Item = rec.CallRecord | History


def encode(item: Item) -> dict[str, Any]:
    if isinstance(item, History):
        return {"history": item.table, "row": item.row}
    return {"call": rec.to_dict(item)}


def decode(data: dict[str, Any]) -> Item:
    """The inverse of encode; raises KeyError/TypeError/ValueError on what is not one."""
    if "history" in data:
        return History(str(data["history"]), dict(data["row"]))
    return rec.from_dict(data["call"])


def line(data: dict[str, Any]) -> bytes:
    # ensure_ascii (the default): a lone surrogate is kept as its escape, never refused here.
    return (json.dumps(data, separators=(",", ":")) + "\n").encode("ascii")


# -- ivr's own files ------------------------------------------------------------

def header_end(path: Path, header: dict[str, Any], what: str) -> int | None:
    """Where the records of ivr's file `path` start (after its header line); None if
    there is no file.  Raises SpoolError for anything else there, read no further."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise SpoolError(f"{what} {path}: cannot read it ({exc.strerror})") from None
    if not stat.S_ISREG(st.st_mode):     # a FIFO or a device: not even opened
        raise SpoolError(f"{what} {path}: not a regular file; ivr leaves it alone")
    try:
        with path.open("rb") as f:
            first = f.readline(256)
    except OSError as exc:
        raise SpoolError(f"{what} {path}: cannot read it ({exc.strerror})") from None
    try:
        ours = first.endswith(b"\n") and json.loads(first) == header
    except ValueError:
        ours = False
    if not ours:
        raise SpoolError(f"{what} {path}: an existing file that is not ivr's (its first line is "
                         f"not {json.dumps(header, separators=(',', ':'))}); ivr leaves it as it "
                         f"is: move it away or point {what} at a path of its own")
    return len(first)


def sqlite_file(url: str) -> str | None:
    """The file of a SQLite ledger URL; None for PostgreSQL or an in-memory database."""
    try:
        u = make_url(url)
    except ArgumentError:
        return None
    if not u.drivername.startswith("sqlite") or u.database in (None, "", ":memory:"):
        return None
    return u.database


def check_not_ledger(path: Path, ledger_url: str, what: str = "ledger.spool") -> None:
    """Raises SpoolError when `path` is the SQLite ledger or one of its side files."""
    db = sqlite_file(ledger_url)
    if db is None:
        return
    real = os.path.realpath(path)
    for name in (db, db + "-wal", db + "-shm", db + "-journal"):
        same = os.path.realpath(name) == real
        if not same and os.path.exists(name) and path.exists():
            same = os.path.samefile(name, path)    # a hard link
        if same:
            raise SpoolError(f"{what} {path} is the ledger database's own file ({name}): "
                             f"point {what} at a file of its own")


def create(path: Path, header: dict[str, Any], body: bytes) -> int:
    """A new file of ivr's: header and body written and fsynced under a temporary
    name, then linked into place (refused if anything is there by now).  The header's
    length."""
    path.parent.mkdir(parents=True, exist_ok=True)
    head = line(header)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(head + body)
            f.flush()
            os.fsync(f.fileno())
        os.link(tmp, path)      # unlike rename, never replaces a file that appeared meanwhile
    finally:
        os.unlink(tmp)
    _fsync_dir(path.parent)
    return len(head)


def append(path: Path, body: bytes) -> None:
    """Append and fsync; on failure the file is cut back to where it was (best effort)."""
    with path.open("ab") as f:
        size = f.tell()
        try:
            f.write(body)
            f.flush()
            os.fsync(f.fileno())
        except OSError:
            try:
                f.truncate(size)
            except OSError:
                pass     # the next append cuts the torn tail (cut_torn_tail)
            raise


def cut_torn_tail(path: Path, start: int) -> int:
    """Cut a last line that has no newline (never before `start`); the bytes cut."""
    with path.open("r+b") as f:
        end = f.seek(0, os.SEEK_END)
        if end <= start:
            return 0
        f.seek(end - 1)
        if f.read(1) == b"\n":
            return 0
        cut, pos = start, end
        while pos > start:
            step = min(1 << 16, pos - start)
            pos -= step
            f.seek(pos)
            newline = f.read(step).rfind(b"\n")
            if newline >= 0:
                cut = pos + newline + 1
                break
        f.truncate(cut)
        f.flush()
        os.fsync(f.fileno())
        return end - cut


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# -- the spool ----------------------------------------------------------------

class Spool:
    """Items the database could not take yet (see the module's docstring)."""

    def __init__(self, path: Path, max_items: int, ledger_url: str = "") -> None:
        self.path, self.max_items = path, max_items
        if ledger_url:
            check_not_ledger(path, ledger_url)
        self.dropped = 0          # records lost here: torn or unreadable lines
        self._start = header_end(path, SPOOL_HEADER, "ledger.spool")   # None: no spool file
        self._offset = self._start or 0   # bytes of the file already in the database
        self._pending: list[int] = []     # end offsets of the lines head() last returned
        self.count = 0
        if self._start is not None:
            torn = cut_torn_tail(path, self._start)
            if torn:
                self.dropped += 1
                log.error("ledger spool %s: its last line was torn (%d bytes, a crash or a full "
                          "disk): cut off, 1 record dropped", path, torn)
            self.count = self._lines_from(self._start)
        if self.count:
            log.warning("ledger spool %s holds %d records from before: they are written first",
                        path, self.count)

    def check_not_ledger(self, ledger_url: str) -> None:
        check_not_ledger(self.path, ledger_url)

    def _lines_from(self, offset: int) -> int:
        with self.path.open("rb") as f:
            f.seek(offset)
            return sum(1 for raw in f if raw.strip())

    def append(self, items: Sequence[Item]) -> int:
        """Append what fits under the bound; how many were kept.  OSError if the disk fails."""
        kept = list(items[:max(0, self.max_items - self.count)])
        if not kept:
            return 0
        body = b"".join(line(encode(i)) for i in kept)
        if self._start is None:
            self._start = self._offset = create(self.path, SPOOL_HEADER, body)
        else:
            header_end(self.path, SPOOL_HEADER, "ledger.spool")   # still ours
            torn = cut_torn_tail(self.path, self._start)
            if torn:   # a failed append of ours whose records are still held by the writer
                log.warning("ledger spool %s: cut %d bytes of a failed append", self.path, torn)
            append(self.path, body)
        self.count += len(kept)
        return len(kept)

    def head(self, n: int) -> list[Item]:
        """The oldest n items not yet written (unreadable lines are dropped, counted)."""
        items: list[Item] = []
        self._pending = []
        if self._start is None or not self._still_ours():
            return items
        try:
            with self.path.open("rb") as f:
                f.seek(self._offset)
                while len(items) < n and (raw := f.readline()):
                    if not raw.strip():
                        continue
                    item = self._decode_line(raw)
                    if item is None:
                        self._offset = f.tell()    # dropped, counted: never read again
                        self.count -= 1
                        continue
                    self._pending.append(f.tell())
                    items.append(item)
        except FileNotFoundError:
            log.error("ledger spool %s is gone: %d records lost", self.path, self.count)
            self.dropped += self.count
            self._forget()
        return items

    def _still_ours(self) -> bool:
        """Whether the file is still ivr's spool; if it was replaced or removed under
        ivr, its records are lost (counted) and the file is left alone."""
        try:
            if header_end(self.path, SPOOL_HEADER, "ledger.spool") is not None:
                return True
            why = "is gone"
        except SpoolError as exc:
            why = f"was replaced ({exc})"
        log.error("ledger spool %s %s: %d records lost", self.path, why, self.count)
        self.dropped += self.count
        self._forget()
        return False

    def _decode_line(self, raw: bytes) -> Item | None:
        try:
            return decode(json.loads(raw))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            self.dropped += 1
            log.error("ledger spool %s: a line that is not a record, 1 record dropped (%s)",
                      self.path, exc)
            return None

    def drop(self, n: int) -> None:
        """The first n items of the last head() are in the database (or quarantined) now."""
        if n:
            self._offset = self._pending[n - 1]
            self.count -= n
        if self.count <= 0 or (not n and not self._pending):
            if self.count > 0:     # counted lines that are not there (changed under ivr)
                self.dropped += self.count
                log.error("ledger spool %s: %d records counted are not there: dropped",
                          self.path, self.count)
            self._delete()

    def _delete(self) -> None:
        if self._start is not None:
            try:
                header_end(self.path, SPOOL_HEADER, "ledger.spool")   # only ever ivr's own file
                self.path.unlink(missing_ok=True)
            except SpoolError as exc:
                log.error("%s", exc)
        self._forget()

    def _forget(self) -> None:
        self._start, self._offset, self.count, self._pending = None, 0, 0, []
