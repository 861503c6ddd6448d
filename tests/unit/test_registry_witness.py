"""GET /api/v1/registry/checkpoint and /consistency on ivr's real web app, and
the provider's witness against it: consistent while the log grows, exit 1
and the gauge at 1 the moment the log it saw is altered."""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any, AsyncIterator

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from ivr.app import Services, build
from ivr.config import Config
from ivr.desk import keys, merkle, witness
from ivr.desk.checkpoint import Verifier, open_checkpoint, unb64
from ivr.http.app import make_web
from ivr.ledger.store import Store
from tests.unit.test_desk_api import Clock, auth, config_for, post
from tests.unit.test_registry_tlog import arename_and_rehash, asql

IVR = Path(sys.executable).parent / "ivr"


def configured(tmp_path: Path) -> Config:
    config = config_for(tmp_path, f"sqlite:///{tmp_path / 'ledger.db'}")
    return replace(config, desk=replace(config.desk, registry_key=str(tmp_path / "registry.key")))


@pytest.fixture
async def ivr(tmp_path: Path) -> AsyncIterator[tuple[TestClient[Any, Any], Services, Config]]:
    config = configured(tmp_path)
    app = build(config, clock=Clock())
    async with TestClient(TestServer(make_web(app))) as client:
        await app.store.run(Store.migrate)
        await app.desk.load()
        yield client, app, config


async def file(client: TestClient[Any, Any], n: int) -> None:
    for i in range(n):
        status, _ = await post(client, "/api/v1/tickets", "operator",
                               {"account": "100101", "problem": f"fault {i}"})
        assert status == 201


def public(config: Config) -> Verifier:
    return keys.load(Path(config.desk.registry_key)).verifier


async def test_the_checkpoint_is_served_to_the_roles_that_may_hold_ivr_to_it(ivr: Any) -> None:
    client, _, config = ivr
    key = Path(config.desk.registry_key)
    assert key.stat().st_mode & 0o777 == 0o600          # made at the first start
    await file(client, 3)
    for role in ("office", "admin", "supervisor", "engineer"):
        resp = await client.get("/api/v1/registry/checkpoint", headers=auth(role))
        assert resp.status == 200 and resp.content_type == "text/plain"
        cp = open_checkpoint(await resp.read(), public(config))
        assert cp.size == 3
    resp = await client.get("/api/v1/registry/checkpoint", headers=auth("operator"))
    assert resp.status == 403 and "error" in await resp.json()
    resp = await client.get("/api/v1/registry/consistency?from=0&to=0", headers=auth("operator"))
    assert resp.status == 403


async def test_consistency_proofs_verify_and_bad_queries_are_400(ivr: Any) -> None:
    client, _, config = ivr
    await file(client, 2)
    first = open_checkpoint(await (await client.get("/api/v1/registry/checkpoint",
                                                    headers=auth("office"))).read(), public(config))
    await file(client, 3)
    second = open_checkpoint(await (await client.get("/api/v1/registry/checkpoint",
                                                     headers=auth("office"))).read(), public(config))
    resp = await client.get("/api/v1/registry/consistency?from=2&to=5", headers=auth("engineer"))
    body = await resp.json()
    proof = [unb64(h, "h") for h in body["proof"]]
    assert body["from"] == 2 and body["to"] == 5 and body["size"] == 5
    assert merkle.verify_consistency(2, 5, first.root, second.root, proof)
    for query in ("from=3&to=2", "from=0&to=6", "from=-1&to=2", "from=x&to=2", "to=2",
                  "from=1&to=99999999999999999999", "from=%C2%B2&to=2"):
        resp = await client.get(f"/api/v1/registry/consistency?{query}", headers=auth("office"))
        assert resp.status == 400 and "error" in await resp.json(), query


async def test_a_key_file_others_may_read_stops_checkpoints_not_the_desk(tmp_path: Path) -> None:
    config = configured(tmp_path)
    keys.create(Path(config.desk.registry_key)).name
    Path(config.desk.registry_key).chmod(0o644)
    app = build(config, clock=Clock())
    async with TestClient(TestServer(make_web(app))) as client:
        await app.store.run(Store.migrate)
        await app.desk.load()
        await file(client, 1)
        resp = await client.get("/api/v1/registry/checkpoint", headers=auth("office"))
        assert resp.status == 503 and "lets others read" in (await resp.json())["error"]


def a_witness(tmp_path: Path, client: TestClient[Any, Any], config: Config,
              key: Verifier | None = None) -> witness.Witness:
    url = str(client.server.make_url("/"))
    return witness.Witness(url, auth("office")["Authorization"].split()[1], tmp_path / "witness",
                           key or public(config))


async def test_the_witness_follows_the_log_and_alerts_when_it_is_altered(
        ivr: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    client, _, config = ivr
    await file(client, 3)
    w = a_witness(tmp_path, client, config)
    assert w.registry.get_sample_value("ivr_registry_witness_last_consistent_timestamp_seconds") == 0
    assert await w.once() == witness.OK                      # the first one is kept
    assert (w.registry.get_sample_value("ivr_registry_witness_last_consistent_timestamp_seconds")
            or 0) > 0
    assert await w.once() == witness.OK                      # unchanged
    await file(client, 2)
    assert await w.once() == witness.OK                      # grew, consistently
    assert open_checkpoint((tmp_path / "witness/last.checkpoint").read_bytes(), public(config)).size == 5
    await arename_and_rehash(config.ledger.url, "op1", "op9")
    await file(client, 1)
    caplog.clear()
    with caplog.at_level(logging.ERROR):
        assert await w.once() == witness.INCONSISTENT
    assert [r.levelname for r in caplog.records] == ["ERROR"]
    assert "does not extend the last one of 5" in caplog.records[0].getMessage()
    assert w.registry.get_sample_value("ivr_registry_witness_inconsistent") == 1
    # the last good checkpoint stays; every checkpoint seen is kept, the bad one too
    assert open_checkpoint((tmp_path / "witness/last.checkpoint").read_bytes(), public(config)).size == 5
    assert len(list((tmp_path / "witness/checkpoints").iterdir())) == 3
    assert await w.once() == witness.INCONSISTENT            # it does not clear itself


@pytest.mark.parametrize("tamper", [
    ["DELETE FROM registry WHERE seq > 2",
     "UPDATE registry_head SET seq = 2, hash = (SELECT hash FROM registry WHERE seq = 2)"],
    ["DELETE FROM registry", "DELETE FROM registry_head"],
])
async def test_the_witness_sees_a_log_that_shrank(ivr: Any, tmp_path: Path, tamper: list[str]) -> None:
    client, _, config = ivr
    await file(client, 4)
    w = a_witness(tmp_path, client, config)
    assert await w.once() == witness.OK
    await asql(config.ledger.url, *tamper)
    assert await w.once() == witness.INCONSISTENT


async def test_the_witness_refuses_another_key_and_needs_one_pinned(ivr: Any, tmp_path: Path) -> None:
    client, _, config = ivr
    await file(client, 1)
    other = keys.create(tmp_path / "other.key", public(config).name).verifier
    w = a_witness(tmp_path, client, config, other)
    assert await w.once() == witness.INCONSISTENT            # signed, but not by the pinned key
    with pytest.raises(witness.WitnessError, match="pins another key"):
        a_witness(tmp_path, client, config)
    with pytest.raises(witness.WitnessError, match="no key pinned"):
        witness.Witness("http://127.0.0.1:1", "t", tmp_path / "fresh", None)


async def test_the_witness_reports_an_unanswered_check_as_an_error(ivr: Any, tmp_path: Path) -> None:
    client, _, config = ivr
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    w = witness.Witness(f"http://127.0.0.1:{port}", "t", tmp_path / "w", public(config))
    assert await w.once() == witness.ERROR
    bad = witness.Witness(str(client.server.make_url("/")), "wrong-token-0000000000", tmp_path / "w2",
                          public(config))
    assert await bad.once() == witness.ERROR


async def run(*argv: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(str(IVR), "registry", *argv, env=env,
                                                stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, (out + err).decode()


async def test_the_witness_command_exits_1_on_a_tampered_server(ivr: Any, tmp_path: Path) -> None:
    client, _, config = ivr
    await file(client, 3)
    (tmp_path / "log.vkey").write_text(public(config).vkey() + "\n")
    argv = ["witness", "--url", str(client.server.make_url("/")), "--token",
            auth("admin")["Authorization"].split()[1], "--state", str(tmp_path / "w"), "--once"]
    code, out = await run(*argv, "--key", str(tmp_path / "log.vkey"))
    assert code == 0, out
    await asql(config.ledger.url, "UPDATE registry SET actor = 'x' WHERE seq = 1")
    code, out = await run(*argv)                               # the key is pinned now
    assert code == 1 and "ERROR" in out and "INCONSISTENT" in out, out
    code, out = await run("witness", "--url", "http://x", "--token", "t", "--state",
                          str(tmp_path / "w3"), "--interval", "soon", "--once")
    assert code == 2 and "--interval" in out


async def test_the_witness_service_raises_its_gauge(ivr: Any, tmp_path: Path) -> None:
    client, _, config = ivr
    await file(client, 2)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    w = a_witness(tmp_path, client, config)
    task = asyncio.create_task(w.serve(0.05, "127.0.0.1", port))

    async def gauge(name: str, want: float) -> None:
        deadline = asyncio.get_running_loop().time() + 20
        async with aiohttp.ClientSession() as session:
            while True:
                try:
                    async with session.get(f"http://127.0.0.1:{port}/metrics") as resp:
                        lines = (await resp.text()).splitlines()
                    if f"{name} {want}" in lines:
                        return
                except aiohttp.ClientError:
                    pass
                assert asyncio.get_running_loop().time() < deadline, f"{name} never {want}"
                await asyncio.sleep(0.05)
    try:
        await gauge("ivr_registry_witness_tree_size", 2.0)
        await gauge("ivr_registry_witness_inconsistent", 0.0)
        await asql(config.ledger.url, "DELETE FROM registry WHERE seq = 2",
            "UPDATE registry_head SET seq = 1, hash = (SELECT hash FROM registry WHERE seq = 1)")
        await gauge("ivr_registry_witness_inconsistent", 1.0)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
