"""Fuzz the AMI codec: any bytes, cut into any reads, under any cap.

    fuzz/run.sh 60                                  # every harness, 60 s each
    .venv/bin/python fuzz/fuzz_codec.py --seeds DIR  # write the seed corpus
    .venv/bin/python fuzz/fuzz_codec.py crash-...    # replay one finding

The input is the byte stream itself, so the seeds (slices of the real
transcripts in tests/fixtures) are realistic streams.  Its CRC picks the cap
and the read sizes: every mutation is also a new way to cut the stream.

A finding is any exception, or a broken promise of ivr/ami/codec.py: more
buffered than the cap plus one read, a header name or value with a line
break, a lookup that finds another value than the header list says, a
MalformedFrame holding more than 200 bytes, data accepted after
EOF, a different result for the same bytes in one read, or a decoded frame
that does not decode to itself once written back.
"""

from __future__ import annotations

import random
import sys
import zlib
from pathlib import Path

import atheris  # type: ignore[import-untyped]

with atheris.instrument_imports(include=["ivr"]):
    from ivr.ami.codec import Banner, Codec, MalformedFrame, Message

Item = Message | Banner | MalformedFrame
FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures"
CAPS = (16, 64, 256, 4096, 1 << 20)
READS = (1, 2, 3, 7, 64, 1500, 65536)
NO_CAP = 1 << 20   # past libFuzzer's -max_len: never reached
SEED_SIZE = 4000


def drain(codec: Codec) -> list[Item]:
    out: list[Item] = []
    while (item := codec.next_event()) is not None:
        check_item(item)
        out.append(item)
    return out


def check_item(item: Item) -> None:
    if isinstance(item, MalformedFrame):
        assert len(item.raw) <= 200, item
    elif isinstance(item, Message):
        eager = Message(item.headers)   # lookups in the header list, not in the frame's text
        for name, value in item.headers:
            assert name and name == name.strip() and ":" not in name, item
            assert "\n" not in name + value and not value.endswith("\r"), item
            for key in (name, name.upper(), name.lower()):
                assert item.get(key) == eager.get(key), (key, item)


def decode(data: bytes, cap: int, reads: random.Random | None) -> list[Item]:
    """All of `data` through a Codec(cap), in reads sized by `reads` (one read if None)."""
    codec, out, pos, held = Codec(cap), [], 0, max(cap, 2)
    while pos < len(data):
        size = reads.choice(READS) if reads else len(data)
        chunk = data[pos:pos + size]
        pos += len(chunk)
        codec.receive_data(chunk)
        assert codec.buffered <= held + len(chunk), (codec.buffered, cap)
        out += drain(codec)
        assert codec.buffered <= held, (codec.buffered, cap)
    codec.receive_data(b"")
    out += drain(codec)
    assert codec.buffered <= 2, codec.buffered
    try:
        codec.receive_data(b"late")
    except RuntimeError:
        return out
    raise AssertionError("receive_data() after EOF was accepted")


def written_back(msg: Message) -> bytes:
    return "".join(f"{name}: {value}\r\n" for name, value in msg.headers).encode() + b"\r\n"


def test_one_input(data: bytes) -> None:
    crc = zlib.crc32(data)
    cap = CAPS[crc % len(CAPS)]
    items = decode(data, cap, random.Random(crc))
    if cap == NO_CAP:
        assert items == decode(data, cap, None), "chunking changed the result"
    for msg in items:
        if isinstance(msg, Message):
            assert decode(written_back(msg), NO_CAP, None) == [msg], msg


def write_seeds(corpus: Path) -> None:
    """Slices of the real transcripts, each starting at a frame boundary."""
    corpus.mkdir(parents=True, exist_ok=True)
    for path in sorted(FIXTURES.glob("*.ami")):
        data, start, n = path.read_bytes(), 0, 0
        while start < len(data):
            end = data.rfind(b"\r\n\r\n", start, start + SEED_SIZE)
            end = len(data) if end <= start else end + 4
            (corpus / f"{path.stem}-{n:03d}").write_bytes(data[start:end])
            start, n = end, n + 1


def main() -> None:
    if sys.argv[1:2] == ["--seeds"]:
        write_seeds(Path(sys.argv[2]))
        return
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
