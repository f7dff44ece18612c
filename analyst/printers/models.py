"""The printers table."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from analyst.db import Base, UTCDateTime


class Printer(Base):
    __tablename__ = "printers"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    uri: Mapped[str] = mapped_column(String(1024))
    snmp_host: Mapped[str] = mapped_column(String(255), default="")
    snmp_port: Mapped[int] = mapped_column(Integer, default=161)
    snmp_version: Mapped[str] = mapped_column(String(4), default="2c")
    snmp_community: Mapped[str] = mapped_column(String(255), default="public")
    site: Mapped[str] = mapped_column(String(64), default="main")
    location: Mapped[str] = mapped_column(String(255), default="")
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    in_service: Mapped[bool] = mapped_column(Boolean, default=True)
    # What a release does when SNMP cannot reach the printer: try anyway, or refuse and keep the job held.
    unreachable_policy: Mapped[str] = mapped_column(String(8), default="allow")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
