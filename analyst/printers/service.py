"""Printer logic: validating a PrinterDict, upsert, lookup, removal."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from analyst import validate as v
from analyst.events.service import record_event
from analyst.printers.models import Printer
from pullprint.errors import BadRequest, NotFound

SNMP_VERSIONS = ("1", "2c", "3")
UNREACHABLE_POLICIES = ("allow", "refuse")
_URI = re.compile(r"^[a-z][a-z0-9+.\-]*://\S+$")
_TAG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,31}$")


def parse_printer(body: Mapping[str, Any], *, partial: bool = False) -> dict[str, Any]:
    """The settable fields of a PrinterDict, validated; with `partial`, only those present."""
    fields: dict[str, Any] = {"id": v.identifier(body.get("id"), "id")}
    uri = v.text(body, "uri", required=not partial, max_len=1024)
    if uri is not None:
        if not _URI.match(uri):
            raise BadRequest("bad-field", "uri must look like socket://host:9100 or ipp://host/ipp/print",
                             field="uri")
        fields["uri"] = uri
    readers = {
        "snmp_host": lambda: v.text(body, "snmp_host", max_len=255),
        "snmp_port": lambda: v.integer(body, "snmp_port", minimum=1, maximum=65535),
        "snmp_version": lambda: v.text(body, "snmp_version", max_len=4),
        "snmp_community": lambda: v.text(body, "snmp_community", max_len=255),
        "site": lambda: v.text(body, "site", max_len=64, pattern=v.ID_PATTERN),
        "location": lambda: v.text(body, "location", max_len=255),
        "tags": lambda: v.text_list(body, "tags", pattern=_TAG, max_len=32),
        "in_service": lambda: v.boolean(body, "in_service"),
        "unreachable_policy": lambda: v.text(body, "unreachable_policy", max_len=8),
    }
    for name, read in readers.items():
        value = read()
        if value is not None:
            fields[name] = value
    if fields.get("snmp_version", "2c") not in SNMP_VERSIONS:
        raise BadRequest("bad-field", "snmp_version must be 1, 2c or 3", field="snmp_version")
    if fields.get("unreachable_policy", "allow") not in UNREACHABLE_POLICIES:
        raise BadRequest("bad-field", "unreachable_policy must be allow or refuse", field="unreachable_policy")
    return fields


_DEFAULTS: dict[str, Any] = {"snmp_host": "", "snmp_port": 161, "snmp_version": "2c", "snmp_community": "public",
                             "site": "main", "location": "", "tags": [], "in_service": True,
                             "unreachable_policy": "allow"}


def upsert_printer(session: Session, fields: Mapping[str, Any], *, now: datetime) -> tuple[Printer, bool]:
    """Create a printer or change the fields given; returns (printer, created)."""
    printer = session.get(Printer, fields["id"])
    created = printer is None
    if printer is None:
        if "uri" not in fields:
            raise BadRequest("missing-field", "uri is required for a new printer", field="uri")
        printer = Printer(**{**_DEFAULTS, **fields, "created_at": now, "updated_at": now})
        session.add(printer)
    else:
        for name, value in fields.items():
            setattr(printer, name, value)
        printer.updated_at = now
    session.flush()
    record_event(session, "printer-add" if created else "printer-update", now=now, printer=printer.id,
                 detail={"uri": printer.uri, "site": printer.site, "location": printer.location})
    return printer, created


def get_printer(session: Session, printer_id: str) -> Printer:
    printer = session.get(Printer, printer_id)
    if printer is None:
        raise NotFound("not-found", f"no printer {printer_id}")
    return printer


def list_printers(session: Session) -> list[Printer]:
    return list(session.scalars(select(Printer).order_by(Printer.id)))


def remove_printer(session: Session, printer_id: str, *, now: datetime) -> None:
    session.delete(get_printer(session, printer_id))
    record_event(session, "printer-remove", now=now, printer=printer_id)


def printer_to_dict(printer: Printer) -> dict[str, Any]:
    return {"id": printer.id, "uri": printer.uri, "snmp_host": printer.snmp_host, "snmp_port": printer.snmp_port,
            "snmp_version": printer.snmp_version, "snmp_community": printer.snmp_community,
            "site": printer.site, "location": printer.location, "tags": list(printer.tags or []),
            "in_service": printer.in_service, "unreachable_policy": printer.unreachable_policy}
