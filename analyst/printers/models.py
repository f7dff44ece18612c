"""The printers table."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Integer, String, text
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
    # Free text for people ("Building A, floor 2, by the kitchen"), and the structured parts to search by.
    location: Mapped[str] = mapped_column(String(255), default="")
    building: Mapped[str] = mapped_column(String(64), default="")
    floor: Mapped[str] = mapped_column(String(32), default="")
    room: Mapped[str] = mapped_column(String(64), default="")
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    # What the device can do ("duplex", "color", "a3", "staple"), for people choosing a printer.
    capabilities: Mapped[list[str]] = mapped_column(JSON, default=list)
    in_service: Mapped[bool] = mapped_column(Boolean, default=True)
    # Why an operator took it out of service (shown to people and in the console).
    service_reason: Mapped[str] = mapped_column(String(255), default="")
    # What a release does when SNMP cannot reach the printer: try anyway, or refuse and keep the job held.
    unreachable_policy: Mapped[str] = mapped_column(String(8), default="allow")
    # What the collectors do with device-changing PJL/PostScript in a job for this printer: strip it
    # (default), refuse the job, or send it as it is (collector/output/document_filter.py; migration 0003).
    document_filter: Mapped[str] = mapped_column(String(16), default="strip", server_default="strip")
    # The page description languages the printer takes (pullprint.render.LANGUAGES); a job in another is
    # converted at release with Ghostscript or cups-filters (collector/release.py; migration 0005).
    languages: Mapped[list[str]] = mapped_column(JSON, default=lambda: ["pdf", "postscript", "pcl", "text"])
    # Mail to this printer's own address prints at once, without a badge (HP's per-printer addresses):
    # only for printers where that is acceptable (a locked room, a personal printer). Migration 0005.
    direct_mail: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    # SNMPv3 (USM) credentials; the keys are secrets that only collectors get back (GET /sync).
    snmp_v3_user: Mapped[str] = mapped_column(String(64), default="")
    snmp_v3_auth_protocol: Mapped[str] = mapped_column(String(8), default="")
    snmp_v3_auth_key: Mapped[str] = mapped_column(String(255), default="")
    snmp_v3_priv_protocol: Mapped[str] = mapped_column(String(8), default="")
    snmp_v3_priv_key: Mapped[str] = mapped_column(String(255), default="")
    # The newest status a collector's SNMP poller reported (None until the first report).
    status: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
