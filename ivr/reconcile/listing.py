"""A list a reconciliation fills that may outgrow memory (a month the ledger lacks
whole is millions of missing stints): `Listing` holds its first `keep` items, and
either counts the rest (what a text report, which shows the first few, needs) or
pickles them to an anonymous temporary file in chunks (what --json, which lists
them all, needs), read back in order when iterated."""

from __future__ import annotations

import pickle
import tempfile
from collections.abc import Iterator, Sequence
from typing import IO, Generic, TypeVar, overload

T = TypeVar("T")
CHUNK = 2000                   # items pickled together: one pickle call per item is slow


class Listing(Sequence[T], Generic[T]):
    """Items in the order appended.  len() counts them all; iteration gives them all
    when `spill`, else only the first `keep` (the rest were counted, not kept)."""

    def __init__(self, keep: int, spill: bool) -> None:
        self.keep, self.spill = keep, spill
        self._held: list[T] = []
        self._chunk: list[T] = []
        self._file: IO[bytes] | None = None
        self._chunks = 0
        self._count = 0

    def append(self, item: T) -> None:
        self._count += 1
        if len(self._held) < self.keep:
            self._held.append(item)
        elif self.spill:
            self._chunk.append(item)
            if len(self._chunk) >= CHUNK:
                self._flush()

    def _flush(self) -> None:
        if self._file is None:
            self._file = tempfile.TemporaryFile()
        self._file.seek(0, 2)
        pickle.dump(self._chunk, self._file, pickle.HIGHEST_PROTOCOL)
        self._chunks += 1
        self._chunk = []

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[T]:
        yield from self._held
        if self._file is not None:
            self._file.seek(0)
            for _ in range(self._chunks):
                chunk: list[T] = pickle.load(self._file)
                yield from chunk
        yield from self._chunk

    @overload
    def __getitem__(self, index: int) -> T: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[T]: ...

    def __getitem__(self, index: int | slice) -> T | Sequence[T]:
        if isinstance(index, slice):
            if index.start is None and index.step is None and index.stop is not None \
                    and 0 <= index.stop <= len(self._held):
                return self._held[:index.stop]           # the head: what a text report shows
            return list(self)[index]
        if 0 <= index < len(self._held):
            return self._held[index]
        return list(self)[index]

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
