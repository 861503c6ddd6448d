"""repeat callers: each repeat call and the call it repeats (repeat_of)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "repeats",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("pbx", sa.String(64), nullable=False),
        sa.Column("uniqueid", sa.String(64), nullable=False),
        sa.Column("at_us", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("repeat_of", sa.String(64), nullable=False),
        sa.Column("first_us", sa.BigInteger, nullable=False),
    )
    op.create_index("repeats_call", "repeats", ["pbx", "uniqueid"])
    op.create_index("repeats_at", "repeats", ["at_us"])


def downgrade() -> None:
    op.drop_table("repeats")
