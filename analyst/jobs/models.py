"""The jobs table and where each job's copies are (accounting rows live in analyst.accounting)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from analyst.db import Base, UTCDateTime


class Job(Base):
    __tablename__ = "jobs"
    # A retried submission (same CUPS job-uuid) finds the first job instead of creating a second one.
    __table_args__ = (UniqueConstraint("owner", "idempotency_key", name="uq_jobs_owner_idempotency_key"),
                      UniqueConstraint("release_code_hash", name="uq_jobs_release_code_hash"),
                      # Listings in submission order, and the keyset of their pages (`after`).
                      Index("ix_jobs_submitted_at_id", "submitted_at", "id"))

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64), index=True)
    title: Mapped[str] = mapped_column(String(255), default="")
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    sha256: Mapped[str] = mapped_column(String(64), default="")
    pages: Mapped[int | None] = mapped_column(Integer)
    copies: Mapped[int] = mapped_column(Integer, default=1)
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    content_type: Mapped[str] = mapped_column(String(127), default="application/octet-stream")
    origin_host: Mapped[str] = mapped_column(String(255), default="")
    cups_job_id: Mapped[str] = mapped_column(String(32), default="")
    idempotency_key: Mapped[str | None] = mapped_column(String(128))
    site: Mapped[str] = mapped_column(String(64), default="main")
    state: Mapped[str] = mapped_column(String(16), index=True)
    state_reason: Mapped[str] = mapped_column(Text, default="")
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    received_by: Mapped[str] = mapped_column(String(64), default="")
    # Fencing token: raised by every successful claim, never lowered, so a stale releaser is detectable.
    claim_token: Mapped[int] = mapped_column(Integer, default=0)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claim_printer: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A guest's job: the HMAC (badge pepper) of its release code; unique, so a code finds one job.
    release_code_hash: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    locations: Mapped[list[JobLocation]] = relationship(
        back_populates="job", cascade="all, delete-orphan", lazy="selectin",
        order_by="(JobLocation.added_at, JobLocation.collector_id)")


class JobLocation(Base):
    """One collector holding a copy of a job's spool file."""

    __tablename__ = "job_locations"
    # The jobs a collector holds (its orphan sweep): without it, a scan of every copy.
    __table_args__ = (Index("ix_job_locations_collector_id", "collector_id", "job_id"),)

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    collector_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    added_at: Mapped[datetime] = mapped_column(UTCDateTime)

    job: Mapped[Job] = relationship(back_populates="locations")

