"""The desk's numbers (a check digit that catches mistyping) and the registry's chain."""

from __future__ import annotations

import dataclasses
import itertools

import pytest

from ivr.desk import numbers, registry
from ivr.desk.registry import GENESIS, Entry


def test_numbers_read_aloud_and_carry_their_kind() -> None:
    assert numbers.issue("ticket", 1) == "10000012"
    assert numbers.parse("1000-0012") == ("ticket", "10000012")
    assert numbers.parse(numbers.issue("complaint", 42))[0] == "complaint"
    assert numbers.parse(numbers.issue("claim", 1_234_567))[0] == "claim"   # grows past 6 digits


@pytest.mark.parametrize("sequence", [1, 7, 42, 999, 123_456, 999_999])
def test_every_single_wrong_digit_and_adjacent_swap_is_caught(sequence: int) -> None:
    good = numbers.issue("ticket", sequence)
    for i, d in itertools.product(range(len(good)), "0123456789"):
        typo = good[:i] + d + good[i + 1:]
        if typo != good and typo[0] in "123":
            with pytest.raises(numbers.NumberError, match="check digit"):
                numbers.parse(typo)
    for i in range(len(good) - 1):
        swapped = good[:i] + good[i + 1] + good[i] + good[i + 2:]
        if swapped != good and swapped[0] in "123":
            with pytest.raises(numbers.NumberError):
                numbers.parse(swapped)


@pytest.mark.parametrize("text, message", [
    ("12ab", "digits only"), ("123", "too short"), ("90000012", "begin with 1, 2 or 3"),
    ("10000013", "wrong check digit"),
])
def test_bad_numbers_say_why(text: str, message: str) -> None:
    with pytest.raises(numbers.NumberError, match=message):
        numbers.parse(text)


def chain(n: int) -> list[Entry]:
    entries, head = [], (0, GENESIS)
    for i in range(1, n + 1):
        e = registry.make(head, 1_796_000_000_000_000 + i, "ticket", numbers.issue("ticket", i),
                          "filed", "operator", "op1", {"problem": f"no link {i}"})
        entries.append(e)
        head = (e.seq, e.hash)
    return entries


def head_of(entries: list[Entry]) -> tuple[int, str]:
    return entries[-1].seq, entries[-1].hash


def test_an_intact_chain() -> None:
    entries = chain(5)
    verdict = registry.verify(entries, head_of(entries))
    assert verdict.intact and verdict.entries == 5 and verdict.head == head_of(entries)
    assert registry.verify([], None).intact


def test_an_altered_entry_is_named() -> None:
    entries = chain(5)
    head = head_of(entries)
    entries[2] = dataclasses.replace(entries[2], body='{"problem":"nothing"}')
    verdict = registry.verify(entries, head)
    assert not verdict.intact and verdict.problem is not None
    assert verdict.problem.startswith("entry 3 (ticket 10000036) altered")


def test_a_removed_entry_is_named() -> None:
    entries = chain(5)
    head = head_of(entries)
    del entries[1]
    assert registry.verify(entries, head).problem == "entry 2 removed (the chain goes on at 3)"
    # The last ones: the head kept beside the chain says how far it went.
    assert "entry 5-5 removed" in str(registry.verify(chain(5)[:4], head).problem)
    assert "head is missing" in str(registry.verify(chain(5), None).problem)


def test_an_inserted_entry_is_named() -> None:
    entries = chain(4)
    # Somebody forges entry 3 anew (right hash of its own, over a made-up prev).
    forged = registry.make((2, "f" * 64), entries[2].at_us, "ticket", entries[2].number,
                           "filed", "supervisor", "sup1", {"problem": "forged"})
    verdict = registry.verify(entries[:2] + [forged] + entries[3:], head_of(entries))
    assert str(verdict.problem).startswith("entry 3 (ticket 10000036) inserted or replaced")
    doubled = entries[:2] + [entries[1]] + entries[2:]
    assert "seen twice" in str(registry.verify(doubled, head_of(entries)).problem)
