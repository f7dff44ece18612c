"""Impressions and sheets as 64-bit integers: pages (up to 9 digits) × copies overflowed PostgreSQL's INTEGER.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("prints") as batch:
        for name in ("impressions", "sheets"):
            batch.alter_column(name, type_=sa.BigInteger(), existing_type=sa.Integer(), existing_nullable=True)


def downgrade() -> None:
    with op.batch_alter_table("prints") as batch:
        for name in ("impressions", "sheets"):
            batch.alter_column(name, type_=sa.Integer(), existing_type=sa.BigInteger(), existing_nullable=True)
