"""Voice prompts generated from text with espeak-ng, converted by sox.

Asterisk's format_wav plays 8 kHz, mono, 16-bit signed PCM WAV; espeak-ng
writes 22.05 kHz, so sox resamples.  Both run without a shell and the text
goes after "--", so a message starting with "-" is spoken, not parsed.
Every file is written to a temporary name in the target directory and moved
into place, so Asterisk never plays half a prompt.  The dialplan plays
STATIC prompts as ivr/<name>.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

STATIC: dict[str, str] = {
    # Short: a known caller is in first-line within 3 s of answering.
    "greeting": "Welcome to support.",
    "enter-account": "Type your account number and hash, or hold.",
    "known-incident": "We know about a problem in your area and our engineers are already fixing it. "
                      "You may hang up, or stay on the line for an operator.",
    "escalation-refused": "We already know about this problem and our engineers are fixing it. "
                          "Thank you for calling. Goodbye.",
}

TIMEOUT_SECONDS = 60.0
_INCIDENT_ID = re.compile(r"[A-Za-z0-9-]+")   # it becomes part of a file name


class PromptError(Exception):
    """A prompt could not be made; one line a person can act on."""


def synthesize(text: str, out: Path, voice: str = "en") -> Path:
    if out.suffix != ".wav":
        raise PromptError(f"prompt file {out} must end in .wav")
    if not text.strip():
        raise PromptError(f"prompt text for {out.name} is empty")
    espeak, sox = _tool("espeak-ng"), _tool("sox")
    raw, converted = _tmp(out), _tmp(out)
    try:
        _run([espeak, "-v", voice, "-w", str(raw), "--", text])
        _run([sox, "-t", "wav", str(raw), "-t", "wav", "-r", "8000", "-c", "1",
              "-b", "16", "-e", "signed-integer", str(converted)])
        converted.chmod(0o644)    # Asterisk runs as another user
        os.replace(converted, out)
    finally:
        raw.unlink(missing_ok=True)
        converted.unlink(missing_ok=True)
    log.debug("synthesized %s", out)
    return out


def generate_static(directory: Path) -> list[Path]:
    """Write every STATIC prompt whose text changed or whose file is missing; return those written."""
    _make_dir(directory)
    written = []
    for name, text in STATIC.items():
        wav, sidecar = directory / f"{name}.wav", directory / f"{name}.txt"
        if wav.exists() and _read_text(sidecar) == text:
            continue
        written.append(synthesize(text, wav))
        _write_text(sidecar, text)    # after the wav: a crash in between means regenerate
    log.info("generated %d of %d static prompts in %s", len(written), len(STATIC), directory)
    return written


def incident_prompt(directory: Path, incident_id: str, message: str) -> Path:
    _make_dir(directory)
    return synthesize(message, incident_prompt_path(directory, incident_id))


def incident_prompt_path(directory: Path, incident_id: str) -> Path:
    if not _INCIDENT_ID.fullmatch(incident_id):
        raise PromptError(f"incident id {incident_id!r} must be letters, digits and '-'")
    return directory / f"incident-{incident_id}.wav"


def remove_incident_prompt(directory: Path, incident_id: str) -> None:
    incident_prompt_path(directory, incident_id).unlink(missing_ok=True)


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise PromptError(f"{name} is not installed (make setup)")
    return path


def _tmp(out: Path) -> Path:
    """An empty file next to `out`, with the same suffix so the tools know the format."""
    try:
        fd, name = tempfile.mkstemp(prefix=f".{out.stem}.", suffix=out.suffix, dir=out.parent)
    except OSError as exc:
        raise PromptError(f"cannot write prompts in {out.parent}: {exc.strerror}") from None
    os.close(fd)
    return Path(name)


def _run(argv: list[str]) -> None:
    tool = Path(argv[0]).name
    try:
        done = subprocess.run(argv, capture_output=True, timeout=TIMEOUT_SECONDS, check=False)
    except subprocess.TimeoutExpired:
        raise PromptError(f"{tool} took longer than {TIMEOUT_SECONDS:g} s") from None
    except OSError as exc:
        raise PromptError(f"cannot run {tool}: {exc.strerror}") from None
    if done.returncode != 0:
        detail = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise PromptError(f"{tool} failed with exit code {done.returncode}: "
                          f"{detail[-1] if detail else 'no error output'}")


def _make_dir(directory: Path) -> None:
    if directory.is_dir():
        return
    try:
        directory.mkdir(parents=True, exist_ok=True)
        directory.chmod(0o755)
    except OSError as exc:
        raise PromptError(f"cannot create prompt directory {directory}: {exc.strerror}") from None


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def _write_text(path: Path, text: str) -> None:
    tmp = _tmp(path)
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.chmod(0o644)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
