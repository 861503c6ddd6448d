"""Downtime: how long known incidents covered an area, for recalculating bills.

An incident covers its area (or every area, "*") from its opening until it
was closed, or until it expired if nobody closed it.  Over a period the
downtime is the union of those spans, clipped to the period, so overlapping
incidents count once.  ivr computes time, not money.
"""

from __future__ import annotations

from dataclasses import dataclass
import csv
import io
from typing import Any, Iterable, Mapping

ALL_AREAS = "*"


@dataclass(frozen=True, slots=True)
class Span:
    incident: str
    area: str
    from_us: int
    to_us: int
    message: str = ""


@dataclass(frozen=True, slots=True)
class Downtime:
    seconds: float
    spans: tuple[Span, ...]      # the incidents that covered the area, clipped to the period

    def to_json(self) -> dict[str, Any]:
        return {"downtime_seconds": round(self.seconds, 3),
                "incidents": [{"id": s.incident, "area": s.area, "from_us": s.from_us,
                               "to_us": s.to_us, "message": s.message} for s in self.spans]}


def spans(rows: Iterable[Mapping[str, Any]]) -> list[Span]:
    """Incident rows (the ledger's incidents table) as spans."""
    out = []
    for r in rows:
        end = r["closed_us"] if r.get("closed_us") is not None else r["expires_us"]
        out.append(Span(str(r["id"]), str(r["area"]), int(r["opened_us"]), int(end),
                        str(r.get("message") or "")))
    return out


def of_area(all_spans: Iterable[Span], area: str, from_us: int, to_us: int) -> Downtime:
    clipped = sorted((Span(s.incident, s.area, max(s.from_us, from_us), min(s.to_us, to_us),
                           s.message)
                      for s in all_spans if s.area in (area, ALL_AREAS)
                      and s.from_us < to_us and s.to_us > from_us),
                     key=lambda s: (s.from_us, s.to_us, s.incident))
    total, end = 0, from_us
    for s in clipped:
        if s.to_us > end:
            total += s.to_us - max(s.from_us, end)
            end = s.to_us
    return Downtime(total / 1e6, tuple(clipped))


def to_csv(areas: Mapping[str, str], rows: Mapping[str, Downtime]) -> str:
    """account,area,downtime_seconds,incidents (the ids, space-separated)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["account", "area", "downtime_seconds", "incidents"])
    for account, d in rows.items():
        writer.writerow([account, areas[account], f"{d.seconds:.3f}",
                         " ".join(s.incident for s in d.spans)])
    return out.getvalue()


def report(accounts: Mapping[str, str], rows: Iterable[Mapping[str, Any]], from_us: int,
           to_us: int, now_us: int) -> dict[str, Downtime]:
    """Every account's downtime in [from_us, to_us), from the incidents' rows; an incident
    still open counts up to now, not to its expiry."""
    all_spans = spans(rows)
    until = max(from_us, min(to_us, now_us))
    return {account: of_area(all_spans, area, from_us, until) for account, area in accounts.items()}


def to_json(accounts: Mapping[str, str], found: Mapping[str, Downtime], from_us: int,
            to_us: int, claims: Mapping[str, list[dict[str, Any]]] | None = None
            ) -> dict[str, Any]:
    """The report; with `claims` (the desk's, desk/claims.py) each account has the claims
    that cover its downtime too (none: an empty list)."""
    return {"from": from_us, "to": to_us, "accounts": [
        {"account": a, "area": accounts[a], **d.to_json(),
         **({"claims": claims.get(a, [])} if claims is not None else {})}
        for a, d in found.items()]}
