"""queue_log files (ivr/reconcile/files.py): several at once in time order whatever
order they are given, gzip-compressed ones and damaged ones, a period found by binary
search, and a file that is not a queue_log."""

from __future__ import annotations

import gzip
import random
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ivr.reconcile.files import SNIFF_LINES, Damage, Lines, NotQueueLog, _search, open_files
from ivr.reconcile.rows import BadLine, Row, parse_lines

T = 1_796_000_000
LAB = Path(__file__).parent.parent / "fixtures" / "queue_log" / "lab.queue_log"


def rows_of(lines: Lines) -> list[tuple[int, str, str]]:
    return [(r.time_s, r.callid, r.event) for r in lines if isinstance(r, Row)]


def day(n: int, seed: int = 1, bad: float = 0.0) -> list[str]:
    """n rows a second or so apart, in time order, with some bad lines among them."""
    r = random.Random(seed)
    out, at = [], T
    for i in range(n):
        at += r.choice((0, 1, 1, 2, 30))
        if r.random() < bad:
            out.append(r.choice(("garbage\n", f"{at}|x\n", "\n", f"{at}|u|q|NONE|CONNECT|soon|x|1\n")))
        out.append(f"{at}|{T}.{i}|first-line|NONE|ENTERQUEUE||79|1\n")
    return out


def write(path: Path, lines: list[str], gz: bool = False) -> Path:
    data = "".join(lines).encode()
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def test_rotated_files_are_read_in_time_order_whatever_order_given(tmp_path: Path) -> None:
    lines = day(3000)
    whole = write(tmp_path / "whole", lines)
    parts = [write(tmp_path / "queue_log.2.gz", lines[:1000], gz=True),
             write(tmp_path / "queue_log.1", lines[1000:2000]),
             write(tmp_path / "queue_log", lines[2000:])]
    want = rows_of(Lines(open_files([whole])))
    assert len(want) == 3000
    for order in ([2, 0, 1], [0, 1, 2], [1, 2, 0, 1]):     # a file given twice is read once
        files = open_files([parts[i] for i in order])
        assert [f.path.name for f in files] == ["queue_log.2.gz", "queue_log.1", "queue_log"]
        assert files[0].gz and not files[1].gz
        assert rows_of(Lines(files)) == want


def test_a_period_reads_only_the_files_and_lines_it_needs(tmp_path: Path) -> None:
    lines = day(3000)
    parts = [write(tmp_path / "queue_log.2.gz", lines[:1000], gz=True),
             write(tmp_path / "queue_log.1", lines[1000:2000]),
             write(tmp_path / "queue_log", lines[2000:])]
    every = rows_of(Lines(open_files(parts)))
    for a, b in ((0, 3000), (10, 20), (900, 1100), (1500, 1501), (2500, 2999), (1000, 2000)):
        start, stop = every[a][0], every[b - 1][0] + 1
        read = Lines(open_files(parts), start, stop)
        assert rows_of(read) == [r for r in every if start <= r[0] < stop]
        if stop <= every[999][0]:
            assert [f.path.name for f, _, _ in read._spans] == ["queue_log.2.gz"]
        if start > every[1999][0]:
            assert [f.path.name for f, _, _ in read._spans] == ["queue_log"]
            assert read.total_bytes < parts[2].stat().st_size


@settings(max_examples=60, derandomize=True, database=None, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(0, 400), seed=st.integers(0, 1000), bad=st.sampled_from([0.0, 0.1, 0.5]),
       a=st.integers(-5, 1000), length=st.integers(0, 1000))
def test_binary_search_finds_the_period_in_any_file(n: int, seed: int, bad: float, a: int,
                                                    length: int, tmp_path_factory:
                                                    pytest.TempPathFactory) -> None:
    lines = day(n, seed, bad)
    path = write(tmp_path_factory.mktemp("q") / "queue_log", lines)
    every = list(parse_lines(lines))
    if not any(isinstance(r, Row) for r in every[:SNIFF_LINES]) and any(l.strip() for l in lines):
        with pytest.raises(NotQueueLog):
            open_files([path])
        return
    start, stop = T + a, T + a + length
    read = list(Lines(open_files([path]), start, stop))
    assert [replace(r, line=0) for r in read if isinstance(r, Row)] == [
        replace(r, line=0) for r in every if isinstance(r, Row) and start <= r.time_s < stop]
    # A bad line keeps its number in the file, however far into it the read began.
    for b in (r for r in read if isinstance(r, BadLine)):
        assert lines[b.line - 1].rstrip("\n")[:120] == b.text and b.file == str(path)
    with open(path, "rb") as f:
        offset = _search(f, path.stat().st_size, start)
    before = "".join(lines).encode()[:offset].decode().splitlines()
    assert all(not line[:10].isdigit() or int(line[:10]) < start for line in before)


def test_a_cut_short_gz_gives_its_lines_before_the_damage_and_says_so(tmp_path: Path) -> None:
    lines = day(20000, bad=0.0)
    data = gzip.compress("".join(lines).encode())
    cut = write(tmp_path / "queue_log.2.gz", [])
    cut.write_bytes(data[: len(data) // 2])
    later = write(tmp_path / "queue_log", [f"{T + 10**6}|z|first-line|NONE|ENTERQUEUE||7|1\n"])
    read = Lines(open_files([later, cut]))
    rows = rows_of(read)
    assert 0 < len(rows) - 1 < 20000
    assert rows[-1][1] == "z"                            # the next file is read all the same
    assert rows[:-1] == rows_of(Lines(open_files([write(tmp_path / "w", lines)])))[:len(rows) - 1]
    (damage,) = read.damaged
    assert damage == Damage(str(cut), len(rows) - 1, damage.reason) and "cut short" in damage.reason
    assert "\n" not in str(damage) and str(cut) in str(damage)


def test_a_corrupt_gz_is_damage_too(tmp_path: Path) -> None:
    data = bytearray(gzip.compress("".join(day(5000)).encode()))
    data[len(data) // 2: len(data) // 2 + 64] = bytes(64)
    path = tmp_path / "queue_log.3.gz"
    path.write_bytes(bytes(data))
    read = Lines(open_files([path]))
    assert rows_of(read) and len(read.damaged) == 1


def test_a_file_that_is_not_a_queue_log_is_refused_in_one_line(tmp_path: Path) -> None:
    passwd = write(tmp_path / "passwd", ["root:x:0:0:root:/root:/bin/bash\n"] * 3)
    with pytest.raises(NotQueueLog) as e:
        open_files([LAB, passwd])
    assert str(e.value).startswith(f"{passwd} is not a queue_log: none of its 3 line(s)")
    big = write(tmp_path / "big", ["x|y\n"] * 500)
    with pytest.raises(NotQueueLog, match=f"none of its first {SNIFF_LINES} line"):
        open_files([big])
    empty = write(tmp_path / "empty", [])
    assert open_files([empty])[0].first_s is None


def test_a_file_with_no_newline_is_read_a_bounded_line_at_a_time(tmp_path: Path) -> None:
    zeros = tmp_path / "zeros"
    zeros.write_bytes(bytes(5 << 20))
    with pytest.raises(NotQueueLog, match="is not a queue_log: none of its 80 line"):
        open_files([zeros])
    tail = tmp_path / "queue_log"
    tail.write_bytes(f"{T}|u|first-line|NONE|ENTERQUEUE||79|1\n".encode() + bytes(5 << 20))
    read = list(Lines(open_files([tail])))
    assert isinstance(read[0], Row) and 20 <= len(read) <= 90      # cut every 64 KiB or so
    assert all(isinstance(b, BadLine) and len(b.text) <= 120 for b in read[1:])
