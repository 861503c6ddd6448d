"""[routing] names the queues and numbers of a site (issue 21): numbered queues as a
FreePBX has them, checked at start, and used by ivr's moves and transfers."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import pytest

from ivr import app
from ivr.ami.codec import Message
from ivr.config import ConfigError, QueueConfig, load
from ivr.pbx import actions
from ivr.routing.policy import Move


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ivr.toml"
    path.write_text(text)
    return path


NUMBERED = '[routing]\nfirst_line = "600"\ncommon = "601"\nengineers = "602"\n' \
           'supervisors = "603"\nhotline = "7000"\nescalation = "7010"\nsupervisor = "7011"\n' \
           'readback = "7012"\n'


def test_numbered_queues_make_the_default_queues(tmp_path: Path) -> None:
    config = load(write(tmp_path, NUMBERED))
    assert config.queue_names == ("600", "601", "602", "603")
    assert config.first_line == QueueConfig("600", 30.0, "601", 30.0)
    assert config.routing.role_queues() == {"first-line": "600", "common": "601",
                                            "engineers": "602", "supervisors": "603"}


def test_the_defaults_are_the_dialplans_names() -> None:
    r = load().routing
    assert (r.first_line, r.common, r.engineers, r.supervisors) == (
        "first-line", "common", "engineers", "supervisors")
    assert (r.hotline, r.escalation, r.supervisor, r.readback) == ("8800", "9000", "9001", "9002")


@pytest.mark.parametrize(("line", "says"), [
    ('first_line = "general"', "cannot be named general"),
    ('first_line = "GENERAL"', "cannot be named general"),
    ('common = "first-line"', "plays two parts"),
    ('first_line = "6 00"', "a queue name is"),
    ('first_line = ""', "a queue name is"),
    ('first_line = "x\\u0000"', "a queue name is"),
    ('first_line = "${EVIL}"', "a queue name is"),
    ('first_line = "' + "q" * 65 + '"', "a queue name is"),
    ("first_line = 600", "expected str"),
    ('hotline = "9000"', "given twice"),
    ('hotline = "88a0"', "2 to 20 digits"),
    ('hotline = "8"', "2 to 20 digits"),
    ('readback = "9002,1,Hangup()"', "2 to 20 digits"),
    ("hotline = 8800", "expected str"),
])
def test_a_bad_name_or_number_is_one_line_naming_the_key(tmp_path: Path, line: str,
                                                        says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(write(tmp_path, f"[routing]\n{line}\n"))
    message = str(caught.value)
    assert message.startswith("routing.") and says in message and "\n" not in message


class Ami:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, str]]] = []

    async def action(self, name: str, fields: Mapping[str, str] | None = None,
                     timeout: float | None = None) -> Message:
        self.sent.append((name, dict(fields or {})))
        return Message((("Response", "Success"),))


async def test_moves_and_transfers_take_the_sites_extensions(tmp_path: Path) -> None:
    """A move to 601 goes to [ivr-queues] common, the part 601 plays; a queue of no
    part to its own name; the console's transfers to the configured numbers."""
    dialplan = app.dialplan(load(write(tmp_path, NUMBERED)))
    ami = Ami()
    await actions.move(ami, Move("1.1", "PJSIP/x-1", "600", "601", "timeout"), dialplan=dialplan)
    await actions.move(ami, Move("1.1", "PJSIP/x-1", "601", "610", "withdrawn"), dialplan=dialplan)
    assert await actions.transfer(ami, "PJSIP/x-1", "1.1", "supervisor", dialplan) == "7011"
    assert await actions.transfer(ami, "PJSIP/x-1", "1.1", "read_back", dialplan) == "7012"
    redirects = [(f["Context"], f["Exten"]) for name, f in ami.sent if name == "Redirect"]
    assert redirects == [("ivr-queues", "common"), ("ivr-queues", "610"),
                         ("ivr-agents", "7011"), ("ivr-agents", "7012")]
