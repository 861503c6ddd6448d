"""Hostile input: property tests over everything that parses what others send.

Every parser is fed what an attacker, a broken PBX or a typo could send, and
must answer only with its documented errors: the codec with MalformedFrame,
events.parse with KeyError/ValueError, HTTP with a 4xx (JSON under /api/v1),
the loaders with their one-line error types.  The strategies are built from
the header names and values of the real AMI transcripts in tests/fixtures.

Runs are deterministic (derandomize=True, no example database), so a failure
here is a failure on every machine.  The tests named after a bug are
regressions for what these properties found and we fixed: 500s on odd JSON,
text errors under /api/v1, absurd Timestamps, and loaders leaking
OverflowError or RecursionError.  fuzz/ holds coverage-guided harnesses for the
codec and the HTTP inputs (tests/unit/test_fuzz_smoke.py runs them briefly).
"""

from __future__ import annotations

import asyncio
import csv
import json
import math
import socket
import string
import tempfile
import unicodedata
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import generate_latest
from yarl import URL

import ivr
from ivr import config as config_mod
from ivr.ami import events as ev
from ivr.ami.codec import Banner, Codec, MalformedFrame, Message, serialize
from ivr.app import build
from ivr.calls import views
from ivr.config import AmiConfig, ApiConfig, Config, ConfigError, RoutingConfig
from ivr.routing.directory import Directory, DirectoryError
from ivr.routing.incidents import ALL_AREAS, MAX_EXPIRES_IN, MAX_MESSAGE, IncidentError, Incidents
from ivr.calls.facts import Entered, Exited, JourneyAnswered, Unobserved
from ivr.calls.judge import OUTCOMES
from ivr.calls.tracker import Tracker
from ivr.http.app import CONSOLE, make_web
from tests.replay import FIXTURES


def deterministic(max_examples: int) -> settings:
    return settings(max_examples=max_examples, derandomize=True, database=None, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# -- what the real PBX sends ---------------------------------------------------

def _fixture_headers() -> dict[str, list[str]]:
    """Every header name in the transcripts, with the values seen for it."""
    seen: dict[str, set[str]] = {}
    for path in sorted(FIXTURES.glob("*.ami")):
        codec = Codec()
        codec.receive_data(path.read_bytes())
        codec.receive_data(b"")
        while (item := codec.next_event()) is not None:
            if isinstance(item, Message):
                for name, value in item.headers:
                    seen.setdefault(name, set()).add(value)
    return {name: sorted(values) for name, values in sorted(seen.items())}


REAL = _fixture_headers()
FOLLOWED = ("QueueCallerJoin", "QueueCallerLeave", "QueueCallerAbandon", "AgentCalled",
            "AgentConnect", "VarSet", "Hangup", "HangupRequest", "SoftHangupRequest",
            "QueueMemberStatus",
            "QueueMemberAdded", "QueueMemberPause", "QueueMemberRemoved")
LISTED = ("QueueEntry", "QueueMember", "CoreShowChannel")
UIDS = ("1795530561.42", "1795530561.43", "1795530570.44")
QUEUES = ("first-line", "common", "engineers")
S = 1_000_000   # microseconds in a second

# Numbers as Asterisk could print them, and as it should not.  Past about 300
# digits a Timestamp or Wait breaks float conversions: see the regression test below.
NUMBERISH = st.from_regex(r"[-+ ]?[0-9]{1,20}(\.[0-9]{0,8})?[ x]?", fullmatch=True)


def header_value(name: str) -> st.SearchStrategy[str]:
    """Mostly (80 %) a value this header really had, or one of our few calls and queues."""
    typical = st.sampled_from({"Uniqueid": UIDS, "Queue": QUEUES}.get(name, REAL[name]))
    if name == "Variable":
        typical = typical | st.sampled_from(sorted(ev.WATCHED_VARIABLES) + ["__IVR_AREA"])
    elif name == "Value":
        typical = typical | st.sampled_from(("timeout", "withdrawn", "TIMEOUT", "WITHDRAW", "north"))
    junk = st.one_of(NUMBERISH, st.text(max_size=12))
    return st.integers(0, 9).flatmap(lambda roll: junk if roll < 2 else typical)


HEADERS = {name: st.tuples(st.just(name), header_value(name)) for name in REAL}
# The headers each event usually has: most are kept, so many events parse.
USUAL = {
    "QueueCallerJoin": ("Uniqueid", "Channel", "CallerIDNum", "Queue"),
    "QueueCallerLeave": ("Uniqueid", "Queue"), "QueueCallerAbandon": ("Uniqueid", "Queue"),
    "AgentCalled": ("Uniqueid", "Queue", "MemberName", "Interface"),
    "AgentConnect": ("Uniqueid", "Queue", "MemberName", "HoldTime"),
    "VarSet": ("Uniqueid", "Variable", "Value"), "Hangup": ("Uniqueid",),
    "SoftHangupRequest": ("Uniqueid", "Cause"), "HangupRequest": ("Uniqueid",),
    "QueueEntry": ("Uniqueid", "Channel", "CallerIDNum", "Queue", "Wait"),
    "CoreShowChannel": ("Uniqueid", "Channel"),
}
MEMBER_HEADERS = ("Queue", "MemberName", "Interface", "Status", "Paused", "InCall")
KEPT = st.sampled_from((True,) * 9 + (False,))


@st.composite
def ami_messages(draw: st.DrawFn, events: tuple[str, ...]) -> Message:
    """An event named from `events`: its usual headers (each one may be missing),
    a Timestamp most of the time, then any of the real headers."""
    event = draw(st.sampled_from(events))
    usual = ("Timestamp",) + USUAL.get(event, MEMBER_HEADERS if "Member" in event else ())
    headers = [("Event", event)] + [draw(HEADERS[n]) for n in usual if draw(KEPT)]
    headers += draw(st.lists(st.one_of(*HEADERS.values()), max_size=6))
    return Message(tuple(headers))


# -- the codec -----------------------------------------------------------------

AMI_PIECES = (b"\r\n", b"\n", b"\r\n\r\n", b"\r", b":", b": ", b"Asterisk Call Manager/11.0.0\r\n",
              b"Event: QueueCallerJoin\r\n", b"Response: Success\r\n", "Кирилл📞".encode(),
              "📞".encode()[:3])
AMI_ISH = st.lists(st.one_of(st.binary(max_size=24), st.sampled_from(AMI_PIECES)),
                   max_size=40).map(b"".join)


def drain(codec: Codec) -> list[Message | Banner | MalformedFrame]:
    out: list[Message | Banner | MalformedFrame] = []
    while (item := codec.next_event()) is not None:
        out.append(item)
    return out


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    """`data` cut at the given offsets (taken modulo its length): never an empty chunk."""
    points = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    return [data[a:b] for a, b in zip(points, points[1:])]


def decode(chunks: list[bytes], max_buffer: int = 1 << 20) -> list[Message | Banner | MalformedFrame]:
    codec = Codec(max_buffer)
    out: list[Message | Banner | MalformedFrame] = []
    for chunk in chunks:
        codec.receive_data(chunk)
        out += drain(codec)
    codec.receive_data(b"")
    return out + drain(codec)


@deterministic(300)
@given(data=AMI_ISH, cuts=st.lists(st.integers(0, 2000), max_size=12),
       max_buffer=st.integers(1, 300))
def test_codec_survives_any_bytes_in_any_chunks(data: bytes, cuts: list[int], max_buffer: int) -> None:
    codec = Codec(max_buffer)
    held = max(max_buffer, 2)   # while skipping an oversized frame, 2 bytes of a blank line
    for chunk in split(data, cuts):
        codec.receive_data(chunk)
        assert codec.buffered <= held + len(chunk)
        for item in drain(codec):
            if isinstance(item, MalformedFrame):
                assert len(item.raw) <= 200
            elif isinstance(item, Message):
                assert all(name and name == name.strip() and "\n" not in name + value
                           for name, value in item.headers)
        assert codec.buffered <= held
    codec.receive_data(b"")
    drain(codec)
    assert codec.buffered <= 2
    with pytest.raises(RuntimeError):
        codec.receive_data(b"late")


@deterministic(200)
@given(data=AMI_ISH, cuts=st.lists(st.integers(0, 2000), max_size=12))
def test_codec_chunking_does_not_change_what_is_decoded(data: bytes, cuts: list[int]) -> None:
    assert decode(split(data, cuts)) == decode([data])


# Real header names are tokens: no ':' or line break, nothing to strip.
HEADER_NAME = st.text(st.characters(exclude_characters=":\r\n", exclude_categories=["Cs"]),
                      min_size=1, max_size=16).filter(
    lambda k: k == k.strip() and k.lower() not in ("action", "actionid"))
HEADER_TEXT = st.text(st.characters(exclude_characters="\r\n", exclude_categories=["Cs"]),
                      max_size=24)


@deterministic(200)
@given(action=HEADER_TEXT.filter(bool), action_id=st.none() | HEADER_TEXT,
       fields=st.dictionaries(HEADER_NAME, HEADER_TEXT | st.lists(HEADER_TEXT, max_size=3),
                              max_size=6),
       banner=st.booleans(), cuts=st.lists(st.integers(0, 4000), max_size=16))
def test_serialized_frames_round_trip_in_any_chunks(
        action: str, action_id: str | None, fields: dict[str, str | list[str]], banner: bool,
        cuts: list[int]) -> None:
    frame = serialize(action, fields, action_id)
    expected = [("Action", action)] + ([("ActionID", action_id)] if action_id is not None else [])
    for key, value in fields.items():
        expected += [(key, v) for v in ([value] if isinstance(value, str) else value)]
    stream = (b"Asterisk Call Manager/11.0.0\r\n" if banner else b"") + frame
    items = decode(split(stream, cuts))
    assert items[-1] == Message(tuple(expected))
    assert len(items) == 1 + banner


@deterministic(200)
@given(junk=AMI_ISH, oversized=st.booleans(), max_buffer=st.integers(64, 512),
       value=HEADER_TEXT, cuts=st.lists(st.integers(0, 4000), max_size=12))
def test_a_valid_frame_after_junk_is_still_decoded(
        junk: bytes, oversized: bool, max_buffer: int, value: str, cuts: list[int]) -> None:
    frame = serialize("Ping", {"Note": value}, "after-junk")
    max_buffer = max(max_buffer, len(frame))   # a valid frame: within the cap
    junk += b"x" * (max_buffer + 1) if oversized else b""
    items = decode(split(junk + b"\r\n\r\n" + frame, cuts), max_buffer)
    assert items[-1] == Message((("Action", "Ping"), ("ActionID", "after-junk"), ("Note", value)))


@deterministic(200)
@given(before=HEADER_TEXT, after=HEADER_TEXT, brk=st.sampled_from(["\r", "\n", "\r\n"]),
       where=st.sampled_from(["action", "action_id", "key", "value", "list item"]))
def test_serialize_rejects_line_breaks_anywhere(before: str, after: str, brk: str, where: str) -> None:
    bad = before + brk + after
    args: dict[str, Any] = {"action": "Setvar", "fields": {"Variable": "X"}, "action_id": "1"}
    if where == "action":
        args["action"] = bad
    elif where == "action_id":
        args["action_id"] = bad
    elif where == "key":
        args["fields"] = {bad: "x"}
    elif where == "value":
        args["fields"] = {"Value": bad}
    else:
        args["fields"] = {"Variable": ["A=1", bad]}
    with pytest.raises(ValueError):
        serialize(**args)


# Frames near Asterisk's layout, and off it in every way a lookup could trip
# on: other spellings of a key, blanks around it (a non-ASCII one makes the
# line malformed), no space after ':', bare LF or extra CR endings, bytes that
# are not UTF-8, the Kelvin sign (which str.lower() makes a 'k').
LOOKUP_KEYS = ("Event", "Uniqueid", "Queue", "Key", "ActionID", "Missing", "a b", "Ä", "K")
FRAME_KEY = st.sampled_from(("Event", "EVENT", "event", "Uniqueid", "UNIQUEID", "Queue", "queue",
                             " Queue", "Queue ", "Key", "\u212aey", "kEy", "a b", "Ä", "ä", "K",
                             "Queue\x85"))
FRAME_VALUE = st.one_of(HEADER_TEXT.map(str.encode), st.binary(max_size=12).filter(
    lambda b: b"\r" not in b and b"\n" not in b), st.sampled_from((b"", b" ", b"x\ry", b" a:b ")))


@st.composite
def near_asterisk_frames(draw: st.DrawFn) -> bytes:
    lines = []
    for _ in range(draw(st.integers(1, 8))):
        sep = draw(st.sampled_from((b": ", b": ", b": ", b":", b":  ")))
        lines.append(draw(FRAME_KEY).encode() + sep + draw(FRAME_VALUE))
    end = draw(st.sampled_from((b"\r\n", b"\r\n", b"\r\n", b"\n", b"\r\r\n")))
    return end.join(lines) + end + b"\r\n"   # the blank line that ends a frame


def _first(headers: tuple[tuple[str, str], ...], key: str) -> str | None:
    """The lookup's definition: the first header whose name equals `key`, ignoring ASCII case."""
    lower = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
    return next((v for k, v in headers if k.translate(lower) == key.translate(lower)), None)


@deterministic(400)
@given(frame=near_asterisk_frames())
def test_lookups_are_the_first_header_of_that_name_ignoring_ascii_case(frame: bytes) -> None:
    (msg,) = decode([frame])
    # A blank that is not ASCII ends no key: such a line is malformed, whatever path reads it.
    assert isinstance(msg, MalformedFrame) == ("Queue\x85".encode() in frame)
    if isinstance(msg, MalformedFrame):
        return
    assert isinstance(msg, Message)   # every line has a colon: never taken for a banner
    eager = Message(msg.headers)   # built from the header list, not from the frame's text
    for key in LOOKUP_KEYS:
        assert msg.get(key) == eager.get(key) == _first(msg.headers, key), key
    assert msg == eager


# -- events.parse and snapshot ---------------------------------------------------

@deterministic(200)
@given(msg=ami_messages(FOLLOWED + LISTED + ("Newchannel", "QueueParams")),
       now=st.floats(0, 4e9, allow_nan=False))
def test_parse_raises_only_key_or_value_error(msg: Message, now: float) -> None:
    try:
        event = ev.parse(msg, now)
    except (KeyError, ValueError):
        return
    assert event is None or msg.event in FOLLOWED


@deterministic(60)
@given(status=st.lists(ami_messages(LISTED + ("QueueParams",)), max_size=6),
       channels=st.lists(ami_messages(("CoreShowChannel",)), max_size=4))
def test_snapshot_raises_only_key_or_value_error(status: list[Message], channels: list[Message]) -> None:
    try:
        snap = ev.snapshot(status, channels, 1_795_530_600.0)
    except (KeyError, ValueError):
        return
    assert len(snap.waiting) == sum(m.event == "QueueEntry" for m in status)


# -- the journey tracker: any order, duplicates included ---------------------------

T0 = 1_795_530_000 * S
TS = st.integers(0, 90 * S).map(lambda t: T0 + t)
UID = st.sampled_from(UIDS)
QUEUE = st.sampled_from(QUEUES)
MEMBER = st.sampled_from(("PJSIP/op1", "PJSIP/op2"))
VARIABLE_VALUE = st.sampled_from(("timeout", "withdrawn", "TIMEOUT", "WITHDRAW", "JOINEMPTY",
                                  "FULL", "CONTINUE", "", "north", "100101"))
MEMBER_STATE = st.builds(ev.MemberState, TS, QUEUE, MEMBER, st.integers(0, 9), st.booleans(),
                         st.booleans())
# Where a channel is: Queue()'s place, the next priority, a Redirect's target, h, unknown.
PLACE = st.sampled_from((ev.Place("ivr-queues", "first-line", "1"),
                         ev.Place("ivr-queues", "first-line", "2"),
                         ev.Place("ivr-queues", "common", "1"), ev.Place("elsewhere", "s", "1"),
                         ev.Place("ivr-queues", "h", "1"), ev.Place()))
TRACKED = st.one_of(
    st.builds(ev.CallerJoined, TS, UID, st.just("PJSIP/anonymous-0000002a"), st.just("79101"),
              QUEUE, st.just(""), PLACE),
    st.builds(ev.CallerLeft, TS, UID, QUEUE, st.booleans(), PLACE),
    st.builds(ev.AgentRinging, TS, UID, QUEUE, MEMBER),
    st.builds(ev.AgentAnswered, TS, UID, QUEUE, MEMBER, st.integers(0, 90)),
    st.builds(ev.VarSet, TS, UID, st.sampled_from(sorted(ev.WATCHED_VARIABLES)), VARIABLE_VALUE),
    st.builds(ev.Hangup, TS, UID, PLACE, st.sampled_from((None, 0, 16, 19, 127))),
    st.builds(ev.HangupAsked, TS, UID),
    st.builds(ev.PbxShutdown, TS, UID),
    MEMBER_STATE,
    st.builds(ev.MemberRemoved, TS, QUEUE, MEMBER),
    st.builds(ev.Snapshot, TS,
              st.lists(st.builds(ev.WaitingCaller, UID, st.just("PJSIP/x"), st.just(""), QUEUE,
                                 st.integers(0, 60)), max_size=3).map(tuple),
              st.lists(MEMBER_STATE, max_size=3).map(tuple), st.frozensets(UID)),
)


@st.composite
def event_streams(draw: st.DrawFn) -> list[ev.Event | ev.Snapshot]:
    """Events in any order, some of them delivered twice (a replay, a duplicate)."""
    stream = draw(st.lists(TRACKED, max_size=40))
    for _ in range(draw(st.integers(0, 4)) if stream else 0):
        copy = stream[draw(st.integers(0, len(stream) - 1))]
        stream.insert(draw(st.integers(0, len(stream))), copy)
    return stream


@deterministic(200)
@given(stream=event_streams())
def test_tracker_keeps_its_books_whatever_the_order(stream: list[ev.Event | ev.Snapshot]) -> None:
    tracker = Tracker({"first-line": 30_000})
    entered: Counter[str] = Counter()
    ended: Counter[str] = Counter()       # Exited or Unobserved, by queue
    closed_visits: set[int] = set()
    for item in stream:
        reasons = {j.visit.id: j.visit.move_reason for j in tracker.journeys.values() if j.visit}
        facts = tracker.resync(item) if isinstance(item, ev.Snapshot) else tracker.handle(item)
        for fact in facts:
            if isinstance(fact, Entered):
                entered[fact.queue] += 1
            elif isinstance(fact, (Exited, Unobserved)):
                ended[fact.queue] += 1
                # one outcome per visit: never both timeout and abandoned
                assert fact.visit not in closed_visits, "a visit ended twice"
                closed_visits.add(fact.visit)
            if isinstance(fact, Exited):
                assert fact.outcome in OUTCOMES and fact.wait_ms >= 0
                # ivr had set IVR_MOVE (timeout or withdrawn) on this visit: not an abandon
                assert not (fact.outcome == "abandoned" and reasons.get(fact.visit))
            if isinstance(fact, JourneyAnswered):
                assert fact.wait_ms >= 0
        for queue in set(entered) | set(QUEUES):
            here = [j for j in tracker.journeys.values() if j.visit and j.visit.queue == queue]
            assert entered[queue] == ended[queue] + len(here), queue
            assert len(tracker.waiting(queue)) <= len(here)
            assert sum(tracker.agent_counts(queue).values()) == sum(
                q == queue for q, _ in tracker.members)


# -- the whole pipeline: AMI message -> tracker -> metrics, router, views ------------

def feed_app(messages: list[Message]) -> None:
    """Pbx.on_event for each message, then render what people look at."""
    async def scenario() -> None:   # the router schedules timers on the running loop
        app = build(Config())
        try:
            for msg in messages:
                app.first.on_event(msg)
            generate_latest(app.registry)
            views.queues(app.config, app.pbxs.values(), app.clock())
            for uid in UIDS:
                for pbx, journey in app.calls.find(uid):
                    views.call(pbx, journey)
        finally:
            app.router.close()
    asyncio.run(scenario())


@deterministic(60)
@given(messages=st.lists(ami_messages(FOLLOWED), max_size=25))
def test_app_survives_any_event_stream(messages: list[Message]) -> None:
    feed_app(messages)


@pytest.mark.parametrize("timestamp", ["9" * 400 + ".0", "-" + "9" * 400])
def test_absurd_timestamp_is_skipped_not_fatal(timestamp: str) -> None:
    join = Message((("Event", "QueueCallerJoin"), ("Timestamp", timestamp),
                    ("Uniqueid", UIDS[0]), ("Channel", "PJSIP/x"), ("Queue", "first-line")))
    feed_app([join])


# -- HTTP: the dialplan's questions and the control API ----------------------------

TOKEN = "t0ken-of-the-hostile-input-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SECRET = "dialplan-secret-hostile"
DIALPLAN = {"X-Ivr-Secret": SECRET}
SUBSCRIBERS = Path(ivr.__file__).parent / "lab" / "files" / "subscribers.csv"
ROUTE_KEYS = {"route", "account", "area", "announce", "incident", "ask_account"}


@dataclass
class Http:
    loop: asyncio.AbstractEventLoop
    client: TestClient[Any, Any]

    def request(self, method: str, path: str | URL, **kwargs: Any) -> tuple[ClientResponse, bytes]:
        async def go() -> tuple[ClientResponse, bytes]:
            async with self.client.request(method, path, **kwargs) as resp:
                return resp, await resp.read()
        return self.loop.run_until_complete(go())


@pytest.fixture(scope="module")
def http() -> Iterator[Http]:
    """ivr's real web app on 127.0.0.1:0; its AMI client retries against a refusing port."""
    with socket.socket() as refusing:
        refusing.bind(("127.0.0.1", 0))
        config = Config(ami=AmiConfig(port=refusing.getsockname()[1], dialplan_secret=SECRET),
                        api=ApiConfig(token=TOKEN), routing=RoutingConfig(directory=str(SUBSCRIBERS)))
        web_app = make_web(build(config))
        # Hundreds of wrong tokens on purpose, all from 127.0.0.1: not throttled here
        # (tests/unit/test_throttle.py is about that).
        web_app[CONSOLE].guard.limit = 1_000_000

        async def start() -> TestClient[Any, Any]:
            client: TestClient[Any, Any] = TestClient(TestServer(web_app))
            await client.start_server()
            return client

        loop = asyncio.new_event_loop()
        client = loop.run_until_complete(start())
        try:
            yield Http(loop, client)
        finally:
            loop.run_until_complete(client.close())
            loop.close()


URL_SAFE = string.ascii_letters + string.digits + "-._~!$'()*+,;=:@/?%"
QUERY_VALUE = st.one_of(st.sampled_from(UIDS + ("79101", "+7 (910) 1", "100101", "1", "")).map(
                            lambda v: quote(v, safe="")),
                        st.sampled_from(("%", "%zz", "%FF", "+", "a=b")),
                        st.text(URL_SAFE, max_size=20), st.text(max_size=12).map(quote),
                        st.binary(max_size=8).map(quote))
QUERY_KEY = st.sampled_from(("uniqueid", "caller", "account", "asked", "pbx")) | st.text(URL_SAFE, max_size=6)
QUERY = st.one_of(
    st.lists(st.tuples(QUERY_KEY, QUERY_VALUE), max_size=6).map(
        lambda pairs: "&".join(f"{k}={v}" for k, v in pairs)),
    st.text(URL_SAFE + "&=", max_size=60))


@deterministic(200)
@given(endpoint=st.sampled_from(("entry", "escalate")), query=QUERY)
def test_dialplan_answers_200_with_a_route_or_an_empty_400(http: Http, endpoint: str, query: str) -> None:
    resp, body = http.request("GET", URL(f"/dialplan/v1/{endpoint}?{query}", encoded=True),
                              headers=DIALPLAN)
    assert resp.status in (200, 400, 403), body      # 403: pbx= names another PBX
    # No idle connection is left behind a call's one question.
    assert resp.headers.get("Connection", "").lower() == "close"
    if resp.status in (400, 403):
        assert body == b""
        return
    answer = parse_qs(body.decode("ascii"), strict_parsing=True)
    assert "route" in answer and set(answer) <= ROUTE_KEYS


@pytest.mark.parametrize("query, status", [
    ("pbx=default&uniqueid=1796000000.1&caller=79101", 200),
    ("uniqueid=1796000000.1&caller=79101", 200),                 # the first PBX
    ("pbx=&uniqueid=1796000000.1&caller=79101", 200),            # IVR_PBX unset: the first
    ("pbx=elsewhere&uniqueid=1796000000.1&caller=79101", 403),   # not the secret's PBX
    ("pbx=default&uniqueid=paris-pbx-1796000000.1&caller=79101", 200),   # SystemName prefix
    ("pbx=default&uniqueid=paris pbx-1796000000.1&caller=79101", 400),
])
def test_the_dialplan_names_its_pbx(http: Http, query: str, status: int) -> None:
    resp, _ = http.request("GET", f"/dialplan/v1/entry?{query}", headers=DIALPLAN)
    assert resp.status == status


@pytest.mark.parametrize("asked, status", [
    ("&asked=1&account=", 200),                   # typed nothing: the call's last question
    ("&asked=1", 200),
    ("&asked=1&account=100101", 200),
    ("&asked=1&account=%2A", 200),                # keys that are no account: unidentified
    ("&asked=1&account=12%2A3A", 200),
    ("&asked=1&account=" + "1" * 17, 400),        # longer than anything Read() takes
    ("&asked=1&account=%23", 400),                # # ends Read(): never typed
    ("&asked=1&account=abc", 400),
    ("&asked=1&account=1%00", 400),
    ("&asked=1&account=%20", 400),
    ("&asked=1&account=%EF%BC%91", 400),          # a fullwidth digit one
    ("&asked=", 200),
    ("&asked=0", 400),
    ("&asked=yes&account=", 400),
    ("&asked=%31%00", 400),
])
def test_the_second_entry_question_takes_what_a_keypad_types(http: Http, asked: str,
                                                              status: int) -> None:
    resp, body = http.request("GET", URL(f"/dialplan/v1/entry?uniqueid=1796000000.2&caller=55611"
                                         f"{asked}", encoded=True), headers=DIALPLAN)
    assert resp.status == status, body
    if status == 200:
        answer = parse_qs(body.decode("ascii"))
        assert answer["route"] == ["first-line"]
        # asked=1: the last question, whatever was typed; the first asks for the account.
        assert ("ask_account" in answer) == ("asked=1" not in asked)
    else:
        assert body == b""


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12)
AREA_VALUE = st.sampled_from(("north", ALL_AREAS, "North", "", "a b", "sever-1")) | JSON
MESSAGE_VALUE = st.sampled_from(("Fibre cut", " ", "x" * 501, "tab\there")) | JSON
EXPIRES_VALUE = st.sampled_from((1, 0, 0.5, MAX_EXPIRES_IN, MAX_EXPIRES_IN + 1, True, "60")) | JSON
INCIDENT_BODY = st.one_of(
    st.fixed_dictionaries({}, optional={"area": AREA_VALUE, "message": MESSAGE_VALUE,
                                        "expires_in": EXPIRES_VALUE, "extra": JSON}),
    JSON)


def assert_json_answer(resp: ClientResponse, body: bytes, allowed: set[int]) -> Any:
    assert resp.status in allowed, (resp.status, body[:300])
    assert resp.content_type == "application/json", body[:300]
    answer = json.loads(body)
    if resp.status >= 400:
        assert isinstance(answer, dict) and isinstance(answer.get("error"), str)
    return answer


@deterministic(150)
@given(body=INCIDENT_BODY)
def test_incident_bodies_get_201_or_a_json_400(http: Http, body: Any) -> None:
    resp, raw = http.request("POST", "/api/v1/incidents", data=json.dumps(body).encode(),
                             headers={**AUTH, "Content-Type": "application/json"})
    answer = assert_json_answer(resp, raw, {201, 400})
    if resp.status == 201:
        assert answer["area"] == body["area"] and answer["message"] == body["message"].strip()
        assert http.request("DELETE", f"/api/v1/incidents/{answer['id']}", headers=AUTH)[0].status == 200


# '{', '}' and '/' make aiohttp's router answer a plain 404: see the regression test below.
PATH_SEGMENT = st.sampled_from(UIDS) | st.text(
    st.characters(exclude_characters="{}/", exclude_categories=["Cs"]), min_size=1,
    max_size=16).filter(lambda s: s not in (".", "..")).map(lambda s: quote(s, safe=""))


@deterministic(150)
@given(body=st.fixed_dictionaries({}, optional={"queue": st.sampled_from(QUEUES) | JSON}) | JSON,
       uid=PATH_SEGMENT, action=st.sampled_from(("move", "escalate", "")))
def test_call_requests_get_json_errors(http: Http, body: Any, uid: str, action: str) -> None:
    method, path = ("GET", f"/api/v1/calls/{uid}") if not action else (
        "POST", f"/api/v1/calls/{uid}/{action}")
    resp, raw = http.request(method, URL(path, encoded=True), data=json.dumps(body).encode(),
                             headers={**AUTH, "Content-Type": "application/json"})
    assert_json_answer(resp, raw, {400, 404})


# The declared charset is honoured by aiohttp; ivr reads the bytes itself (see the regression test below).
CONTENT_TYPES = ("application/json", "text/plain", "application/json; charset=latin-1",
                 "application/json; charset=utf-16", "application/octet-stream", "")


@deterministic(150)
@given(raw=st.one_of(st.binary(max_size=64), st.text(max_size=40).map(str.encode),
                     st.sampled_from((b"", b"{", b"null", b"[]", b'"x"', b"{}", b"\xef\xbb\xbf{}",
                                      b'{"area": "north"'))),
       content_type=st.sampled_from(CONTENT_TYPES))
def test_any_body_bytes_get_a_json_answer(http: Http, raw: bytes, content_type: str) -> None:
    headers = {**AUTH, "Content-Type": content_type} if content_type else AUTH
    resp, body = http.request("POST", "/api/v1/incidents", data=raw, headers=headers)
    assert_json_answer(resp, body, {201, 400})


@deterministic(150)
@given(given_header=st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7e), max_size=30),
       path=st.sampled_from(("/api/v1/incidents", "/api/v1/queues", "/api/v1/calls/1.2",
                             "/api/v1/nothing-here")))
def test_a_wrong_token_is_a_json_401(http: Http, given_header: str, path: str) -> None:
    if given_header == AUTH["Authorization"]:
        return
    resp, body = http.request("GET", path, headers={"Authorization": given_header})
    assert_json_answer(resp, body, {401})


@pytest.mark.parametrize("raw, content_type", [
    (b"[" * 5000 + b"]" * 5000, "application/json"),
    (b'{"area": ' + b"1" * 5000 + b"}", "application/json"),
    (b'{"area": "north"}', "application/json; charset=no-such-charset"),
], ids=["nested-5000-deep", "5000-digit-integer", "unknown-charset"])
def test_undecodable_json_body_is_a_json_400(http: Http, raw: bytes, content_type: str) -> None:
    resp, body = http.request("POST", "/api/v1/incidents", data=raw,
                              headers={**AUTH, "Content-Type": content_type})
    assert_json_answer(resp, body, {400})


@pytest.mark.parametrize("method, path, raw, status", [
    ("POST", "/api/v1/incidents", b"{" + b" " * 70_000 + b"}", 413),
    ("GET", "/api/v1/nothing-here", b"", 404),
    ("PUT", "/api/v1/incidents", b"{}", 405),
    ("GET", "/api/v1/calls/%7B1.2%7D", b"", 404),
], ids=["body-too-large", "unknown-path", "wrong-method", "brace-in-uniqueid"])
def test_api_errors_raised_by_aiohttp_are_json(http: Http, method: str, path: str, raw: bytes,
                                               status: int) -> None:
    resp, body = http.request(method, path, data=raw,
                              headers={**AUTH, "Content-Type": "application/json"})
    assert_json_answer(resp, body, {status})


# -- Incidents.open, the incident file, the directory, the config ------------------

@deterministic(200)
@given(area=AREA_VALUE, message=MESSAGE_VALUE, expires_in=EXPIRES_VALUE)
def test_incidents_open_raises_only_incident_error(area: Any, message: Any, expires_in: Any) -> None:
    try:
        incident = Incidents(lambda: 1_700_000_000.0).open(area, message, expires_in)
    except IncidentError as exc:
        assert "\n" not in str(exc)
        return
    assert incident.area == ALL_AREAS or incident.area.replace("-", "").isalnum()
    assert 0 < len(incident.message) <= MAX_MESSAGE and incident.message == incident.message.strip()
    assert not any(unicodedata.category(c) == "Cc" for c in incident.message)
    assert 1 <= incident.expires_at - incident.started_at <= MAX_EXPIRES_IN


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    """One directory for the whole module: hypothesis runs many examples per test."""
    with tempfile.TemporaryDirectory() as name:
        yield Path(name)


INCIDENT_ENTRY = st.fixed_dictionaries({}, optional={
    "id": st.sampled_from(("inc-1", "")) | JSON, "area": AREA_VALUE, "message": MESSAGE_VALUE,
    "started_at": st.sampled_from((1.7e9, float("inf"))) | JSON, "expires_at": st.just(4e9) | JSON})
INCIDENT_FILE = st.one_of(
    st.fixed_dictionaries({"version": st.sampled_from((1, 2, "1")) | JSON,
                           "incidents": st.lists(INCIDENT_ENTRY | JSON, max_size=3) | JSON}).map(
        lambda d: json.dumps(d).encode()),
    st.binary(max_size=64))


@deterministic(100)
@given(raw=INCIDENT_FILE)
def test_incident_file_raises_only_incident_error(scratch: Path, raw: bytes) -> None:
    path = scratch / "incidents.json"
    path.write_bytes(raw)
    try:
        Incidents(lambda: 1_700_000_000.0, path)
    except IncidentError as exc:
        assert "\n" not in str(exc)


@pytest.mark.parametrize("raw", [
    b"[" * 100_000,
    b'{"version": 1, "incidents": [{"id": "inc-1", "area": "north", "message": "m", '
    b'"started_at": 1' + b"0" * 400 + b', "expires_at": 2}]}',
], ids=["nested", "huge-integer"])
def test_corrupt_incident_file_is_an_incident_error(scratch: Path, raw: bytes) -> None:
    path = scratch / "incidents.json"
    path.write_bytes(raw)
    with pytest.raises(IncidentError):
        Incidents(lambda: 1_700_000_000.0, path)


CSV_FIELD = st.one_of(st.sampled_from(("79101", "+7 (910) 123-45-67", "100101", "north", "number",
                                       "account", "area", '"', '"a,b"', "", " ", "#")),
                      st.text(max_size=10))
CSV_LINE = st.one_of(st.lists(CSV_FIELD, max_size=4).map(",".join), st.text(max_size=20))
CSV_TEXT = st.lists(CSV_LINE, max_size=6).map(
    lambda lines: "\n".join(["number,account,area"] + lines))
NEWLINES = str.maketrans("", "", "\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")


@deterministic(150)
@given(raw=st.one_of(CSV_TEXT.map(str.encode), CSV_TEXT.map(lambda t: t.encode("utf-16")),
                     st.binary(max_size=64)))
def test_directory_load_raises_only_directory_error(scratch: Path, raw: bytes) -> None:
    path = scratch / "subscribers.csv"
    path.write_bytes(raw)
    try:
        directory = Directory.load(path)
    except DirectoryError as exc:
        assert str(exc).translate(NEWLINES) == str(exc), "one line, naming the file"
        return
    lines = [line for line in raw.decode("utf-8-sig").splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    assert len(directory) == len(lines) - 1   # every row but the header
    for line in lines[1:]:
        assert directory.by_number(next(csv.reader([line]))[0]) is not None, line


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(value)   # a TOML basic string, but for rare escapes: those fail as TOML


SECTIONS = {"ami": sorted(AmiConfig.__dataclass_fields__), "http": ["listen"], "api": ["token"],
            "routing": sorted(RoutingConfig.__dataclass_fields__), "queues.first-line": [
                "sla_seconds", "overflow_to", "overflow_after_seconds"], "queues.common": ["sla_seconds"]}
# TOML integers are 64-bit; a longer one is in the regression test below, and so are
# non-ASCII digits in a listen address: printable ASCII only here.
SCALAR = st.one_of(st.booleans(), st.integers(-(2**63), 2**63 - 1), st.floats(),
                   st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7e), max_size=16),
                   st.sampled_from(("127.0.0.1:9105", "[::1]:0", "DEBUG", "common", "x:70000")))
TOML_VALUE = SCALAR | st.lists(SCALAR, max_size=3)


@st.composite
def toml_documents(draw: st.DrawFn) -> str:
    lines = []
    if draw(st.booleans()):
        lines.append(f"log_level = {toml_value(draw(TOML_VALUE))}")
    for section in draw(st.lists(st.sampled_from(sorted(SECTIONS) + ["bogus"]), unique=True)):
        lines.append(f"[{section}]")
        for key in draw(st.lists(st.sampled_from(SECTIONS.get(section, []) + ["nope"]), unique=True)):
            lines.append(f"{key} = {toml_value(draw(TOML_VALUE))}")
    return "\n".join(lines) + "\n"


ENV = st.dictionaries(st.sampled_from(("IVR_AMI_HOST", "IVR_AMI_PORT", "IVR_AMI_USERNAME",
                                       "IVR_AMI_SECRET", "IVR_API_TOKEN", "IVR_LISTEN",
                                       "IVR_LOG_LEVEL")),
                      st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7e), max_size=16),
                      max_size=3)


@deterministic(150)
@given(raw=toml_documents().map(str.encode) | st.binary(max_size=48), env=ENV,
       listen=st.none() | st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7e), max_size=12),
       log_level=st.none() | st.sampled_from(("debug", "INFO", "loud", "")))
def test_config_load_raises_only_config_error(scratch: Path, raw: bytes, env: dict[str, str],
                                              listen: str | None, log_level: str | None) -> None:
    path = scratch / "ivr.toml"
    path.write_bytes(raw)
    try:
        cfg = config_mod.load(path, env, listen, log_level)
    except ConfigError as exc:
        assert "\n" not in str(exc)
        return
    assert 1 <= cfg.ami.port <= 65535 and 0 <= cfg.listen_port <= 65535
    assert all(q.sla_seconds > 0 and math.isfinite(q.sla_seconds) for q in cfg.queues)


@pytest.mark.parametrize("text, env", [
    ("", {"IVR_LISTEN": "127.0.0.1:²"}),
    ('[http]\nlisten = "127.0.0.1:²"\n', {}),
    ("[queues.common]\nsla_seconds = 1" + "0" * 400 + "\n", {}),
    ("[ami]\nping_interval = 1" + "0" * 400 + "\n", {}),
    ("[ami]\nport = 1" + "0" * 5000 + "\n", {}),
], ids=["env-listen-superscript", "file-listen-superscript", "huge-sla", "huge-ping",
        "5000-digit-port"])
def test_config_mistakes_are_config_errors(scratch: Path, text: str, env: dict[str, str]) -> None:
    path = scratch / "ivr.toml"
    path.write_text(text)
    with pytest.raises(ConfigError):
        config_mod.load(path, env)
