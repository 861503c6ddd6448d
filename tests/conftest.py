"""Fixtures shared by every layer of tests.

PostgreSQL: one throwaway cluster per test session (tests/pg.py), and a
fresh database in it for each test that asks for `pg_url`.  Outside CI a
machine without PostgreSQL skips those tests; with CI=true it fails them.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Any, AsyncIterator, Iterator

import pytest

from ivr.ledger.store import Store
from tests import pg
from tests.helpers import require

_databases = itertools.count(1)


@pytest.hookimpl(tryfirst=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """`make test` runs on two workers (-n 2): the lab's tests share one PBX, so they are
    one unit of work, run in order on one worker, while the other takes the rest.  (xdist's
    own loadgroup renames node ids, which pytest 9.2 no longer reads.)"""
    from xdist.scheduler import LoadScopeScheduling

    class LabTogether(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            return "lab" if nodeid.startswith("tests/lab/") else nodeid
    return LabTogether(config, log)


_RAN: set[str] = set()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" or (report.when == "setup" and not report.passed):
        _RAN.add(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Under xdist a test collected but never run fails the run, instead of passing
    unseen (schemathesis's generated tests are such: make test runs them in a pass of
    their own)."""
    if hasattr(session.config, "workerinput") or not session.config.pluginmanager.hasplugin("dsession"):
        return
    if len(_RAN) < session.testscollected:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        print(f"\n{session.testscollected - len(_RAN)} of {session.testscollected} collected tests "
              "never ran under xdist: the run fails")


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[pg.PgCluster]:
    """A PostgreSQL cluster of its own on 127.0.0.1, started once for the session."""
    why = pg.missing()
    require(why is None, f"PostgreSQL tests cannot run: {why}")
    cluster = pg.PgCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.cleanup()


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A ledger's URL on each database, nothing in it yet: SQLite in the test's folder,
    or a new PostgreSQL database (a test file's own `url` takes precedence)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
async def store(url: str) -> AsyncIterator[Store]:
    """A migrated ledger on each database (a test file's own `store` takes precedence)."""
    s = Store(url)
    await s.migrate()
    yield s
    await s.close()


@pytest.fixture
def pg_url(pg_cluster: pg.PgCluster) -> str:
    """postgresql://postgres@127.0.0.1:PORT/<a new, empty database for this test>."""
    name = f"t{os.getpid()}_{next(_databases)}"
    return pg_cluster.createdb(name)


@pytest.fixture(scope="session", autouse=True)
def state_directory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """ivr's state directory (default ledger and spool) for the whole run: a
    temporary one, never the machine's /var/lib/ivr."""
    saved = os.environ.get("STATE_DIRECTORY")
    os.environ["STATE_DIRECTORY"] = str(tmp_path_factory.mktemp("state"))
    yield
    if saved is None:
        os.environ.pop("STATE_DIRECTORY", None)
    else:
        os.environ["STATE_DIRECTORY"] = saved
