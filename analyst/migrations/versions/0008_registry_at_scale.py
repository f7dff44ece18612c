"""Indexes for a registry of a million jobs: jobs in submission order, and the jobs at a collector.

Listing the jobs a collector holds (its orphan sweep, GET /jobs?location=) sorted every job it holds
and scanned every copy: about a second per page of 1,000 at a million jobs (benchmarks/registry_scale.py).

Both are built inside the upgrade's transaction (its advisory lock keeps concurrent upgraders apart),
so writes to the two tables wait while they build: 1.6 s at a million jobs on PostgreSQL, measured
(docs/sizing.md); collectors ride that out as any short analyst stall.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

INDEXES = (("ix_jobs_submitted_at_id", "jobs", ["submitted_at", "id"]),
           ("ix_job_locations_collector_id", "job_locations", ["collector_id", "job_id"]))


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, table, _ in INDEXES:
        op.drop_index(name, table_name=table)
