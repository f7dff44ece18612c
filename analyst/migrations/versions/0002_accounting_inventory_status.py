"""Accounting details, printer inventory (structured location, capabilities, SNMPv3), printer status, offline events.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from analyst.db import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_FALSE = sa.false()


def upgrade() -> None:
    with op.batch_alter_table("prints") as batch:
        batch.add_column(sa.Column("impressions", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("sheets", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("duplex", sa.Boolean(), nullable=False, server_default=_FALSE))
        batch.add_column(sa.Column("color", sa.Boolean(), nullable=False, server_default=_FALSE))
        batch.add_column(sa.Column("offline", sa.Boolean(), nullable=False, server_default=_FALSE))
        batch.add_column(sa.Column("recorded_at", UTCDateTime(), nullable=True))
    op.create_index("ix_prints_printer_id", "prints", ["printer_id"])
    op.create_index("ix_prints_site", "prints", ["site"])
    _backfill_prints()

    with op.batch_alter_table("printers") as batch:
        for name, length in (("building", 64), ("floor", 32), ("room", 64), ("service_reason", 255),
                             ("snmp_v3_user", 64), ("snmp_v3_auth_protocol", 8), ("snmp_v3_auth_key", 255),
                             ("snmp_v3_priv_protocol", 8), ("snmp_v3_priv_key", 255)):
            batch.add_column(sa.Column(name, sa.String(length), nullable=False, server_default=""))
        batch.add_column(sa.Column("capabilities", sa.JSON(), nullable=False, server_default="[]"))
        batch.add_column(sa.Column("status", sa.JSON(), nullable=True))

    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("offline", sa.Boolean(), nullable=False, server_default=_FALSE))
    op.create_index("ix_events_offline", "events", ["offline"])


def _backfill_prints() -> None:
    """Rows printed before this revision: derive duplex, colour, impressions and sheets from their jobs."""
    from analyst.accounting.service import count_print

    prints = sa.table("prints", sa.column("id"), sa.column("job_id"), sa.column("pages"), sa.column("copies"),
                      sa.column("impressions"), sa.column("sheets"), sa.column("duplex"), sa.column("color"),
                      sa.column("printed_at", UTCDateTime()), sa.column("recorded_at", UTCDateTime()))
    jobs = sa.table("jobs", sa.column("id"), sa.column("options", sa.JSON()))
    connection = op.get_bind()
    rows = connection.execute(sa.select(prints.c.id, prints.c.pages, prints.c.copies, prints.c.printed_at,
                                        jobs.c.options)
                              .select_from(prints.outerjoin(jobs, jobs.c.id == prints.c.job_id))).all()
    for row in rows:
        counts = count_print(row.pages, row.copies, row.options or {})
        connection.execute(prints.update().where(prints.c.id == row.id).values(
            impressions=counts.impressions, sheets=counts.sheets, duplex=counts.duplex, color=counts.color,
            recorded_at=row.printed_at))


def downgrade() -> None:
    op.drop_index("ix_events_offline", "events")
    with op.batch_alter_table("events") as batch:
        batch.drop_column("offline")
    with op.batch_alter_table("printers") as batch:
        for name in ("building", "floor", "room", "service_reason", "snmp_v3_user", "snmp_v3_auth_protocol",
                     "snmp_v3_auth_key", "snmp_v3_priv_protocol", "snmp_v3_priv_key", "capabilities", "status"):
            batch.drop_column(name)
    op.drop_index("ix_prints_site", "prints")
    op.drop_index("ix_prints_printer_id", "prints")
    with op.batch_alter_table("prints") as batch:
        for name in ("impressions", "sheets", "duplex", "color", "offline", "recorded_at"):
            batch.drop_column(name)
