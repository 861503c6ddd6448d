"""The registry: every ticket, complaint and claim, and each change of theirs, as
an append-only chain of entries (in the spirit of Certificate Transparency,
RFC 6962: each entry commits to all before it).

An entry's hash is SHA-256 over its own fields and the hash of the entry
before (the first entry's `prev` is 64 zeros).  The chain lives in the
ledger's `registry` table, its head (last seq and hash) in `registry_head`,
written in the same transaction.  Nothing in ivr updates or deletes an
entry; `verify()` finds one that somebody changed, removed or slipped in
directly in the database:

- altered: the entry's fields no longer give its hash;
- removed: a gap in the sequence, or the chain ends before the head;
- inserted: an entry whose `prev` is not the hash before it, or a sequence
  number seen twice.

An export (`ivr registry export`) gives the provider the entries and the
head; a head the provider kept proves later that nothing before it changed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

GENESIS = "0" * 64
FIELDS = ("seq", "at_us", "kind", "number", "event", "actor_role", "actor", "body", "prev", "hash")


@dataclass(frozen=True, slots=True)
class Entry:
    seq: int
    at_us: int
    kind: str            # ticket, complaint or claim
    number: str          # "" for a refused ticket, which gets none
    event: str           # filed, refused, state, note
    actor_role: str
    actor: str
    body: str            # canonical JSON of the entry's data
    prev: str
    hash: str

    @property
    def data(self) -> dict[str, Any]:
        value = json.loads(self.body)
        return value if isinstance(value, dict) else {}

    def row(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in FIELDS}

    def to_json(self) -> dict[str, Any]:
        return {**self.row(), "body": self.data}

    def leaf(self) -> bytes:
        return material(self.seq, self.at_us, self.kind, self.number, self.event,
                        self.actor_role, self.actor, self.body, self.prev)


def canonical(data: Mapping[str, Any]) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def material(seq: int, at_us: int, kind: str, number: str, event: str, actor_role: str,
             actor: str, body: str, prev: str) -> bytes:
    """An entry's canonical bytes: what its chain hash is over, and its leaf in
    the Merkle tree (tlog.py)."""
    return json.dumps([seq, at_us, kind, number, event, actor_role, actor, body, prev],
                      separators=(",", ":"), ensure_ascii=False).encode()


def digest(seq: int, at_us: int, kind: str, number: str, event: str, actor_role: str,
           actor: str, body: str, prev: str) -> str:
    return hashlib.sha256(material(seq, at_us, kind, number, event, actor_role, actor, body,
                                   prev)).hexdigest()


def make(head: tuple[int, str], at_us: int, kind: str, number: str, event: str,
         actor_role: str, actor: str, data: Mapping[str, Any]) -> Entry:
    """The entry that follows `head` (its seq and hash; (0, GENESIS) for none)."""
    seq, prev = head[0] + 1, head[1]
    body = canonical(data)
    return Entry(seq, at_us, kind, number, event, actor_role, actor, body, prev,
                 digest(seq, at_us, kind, number, event, actor_role, actor, body, prev))


def of_row(row: Mapping[str, Any] | tuple[Any, ...]) -> Entry:
    values = row if isinstance(row, tuple) else tuple(row[f] for f in FIELDS)
    seq, at_us, *rest = values
    return Entry(int(seq), int(at_us), *(str(v) for v in rest))


@dataclass(frozen=True, slots=True)
class Verdict:
    entries: int
    head: tuple[int, str]
    problem: str | None = None      # the first thing wrong, naming its entry

    @property
    def intact(self) -> bool:
        return self.problem is None


def verify(entries: Iterable[Entry], head: tuple[int, str] | None) -> Verdict:
    """Check the chain, in seq order, against the head kept beside it."""
    count, last, expected = 0, (0, GENESIS), 1
    for e in entries:
        where = f"entry {e.seq}" + (f" ({e.kind} {e.number})" if e.number else f" ({e.kind})")
        if e.seq < expected:
            return Verdict(count, last, f"{where} inserted: sequence number {e.seq} seen twice")
        if e.seq > expected:
            missing = f"{expected}" if e.seq == expected + 1 else f"{expected}-{e.seq - 1}"
            return Verdict(count, last, f"entry {missing} removed (the chain goes on at {e.seq})")
        if digest(e.seq, e.at_us, e.kind, e.number, e.event, e.actor_role, e.actor, e.body,
                  e.prev) != e.hash:
            return Verdict(count, last, f"{where} altered: its content does not give its hash")
        if e.prev != last[1]:
            return Verdict(count, last, f"{where} inserted or replaced: it does not follow "
                                        f"entry {last[0]}'s hash")
        count, last, expected = count + 1, (e.seq, e.hash), expected + 1
    if head is None:
        return Verdict(count, last, None if count == 0 else
                       f"the head is missing (the chain has {count} entries)")
    if head != last:
        if head[0] > last[0]:
            return Verdict(count, last, f"entry {last[0] + 1}-{head[0]} removed: the chain "
                                        f"ends at {last[0]}, its head says {head[0]}")
        return Verdict(count, last, f"the head (entry {head[0]}) does not match the chain's "
                                    f"last entry {last[0]}")
    return Verdict(count, last)
