"""`make demo` on a terminal: the summary and warnings there, ivr's full log in a file
it names (issue 21 item 9); off a terminal, everything stays where it was."""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Iterator

import pytest

from ivr.lab.demo import log_to_file


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def root_handlers() -> Iterator[None]:
    root = logging.getLogger()
    kept, level = list(root.handlers), root.level
    root.setLevel(logging.INFO)
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    for handler in kept:
        root.addHandler(handler)
    root.setLevel(level)


def test_on_a_terminal_info_goes_to_the_named_file_and_warnings_to_both(
        tmp_path: Path, root_handlers: None) -> None:
    console = Terminal()
    path = log_to_file(console, tmp_path / "lab")
    assert path is not None and path.parent == tmp_path / "lab"
    logging.getLogger("ivr.calls").info("call 1.1: answered by op1")
    logging.getLogger("ivr.pbx").warning("pbx default: AMI connection lost")
    said = console.getvalue()
    assert str(path) in said.splitlines()[0]
    assert "answered by op1" not in said and "AMI connection lost" in said
    logged = path.read_text()
    assert "answered by op1" in logged and "AMI connection lost" in logged


def test_off_a_terminal_nothing_changes(tmp_path: Path, root_handlers: None) -> None:
    before = list(logging.getLogger().handlers)
    assert log_to_file(io.StringIO(), tmp_path / "lab") is None
    assert logging.getLogger().handlers == before and not (tmp_path / "lab").exists()
