"""The AMI codec on byte literals: whole frames, split reads, bad input."""

from __future__ import annotations

import pytest

from ivr.ami.codec import Banner, Codec, MalformedFrame, Message, serialize
from tests.replay import FIXTURES

BANNER = b"Asterisk Call Manager/11.0.0\r\n"
LOGIN_OK = (b"Response: Success\r\nActionID: ivr-1\r\n"
            b"Message: Authentication accepted\r\n\r\n")
JOIN = ("Event: QueueCallerJoin\r\nPrivilege: agent,all\r\n"
        "Channel: PJSIP/caller-00000001\r\nCallerIDName: Кирилл 📞\r\n"
        "Queue: sales\r\nPosition: 1\r\n\r\n").encode()
STREAM = BANNER + LOGIN_OK + JOIN


def drain(codec: Codec) -> list[Message | Banner | MalformedFrame]:
    out: list[Message | Banner | MalformedFrame] = []
    while (item := codec.next_event()) is not None:
        out.append(item)
    return out


def decode(*chunks: bytes) -> list[Message | Banner | MalformedFrame]:
    codec = Codec()
    out: list[Message | Banner | MalformedFrame] = []
    for chunk in chunks:
        codec.receive_data(chunk)
        out += drain(codec)
    return out


def messages(items: list[Message | Banner | MalformedFrame]) -> list[Message]:
    return [item for item in items if isinstance(item, Message)]


def test_whole_stream() -> None:
    banner, login, join = decode(STREAM)
    assert banner == Banner("Asterisk Call Manager/11.0.0")
    assert isinstance(login, Message) and isinstance(join, Message)
    assert login.response == "Success"
    assert login.action_id == "ivr-1"
    assert join.event == "QueueCallerJoin"
    assert join["CallerIDName"] == "Кирилл 📞"
    assert join.headers[0] == ("Event", "QueueCallerJoin")


def test_split_at_every_byte_position() -> None:
    expected = decode(STREAM)
    for cut in range(1, len(STREAM)):
        assert decode(STREAM[:cut], STREAM[cut:]) == expected, cut


def test_one_byte_at_a_time() -> None:
    assert decode(*(STREAM[i:i + 1] for i in range(len(STREAM)))) == decode(STREAM)


def test_utf8_character_cut_across_reads() -> None:
    frame = "Event: Newchannel\r\nCallerIDName: Кирилл\r\n\r\n".encode()
    cut = frame.index("К".encode()) + 1  # inside the two-byte Cyrillic letter
    (msg,) = decode(frame[:cut], frame[cut:])
    assert isinstance(msg, Message)
    assert msg["CallerIDName"] == "Кирилл"


def test_emoji_cut_across_reads() -> None:
    frame = "Event: UserEvent\r\nNote: 📞 call\r\n\r\n".encode()
    cut = frame.index("📞".encode()) + 3  # inside the four-byte emoji
    (msg,) = decode(frame[:cut], frame[cut:])
    assert isinstance(msg, Message) and msg["Note"] == "📞 call"


def test_repeated_keys_kept_in_order() -> None:
    (msg,) = decode(b"Event: VarSet\r\nVariable: A=1\r\nvariable: B=2\r\n"
                    b"Variable: C=3\r\n\r\n")
    assert isinstance(msg, Message)
    assert msg.get_all("VARIABLE") == ["A=1", "B=2", "C=3"]
    assert msg["Variable"] == "A=1"
    assert msg.headers[2] == ("variable", "B=2")  # original spelling kept


def test_value_with_colon_space_and_empty_value() -> None:
    (msg,) = decode(b"Response: Error\r\nMessage: Queue: sales: not found\r\n"
                    b"Output:\r\nEmpty: \r\n\r\n")
    assert isinstance(msg, Message)
    assert msg["Message"] == "Queue: sales: not found"
    assert msg["Output"] == ""
    assert msg["Empty"] == ""


def test_case_insensitive_lookup() -> None:
    (msg,) = decode(b"EVENT: Hangup\r\nuniqueid: 1700000000.1\r\n\r\n")
    assert isinstance(msg, Message)
    assert msg.event == "Hangup"
    assert msg["UniqueID"] == "1700000000.1"
    assert msg.get("Cause") is None
    assert msg.get("Cause", "16") == "16"


def test_what_asterisk_sends_is_read_without_splitting_every_header() -> None:
    """The lab's real frames take the fast path: a lookup finds its header in
    the frame's text and the header list is never built (the ingest benchmark
    depends on it; tests/unit/test_hostile_input.py checks both paths agree)."""
    read = 0
    for path in sorted(FIXTURES.glob("*.ami")):
        codec = Codec()
        codec.receive_data(path.read_bytes())
        while (item := codec.next_event()) is not None:
            if isinstance(item, Message):
                assert item.get("Uniqueid") or item.get("Response") or item.event
                assert item._headers is None, item.headers
                read += 1
        assert codec.malformed == 0
    assert read > 500


def test_missing_header_raises_key_error_naming_key_and_kind() -> None:
    msg = Message((("Event", "QueueMember"), ("Queue", "sales")))
    with pytest.raises(KeyError) as info:
        msg["Location"]
    assert "Location" in str(info.value)
    assert "QueueMember" in str(info.value)


def test_bare_newline_endings() -> None:
    items = decode(b"Asterisk Call Manager/11.0.0\nResponse: Success\nActionID: 7\n\n"
                   b"Event: Hangup\nUniqueid: 1.2\n\n")
    assert items[0] == Banner("Asterisk Call Manager/11.0.0")
    assert [m.headers for m in messages(items)] == [
        (("Response", "Success"), ("ActionID", "7")),
        (("Event", "Hangup"), ("Uniqueid", "1.2")),
    ]


def test_leading_blank_lines_skipped() -> None:
    items = decode(BANNER + b"\r\n\r\n\n" + LOGIN_OK + b"\r\n" + JOIN)
    assert len(messages(items)) == 2
    assert not [i for i in items if isinstance(i, MalformedFrame)]


def test_stream_without_banner() -> None:
    (msg,) = decode(LOGIN_OK)
    assert isinstance(msg, Message) and msg.response == "Success"


def test_malformed_frame_between_good_ones() -> None:
    codec = Codec()
    codec.receive_data(BANNER + LOGIN_OK
                       + b"Response: Follows\r\nPrivilege: Command\r\n"
                         b"Name/username   Host\r\n--END COMMAND--\r\n\r\n"
                       + JOIN)
    banner, first, bad, second = drain(codec)
    assert isinstance(first, Message) and isinstance(second, Message)
    assert isinstance(bad, MalformedFrame)
    assert bad.raw.startswith(b"Response: Follows")
    assert second.event == "QueueCallerJoin"
    assert codec.malformed == 1


def test_malformed_raw_is_capped() -> None:
    codec = Codec()
    codec.receive_data(b"Event: X\r\n" + b"no colon here " * 50 + b"\r\n\r\n")
    (bad,) = drain(codec)
    assert isinstance(bad, MalformedFrame) and len(bad.raw) == 200


def test_invalid_utf8_replaced_not_dropped() -> None:
    (msg,) = decode(b"Event: Newchannel\r\nCallerIDName: ab\xff\xfecd\r\n\r\n")
    assert isinstance(msg, Message)
    assert msg["CallerIDName"] == "ab\ufffd\ufffdcd"


def test_oversized_frame_is_bounded_and_stream_recovers() -> None:
    cap = 64 * 1024
    codec = Codec(max_buffer=cap)
    codec.receive_data(BANNER)
    drain(codec)
    chunk = b"X-Junk: " + b"a" * 4088  # no blank line, ever
    seen: list[Message | Banner | MalformedFrame] = []
    for _ in range(5 * 1024 * 1024 // len(chunk)):
        codec.receive_data(chunk)
        seen += drain(codec)
        assert codec.buffered <= cap
    codec.receive_data(b"\r\n\r\n" + JOIN)
    seen += drain(codec)
    assert codec.malformed >= 1
    assert all(isinstance(i, MalformedFrame) for i in seen[:-1])
    assert isinstance(seen[0], MalformedFrame)
    assert seen[0].reason == f"frame larger than {cap} bytes"
    last = seen[-1]
    assert isinstance(last, Message) and last.event == "QueueCallerJoin"


def test_oversized_complete_frame_rejected_too() -> None:
    codec = Codec(max_buffer=100)
    codec.receive_data(b"Event: Big\r\nData: " + b"x" * 200 + b"\r\n\r\n" + LOGIN_OK)
    bad, good = drain(codec)
    assert isinstance(bad, MalformedFrame) and "larger than 100" in bad.reason
    assert isinstance(good, Message) and good.response == "Success"


def test_eof() -> None:
    codec = Codec()
    codec.receive_data(LOGIN_OK + b"Event: Hangup\r\nUniq")
    codec.receive_data(b"")
    first, truncated = drain(codec)
    assert isinstance(first, Message)
    assert isinstance(truncated, MalformedFrame) and "EOF" in truncated.reason
    assert codec.eof
    with pytest.raises(RuntimeError):
        codec.receive_data(b"more")


def test_serialize_order_and_list_values() -> None:
    data = serialize("Originate", {"Channel": "Local/100@ivr",
                                   "Variable": ["A=1", "B=2"], "Async": "true"},
                     action_id="ivr-9")
    assert data == (b"Action: Originate\r\nActionID: ivr-9\r\n"
                    b"Channel: Local/100@ivr\r\nVariable: A=1\r\nVariable: B=2\r\n"
                    b"Async: true\r\n\r\n")


def test_serialize_without_fields_or_id() -> None:
    assert serialize("Ping") == b"Action: Ping\r\n\r\n"


def test_serialize_utf8_round_trip() -> None:
    (msg,) = decode(serialize("UserEvent", {"Name": "Кирилл"}))
    assert isinstance(msg, Message) and msg["Name"] == "Кирилл"


@pytest.mark.parametrize("fields", [
    {"Queue": "sales\r\nAction: Logoff"},
    {"Queue": "sales\nAction: Logoff"},
    {"Queue": "sales\r"},
    {"Variable": ["A=1", "B=2\r\nAction: Logoff"]},
    {"Bad\r\nKey": "v"},
    {"Bad: Key": "v"},
    {"": "v"},
    {"ActionID": "mine"},
])
def test_serialize_rejects_injection(fields: dict[str, str | list[str]]) -> None:
    with pytest.raises(ValueError):
        serialize("QueueStatus", fields, action_id="ivr-1")


def test_serialize_rejects_bad_action_and_id() -> None:
    with pytest.raises(ValueError):
        serialize("Ping\r\nAction: Logoff")
    with pytest.raises(ValueError):
        serialize("Ping", action_id="1\r\n")
    with pytest.raises(ValueError):
        serialize("")


def test_serialize_error_does_not_echo_value() -> None:
    with pytest.raises(ValueError) as info:
        serialize("Login", {"Secret": "hunter2\r\n"})
    assert "hunter2" not in str(info.value)
