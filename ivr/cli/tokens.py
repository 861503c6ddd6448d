"""`ivr tokens new ROLE NAME [--file F]`: a fresh token appended to the tokens file.

The token is secrets.token_urlsafe(32) (256 bits) and is printed once, on stdout:
ivr keeps no other copy than the file.  The file is created mode 0600 if it is
missing; an existing one must pass ivr's own checks first (its owner, its mode,
every line), so a file ivr would refuse is not made bigger.  A ROLE NAME that
has a token already is refused: one holder, one token.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from pathlib import Path

from ivr import config as cfg
from ivr.config import tokens as roles

EPILOG = """\
The file is --file, else api.tokens_file of --config, else $IVR_API_TOKENS_FILE.
ivr reads it at start: restart ivr to use the new token.
exit status: 0 added, 2 refused (bad role or name, a holder with a token already,
a tokens file ivr would refuse, or no file named).
"""


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    tokens = sub.add_parser("tokens", help="the control API's tokens: new")
    tsub = tokens.add_subparsers(dest="tokens_command", required=True, metavar="ACTION")
    new = tsub.add_parser("new", help="append a fresh token for ROLE NAME to the tokens file",
                          epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    new.add_argument("role", metavar="ROLE", help=", ".join(roles.ROLES))
    new.add_argument("name", metavar="NAME", help="its holder: letters, digits and _.@- only")
    new.add_argument("--file", type=Path, help="the tokens file (default: api.tokens_file)")
    new.add_argument("--config", type=Path, help="TOML config file (default: $IVR_CONFIG)")
    new.set_defaults(func=_new)


def _new(args: argparse.Namespace) -> int:
    if args.role not in roles.ROLES:
        return _refuse(f"unknown role {args.role!r} (known: {', '.join(roles.ROLES)})")
    if not roles.valid_name(args.name):
        return _refuse(f"name {args.name!r}: letters, digits and _.@- only, at most 64")
    path = args.file or _configured(args)
    if path is None:
        return _refuse("no tokens file: give --file, or api.tokens_file in the config")
    if path.exists():
        held = roles.read(path)           # TokensError: exit 2 with its line (cli.main)
        if any(a.role == args.role and a.name == args.name for a in held.values()):
            return _refuse(f"{args.role} {args.name} has a token in {path} already")
    token = secrets.token_urlsafe(32)
    _append(path, f"{args.role} {args.name} {token}\n")
    print(token)
    print(f"ivr: {args.role} {args.name} added to {path}; restart ivr to use it",
          file=sys.stderr)
    return 0


def _configured(args: argparse.Namespace) -> Path | None:
    config = cfg.load(args.config, os.environ)
    return Path(config.api.tokens_file) if config.api.tokens_file else None


def _append(path: Path, line: str) -> None:
    """`line` at the end of `path`, created 0600 if missing, after a newline if it lacks one."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        if os.fstat(fd).st_size and not path.read_bytes().endswith(b"\n"):
            line = "\n" + line
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def _refuse(message: str) -> int:
    print(f"ivr tokens: {message}", file=sys.stderr)
    return 2
