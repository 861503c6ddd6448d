"""The registry as a transparency log: its entries as the leaves of a Merkle
tree (merkle.py), its signed checkpoints (checkpoint.py), and the proofs
that go to the provider and to callers.

Leaf i is entry seq i+1, its data the entry's canonical bytes
(registry.material: the very bytes of its chain hash).  The tree is
computed from the entries as the database has them at that moment, so an
entry removed, altered or slipped in changes every root from its place on:
a checkpoint signed earlier is then no prefix of today's log, whatever the
chain's head row says.

An inclusion proof file (`ivr registry prove NUMBER`) is one JSON object:

    {"format": "ivr-registry-inclusion/1",
     "number": "...", "entry": {"seq", "at_us", "kind", "number", "event",
                                "actor_role", "actor", "body", "prev", "hash"},
     "index": 0-based leaf index, "tree_size": n,
     "hashes": [base64 of each 32-byte hash of the audit path, leaf to root]}

`body` is the entry's canonical JSON as a string, so the leaf's bytes are
rebuilt exactly.  The proof holds against a checkpoint of `tree_size`
entries, given beside it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Sequence

from ivr.desk import merkle
from ivr.desk.checkpoint import Checkpoint, NoteError, Signer, b64, unb64
from ivr.desk.registry import FIELDS, Entry

FORMAT = "ivr-registry-inclusion/1"
MAX_PROOF_FILE = 256 * 1024
MAX_PATH = 64


def leaves(entries: Sequence[Entry]) -> list[bytes]:
    return [merkle.leaf_hash(e.leaf()) for e in entries]


def checkpoint(signer: Signer, hashes: Sequence[bytes]) -> str:
    """The signed note of the tree of `hashes` (leaf hashes), as of now."""
    return signer.sign(Checkpoint(signer.name, len(hashes), merkle.root(hashes)).text())


def consistency(hashes: Sequence[bytes], first: int, second: int) -> list[bytes]:
    """The proof that the tree of `first` leaves is a prefix of the tree of `second`."""
    if not 0 <= first <= second <= len(hashes):
        raise ValueError(f"expected 0 <= from <= to <= {len(hashes)} (the registry's size)")
    return merkle.consistency_proof(first, hashes[:second])


@dataclass(frozen=True)
class Extends:
    """Does today's log extend the one a checkpoint describes?"""
    ok: bool
    size: int
    why: str


def extends(cp: Checkpoint, hashes: Sequence[bytes]) -> Extends:
    """Prove (and verify the proof) that today's tree extends `cp`'s."""
    n = len(hashes)
    if n < cp.size:
        return Extends(False, n, f"the registry has {n} entries, the checkpoint {cp.size}: "
                                 f"entries were removed (or the head moved back)")
    proof = merkle.consistency_proof(cp.size, hashes)
    if not merkle.verify_consistency(cp.size, n, cp.root, merkle.root(hashes), proof):
        return Extends(False, n, f"the registry's first {cp.size} entries are not the ones "
                                 f"the checkpoint signed: an entry was altered, removed or "
                                 f"inserted")
    return Extends(True, n, f"the registry ({n} entries) extends the checkpoint of {cp.size}")


def prove(entries: Sequence[Entry], number: str, size: int | None = None) -> dict[str, Any]:
    """The inclusion proof of the first entry of `number` (its filing) in the
    tree of the first `size` entries (all without it)."""
    hashes = leaves(entries)
    size = len(hashes) if size is None else size
    index = next((i for i, e in enumerate(entries) if e.number == number), None)
    if index is None:
        raise LookupError(f"no ticket, complaint or claim numbered {number} in the registry")
    if index >= size:
        raise LookupError(f"{number} was filed after the checkpoint's {size} entries")
    entry = entries[index]
    return {"format": FORMAT, "number": number, "entry": entry.row(), "index": index,
            "tree_size": size,
            "hashes": [b64(h) for h in merkle.inclusion_proof(index, hashes[:size])]}


@dataclass(frozen=True)
class Proof:
    entry: Entry
    index: int
    tree_size: int
    hashes: list[bytes]

    @classmethod
    def parse(cls, data: bytes) -> Proof:
        """A proof file, or NoteError naming what is wrong with it."""
        if len(data) > MAX_PROOF_FILE:
            raise NoteError(f"{len(data)} bytes: too big for a proof (at most {MAX_PROOF_FILE})")
        try:
            doc = json.loads(data)
        except (ValueError, RecursionError):
            raise NoteError("not JSON: not a proof from `ivr registry prove`") from None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise NoteError(f"not a proof from `ivr registry prove` (format {FORMAT})")
        index, size, hashes, e = (doc.get(k) for k in ("index", "tree_size", "hashes", "entry"))
        if not (isinstance(index, int) and isinstance(size, int) and _count(index)
                and _count(size) and index < size):
            raise NoteError("index and tree_size: expected 0 <= index < tree_size")
        if not isinstance(hashes, list) or len(hashes) > MAX_PATH \
                or not all(isinstance(h, str) for h in hashes):
            raise NoteError(f"hashes: expected a list of at most {MAX_PATH} base64 strings")
        path = [unb64(h, f"hashes[{i}]") for i, h in enumerate(hashes)]
        if bad := [i for i, h in enumerate(path) if len(h) != merkle.HASH_SIZE]:
            raise NoteError(f"hashes[{bad[0]}]: not {merkle.HASH_SIZE} bytes")
        return cls(_entry(e), index, size, path)

    def verify(self, cp: Checkpoint) -> bool:
        return merkle.verify_inclusion(self.index, cp.size, merkle.leaf_hash(self.entry.leaf()),
                                       self.hashes, cp.root)


def _count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _entry(value: object) -> Entry:
    if not isinstance(value, dict) or set(value) != set(FIELDS):
        raise NoteError(f"entry: expected an object of {', '.join(FIELDS)}")
    if not _count(value["seq"]) or not _count(value["at_us"]) or \
            not all(isinstance(value[f], str) for f in FIELDS[2:]):
        raise NoteError("entry: seq and at_us are numbers, the rest strings")
    return Entry(**value)
