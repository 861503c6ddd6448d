"""Recordings of the raw AMI stream: what `ivr run --record-ami FILE` writes and
`ivr replay` reads.

A support engineer asked "why was this call counted so?" needs the very bytes
ivr read and when it read them: events without a Timestamp header (a PBX with
`timestampevents = no`) are timed by their arrival, so a transcript without
the arrival times cannot say how long anyone waited.

File format: the line `#ivr-ami-recording 1`, then one record per chunk, a
header line `<direction> <epoch seconds, 6 decimals> <length>` (`<` read
from the PBX, `>` sent to it), exactly <length> raw bytes, and a newline.
The trailing newline lets a person read a recording with `less`; the length
makes the format independent of what the bytes hold.

Recording is a diagnostic aid on ivr's read path, so it is cheap (buffered
writes, one flush per chunk, never an fsync) and it can never hurt the AMI
connection: a write that fails logs one warning and recording stops.
"""

from __future__ import annotations

import errno
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

log = logging.getLogger(__name__)

MAGIC = b"#ivr-ami-recording 1\n"
_MAGIC_PREFIX = b"#ivr-ami-recording "
RECEIVED, SENT = "<", ">"
DEFAULT_MAX_BYTES = 64 << 20
DEFAULT_BACKUPS = 3
MASK = b"********"

_RECORD = re.compile(rb"([<>]) ([0-9]{1,12}\.[0-9]{6}) ([0-9]{1,10})")
# What a header line cut short by a kill mid-write can look like.
_RECORD_PREFIX = re.compile(rb"[<>](?: [0-9]*(?:\.[0-9]*)?(?: [0-9]*)?)?")
# The client reads at most 64 KiB at a time: a length far beyond that is a
# damaged file, and reading it would only allocate that much memory.
_MAX_RECORD = 64 << 20
_LOGIN = re.compile(rb"^[ \t]*action[ \t]*:[ \t]*login[ \t]*\r?$", re.I | re.M)
_SECRET = re.compile(rb"^([ \t]*secret[ \t]*:[ \t]?)[^\r\n]*", re.I | re.M)


def mask_secret(frame: bytes) -> bytes:
    """`frame` with the value of a Login's Secret header masked; any other frame as is."""
    if not _LOGIN.search(frame):
        return frame
    return _SECRET.sub(lambda m: m.group(1) + MASK, frame)


class Recorder:
    """Appends every chunk AmiClient reads and every frame it sends to `path`.

    The file is begun afresh when the recorder first writes: a file already
    at `path` (an earlier run's, maybe cut short by a kill mid-record, which
    appending would leave unreadable) is rotated away first.  Past
    `max_bytes`, the file becomes `path`.1 (`path`.1 becomes `path`.2 ...,
    keeping `backups` of them) and a new one is begun; every file starts
    with the header line and holds whole records.
    """

    def __init__(self, path: str | os.PathLike[str], max_bytes: int = DEFAULT_MAX_BYTES,
                 backups: int = DEFAULT_BACKUPS) -> None:
        if max_bytes < 1:
            raise ValueError("max_bytes must be positive")
        if backups < 0:
            raise ValueError("backups must not be negative")
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.backups = backups
        self.enabled = True
        self._file: BinaryIO | None = None
        self._size = 0

    def received(self, data: bytes, at: float) -> None:
        self._write(b"<", data, at)

    def sent(self, data: bytes, at: float) -> None:
        self._write(b">", mask_secret(data), at)

    def close(self) -> None:
        if self._file is not None:
            try:
                self._file.close()
            except OSError:
                pass
            self._file = None

    def _write(self, direction: bytes, data: bytes, at: float) -> None:
        if not self.enabled:
            return
        head = b"%s %.6f %d\n" % (direction, at, len(data))
        size = len(head) + len(data) + 1
        try:
            if self._file is None:
                self.open()
            elif self._size + size > self.max_bytes and self._size > len(MAGIC):
                self._begin(rotate=True)
            f = self._file
            assert f is not None
            f.write(head)
            f.write(data)
            f.write(b"\n")
            f.flush()
            self._size += size
        except OSError as exc:
            self.enabled = False
            self.close()
            log.warning("AMI recording to %s stopped: %s", self.path, exc.strerror or exc)

    def open(self) -> None:
        """Begin the file now (else the first chunk does).  Raises OSError, and
        refuses to rotate away a file at `path` that is not a recording: a
        mistyped path must not push someone's file out of the way."""
        try:
            with open(self.path, "rb") as old:
                head = old.read(len(_MAGIC_PREFIX))
        except FileNotFoundError:
            head = None
        if head and not head.startswith(_MAGIC_PREFIX):
            raise FileExistsError(errno.EEXIST, "it exists and is not an AMI recording",
                                  str(self.path))
        self._begin(rotate=bool(head))

    def _begin(self, rotate: bool) -> None:
        self.close()
        if rotate:
            self._rotate()
        self._file = open(self.path, "wb")
        self._file.write(MAGIC)
        self._size = len(MAGIC)

    def _rotate(self) -> None:
        if self.backups == 0:
            self.path.unlink(missing_ok=True)
            return
        for n in range(self.backups - 1, 0, -1):
            older = self._backup(n)
            if older.exists():
                os.replace(older, self._backup(n + 1))   # replaces the oldest kept
        os.replace(self.path, self._backup(1))

    def _backup(self, n: int) -> Path:
        return self.path.with_name(f"{self.path.name}.{n}")


def read_records(path: str | os.PathLike[str]) -> Iterator[tuple[str, float | None, bytes]]:
    """Every record of `path` as (direction, arrival time, bytes), in order.

    A file that does not begin with the header line is a plain AMI
    transcript (what Asterisk sent, as captured by any means): it comes as
    one received chunk with no arrival time.  A last record cut short (ivr
    killed mid-write) comes as far as it goes.  A damaged record raises
    ValueError, naming the file and the byte offset.
    """
    with open(path, "rb") as f:
        first = f.readline()
        if not first.startswith(_MAGIC_PREFIX):
            yield RECEIVED, None, first + f.read()
            return
        if first != MAGIC:
            raise ValueError(f"{os.fspath(path)}: unknown recording version "
                             f"{first.rstrip()[len(_MAGIC_PREFIX):][:20].decode('ascii', 'replace')!r}")
        while True:
            offset = f.tell()
            line = f.readline(64)
            if not line:
                return
            if not line.endswith(b"\n"):
                if len(line) < 64 and f.read(1) == b"" and _RECORD_PREFIX.fullmatch(line):
                    return          # the header line itself was cut short
                raise _malformed(path, offset, "a bad record header line")
            match = _RECORD.fullmatch(line[:-1])
            if match is None or int(match[3]) > _MAX_RECORD:
                raise _malformed(path, offset, "a bad record header line")
            direction, at, length = match[1].decode(), float(match[2]), int(match[3])
            data = f.read(length)
            end = f.read(1)
            if len(data) < length or not end:
                yield direction, at, data     # the last record, cut short
                return
            if end != b"\n":
                raise _malformed(path, offset, f"a record longer than its {length} bytes")
            yield direction, at, data


def read_recording(path: str | os.PathLike[str]) -> Iterator[tuple[float | None, bytes]]:
    """The chunks read from the PBX, with their arrival times (None for a plain transcript)."""
    for direction, at, data in read_records(path):
        if direction == RECEIVED:
            yield at, data


def _malformed(path: str | os.PathLike[str], offset: int, what: str) -> ValueError:
    return ValueError(f"{os.fspath(path)}: not a readable AMI recording: {what} at byte {offset}")
