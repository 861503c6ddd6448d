"""Repeat callers: who calls again after hanging up unanswered, or from a second line.

Callers game the 30 s rule: hang up and call again, even from two numbers at
once.  ivr judges each call at entry (the dialplan's /dialplan/v1/entry):

- `after_abandon` / `after_timeout`: the same number or account called within
  routing.repeat_window_seconds and was not answered then (it hung up in the
  queue, or it reached the 30 s timeout and was never answered after);
- `concurrent`: the same account is waiting on another line right now.

Every caller enters the queue with Asterisk's QUEUE_PRIO set from the time it
*first* joined (`prio`): an earlier first join is a higher priority, so a
repeat caller keeps their place, and hanging up and calling again gains
nothing and loses nothing.  Callers ivr did not route (ivr down) have
priority 0 and wait behind the others.  An answered call ends the chain.

What is remembered lives in memory and comes back at start from the ledger
(`restore`: the calls that ended within the window, and the chains their
repeats rows name), so a restart of ivr does not forget who just hung up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Protocol

from ivr.calls.records import CallRecord

AFTER_ABANDON, AFTER_TIMEOUT, CONCURRENT = "after_abandon", "after_timeout", "concurrent"
KINDS = (AFTER_ABANDON, AFTER_TIMEOUT, CONCURRENT)
# QUEUE_PRIO: one less every second since 2023-11-14; fits a 32-bit int until 2087.
PRIO_EPOCH_S, PRIO_BASE = 1_700_000_000, 2_000_000_000


def prio(first_joined_us: int) -> int:
    return PRIO_BASE - (first_joined_us // 1_000_000 - PRIO_EPOCH_S)


class Waiting(Protocol):
    @property
    def uniqueid(self) -> str: ...
    @property
    def account(self) -> str: ...
    @property
    def first_entered_us(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Earlier:
    uniqueid: str
    kind: str
    first_us: int          # when the first call of the chain joined
    ended_us: int


@dataclass(frozen=True, slots=True)
class Verdict:
    kind: str | None       # None: not a repeat
    repeat_of: str         # the earlier (or the other waiting) call's uniqueid
    first_us: int          # the chain's first join: the caller's place

    @property
    def prio(self) -> int:
        return prio(self.first_us)


class Repeats:
    def __init__(self, window_s: float, clock: Callable[[], float]) -> None:
        self.window_us = round(window_s * 1e6)
        self.clock = clock
        self.by_number: dict[str, Earlier] = {}
        self.by_account: dict[str, Earlier] = {}
        # Calls in progress that repeat an earlier one: their chain's first join.
        self._first: dict[str, int] = {}

    def judge(self, uniqueid: str, number: str, account: str,
              waiting: Iterable[Waiting]) -> Verdict:
        now = round(self.clock() * 1e6)
        if account:
            for j in waiting:
                if j.account == account and j.uniqueid != uniqueid:
                    return Verdict(CONCURRENT, j.uniqueid,
                                   self._first.get(j.uniqueid, j.first_entered_us))
        earlier = self._fresh(self.by_number, number, now) or self._fresh(self.by_account,
                                                                           account, now)
        if earlier is None:
            self._first.pop(uniqueid, None)
            return Verdict(None, "", now)
        if len(self._first) > 100_000:
            # Calls judged but never queued (they hung up in the greeting) end no journey:
            # forget them all now and then; a call forgotten here starts a chain anew.
            self._first.clear()
        self._first[uniqueid] = earlier.first_us
        return Verdict(earlier.kind, earlier.uniqueid, earlier.first_us)

    def _fresh(self, index: dict[str, Earlier], key: str, now: int) -> Earlier | None:
        found = index.get(key) if key else None
        if found is not None and now - found.ended_us > self.window_us:
            del index[key]
            return None
        return found

    def restore(self, records: Iterable[CallRecord], firsts: Mapping[str, int]) -> int:
        """At start: the ledger's calls that ended lately, as if they had just ended here;
        `firsts` is the chain's first join of those that were repeats themselves (the
        ledger's repeats rows).  How many of them a next call could repeat."""
        for record in sorted(records, key=lambda r: (r.ended_us, r.uniqueid)):
            if record.uniqueid in firsts:
                self._first[record.uniqueid] = firsts[record.uniqueid]
            self.ended(record)
        now = round(self.clock() * 1e6)
        return len({e.uniqueid for index in (self.by_number, self.by_account)
                    for e in index.values() if now - e.ended_us <= self.window_us})

    def ended(self, record: CallRecord) -> None:
        """A call ended: answered, it ends its chain; unanswered after a queue, the next
        call from that number or account within the window is its repeat."""
        # A chain begins with a call's own first join, as Asterisk stamped it.
        first = self._first.pop(record.uniqueid, record.entered_us)
        keys = [(self.by_number, record.caller), (self.by_account, record.account)]
        if record.outcome == "answered":
            for index, key in keys:
                index.pop(key, None)
            return
        if not record.visits:
            return
        kind = AFTER_TIMEOUT if any(v.outcome == "timeout" for v in record.visits) else AFTER_ABANDON
        earlier = Earlier(record.uniqueid, kind, first, record.ended_us)
        for index, key in keys:
            if key:
                index[key] = earlier
        if len(self.by_number) > 100_000:      # a day of callers: drop the stale ones
            now = round(self.clock() * 1e6)
            for index in (self.by_number, self.by_account):
                for k in [k for k, e in index.items() if now - e.ended_us > self.window_us]:
                    del index[k]
