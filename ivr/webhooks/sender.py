"""The webhooks' sender: the outbox's pending messages to their endpoints, at least once.

Theory of operation.  A message enters the outbox with the record it tells of
(ledger/outbox.py), so nothing here has to survive a crash: the outbox is the
queue.  Each pass reads the messages due now (of the endpoints in the config),
and sends each endpoint's in turn, the endpoints side by side:

    claim (next attempt moved past this one's end: nobody else sends it now)
      -> POST the body, signed for this attempt (sign.py), no redirects followed
      -> 2xx: delivered
      -> anything else, a refused connection, no answer within `timeout`: failed,
         the next attempt after Backoff.delay (exponential, with jitter; a longer
         Retry-After is honoured), or dead when that would come more than
         `give_up` (24 h) after the message was queued, or at once on a 410 Gone

A pass runs every `poll` seconds, at once when the desk has written (wake), and
again at once while a full batch came back.  A message claimed by a sender that
then died is due again when its claim runs out, with the same webhook-id: the
receiver may see a message twice, never zero times.  At start the first pass
takes whatever the last run left pending.  `ivr webhooks retry ID` makes a dead
message pending again, and the next pass sends it.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import aiohttp

from ivr.config.webhooks import WebhookConfig
from ivr.ledger.db import LedgerError, problem
from ivr.ledger.outbox import DEAD, PENDING
from ivr.ledger.store import Ledger, Store
from ivr.webhooks import sign

log = logging.getLogger(__name__)

DELIVERED, FAILED = "delivered", "failed"
RESULTS = (DELIVERED, FAILED, DEAD)     # how an attempt ended (ivr_webhook_deliveries_total)
TIMEOUT = 15.0          # seconds: the spec's 15 to 30 for the receiver to answer
CLAIM_MARGIN = 60.0     # a claim lasts the attempt's timeout and this


@dataclass(frozen=True)
class Backoff:
    """The wait after a failed attempt: `first`, doubled with each failure up to `cap`;
    half of it fixed, half drawn at random, so the messages of an endpoint that was
    down do not all come back at once.  Past `give_up` after queueing: dead."""

    first: float = 5.0
    cap: float = 3600.0
    give_up: float = 86_400.0

    def delay(self, attempts: int, draw: float) -> float:
        """After the `attempts`-th failed attempt; `draw` in [0, 1)."""
        full = min(self.cap, self.first * 2.0 ** min(max(attempts - 1, 0), 60))
        return full / 2 + full / 2 * draw


@dataclass(frozen=True)
class Outcome:
    ok: bool
    error: str = ""
    gone: bool = False              # 410: the receiver wants no more of this
    retry_after: float | None = None


class Sender:
    def __init__(self, store: Ledger, endpoints: Sequence[WebhookConfig],
                 clock: Callable[[], float] = time.time, backoff: Backoff = Backoff(),
                 timeout: float = TIMEOUT, poll: float = 1.0, batch: int = 100,
                 draw: Callable[[], float] = random.random) -> None:
        self.store, self.clock, self.backoff, self.draw = store, clock, backoff, draw
        self.endpoints = {e.name: e for e in endpoints}
        self.keys = {e.name: e.key for e in endpoints}
        self.timeout, self.poll, self.batch = timeout, poll, batch
        self.results: Counter[tuple[str, str]] = Counter()
        self.listeners: list[Callable[[str, str], None]] = []   # (endpoint, result)
        self.counts: dict[tuple[str, str], int] = {}   # pending and dead, at the last pass
        self.last_error = ""
        self._told: set[str] = set()
        self._wake = asyncio.Event()
        self._session: aiohttp.ClientSession | None = None

    def wake(self) -> None:
        """Something was written to the outbox: a pass now rather than at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        if not self.endpoints:
            return
        try:
            while True:
                wait = self.poll
                try:
                    wait = await self.send_due()
                    self._recovered()
                except Exception as exc:   # the ledger away, or a bug: never the end of sending
                    self._failed(exc)
                try:
                    await asyncio.wait_for(self._wake.wait(), wait)
                except TimeoutError:
                    pass
                self._wake.clear()
        finally:
            await self.close()

    async def send_due(self) -> float:
        """One pass; the seconds until the next (0 when more are due now)."""
        rows = await self.store.run(Store.outbox_due, self._now_us(), list(self.endpoints),
                                    self.batch)
        by_endpoint: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            by_endpoint.setdefault(row["endpoint"], []).append(row)
        done = await asyncio.gather(*(self._send_all(r) for r in by_endpoint.values()),
                                    return_exceptions=True)
        self.counts = await self.store.run(Store.outbox_counts)
        self._tell_orphans()
        for failure in done:
            if isinstance(failure, BaseException):
                raise failure
        return 0.0 if len(rows) >= self.batch else self.poll

    async def _send_all(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            await self.send(row)

    async def send(self, row: dict[str, Any]) -> str | None:
        """One attempt of an outbox row: its result, None if another sender had it."""
        name, msg_id = str(row["endpoint"]), str(row["id"])
        now_us = self._now_us()
        until_us = now_us + round((self.timeout + CLAIM_MARGIN) * 1e6)
        if not await self.store.run(Store.outbox_claim, msg_id, now_us, until_us):
            return None
        outcome = await self.attempt(self.endpoints[name], msg_id, str(row["body"]).encode())
        done_us = self._now_us()
        if outcome.ok:
            await self.store.run(Store.outbox_delivered, msg_id, done_us)
            return self._count(name, DELIVERED)
        attempts = int(row["attempts"]) + 1
        delay = self.backoff.delay(attempts, self.draw())
        if outcome.retry_after is not None:
            delay = max(delay, min(outcome.retry_after, self.backoff.cap))
        next_us = done_us + round(delay * 1e6)
        dead = outcome.gone or next_us > int(row["queued_us"]) + round(self.backoff.give_up * 1e6)
        await self.store.run(Store.outbox_failed, msg_id, outcome.error, None if dead else next_us)
        if dead:
            log.error("webhook %s to %s (%s): dead-lettered after %d attempt(s): %s; "
                      "`ivr webhooks retry %s` sends it again", msg_id, name, row["event"],
                      attempts, outcome.error, msg_id)
            return self._count(name, DEAD)
        log.warning("webhook %s to %s (%s): attempt %d failed: %s; next in %.0f s",
                    msg_id, name, row["event"], attempts, outcome.error, delay)
        return self._count(name, FAILED)

    async def attempt(self, hook: WebhookConfig, msg_id: str, body: bytes) -> Outcome:
        """POST the body, signed now; what came of it."""
        headers = sign.headers(self.keys[hook.name], msg_id, int(self.clock()), body)
        try:
            async with self._client().post(hook.url, data=body, headers=headers,
                                           allow_redirects=False,
                                           timeout=aiohttp.ClientTimeout(total=self.timeout)
                                           ) as resp:
                if 200 <= resp.status < 300:
                    return Outcome(True)
                return Outcome(False, f"HTTP {resp.status}", gone=resp.status == 410,
                               retry_after=retry_after(resp.headers.get("Retry-After")))
        except asyncio.TimeoutError:
            return Outcome(False, f"no answer within {self.timeout:g} s")
        except (aiohttp.ClientError, OSError) as exc:
            return Outcome(False, _one_line(exc))

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(headers={"User-Agent": "ivr-webhooks"})
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _count(self, endpoint: str, result: str) -> str:
        self.results[endpoint, result] += 1
        for listener in self.listeners:
            listener(endpoint, result)
        return result

    def _tell_orphans(self) -> None:
        """Once a run: messages of an endpoint the config no longer has wait, untouched."""
        for (endpoint, state), n in self.counts.items():
            if state == PENDING and endpoint not in self.endpoints and endpoint not in self._told:
                self._told.add(endpoint)
                log.warning("webhooks: %d message(s) for endpoint %s, which the config no "
                            "longer has, wait in the outbox", n, endpoint)

    def _failed(self, exc: Exception) -> None:
        reason = str(exc) if isinstance(exc, LedgerError) else problem(exc)
        if reason != self.last_error:
            log.warning("webhooks: cannot read or update the outbox (%s); trying again", reason)
        self.last_error = reason

    def _recovered(self) -> None:
        if self.last_error:
            log.info("webhooks: the outbox answers again")
            self.last_error = ""

    def _now_us(self) -> int:
        return round(self.clock() * 1e6)


def retry_after(value: str | None) -> float | None:
    """A Retry-After of seconds (its HTTP-date form is not honoured); None if none."""
    if value is None or not value.strip().isdigit():
        return None
    return float(value.strip())


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}".rstrip(": ")[:300]
