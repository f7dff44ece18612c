"""What each collector's heartbeat says of it for the console: its version, spool and journal depth.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("collectors") as batch:
        batch.add_column(sa.Column("version", sa.String(64), nullable=False, server_default=""))
        batch.add_column(sa.Column("spool_jobs", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("journal_entries", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("collectors") as batch:
        batch.drop_column("journal_entries")
        batch.drop_column("spool_jobs")
        batch.drop_column("version")
