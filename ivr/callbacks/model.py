"""A callback's life, decided: pure functions of a request, its events and the clock.

    requested --place--> placed (a placeholder waits in the queue at the caller's place)
    placed --an agent takes it, the dialplan asks--> dialing (one dial, counted)
    dialing --ANSWER--> connected                                   (final)
    dialing --BUSY, NOANSWER, CHANUNAVAIL, CONGESTION, CANCEL...--> retry, or
            failed after callback.attempts dials                    (final)
    retry --callback.retry_seconds--> placed again, at the same place
    requested, placed, retry --the customer calls in--> cancelled  (final)

The caller's place is Asterisk's QUEUE_PRIO as the caller had it (routing/repeats.py):
every placeholder of the request joins with it, so nobody who reached the queue later
is served first, and the callback never jumps ahead of those who were there first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum

from ivr.ledger.rows import CallbackEvent, CallbackRow

# A number ivr will dial: digits, maybe a leading +, 3 to 20 of them.  Nothing else ever
# reaches the dial string (config/callback.py checks the template).
CALLABLE = re.compile(r"\+?[0-9]{3,20}")
RESULTS = ("requested", "connected", "failed", "cancelled")    # ivr_callbacks_total{result}


class State(StrEnum):
    PLACING = "placing"        # asked for, its placeholder not in the queue yet
    WAITING = "waiting"        # its placeholder waits in the queue
    DIALING = "dialing"        # an agent took it; the customer is being dialed
    RETRY = "retry"            # a dial failed; placed again at next_us
    CONNECTED = "connected"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINAL = frozenset({State.CONNECTED, State.FAILED, State.CANCELLED})
PENDING = frozenset({State.PLACING, State.WAITING, State.RETRY})


@dataclass(eq=False)
class Callback:
    row: CallbackRow
    state: State = State.PLACING
    attempts: int = 0          # dials made
    placements: int = 0        # placeholders sent into the queue
    placeholder: str = ""      # the waiting placeholder's uniqueid
    placed_us: int = 0         # when the last placeholder was sent
    next_us: int = 0           # RETRY: when to place again
    reason: str = ""
    area: str = ""             # the customer's area (the directory's), for the agent's card
    stop_after_dial: bool = False   # the customer called in while being dialed
    events: list[CallbackEvent] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.row.id

    @property
    def pending(self) -> bool:
        return self.state in PENDING

    def exten(self) -> str:
        """The Local channel's extension of its current placeholder: cbIDnN."""
        return f"cb{self.id}n{self.placements}"

    def to_json(self, position: int | None) -> dict[str, object]:
        return {"id": self.id, "pbx": self.row.pbx, "number": self.row.number,
                "account": self.row.account, "queue": self.row.queue, "origin": self.row.origin,
                "requested_at": self.row.requested_us / 1e6, "state": self.state.value,
                "attempts": self.attempts, "position": position,
                "next_attempt_at": self.next_us / 1e6 if self.state is State.RETRY else None,
                "reason": self.reason}


def callable_number(number: str) -> bool:
    return bool(CALLABLE.fullmatch(number))


def after_dial(cb: Callback, status: str, attempts: int, retry_us: int, now_us: int) -> State:
    """What a dial's DIALSTATUS makes of a callback (its attempt already counted)."""
    if status == "ANSWER":
        return State.CONNECTED
    if cb.stop_after_dial or cb.attempts >= attempts:
        return State.FAILED
    cb.next_us = now_us + retry_us
    return State.RETRY


def replay(row: CallbackRow, events: list[CallbackEvent], retry_us: int) -> Callback:
    """A callback as its kept events leave it (at start).  A dial whose result was never
    kept (ivr was away) is not made again: the request fails, never two dials."""
    cb = Callback(row, events=list(events))
    for e in events:
        if e.event == "placed":
            cb.placements = max(cb.placements, e.attempt)
            cb.state = State.PLACING
        elif e.event == "queued":
            cb.state, cb.placeholder = State.WAITING, e.uniqueid
        elif e.event == "dialing":
            cb.state, cb.attempts = State.DIALING, e.attempt
        elif e.event == "retry":
            cb.state, cb.next_us, cb.reason = State.RETRY, e.at_us + retry_us, e.reason
    if cb.state is State.DIALING:
        cb.state, cb.reason = State.FAILED, "result unknown: ivr was away during the dial"
    return cb
