"""history: incidents, escalations and route decisions

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "incidents",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("area", sa.String(64), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("opened_us", sa.BigInteger, nullable=False),
        sa.Column("expires_us", sa.BigInteger, nullable=False),
        sa.Column("closed_us", sa.BigInteger),
        sa.Column("opened_by", sa.String(64), nullable=False),
        sa.Column("closed_by", sa.String(64)),
    )
    op.create_table(
        "escalations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("pbx", sa.String(64), nullable=False),
        sa.Column("uniqueid", sa.String(64), nullable=False),
        sa.Column("at_us", sa.BigInteger, nullable=False),
        sa.Column("via", sa.String(16), nullable=False),
        sa.Column("result", sa.String(32), nullable=False),
        sa.Column("incident", sa.String(32), nullable=False),
    )
    op.create_index("escalations_call", "escalations", ["pbx", "uniqueid"])
    op.create_table(
        "route_decisions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("pbx", sa.String(64), nullable=False),
        sa.Column("uniqueid", sa.String(64), nullable=False),
        sa.Column("at_us", sa.BigInteger, nullable=False),
        sa.Column("route", sa.String(32), nullable=False),
        sa.Column("account", sa.String(32), nullable=False),
        sa.Column("area", sa.String(64), nullable=False),
        sa.Column("incident", sa.String(32), nullable=False),
    )
    op.create_index("route_decisions_call", "route_decisions", ["pbx", "uniqueid"])


def downgrade() -> None:
    op.drop_table("route_decisions")
    op.drop_table("escalations")
    op.drop_table("incidents")
