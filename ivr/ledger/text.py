"""Text the ledger can store: no NUL, no lone surrogate.

PostgreSQL refuses a NUL in text, and neither database's driver can encode a
lone surrogate (UTF-8 has none).  What a person types is refused at the door
with a 400 (incidents.py); what comes from the PBX cannot be refused, so the
writer replaces each such character with U+FFFD here, before the store.  The
check is one regular expression over a record's strings; a record is copied
only when it needs it.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from ivr.calls import records as rec
from ivr.ledger.spool import History, Item

_BAD = re.compile("[\x00\ud800-\udfff]")
REPLACEMENT = "\ufffd"


def bad(text: str) -> bool:
    """Whether text holds a NUL or a lone surrogate."""
    return _BAD.search(text) is not None


def clean(text: str) -> str:
    return _BAD.sub(REPLACEMENT, text)


def valid(item: Item) -> Item:
    """The item with NULs and lone surrogates replaced; the same object when it has none."""
    if isinstance(item, History):
        if not any(isinstance(v, str) and bad(v) for v in item.row.values()):
            return item
        return History(item.table, {k: clean(v) if isinstance(v, str) else v
                                    for k, v in item.row.items()})
    if not any(bad(v.queue) or bad(v.member) for v in item.visits) and not bad(
            "".join(_strings(item))):
        return item
    visits = tuple(dataclasses.replace(v, queue=clean(v.queue), member=clean(v.member))
                   for v in item.visits)
    fields: dict[str, Any] = {f.name: clean(getattr(item, f.name))
                              for f in dataclasses.fields(item)
                              if isinstance(getattr(item, f.name), str)}
    return dataclasses.replace(item, visits=visits, **fields)


def _strings(r: rec.CallRecord) -> list[str]:
    return [getattr(r, f.name) for f in dataclasses.fields(r)
            if isinstance(getattr(r, f.name), str)]
