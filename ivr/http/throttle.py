"""Wrong credentials, per source address: logged, counted and slowed down.

One Guard for the web app: the control API's bearer tokens, the console's
sign-in form and the dialplan's secret all report their failures here.

- Every failure is a WARNING with the source address and what was tried
  (never the token or secret itself), and `ivr_auth_failures_total{kind}`.
- LIMIT failures from one address within WINDOW seconds throttle that
  address: until its oldest failure in the window is WINDOW old, every
  request from it that presents a credential (a bearer token, the sign-in
  form, a dialplan secret) gets 429 with Retry-After, the right one too, and
  the credential is not even compared.  Refusing the right one too is what
  makes the throttle worth having: if a right token still passed, the 429
  would only tell a guesser which guesses were wrong.  Only failures count;
  a request that presents no credential (the health checks, a stale console
  cookie) neither counts nor is refused, so people signed in already keep
  working from behind the same address.
- The table is bounded (MAX_SOURCES): under a spread-out attack the sources
  seen longest ago are forgotten first.

The source is the peer address of the connection: behind a reverse proxy
every request shares the proxy's, so bind ivr where it is reached directly.
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict, deque
from typing import Callable

from prometheus_client import CollectorRegistry, Counter

log = logging.getLogger(__name__)

LIMIT = 10
WINDOW = 60.0
MAX_SOURCES = 10_000
KINDS = ("api_token", "console_sign_in", "dialplan_secret")


class Guard:
    def __init__(self, registry: CollectorRegistry | None, limit: int = LIMIT,
                 window: float = WINDOW, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.window, self.clock = limit, window, clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self.failures = Counter("ivr_auth_failures", "Wrong credentials, by kind: api_token, "
                                "console_sign_in, dialplan_secret", ["kind"], registry=registry)
        for kind in KINDS:     # 0, not "no data", on dashboards
            self.failures.labels(kind=kind)

    def retry_after(self, source: str) -> int:
        """Seconds until `source` may present a credential again; 0 if it may now."""
        times = self._recent(source)
        if len(times) < self.limit:
            return 0
        return max(1, math.ceil(times[-self.limit] + self.window - self.clock()))

    def failed(self, source: str, kind: str, what: str) -> None:
        """A wrong credential from `source`: `what` says which, never the credential."""
        self.failures.labels(kind=kind).inc()
        times = self._recent(source)
        times.append(self.clock())
        self._failures[source] = times
        self._failures.move_to_end(source)
        while len(self._failures) > MAX_SOURCES:
            self._failures.popitem(last=False)
        log.warning("wrong %s from %s: %s (%d in %.0f s)", kind.replace("_", " "), source, what,
                    len(times), self.window)
        if len(times) == self.limit:
            log.warning("%s throttled for %d s: %d wrong credentials in %.0f s", source,
                        self.retry_after(source), self.limit, self.window)

    def refused(self, source: str, kind: str) -> None:
        """A request turned away while throttled: not counted again, and at DEBUG only, so
        a flood of them cannot flood the log (the WARNING said when it began)."""
        log.debug("%s from %s refused unread: throttled (429)", kind.replace("_", " "), source)

    def _recent(self, source: str) -> deque[float]:
        times = self._failures.get(source)
        if times is None:
            return deque(maxlen=self.limit)
        horizon = self.clock() - self.window
        while times and times[0] <= horizon:
            times.popleft()
        if not times:
            del self._failures[source]
        return times


def source_of(peer: str | None) -> str:
    """The request's peer address; a Unix socket or a test transport has none."""
    return peer or "unknown"
