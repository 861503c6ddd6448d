"""First-contact resolution, and paying one answer per caller.

A call answered in the period is resolved at first contact within 24 h (7
days) when neither its number nor its account called again (a later call,
a second line during it included) until 24 h (7 days) after its end.
Counted per queue and per operator who answered it.  The later calls are
looked for past the period's end, so a month's last days are judged by the
calls that followed them.

`payable_once`: the payable calls, counting at most one per caller (number
or account) within routing.repeat_window_seconds: what the statement shows
beside `payable` when report.pay_once_per_caller is on.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Iterable

DAY_US = 86_400 * 1_000_000
WINDOWS = (("24h", DAY_US), ("7d", 7 * DAY_US))


@dataclass(frozen=True, slots=True)
class Contact:
    uniqueid: str
    caller: str
    account: str
    entered_us: int
    ended_us: int
    answered_queue: str
    answered_member: str
    payable: bool = False


def _keys(c: Contact) -> list[str]:
    return [k for k in (f"n:{c.caller}" if c.caller else "", f"a:{c.account}" if c.account else "")
            if k]


def resolution(contacts: Iterable[Contact], from_us: int, to_us: int) -> dict[str, Any]:
    """{"queues": [...], "operators": [...]}, each row answered, fcr_24h, fcr_7d and shares."""
    calls = sorted(contacts, key=lambda c: c.entered_us)
    starts: dict[str, list[int]] = defaultdict(list)
    for c in calls:
        for k in _keys(c):
            starts[k].append(c.entered_us)
    rows: dict[tuple[str, str], dict[str, int]] = {}
    for c in calls:
        if not (from_us <= c.entered_us < to_us) or not c.answered_member:
            continue
        resolved = {}
        for name, window in WINDOWS:
            again = False
            for k in _keys(c):
                times = starts[k]
                i = bisect.bisect_right(times, c.entered_us)     # the next call after it
                if i < len(times) and times[i] <= c.ended_us + window:
                    again = True
            resolved[name] = not again
        for group, key in (("queue", c.answered_queue), ("operator", c.answered_member)):
            row = rows.setdefault((group, key), {"answered": 0, "fcr_24h": 0, "fcr_7d": 0})
            row["answered"] += 1
            row["fcr_24h"] += resolved["24h"]
            row["fcr_7d"] += resolved["7d"]

    def table(group: str) -> list[dict[str, Any]]:
        return [{group: key, **r, "fcr_24h_share": round(r["fcr_24h"] / r["answered"], 4),
                 "fcr_7d_share": round(r["fcr_7d"] / r["answered"], 4)}
                for (g, key), r in sorted(rows.items()) if g == group]
    return {"queues": table("queue"), "operators": table("operator")}


def payable_once(contacts: Iterable[Contact], window_us: int) -> int:
    """Payable calls, at most one per caller (number or account) within `window_us`."""
    last_paid: dict[str, int] = {}
    paid = 0
    for c in sorted(contacts, key=lambda c: c.entered_us):
        if not c.payable:
            continue
        keys = _keys(c)
        if any(c.entered_us - last_paid[k] < window_us for k in keys if k in last_paid):
            continue
        paid += 1
        for k in keys:
            last_paid[k] = c.entered_us
    return paid
