"""callbacks: a caller's request to be called back, and what became of it

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "callbacks",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("pbx", sa.String(64), nullable=False),
        sa.Column("origin", sa.String(64), nullable=False),
        sa.Column("number", sa.String(32), nullable=False),
        sa.Column("account", sa.String(32), nullable=False),
        sa.Column("queue", sa.String(64), nullable=False),
        sa.Column("prio", sa.BigInteger, nullable=False),
        sa.Column("requested_us", sa.BigInteger, nullable=False),
    )
    op.create_index("callbacks_requested", "callbacks", ["requested_us"])
    op.create_index("callbacks_origin", "callbacks", ["pbx", "origin"])
    op.create_table(
        "callback_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("callback", sa.String(32), nullable=False),
        sa.Column("at_us", sa.BigInteger, nullable=False),
        sa.Column("event", sa.String(16), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("uniqueid", sa.String(64), nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
    )
    op.create_index("callback_events_of", "callback_events", ["callback", "id"])
    op.create_index("callback_events_at", "callback_events", ["at_us"])


def downgrade() -> None:
    op.drop_table("callback_events")
    op.drop_table("callbacks")
