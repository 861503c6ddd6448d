"""queue_log files as parsed rows: several files at once, gzip-compressed ones, and a
period found by binary search instead of a read from the top.

- **Several files** (logrotate's queue_log, queue_log.1, queue_log.2.gz ...) are
  read in time order whatever order they are given: each by its first row's time.
- **gzip** is known by its magic bytes, not its name.  A compressed file that is
  cut short or damaged gives the lines before the damage, and the damage is kept
  (`Damage`) for the report; it never stops the read of the other files.
- **A period** [start_s, stop_s): app_queue writes queue_log in time order, so the
  first line at or after start_s is found by binary search over the bytes of an
  uncompressed file (a few dozen short reads), and the read stops at the first row
  at or after stop_s.  A compressed file cannot be searched: it is read from its top
  and its lines before start_s are passed over unparsed; a file wholly before the
  period (the next one begins before start_s) or after it is not opened at all.
- **Not a queue_log**: a file none of whose first SNIFF_LINES lines reads as a row
  is refused before anything is read (`NotQueueLog`, exit 2 from the command).

Lines are numbered in their own file; after a seek, the number of a bad line is
found by counting the lines before the seek (only then: most reads have none).
"""

from __future__ import annotations

import codecs
import gzip
import re
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO

from ivr.ledger.db import LedgerError
from ivr.reconcile.rows import BadLine, Row, parse_line

GZIP_MAGIC = b"\x1f\x8b"
SNIFF_LINES = 100            # lines looked at for a first row (its time, and "is it a queue_log")
PROBE_LINES = 1000           # lines a binary search step reads for one with a time
PROGRESS_BYTES = 1 << 20     # how often a read reports its progress
BLOCK = 1 << 16              # bytes read (and decoded) at a time
MAX_LINE = 1 << 16           # a longer "line" is cut: a file with no newline is not held whole
_TIME = re.compile(r"\s*(\d+)\s*\|")
_TIME_BYTES = re.compile(rb"\s*(\d+)\s*\|")


class NotQueueLog(Exception):
    """A file that is not a queue_log: one line, for the command's exit 2."""


@dataclass(frozen=True, slots=True)
class Damage:
    """A compressed file cut short or corrupt: what was read of it, and why no more."""

    file: str
    after_line: int              # the lines before the damage were read
    reason: str

    def to_json(self) -> dict[str, object]:
        return {"file": self.file, "after_line": self.after_line, "reason": self.reason}

    def __str__(self) -> str:
        return (f"{self.file} is damaged after line {self.after_line} ({self.reason}): "
                f"the lines before it were read, none after")


@dataclass(frozen=True, slots=True)
class LogFile:
    path: Path
    gz: bool
    size: int
    first_s: int | None          # its first row's time; None when it has none to read


def open_files(paths: Sequence[Path]) -> list[LogFile]:
    """The files checked and in time order (by first row; those without one last).
    LedgerError (exit 1) when one cannot be read, NotQueueLog when it is no queue_log."""
    seen: dict[Path, LogFile] = {}
    for path in paths:
        key = path.resolve()
        if key not in seen:
            seen[key] = _look(path)
    return sorted(seen.values(), key=lambda f: (f.first_s is None, f.first_s or 0))


def _look(path: Path) -> LogFile:
    try:
        with open(path, "rb") as f:
            gz = f.read(2) == GZIP_MAGIC
            size = path.stat().st_size
    except OSError as exc:
        raise LedgerError(f"cannot read queue_log {path}: {exc.strerror or exc}") from None
    lines: list[tuple[int, bytes]] = []
    try:
        with _open(path, gz) as f:
            number = 0
            while len(lines) < SNIFF_LINES and (raw := f.readline(MAX_LINE)):
                number += 1
                if raw.strip():
                    lines.append((number, raw))
    except (EOFError, OSError, zlib.error):
        pass                     # damaged: the read itself reports it (Lines.damaged)
    parsed = [(n, parse_line(n, _text(raw))) for n, raw in lines]
    rows = [item for _, item in parsed if isinstance(item, Row)]
    if lines and not rows:
        first = next(item for _, item in parsed if isinstance(item, BadLine))
        whole = "" if len(lines) < SNIFF_LINES else "first "
        raise NotQueueLog(f"{path} is not a queue_log: none of its {whole}{len(lines)} line(s) "
                          f"reads as one ({first.reason}, line {first.line})")
    return LogFile(path, gz, size, rows[0].time_s if rows else None)


def _open(path: Path, gz: bool) -> BinaryIO:
    if not gz:
        return open(path, "rb")
    return gzip.open(path, "rb")     # type: ignore[return-value]  # a GzipFile: BinaryIO enough


def _text(raw: bytes) -> str:
    # Undecodable bytes become U+FFFD rather than stop the read.
    return raw.decode("utf-8", "replace")


class Lines:
    """The rows (and bad lines) of `files` in [start_s, stop_s) (None: from the top, to
    the end), in order.  `progress(n)` is told every PROGRESS_BYTES or so of the
    `total_bytes` to read; `damaged` and `rows` fill as the read goes."""

    def __init__(self, files: Sequence[LogFile], start_s: int | None = None,
                 stop_s: int | None = None, progress: Callable[[int], None] | None = None,
                 follow: tuple[int, Callable[[str], bool]] | None = None) -> None:
        self.start_s, self.stop_s = start_s, stop_s
        # (cut_s, wanted): once a row at or after cut_s is read, a line whose callid is
        # not wanted is passed over unparsed (scan.py: the calls that begin after the
        # period, read only because the period's own calls may go on that long).
        self.follow = follow
        self.past = False        # a row at or after cut_s was read
        self.progress = progress or (lambda n: None)
        self.damaged: list[Damage] = []
        self.rows = 0            # lines read, bad ones included (blank ones not)
        self._spans = [(f, *self._span(f)) for f in self._wanted(files)]
        self.total_bytes = sum(end - begin for _, begin, end in self._spans)

    def _wanted(self, files: Sequence[LogFile]) -> list[LogFile]:
        """The files with rows of the period; files are in time order, untimed ones last."""
        wanted = []
        for n, f in enumerate(files):
            following = files[n + 1].first_s if n + 1 < len(files) else None
            if f.first_s is not None and self.stop_s is not None and f.first_s >= self.stop_s:
                continue         # it begins after the period
            if following is not None and self.start_s is not None and following < self.start_s:
                continue         # the next one begins before the period: all of this is before
            wanted.append(f)
        return wanted

    def _span(self, f: LogFile) -> tuple[int, int]:
        """The bytes of `f` to read (compressed ones: all of them)."""
        if f.gz or (self.start_s is None and self.stop_s is None):
            return 0, f.size
        try:
            with open(f.path, "rb") as raw:
                begin = 0 if self.start_s is None else _search(raw, f.size, self.start_s)
                end = f.size if self.stop_s is None else _search(raw, f.size, self.stop_s)
        except OSError as exc:
            raise LedgerError(f"cannot read queue_log {f.path}: {exc.strerror or exc}") from None
        return begin, max(begin, end)

    def __iter__(self) -> Iterator[Row | BadLine]:
        for f, begin, _ in self._spans:
            try:
                yield from self._read(f, begin)
            except OSError as exc:
                raise LedgerError(f"cannot read queue_log {f.path}: "
                                  f"{exc.strerror or exc}") from None

    def _read(self, f: LogFile, begin: int) -> Iterator[Row | BadLine]:
        """The rows of one file from `begin` until the first at or after stop_s."""
        name = str(f.path)
        base: int | None = 0 if begin == 0 else None    # lines before the seek, once counted
        skipping = f.gz and self.start_s is not None    # no seek: pass over the lines before
        start_s, stop_s = self.start_s or 0, self.stop_s
        cut_s, wanted = self.follow if self.follow is not None else (None, None)
        for number, line in self._lines(f, begin):
            if skipping:
                m = _TIME.match(line)
                if m is None or int(m.group(1)) < start_s:
                    continue
                skipping = False
            if self.past:
                assert wanted is not None
                parts = line.split("|", 2)
                if len(parts) == 3 and not wanted(parts[1].strip()):
                    stamp = parts[0].strip()
                    if stop_s is not None and stamp.isdecimal() and int(stamp) >= stop_s:
                        return
                    continue
            item = parse_line(number, line)
            if item is None:
                continue
            if isinstance(item, BadLine):
                if base is None:
                    base = _lines_before(f.path, begin)
                self.rows += 1
                yield replace(item, line=base + number, file=name)
            elif stop_s is not None and item.time_s >= stop_s:
                return
            else:
                if cut_s is not None and item.time_s >= cut_s:
                    self.past = True
                self.rows += 1
                yield item

    def _lines(self, f: LogFile, begin: int) -> Iterator[tuple[int, str]]:
        """The numbered lines of `f` from `begin`, decoded a block at a time (a decode
        and a split a block cost less than a readline and a decode a line); a damaged
        compressed file ends where its damage is."""
        decode = codecs.getincrementaldecoder("utf-8")("replace").decode
        number = 0
        rest = ""
        with _open(f.path, f.gz) as stream:
            raw_file = stream.fileobj if isinstance(stream, gzip.GzipFile) else stream
            assert raw_file is not None
            stream.seek(begin)
            told = raw_file.tell()
            while True:
                try:
                    block = stream.read(BLOCK)
                except (EOFError, OSError, zlib.error) as exc:
                    if not f.gz:
                        raise
                    self.damaged.append(Damage(str(f.path), number, _reason(exc)))
                    return
                lines = (rest + decode(block, final=not block)).split("\n")
                rest = lines.pop() if block else ""
                if len(rest) > MAX_LINE:     # no end in sight (not a text file): cut it
                    lines.append(rest)
                    rest = ""
                for line in lines:
                    number += 1
                    yield number, line
                if raw_file.tell() - told >= PROGRESS_BYTES or not block:
                    self.progress(raw_file.tell() - told)
                    told = raw_file.tell()
                if not block:
                    return


def _reason(exc: BaseException) -> str:
    if isinstance(exc, EOFError):
        return "cut short: it ends before its end-of-stream marker"
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _lines_before(path: Path, offset: int) -> int:
    with open(path, "rb") as f:
        count = 0
        left = offset
        while left > 0:
            block = f.read(min(left, 1 << 20))
            if not block:
                break
            count += block.count(b"\n")
            left -= len(block)
    return count


def _search(f: BinaryIO, size: int, target_s: int) -> int:
    """The offset of the first line whose time is at or after target_s (size if none),
    in a file in time order; lines without a time are stepped over."""
    lo, hi = 0, size
    while lo < hi:
        mid = (lo + hi) // 2
        start, time_s, after = _timed_line(f, mid)
        if time_s is not None and time_s < target_s:
            lo = after           # every line up to this one is before target_s
        else:
            hi = mid
    return _line_start(f, lo)


def _line_start(f: BinaryIO, offset: int) -> int:
    """The start of the first line that begins at or after offset."""
    if offset == 0:
        f.seek(0)
        return 0
    f.seek(offset - 1)
    f.readline()
    return f.tell()


def _timed_line(f: BinaryIO, offset: int) -> tuple[int, int | None, int]:
    """The first line with a time that begins at or after offset: its start, its time
    (None when none is found within PROBE_LINES), and where the next line begins."""
    at = _line_start(f, offset)
    for _ in range(PROBE_LINES):
        raw = f.readline(MAX_LINE)
        if not raw:
            break
        m = _TIME_BYTES.match(raw)
        if m is not None:
            return at, int(m.group(1)), at + len(raw)
        at += len(raw)
    return at, None, at

