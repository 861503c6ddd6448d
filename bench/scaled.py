"""A large, realistic AMI event stream, made by scaling up the lab captures.

The transcripts in tests/fixtures/*.ami are real Asterisk 22 output, noise
(Newexten, VarSet, DeviceStateChange...) included.  We keep their event
frames only: the banner, the Login response, the snapshot replies
(ActionID snap-*) and FullyBooted (the frames with no Timestamp) go.  Each
fixture then becomes a template, and every copy of it ("instance") gets its
own Uniqueids/Linkedids, channel names (PJSIP/op1-0000002c), bridge UUIDs and
a shifted Timestamp, so the copies are distinct calls.  Instances start
`spacing_us` apart and overlap in time; their frames are merged in
timestamp order, each instance keeping its own capture order.

Templates are `str.format` strings, so a frame costs one format_map() to
render: cheap enough for the latency server to render while it paces.
"""

from __future__ import annotations

import heapq
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures"
NAMES = ("answered", "moved", "abandoned", "fallback_timeout", "resync")
EOL = "\r\n"

_UID_HEADERS = frozenset({"uniqueid", "linkedid", "destuniqueid", "destlinkedid"})
_CHANNEL = re.compile(r"((?:PJSIP|SIP|IAX2|DAHDI|Local)/[^\s,;/]+?-)([0-9a-f]{8})\b")
_UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")


@dataclass(frozen=True, slots=True)
class Frame:
    rel_us: int          # from the capture's first event
    event: str
    text: str            # str.format template, ends with the blank line


@dataclass
class Template:
    name: str
    frames: list[Frame]
    uids: list[str]
    channels: list[str]
    uuids: list[str]
    calls: int           # QueueCallerJoin-ing callers (distinct Uniqueids)


@dataclass
class Instance:
    template: Template
    offset_us: int
    ctx: dict[str, str] = field(default_factory=dict)


def _ts_us(value: str) -> int:
    whole, _, frac = value.partition(".")
    return int(whole) * 1_000_000 + int((frac + "000000")[:6])


def format_ts(us: int) -> str:
    return f"{us // 1_000_000}.{us % 1_000_000:06d}"


def _event_frames(data: bytes) -> list[list[tuple[str, str]]]:
    frames = []
    for raw in data.decode("utf-8").split(EOL + EOL):
        lines = [line.partition(": ")[::2] for line in raw.split(EOL) if line]
        if not lines or lines[0][0] != "Event":
            continue    # banner + Login response, list responses
        keys = {k.lower(): v for k, v in lines}
        if keys.get("actionid", "").startswith("snap-") or "timestamp" not in keys:
            continue    # snapshot replies, FullyBooted
        frames.append(lines)
    return frames


def load_template(name: str) -> Template:
    frames = _event_frames((FIXTURES / f"{name}.ami").read_bytes())
    uids = sorted({v for f in frames for k, v in f if k.lower() in _UID_HEADERS})
    channels: list[str] = []
    uuids: list[str] = []
    t0 = min(_ts_us(v) for f in frames for k, v in f if k == "Timestamp")
    joined = {v for f in frames if f[0][1] == "QueueCallerJoin" for k, v in f if k == "Uniqueid"}

    def slot(found: list[str], prefix: str, token: str) -> str:
        if token not in found:
            found.append(token)
        return "{%s%d}" % (prefix, found.index(token))

    def value(key: str, val: str) -> str:
        if val in uids:
            return slot(uids, "u", val)
        val = val.replace("{", "{{").replace("}", "}}")
        val = _CHANNEL.sub(lambda m: m.group(1) + slot(channels, "c", m.group(2)), val)
        return _UUID.sub(lambda m: slot(uuids, "b", m.group(0)), val)

    out = []
    for f in frames:
        rel = _ts_us(next(v for k, v in f if k == "Timestamp")) - t0
        text = "".join(f"{k}: {'{ts}' if k == 'Timestamp' else value(k, v)}{EOL}" for k, v in f)
        out.append(Frame(rel, f[0][1], text + EOL))
    return Template(name, out, uids, channels, uuids, len(joined))


def load_templates() -> list[Template]:
    return [load_template(n) for n in NAMES]


class Ids:
    """Globally distinct ids, Asterisk-shaped."""

    def __init__(self) -> None:
        self._uid = itertools.count(1000)
        self._chan = itertools.count(0x1000)
        self._uuid = itertools.count(1)

    def instance(self, t: Template, offset_us: int, base_us: int) -> Instance:
        epoch = (base_us + offset_us) // 1_000_000
        ctx = {f"u{i}": f"{epoch}.{next(self._uid)}" for i in range(len(t.uids))}
        ctx.update({f"c{i}": f"{next(self._chan):08x}" for i in range(len(t.channels))})
        ctx.update({f"b{i}": f"{next(self._uuid):08x}-b0b0-4e4e-8a8a-000000000000"
                    for i in range(len(t.uuids))})
        return Instance(t, offset_us, ctx)


def instances(templates: list[Template], spacing_us: int, base_us: int) -> Iterator[Instance]:
    """Endless: the fixtures round-robin, one every `spacing_us`."""
    ids = Ids()
    for n, t in enumerate(itertools.cycle(templates)):
        yield ids.instance(t, n * spacing_us, base_us)


def merged(source: Iterator[Instance], calls: int | None) -> Iterator[tuple[int, Frame, Instance]]:
    """(absolute offset µs, frame, instance) in timestamp order, until `calls`
    callers have been started (None: forever)."""
    heap: list[tuple[int, int, int, Instance]] = []
    tie = itertools.count()
    pending: Instance | None = next(source)
    started = 0
    while True:
        if pending is not None and (not heap or pending.offset_us <= heap[0][0]):
            heapq.heappush(heap, (pending.offset_us + pending.template.frames[0].rel_us,
                                  next(tie), 0, pending))
            started += pending.template.calls
            pending = None if calls is not None and started >= calls else next(source)
            continue
        if not heap:
            return
        at, _, i, inst = heapq.heappop(heap)
        yield at, inst.template.frames[i], inst
        frames = inst.template.frames
        if i + 1 < len(frames):
            nxt = max(at, inst.offset_us + frames[i + 1].rel_us)   # keep capture order
            heapq.heappush(heap, (nxt, next(tie), i + 1, inst))


def render(frame: Frame, inst: Instance, ts: str, **extra: str) -> str:
    return frame.text.format_map({**inst.ctx, "ts": ts, **extra})


# 7 callers per round of the 5 captures: about 8 new callers a second.
DEFAULT_SPACING_US = 180_000
BASE_US = 1_795_530_000_000_000      # the captures' epoch (2026-11-24)


def build(calls: int, spacing_us: int = DEFAULT_SPACING_US) -> tuple[bytes, dict[str, int]]:
    """The whole stream for `calls` callers, the five captures round-robin."""
    return build_from(load_templates(), calls, spacing_us)


def build_from(templates: list[Template], calls: int,
               spacing_us: int = DEFAULT_SPACING_US) -> tuple[bytes, dict[str, int]]:
    """The stream as bytes, and how many copies of each capture it holds."""
    parts: list[str] = []
    used: dict[str, int] = {}
    for at, frame, inst in merged(instances(templates, spacing_us, BASE_US), calls):
        if frame is inst.template.frames[0]:
            used[inst.template.name] = used.get(inst.template.name, 0) + 1
        parts.append(render(frame, inst, format_ts(BASE_US + at)))
    return "".join(parts).encode("utf-8"), used
