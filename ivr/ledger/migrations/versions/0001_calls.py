"""calls and visits: one row per call, one per queue visit

Revision ID: 0001
Revises:
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "calls",
        sa.Column("pbx", sa.String(64), primary_key=True),
        sa.Column("uniqueid", sa.String(64), primary_key=True),
        sa.Column("linkedid", sa.String(64), nullable=False),
        sa.Column("caller", sa.String(64), nullable=False),
        sa.Column("account", sa.String(32), nullable=False),
        sa.Column("area", sa.String(64), nullable=False),
        sa.Column("entered_us", sa.BigInteger, nullable=False),
        sa.Column("ended_us", sa.BigInteger, nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("payable", sa.Boolean, nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("precision", sa.String(2), nullable=False),
        sa.Column("answered_us", sa.BigInteger),
        sa.Column("answered_queue", sa.String(64), nullable=False),
        sa.Column("answered_member", sa.String(64), nullable=False),
        sa.Column("fl_entered_us", sa.BigInteger),
        sa.Column("fl_wait_ms", sa.Integer),
        sa.Column("fl_outcome", sa.String(16)),
        sa.Column("fl_member", sa.String(64)),
    )
    op.create_index("calls_fl_entered", "calls", ["fl_entered_us"])
    op.create_index("calls_entered", "calls", ["entered_us"])
    op.create_index("calls_caller", "calls", ["caller", "entered_us"])
    op.create_index("calls_account", "calls", ["account", "entered_us"])
    op.create_table(
        "visits",
        sa.Column("pbx", sa.String(64), primary_key=True),
        sa.Column("uniqueid", sa.String(64), primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("queue", sa.String(64), nullable=False),
        sa.Column("entered_us", sa.BigInteger, nullable=False),
        sa.Column("left_us", sa.BigInteger),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("wait_ms", sa.Integer),
        sa.Column("member", sa.String(64), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("visits")
    op.drop_table("calls")
