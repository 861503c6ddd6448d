"""Numbers for tickets, complaints and claims: issued by ivr, read aloud, typed on a keypad.

A number is digits only (a caller types it on the phone): the kind's digit
(1 ticket, 2 complaint, 3 claim), its sequence within the kind, at least six
digits, and a check digit by Damm's algorithm, which catches every single
mistyped digit and every swap of two adjacent digits.  10000012 is the first
ticket's: kind 1, sequence 000001, check 2.
"""

from __future__ import annotations

KINDS = {"ticket": "1", "complaint": "2", "claim": "3"}
_KIND_OF = {digit: kind for kind, digit in KINDS.items()}
_WIDTH = 6

# Damm's totally anti-symmetric quasigroup of order 10.
_TABLE = (
    (0, 3, 1, 7, 5, 9, 8, 6, 4, 2),
    (7, 0, 9, 2, 1, 5, 4, 8, 6, 3),
    (4, 2, 0, 6, 8, 7, 1, 3, 5, 9),
    (1, 7, 5, 0, 9, 8, 3, 4, 2, 6),
    (6, 1, 2, 3, 0, 4, 5, 9, 7, 8),
    (3, 6, 7, 4, 2, 0, 9, 5, 8, 1),
    (5, 8, 6, 9, 7, 2, 0, 1, 3, 4),
    (8, 9, 4, 5, 3, 6, 2, 0, 1, 7),
    (9, 4, 3, 8, 6, 1, 7, 2, 0, 5),
    (2, 5, 8, 1, 4, 3, 6, 7, 9, 0),
)


class NumberError(ValueError):
    """Not a number ivr issued; the message is one line, fit for a 400 or a prompt."""


def check_digit(digits: str) -> str:
    interim = 0
    for d in digits:
        interim = _TABLE[interim][ord(d) - 48]
    return str(interim)


def issue(kind: str, sequence: int) -> str:
    """The number of the `sequence`-th (from 1) item of `kind`."""
    if sequence < 1:
        raise ValueError("sequence starts at 1")
    body = KINDS[kind] + str(sequence).zfill(_WIDTH)
    return body + check_digit(body)


def parse(text: str) -> tuple[str, str]:
    """(kind, number) of a number as a person gives it: spaces and dashes between
    the digits are allowed.  Raises NumberError saying what is wrong."""
    number = "".join(ch for ch in str(text) if ch not in " -")
    if not number.isascii() or not number.isdigit():
        raise NumberError(f"{text!r} is not a number: digits only")
    if len(number) < _WIDTH + 2:
        raise NumberError(f"{number} is too short: a number has at least {_WIDTH + 2} digits")
    kind = _KIND_OF.get(number[0])
    if kind is None:
        raise NumberError(f"{number} is no ticket, complaint or claim number "
                          f"(they begin with 1, 2 or 3)")
    if check_digit(number) != "0":
        raise NumberError(f"{number}: wrong check digit (mistyped?)")
    return kind, number
