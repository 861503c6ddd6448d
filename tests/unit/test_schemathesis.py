"""schemathesis calls every operation of the OpenAPI description against a real
ivr web app on 127.0.0.1: valid requests and broken ones (bodies of the wrong
shape and type, missing fields, odd query values), as an admin and as an
operator.  It fails on a 5xx (`not_a_server_error`), on a status the
description does not list (`status_code_conformance`), on a body that is not
the JSON the description gives for its status (`content_type_conformance`,
`response_schema_conformance`), and here on any 4xx that is not a JSON
{"error": "..."}.

The app is the real one (ivr.web.make_web) with an SQLite ledger in tmp and an
AMI port that refuses: no call is in progress, so the actions on a call answer
404 or 409, which the description lists.  schemathesis also sends wrong and
missing tokens; from 127.0.0.1 enough wrong ones throttle the source, and the
429 that follows (for the right token too) is listed on every operation.  It runs in a thread of its own with
its own event loop, since schemathesis's calls block.  Bounded and repeatable
for CI: a fixed number of examples per operation, derandomized, no deadline.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

import pytest
import schemathesis
from aiohttp import web
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (content_type_conformance,
                                                response_schema_conformance,
                                                status_code_conformance)

from ivr.http import openapi
from ivr.app import build
from ivr.http.app import make_web
from ivr.ledger.store import Store
from tests.unit.test_desk_api import Clock, answered, auth, config_for

# schemathesis's own strategies draw from `random`; hypothesis warns of it on every run.
pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")
SCHEMA = schemathesis.openapi.from_dict(openapi.spec())
# The two the issue names, and the answers' bodies as described (JSON, of their schema).
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]
BOUNDED = settings(max_examples=25, deadline=None, derandomize=True, database=None,
                   suppress_health_check=list(HealthCheck))


class Served:
    """ivr's web app on 127.0.0.1:<free port>, in a thread with its own loop."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="ivr web", daemon=True)
        self.runner: web.AppRunner | None = None
        self.url = ""
        self.statuses: Counter[tuple[str, int]] = Counter()

    def __enter__(self) -> Served:
        self.thread.start()
        self.url = asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(timeout=60)
        return self

    async def _start(self) -> str:
        app = build(config_for(self.tmp, f"sqlite:///{self.tmp / 'ledger.db'}"), clock=Clock())
        self.runner = web.AppRunner(make_web(app))
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        await app.store.run(Store.migrate)
        await app.store.run(Store.write, [answered(n) for n in range(3)])   # calls to complain about
        await app.desk.load()
        host, port = self.runner.addresses[0][:2]
        return f"http://{host}:{port}"

    def __exit__(self, *exc: object) -> None:
        if self.runner is not None:
            asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(timeout=60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=60)
        self.loop.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with Served(tmp_path_factory.mktemp("schemathesis")) as s:
        yield s
    print("\nschemathesis statuses (operation, status): count\n" + "\n".join(
        f"  {op} {status}: {n}" for (op, status), n in sorted(s.statuses.items())))


def called(case: Any, served: Served, role: str) -> None:
    response = case.call_and_validate(base_url=served.url, headers=auth(role), checks=CHECKS)
    served.statuses[(f"{case.method} {case.path}", response.status_code)] += 1
    if response.status_code >= 400:
        # Every refusal is JSON with a one-line error, whatever was sent.
        body = json.loads(response.content)
        assert isinstance(body, dict) and isinstance(body.get("error"), str), body


@SCHEMA.parametrize()
@BOUNDED
def test_as_admin(case: Any, served: Served) -> None:
    called(case, served, "admin")


@SCHEMA.parametrize()
@settings(BOUNDED, max_examples=10)
def test_as_operator(case: Any, served: Served) -> None:
    """The operator is refused most operations (403, listed) and may do the rest."""
    called(case, served, "operator")
