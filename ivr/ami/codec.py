"""Sans-IO codec for the Asterisk Manager Interface (AMI) wire format.

Bytes go in with `receive_data()`, typed events come out of `next_event()`,
and `serialize()` turns an action into bytes.  No sockets, no asyncio.

Theory of operation: on connect the server sends one banner line
(`Asterisk Call Manager/X.Y.Z`), then frames of `Key: Value` lines, each
ended by a blank line.  Raw bytes are buffered and a frame is decoded only
once it is complete, so a UTF-8 character cut across two reads is never
split.  A frame that does not parse (a line without ':') is reported as a
`MalformedFrame` and skipped; the stream goes on.  A frame laid out as
Asterisk writes it ("Key: value" lines) is checked in one regex match and
kept as text: a header is found in it when asked, which is most of ivr's
ingest speed (bench/README.md).  An incomplete frame may not grow past
`max_buffer`: past that we drop what we hold and skip to the next blank
line, so a peer that never sends one cannot make us hold more.  We accept
bare `\\n` line endings; we always send `\\r\\n`.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

# A blank line: the end of a frame.  Starting the pattern with a literal
# byte lets the regex engine scan fast through large buffers.
_FRAME_END = re.compile(rb"\n\r?\n")
_RAW_LIMIT = 200
# "Key: value" lines, all of a frame's at once (C speed); a line that does not
# match makes the count differ from the number of lines: a malformed frame.
# Keys are taken without surrounding blanks, and an empty key does not match.
_HEADER = re.compile(r"^[ \t\r\f\v]*([^:\s](?:[^:\n]*[^:\s])?)[ \t\r\f\v]*:(?: )?([^\n]*?)\r*$", re.M)
# What Asterisk sends, checked in one match without splitting the frame: with
# an LF put before it and a CR after it, every line is "\nKey: value\r", Key
# with nothing blank at either end and the value without CR.
_PLAIN = re.compile(r"(?:\n[^:\s][^:\n]*(?<!\s): [^\r\n]*\r)+")
_RESERVED_FIELDS = frozenset({"action", "actionid"})


class Message:
    """One AMI frame: a response or an event.  Keys keep their spelling;
    lookups ignore ASCII case, as Asterisk's own astman_get_header() does.
    A missing header is an error, never ''.

    Built by the codec from a frame in Asterisk's own layout, a Message keeps
    the frame's text and finds a header only when asked: an event usually
    has twenty headers and the tracker reads five.  `headers` is built on
    first use.
    """

    __slots__ = ("_headers", "_text", "_low", "_index")

    def __init__(self, headers: Iterable[tuple[str, str]]) -> None:
        self._headers: tuple[tuple[str, str], ...] | None = tuple(headers)
        self._text = ""            # only a frame read by the codec has text (and _low)
        self._low: str | None = None
        self._index: dict[str, str] | None = None

    @classmethod
    def _of_plain_frame(cls, text: str, low: str) -> Message:
        """`text` is "\n" + a frame + "\r" that matches _PLAIN; `low` is the same
        with ASCII letters lowered (so every offset is the same in both)."""
        msg = cls.__new__(cls)
        msg._headers = msg._index = None
        msg._text, msg._low = text, low
        return msg

    @property
    def headers(self) -> tuple[tuple[str, str], ...]:
        if self._headers is None:
            self._headers = tuple(_HEADER.findall(self._text[1:-1]))
        return self._headers

    def get(self, key: str, default: str | None = None) -> str | None:
        low = self._low
        needle = _NEEDLES.get(key) or _needle(key)
        if low is None or not needle:
            return self._lookup(key, default)
        # In a plain frame a header named `key` in any ASCII case is a line
        # "\nkey: value\r", and the first such line is the first header.
        at = low.find(needle)
        if at < 0:
            return default
        at += len(needle)
        text = self._text
        return text[at:text.find("\r", at)]

    def _lookup(self, key: str, default: str | None) -> str | None:
        if self._index is None:
            self._index = {_ascii_lower(k): v for k, v in reversed(self.headers)}
        return self._index.get(_ascii_lower(key), default)

    def __getitem__(self, key: str) -> str:
        value = self.get(key)
        if value is None:
            raise KeyError(f"no {key!r} header in {self.kind}")
        return value

    def get_all(self, key: str) -> list[str]:
        wanted = _ascii_lower(key)
        return [value for name, value in self.headers if _ascii_lower(name) == wanted]

    @property
    def event(self) -> str | None:
        return self.get("Event")

    @property
    def response(self) -> str | None:
        return self.get("Response")

    @property
    def action_id(self) -> str | None:
        return self.get("ActionID")

    @property
    def kind(self) -> str:
        """A short human name, e.g. 'event QueueMember', for error messages."""
        if self.event is not None:
            return f"event {self.event}"
        if self.response is not None:
            return f"response {self.response}"
        return "message"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Message):
            return NotImplemented
        return self.headers == other.headers

    def __hash__(self) -> int:
        return hash(self.headers)

    def __repr__(self) -> str:
        return f"Message(headers={self.headers!r})"


# Key -> "\nkey: " for the keys looked up (a handful, all in ivr's code);
# "" for a key the fast path cannot serve.
_NEEDLES: dict[str, str] = {}
_PLAIN_KEY = re.compile(r"[!-9;-~]+")   # printable ASCII, no blank, no ':'
_TO_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _needle(key: str) -> str:
    needle = f"\n{key.lower()}: " if _PLAIN_KEY.fullmatch(key) else ""
    if len(_NEEDLES) < 1024:
        _NEEDLES[key] = needle
    return needle


def _ascii_lower(text: str) -> str:
    return text.lower() if text.isascii() else text.translate(_TO_ASCII_LOWER)


@dataclass(frozen=True, slots=True)
class Banner:
    text: str


@dataclass(frozen=True, slots=True)
class MalformedFrame:
    reason: str
    raw: bytes

    def __post_init__(self) -> None:
        if len(self.raw) > _RAW_LIMIT:
            raise ValueError(f"MalformedFrame.raw is capped at {_RAW_LIMIT} bytes")


Event = Message | Banner | MalformedFrame


class Codec:
    """Incremental AMI decoder.  Feed bytes, then call `next_event()` until
    it returns None (need more data)."""

    def __init__(self, max_buffer: int = 1 << 20,
                 keep: Callable[[bytes], object] | None = None) -> None:
        """`keep(frame_bytes)` may say a complete frame is of no interest: it is
        then counted in `skipped` and never decoded (most AMI traffic is noise).
        It may be changed at any time (`codec.keep = None` decodes everything); it
        applies to the frames cut from then on."""
        if max_buffer < 1:
            raise ValueError("max_buffer must be positive")
        self._max = max_buffer
        self.keep = keep
        self._ready: deque[bytes] = deque()   # complete frames, split but not yet decoded
        self.skipped = 0
        self._buf = bytearray()
        self._expect_banner = True
        self._discarding = False
        self.malformed = 0
        self.eof = False

    @property
    def buffered(self) -> int:
        """Bytes held: frames split but not yet returned, and an incomplete one."""
        return len(self._buf) + sum(map(len, self._ready))

    def receive_data(self, data: bytes) -> None:
        """Add bytes from the peer; b"" means the peer closed (EOF)."""
        if not data:
            self.eof = True
        elif self.eof:
            raise RuntimeError("receive_data() after EOF")
        self._buf += data

    def next_event(self) -> Event | None:
        if self._ready:
            return self._next_frame()
        if self._discarding and not self._skip_oversized():
            return None
        _skip_blank_lines(self._buf)
        if self._expect_banner:
            line_end = self._buf.find(b"\n")
            if line_end < 0:
                return self._incomplete()
            self._expect_banner = False
            # Be lenient: a stream that starts with a header has no banner.
            if b":" not in self._buf[:line_end]:
                return self._take_banner(line_end)
        return self._next_frame()

    def _take_banner(self, line_end: int) -> Banner:
        text = self._buf[:line_end].decode("utf-8", "replace").strip()
        del self._buf[: line_end + 1]
        return Banner(text)

    def _next_frame(self) -> Message | MalformedFrame | None:
        while self._ready or self._split():
            raw = self._ready.popleft()
            # Same verdict whether the big frame came in one read or in many.
            if len(raw) > self._max:
                return self._malformed(f"frame larger than {self._max} bytes", raw)
            return self._parse(raw)
        return self._incomplete()

    def _split(self) -> bool:
        """Cut every complete frame buffered at once (one C call, not one per frame)."""
        parts = _FRAME_END.split(self._buf)
        if len(parts) == 1:
            return False
        self._buf = bytearray(parts[-1])
        _skip_blank_lines(self._buf)
        frames = parts[:-1]
        if self.keep is not None:
            # With a compiled pattern's .match as keep, this runs in C throughout.
            kept = list(filter(self.keep, frames))
            self.skipped += len(frames) - len(kept)
            frames = kept
        # Blank lines between frames leave empty parts: not frames.  The last
        # line's CR belongs to the terminator, not to the frame (nor to its size).
        self._ready.extend(bytes(p) for part in frames if (p := part.strip(b"\r\n")))
        return bool(self._ready)

    def _incomplete(self) -> MalformedFrame | None:
        """No complete frame buffered: enforce the cap, or flush at EOF."""
        if len(self._buf) > self._max:
            raw = bytes(self._buf[:_RAW_LIMIT])
            del self._buf[:-2]  # the tail may be the first half of a blank line
            self._discarding = True
            self._expect_banner = False
            return self._malformed(f"frame larger than {self._max} bytes", raw)
        if self.eof and self._buf:
            raw = bytes(self._buf)
            self._buf.clear()
            return self._malformed("truncated frame at EOF", raw)
        return None

    def _skip_oversized(self) -> bool:
        """Drop the rest of an oversized frame; True once its end was seen."""
        match = _FRAME_END.search(self._buf)
        if match is None:
            del self._buf[:-2]
            return False
        del self._buf[: match.end()]
        self._discarding = False
        return True

    def _parse(self, raw: bytes) -> Message | MalformedFrame:
        framed = b"\n" + raw + b"\r"
        text = framed.decode("utf-8", "replace")
        if _PLAIN.fullmatch(text):    # nearly every frame: checked, not yet split
            low = text.lower() if text.isascii() else framed.lower().decode("utf-8", "replace")
            return Message._of_plain_frame(text, low)
        text = text[1:-1]
        found = _HEADER.findall(text)
        if len(found) != text.count("\n") + 1:
            return self._malformed(self._bad_line(text), raw)
        return Message(tuple(found))

    @staticmethod
    def _bad_line(text: str) -> str:
        for number, line in enumerate(text.split("\n"), 1):
            key, colon, _ = line.partition(":")
            if not colon or not key.strip():
                return f"line {number} has no 'Key:'"
        return "a line has no 'Key:'"

    def _malformed(self, reason: str, raw: bytes) -> MalformedFrame:
        self.malformed += 1
        return MalformedFrame(reason, raw[:_RAW_LIMIT])


def _skip_blank_lines(buf: bytearray) -> None:
    start = 0
    while start < len(buf) and buf[start] in b"\r\n":
        start += 1
    del buf[:start]


def serialize(
    action: str,
    fields: Mapping[str, str | Sequence[str]] | None = None,
    action_id: str | None = None,
) -> bytes:
    """One action frame: Action, then ActionID if given, then the fields.
    A sequence value repeats its key once per item (e.g. Variable)."""
    if not action:
        raise ValueError("empty AMI action name")
    lines = [_header_line("Action", action)]
    if action_id is not None:
        lines.append(_header_line("ActionID", action_id))
    for key, value in (fields or {}).items():
        if key.lower() in _RESERVED_FIELDS:
            raise ValueError(f"{key!r} is set by serialize(), not by fields")
        values = [value] if isinstance(value, str) else value
        lines.extend(_header_line(key, item) for item in values)
    lines.append("\r\n")
    return "".join(lines).encode("utf-8")


def _header_line(key: str, value: str) -> str:
    # CR or LF would let a value start a new header (or frame): injection.
    # The value is not quoted in the error: it may be a secret.
    if not key or ":" in key or _has_line_break(key):
        raise ValueError(f"invalid AMI header name {key!r}")
    if _has_line_break(value):
        raise ValueError(f"CR or LF in the value of AMI header {key!r}")
    return f"{key}: {value}\r\n"


def _has_line_break(text: str) -> bool:
    return "\r" in text or "\n" in text
