"""Webhooks: the desk's events through the outbox to a real HTTP receiver on 127.0.0.1,
which checks every request with the Standard Webhooks reference verifier
(`standardwebhooks`, a test dependency: ivr signs with hmac alone).  The outbox is
tests/conftest.py's `store`: SQLite, and PostgreSQL.

The clock and the backoff are the sender's own arguments, so a day of retries
runs in milliseconds: nothing here sleeps for a backoff."""

from __future__ import annotations

import asyncio
import base64
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable

import pytest
import standardwebhooks
from aiohttp import web
from prometheus_client import CollectorRegistry

from ivr.cli.main import main
from ivr.config import WebhookConfig
from ivr.config import tokens as roles
from ivr.desk.events import DeskEvents
from ivr.desk.service import Desk, Unavailable
from ivr.ledger import schema as t
from ivr.ledger.outbox import DEAD, DELIVERED, PENDING, TABLE, Message, Outbox
from ivr.ledger.rows import history
from ivr.ledger.spool import History, decode, encode
from ivr.ledger.store import Store
from ivr.metrics.webhooks import WebhookMetrics
from ivr.routing.directory import Directory
from ivr.routing.incidents import Incidents
from ivr.webhooks import sign
from ivr.webhooks.sender import Backoff, Sender, retry_after
from tests.helpers import free_port

ROOT = Path(__file__).resolve().parents[2]
SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()
QUICK = Backoff(first=1.0, cap=2.0)      # attempts 1-2 s apart: within the verifier's 5 min
OPERATOR = roles.Actor(roles.OPERATOR, "op1")


@dataclass
class Receiver:
    """An HTTP endpoint that verifies each request and answers `statuses` in turn, then 200."""

    statuses: list[int] = field(default_factory=list)
    seen: list[dict[str, Any]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            payload = standardwebhooks.Webhook(SECRET).verify(body, dict(request.headers))
        except standardwebhooks.webhooks.WebhookVerificationError as exc:
            self.refused.append(str(exc))
            return web.Response(status=401)
        self.seen.append({"id": request.headers["webhook-id"],
                          "timestamp": int(request.headers["webhook-timestamp"]),
                          "payload": payload})
        return web.Response(status=self.statuses.pop(0) if self.statuses else 200)

    @property
    def ids(self) -> list[str]:
        return [s["id"] for s in self.seen]


Serve = Callable[..., Awaitable[Receiver]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """serve(statuses=[...], port=N): a Receiver listening on 127.0.0.1 (N, or any port)."""
    runners: list[web.AppRunner] = []

    async def start(statuses: list[int] | None = None, port: int = 0) -> Receiver:
        receiver = Receiver(list(statuses or []))
        app = web.Application()
        app.router.add_post("/hook", receiver.handle)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", port)
        await site.start()
        runners.append(runner)
        bound = runner.addresses[0][1]
        receiver.url = f"http://127.0.0.1:{bound}/hook"
        return receiver
    yield start
    for runner in runners:
        await runner.cleanup()


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def hook(url: str, events: tuple[str, ...] = ("ticket.filed", "ticket.state")) -> WebhookConfig:
    return WebhookConfig("helpdesk", url, SECRET, events)


async def desk_for(store: Store, endpoint: WebhookConfig, clock: Clock) -> Desk:
    desk = Desk(store, Directory.load(ROOT / "ivr/lab/files/subscribers.csv"), Incidents(),
                clock=clock, events=DeskEvents(Outbox([endpoint])))
    await desk.load()
    return desk


async def cli(argv: list[str]) -> int:
    """`ivr ...` as from the shell: its own event loop, in a thread of its own."""
    return await asyncio.to_thread(main, argv)


async def outbox(store: Store) -> list[dict[str, Any]]:
    rows, _ = await store.outbox_list()
    return rows


async def test_a_ticket_reaches_the_receiver_signed(serve: Serve, store: Store) -> None:
    import time
    receiver = await serve()
    clock = Clock(time.time())
    endpoint = hook(receiver.url)
    desk = await desk_for(store, endpoint, clock)
    ticket = await desk.file_ticket(OPERATOR, "100101", None, "no link since morning", False)
    sender = Sender(store, [endpoint], clock, QUICK)
    try:
        await sender.send_due()
    finally:
        await sender.close()
    assert receiver.refused == []
    [got] = receiver.seen
    assert got["id"].startswith("msg_") and got["timestamp"] == int(clock.now)
    body = got["payload"]
    assert body["type"] == "ticket.filed"
    data = body["data"]
    assert (data["number"], data["kind"], data["account"], data["area"]) == \
        (ticket.number, "ticket", "100101", "north")
    assert data["by"] == {"role": "operator", "name": "op1"} and data["seq"] == 1
    assert data["problem"] == "no link since morning" and "due" in data and "due_us" not in data
    [row] = await outbox(store)
    assert (row["id"], row["state"], row["attempts"]) == (got["id"], DELIVERED, 1)


async def test_a_receiver_that_fails_first_gets_the_same_id_until_it_answers(
        serve: Serve, store: Store) -> None:
    import time
    receiver = await serve([500, 500])
    clock = Clock(time.time())
    endpoint = hook(receiver.url)
    desk = await desk_for(store, endpoint, clock)
    await desk.file_ticket(OPERATOR, "100101", None, "no link", False)
    sender = Sender(store, [endpoint], clock, QUICK, draw=lambda: 0.5)
    registry = CollectorRegistry()
    WebhookMetrics(registry, sender)
    try:
        await sender.send_due()
        await sender.send_due()              # not due yet: nothing sent
        assert len(receiver.seen) == 1
        for _ in range(2):
            clock.now += 2.0
            await sender.send_due()
    finally:
        await sender.close()
    assert receiver.refused == []
    assert len(receiver.seen) == 3 and len(set(receiver.ids)) == 1
    stamps = [s["timestamp"] for s in receiver.seen]
    assert stamps == sorted(stamps) and len(set(stamps)) == 3    # each attempt signed anew
    [row] = await outbox(store)
    assert (row["id"], row["state"], row["attempts"]) == (receiver.ids[0], DELIVERED, 3)

    def sample(name: str, **labels: str) -> float:
        return registry.get_sample_value(name, {"endpoint": "helpdesk", **labels}) or 0.0
    assert sample("ivr_webhook_deliveries_total", result="failed") == 2
    assert sample("ivr_webhook_deliveries_total", result="delivered") == 1
    assert sample("ivr_webhook_messages", state="pending") == 0


async def test_down_past_a_day_is_dead_listed_and_sent_again_by_retry(
        serve: Serve, store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import time
    start = time.time()
    clock = Clock(start)
    down = hook(f"http://127.0.0.1:{free_port()}/hook")      # nothing listens there
    desk = await desk_for(store, down, clock)
    await desk.file_ticket(OPERATOR, "100101", None, "no link", False)
    sender = Sender(store, [down], clock)            # the real backoff: 5 s doubling to 1 h
    registry = CollectorRegistry()
    WebhookMetrics(registry, sender)
    try:
        for _ in range(100):
            [row] = await outbox(store)
            if row["state"] != PENDING:
                break
            clock.now = max(clock.now, row["next_us"] / 1e6)
            await sender.send_due()
    finally:
        await sender.close()
    assert row["state"] == DEAD and 20 <= row["attempts"] <= 50
    assert "Connect" in row["last_error"] or "refused" in row["last_error"].lower()
    assert 23 * 3600 < clock.now - start <= 24 * 3600      # the last try within the day
    assert registry.get_sample_value("ivr_webhook_messages",
                                     {"endpoint": "helpdesk", "state": "dead"}) == 1
    assert registry.get_sample_value("ivr_webhook_deliveries_total",
                                     {"endpoint": "helpdesk", "result": "dead"}) == 1

    config = tmp_path / "ivr.toml"
    config.write_text(f'[ledger]\nurl = "{store.url}"\n')
    assert await cli(["webhooks", "list", "--dead", "--config", str(config)]) == 0
    listed = capsys.readouterr().out
    assert row["id"] in listed and "ticket.filed" in listed and "1 dead message(s)" in listed
    assert await cli(["webhooks", "list", "--json", "--config", str(config)]) == 0
    [shown] = json.loads(capsys.readouterr().out)["messages"]
    assert shown["state"] == DEAD and shown["payload"]["type"] == "ticket.filed"

    assert await cli(["webhooks", "retry", row["id"], "--config", str(config)]) == 0
    capsys.readouterr()
    receiver = await serve()                  # the helpdesk is back, at a new address
    again = Sender(store, [hook(receiver.url)])      # the real clock: due at once
    try:
        await again.send_due()
    finally:
        await again.close()
    assert receiver.refused == [] and receiver.ids == [row["id"]]
    [row] = await outbox(store)
    assert (row["state"], row["attempts"]) == (DELIVERED, 1)
    # A delivered message is not sent again, and an unknown ID is one line: exit 2 both.
    assert await cli(["webhooks", "retry", row["id"], "--config", str(config)]) == 2
    assert "was delivered" in capsys.readouterr().err
    assert await cli(["webhooks", "retry", "msg_nope", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no webhook message 'msg_nope'" in err


async def test_a_410_is_dead_at_once_and_a_redirect_is_not_followed(
        serve: Serve, store: Store) -> None:
    import time
    gone, moved = await serve([410]), await serve([302])
    clock = Clock(time.time())
    endpoints = [WebhookConfig("gone", gone.url, SECRET, ("claim.filed",)),
                 WebhookConfig("moved", moved.url, SECRET, ("claim.filed",))]
    at = round(clock.now * 1e6)
    for message in Outbox(endpoints).messages("claim.filed", {"number": "30000018"}, at):
        await store.history(TABLE, [history(message).row])
    sender = Sender(store, endpoints, clock, QUICK)
    try:
        await sender.send_due()
    finally:
        await sender.close()
    states = {r["endpoint"]: (r["state"], r["last_error"]) for r in await outbox(store)}
    assert states == {"gone": (DEAD, "HTTP 410"), "moved": (PENDING, "HTTP 302")}
    assert len(gone.seen) == len(moved.seen) == 1


async def test_the_registry_entry_and_its_messages_are_one_transaction(store: Store) -> None:
    """A message that cannot be written takes its entry with it: never one without the other."""
    endpoint = hook("http://127.0.0.1:9/hook")
    taken = Message("msg_taken", "helpdesk", "ticket.filed", "{}", 1, 1)
    await store.history(TABLE, [history(taken).row])
    clock = Clock(1_796_000_000.0)
    desk = await desk_for(store, endpoint, clock)
    desk.events = lambda entry: [history(taken).row]      # its id is there already
    with pytest.raises(Unavailable):
        await desk.file_ticket(OPERATOR, "100101", None, "no link", False)
    rows, head = await store.registry()
    assert rows == [] and head is None


async def test_an_outbox_row_survives_the_spool_and_is_written_once(store: Store) -> None:
    [message] = Outbox([hook("http://h.example/")]).messages("ticket.filed", {"n": "é"}, 7)
    item = decode(json.loads(json.dumps(encode(history(message)))))
    assert isinstance(item, History) and item.table == TABLE
    await store.write([], {TABLE: [item.row]})
    await store.write([], {TABLE: [history(message).row]})     # a spool flushed twice
    [row] = await outbox(store)
    assert row["id"] == message.id and json.loads(row["body"])["data"] == {"n": "é"}
    assert row["body"].isascii()


def test_the_signature_is_the_reference_ones() -> None:
    from datetime import datetime, timezone
    body = b'{"type":"ticket.filed"}'
    ours = sign.signature(base64.b64decode(SECRET[6:]), "msg_1", 1_796_000_000, body)
    theirs = standardwebhooks.Webhook(SECRET).sign(
        "msg_1", datetime.fromtimestamp(1_796_000_000, timezone.utc), body)
    assert ours == theirs


def test_backoff_doubles_to_its_cap_with_jitter() -> None:
    b = Backoff()
    assert [b.delay(n, 0.999999) for n in (1, 2, 3)] == pytest.approx([5, 10, 20], rel=1e-5)
    assert [b.delay(n, 0.0) for n in (1, 2, 3)] == [2.5, 5, 10]
    assert b.delay(12, 0.5) == b.delay(1000, 0.5) == 3600 * 0.75
    assert (retry_after("120"), retry_after(" 7 "), retry_after("Wed, 21 Oct 2026 07:28:00 GMT"),
            retry_after(None)) == (120.0, 7.0, None, None)


def test_the_desk_makes_only_configured_events() -> None:
    from ivr.config.webhooks import EVENTS
    from ivr.desk.service import CLAIM, COMPLAINT, COMPLAINT_MOVES, TICKET, TICKET_MOVES
    made = {f"{TICKET}.{e}" for e in ("filed", "refused", "note")} | {f"{COMPLAINT}.filed",
                                                                     f"{COMPLAINT}.note",
                                                                     f"{CLAIM}.filed"}
    made |= {f"{TICKET}.state"} if TICKET_MOVES else set()
    made |= {f"{COMPLAINT}.state"} if COMPLAINT_MOVES else set()
    assert made | {"incident.opened", "incident.closed"} == set(EVENTS)
    assert t.webhook_outbox.name == TABLE
