"""The event log table."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, String
from sqlalchemy.orm import Mapped, mapped_column

from analyst.db import Base, BigId, UTCDateTime


class Event(Base):
    """One thing that happened; never updated, so `id` orders the log."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    user_name: Mapped[str | None] = mapped_column(String(64), index=True)
    job_id: Mapped[str | None] = mapped_column(String(64), index=True)
    printer_id: Mapped[str | None] = mapped_column(String(64))
    collector_id: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Replayed by a collector that acted while the analyst was unreachable; `at` is when it happened.
    offline: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
