"""`ivr prompts`: the dialplan's spoken prompts as 8 kHz WAV files (espeak-ng, sox)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ivr import config as cfg


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    prompts = sub.add_parser("prompts", help="generate the spoken prompts (espeak-ng, sox)",
                             description="Write the dialplan's prompts as 8 kHz WAV files into DIR "
                                         "(the dialplan's IVR_PROMPTS, /var/lib/asterisk/sounds/ivr).")
    prompts.add_argument("--out", type=Path, default=Path("/var/lib/asterisk/sounds/ivr"),
                         metavar="DIR", help="where the WAV files go (default "
                                             "/var/lib/asterisk/sounds/ivr)")
    prompts.add_argument("--language", choices=("en", "ru"),
                         help="the prompts' language (default prompts.language of --config, en)")
    prompts.add_argument("--config", type=Path, help="TOML config file (default: $IVR_CONFIG)")
    prompts.set_defaults(func=_prompts)


def _prompts(args: argparse.Namespace) -> int:
    from ivr.routing import prompts
    language = args.language or cfg.load(args.config, os.environ).prompts.language
    try:
        written = prompts.generate_static(args.out, language)
    except prompts.PromptError as exc:
        print(f"ivr prompts: {exc}", file=sys.stderr)
        return 1
    print(f"{len(written)} {language} prompt(s) written, "
          f"{len(prompts.TEXTS[language]) - len(written)} already up to date, in {args.out}")
    return 0
