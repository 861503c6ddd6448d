"""Who may call the control API: tokens that carry a role and name their holder.

The tokens file (api.tokens_file or IVR_API_TOKENS_FILE) has one token a
line, `ROLE NAME TOKEN`, and `#` comments.  It must be ivr's user's own and
readable by its owner only (mode 0600 or stricter): a file others can read, or
another user's, is refused, as ssh refuses a private key.  A systemd credential
(under $CREDENTIALS_DIRECTORY, which systemd makes readable to the service
alone; the credential `tokens` is api.tokens_file, config/credentials.py) is
taken as it is.  A token has at least 128 bits: 22 characters or
more (token_urlsafe(16)), 32 if it is hex only.  A file without a token turns
the API off, which is said at start.  The single api.token of earlier configs
keeps working as the token of `admin`, under the same rule of length.

Roles: `operator` and `supervisor` work for the contractor; `office`,
`engineer` and `admin` for the provider.  `wall` is a screen, not a person: it
opens the console's wallboard and nothing else (no route of the API).  The contractor's roles create and
comment; nothing in the API lets anybody delete or alter what the service
desk keeps (ivr/desk).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from ivr.config import credentials

log = logging.getLogger(__name__)

OPERATOR, SUPERVISOR, OFFICE, ENGINEER, ADMIN = "operator", "supervisor", "office", "engineer", "admin"
WALL = "wall"           # a wallboard's screen: /console/wall only, never the API
ROLES = (OPERATOR, SUPERVISOR, OFFICE, ENGINEER, ADMIN, WALL)
CONTRACTOR = frozenset({OPERATOR, SUPERVISOR})
EVERYONE = frozenset(ROLES) - {WALL}    # every role of the API: the people
MIN_TOKEN = 22          # 128 bits of base64; of hex, MIN_HEX_TOKEN
MIN_HEX_TOKEN = 32

_NAME = re.compile(r"[A-Za-z0-9_.@-]{1,64}")
_TOKEN = re.compile(r"[!\"$-~]+")   # printable ASCII but "#", which begins a comment
_HEX = re.compile(r"[0-9a-fA-F]+")


class TokensError(ValueError):
    """A tokens file ivr will not use; the message is one line naming the file and line."""


@dataclass(frozen=True, slots=True)
class Actor:
    role: str
    name: str

    def to_json(self) -> dict[str, str]:
        return {"role": self.role, "name": self.name}


class Tokens:
    """Token -> Actor, compared in constant time."""

    def __init__(self, entries: dict[str, Actor] | None = None) -> None:
        self._entries = [(t.encode(), a) for t, a in (entries or {}).items()]

    def __len__(self) -> int:
        return len(self._entries)

    def replace_with(self, other: Tokens) -> str:
        """Take `other`'s tokens in place of these (SIGHUP): sessions of a token kept go
        on, those of a token gone are refused at their next request.  What changed, in
        holders (never a token)."""
        before = {a for _t, a in self._entries}
        after = {a for _t, a in other._entries}
        kept_tokens = {t for t, _a in self._entries} & {t for t, _a in other._entries}
        self._entries = list(other._entries)
        added = sorted(after - before, key=lambda a: (a.role, a.name))
        removed = sorted(before - after, key=lambda a: (a.role, a.name))
        rotated = len(after & before) - len(kept_tokens)
        return (f"{len(self._entries)} token(s); added {_names(added)}, removed "
                f"{_names(removed)}, {max(rotated, 0)} rotated")

    def holder_of(self, fingerprint: str) -> Actor | None:
        """Whose token has that fingerprint (what a console session keeps), or None."""
        found = None
        for token, actor in self._entries:
            if hmac.compare_digest(_bytes(fingerprint), _fingerprint(token).encode()):
                found = actor
        return found

    def who(self, authorization: str) -> Actor | None:
        """The holder of `Authorization: Bearer TOKEN`, or None."""
        scheme, _, given = authorization.partition(" ")
        if scheme != "Bearer" or not given:
            return None
        found = None
        sent = _bytes(given)
        for token, actor in self._entries:     # every one compared: no timing tells which
            if hmac.compare_digest(sent, token):
                found = actor
        return found


def _names(actors: list[Actor]) -> str:
    return ", ".join(f"{a.role} {a.name}" for a in actors) or "none"


def fingerprint(authorization: str) -> str:
    """The SHA-256 of the token of `Authorization: Bearer TOKEN`: kept in place of it."""
    return _fingerprint(_bytes(authorization.partition(" ")[2]))


def _bytes(header: str) -> bytes:
    """A header's text as bytes, whatever it holds: aiohttp hands bytes that are not UTF-8
    over as lone surrogates, which a plain encode() refuses (a 500).  Such a header matches
    no token (tokens are printable ASCII), so how the surrogates are written is moot."""
    return header.encode("utf-8", "surrogatepass")


def _fingerprint(token: bytes) -> str:
    return hashlib.sha256(token).hexdigest()


def weak(token: str) -> str | None:
    """Why `token` is refused (under 128 bits, or not printable ASCII but "#"), or None."""
    if not _TOKEN.fullmatch(token):
        return "not printable ASCII (or holds '#')"
    if len(token) < MIN_TOKEN:
        return f"shorter than {MIN_TOKEN} characters (128 bits): `ivr tokens new` makes one"
    if _HEX.fullmatch(token) and len(token) < MIN_HEX_TOKEN:
        return f"hex digits only and shorter than {MIN_HEX_TOKEN} (128 bits)"
    return None


def load(path: str | os.PathLike[str] | None, admin_token: str = "",
         env: Mapping[str, str] = os.environ) -> Tokens:
    """The tokens of the file (if any) and of api.token (as admin).  Raises TokensError."""
    entries: dict[str, Actor] = {}
    if admin_token:
        if (problem := weak(admin_token)) is not None:
            raise TokensError(f"api.token (or IVR_API_TOKEN): {problem}")
        entries[admin_token] = Actor(ADMIN, "api.token")
    if path:
        found = _read(Path(path), env)
        if not found:
            log.warning("api.tokens_file %s holds no token%s", path,
                        "" if entries else ": the control API is off")
        for token, actor in found.items():
            if token in entries:
                raise TokensError(f"{path}: the token of {actor.name} is also api.token")
            entries[token] = actor
    return Tokens(entries)


def read(path: Path, env: Mapping[str, str] = os.environ) -> dict[str, Actor]:
    """The tokens file's token -> holder, after every check.  Raises TokensError."""
    return _read(path, env)


def valid_name(name: str) -> bool:
    return _NAME.fullmatch(name) is not None


def _read(path: Path, env: Mapping[str, str]) -> dict[str, Actor]:
    try:
        info = path.stat()
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TokensError(f"api.tokens_file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise TokensError(f"api.tokens_file {path}: not UTF-8 text") from None
    if not credentials.inside(path, env):
        if info.st_uid != os.geteuid():
            raise TokensError(f"api.tokens_file {path}: owned by uid {info.st_uid}, not by "
                              f"ivr's user (uid {os.geteuid()}); chown it")
        if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise TokensError(f"api.tokens_file {path}: others can read it (mode "
                              f"{stat.S_IMODE(info.st_mode):04o}); chmod 600 it")
    entries: dict[str, Actor] = {}
    names: set[tuple[str, str]] = set()
    for number, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        where = f"{path} line {number}"
        parts = line.split()
        if len(parts) != 3:
            raise TokensError(f"{where}: expected ROLE NAME TOKEN, got {len(parts)} field(s)")
        role, name, token = parts
        if role not in ROLES:
            raise TokensError(f"{where}: unknown role {role!r} (known: {', '.join(ROLES)})")
        if not _NAME.fullmatch(name):
            raise TokensError(f"{where}: name {name!r}: letters, digits and _.@- only")
        if (problem := weak(token)) is not None:
            raise TokensError(f"{where}: the token of {name} is {problem}")
        if token in entries:
            raise TokensError(f"{where}: the token of {name} is {entries[token].name}'s too")
        if (role, name) in names:
            raise TokensError(f"{where}: {role} {name} has a token already")
        names.add((role, name))
        entries[token] = Actor(role, name)
    return entries
