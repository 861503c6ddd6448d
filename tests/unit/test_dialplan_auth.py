"""The dialplan endpoints answer only the PBX (ivr/http/dialplan_auth.py), over ivr's real
web app: without its secret or with a wrong one 401 and nothing about the caller;
from outside its dialplan_sources 403; a PBX's secret speaks for that PBX only; a
burst of wrong secrets is logged and throttled; with the right secret, as before."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from ivr.app import Services, build
from ivr.config import AmiConfig, ApiConfig, Config, ConfigError, LedgerConfig, PbxConfig, \
    RoutingConfig, load
from ivr.http.app import CONSOLE, make_web
from ivr.ledger.store import Store
from tests.unit.test_several_pbxs import ports  # noqa: F401  (the fixture: two AMI ports)

ROOT = Path(__file__).resolve().parents[2]
PARIS, LYON = "dialplan-secret-of-paris", "dialplan-secret-of-lyon-"
ENTRY = "/dialplan/v1/entry?uniqueid=1796000000.7&caller=79101"     # a known subscriber
PATHS = (ENTRY, "/dialplan/v1/escalate?uniqueid=1796000000.7",
         "/dialplan/v1/numbers?uniqueid=1796000000.7", "/dialplan/v1/status?number=10000012",
         "/dialplan/v1/claim?uniqueid=1796000000.7&account=100101&caller=79101")


def two_pbxs(ports: tuple[int, int], tmp_path: Path, lyon_sources: tuple[str, ...] = ()) -> Config:
    return Config(pbx=(PbxConfig("paris", AmiConfig(port=ports[0], dialplan_secret=PARIS)),
                       PbxConfig("lyon", AmiConfig(port=ports[1], dialplan_secret=LYON,
                                                   dialplan_sources=lyon_sources))),
                  api=ApiConfig(token="t0ken-for-the-dialplan-tests"),
                  routing=RoutingConfig(directory=str(ROOT / "ivr/lab/files/subscribers.csv")),
                  ledger=LedgerConfig(url=f"sqlite:///{tmp_path / 'ledger.db'}"))


@pytest.fixture
async def two(ports: tuple[int, int], tmp_path: Path) -> AsyncIterator[tuple[Services, TestClient[Any, Any]]]:
    app = build(two_pbxs(ports, tmp_path, lyon_sources=("10.9.9.0/24",)))
    async with TestClient(TestServer(make_web(app))) as client:
        await app.store.run(Store.migrate)
        await app.desk.load()
        yield app, client
        await app.store.close()


def decisions(app: Services, pbx: str) -> float:
    return sum(app.registry.get_sample_value("ivr_route_decisions_total",
                                             {"pbx": pbx, "route": r}) or 0.0
               for r in ("first-line", "ask_account", "concurrent"))


async def test_without_the_secret_nothing_is_told_and_nothing_done(two: Any) -> None:
    app, client = two
    client.server.app[CONSOLE].guard.limit = 1000     # 25 wrong ones here: the next test throttles
    for headers in ({}, {"X-Ivr-Secret": "dialplan-secret-of-nobody"}, {"X-Ivr-Secret": PARIS[:-1]},
                    {"X-Ivr-Secret": ""}, {"X-Ivr-Secret": PARIS.upper()}):
        for path in PATHS:
            resp = await client.get(path, headers=headers)
            assert resp.status == 401, (path, headers)
            assert await resp.read() == b""                  # not a word of the caller
            assert resp.headers.get("Connection", "").lower() == "close"
    assert decisions(app, "paris") == 0 and decisions(app, "lyon") == 0
    assert app.desk.items == {}                              # no claim filed for "anyone"
    assert app.registry.get_sample_value("ivr_auth_failures_total",
                                         {"kind": "dialplan_secret"}) == 5 * len(PATHS)


async def test_the_right_secret_answers_as_before_and_names_the_pbx(two: Any) -> None:
    app, client = two
    resp = await client.get(ENTRY + "&pbx=paris", headers={"X-Ivr-Secret": PARIS})
    assert resp.status == 200
    text = await resp.text()
    assert "route=first-line" in text and "account=100101" in text
    # No pbx=: the secret says which PBX asks.
    resp = await client.get(ENTRY, headers={"X-Ivr-Secret": PARIS})
    assert resp.status == 200 and decisions(app, "paris") == 2 and decisions(app, "lyon") == 0


async def test_a_pbx_cannot_speak_for_another(two: Any) -> None:
    app, client = two
    resp = await client.get(ENTRY + "&pbx=lyon", headers={"X-Ivr-Secret": PARIS})
    assert resp.status == 403 and await resp.read() == b""
    assert decisions(app, "lyon") == 0 and decisions(app, "paris") == 0


async def test_a_pbx_with_sources_is_heard_only_from_them(two: Any,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    app, client = two
    caplog.set_level(logging.WARNING)
    resp = await client.get(ENTRY, headers={"X-Ivr-Secret": LYON})     # from 127.0.0.1
    assert resp.status == 403 and await resp.read() == b""
    assert decisions(app, "lyon") == 0
    assert any("outside its dialplan_sources" in r.getMessage() and "127.0.0.1" in r.getMessage()
               for r in caplog.records)


async def test_a_burst_of_wrong_secrets_is_logged_and_throttled(two: Any,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    app, client = two
    caplog.set_level(logging.WARNING, logger="ivr.throttle")
    for n in range(10):
        resp = await client.get(ENTRY, headers={"X-Ivr-Secret": f"guessed-secret-{n:04d}"})
        assert resp.status == 401
    assert app.registry.get_sample_value("ivr_auth_failures_total", {"kind": "dialplan_secret"}) == 10
    resp = await client.get(ENTRY, headers={"X-Ivr-Secret": PARIS})      # the right one too
    assert resp.status == 429 and int(resp.headers["Retry-After"]) >= 1
    assert await resp.read() == b""
    said = [r.getMessage() for r in caplog.records]
    assert any("dialplan secret from 127.0.0.1" in m for m in said)
    assert not any("guessed-secret" in m for m in said)


async def test_a_pbx_without_a_secret_is_never_answered(ports: tuple[int, int], tmp_path: Path,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    config = Config(ami=AmiConfig(port=ports[0]), api=ApiConfig(token="t0ken-for-the-dialplan-tests"),
                    ledger=LedgerConfig(url=f"sqlite:///{tmp_path / 'ledger.db'}"))
    app = build(config)
    async with TestClient(TestServer(make_web(app))) as client:
        assert (await client.get(ENTRY)).status == 401
        assert (await client.get(ENTRY, headers={"X-Ivr-Secret": ""})).status == 401
    assert any("pbx default has no dialplan_secret" in r.getMessage() for r in caplog.records)


# -- the config's side -----------------------------------------------------------

@pytest.mark.parametrize("toml, problem", [
    ('[ami]\ndialplan_secret = "short"\n', "ami.dialplan_secret: 16 to 256 characters"),
    ('[ami]\ndialplan_secret = "sixteen chars, no"\n', "ami.dialplan_secret: 16 to 256"),
    ('[ami]\ndialplan_secret = 1234567890123456789\n', "ami.dialplan_secret: expected str"),
    ('[pbx.a]\ndialplan_secret = "the-same-secret-16"\n[pbx.b]\nport = 5039\n'
     'dialplan_secret = "the-same-secret-16"\n', "is pbx b's too"),
    ('[pbx.a]\ndialplan_sources = ["10.0.0.0/33"]\n', "pbx.a.dialplan_sources: '10.0.0.0/33'"),
    ('[ami]\ndialplan_sources = "10.0.0.1"\n', "ami.dialplan_sources: expected tuple"),
    ('[ami]\ndialplan_sources = [1]\n', "ami.dialplan_sources: expected tuple"),
])
def test_bad_dialplan_keys_are_one_line_config_errors(tmp_path: Path, toml: str, problem: str) -> None:
    path = tmp_path / "ivr.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError) as caught:
        load(path)
    assert problem in str(caught.value) and "\n" not in str(caught.value)


def test_the_dialplan_keys_from_the_file_and_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "ivr.toml"
    path.write_text('[pbx.paris]\ndialplan_secret = "from-the-file-0001"\n'
                    'dialplan_sources = ["10.0.0.5", "fd00::/8"]\n[pbx.lyon]\nport = 5039\n')
    config = load(path, {"IVR_PBX_LYON_DIALPLAN_SECRET": "from-the-environment"})
    paris, lyon = config.pbxs
    assert paris.ami.dialplan_secret == "from-the-file-0001"
    assert paris.ami.dialplan_sources == ("10.0.0.5", "fd00::/8")
    assert lyon.ami.dialplan_secret == "from-the-environment"
    assert "from-the" not in repr(config)                   # never printed


def test_the_environment_of_a_single_pbx_is_refused_with_tables(tmp_path: Path) -> None:
    path = tmp_path / "ivr.toml"
    path.write_text('[pbx.paris]\nport = 5038\n')
    with pytest.raises(ConfigError) as caught:
        load(path, {"IVR_AMI_DIALPLAN_SECRET": "for-the-one-pbx-0001"})
    assert "use IVR_PBX_PARIS_DIALPLAN_SECRET" in str(caught.value)
