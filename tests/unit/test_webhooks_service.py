"""Webhooks in ivr as it runs: the app built by build(), its web app's start and stop
(the sender is one of its tasks), and [webhooks.NAME] as the config file gives it."""

from __future__ import annotations

import base64
from dataclasses import replace
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from ivr import config as cfg
from ivr.app import build
from ivr.cli.main import main
from ivr.config import WebhookConfig
from ivr.http.app import make_web
from ivr.ledger.outbox import DELIVERED, PENDING
from ivr.ledger.store import Store
from ivr.webhooks.sender import Backoff
from tests.helpers import eventually, free_port
from tests.unit.test_desk_api import auth, config_for
from tests.unit.test_webhooks import SECRET, Serve, serve  # noqa: F401  (serve: a fixture)

EVENTS = ("ticket.filed", "incident.opened")


async def test_messages_pending_at_a_stop_are_delivered_by_the_next_start(
        serve: Serve, tmp_path: Path) -> None:
    port = free_port()        # the helpdesk's: down during the first run
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    config = replace(config_for(tmp_path, url), webhooks=(
        WebhookConfig("helpdesk", f"http://127.0.0.1:{port}/hook", SECRET, EVENTS),))

    app = build(config)
    app.webhooks.backoff = Backoff(first=0.01, cap=0.01)    # due again at once after a failure
    async with TestClient(TestServer(make_web(app))) as client:
        await eventually(lambda: app.desk.loaded, what="the desk read its registry")
        resp = await client.post("/api/v1/tickets", headers=auth("operator"),
                                 json={"account": "100101", "problem": "no link", "insisted": False})
        assert resp.status == 201
        resp = await client.post("/api/v1/incidents", headers=auth("admin"),
                                 json={"area": "south", "message": "fiber cut", "expires_in": 600})
        assert resp.status == 201
        await eventually(lambda: app.webhooks.results["helpdesk", "failed"] >= 1,
                         what="the ticket's first attempt failed")
    store = Store(url)
    try:
        rows, _ = await store.outbox_list()
    finally:
        await store.close()
    assert sorted(r["event"] for r in rows) == sorted(EVENTS)
    assert {r["state"] for r in rows} == {PENDING}     # the incident's: written at the stop
    pending = {r["id"] for r in rows}

    receiver = await serve(port=port)         # the helpdesk is back; ivr starts again
    again = build(config)
    async with TestClient(TestServer(make_web(again))):
        await eventually(lambda: len(receiver.seen) >= 2, what="both messages delivered")
        await eventually(lambda: again.webhooks.results["helpdesk", DELIVERED] == 2,
                         what="both marked delivered")
    assert receiver.refused == [] and set(receiver.ids) == pending
    assert {s["payload"]["type"] for s in receiver.seen} == set(EVENTS)
    incident = next(s["payload"]["data"] for s in receiver.seen
                    if s["payload"]["type"] == "incident.opened")
    assert (incident["area"], incident["message"], incident["by"]) == ("south", "fiber cut", "root")


WHSEC = "whsec_" + base64.b64encode(bytes(32)).decode()


@pytest.mark.parametrize("table, says", [
    (f'url = "ftp://helpdesk.example/in"\nsecret = "{WHSEC}"\nevents = ["ticket.filed"]',
     "webhooks.helpdesk.url: expected an http:// or https:// URL"),
    (f'url = "file:///etc/passwd"\nsecret = "{WHSEC}"\nevents = ["ticket.filed"]',
     "webhooks.helpdesk.url: expected an http:// or https:// URL"),
    ('url = "https://helpdesk.example/in"\nsecret = "whsec_not*base64"\nevents = ["ticket.filed"]',
     "webhooks.helpdesk.secret: what follows whsec_ is not base64"),
    ('url = "https://helpdesk.example/in"\nsecret = "hunter2-hunter2"\nevents = ["ticket.filed"]',
     "webhooks.helpdesk.secret: expected whsec_ and base64"),
    ('url = "https://helpdesk.example/in"\nsecret = "whsec_c2hvcnQ="\nevents = ["ticket.filed"]',
     "webhooks.helpdesk.secret: expected 24 to 64 bytes after whsec_"),
    (f'url = "https://helpdesk.example/in"\nsecret = "{WHSEC}"\nevents = ["ticket.closed"]',
     "webhooks.helpdesk.events: unknown event 'ticket.closed'"),
    (f'url = "https://helpdesk.example/in"\nsecret = "{WHSEC}"\nevents = []',
     "webhooks.helpdesk.events: list the events to send"),
    (f'url = "https://helpdesk.example/in"\nsecret = "{WHSEC}"\nevents = ["ticket.filed"]\n'
     'retries = 3', "unknown config key webhooks.helpdesk.retries"),
])
def test_a_bad_webhook_is_one_line_exit_2_and_nothing_written(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], table: str, says: str) -> None:
    ledger = tmp_path / "ledger.db"
    config = tmp_path / "ivr.toml"
    config.write_text(f'[ledger]\nurl = "sqlite:///{ledger}"\n\n[webhooks.helpdesk]\n{table}\n')
    for argv in (["run"], ["webhooks", "list"]):
        assert main(argv + ["--config", str(config)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"ivr: bad config: {says}") and err.count("\n") == 1, err
        assert "hunter2" not in err and "not*base64" not in err
    assert not ledger.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["ivr.toml"]


def test_webhooks_load_with_the_secret_from_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "ivr.toml"
    path.write_text('[webhooks.zammad]\nurl = "https://zammad.example/api/v1/ivr"\n'
                    'events = ["ticket.filed", "claim.filed"]\n'
                    '[webhooks.jira-sm]\nurl = "http://10.0.0.7:8080/hook"\n'
                    f'secret = "{WHSEC}"\nevents = ["incident.opened"]\n')
    with pytest.raises(cfg.ConfigError, match="IVR_WEBHOOKS_ZAMMAD_SECRET"):
        cfg.load(path, {})
    loaded = cfg.load(path, {"IVR_WEBHOOKS_ZAMMAD_SECRET": WHSEC})
    assert [h.name for h in loaded.webhooks] == ["zammad", "jira-sm"]
    assert loaded.webhooks[0].events == ("ticket.filed", "claim.filed")
    assert loaded.webhooks[0].key == bytes(32)
    assert WHSEC not in repr(loaded) and "zammad.example" not in repr(loaded)


def test_a_webhook_name_and_shape_are_checked(tmp_path: Path) -> None:
    path = tmp_path / "ivr.toml"
    for text, says in (("[webhooks]\n", "[webhooks] lists no endpoint"),
                       ("webhooks = 1\n", "[webhooks] must be a table"),
                       ("[webhooks.Help]\n", "webhooks.Help: an endpoint's name"),
                       ("[webhooks]\nhelp = 2\n", "webhooks.help must be a table"),
                       ("[webhooks.help]\nurl = 5\n", "webhooks.help.url: expected str, got int")):
        path.write_text(text)
        with pytest.raises(cfg.ConfigError) as err:
            cfg.load(path, {})
        assert str(err.value).startswith(says) and "\n" not in str(err.value), str(err.value)
