"""The collectors table: who heartbeats, from where, and when last."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from analyst.db import Base, UTCDateTime


class Collector(Base):
    __tablename__ = "collectors"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    url: Mapped[str] = mapped_column(String(1024), default="")
    site: Mapped[str] = mapped_column(String(64), default="main")
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime)
    # What its last heartbeat said of it (the console's fleet view; revision 0007).
    version: Mapped[str] = mapped_column(String(64), default="")
    spool_jobs: Mapped[int | None] = mapped_column(Integer)
    journal_entries: Mapped[int | None] = mapped_column(Integer)
