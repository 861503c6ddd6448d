"""The downtime report with the claims that cover it: for the office (the console, the API).

A claim covers an account's downtime when it is that account's and counted one of the
incidents that make the downtime (its `incidents`, as the desk kept them when it was
filed): the provider then knows the caller asked for a recalculation of that outage.  A
claim filed before an incident, or for another account of the same area, does not.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Iterable, Mapping

from ivr.desk.service import CLAIM, Desk, Item, Unavailable, iso
from ivr.reports import downtime, service


def summary(claim: Item) -> dict[str, Any]:
    """What the downtime report says of a claim: enough to find it and judge it."""
    return {"number": claim.number, "state": claim.state, "filed_at": iso(claim.filed_us),
            "from": claim.data.get("from"), "to": claim.data.get("to"),
            "downtime_seconds": claim.data.get("downtime_seconds")}


def covering(items: Iterable[Item], found: Mapping[str, downtime.Downtime]
             ) -> dict[str, list[dict[str, Any]]]:
    """For each account of `found`, the claims (oldest first) that cover its downtime."""
    by_account: dict[str, list[Item]] = defaultdict(list)
    for item in sorted(items, key=lambda i: i.filed_us):
        if item.kind == CLAIM:
            by_account[str(item.data.get("account"))].append(item)
    out: dict[str, list[dict[str, Any]]] = {}
    for account, d in found.items():
        ids = {s.incident for s in d.spans}
        out[account] = [summary(c) for c in by_account.get(account, ())
                        if ids & {str(i.get("id")) for i in c.data.get("incidents") or ()}]
    return out


async def downtime_report(desk: Desk, accounts: Mapping[str, str], from_us: int,
                          to_us: int) -> dict[str, Any]:
    """Every account's downtime in [from_us, to_us) counted up to now (as a claim counts
    it), each with the claims that cover it.  Raises LedgerError; Unavailable while the
    desk has not read its registry (it would say "no claim" of every account)."""
    if not desk.loaded:
        raise Unavailable("the service desk has not read its registry yet")
    found = await service.downtimes(desk.store, accounts, from_us, to_us, desk.now_us(),
                                    desk.incidents.active())
    return downtime.to_json(accounts, found, from_us, to_us, covering(desk.items.values(), found))
