"""Records the ledger database refused, kept whole beside the spool.

Theory of operation.  A batch that fails is one of two things:

- the database is away (a connection refused or lost, a timeout, a locked or
  full SQLite file, a schema it does not have): nothing is wrong with the
  records, so the batch goes to the spool and is retried, never quarantined;
- the database (or its driver) refused the data: a data exception or an
  integrity violation (SQLSTATE classes 22 and 23, DataError/IntegrityError),
  or a value the driver cannot encode (UnicodeError, OverflowError, TypeError,
  sqlite3's "Error binding parameter").

`refused()` tells the two apart, and only the second is narrowed down: the
writer writes the batch in halves, then halves of halves, until each refused
record stands alone (a transaction each time, so a half that fails wrote
nothing).  Exactly those records are quarantined, and the records after them
flow on; a batch of 2,000 with one bad record costs about 11 extra writes.
Anything refused() does not recognise counts as "away": retried, not lost.

The quarantine is a file, not a table: it must hold when the database is the
very thing that refuses.  It is `<spool name>.quarantine.jsonl` beside the
spool (ledger.spool), JSON lines after a header `{"ivr_quarantine":1}`, each
line `{"at_us": ..., "error": "...", "item": <the record as the spool keeps
it>}`, appended and fsynced; like the spool, ivr never touches a file there
without its header.  `ivr ledger quarantine [--json]` lists it; the records
stay there until a person has dealt with them (a fixed record can be written
again: writes are idempotent).
"""

from __future__ import annotations

import json
import logging
import sqlite3
from pathlib import Path
from typing import Any, Iterator

from sqlalchemy import exc as sa_exc

from ivr.ledger import spool as sp
from ivr.ledger.db import problem

log = logging.getLogger(__name__)

QUARANTINE_HEADER = {"ivr_quarantine": 1}
WHAT = "ledger quarantine"

# TypeError: the driver cannot encode a value of that type (a spool line edited by
# hand: a bool where a number goes); sqlite3 says the same as a ProgrammingError.
_REFUSED_TYPES: tuple[type[BaseException], ...] = (
    UnicodeError, OverflowError, TypeError, sa_exc.DataError, sa_exc.IntegrityError,
    sqlite3.DataError, sqlite3.IntegrityError)
_SQLITE_BINDING = "Error binding parameter"


def refused(exc: BaseException) -> bool:
    """True when the database refused the data itself; False when it is away (module doc)."""
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if getattr(e, "connection_invalidated", False):
            return False
        if isinstance(e, _REFUSED_TYPES) or (isinstance(e, sqlite3.ProgrammingError)
                                             and str(e).startswith(_SQLITE_BINDING)):
            return True
        state = str(getattr(e, "sqlstate", None) or getattr(e, "pgcode", None) or "")
        if state[:2] in ("22", "23"):
            return True
        orig = getattr(e, "orig", None)
        e = orig if isinstance(orig, BaseException) else (e.__cause__ or e.__context__)
    return False


def path_for(spool: Path) -> Path:
    """The quarantine beside a spool: ledger.db-spool.jsonl -> ledger.db-spool.quarantine.jsonl."""
    return spool.with_name(spool.stem + ".quarantine.jsonl")


class Quarantine:
    """The quarantine file; `read_only` for a listing beside a running ivr, which
    must not cut what may be an append in progress."""

    def __init__(self, path: Path, ledger_url: str = "", read_only: bool = False) -> None:
        self.path = path
        if ledger_url:
            sp.check_not_ledger(path, ledger_url, WHAT)
        self._start = sp.header_end(path, QUARANTINE_HEADER, WHAT)
        self.count = 0     # records held in the file
        if self._start is not None:
            # A torn line lost nothing: its record stays in the spool or in memory
            # until it is quarantined whole, at the next flush.
            torn = 0 if read_only else sp.cut_torn_tail(path, self._start)
            if torn:
                log.error("%s %s: its last line was torn (%d bytes): cut off", WHAT, path, torn)
            self.count = sum(1 for _ in self.entries())

    def add(self, item: sp.Item, error: str, at_us: int) -> None:
        """Keep one refused record whole, with why; OSError if the disk fails."""
        body = sp.line({"at_us": at_us, "error": error, "item": sp.encode(item)})
        if self._start is None:
            self._start = sp.create(self.path, QUARANTINE_HEADER, body)
        else:
            sp.header_end(self.path, QUARANTINE_HEADER, WHAT)
            sp.cut_torn_tail(self.path, self._start)
            sp.append(self.path, body)
        self.count += 1

    def entries(self) -> Iterator[dict[str, Any]]:
        """The kept records, oldest first: at_us, error, item (encoded); unreadable lines
        come as {"error": "unreadable line N"}."""
        if self._start is None:
            return
        with self.path.open("rb") as f:
            f.seek(self._start)
            for n, raw in enumerate(f, 2):
                if not raw.strip():
                    continue
                try:
                    if not raw.endswith(b"\n"):
                        raise ValueError("torn")     # being appended, or cut short
                    entry = json.loads(raw)
                    if not isinstance(entry, dict) or "item" not in entry:
                        raise ValueError("not an entry")
                except ValueError:
                    entry = {"at_us": None, "error": f"unreadable line {n}", "item": None}
                yield entry


def reason(exc: BaseException) -> str:
    """One line for the record's error, as a person reads it in the listing."""
    return problem(exc)[:500]
