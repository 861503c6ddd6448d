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
import wave
from pathlib import Path

log = logging.getLogger(__name__)

LANGUAGES = ("en", "ru")      # prompts.language; espeak-ng's voice of the same name
_DIGITS = {"en": ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"),
           "ru": ("ноль", "один", "два", "три", "четыре", "пять", "шесть", "семь", "восемь",
                  "девять")}
TEXTS: dict[str, dict[str, str]] = {
    "en": {
        # Short: a known caller is in first-line within 3 s of answering.
        "greeting": "Welcome to support. To check a number, press 2.",
        "enter-account": "Type your account number and hash, or hold.",
        "known-incident": "We know about a problem in your area and our engineers are already "
                          "fixing it. You may hang up, or stay on the line for an operator.",
        "escalation-refused": "We already know about this problem and our engineers are fixing "
                              "it. Thank you for calling. Goodbye.",
        "claim-offer": "To claim a recalculation of your bill for the downtime, press 3.",
        "claim-filed": "Your claim is filed. Its number is",
        "enter-number": "Type the number of your ticket, complaint or claim, then hash.",
        "number-wrong": "This number has a wrong check digit. Please check it.",
        "number-unknown": "There is no such number.",
        "your-numbers": "The numbers filed during your call are",
        "no-numbers": "No number was filed during your call.",
        "goodbye": "Thank you for calling. Goodbye.",
        "try-later": "We cannot answer this now. Please call again later.",
        "state-open": "It is open: our engineers will deal with it.",
        "state-in_progress": "Our engineers are working on it.",
        "state-resolved": "It is resolved.",
        "state-closed": "It is closed.",
        "state-received": "Your complaint is received.",
        "state-forwarded": "Your complaint was forwarded to the provider.",
        "state-answered": "Your complaint has been answered.",
        "state-filed": "Your claim is filed.",
        "abuse-warning": "Please keep the conversation polite. Otherwise the operator will "
                         "end this call.",
        "abuse-ended": "The operator has ended this call. Goodbye.",
        "already-waiting": "You are already waiting for an operator on another line. Goodbye.",
        "callback-offer": "To be called back instead of waiting, press 1. You keep your place "
                          "in the queue.",
        "callback-taken": "We will call you back, in your turn, at the number",
        "callback-unavailable": "We cannot call you back on this number. Please stay on the "
                                "line.",
        "calling-back": "Calling the customer back at",
        "callback-gone": "This callback is no longer needed.",
    },
    "ru": {
        "greeting": "Здравствуйте, это служба поддержки. Чтобы узнать состояние заявки, нажмите 2.",
        "enter-account": "Наберите номер лицевого счёта и решётку, или оставайтесь на линии.",
        "known-incident": "Мы знаем о неполадке в вашем районе, инженеры уже её устраняют. "
                          "Вы можете положить трубку или дождаться оператора.",
        "escalation-refused": "Мы уже знаем об этой неполадке, инженеры её устраняют. "
                              "Спасибо за звонок. До свидания.",
        "claim-offer": "Чтобы заявить перерасчёт оплаты за время простоя, нажмите 3.",
        "claim-filed": "Ваше заявление принято. Его номер",
        "enter-number": "Наберите номер заявки, жалобы или заявления и решётку.",
        "number-wrong": "В этом номере неверная контрольная цифра. Проверьте номер.",
        "number-unknown": "Такого номера нет.",
        "your-numbers": "За время вашего звонка зарегистрированы номера",
        "no-numbers": "За время вашего звонка номеров не зарегистрировано.",
        "goodbye": "Спасибо за звонок. До свидания.",
        "try-later": "Сейчас мы не можем ответить. Позвоните, пожалуйста, позже.",
        "state-open": "Заявка открыта, инженеры ею займутся.",
        "state-in_progress": "Инженеры работают над заявкой.",
        "state-resolved": "Заявка выполнена.",
        "state-closed": "Заявка закрыта.",
        "state-received": "Ваша жалоба получена.",
        "state-forwarded": "Ваша жалоба передана провайдеру.",
        "state-answered": "На вашу жалобу дан ответ.",
        "state-filed": "Ваше заявление принято.",
        "abuse-warning": "Пожалуйста, соблюдайте вежливость. Иначе оператор завершит разговор.",
        "abuse-ended": "Оператор завершил разговор. До свидания.",
        "already-waiting": "Вы уже ожидаете оператора на другой линии. До свидания.",
        "callback-offer": "Чтобы вам перезвонили и не ждать на линии, нажмите 1. Ваша очередь "
                          "сохранится.",
        "callback-taken": "Мы перезвоним вам в порядке очереди по номеру",
        "callback-unavailable": "Перезвонить на этот номер мы не можем. Оставайтесь, "
                                "пожалуйста, на линии.",
        "calling-back": "Перезваниваем клиенту по номеру",
        "callback-gone": "Этот обратный звонок уже не нужен.",
    },
}
for _lang, _words in _DIGITS.items():
    TEXTS[_lang].update({f"digit-{d}": word for d, word in enumerate(_words)})
STATIC = TEXTS["en"]     # the names every language has


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


def generate_static(directory: Path, language: str = "en") -> list[Path]:
    """Write every prompt of `language` whose text changed or whose file is missing; return
    those written.  The files have the same names in every language: the dialplan plays
    ivr/<name> whatever the language."""
    if language not in TEXTS:
        raise PromptError(f"prompts.language {language!r}: one of {', '.join(LANGUAGES)}")
    _make_dir(directory)
    written = []
    for name, text in TEXTS[language].items():
        wav, sidecar = directory / f"{name}.wav", directory / f"{name}.txt"
        if wav.exists() and _read_text(sidecar) == text:
            continue
        written.append(synthesize(text, wav, voice=language))
        _write_text(sidecar, text)    # after the wav: a crash in between means regenerate
    written += _no_offer(directory)
    log.info("generated %d of %d %s prompts in %s", len(written), len(TEXTS[language]), language,
             directory)
    return written


NO_OFFER_LANGUAGE = "nocallback"


def _no_offer(directory: Path) -> list[Path]:
    """Silence as <language nocallback>/callback-offer: app_queue has one periodic
    announcement a queue and picks its file by the channel's language, so a caller who
    cannot be called back (the dialplan sets that language) hears nothing there; every
    other prompt falls back to the file without a language."""
    out = directory / NO_OFFER_LANGUAGE / "callback-offer.wav"
    if out.exists():
        return []
    _make_dir(out.parent)
    tmp = _tmp(out)
    try:
        with wave.open(str(tmp), "wb") as w:       # 0.2 s at 8 kHz, mono, 16-bit: silence
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(8000)
            w.writeframes(bytes(3200))
        tmp.chmod(0o644)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return [out]


def incident_prompt(directory: Path, incident_id: str, message: str, language: str = "en") -> Path:
    _make_dir(directory)
    return synthesize(message, incident_prompt_path(directory, incident_id), voice=language)


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
