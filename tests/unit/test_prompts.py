"""ivr.prompts with the real espeak-ng and sox: the WAV format Asterisk plays, regeneration, errors.

Skipped when the tools are missing, except on CI (CI=true), where that is a failure.
"""

from __future__ import annotations

import os
import shutil
import stat
import wave
from pathlib import Path

import pytest

from ivr.routing.prompts import (STATIC, PromptError, generate_static, incident_prompt,
                         incident_prompt_path, remove_incident_prompt, synthesize)

HAVE_TOOLS = bool(shutil.which("espeak-ng") and shutil.which("sox"))
needs_tools = pytest.mark.skipif(
    not HAVE_TOOLS and os.environ.get("CI") != "true",
    reason="espeak-ng and sox are not installed (make setup)")


def assert_asterisk_wav(path: Path) -> None:
    with wave.open(str(path), "rb") as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
        assert w.getnframes() / w.getframerate() > 0.5


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


@needs_tools
def test_synthesize_writes_8khz_mono_16bit(tmp_path: Path) -> None:
    out = tmp_path / "hello.wav"
    assert synthesize("Hello, this is a test of the support line.", out) == out
    assert_asterisk_wav(out)
    assert stat.S_IMODE(out.stat().st_mode) == 0o644
    assert leftovers(tmp_path) == []


@needs_tools
def test_text_is_an_argument_not_a_shell_word(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    out = synthesize(f"-x $(touch {marker}); `touch {marker}` 'quote\" done", tmp_path / "odd.wav")
    assert_asterisk_wav(out)
    assert not marker.exists()


@needs_tools
def test_generate_static_writes_every_prompt(tmp_path: Path) -> None:
    directory = tmp_path / "sounds" / "ivr"
    written = generate_static(directory)
    assert written == [directory / f"{name}.wav" for name in STATIC] + [
        directory / "nocallback" / "callback-offer.wav"]      # silence: not offered
    with wave.open(str(directory / "nocallback" / "callback-offer.wav"), "rb") as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
        assert set(w.readframes(w.getnframes())) == {0}
    assert stat.S_IMODE(directory.stat().st_mode) == 0o755
    for name, text in STATIC.items():
        assert_asterisk_wav(directory / f"{name}.wav")
        assert (directory / f"{name}.txt").read_text(encoding="utf-8") == text
    assert leftovers(directory) == []


@needs_tools
def test_generate_static_regenerates_only_what_changed(tmp_path: Path) -> None:
    generate_static(tmp_path)
    inodes = {name: (tmp_path / f"{name}.wav").stat().st_ino for name in STATIC}
    assert generate_static(tmp_path) == []
    assert {name: (tmp_path / f"{name}.wav").stat().st_ino for name in STATIC} == inodes

    (tmp_path / "greeting.txt").write_text("an older greeting", encoding="utf-8")
    (tmp_path / "known-incident.wav").unlink()
    (tmp_path / "escalation-refused.txt").unlink()
    assert generate_static(tmp_path) == [tmp_path / f"{name}.wav" for name in
                                         ("greeting", "known-incident", "escalation-refused")]
    assert (tmp_path / "greeting.txt").read_text(encoding="utf-8") == STATIC["greeting"]
    assert (tmp_path / "greeting.wav").stat().st_ino != inodes["greeting"]
    assert (tmp_path / "enter-account.wav").stat().st_ino == inodes["enter-account"]
    assert generate_static(tmp_path) == []


@needs_tools
def test_incident_prompt(tmp_path: Path) -> None:
    directory = tmp_path / "ivr"
    path = incident_prompt(directory, "inc-0a1b2c3d", "There is a power cut in the north district.")
    assert path == directory / "incident-inc-0a1b2c3d.wav"
    assert_asterisk_wav(path)
    remove_incident_prompt(directory, "inc-0a1b2c3d")
    assert not path.exists()
    remove_incident_prompt(directory, "inc-0a1b2c3d")     # already gone is fine


@needs_tools
def test_unknown_voice(tmp_path: Path) -> None:
    with pytest.raises(PromptError, match="^espeak-ng failed with exit code 1: .*voice") as info:
        synthesize("hello", tmp_path / "x.wav", voice="nosuchvoice")
    assert "\n" not in str(info.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("incident_id", ["../etc/passwd", "a/b", "", "inc 1", ".hidden"])
def test_incident_id_cannot_escape_the_directory(tmp_path: Path, incident_id: str) -> None:
    with pytest.raises(PromptError, match="^incident id .* must be letters, digits and '-'$"):
        incident_prompt_path(tmp_path, incident_id)


def test_missing_espeak(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(PromptError, match=r"^espeak-ng is not installed \(make setup\)$"):
        synthesize("hello", tmp_path / "x.wav")


def test_missing_sox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "espeak-ng"
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    with pytest.raises(PromptError, match=r"^sox is not installed \(make setup\)$"):
        synthesize("hello", tmp_path / "x.wav")


def test_missing_tools_in_generate_static(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    with pytest.raises(PromptError, match="is not installed"):
        generate_static(tmp_path / "ivr")


def test_output_must_be_wav(tmp_path: Path) -> None:
    with pytest.raises(PromptError, match=r"^prompt file .*x\.gsm must end in \.wav$"):
        synthesize("hello", tmp_path / "x.gsm")


def test_empty_text(tmp_path: Path) -> None:
    with pytest.raises(PromptError, match="^prompt text for x.wav is empty$"):
        synthesize("  ", tmp_path / "x.wav")
