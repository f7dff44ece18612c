"""The submitters table (migration 0003): one row per submitting host, its credential stored as a digest."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from analyst.db import Base, UTCDateTime


class Submitter(Base):
    __tablename__ = "submitters"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)  # the host's name
    description: Mapped[str] = mapped_column(String(255), default="")
    # SHA-256 (hex) of the bearer token; the token itself is shown once, when issued, and never stored.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
