"""`ivr registry verify --checkpoint` and `prove`/`verify --proof` against a real
ledger, SQLite and PostgreSQL: each tampering the chain alone does not catch
(the finding of issue 18) fails against a checkpoint saved before it."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from sqlalchemy import text

from ivr.cli import main as cli
from ivr.desk import keys, merkle, numbers, registry
from ivr.ledger.store import Store

T0 = 1_796_000_000_000_000


def fill(url: str, n: int) -> None:
    """n entries after those there: tickets filed by operator op1, and a
    complaint naming operator op2 every third entry."""
    async def go() -> None:
        store = Store(url)
        try:
            await store.migrate()
            rows, head = await store.registry()
            last = head or (0, registry.GENESIS)
            for i in range(last[0] + 1, last[0] + n + 1):
                kind = "complaint" if i % 3 == 0 else "ticket"
                e = registry.make(last, T0 + i, kind, numbers.issue(kind, i), "filed",
                                  "operator" if kind == "ticket" else "supervisor",
                                  "op1" if kind == "ticket" else "sup1",
                                  {"problem": f"fault {i}", "operator": "op2"})
                await store.registry_append(e.row())
                last = (e.seq, e.hash)
        finally:
            await store.close()
    asyncio.run(go())


async def asql(url: str, *statements: str) -> None:
    store = Store(url)
    try:
        async with store.engine.begin() as conn:
            for s in statements:
                await conn.execute(text(s))
    finally:
        await store.close()


def sql(url: str, *statements: str) -> None:
    asyncio.run(asql(url, *statements))


def rename_and_rehash(url: str, old: str, new: str) -> None:
    asyncio.run(arename_and_rehash(url, old, new))


async def arename_and_rehash(url: str, old: str, new: str) -> None:
    """What a careful forger does: the name changed everywhere, every hash
    recomputed in order, the head moved to the new last hash."""
    store = Store(url)
    try:
        rows, _ = await store.registry()
        head = (0, registry.GENESIS)
        async with store.engine.begin() as conn:
            for r in rows:
                e = registry.of_row(r)
                body = json.loads(e.body)
                body = {k: (new if v == old else v) for k, v in body.items()}
                f = registry.make(head, e.at_us, e.kind, e.number, e.event, e.actor_role,
                                  new if e.actor == old else e.actor, body)
                await conn.execute(text("UPDATE registry SET actor = :a, body = :b, prev = :p, "
                                        "hash = :h WHERE seq = :s"),
                                   {"a": f.actor, "b": f.body, "p": f.prev, "h": f.hash,
                                    "s": f.seq})
                head = (f.seq, f.hash)
            await conn.execute(text("UPDATE registry_head SET seq = :s, hash = :h"),
                               {"s": head[0], "h": head[1]})
    finally:
        await store.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    found = (f"sqlite:///{tmp_path / 'ledger.db'}" if request.param == "sqlite"
             else request.getfixturevalue("pg_url"))
    monkeypatch.setenv("IVR_LEDGER_URL", found)
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path / "state"))
    monkeypatch.delenv("IVR_CONFIG", raising=False)
    yield found


def ivr(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(["registry", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def saved_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    code, out, err = ivr(capsys, "checkpoint")
    assert code == 0, err
    path = tmp_path / "kept.checkpoint"
    path.write_text(out)
    return path


TAMPERING = {
    "the newest deleted, the head moved back": [
        "DELETE FROM registry WHERE seq > 5",
        "UPDATE registry_head SET seq = 5, hash = (SELECT hash FROM registry WHERE seq = 5)"],
    "everything deleted": ["DELETE FROM registry", "DELETE FROM registry_head"],
}


@pytest.mark.parametrize("how", sorted(TAMPERING) + ["a name rewritten, every hash recomputed"])
def test_tampering_the_chain_hides_fails_against_an_earlier_checkpoint(
        url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], how: str) -> None:
    fill(url, 7)
    kept = saved_checkpoint(tmp_path, capsys)
    fill(url, 2)                                   # the log goes on: still consistent
    code, out, err = ivr(capsys, "verify", "--checkpoint", str(kept))
    assert code == 0 and "extends the checkpoint of 7" in out, err
    if how in TAMPERING:
        sql(url, *TAMPERING[how])
    else:
        rename_and_rehash(url, "op1", "op7")
    code, out, err = ivr(capsys, "verify")
    assert code == 0, err                          # the chain alone sees nothing wrong
    code, out, err = ivr(capsys, "verify", "--checkpoint", str(kept))
    assert code == 1 and "NOT consistent" in err and len(err.strip().splitlines()) == 1, err


def test_an_altered_entry_fails_with_the_public_key_given(
        url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fill(url, 4)
    kept = saved_checkpoint(tmp_path, capsys)
    code, vkey, _ = ivr(capsys, "key")
    (tmp_path / "log.vkey").write_text(vkey)
    sql(url, "UPDATE registry SET actor = 'nobody' WHERE seq = 2")
    code, _, err = ivr(capsys, "verify", "--checkpoint", str(kept), "--key", str(tmp_path / "log.vkey"))
    assert code == 1 and "not the ones the checkpoint signed" in err


def test_a_checkpoint_of_another_key_exits_2(url: str, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    fill(url, 3)
    kept = saved_checkpoint(tmp_path, capsys)
    mine = keys.load(tmp_path / "state" / "registry.key")
    forger = keys.create(tmp_path / "forger.key", mine.name)     # same name, another key
    forged = tmp_path / "forged.checkpoint"
    forged.write_text(forger.sign(f"{mine.name}\n3\n{base64.b64encode(merkle.EMPTY_ROOT).decode()}\n"))
    code, _, err = ivr(capsys, "verify", "--checkpoint", str(forged))
    assert code == 2 and "not signed by this log's key" in err, err
    (tmp_path / "forger.vkey").write_text(forger.verifier.vkey())
    code, _, err = ivr(capsys, "verify", "--checkpoint", str(kept), "--key", str(tmp_path / "forger.vkey"))
    assert code == 2 and "not signed by this log's key" in err, err
    altered = kept.read_text().replace("\n3\n", "\n2\n")
    (tmp_path / "altered.checkpoint").write_text(altered)
    code, _, err = ivr(capsys, "verify", "--checkpoint", str(tmp_path / "altered.checkpoint"))
    assert code == 2 and "altered or forged" in err, err


def test_every_entry_proves_included_and_one_byte_changed_does_not(
        url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fill(url, 5)
    kept = saved_checkpoint(tmp_path, capsys)
    fill(url, 1)
    for i in range(1, 6):
        kind = "complaint" if i % 3 == 0 else "ticket"
        code, out, err = ivr(capsys, "prove", numbers.issue(kind, i), "--checkpoint", str(kept))
        assert code == 0, err
        proof = tmp_path / f"{i}.json"
        proof.write_text(out)
        code, out, err = ivr(capsys, "verify", "--proof", str(proof), "--checkpoint", str(kept))
        assert code == 0 and f"is entry {i} of the 5" in out, err
        good: dict[str, Any] = json.loads(proof.read_text())
        changes: list[tuple[str, Callable[[Any], Any]]] = [
            ("at_us", lambda v: v + 1), ("hash", lambda v: ("e" if v[0] == "f" else "f") + v[1:]),
            ("actor", lambda v: v + "x"), ("index", lambda v: v ^ 1)]
        for field, change in changes:
            doc = json.loads(json.dumps(good))
            where = doc if field == "index" else doc["entry"]
            where[field] = change(where[field])
            if field == "index" and where[field] >= doc["tree_size"]:
                continue
            proof.write_text(json.dumps(doc))
            code, _, err = ivr(capsys, "verify", "--proof", str(proof), "--checkpoint", str(kept))
            assert code == 1 and "NOT included" in err, (field, err)
        doc = json.loads(json.dumps(good))
        doc["hashes"][0] = base64.b64encode(bytes([base64.b64decode(doc["hashes"][0])[0] ^ 1])
                                            + base64.b64decode(doc["hashes"][0])[1:]).decode()
        proof.write_text(json.dumps(doc))
        code, _, err = ivr(capsys, "verify", "--proof", str(proof), "--checkpoint", str(kept))
        assert code == 1 and "NOT included" in err, err
    # against the latest: a checkpoint of 6 is needed, the kept one of 5 is refused
    code, out, _ = ivr(capsys, "prove", numbers.issue("ticket", 1))
    (tmp_path / "latest.json").write_text(out)
    code, _, err = ivr(capsys, "verify", "--proof", str(tmp_path / "latest.json"), "--checkpoint", str(kept))
    assert code == 2 and "tree of 6 entries, the checkpoint has 5" in err


def test_the_office_checks_a_proof_with_no_ledger_at_all(
        url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    fill(url, 3)
    kept = saved_checkpoint(tmp_path, capsys)
    code, vkey, _ = ivr(capsys, "key")
    (tmp_path / "log.vkey").write_text(vkey)
    code, out, err = ivr(capsys, "prove", numbers.issue("ticket", 1), "--checkpoint", str(kept))
    assert code == 0, err
    (tmp_path / "p.json").write_text(out)
    nowhere = tmp_path / "office" / "ledger.db"                 # the office has no ledger
    monkeypatch.setenv("IVR_LEDGER_URL", f"sqlite:///{nowhere}")
    code, out, err = ivr(capsys, "verify", "--proof", str(tmp_path / "p.json"),
                         "--checkpoint", str(kept), "--key", str(tmp_path / "log.vkey"))
    assert code == 0 and "is entry 1 of the 3" in out, err
    assert not nowhere.parent.exists()
    code, _, err = ivr(capsys, "verify", "--checkpoint", str(kept), "--key",
                       str(tmp_path / "log.vkey"))               # this one needs the ledger
    assert code == 2 and "does not exist: run `ivr ledger migrate`" in err
    assert not nowhere.parent.exists()


# -- hostile input: one clear line each, exit 2, nothing changed ---------------

def _lines(kept: Path) -> dict[str, bytes]:
    good = kept.read_bytes()
    return {
        "binary": bytes(range(256)) * 4,
        "garbage": b"hello\nworld\n",
        "huge": good + b"\xe2\x80\x94 x " + b"A" * 20_000 + b"\n",
        "an extra line after the signature": good + b"extra\n",
        "an extension line": good.replace(b"\n\n", b"\nextension\n\n", 1),
        "CRLF": good.replace(b"\n", b"\r\n"),
        "empty": b"",
        "no signature": good.split(b"\n\n")[0] + b"\n",
        "a signature that is not base64": good.rsplit(b" ", 1)[0] + b" !!!\n",
    }


def test_hostile_checkpoint_files(url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fill(url, 3)
    kept = saved_checkpoint(tmp_path, capsys)
    for name, data in _lines(kept).items():
        bad = tmp_path / "bad.checkpoint"
        bad.write_bytes(data)
        code, _, err = ivr(capsys, "verify", "--checkpoint", str(bad))
        assert code == 2 and len(err.strip().splitlines()) == 1, (name, err)
        assert err.startswith("ivr registry: checkpoint"), (name, err)
    code, _, err = ivr(capsys, "verify", "--checkpoint", str(tmp_path / "missing"))
    assert code == 2 and "No such file" in err
    code, _, err = ivr(capsys, "verify", "--checkpoint", str(kept))
    assert code == 0, err                        # and nothing was changed by the refusals


def test_hostile_proof_files_and_numbers(url: str, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    fill(url, 3)
    kept = saved_checkpoint(tmp_path, capsys)
    code, out, _ = ivr(capsys, "prove", numbers.issue("ticket", 2))
    good: dict[str, Any] = json.loads(out)
    broken: dict[str, Any] = {
        "bad base64": {**good, "hashes": ["not base64!"] + good["hashes"][1:]},
        "a short hash": {**good, "hashes": [base64.b64encode(b"short").decode()]},
        "not a list": {**good, "hashes": "AAAA"},
        "index past the tree": {**good, "index": 9},
        "a boolean index": {**good, "index": True},
        "an entry missing a field": {**good, "entry": {k: v for k, v in good["entry"].items()
                                                       if k != "actor"}},
        "another format": {**good, "format": "x"},
    }
    for name, doc in broken.items():
        (tmp_path / "bad.json").write_text(json.dumps(doc))
        code, _, err = ivr(capsys, "verify", "--proof", str(tmp_path / "bad.json"),
                           "--checkpoint", str(kept))
        assert code == 2 and err.startswith("ivr registry: proof") and \
            len(err.strip().splitlines()) == 1, (name, err)
    (tmp_path / "bad.json").write_bytes(b"\x00\xff" * 10)
    code, _, err = ivr(capsys, "verify", "--proof", str(tmp_path / "bad.json"), "--checkpoint", str(kept))
    assert code == 2 and "not JSON" in err
    code, _, err = ivr(capsys, "verify", "--proof", str(tmp_path / "bad.json"))
    assert code == 2 and "--proof needs --checkpoint" in err
    for number, message in [(numbers.issue("ticket", 99), "no ticket, complaint or claim"),
                            ("12345", "too short"), ("abc", "digits only")]:
        code, out, err = ivr(capsys, "prove", number)
        assert code == 2 and message in err and not out, (number, err)


def test_the_key_file_is_made_0600_and_refused_when_others_may_read_it(
        url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = tmp_path / "state" / "registry.key"
    assert not key.exists()
    code, vkey, _ = ivr(capsys, "key")
    assert code == 0 and key.stat().st_mode & 0o777 == 0o600
    assert ivr(capsys, "key")[1] == vkey                     # made once, then read
    assert vkey.startswith(keys.default_name() + "+")
    key.chmod(0o640)
    for argv in (["key"], ["checkpoint"]):
        code, out, err = ivr(capsys, *argv)
        assert code == 2 and not out and "lets others read" in err and \
            len(err.strip().splitlines()) == 1, err
    key.chmod(0o600)
    key.write_text("PRIVATE+KEY+x+00000000+AAAA\n")
    code, _, err = ivr(capsys, "checkpoint")
    assert code == 2 and "not a registry key" in err
