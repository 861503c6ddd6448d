"""The registry's signing key: one Ed25519 key in a file only its owner reads.

The file (desk.registry_key; by default `registry.key` in ivr's state
directory, beside a SQLite ledger) is made by ivr at its first start, and by
the first `ivr registry` command that signs, with mode 0600 in a directory
made 0700.  It holds one line, as Go's note package writes a signer key:

    PRIVATE+KEY+NAME+KEYID+BASE64(0x01 || 32-byte seed)

NAME is the log's origin, by default `HOSTNAME/ivr-registry`.  A file that
the group or others may read is refused, as ssh refuses such a private key:
a key others could have copied signs nothing worth trusting.  A systemd
credential (`registry.key`, config/credentials.py) is taken as systemd set it up
(readable by the service alone, its mode bits those of an ACL), and never made
there.  The public half (`ivr registry key`) is what the provider keeps, away
from this host.
"""

from __future__ import annotations

import os
import re
import socket
import stat
from pathlib import Path
from typing import Mapping

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from ivr.config import DeskConfig, credentials, state_dir
from ivr.desk.checkpoint import ED25519, NoteError, Signer, b64, check_name, unb64

PREFIX = "PRIVATE+KEY+"
MAX_FILE = 4096


class KeyFileError(ValueError):
    """A key file ivr will not use; one line naming the file."""


def path(desk: DeskConfig, env: Mapping[str, str] = os.environ) -> Path:
    return Path(desk.registry_key) if desk.registry_key else state_dir(env) / "registry.key"


def default_name() -> str:
    host = re.sub(r"[^A-Za-z0-9.-]", "", socket.gethostname())[:100]
    return f"{host}/ivr-registry" if host else "ivr-registry"


def load(where: Path, env: Mapping[str, str] = os.environ) -> Signer:
    try:
        fd = os.open(where, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        raise KeyFileError(f"{where}: no registry key there (ivr makes it at its first start, "
                           f"or `ivr registry key`)") from None
    except OSError as exc:
        raise KeyFileError(f"{where}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise KeyFileError(f"{where}: not a regular file")
        if st.st_mode & 0o077 and not credentials.inside(where, env):
            raise KeyFileError(f"{where}: mode {stat.S_IMODE(st.st_mode):04o} lets others read "
                               f"the registry's private key; chmod 600 it (and make a new key "
                               f"if it may have been copied)")
        data = f.read(MAX_FILE + 1)
    return _parse(data, where)


def _parse(data: bytes, where: Path) -> Signer:
    try:
        line = data.decode("ascii").strip()
        if len(data) > MAX_FILE or not line.startswith(PREFIX) or "\n" in line:
            raise NoteError("not one line PRIVATE+KEY+NAME+KEYID+BASE64")
        # base64 has '+' too: the name and the hex ID have none, so split twice only
        parts = line[len(PREFIX):].split("+", 2)
        name, hexid, encoded = parts if len(parts) == 3 else ("", "", "")
        seed = unb64(encoded, "the key")
        if len(seed) != 33 or seed[:1] != ED25519:
            raise NoteError("not an Ed25519 key")
        signer = Signer(check_name(name), Ed25519PrivateKey.from_private_bytes(seed[1:]))
    except (UnicodeDecodeError, NoteError, ValueError) as exc:
        raise KeyFileError(f"{where}: not a registry key ({exc})") from None
    if signer.verifier.id.hex() != hexid:
        raise KeyFileError(f"{where}: the key ID does not match the key")
    return signer


def create(where: Path, name: str | None = None) -> Signer:
    """A new key in a new file (never over an existing one)."""
    private = Ed25519PrivateKey.generate()
    signer = Signer(check_name(name or default_name()), private)
    seed = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    line = f"{PREFIX}{signer.name}+{signer.verifier.id.hex()}+{b64(ED25519 + seed)}\n"
    where.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(where, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(line)
        f.flush()
        os.fsync(f.fileno())
    return signer


def load_or_create(where: Path, name: str | None = None,
                   env: Mapping[str, str] = os.environ) -> Signer:
    """The key in `where`, made there first if there is none (never among credentials)."""
    if credentials.inside(where, env):
        return load(where, env)
    try:
        return create(where, name)
    except FileExistsError:
        return load(where)
    except (OSError, NoteError) as exc:
        raise KeyFileError(f"{where}: cannot make the registry key: "
                           f"{getattr(exc, 'strerror', None) or exc}") from None
