"""One CLI grammar (issue 21, item 10), read from the parser itself: every command and
option has a help line, every flag a help text or epilog names is one the command has,
a group's options go before the action or after it, `--json` is the machine output,
and `ivr --version` says the version."""

from __future__ import annotations

import argparse
import json
import re
import socket
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import pytest

import ivr
from ivr.cli.main import _parser, main

ROOT = Path(__file__).resolve().parents[2]


def commands(parser: argparse.ArgumentParser,
             path: tuple[str, ...] = ()) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """Every parser of the tree, by its command line: ("ivr ledger calls", parser)."""
    yield " ".join(("ivr", *path)), parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from commands(sub, (*path, name))


COMMANDS = dict(commands(_parser()))


def test_the_tree_is_all_there() -> None:
    for name in ("ivr ledger migrate", "ivr ledger calls", "ivr ledger reconcile",
                 "ivr report billing", "ivr report fcr", "ivr registry verify",
                 "ivr incident open", "ivr lab status", "ivr demo", "ivr replay"):
        assert name in COMMANDS


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_and_option_has_a_help_line(name: str) -> None:
    missing = []
    for action in COMMANDS[name]._actions:
        if isinstance(action, argparse._SubParsersAction):
            helped = {a.dest for a in action._choices_actions if a.help}
            missing += [f"{name} {sub}" for sub in action.choices if sub not in helped]
        elif not action.help or action.help == argparse.SUPPRESS:
            missing.append(f"{name} {'/'.join(action.option_strings) or action.dest}")
    assert missing == []


def _flags(text: str | None) -> set[str]:
    """The --flags a text names as this command's: not those quoted as another
    command line in `backticks`."""
    unquoted = re.sub(r"`[^`]*`", "", text or "")
    return set(re.findall(r"(?<![\w-])--[a-z][a-z-]*[a-z]", unquoted))


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_the_epilog_names_only_flags_the_command_has(name: str) -> None:
    """A group's epilog speaks of its actions: their flags count as its own."""
    parser = COMMANDS[name]
    has = {s for under, p in COMMANDS.items() if under == name or under.startswith(name + " ")
           for a in p._actions for s in a.option_strings}
    assert _flags(parser.epilog) - has == set(), parser.epilog
    assert _flags(parser.description) - has == set(), parser.description


def test_the_epilog_check_finds_a_flag_the_command_lacks() -> None:
    assert _flags("Times (--from, --to), see `ivr run --listen`") == {"--from", "--to"}
    migrate = COMMANDS["ivr ledger migrate"]
    assert "--from" not in (migrate.epilog or "") and "--config" in (migrate.epilog or "")


# -- options before the action or after it ------------------------------------------

@pytest.mark.parametrize("argv, want", [
    (["incident", "--config", "a.toml", "list"], {"config": Path("a.toml"), "url": None}),
    (["incident", "list", "--config", "b.toml"], {"config": Path("b.toml"), "url": None}),
    (["incident", "--url", "http://x", "close", "inc-1", "--config", "c.toml"],
     {"config": Path("c.toml"), "url": "http://x", "id": "inc-1"}),
    (["incident", "open", "--area", "*", "--message", "m", "--config", "d.toml"],
     {"config": Path("d.toml"), "area": "*"}),
    (["lab", "--dir", "/l", "status"], {"dir": Path("/l"), "name": "default"}),
    (["lab", "status", "--json", "--name", "b"], {"dir": None, "name": "b", "json": True}),
    (["lab", "--name", "b", "down", "--dir", "/m"], {"dir": Path("/m"), "name": "b"}),
])
def test_a_group_option_goes_before_or_after_the_action(argv: list[str],
                                                        want: dict[str, object]) -> None:
    args = vars(_parser().parse_args(argv))
    assert {k: args[k] for k in want} == want


def test_incident_open_with_config_after_the_action_reaches_the_configured_ivr(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as sock:                  # bound, not listening: refused at once
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        conf = tmp_path / "ivr.toml"
        conf.write_text(f'[http]\nlisten = "127.0.0.1:{port}"\n[ami]\nusername = "ivr"\n')
        code = main(["incident", "open", "--config", str(conf), "--area", "north",
                     "--message", "outage"])
    err = capsys.readouterr().err
    assert code == 1 and f"cannot reach ivr at http://127.0.0.1:{port}" in err


# -- --json, --format and --version ---------------------------------------------------

def test_billing_json_is_format_json_and_the_two_do_not_mix(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conf = tmp_path / "ivr.toml"
    conf.write_text(f'[ledger]\nurl = "sqlite:///{tmp_path / "l.db"}"\n')
    assert main(["ledger", "migrate", "--config", str(conf)]) == 0
    capsys.readouterr()
    month = ["--from", "2026-11-01", "--to", "2026-12-01", "--config", str(conf)]
    outs = []
    for form in (["--json"], ["--format", "json"]):
        assert main(["report", "billing", *month, *form]) == 0
        outs.append(json.loads(capsys.readouterr().out))
    assert outs[0] == outs[1] and outs[0]["totals"]["offered"] == 0
    with pytest.raises(SystemExit) as info:
        main(["report", "billing", *month, "--json", "--format", "csv"])
    assert info.value.code == 2 and "not allowed with" in capsys.readouterr().err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out == f"ivr {metadata.version('ivr')}\n"
    assert metadata.version("ivr") == ivr.__version__


def test_the_changelog_has_an_unreleased_section() -> None:
    text = (ROOT / "CHANGELOG.md").read_text()
    assert text.startswith("# Changelog")
    assert "## [Unreleased]" in text and "--version" in text
