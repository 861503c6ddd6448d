"""The ledger's tables, declared once (SQLAlchemy Core), for SQLite and PostgreSQL alike.

`calls` holds one row per call and, denormalised, the call's first visit to
first-line: the statement over a month of calls reads that one table by one
index.  `visits` holds every stay in a queue, keyed (pbx, uniqueid, seq) so
that writing the same call twice (a resync, a replay, a restart) is a no-op.
The migrations in ivr/ledger/migrations create exactly these tables;
tests/unit/test_ledger_store.py checks that the two agree.
"""

from __future__ import annotations

from sqlalchemy import (BigInteger, Boolean, Column, Index, Integer, MetaData, String, Table,
                        Text)

metadata = MetaData()

calls = Table(
    "calls", metadata,
    Column("pbx", String(64), primary_key=True),
    Column("uniqueid", String(64), primary_key=True),
    Column("linkedid", String(64), nullable=False),
    Column("caller", String(64), nullable=False),
    Column("account", String(32), nullable=False),
    Column("area", String(64), nullable=False),
    Column("entered_us", BigInteger, nullable=False),
    Column("ended_us", BigInteger, nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("payable", Boolean, nullable=False),
    Column("source", String(16), nullable=False),
    Column("precision", String(2), nullable=False),
    Column("answered_us", BigInteger),
    Column("answered_queue", String(64), nullable=False),
    Column("answered_member", String(64), nullable=False),
    # The first visit to first-line, as the contractor's statement judges it.
    Column("fl_entered_us", BigInteger),
    Column("fl_wait_ms", Integer),
    Column("fl_outcome", String(16)),
    Column("fl_member", String(64)),
    # Its line in the statement (records.statement_line): the digest of a month is one scan.
    Column("fl_line", Text),
    # Covering: the statement's counts and digest read this index alone, in its order.
    Index("calls_statement", "fl_entered_us", "pbx", "uniqueid", "fl_line", "fl_outcome",
          "payable", "fl_member", "fl_wait_ms"),
    Index("calls_entered", "entered_us"),
    Index("calls_caller", "caller", "entered_us"),
    Index("calls_account", "account", "entered_us"),
    # The service desk finds a call by its uniqueid alone, or by who answered when.
    Index("calls_uniqueid", "uniqueid"),
    Index("calls_answered", "answered_member", "answered_us"),
)

visits = Table(
    "visits", metadata,
    Column("pbx", String(64), primary_key=True),
    Column("uniqueid", String(64), primary_key=True),
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("queue", String(64), nullable=False),
    Column("entered_us", BigInteger, nullable=False),
    Column("left_us", BigInteger),
    Column("outcome", String(16), nullable=False),
    Column("wait_ms", Integer),
    Column("member", String(64), nullable=False),
    Column("source", String(16), nullable=False),
)

# History: kept, never rewritten.
incidents = Table(
    "incidents", metadata,
    Column("id", String(32), primary_key=True),
    Column("area", String(64), nullable=False),
    Column("message", Text, nullable=False),
    Column("opened_us", BigInteger, nullable=False),
    Column("expires_us", BigInteger, nullable=False),
    Column("closed_us", BigInteger),
    Column("opened_by", String(64), nullable=False),
    Column("closed_by", String(64)),
)

escalations = Table(
    "escalations", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("pbx", String(64), nullable=False),
    Column("uniqueid", String(64), nullable=False),
    Column("at_us", BigInteger, nullable=False),
    Column("via", String(16), nullable=False),        # api or transfer
    Column("result", String(32), nullable=False),     # accepted, refused_incident, failed
    Column("incident", String(32), nullable=False),
    Index("escalations_call", "pbx", "uniqueid"),
)

route_decisions = Table(
    "route_decisions", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("pbx", String(64), nullable=False),
    Column("uniqueid", String(64), nullable=False),
    Column("at_us", BigInteger, nullable=False),
    Column("route", String(32), nullable=False),
    Column("account", String(32), nullable=False),
    Column("area", String(64), nullable=False),
    Column("incident", String(32), nullable=False),
    Index("route_decisions_call", "pbx", "uniqueid"),
)

# The service desk's registry (ivr/desk/registry.py): appended, never rewritten.
registry = Table(
    "registry", metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("at_us", BigInteger, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("number", String(16), nullable=False),
    Column("event", String(16), nullable=False),
    Column("actor_role", String(16), nullable=False),
    Column("actor", String(64), nullable=False),
    Column("body", Text, nullable=False),
    Column("prev", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index("registry_number", "number", "seq"),
    Index("registry_at", "at_us"),
)

# One row (id 1): the registry's last seq and hash, written with each entry.
registry_head = Table(
    "registry_head", metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
)

# What people did on a call through the API, and who: warn, end (for abuse), disposition
# (its code), escalate, move (to which queue).
operator_actions = Table(
    "operator_actions", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("pbx", String(64), nullable=False),
    Column("uniqueid", String(64), nullable=False),
    Column("at_us", BigInteger, nullable=False),
    Column("action", String(16), nullable=False),
    Column("value", String(32), nullable=False),
    Column("actor_role", String(16), nullable=False),
    Column("actor", String(64), nullable=False),
    Index("operator_actions_call", "pbx", "uniqueid"),
)

# Repeat callers (ivr/routing/repeats.py): a call and the earlier one it repeats.
repeats = Table(
    "repeats", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("pbx", String(64), nullable=False),
    Column("uniqueid", String(64), nullable=False),
    Column("at_us", BigInteger, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("repeat_of", String(64), nullable=False),
    Column("first_us", BigInteger, nullable=False),
    Index("repeats_call", "pbx", "uniqueid"),
    Index("repeats_at", "at_us"),
)

# Who is signed in to the console (console/sessions.py): the SHA-256 of the session cookie and
# of the token signed in with, never either, so the table alone signs nobody in.
console_sessions = Table(
    "console_sessions", metadata,
    Column("sid_hash", String(64), primary_key=True),
    Column("role", String(16), nullable=False),
    Column("name", String(64), nullable=False),
    Column("token_sha256", String(64), nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("expires_us", BigInteger, nullable=False),
)

# The webhooks' outbox (ledger/outbox.py): each event for each endpoint that wants it,
# written with the record it tells of, sent and retried from here (webhooks/sender.py).
# `id` is the message's webhook-id, the same on every attempt; state pending, delivered
# or dead; `queued_us` starts the 24 h of retries (its creation, or `ivr webhooks retry`).
webhook_outbox = Table(
    "webhook_outbox", metadata,
    Column("id", String(40), primary_key=True),
    Column("endpoint", String(64), nullable=False),
    Column("event", String(32), nullable=False),
    Column("body", Text, nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("queued_us", BigInteger, nullable=False),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_us", BigInteger, nullable=False),
    Column("last_error", Text, nullable=False),
    Column("delivered_us", BigInteger),
    Index("webhook_outbox_due", "state", "next_us"),
    Index("webhook_outbox_created", "created_us"),
)

# Callbacks (ivr/callbacks/): a request, kept once with the call it came from and the
# caller's place (QUEUE_PRIO), and what became of it, appended, never rewritten:
# placed (a placeholder joined the queue: `uniqueid` is its Local channel's), dialing,
# connected, retry, failed, cancelled.  A request is pending while its last event is
# none of the final ones; ivr takes the pending ones back at start.
callbacks = Table(
    "callbacks", metadata,
    Column("id", String(32), primary_key=True),
    Column("pbx", String(64), nullable=False),
    Column("origin", String(64), nullable=False),       # the uniqueid of the call that asked
    Column("number", String(32), nullable=False),
    Column("account", String(32), nullable=False),
    Column("queue", String(64), nullable=False),
    Column("prio", BigInteger, nullable=False),
    Column("requested_us", BigInteger, nullable=False),
    Index("callbacks_requested", "requested_us"),
    Index("callbacks_origin", "pbx", "origin"),
)
callback_events = Table(
    "callback_events", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("callback", String(32), nullable=False),
    Column("at_us", BigInteger, nullable=False),
    Column("event", String(16), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("uniqueid", String(64), nullable=False),     # the placeholder's, when one is named
    Column("reason", String(64), nullable=False),
    Index("callback_events_of", "callback", "id"),
    Index("callback_events_at", "at_us"),
)
