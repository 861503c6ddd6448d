"""ivr.directory: the subscriber CSV, number normalisation, one-line errors with line numbers."""

from __future__ import annotations

from pathlib import Path

import pytest

import ivr
from ivr.routing.directory import Directory, DirectoryError, Subscriber, normalize_number

GOOD = """\
# number,account,area
number,account,area

79101,100101,north
+7 (916) 123-45-67, 100401 ,south
  # an indented comment
"8 800 555-35-35",5555,center
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "subscribers.csv"
    path.write_text(text, encoding="utf-8")
    return path


def error(tmp_path: Path, text: str) -> str:
    with pytest.raises(DirectoryError) as info:
        Directory.load(write(tmp_path, text))
    message = str(info.value)
    assert "\n" not in message
    return message


def test_good_file(tmp_path: Path) -> None:
    d = Directory.load(write(tmp_path, GOOD))
    assert len(d) == 3
    assert d.by_number("79101") == Subscriber("79101", "100101", "north")
    assert d.by_account("100401") == Subscriber("79161234567", "100401", "south")
    assert d.by_number("88005553535") == Subscriber("88005553535", "5555", "center")


def test_lookups_normalise_the_same_way(tmp_path: Path) -> None:
    d = Directory.load(write(tmp_path, GOOD))
    for spelling in ("79161234567", "+79161234567", "+7 (916) 123-45-67", "7-916-1234567"):
        assert d.by_number(spelling) is not None, spelling
    assert d.by_number("79161234568") is None
    assert d.by_number("") is None
    assert d.by_account("999999") is None


@pytest.mark.parametrize("raw, normal", [
    ("+7 (916) 123-45-67", "79161234567"), ("79101", "79101"), (" +79101 ", "79101"),
    ("++79101", "+79101"), ("7+9101", "7+9101"),
])
def test_normalize_number(raw: str, normal: str) -> None:
    assert normalize_number(raw) == normal


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "subscribers.csv"
    path.write_bytes(b"\xef\xbb\xbfnumber,account,area\n79101,100101,north\n")
    assert len(Directory.load(path)) == 1


def test_header_only_is_an_empty_directory(tmp_path: Path) -> None:
    assert len(Directory.load(write(tmp_path, "number,account,area\n"))) == 0


def test_empty() -> None:
    d = Directory.empty()
    assert len(d) == 0
    assert d.by_number("79101") is None
    assert d.by_account("100101") is None


def test_lab_sample_loads() -> None:
    d = Directory.load(Path(ivr.__file__).parent / "lab" / "files" / "subscribers.csv")
    lab = {"79101": "north", "79102": "north", "79201": "south", "79202": "south", "79301": "center"}
    for number, area in lab.items():
        s = d.by_number(number)
        assert s is not None and s.area == area, number
    assert d.by_number("79161234567") is not None
    assert len(d) >= 8


@pytest.mark.parametrize("text, expected", [
    ("", "subscribers.csv: no header row; expected number,account,area"),
    ("# only a comment\n\n", "subscribers.csv: no header row; expected number,account,area"),
    ("# c\nnumber,account\n", "subscribers.csv line 2: header must be exactly number,account,area"),
    ("number,account,area,extra\n", "subscribers.csv line 1: header must be exactly"),
    ("account,number,area\n", "subscribers.csv line 1: header must be exactly"),
    ("number,account,area\n79101,100101,north,x\n",
     "subscribers.csv line 2: expected 3 fields (number,account,area), got 4"),
    ("number,account,area\n\n79101,100101\n", "subscribers.csv line 3: expected 3 fields"),
    ("number,account,area\n7910a,100101,north\n",
     "subscribers.csv line 2: number must be 3 to 15 digits, got '7910a'"),
    ("number,account,area\n,100101,north\n", "subscribers.csv line 2: number must be"),
    ("number,account,area\n1234567890123456,100101,north\n", "subscribers.csv line 2: number must be"),
    ("number,account,area\n79101,123,north\n",
     "subscribers.csv line 2: account must be 4 to 12 digits, got '123'"),
    ("number,account,area\n79101,1234567890123,north\n", "subscribers.csv line 2: account must be"),
    ("number,account,area\n79101,10010a,north\n", "subscribers.csv line 2: account must be"),
    ("number,account,area\n79101,100101,North\n",
     "subscribers.csv line 2: area must be a slug of a-z, 0-9 and '-', got 'North'"),
    ("number,account,area\n79101,100101,\n", "subscribers.csv line 2: area must be"),
    ("number,account,area\n79101,100101,no rth\n", "subscribers.csv line 2: area must be"),
    ('number,account,area\n"79101,100101,north\n', "subscribers.csv line 2: not valid CSV"),
])
def test_errors_name_the_line(tmp_path: Path, text: str, expected: str) -> None:
    assert error(tmp_path, text).startswith(expected)


def test_duplicate_number_after_normalisation(tmp_path: Path) -> None:
    text = "number,account,area\n# c\n79161234567,100101,north\n\n+7 916 123-45-67,100102,south\n"
    assert error(tmp_path, text) == "subscribers.csv line 5: duplicate number '79161234567'"


def test_duplicate_account(tmp_path: Path) -> None:
    text = "number,account,area\n79101,100101,north\n79102,100101,north\n"
    assert error(tmp_path, text) == "subscribers.csv line 3: duplicate account '100101'"


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DirectoryError, match=r"^cannot read subscriber directory .*missing\.csv: "
                                             r"No such file or directory$"):
        Directory.load(tmp_path / "missing.csv")


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(DirectoryError, match="^cannot read subscriber directory"):
        Directory.load(tmp_path)


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "subscribers.csv"
    path.write_bytes(b"number,account,area\n79101,100101,n\xff\n")
    with pytest.raises(DirectoryError, match="is not UTF-8 text$"):
        Directory.load(path)
