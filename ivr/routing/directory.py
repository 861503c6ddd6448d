"""The subscriber directory: who is calling, from a CSV file named in the config.

The file has the header row ``number,account,area``; blank lines and lines
starting with ``#`` are skipped.  Numbers are stored normalised (spaces,
dashes, parentheses and a leading ``+`` dropped) so that ``+7 (916) 123-45-67``
in the file matches the CallerID ``79161234567`` Asterisk reports.  Every
mistake is one line naming the file and the line (DirectoryError).
"""

from __future__ import annotations

import csv
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

log = logging.getLogger(__name__)

HEADER = ("number", "account", "area")

_NUMBER = re.compile(r"[0-9]{3,15}")      # E.164 allows at most 15 digits
_ACCOUNT = re.compile(r"[0-9]{4,12}")
_AREA = re.compile(r"[a-z0-9-]+")
_NUMBER_NOISE = str.maketrans("", "", " -()")


class DirectoryError(Exception):
    """Bad directory file; the message is one line naming the file and line."""


@dataclass(frozen=True, slots=True)
class Subscriber:
    number: str
    account: str
    area: str


def normalize_number(number: str) -> str:
    """Drop spaces, dashes, parentheses and a leading '+'."""
    cleaned = number.strip().translate(_NUMBER_NOISE)
    return cleaned[1:] if cleaned.startswith("+") else cleaned


class Directory:
    def __init__(self, subscribers: Iterable[Subscriber] = ()) -> None:
        self._by_number: dict[str, Subscriber] = {}
        self._by_account: dict[str, Subscriber] = {}
        for s in subscribers:
            self._by_number[s.number] = s
            self._by_account[s.account] = s

    @classmethod
    def load(cls, path: Path) -> Directory:
        directory = cls(_parse(path.name, _read(path)))
        log.info("loaded %d subscribers from %s", len(directory), path)
        return directory

    @classmethod
    def empty(cls) -> Directory:
        return cls()

    def by_number(self, number: str) -> Subscriber | None:
        return self._by_number.get(normalize_number(number))

    def by_account(self, account: str) -> Subscriber | None:
        return self._by_account.get(account.strip())

    def __len__(self) -> int:
        return len(self._by_number)

    def replace_with(self, other: Directory) -> str:
        """Take `other`'s subscribers in place of these (SIGHUP); what changed, in counts."""
        old, new = self._by_number, other._by_number
        added = sum(1 for n in new if n not in old)
        removed = sum(1 for n in old if n not in new)
        changed = sum(1 for n, s in new.items() if n in old and old[n] != s)
        self._by_number, self._by_account = dict(new), dict(other._by_account)
        return f"{len(new)} subscriber(s); {added} added, {removed} removed, {changed} changed"

    def accounts(self) -> dict[str, str]:
        """Every account and its area, by account."""
        return {a: s.area for a, s in sorted(self._by_account.items())}


def _read(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise DirectoryError(f"cannot read subscriber directory {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise DirectoryError(f"subscriber directory {path} is not UTF-8 text") from None


def _parse(name: str, text: str) -> list[Subscriber]:
    rows = _rows(name, text)
    first = next(rows, None)
    if first is None:
        raise DirectoryError(f"{name}: no header row; expected {','.join(HEADER)}")
    lineno, header = first
    if tuple(header) != HEADER:
        raise DirectoryError(f"{name} line {lineno}: header must be exactly {','.join(HEADER)}, "
                             f"got {','.join(header)!r}")
    subscribers: list[Subscriber] = []
    numbers: set[str] = set()
    accounts: set[str] = set()
    for lineno, fields in rows:
        s = _subscriber(fields, f"{name} line {lineno}")
        if s.number in numbers:
            raise DirectoryError(f"{name} line {lineno}: duplicate number {s.number!r}")
        if s.account in accounts:
            raise DirectoryError(f"{name} line {lineno}: duplicate account {s.account!r}")
        numbers.add(s.number)
        accounts.add(s.account)
        subscribers.append(s)
    return subscribers


def _rows(name: str, text: str) -> Iterator[tuple[int, list[str]]]:
    """(line number, stripped fields) of each line that is neither blank nor a comment."""
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            fields = next(csv.reader([line], strict=True))
        except csv.Error as exc:
            raise DirectoryError(f"{name} line {lineno}: not valid CSV: {exc}") from None
        yield lineno, [f.strip() for f in fields]


def _subscriber(fields: list[str], where: str) -> Subscriber:
    if len(fields) != len(HEADER):
        raise DirectoryError(f"{where}: expected {len(HEADER)} fields ({','.join(HEADER)}), "
                             f"got {len(fields)}")
    raw_number, account, area = fields
    number = normalize_number(raw_number)
    if not _NUMBER.fullmatch(number):
        raise DirectoryError(f"{where}: number must be 3 to 15 digits, got {raw_number!r}")
    if not _ACCOUNT.fullmatch(account):
        raise DirectoryError(f"{where}: account must be 4 to 12 digits, got {account!r}")
    if not _AREA.fullmatch(area):
        raise DirectoryError(f"{where}: area must be a slug of a-z, 0-9 and '-', got {area!r}")
    return Subscriber(number, account, area)
