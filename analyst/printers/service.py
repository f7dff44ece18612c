"""Printer logic: validating a PrinterDict, upsert, search, removal, reported status and service state."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from analyst import validate as v
from analyst.events.service import record_event
from analyst.printers.models import Printer
from pullprint.documents import LANGUAGES
from pullprint.errors import BadRequest, NotFound

SNMP_VERSIONS = ("1", "2c", "3")
UNREACHABLE_POLICIES = ("allow", "refuse")
# The modes of the collectors' document filter (collector.output.document_filter.MODES), default first.
DOCUMENT_FILTERS = ("strip", "refuse", "off")
# The protocols the collector's SNMP client speaks (collector.health.snmp.AUTH / PRIV).
SNMP_V3_AUTH_PROTOCOLS = ("MD5", "SHA", "SHA224", "SHA256", "SHA384", "SHA512")
SNMP_V3_PRIV_PROTOCOLS = ("DES", "AES", "AES128", "AES256")
SECRET_FIELDS = ("snmp_v3_auth_key", "snmp_v3_priv_key")
# What GET /printers shows in place of a stored key; sent back in a POST it means "keep the stored key".
MASK = "***"
STATES = ("ok", "warning", "error", "unreachable")
_URI = re.compile(r"^[a-z][a-z0-9+.\-]*://\S+$")
_TAG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,31}$")


def _protocol(body: Mapping[str, Any], name: str, allowed: tuple[str, ...]) -> str | None:
    value = v.text(body, name, max_len=8)
    if value is None:
        return None
    value = value.upper()
    if value and value not in allowed:
        raise BadRequest("bad-field", f"{name} must be one of {', '.join(allowed)}", field=name)
    return value


def _secret(body: Mapping[str, Any], name: str) -> str | None:
    value = v.text(body, name, max_len=255)
    if value is None or value == MASK:
        return None  # absent, or the mask a client read and sent back: keep the stored key
    if value and len(value) < 8:
        # RFC 3414: USM derives keys from passphrases of at least 8 characters; agents refuse shorter ones.
        raise BadRequest("bad-field", f"{name} must be at least 8 characters", field=name)
    return value


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
        "snmp_v3_user": lambda: v.text(body, "snmp_v3_user", max_len=64),
        "snmp_v3_auth_protocol": lambda: _protocol(body, "snmp_v3_auth_protocol", SNMP_V3_AUTH_PROTOCOLS),
        "snmp_v3_auth_key": lambda: _secret(body, "snmp_v3_auth_key"),
        "snmp_v3_priv_protocol": lambda: _protocol(body, "snmp_v3_priv_protocol", SNMP_V3_PRIV_PROTOCOLS),
        "snmp_v3_priv_key": lambda: _secret(body, "snmp_v3_priv_key"),
        "site": lambda: v.text(body, "site", max_len=64, pattern=v.ID_PATTERN),
        "location": lambda: v.text(body, "location", max_len=255),
        "building": lambda: v.text(body, "building", max_len=64),
        "floor": lambda: v.text(body, "floor", max_len=32),
        "room": lambda: v.text(body, "room", max_len=64),
        "tags": lambda: v.text_list(body, "tags", pattern=_TAG, max_len=32),
        "capabilities": lambda: v.text_list(body, "capabilities", pattern=_TAG, max_len=32),
        "in_service": lambda: v.boolean(body, "in_service"),
        "service_reason": lambda: v.text(body, "service_reason", max_len=255),
        "unreachable_policy": lambda: v.text(body, "unreachable_policy", max_len=8),
        "document_filter": lambda: v.text(body, "document_filter", max_len=16),
        "languages": lambda: v.text_list(body, "languages", max_len=16),
        "direct_mail": lambda: v.boolean(body, "direct_mail"),
    }
    for name, read in readers.items():
        value = read()
        if value is not None:
            fields[name] = value
    if fields.get("snmp_version", "2c") not in SNMP_VERSIONS:
        raise BadRequest("bad-field", "snmp_version must be 1, 2c or 3", field="snmp_version")
    if fields.get("unreachable_policy", "allow") not in UNREACHABLE_POLICIES:
        raise BadRequest("bad-field", "unreachable_policy must be allow or refuse", field="unreachable_policy")
    if fields.get("document_filter", "strip") not in DOCUMENT_FILTERS:
        raise BadRequest("bad-field", f"document_filter must be one of {', '.join(DOCUMENT_FILTERS)}",
                         field="document_filter")
    if "languages" in fields:
        if not fields["languages"] or not set(fields["languages"]) <= set(LANGUAGES):
            raise BadRequest("bad-field", f"languages: one or more of {', '.join(LANGUAGES)}", field="languages")
        fields["languages"] = [lang for lang in LANGUAGES if lang in fields["languages"]]
    return fields


_DEFAULTS: dict[str, Any] = {"snmp_host": "", "snmp_port": 161, "snmp_version": "2c", "snmp_community": "public",
                             "snmp_v3_user": "", "snmp_v3_auth_protocol": "", "snmp_v3_auth_key": "",
                             "snmp_v3_priv_protocol": "", "snmp_v3_priv_key": "", "site": "main", "location": "",
                             "building": "", "floor": "", "room": "", "tags": [], "capabilities": [],
                             "in_service": True, "service_reason": "", "unreachable_policy": "allow",
                             "document_filter": "strip", "languages": list(LANGUAGES), "direct_mail": False}


def _check_snmp_v3(printer: Printer) -> None:
    """The whole record, after a (partial) change, must describe a USM setup an agent can accept."""
    if printer.snmp_version == "3" and printer.snmp_host and not printer.snmp_v3_user:
        raise BadRequest("bad-field", "snmp_version 3 needs snmp_v3_user", field="snmp_v3_user")
    if printer.snmp_v3_priv_key and not printer.snmp_v3_auth_key:
        raise BadRequest("bad-field", "a privacy key needs an authentication key (SNMPv3 authPriv)",
                         field="snmp_v3_auth_key")


def upsert_printer(session: Session, fields: Mapping[str, Any], *, now: datetime) -> tuple[Printer, bool]:
    """Create a printer or change the fields given; returns (printer, created)."""
    printer = session.get(Printer, fields["id"])
    created = printer is None
    if printer is None:
        if "uri" not in fields:
            raise BadRequest("missing-field", "uri is required for a new printer", field="uri")
        printer = Printer(**{**_DEFAULTS, **fields, "created_at": now, "updated_at": now})
        _check_snmp_v3(printer)
        session.add(printer)
    else:
        for name, value in fields.items():
            setattr(printer, name, value)
        _check_snmp_v3(printer)
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


@dataclass
class PrinterQuery:
    """`GET /printers` filters; every one given must match, all case-insensitive."""

    keyword: str = ""  # a substring of the id, location text, building, room, or of a tag
    tags: list[str] = field(default_factory=list)
    capabilities: list[str] = field(default_factory=list)
    site: str = ""
    building: str = ""
    floor: str = ""

    def matches(self, printer: Printer) -> bool:
        tags = {t.lower() for t in printer.tags or []}
        capabilities = {c.lower() for c in printer.capabilities or []}
        if not {t.lower() for t in self.tags} <= tags:
            return False
        if not {c.lower() for c in self.capabilities} <= capabilities:
            return False
        for wanted, actual in ((self.building, printer.building), (self.floor, printer.floor)):
            if wanted and wanted.lower() != actual.lower():
                return False
        if self.keyword:
            word = self.keyword.lower()
            texts = (printer.id, printer.location, printer.building, printer.room, *tags)
            return any(word in text.lower() for text in texts)
        return True


def search_printers(session: Session, query: PrinterQuery) -> list[Printer]:
    """Printers matching `query`, by id. The site narrows in SQL; the rest (JSON lists, substrings
    across several columns) is matched here, which is cheap at the size of any print fleet."""
    statement = select(Printer).order_by(Printer.id)
    if query.site:
        statement = statement.where(func.lower(Printer.site) == query.site.lower())
    return [p for p in session.scalars(statement) if query.matches(p)]


def remove_printer(session: Session, printer_id: str, *, now: datetime) -> None:
    session.delete(get_printer(session, printer_id))
    record_event(session, "printer-remove", now=now, printer=printer_id)


def printer_to_dict(printer: Printer, *, secrets: bool = False) -> dict[str, Any]:
    """A PrinterDict; SNMPv3 keys only with `secrets` (for collectors), else masked as ``***``."""
    answer = {"id": printer.id, "uri": printer.uri, "snmp_host": printer.snmp_host, "snmp_port": printer.snmp_port,
              "snmp_version": printer.snmp_version, "snmp_community": printer.snmp_community,
              "site": printer.site, "location": printer.location, "tags": list(printer.tags or []),
              "in_service": printer.in_service, "unreachable_policy": printer.unreachable_policy,
              "building": printer.building, "floor": printer.floor, "room": printer.room,
              "capabilities": list(printer.capabilities or []), "service_reason": printer.service_reason,
              "snmp_v3_user": printer.snmp_v3_user, "snmp_v3_auth_protocol": printer.snmp_v3_auth_protocol,
              "snmp_v3_auth_key": printer.snmp_v3_auth_key, "snmp_v3_priv_protocol": printer.snmp_v3_priv_protocol,
              "snmp_v3_priv_key": printer.snmp_v3_priv_key, "status": printer.status,
              "document_filter": printer.document_filter or "strip",
              "languages": list(printer.languages or LANGUAGES), "direct_mail": bool(printer.direct_mail)}
    if not secrets:
        for name in SECRET_FIELDS:
            answer[name] = MASK if answer[name] else ""
    return answer


# --- status reported by the collectors' SNMP pollers ------------------------------------------------------

@dataclass
class StatusReport:
    """A validated `PUT /printers/<id>/status` body."""

    state: str
    reason: str = ""
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    polled_at: datetime | None = None
    collector: str = ""
    uptime: float | None = None
    supplies: list[dict[str, Any]] | None = None  # [{"description", "percent"}]; None: not read this time

    @classmethod
    def from_dict(cls, body: Mapping[str, Any]) -> StatusReport:
        state = v.required_text(body, "state", max_len=16)
        if state not in STATES:
            raise BadRequest("bad-field", f"state must be one of {', '.join(STATES)}", field="state")
        collector = v.text(body, "collector", default="", max_len=64) or ""
        return cls(state=state, reason=v.text(body, "reason", default="", max_len=255) or "",
                   warnings=v.text_list(body, "warnings", default=[], max_len=128) or [],
                   errors=v.text_list(body, "errors", default=[], max_len=128) or [],
                   polled_at=v.timestamp(body, "polled_at"),
                   collector=v.identifier(collector, "collector") if collector else "",
                   uptime=v.number(body, "uptime", minimum=0), supplies=_supplies(body))


def _supplies(body: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    value = body.get("supplies")
    if value is None:
        return None
    if not isinstance(value, list) or len(value) > 32 or not all(isinstance(s, dict) for s in value):
        raise BadRequest("bad-field", "supplies must be a list of at most 32 objects", field="supplies")
    return [{"description": v.text(s, "description", default="", max_len=128) or "",
             "percent": v.number(s, "percent", minimum=0, maximum=100)} for s in value]


def _condition(status: Mapping[str, Any] | None) -> tuple[Any, ...] | None:
    # What makes a status "different" for the event log; the order of warnings does not.
    if status is None:
        return None
    return (status.get("state"), status.get("reason"), sorted(status.get("warnings") or []),
            sorted(status.get("errors") or []))


def report_status(session: Session, printer_id: str, report: StatusReport, *, now: datetime) -> tuple[Printer, bool]:
    """Store a poller's reading as the printer's current status; returns (printer, changed).

    Logs `printer-status` only when state, reason, warnings or errors differ from the stored status,
    and `printer-rebooted` when the uptime went down. A reading older than the stored one (two
    collectors briefly polling the same printer) is ignored.
    """
    printer = get_printer(session, printer_id)
    previous = printer.status
    polled_at = min(report.polled_at or now, now)
    if previous is not None and previous.get("polled_at") and polled_at < datetime.fromisoformat(previous["polled_at"]):
        return printer, False
    status: dict[str, Any] = {"state": report.state, "reason": report.reason, "warnings": report.warnings,
              "errors": report.errors,
              "polled_at": v.iso(polled_at), "collector": report.collector, "uptime": report.uptime,
              "since": v.iso(now)}
    # Supplies are polled less often than the state: a reading without them keeps the last ones.
    supplies = report.supplies if report.supplies is not None else (previous or {}).get("supplies")
    if supplies is not None:
        status["supplies"] = supplies
    changed = _condition(status) != _condition(previous)
    if not changed and previous is not None:
        status["since"] = previous.get("since") or status["since"]
    collector = report.collector or None
    if changed:
        record_event(session, "printer-status", now=now, printer=printer.id, collector=collector,
                     detail={"state": report.state, "reason": report.reason, "warnings": report.warnings,
                             "errors": report.errors, "previous_state": previous["state"] if previous else None,
                             "polled_at": status["polled_at"]})
    previous_uptime = previous.get("uptime") if previous else None
    if report.uptime is not None and previous_uptime is not None and report.uptime < previous_uptime:
        record_event(session, "printer-rebooted", now=now, printer=printer.id, collector=collector,
                     detail={"uptime": report.uptime, "previous_uptime": previous_uptime,
                             "polled_at": status["polled_at"]})
    # A new dict, so the JSON column sees the change.
    printer.status = status
    session.flush()
    return printer, changed


def set_in_service(session: Session, printer_id: str, *, in_service: bool, reason: str,
                   now: datetime) -> Printer:
    """An operator takes a printer out of service or puts it back; logs `printer-service` on a change."""
    printer = get_printer(session, printer_id)
    # Back in service, the reason it was out no longer applies; the event keeps what the operator said.
    stored_reason = "" if in_service else reason
    if (printer.in_service, printer.service_reason) != (in_service, stored_reason):
        printer.in_service, printer.service_reason, printer.updated_at = in_service, stored_reason, now
        record_event(session, "printer-service", now=now, printer=printer.id,
                     detail={"in_service": in_service, "reason": reason})
    session.flush()
    return printer
