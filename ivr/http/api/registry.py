"""GET /api/v1/registry/checkpoint and /consistency: the registry's signed
checkpoint and the proofs a witness (witness.py) checks it with.

Who may read them (http/api/desk.py ROLES): office, admin and engineer, the
provider's roles, whose witness runs with one of their tokens; and the
contractor's supervisor too, since a checkpoint is a size and a hash that
hides nothing and holds ivr to its word for anyone who keeps it.  Not
operators, who have no use for it.

The key is read, or made (keys.py), when ivr builds its routes, that is at
its first start.  A key file ivr will not use (others may read it) does not
stop ivr routing calls: it is logged as an ERROR and both routes answer 503
with the reason until it is fixed and ivr restarted.

Both read the entries from the database at each request, not from the
desk's memory: what is checked is what is kept, so a witness sees an entry
altered in the database at its next check, not at ivr's next restart.  The
hashing runs in a thread, off the event loop that follows the calls.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from ivr.desk import keys, tlog
from ivr.desk.checkpoint import Signer, b64
from ivr.desk.service import Desk, Unavailable
from ivr.http.errors import BadRequest

log = logging.getLogger(__name__)


class Handlers:
    def __init__(self, desk: Desk) -> None:
        self.desk = desk
        self.signer: Signer | None = None
        self.problem = ""
        try:
            self.signer = keys.load_or_create(keys.path(desk.config))
            log.info("registry: checkpoints signed by %s", self.signer.verifier.vkey())
        except keys.KeyFileError as exc:
            self.problem = str(exc)
            log.error("registry: no signed checkpoints: %s", exc)

    async def _leaves(self) -> list[bytes]:
        entries = await self.desk.entries()
        return await asyncio.to_thread(tlog.leaves, entries)

    async def checkpoint(self, request: web.Request) -> web.Response:
        if self.signer is None:
            raise Unavailable(f"the registry's key: {self.problem}")
        hashes = await self._leaves()
        note = await asyncio.to_thread(tlog.checkpoint, self.signer, hashes)
        return web.Response(text=note, content_type="text/plain", charset="utf-8")

    async def consistency(self, request: web.Request) -> web.Response:
        if self.signer is None:
            raise Unavailable(f"the registry's key: {self.problem}")
        first, second = _count(request.query.get("from"), "from"), _count(request.query.get("to"), "to")
        hashes = await self._leaves()
        try:
            proof = await asyncio.to_thread(tlog.consistency, hashes, first, second)
        except ValueError as exc:
            raise BadRequest(f"from={first}&to={second}: {exc}") from None
        return web.json_response({"from": first, "to": second, "size": len(hashes),
                                  "proof": [b64(h) for h in proof]})


def _count(value: str | None, name: str) -> int:
    if value is None or not value.isascii() or not value.isdigit() or len(value) > 18:
        raise BadRequest(f"{name}: expected a tree size (0 or more), got {value!r}")
    return int(value)


