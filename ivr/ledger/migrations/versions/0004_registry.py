"""the service desk's registry: tickets, complaints and claims as a hash chain

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A complaint names its call by uniqueid, or by who answered it when.
    op.create_index("calls_uniqueid", "calls", ["uniqueid"])
    op.create_index("calls_answered", "calls", ["answered_member", "answered_us"])
    op.create_table(
        "registry",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("at_us", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("number", sa.String(16), nullable=False),
        sa.Column("event", sa.String(16), nullable=False),
        sa.Column("actor_role", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("prev", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_index("registry_number", "registry", ["number", "seq"])
    op.create_index("registry_at", "registry", ["at_us"])
    op.create_table(
        "registry_head",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("registry_head")
    op.drop_table("registry")
    op.drop_index("calls_answered", "calls")
    op.drop_index("calls_uniqueid", "calls")
