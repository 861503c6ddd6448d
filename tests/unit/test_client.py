"""AmiClient against a fake AMI server on 127.0.0.1:0 (connection faults)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from ivr.ami.client import AmiClient, AmiSettings
from ivr.ami.errors import AmiDisconnected, AmiError
from ivr.ami.codec import Codec, Message

SECRET = "s3cret-Pa55"
Pairs = list[tuple[str, str]]


async def eventually(cond: Callable[[], bool], timeout: float = 5) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(0.01)


def frame(pairs: Pairs) -> bytes:
    return "".join(f"{k}: {v}\r\n" for k, v in pairs).encode() + b"\r\n"


class FakeAmi:
    """Banner, Login, Ping, QueueStatus; actions named in `hold` get no reply."""

    def __init__(self, secret: str = SECRET) -> None:
        self.secret = secret
        self.received: list[Message] = []
        self.held: list[Message] = []
        self.hold: set[str] = set()
        self.conns: list[asyncio.StreamWriter] = []
        self.stalled: set[asyncio.StreamWriter] = set()
        self.booted = True          # False: a PBX still loading its modules
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        self.drop()
        await self._server.wait_closed()

    def actions(self, name: str) -> list[Message]:
        return [m for m in self.received if m["Action"].lower() == name.lower()]

    @property
    def writer(self) -> asyncio.StreamWriter:
        return self.conns[-1]

    def drop(self) -> None:
        for writer in self.conns:
            writer.transport.abort()

    def stall(self) -> None:
        """Half-open: keep the socket, never answer again on this connection."""
        self.stalled.add(self.writer)

    def boot(self) -> None:
        """The PBX finished loading: FullyBooted to every open connection."""
        self.booted = True
        for writer in self.conns:
            writer.write(frame(FULLY_BOOTED))

    def send(self, pairs: Pairs) -> None:
        self.writer.write(frame(pairs))

    def reply(self, msg: Message, pairs: Pairs) -> None:
        self.send([("Response", "Success"), ("ActionID", msg["ActionID"])] + pairs)

    async def _handle(self, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
        self.conns.append(writer)
        writer.write(b"Asterisk Call Manager/11.0.0\r\n")
        codec = Codec()
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(4096):
                codec.receive_data(data)
                while (msg := codec.next_event()) is not None:
                    if isinstance(msg, Message):
                        self._answer(msg, writer)
        self.conns.remove(writer)
        writer.close()

    def _answer(self, msg: Message, writer: asyncio.StreamWriter) -> None:
        self.received.append(msg)
        name, action_id = msg["Action"], msg["ActionID"]
        if writer in self.stalled or name in self.hold:
            self.held.append(msg)
        elif name == "Login":
            reply = self._login_reply(msg, action_id)
            writer.write(frame(reply))
            if reply[0] == ("Response", "Success") and self.booted:
                writer.write(frame(FULLY_BOOTED))    # as Asterisk does, once it is up
        elif name == "QueueStatus":
            writer.write(b"".join(frame(p) for p in queue_status(action_id)))
        elif name == "QueueSummary":
            writer.write(b"".join(frame(p) for p in queue_summary(action_id)))
        elif name == "Fail":
            writer.write(frame([("Response", "Error"), ("ActionID", action_id),
                                ("Message", "No such thing")]))
        else:
            writer.write(frame([("Response", "Success"), ("ActionID", action_id),
                                ("Ping", "Pong")]))

    def _login_reply(self, msg: Message, action_id: str) -> Pairs:
        if msg["Secret"] == self.secret:
            return [("Response", "Success"), ("ActionID", action_id),
                    ("Message", "Authentication accepted")]
        return [("Response", "Error"), ("ActionID", action_id),
                ("Message", "Authentication failed")]


def queue_summary(action_id: str) -> list[Pairs]:
    """A list none of whose events the noise filter knows (events.wanted)."""
    return [
        [("Response", "Success"), ("ActionID", action_id), ("EventList", "start"),
         ("Message", "Queue summary will follow")],
        [("Event", "QueueSummary"), ("Queue", "sales"), ("Available", "1"),
         ("Callers", "0"), ("ActionID", action_id)],
        [("Event", "QueueSummaryComplete"), ("ActionID", action_id),
         ("EventList", "Complete"), ("ListItems", "1")],
    ]


FULLY_BOOTED: Pairs = [("Event", "FullyBooted"), ("Privilege", "system,all"),
                       ("Status", "Fully Booted")]


def queue_status(action_id: str) -> list[Pairs]:
    return [
        [("Response", "Success"), ("ActionID", action_id), ("EventList", "start"),
         ("Message", "Queue status will follow")],
        [("Event", "QueueParams"), ("Queue", "sales"), ("ActionID", action_id)],
        # An ordinary event interleaved with the list: it is not part of it.
        [("Event", "Newchannel"), ("Uniqueid", "1.1")],
        [("Event", "QueueMember"), ("Queue", "sales"), ("Name", "op1"),
         ("ActionID", action_id)],
        [("Event", "QueueStatusComplete"), ("ActionID", action_id),
         ("EventList", "Complete"), ("ListItems", "2")],
    ]


@pytest.fixture
async def server() -> AsyncIterator[FakeAmi]:
    fake = FakeAmi()
    await fake.start()
    yield fake
    await fake.stop()


def make_settings(port: int, **overrides: Any) -> AmiSettings:
    values: dict[str, Any] = dict(
        host="127.0.0.1", port=port, username="ivr", secret=SECRET,
        connect_timeout=2.0, action_timeout=2.0, ping_interval=60.0,
        ping_timeout=2.0, backoff_initial=0.01, backoff_max=0.05)
    values.update(overrides)
    return AmiSettings(**values)


class Recorder:
    def __init__(self) -> None:
        self.events: list[Message] = []
        self.logins = 0
        self.states: list[bool] = []

    def on_event(self, msg: Message) -> None:
        self.events.append(msg)

    def names(self) -> list[str | None]:
        return [m.event for m in self.events]

    async def on_login(self, client: AmiClient) -> None:
        self.logins += 1

    def client(self, settings: AmiSettings) -> AmiClient:
        return AmiClient(settings, self.on_event, self.on_login, self.states.append)


@contextlib.asynccontextmanager
async def running(client: AmiClient) -> AsyncIterator[AmiClient]:
    task = asyncio.create_task(client.run())
    try:
        yield client
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_login_sends_credentials_and_mask_then_dispatches(server: FakeAmi) -> None:
    rec = Recorder()
    async with running(rec.client(make_settings(server.port))) as client:
        await eventually(lambda: client.up)
        (login,) = server.actions("Login")
        assert login["Username"] == "ivr"
        assert login["Secret"] == SECRET
        assert login["Events"] == "system,call,agent,dialplan"
        assert login.headers[0] == ("Action", "Login")
        server.send([("Event", "Hangup"), ("Uniqueid", "1.2")])
        await eventually(lambda: rec.names() == ["Hangup"])
        assert client.events_received == 1
        assert rec.logins == 1 and rec.states == [True]
        assert client.reconnects == 0 and client.last_error is None
    assert rec.states == [True, False]


async def test_replies_matched_by_action_id_out_of_order(server: FakeAmi) -> None:
    server.hold.add("Slow")
    async with running(Recorder().client(make_settings(server.port))) as client:
        await eventually(lambda: client.up)
        first = asyncio.create_task(client.action("Slow", {"N": "1"}))
        second = asyncio.create_task(client.action("Slow", {"N": "2"}))
        await eventually(lambda: len(server.held) == 2)
        by_n = {m["N"]: m for m in server.held}
        server.reply(by_n["2"], [("Answer", "two")])
        server.reply(by_n["1"], [("Answer", "one")])
        assert (await first)["Answer"] == "one"
        assert (await second)["Answer"] == "two"


async def test_response_error_raises_with_message_text(server: FakeAmi) -> None:
    async with running(Recorder().client(make_settings(server.port))) as client:
        await eventually(lambda: client.up)
        with pytest.raises(AmiError, match="No such thing"):
            await client.action("Fail")
        assert (await client.action("Ping"))["Ping"] == "Pong"


async def test_action_list_collects_without_leaking_to_on_event(server: FakeAmi) -> None:
    rec = Recorder()
    async with running(rec.client(make_settings(server.port))) as client:
        await eventually(lambda: client.up)
        items = await client.action_list("QueueStatus", {"Queue": "sales"})
        assert [m.event for m in items] == ["QueueParams", "QueueMember"]
        assert items[1]["Name"] == "op1"
        assert rec.names() == ["Newchannel"]
        assert server.actions("QueueStatus")[0]["Queue"] == "sales"


async def test_a_list_unknown_to_the_noise_filter_is_decoded_then_the_filter_is_back(
        server: FakeAmi) -> None:
    from ivr.ami import events
    rec = Recorder()
    client = AmiClient(make_settings(server.port), rec.on_event, rec.on_login,
                       keep=events.wanted)
    async with running(client):
        await eventually(lambda: client.up)
        items = await asyncio.wait_for(client.action_list("QueueSummary"), 1.0)
        assert [(m.event, m["Callers"]) for m in items] == [("QueueSummary", "0")]
        # Noise after the list is skipped undecoded again; a followed event is not.
        server.send([("Event", "Newexten"), ("Uniqueid", "1.1")])
        server.send([("Event", "Hangup"), ("Uniqueid", "1.1")])
        await eventually(lambda: rec.names() == ["Hangup"])
        assert client.events_received == 2


async def test_pending_action_fails_on_drop_and_is_not_resent(server: FakeAmi) -> None:
    server.hold.add("Originate")
    rec = Recorder()
    async with running(rec.client(make_settings(server.port))) as client:
        await eventually(lambda: client.up)
        pending = asyncio.create_task(client.action("Originate", {"Channel": "Local/1@x"}))
        await eventually(lambda: len(server.held) == 1)
        server.drop()
        with pytest.raises(AmiDisconnected):
            await pending
        await eventually(lambda: client.up and client.reconnects == 1)
        # A round trip on the new connection: a re-sent Originate would be ahead of it.
        await client.action("Ping")
        assert len(server.actions("Originate")) == 1
        assert len(server.actions("Login")) == 2


async def test_reconnect_calls_on_login_each_time(server: FakeAmi) -> None:
    snapshots: list[list[Message]] = []

    async def on_login(client: AmiClient) -> None:
        snapshots.append(await client.action_list("QueueStatus"))

    settings = make_settings(server.port)
    client = AmiClient(settings, lambda msg: None, on_login)
    async with running(client):
        for drops in range(3):
            await eventually(lambda: client.up and len(snapshots) == drops + 1)
            assert client.reconnects == drops
            server.drop()
        await eventually(lambda: client.reconnects == 3 and client.up)
    assert len(snapshots) == 4
    assert all(len(items) == 2 for items in snapshots)


async def test_on_login_failure_drops_and_retries(server: FakeAmi,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    calls = 0

    async def on_login(client: AmiClient) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("snapshot broke")

    client = AmiClient(make_settings(server.port), lambda msg: None, on_login)
    async with running(client):
        await eventually(lambda: client.up)
        assert calls == 2
        assert len(server.actions("Login")) == 2
    assert any("snapshot broke" in r.getMessage() for r in caplog.records)


async def test_ping_timeout_detects_stalled_server(server: FakeAmi,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    settings = make_settings(server.port, ping_interval=0.1, ping_timeout=0.2)
    async with running(Recorder().client(settings)) as client:
        await eventually(lambda: client.up and len(server.actions("Ping")) >= 1)
        server.stall()
        await eventually(lambda: client.reconnects >= 1 and client.up)
        assert client.last_error == "ping unanswered within 0.2s"
    assert "AMI ping unanswered within 0.2s; reconnecting" in caplog.messages


BUSY = "AMI ping unanswered within 0.2s, but events keep arriving: the PBX is busy; staying connected"


@contextlib.asynccontextmanager
async def chattering(server: FakeAmi, answer_late_after: float | None) -> AsyncIterator[None]:
    """The PBX sends events all along; held pings are answered that late, or never."""
    async def chatter() -> None:
        answered: set[str] = set()
        while True:
            server.send([("Event", "Newchannel"), ("Uniqueid", "1.1")])
            await asyncio.sleep(0.02)
            if answer_late_after is None:
                continue
            for msg in server.held:
                if msg["ActionID"] not in answered:
                    answered.add(msg["ActionID"])
                    asyncio.get_running_loop().call_later(
                        answer_late_after, server.reply, msg, [("Ping", "Pong")])
    talking = asyncio.create_task(chatter())
    try:
        yield
    finally:
        talking.cancel()


async def test_a_pbx_answering_late_while_sending_events_is_busy_not_gone(
        server: FakeAmi, caplog: pytest.LogCaptureFixture) -> None:
    settings = make_settings(server.port, ping_interval=0.1, ping_timeout=0.2)
    async with running(Recorder().client(settings)) as client:
        await eventually(lambda: client.up)
        server.hold.add("Ping")
        async with chattering(server, answer_late_after=0.4):
            await eventually(lambda: caplog.messages.count(f"{BUSY} (1 of 3)") >= 6)
            assert client.reconnects == 0 and client.up
    assert f"{BUSY} (2 of 3)" not in caplog.messages   # each late answer started the count over


async def test_events_without_any_answer_end_the_link_after_3_late_pings(
        server: FakeAmi, caplog: pytest.LogCaptureFixture) -> None:
    settings = make_settings(server.port, ping_interval=0.1, ping_timeout=0.2)
    async with running(Recorder().client(settings)) as client:
        await eventually(lambda: client.up)
        async with chattering(server, answer_late_after=None):
            server.hold.add("Ping")
            await eventually(lambda: f"{BUSY} (2 of 3)" in caplog.messages)
            assert client.reconnects == 0 and client.up
            server.hold.discard("Ping")     # answered again: the count starts over
            answered = len(server.actions("Ping"))
            await eventually(lambda: len(server.actions("Ping")) >= answered + 2)
            server.hold.add("Ping")
            await eventually(lambda: client.reconnects >= 1)
        assert client.last_error == ("3 pings in a row unanswered within 0.2s, "
                                     "and no answer to anything, while events kept arriving")
    # Late pings after the answered ones counted 1, 2, 3 again, not 3 at once.
    assert caplog.messages.count(f"{BUSY} (1 of 3)") == 2
    assert caplog.messages.count(f"{BUSY} (2 of 3)") == 2


async def test_wrong_secret_keeps_retrying_and_never_logs_secret(
        server: FakeAmi, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    server.secret = "the-right-one"
    settings = make_settings(server.port, trace=True)
    async with running(Recorder().client(settings)) as client:
        await eventually(lambda: len(server.actions("Login")) >= 3)
        assert client.last_error == "login failed: Authentication failed"
        assert not client.up
        with pytest.raises(AmiDisconnected):
            await client.action("Ping")
        server.secret = SECRET  # the operator fixes the PBX side
        await eventually(lambda: client.up)
        assert client.reconnects == 0
    assert SECRET not in caplog.text
    assert "ivr.ami.wire" in {r.name for r in caplog.records}
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors and all("login failed" in r.getMessage() for r in errors)


async def test_connection_refused_names_address(caplog: pytest.LogCaptureFixture) -> None:
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    client = Recorder().client(make_settings(port))
    async with running(client):
        await eventually(lambda: client.last_error is not None)
        assert client.last_error == f"connection refused to 127.0.0.1:{port}"
        assert not client.up
    warnings = [r for r in caplog.records if r.name == "ivr.ami.client"]
    assert warnings and all(r.exc_info is None for r in warnings)
    assert f"127.0.0.1:{port}" in warnings[0].getMessage()


async def test_peer_closing_before_banner_is_retried() -> None:
    accepted: list[int] = []

    async def slam(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(1)
        writer.close()

    rude = await asyncio.start_server(slam, "127.0.0.1", 0)
    port = rude.sockets[0].getsockname()[1]
    client = Recorder().client(make_settings(port))
    async with running(client):
        await eventually(lambda: len(accepted) >= 2)
        assert client.last_error == f"connection closed by 127.0.0.1:{port}"
        assert not client.up
    rude.close()
    await rude.wait_closed()


async def test_action_while_down_raises_immediately() -> None:
    client = Recorder().client(make_settings(1))
    with pytest.raises(AmiDisconnected):
        await client.action("Ping")
    with pytest.raises(AmiDisconnected):
        await client.action_list("QueueStatus")


async def test_action_timeout_and_late_reply_dropped(server: FakeAmi) -> None:
    server.hold.update({"Slow", "QueueStatus"})
    rec = Recorder()
    async with running(rec.client(make_settings(server.port))) as client:
        await eventually(lambda: client.up)
        # The error names the action: it ends up in log lines such as a failed move's.
        with pytest.raises(TimeoutError, match=rf"^Slow unanswered by 127.0.0.1:{server.port} within 0.05s$"):
            await client.action("Slow", timeout=0.05)
        with pytest.raises(TimeoutError):
            await client.action_list("QueueStatus", timeout=0.05)
        slow, status = server.held
        server.reply(slow, [("Late", "yes")])
        for pairs in queue_status(status["ActionID"]):
            server.send(pairs)
        server.send([("Event", "Hangup"), ("Uniqueid", "9.9")])
        await eventually(lambda: "Hangup" in rec.names())
        # Late list items are dropped; the unrelated event still got through.
        assert rec.names() == ["Newchannel", "Hangup"]
        assert (await client.action("Ping"))["Ping"] == "Pong"
        assert client.up and client.reconnects == 0


async def test_on_event_exception_does_not_kill_connection(
        server: FakeAmi, caplog: pytest.LogCaptureFixture) -> None:
    seen: list[str | None] = []

    def on_event(msg: Message) -> None:
        seen.append(msg.event)
        raise ValueError("bug in handler")

    client = AmiClient(make_settings(server.port), on_event)
    async with running(client):
        await eventually(lambda: client.up)
        server.send([("Event", "Newchannel")])
        server.send([("Event", "Hangup")])
        await eventually(lambda: seen == ["Newchannel", "Hangup"])
        assert (await client.action("Ping"))["Ping"] == "Pong"
        assert client.up and client.reconnects == 0 and client.events_received == 2
    logged = [r for r in caplog.records if r.exc_info and "on_event" in r.getMessage()]
    assert len(logged) == 2


async def test_malformed_frame_logged_and_skipped(
        server: FakeAmi, caplog: pytest.LogCaptureFixture) -> None:
    rec = Recorder()
    async with running(rec.client(make_settings(server.port))) as client:
        await eventually(lambda: client.up)
        server.writer.write(b"Event: Broken\r\nno colon\r\n\r\n")
        server.send([("Event", "Hangup")])
        await eventually(lambda: rec.names() == ["Hangup"])
        assert client.malformed_frames == 1
        server.drop()
        await eventually(lambda: client.reconnects == 1 and client.up)
        assert client.malformed_frames == 1  # kept across connections
    assert any("malformed" in m for m in caplog.messages)


async def test_cancel_closes_socket(server: FakeAmi) -> None:
    client = Recorder().client(make_settings(server.port))
    async with running(client):
        await eventually(lambda: client.up and len(server.conns) == 1)
    await eventually(lambda: not server.conns)
    assert not client.up


def test_settings_repr_hides_secret() -> None:
    assert SECRET not in repr(make_settings(5038))


async def test_the_snapshot_waits_for_fully_booted(server: FakeAmi) -> None:
    """A PBX that just restarted answers the Login before app_queue is loaded."""
    server.booted = False
    rec = Recorder()
    async with running(rec.client(make_settings(server.port))) as client:
        await eventually(lambda: bool(server.actions("Login")))
        await asyncio.sleep(0.3)
        assert rec.logins == 0 and not client.up          # no QueueStatus asked yet
        server.boot()
        await eventually(lambda: rec.logins == 1 and client.up)
        assert client.reconnects == 0


async def test_no_fully_booted_still_takes_the_snapshot(server: FakeAmi,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    """An AMI user without the 'system' read class never hears FullyBooted."""
    server.booted = False
    rec = Recorder()
    async with running(rec.client(make_settings(server.port, boot_timeout=0.3))) as client:
        await eventually(lambda: rec.logins == 1 and client.up)
    assert "sent no FullyBooted within" in caplog.text
