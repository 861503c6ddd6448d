"""Known incidents: "there is an outage in area X until T", opened by an operator.

The store is in memory, with an optional JSON file so a restart does not
forget an outage.  The file is rewritten atomically after every open and
close; expired incidents are pruned in memory only (call routing asks
`covering()` on every call and must never touch the disk) and dropped from
the file at the next load or write.  Input comes from HTTP bodies, so
`open()` checks types strictly and raises IncidentError with a one-line
message fit for a 400 answer.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import secrets
import tempfile
import time
import unicodedata
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

log = logging.getLogger(__name__)

ALL_AREAS = "*"
MAX_MESSAGE = 500
MAX_EXPIRES_IN = 7 * 24 * 3600

_AREA = re.compile(r"[a-z0-9-]+")
_FILE_VERSION = 1


class IncidentError(ValueError):
    """Bad incident input or a corrupt incident file; one line, fit for a 400 answer."""


@dataclass(frozen=True, slots=True)
class Incident:
    id: str
    area: str
    message: str
    started_at: float
    expires_at: float

    def covers(self, area: str | None) -> bool:
        return self.area == ALL_AREAS or (area is not None and self.area == area)

    def to_json(self, now: float) -> dict[str, object]:
        return {
            "id": self.id, "area": self.area, "message": self.message,
            "started_at": self.started_at, "expires_at": self.expires_at,
            "started": _iso(self.started_at), "expires": _iso(self.expires_at),
            "expires_in": max(0.0, round(self.expires_at - now, 3)),
        }


class Incidents:
    def __init__(self, clock: Callable[[], float] = time.time, path: Path | None = None) -> None:
        self._clock = clock
        self._path = path
        self._items: dict[str, Incident] = {}
        if path is not None:
            now = clock()
            self._items = {i.id: i for i in _load(path) if i.expires_at > now}
            log.info("loaded %d active incidents from %s", len(self._items), path)

    def open(self, area: object, message: object, expires_in: object) -> Incident:
        now = self._clock()
        incident = Incident(self._new_id(), _area(area), _message(message), now,
                            now + _expires_in(expires_in))
        self._commit({**self._live(), incident.id: incident})
        log.info("incident %s opened for area %s until %s", incident.id, incident.area,
                 _iso(incident.expires_at))
        return incident

    def close(self, incident_id: str) -> Incident | None:
        items = self._live()
        incident = items.pop(incident_id, None)
        if incident is not None:
            self._commit(items)
            log.info("incident %s closed", incident_id)
        return incident

    def restore(self, incidents: list[Incident]) -> int:
        """Take back incidents kept elsewhere (the ledger) that are still in force."""
        now = self._clock()
        found = {i.id: i for i in incidents if i.expires_at > now and i.id not in self._items}
        if found:
            self._commit({**self._live(), **found})
        return len(found)

    def active(self) -> list[Incident]:
        self._items = self._live()
        return sorted(self._items.values(), key=lambda i: i.started_at)

    def covering(self, area: str | None) -> Incident | None:
        matching = [i for i in self.active() if i.covers(area)]
        return matching[-1] if matching else None

    def _live(self) -> dict[str, Incident]:
        now = self._clock()
        return {k: i for k, i in self._items.items() if i.expires_at > now}

    def _new_id(self) -> str:
        while (incident_id := f"inc-{secrets.token_hex(4)}") in self._items:
            pass
        return incident_id

    def _commit(self, items: dict[str, Incident]) -> None:
        """Write first, then swap: a failed write leaves memory and file as they were."""
        if self._path is not None:
            _save(self._path, list(items.values()))
        self._items = items


# -- validation ---------------------------------------------------------------

def _area(value: object) -> str:
    if not isinstance(value, str) or not (value == ALL_AREAS or _AREA.fullmatch(value)):
        raise IncidentError(f"area must be \"{ALL_AREAS}\" or a slug of a-z, 0-9 and '-'")
    return value


def _message(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise IncidentError("message must be a non-empty string")
    if len(value) > MAX_MESSAGE:
        raise IncidentError(f"message must be at most {MAX_MESSAGE} characters")
    if any(unicodedata.category(c) == "Cc" for c in value):   # NUL among them
        raise IncidentError("message must not contain control characters")
    # A lone surrogate (JSON's "\ud800") is no character: no UTF-8 for the ledger or a page.
    if any(unicodedata.category(c) == "Cs" for c in value):
        raise IncidentError("message must be text: a lone surrogate (\\uD800-\\uDFFF) is not")
    return value.strip()


def _expires_in(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 1 <= value <= MAX_EXPIRES_IN:
        raise IncidentError(f"expires_in must be a number of seconds between 1 and {MAX_EXPIRES_IN}")
    return float(value)


# -- the file -----------------------------------------------------------------

def _load(path: Path) -> list[Incident]:
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise IncidentError(f"cannot read incident file {path}: {exc.strerror}") from None
    except (ValueError, RecursionError) as exc:   # JSONDecodeError, UnicodeDecodeError, nesting
        raise IncidentError(f"incident file {path} is corrupt: {type(exc).__name__}") from None
    try:
        return [_incident(raw) for raw in _entries(data)]
    except KeyError as exc:
        raise IncidentError(f"incident file {path} is corrupt: an entry has no {exc}") from None
    except (TypeError, ValueError, OverflowError) as exc:
        raise IncidentError(f"incident file {path} is corrupt: {exc}") from None


def _entries(data: Any) -> list[Any]:
    if not isinstance(data, dict) or data.get("version") != _FILE_VERSION:
        raise ValueError(f"expected an object with version {_FILE_VERSION}")
    entries = data.get("incidents")
    if not isinstance(entries, list):
        raise ValueError("expected an incidents list")
    return entries


def _incident(raw: Any) -> Incident:
    if not isinstance(raw, dict):
        raise ValueError("each incident must be an object")
    started_at, expires_at = raw["started_at"], raw["expires_at"]
    if not all(isinstance(t, (int, float)) and not isinstance(t, bool) and math.isfinite(t)
               for t in (started_at, expires_at)):
        raise ValueError("started_at and expires_at must be numbers")
    if not isinstance(raw["id"], str) or not raw["id"]:
        raise ValueError("id must be a non-empty string")
    return Incident(raw["id"], _area(raw["area"]), _message(raw["message"]),
                    float(started_at), float(expires_at))


def _save(path: Path, incidents: list[Incident]) -> None:
    data = {"version": _FILE_VERSION, "incidents": [asdict(i) for i in incidents]}
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
