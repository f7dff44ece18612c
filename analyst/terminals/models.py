"""The terminals table (migration 0003): one row per enrolled release station, its secrets stored as digests."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from analyst.db import Base, UTCDateTime


class Terminal(Base):
    __tablename__ = "terminals"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    printer_id: Mapped[str] = mapped_column(String(64), index=True)
    description: Mapped[str] = mapped_column(String(255), default="")
    # SHA-256 (hex) of the bearer token and of the pending one-time enrollment code; each is shown
    # once, when made, and never stored. A revoked terminal keeps neither.
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    enrollment_code_hash: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    enrollment_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    enrolled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
