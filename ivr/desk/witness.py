"""The provider's witness: it holds ivr's registry to every checkpoint it has seen.

It runs on the provider's host, where the contractor cannot reach.  Each
check fetches ivr's signed checkpoint (GET /api/v1/registry/checkpoint),
keeps it in the state directory, checks it is signed by the pinned key
(DIR/log.vkey, pinned from --key the first time) and that it extends the
last good one (DIR/last.checkpoint) by a consistency proof ivr computes
(GET /api/v1/registry/consistency?from=&to=) and the witness verifies.
Anything else is an inconsistency: the log shrank, changed, or is signed by
another key.  The last good checkpoint then stays as it was, so every
later check fails too until a person looks: the alert does not clear itself.

A check ivr did not answer (network, HTTP status) is an error, not an
inconsistency: the contractor's host being down is another alert's job.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.aiohttp import make_aiohttp_handler

from ivr.desk import merkle
from ivr.desk.checkpoint import MAX_NOTE, Checkpoint, NoteError, Verifier, open_checkpoint, unb64

log = logging.getLogger(__name__)

OK, INCONSISTENT, ERROR = 0, 1, 2
TIMEOUT = aiohttp.ClientTimeout(total=30)
MAX_PROOF = 256 * 1024


class WitnessError(Exception):
    """The witness cannot start (state directory, pinned key); one line."""


@dataclass(frozen=True)
class Result:
    status: int          # OK, INCONSISTENT or ERROR
    message: str
    size: int | None = None


class Witness:
    def __init__(self, url: str, token: str, state: Path, key: Verifier | None) -> None:
        self.url, self.token, self.state = url.rstrip("/"), token, state
        try:
            (state / "checkpoints").mkdir(parents=True, exist_ok=True)
            self.key = self._pin(key)
        except OSError as exc:
            raise WitnessError(f"state directory {state}: {exc.strerror}") from None
        self.registry = CollectorRegistry()
        self.inconsistent = Gauge("ivr_registry_witness_inconsistent",
                                  "1 from the first checkpoint that does not extend the last "
                                  "good one (or is not signed by the pinned key)",
                                  registry=self.registry)
        self.size = Gauge("ivr_registry_witness_tree_size",
                          "entries in the last good checkpoint", registry=self.registry)
        # an ivr that stops answering raises no inconsistency: this lets an
        # alert see a witness that has not been able to check for too long
        self.checked = Gauge("ivr_registry_witness_last_consistent_timestamp_seconds",
                             "when a checkpoint was last found consistent (Unix time)",
                             registry=self.registry)

    def _pin(self, key: Verifier | None) -> Verifier:
        pinned = self.state / "log.vkey"
        if pinned.exists():
            try:
                kept = Verifier.parse(pinned.read_text("ascii"))
            except (NoteError, UnicodeDecodeError) as exc:
                raise WitnessError(f"{pinned}: {exc}") from None
            if key is not None and key != kept:
                raise WitnessError(f"{pinned} pins another key ({kept.vkey()}); a log whose key "
                                   f"changed is another log: use another --state")
            return kept
        if key is None:
            raise WitnessError(f"no key pinned in {self.state}: give the log's public key with "
                               f"--key VKEYFILE (from `ivr registry key`) the first time")
        _write(pinned, key.vkey() + "\n")
        return key

    def last(self) -> Checkpoint | None:
        try:
            return open_checkpoint((self.state / "last.checkpoint").read_bytes(), self.key)
        except FileNotFoundError:
            return None
        except NoteError as exc:
            raise WitnessError(f"{self.state / 'last.checkpoint'}: {exc}") from None

    async def _get(self, session: aiohttp.ClientSession, path: str, cap: int) -> bytes:
        async with session.get(self.url + path, timeout=TIMEOUT,
                               headers={"Authorization": f"Bearer {self.token}"}) as resp:
            body = await resp.content.read(cap + 1)
            if resp.status != 200:
                raise _Unanswered(f"{path}: HTTP {resp.status} "
                                  f"{body[:200].decode('utf-8', 'replace').strip()}")
            if len(body) > cap:
                raise _Unanswered(f"{path}: more than {cap} bytes")
            return body

    async def check(self, session: aiohttp.ClientSession) -> Result:
        try:
            note = await self._get(session, "/api/v1/registry/checkpoint", MAX_NOTE)
        except (aiohttp.ClientError, asyncio.TimeoutError, _Unanswered) as exc:
            return Result(ERROR, f"ivr at {self.url} did not give its checkpoint: {exc or type(exc).__name__}")
        kept = self._keep(note)
        try:
            cp = open_checkpoint(note, self.key)
        except NoteError as exc:
            return Result(INCONSISTENT, f"the checkpoint ({kept.name}) is not the log's: {exc}")
        last = self.last()
        if last is None:
            return self._advance(note, cp, f"first checkpoint kept: {cp.size} entries")
        if cp.size < last.size:
            return Result(INCONSISTENT, f"the log shrank: {cp.size} entries, the last checkpoint "
                                        f"had {last.size} ({kept.name})")
        if cp.size == last.size:
            if cp.root != last.root:
                return Result(INCONSISTENT, f"the log of {cp.size} entries has another root than "
                                            f"it had ({kept.name}): an entry was altered")
            return self._advance(note, cp, f"unchanged: {cp.size} entries")
        try:
            proof = _proof(await self._get(
                session, f"/api/v1/registry/consistency?from={last.size}&to={cp.size}", MAX_PROOF))
        except (aiohttp.ClientError, asyncio.TimeoutError, _Unanswered) as exc:
            return Result(ERROR, f"ivr did not give its consistency proof: {exc or type(exc).__name__}")
        except NoteError as exc:
            return Result(INCONSISTENT, f"ivr's consistency proof {last.size} -> {cp.size} is "
                                        f"malformed: {exc}")
        if not merkle.verify_consistency(last.size, cp.size, last.root, cp.root, proof):
            return Result(INCONSISTENT, f"the checkpoint of {cp.size} entries ({kept.name}) does "
                                        f"not extend the last one of {last.size}: entries before "
                                        f"{last.size} were altered or removed")
        return self._advance(note, cp, f"consistent: {last.size} -> {cp.size} entries")

    def _keep(self, note: bytes) -> Path:
        """Every checkpoint seen, good or not, by the hash of its bytes: the evidence."""
        where = self.state / "checkpoints" / f"{hashlib.sha256(note).hexdigest()[:24]}.checkpoint"
        if not where.exists():
            _write(where, note)
        return where

    def _advance(self, note: bytes, cp: Checkpoint, message: str) -> Result:
        _write(self.state / "last.checkpoint", note)
        return Result(OK, message, cp.size)

    def _report(self, result: Result) -> None:
        if result.status == INCONSISTENT:
            self.inconsistent.set(1)
            log.error("registry witness: INCONSISTENT: %s", result.message)
        elif result.status == ERROR:
            log.warning("registry witness: %s", result.message)
        else:
            self.size.set(result.size or 0)
            self.checked.set_to_current_time()
            log.info("registry witness: %s", result.message)

    async def once(self) -> int:
        async with aiohttp.ClientSession() as session:
            result = await self.check(session)
        self._report(result)
        return result.status

    async def serve(self, every: float, host: str, port: int | None) -> int:
        runner = None
        if port is not None:
            app = web.Application()
            app.router.add_get("/metrics", make_aiohttp_handler(self.registry))
            runner = web.AppRunner(app)
            await runner.setup()
            await web.TCPSite(runner, host, port).start()
            log.info("registry witness: metrics on http://%s:%d/metrics", host, port)
        try:
            async with aiohttp.ClientSession() as session:
                while True:
                    self._report(await self.check(session))
                    await asyncio.sleep(every)
        finally:
            if runner is not None:
                await runner.cleanup()


class _Unanswered(Exception):
    pass


def _proof(body: bytes) -> list[bytes]:
    try:
        doc: Any = json.loads(body)
    except (ValueError, RecursionError):
        raise NoteError("not JSON") from None
    hashes = doc.get("proof") if isinstance(doc, dict) else None
    if not isinstance(hashes, list) or not all(isinstance(h, str) for h in hashes) \
            or len(hashes) > 128:
        raise NoteError("expected {\"proof\": [base64, ...]}")
    return [unb64(h, f"proof[{i}]") for i, h in enumerate(hashes)]


def _write(path: Path, data: str | bytes) -> None:
    """Whole or not at all: a crash never leaves half a checkpoint to compare with."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
