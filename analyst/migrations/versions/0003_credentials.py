"""Credentials the analyst issues: enrolled release terminals, submitting hosts; each printer's document filter.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from analyst.db import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A terminal is enrolled for one printer. Its credential and its one-time enrollment code are
    # stored as SHA-256 digests only (the analyst never keeps either in the clear).
    op.create_table(
        "terminals",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("printer_id", sa.String(64), nullable=False, index=True),
        sa.Column("description", sa.String(255), nullable=False, server_default=""),
        sa.Column("token_hash", sa.String(64), nullable=True, unique=True),
        sa.Column("enrollment_code_hash", sa.String(64), nullable=True, unique=True),
        sa.Column("enrollment_expires_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("enrolled_at", UTCDateTime(), nullable=True),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
    )
    # A host that submits jobs (a print server, a workstation): its own revocable credential.
    op.create_table(
        "submitters",
        sa.Column("id", sa.String(255), primary_key=True),
        sa.Column("description", sa.String(255), nullable=False, server_default=""),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
    )
    # What reaches the printer of a job's PJL/PostScript device commands: strip | refuse | off.
    with op.batch_alter_table("printers") as batch:
        batch.add_column(sa.Column("document_filter", sa.String(16), nullable=False, server_default="strip"))


def downgrade() -> None:
    with op.batch_alter_table("printers") as batch:
        batch.drop_column("document_filter")
    op.drop_table("submitters")
    op.drop_table("terminals")
