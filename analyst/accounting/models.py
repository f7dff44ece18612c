"""The accounting table: one row per printed job, kept after the job and its copies are gone."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from analyst.db import Base, BigId, UTCDateTime


class PrintRecord(Base):
    """One delivered release: who printed what, where, through which collector, and when."""

    __tablename__ = "prints"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(String(64), index=True)
    user_name: Mapped[str] = mapped_column(String(64), index=True)
    printer_id: Mapped[str] = mapped_column(String(64), default="", index=True)
    collector_id: Mapped[str] = mapped_column(String(64), default="")
    site: Mapped[str] = mapped_column(String(64), default="", index=True)
    # None: the collector could not count the pages of this document (never stored as 0).
    pages: Mapped[int | None] = mapped_column(Integer)
    copies: Mapped[int] = mapped_column(Integer, default=1)
    # pages × copies, and physical sheets (duplex and number-up applied); None when pages are unknown.
    impressions: Mapped[int | None] = mapped_column(BigInteger)
    sheets: Mapped[int | None] = mapped_column(BigInteger)
    duplex: Mapped[bool] = mapped_column(Boolean, default=False)
    color: Mapped[bool] = mapped_column(Boolean, default=False)
    # When it printed; for an offline replay the collector's time, not the replay's.
    printed_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    offline: Mapped[bool] = mapped_column(Boolean, default=False)
    # When the analyst learnt of it (differs from printed_at for offline replays).
    recorded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
