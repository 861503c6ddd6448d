"""Thin asyncio AMI client: one `run()` loop around the sans-IO codec.

run() owns the connection: connect, banner, Login, `on_login` (the app's
resync snapshot), then read and dispatch until the socket dies; back off and
repeat.  Replies are matched to requests by ActionID only and finish on
protocol markers (ami/pending.py).  Nothing is re-sent after a reconnect: a
pending request fails with AmiDisconnected and its caller decides.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from ivr.ami.codec import Banner, Codec, MalformedFrame, Message, serialize
from ivr.ami.errors import AmiDisconnected, AmiError, AmiLoginError
from ivr.ami.pending import Requests
from ivr.ami.recording import Recorder

logger = logging.getLogger(__name__)
wire_logger = logging.getLogger("ivr.ami.wire")

Fields = Mapping[str, str | Sequence[str]]
Reader = asyncio.StreamReader
Writer = asyncio.StreamWriter
_READ_SIZE = 65536
# Late pings in a row, with events arriving but no answer to anything, that
# end the connection (see _ping_loop).
_BUSY_PINGS = 3


class _HookFailed(Exception):
    """on_login raised: the snapshot is incomplete, so the connection goes."""


@dataclass(frozen=True)
class AmiSettings:
    host: str
    port: int
    username: str
    secret: str = field(repr=False)  # never in a log line, even via repr()
    events: str = "system,call,agent,dialplan"
    connect_timeout: float = 5.0
    action_timeout: float = 10.0
    ping_interval: float = 5.0
    ping_timeout: float = 3.0
    backoff_initial: float = 0.5
    # ivr sits next to its PBX: retry at least every 2 s, so it is back within
    # 2 s of AMI (full jitter still spreads many ivr instances apart).
    backoff_max: float = 2.0
    # Asterisk answers a Login before its modules are loaded, and says FullyBooted
    # when they are (at once when they already are): the snapshot waits that long.
    boot_timeout: float = 10.0
    trace: bool = False

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


class AmiClient:
    def __init__(self, settings: AmiSettings, on_event: Callable[[Message], None],
                 on_login: Callable[[AmiClient], Awaitable[None]] | None = None,
                 on_state: Callable[[bool], None] | None = None,
                 keep: Callable[[bytes], object] | None = None,
                 recorder: Recorder | None = None) -> None:
        """`keep` filters raw frames before decoding (see Codec); skipped
        events still count in `events_received`.  `recorder` is given every
        chunk read and every frame sent (`ivr run --record-ami`)."""
        self._settings = settings
        self._keep = keep
        self._recorder = recorder
        self._on_event = on_event
        self._on_login = on_login
        self._on_state = on_state
        self._requests = Requests()
        self._lists = 0                    # list actions of ours still open
        self._booted = asyncio.Event()     # FullyBooted seen on this connection
        self._writer: Writer | None = None
        self._codec: Codec | None = None
        self._logged_in = False
        self._logins = 0
        self._old_malformed = 0
        self._old_skipped = 0
        self._dispatched = 0
        self._last_read = 0.0    # loop time of the last bytes from the PBX
        self._last_answer = 0.0  # ... and of its last answer to any action, late ones too
        self.up = False
        self.reconnects = 0
        self.bytes_received = 0          # AMI bytes read after the banners (bench/load.py)
        self.last_error: str | None = None

    @property
    def events_received(self) -> int:
        """Every event received: dispatched, or skipped undecoded as noise."""
        return self._dispatched + self._old_skipped + (self._codec.skipped if self._codec else 0)

    @property
    def events_skipped(self) -> int:
        """Events received and dropped undecoded as noise (`keep` said no)."""
        return self._old_skipped + (self._codec.skipped if self._codec else 0)

    @property
    def malformed_frames(self) -> int:
        return self._old_malformed + (self._codec.malformed if self._codec else 0)

    async def action(self, name: str, fields: Fields | None = None,
                     timeout: float | None = None) -> Message:
        self._require_login()
        return (await self._request(name, fields, timeout, is_list=False))[0]

    async def action_list(self, name: str, fields: Fields | None = None,
                          timeout: float | None = None) -> list[Message]:
        self._require_login()
        return await self._request(name, fields, timeout, is_list=True)

    def _require_login(self) -> None:
        if not self._logged_in:
            raise AmiDisconnected(f"not connected to {self._settings.address}")

    async def _request(self, name: str, fields: Fields | None,
                       timeout: float | None, is_list: bool) -> list[Message]:
        if (writer := self._writer) is None:
            raise AmiDisconnected(f"not connected to {self._settings.address}")
        action_id = self._requests.new_id()
        data = serialize(name, fields, action_id)
        pending = self._requests.open(action_id, is_list)
        deadline = self._settings.action_timeout if timeout is None else timeout
        if is_list:
            self._decode_all(True)
        timed_out = False
        try:
            async with asyncio.timeout(deadline):
                await self._send(writer, data, (name, action_id, fields))
                return await pending.future
        except TimeoutError:
            timed_out = True
            raise TimeoutError(f"{name} unanswered by {self._settings.address} within {deadline}s") from None
        finally:
            self._requests.close(action_id, timed_out)
            if is_list:
                self._decode_all(False)

    def _decode_all(self, listing: bool) -> None:
        """While any list of ours is open, the noise filter is off: its items may be
        events the filter has never heard of (only the snapshot's are in events.wanted),
        and a list whose Complete is skipped would wait out its timeout.  Lists are
        rare (the snapshot after a login), so the filter's gain stays."""
        self._lists += 1 if listing else -1
        if self._codec is not None:
            self._codec.keep = None if self._lists else self._keep

    async def _send(self, writer: Writer, data: bytes,
                    what: tuple[str, str, Fields | None]) -> None:
        if self._settings.trace:
            name, action_id, fields = what
            wire_logger.debug(">> %s ActionID=%s %s", name, action_id,
                              _masked((fields or {}).items()))
        try:
            if self._recorder is not None:
                self._recorder.sent(data, time.time())
            writer.write(data)
            await writer.drain()
        except OSError as exc:
            raise AmiDisconnected(f"send to {self._settings.address} failed: {exc}") from exc

    def _drain(self, codec: Codec) -> None:
        while (item := codec.next_event()) is not None:
            if isinstance(item, Message):
                self._route(item)
            elif isinstance(item, MalformedFrame):
                logger.warning("skipping malformed AMI frame: %s", item.reason)

    def _route(self, msg: Message) -> None:
        if self._settings.trace:
            wire_logger.debug("<< %s", _masked(msg.headers))
        if msg.response is not None:
            self._last_answer = asyncio.get_running_loop().time()
        if self._requests.take(msg):
            return
        if msg.event == "FullyBooted":
            self._booted.set()      # the client's own: the snapshot may be taken now
        elif msg.event is not None:
            self._dispatch(msg)

    def _dispatch(self, msg: Message) -> None:
        self._dispatched += 1
        try:
            self._on_event(msg)
        except Exception:
            logger.exception("on_event failed for AMI event %s", msg.event)

    async def run(self) -> None:
        """Stay connected until cancelled, backing off between attempts."""
        delay = self._settings.backoff_initial
        while True:
            if await self._connection():
                delay = self._settings.backoff_initial
            await asyncio.sleep(random.uniform(0, delay))  # full jitter
            delay = min(delay * 2, self._settings.backoff_max)

    async def _connection(self) -> bool:
        """One connection's life; True if it got all the way up."""
        try:
            async with asyncio.timeout(self._settings.connect_timeout):
                reader, writer = await asyncio.open_connection(
                    self._settings.host, self._settings.port)
        except OSError as exc:  # TimeoutError included
            self.last_error = _connect_failure(exc, self._settings)
            logger.warning("AMI %s; retrying", self.last_error)
            return False
        try:
            await self._session(reader, writer)
        except Exception as exc:  # every failure ends in a reconnect
            self._report(exc)
        finally:
            was_up = self._teardown(writer)
        return was_up

    async def _session(self, reader: Reader, writer: Writer) -> None:
        codec = self._codec = Codec(keep=None if self._lists else self._keep)
        await self._read_banner(reader, codec)
        self._writer = writer
        self._booted = asyncio.Event()
        reading = asyncio.create_task(self._read_loop(reader, codec))
        try:
            await self._login()
            await self._wait_booted(reading)
            await self._run_on_login()
            self._set_up(True)
            await self._serve(reading)
        finally:
            await _cancel(reading)

    async def _read_banner(self, reader: Reader, codec: Codec) -> None:
        address, timeout = self._settings.address, self._settings.connect_timeout
        try:
            async with asyncio.timeout(timeout):
                while (first := codec.next_event()) is None:
                    if codec.eof:
                        raise AmiDisconnected(f"connection closed by {address}")
                    data = await reader.read(_READ_SIZE)
                    if self._recorder is not None and data:
                        self._recorder.received(data, time.time())
                    codec.receive_data(data)
        except TimeoutError:
            raise AmiDisconnected(f"no AMI banner from {address} within {timeout}s") from None
        if not isinstance(first, Banner):
            raise AmiError(f"{address} sent no AMI banner")
        logger.info("AMI connected to %s: %s", address, first.text)

    async def _read_loop(self, reader: Reader, codec: Codec) -> None:
        address = self._settings.address
        try:
            self._drain(codec)  # whatever came in with the banner
            while data := await reader.read(_READ_SIZE):
                self._last_read = asyncio.get_running_loop().time()
                self.bytes_received += len(data)
                if self._recorder is not None:
                    self._recorder.received(data, time.time())
                codec.receive_data(data)
                self._drain(codec)
        except OSError as exc:
            raise AmiDisconnected(f"connection to {address} lost: {exc}") from exc
        finally:
            self._detach()  # fail pending actions now, not at their deadline
        raise AmiDisconnected(f"connection closed by {address}")

    async def _login(self) -> None:
        s = self._settings
        fields = {"Username": s.username, "Secret": s.secret, "Events": s.events}
        try:
            await self._request("Login", fields, None, is_list=False)
        except AmiDisconnected:
            raise
        except AmiError as exc:
            raise AmiLoginError(str(exc)) from None
        except TimeoutError:
            raise AmiDisconnected(f"no Login reply from {s.address}") from None
        self._logged_in = True
        self._logins += 1
        self.reconnects = self._logins - 1
        logger.info("AMI logged in to %s as %s", s.address, s.username)

    async def _wait_booted(self, reading: asyncio.Task[None]) -> None:
        """Until FullyBooted: a PBX still starting answers QueueStatus with "Invalid/unknown
        command" (app_queue not loaded yet), which cost a reconnect after every restart."""
        s = self._settings
        booted = asyncio.create_task(self._booted.wait())
        try:
            done, _ = await asyncio.wait({booted, reading}, timeout=s.boot_timeout,
                                         return_when=asyncio.FIRST_COMPLETED)
        finally:
            booted.cancel()
        if reading in done:
            reading.result()          # the connection died meanwhile: raises why
        if not self._booted.is_set():
            logger.warning("AMI %s sent no FullyBooted within %.0f s (does user %s read "
                           "'system'?); taking the snapshot anyway", s.address, s.boot_timeout,
                           s.username)

    async def _run_on_login(self) -> None:
        if self._on_login is None:
            return
        try:
            await self._on_login(self)
        except AmiDisconnected:
            raise
        except Exception as exc:
            raise _HookFailed(f"on_login failed: {exc!r}") from exc

    async def _serve(self, reading: asyncio.Task[None]) -> None:
        pinging = asyncio.create_task(self._ping_loop())
        try:
            done, _ = await asyncio.wait({reading, pinging},
                                         return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # raises why the connection ended
        finally:
            await _cancel(pinging)

    async def _ping_loop(self) -> None:
        # A half-open TCP connection reads nothing and errors nothing: only
        # an unanswered request tells it apart from a quiet PBX.  But a PBX
        # that keeps sending events and answers late is busy, not gone:
        # reconnecting would only add a resync to its load.  So a late ping
        # ends the connection only if nothing at all arrived meanwhile, or if
        # _BUSY_PINGS late pings in a row saw events but no answer to
        # anything (requests lost on the way).
        timeout = self._settings.ping_timeout
        loop = asyncio.get_running_loop()
        late, since = 0, 0.0   # late pings in a row with no answer since `since`
        while True:
            await asyncio.sleep(self._settings.ping_interval)
            asked = loop.time()
            try:
                await self.action("Ping", timeout=timeout)
                late = 0
                continue
            except TimeoutError:
                pass
            if self._last_read <= asked:
                raise AmiDisconnected(f"ping unanswered within {timeout}s")
            if late == 0 or self._last_answer > since:
                late, since = 0, asked     # answers still come back, if late
            late += 1
            if late >= _BUSY_PINGS:
                raise AmiDisconnected(f"{late} pings in a row unanswered within {timeout}s, "
                                      "and no answer to anything, while events kept arriving")
            logger.warning("AMI ping unanswered within %ss, but events keep arriving: "
                           "the PBX is busy; staying connected (%d of %d)", timeout, late, _BUSY_PINGS)

    def _report(self, exc: Exception) -> None:
        if isinstance(exc, AmiLoginError):
            self.last_error = f"login failed: {exc}"
            logger.error("AMI %s (user %s at %s); retrying", self.last_error,
                         self._settings.username, self._settings.address)
        elif isinstance(exc, _HookFailed):
            self.last_error = str(exc)
            logger.error("AMI %s; reconnecting", exc, exc_info=exc.__cause__)
        elif isinstance(exc, (AmiError, OSError)):
            self.last_error = str(exc) or type(exc).__name__
            logger.warning("AMI %s; reconnecting", self.last_error)
        else:
            self.last_error = f"unexpected error: {exc!r}"
            logger.error("AMI %s; reconnecting", self.last_error, exc_info=exc)

    def _detach(self) -> None:
        self._writer = None
        self._logged_in = False
        self._requests.fail_all(f"connection to {self._settings.address} lost")

    def _teardown(self, writer: Writer) -> bool:
        was_up = self.up
        self._detach()
        if self._codec is not None:
            self._old_malformed += self._codec.malformed
            self._old_skipped += self._codec.skipped
            self._codec = None
        self._set_up(False)
        _close(writer)
        return was_up

    def _set_up(self, up: bool) -> None:
        if up == self.up:
            return
        self.up = up
        if self._on_state is not None:
            try:
                self._on_state(up)
            except Exception:
                logger.exception("on_state failed")


def _masked(pairs: Iterable[tuple[str, object]]) -> list[tuple[str, object]]:
    return [(key, "********" if key.lower() == "secret" else value) for key, value in pairs]


def _connect_failure(exc: OSError, settings: AmiSettings) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return f"connection refused to {settings.address}"
    if isinstance(exc, TimeoutError):
        return f"connect timeout to {settings.address} after {settings.connect_timeout}s"
    return f"cannot connect to {settings.address}: {exc.strerror or exc}"


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def _close(writer: Writer) -> None:
    # A dead peer would never take our unsent bytes: do not wait for them.
    if writer.transport.get_write_buffer_size():
        writer.transport.abort()
    else:
        writer.close()
