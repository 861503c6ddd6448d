"""The signed note and checkpoint format (C2SP signed-note, tlog-checkpoint):
a note signed elsewhere opens here, ours round-trip, and what is not exactly
a checkpoint signed by the expected key is refused with one line."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ivr.desk import merkle
from ivr.desk.checkpoint import (Checkpoint, NoteError, Signer, Verifier, open_checkpoint,
                                 open_note)

# The example of the C2SP signed-note spec (and of Go's and Elixir's implementations):
# a key and a note signed with it somewhere else, so our key IDs and lines interoperate.
VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
NOTE = ("This is an example message.\n\n\u2014 example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6"
        "TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n")


def test_a_note_signed_by_another_implementation_opens() -> None:
    verifier = Verifier.parse(VKEY)
    assert verifier.vkey() == VKEY
    assert open_note(NOTE.encode(), verifier) == "This is an example message.\n"
    with pytest.raises(NoteError, match="altered or forged"):
        open_note(NOTE.replace("example message", "example massage").encode(), verifier)


def signer(name: str = "ivr.test/registry") -> Signer:
    return Signer(name, Ed25519PrivateKey.generate())


def test_a_checkpoint_round_trips_and_names_its_log() -> None:
    s = signer()
    cp = Checkpoint(s.name, 7, merkle.root([merkle.leaf_hash(b"x")]))
    note = s.sign(cp.text())
    lines = note.split("\n")
    assert lines[:4] == [s.name, "7", lines[2], ""] and lines[4].startswith("\u2014 " + s.name + " ")
    assert open_checkpoint(note.encode(), s.verifier) == cp
    other = signer("another.log")
    with pytest.raises(NoteError, match="not signed by this log's key"):
        open_checkpoint(note.encode(), other.verifier)
    # another signer's line beside ours (a cosigning witness) is ignored
    cosigned = note + other.sign(cp.text()).split("\n\n")[1]
    assert open_checkpoint(cosigned.encode(), s.verifier) == cp
    # a checkpoint of another origin, signed by our key, is not our log's
    with pytest.raises(NoteError, match="of log elsewhere"):
        open_checkpoint(s.sign(Checkpoint("elsewhere", 1, merkle.EMPTY_ROOT).text()).encode(),
                        s.verifier)


@pytest.mark.parametrize("text, message", [
    ("a\n1\n", "3 lines"),
    ("a\n1\nAAAA\next\n", "no extension lines"),
    ("a\n01\n" + "A" * 43 + "=\n", "not a number"),
    ("a\n-1\n" + "A" * 43 + "=\n", "not a number"),
    ("a\n1\nAAAA\n", "3 bytes, not 32"),
    ("a\n1\n!!!!\n", "not base64"),
    ("a b\n1\n" + "A" * 43 + "=\n", "key name"),
])
def test_checkpoint_bodies_that_are_not_one(text: str, message: str) -> None:
    with pytest.raises(NoteError, match=message):
        Checkpoint.parse(text)


@pytest.mark.parametrize("vkey, message", [
    ("", "NAME\\+KEYID\\+BASE64"),
    ("a+b", "NAME\\+KEYID\\+BASE64"),
    ("example.com/foo+00000000+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k", "is not the one"),
    ("example.com/foo+530d903a+AgkyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k", "not an Ed25519"),
    ("example.com/foo+530d903a+%%%", "not base64"),
    (VKEY + "\n" + VKEY, "one line"),
])
def test_public_keys_that_are_not_one(vkey: str, message: str) -> None:
    with pytest.raises(NoteError, match=message):
        Verifier.parse(vkey)


def test_a_signature_line_with_our_name_but_a_wrong_key_id_is_not_ours() -> None:
    s = signer()
    forger = Signer(s.name, Ed25519PrivateKey.generate())
    note = forger.sign(Checkpoint(s.name, 1, merkle.EMPTY_ROOT).text())
    with pytest.raises(NoteError, match="not signed by this log's key"):
        open_checkpoint(note.encode(), s.verifier)


def test_too_many_signature_lines() -> None:
    s = signer()
    note = s.sign(Checkpoint(s.name, 0, merkle.EMPTY_ROOT).text())
    line = note.split("\n\n")[1]
    with pytest.raises(NoteError, match="more than 100"):
        open_note((note + line * 100).encode(), s.verifier)


def test_the_vkey_of_a_key_file(tmp_path: Path) -> None:
    from ivr.desk import keys
    made = keys.create(tmp_path / "k", "ivr.test/registry")
    assert keys.load(tmp_path / "k").verifier == made.verifier
    assert Verifier.parse(made.verifier.vkey()) == made.verifier
    with pytest.raises(FileExistsError):
        keys.create(tmp_path / "k")                  # never over an existing key
