"""Signed checkpoints of the registry: C2SP tlog-checkpoint in a C2SP signed note.

A checkpoint is three lines, the log's origin, its tree size and its root
hash in base64, then a blank line and one signature line per signer:

    ivr.example/registry
    1832
    3p7lq9...=

    \u2014 ivr.example/registry Az3grl...==

A signature line is an em dash (U+2014), a space, the key's name, a space
and base64 of the 4-byte key ID then the 64-byte Ed25519 signature of the
text above the blank line (its last newline included).  The key ID is the
first 4 bytes of SHA-256(name || 0x0A || 0x01 || public key), so a verifier
knows at once whether a line is from the key it holds.  The public key is
given as a vkey line, `NAME+KEYID(hex)+BASE64(0x01 || public key)`.

Whoever holds a checkpoint signed by the log's key holds the log's word
for its first `size` entries: a later log that is not a continuation of
them (merkle.verify_consistency) was altered, and the signature shows who
gave that word.  ivr writes no extension lines, and reading refuses them,
with everything else that is not exactly this, as NoteError (one line).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ivr.desk import merkle

ED25519 = b"\x01"
DASH = "\u2014 "
MAX_NOTE = 16 * 1024        # a checkpoint is ~150 bytes; more is not one
MAX_SIGNATURES = 100        # as Go's note package
_NAME = re.compile(r"[^\s+]{1,200}")
_SIZE = re.compile(r"0|[1-9][0-9]{0,18}")


class NoteError(ValueError):
    """Not a checkpoint signed by the expected key; the message is one line."""


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise NoteError(f"{what} is not base64") from None


def key_id(name: str, public: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + ED25519 + public).digest()[:4]


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise NoteError(f"key name {name[:40]!r}: expected 1-200 characters, no spaces or '+'")
    return name


@dataclass(frozen=True)
class Verifier:
    name: str
    public: bytes           # 32 bytes of Ed25519

    @property
    def id(self) -> bytes:
        return key_id(self.name, self.public)

    def vkey(self) -> str:
        return f"{self.name}+{self.id.hex()}+{b64(ED25519 + self.public)}"

    @classmethod
    def parse(cls, text: str) -> Verifier:
        """A vkey line, as `ivr registry key` prints it."""
        if len(text.strip().splitlines()) != 1:
            raise NoteError("a public key is one line NAME+KEYID+BASE64 (as `ivr registry key` "
                            "prints it)")
        parts = text.strip().split("+", 2)    # base64 has '+' too; the name and ID none
        if len(parts) != 3:
            raise NoteError("a public key is NAME+KEYID+BASE64 (as `ivr registry key` prints it)")
        name, hexid, key = check_name(parts[0]), parts[1], unb64(parts[2], "the public key")
        if len(key) != 33 or key[:1] != ED25519:
            raise NoteError("the public key is not an Ed25519 key (0x01 and 32 bytes)")
        verifier = cls(name, key[1:])
        if hexid != verifier.id.hex():
            raise NoteError(f"the public key's ID {hexid[:16]!r} is not the one its name and "
                            f"key give ({verifier.id.hex()})")
        return verifier


@dataclass(frozen=True)
class Signer:
    name: str
    private: Ed25519PrivateKey

    @property
    def verifier(self) -> Verifier:
        return Verifier(self.name, self.private.public_key().public_bytes(Encoding.Raw,
                                                                          PublicFormat.Raw))

    def sign(self, text: str) -> str:
        """The signed note of `text` (which ends in a newline)."""
        signature = self.private.sign(text.encode())
        return f"{text}\n{DASH}{self.name} {b64(self.verifier.id + signature)}\n"


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes

    def text(self) -> str:
        return f"{self.origin}\n{self.size}\n{b64(self.root)}\n"

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        lines = text.split("\n")
        if len(lines) != 4 or lines[3] != "":
            raise NoteError(f"a checkpoint is 3 lines (origin, size, root); this one has "
                            f"{len(lines) - 1}{' (ivr writes no extension lines)' if len(lines) > 4 else ''}")
        origin, size, root = lines[:3]
        check_name(origin)
        if not _SIZE.fullmatch(size):
            raise NoteError(f"the tree size {size[:20]!r} is not a number")
        digest = unb64(root, "the root hash")
        if len(digest) != merkle.HASH_SIZE:
            raise NoteError(f"the root hash has {len(digest)} bytes, not {merkle.HASH_SIZE}")
        return cls(origin, int(size), digest)


def open_note(data: bytes, verifier: Verifier) -> str:
    """The text of a signed note whose signature by `verifier` is good."""
    if len(data) > MAX_NOTE:
        raise NoteError(f"{len(data)} bytes: too big for a checkpoint (at most {MAX_NOTE})")
    try:
        note = data.decode("utf-8")
    except UnicodeDecodeError:
        raise NoteError("not text (not UTF-8): not a checkpoint") from None
    if any(c < " " and c != "\n" for c in note):
        raise NoteError("a control character (CR, tab, NUL...): not a checkpoint")
    text, sep, block = note.rpartition("\n\n")
    if not sep or not text:
        raise NoteError("no blank line before a signature: not a signed checkpoint")
    text += "\n"
    if not block.endswith("\n"):
        raise NoteError("the last signature line does not end in a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError(f"{len(lines)} signature lines: more than {MAX_SIGNATURES}")
    # every line is read before any is believed: a good signature followed by
    # garbage is not a checkpoint either
    signatures = [_signature_line(line, n) for n, line in enumerate(lines, 1)]
    for name, signature in signatures:
        if name == verifier.name and signature[:4] == verifier.id:
            try:
                Ed25519PublicKey.from_public_bytes(verifier.public).verify(signature[4:],
                                                                           text.encode())
            except InvalidSignature:
                raise NoteError(f"the signature by {name} does not match the text: "
                                f"the checkpoint was altered or forged") from None
            return text
    raise NoteError(f"not signed by this log's key {verifier.name}+{verifier.id.hex()} "
                    f"(signed by: {', '.join(sorted({name for name, _ in signatures}))})")


def _signature_line(line: str, n: int) -> tuple[str, bytes]:
    if not line.startswith(DASH):
        raise NoteError(f"signature line {n} does not begin with an em dash: not a signed checkpoint")
    name, _, sig = line[len(DASH):].partition(" ")
    check_name(name)
    signature = unb64(sig, f"signature line {n}")
    if len(signature) != 4 + 64:
        raise NoteError(f"signature line {n}: {len(signature)} bytes, not a key ID and an "
                        f"Ed25519 signature (68)")
    return name, signature


def open_checkpoint(data: bytes, verifier: Verifier) -> Checkpoint:
    """A checkpoint signed by `verifier`, whose origin is that key's name."""
    cp = Checkpoint.parse(open_note(data, verifier))
    if cp.origin != verifier.name:
        raise NoteError(f"the checkpoint is of log {cp.origin}, the key is {verifier.name}'s")
    return cp
