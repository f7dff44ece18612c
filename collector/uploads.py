"""Web and phone upload: a user sends files with their own credential, each is held like an lp job.

``POST /api/v1/uploads`` (multipart/form-data) with ``Authorization: Basic user:PIN`` (the user's
name or email address, and their PIN; throttled per address and user exactly as terminal logins
are), fields ``file`` (one or more), ``copies``, ``sides`` and ``color``. Each file is a job through
the same intake as the CUPS backend's (durable on two collectors, registered or journalled, before
the answer); what it is comes from its bytes (PDF, PostScript, PCL and plain text print as they are;
images and office documents are rendered to PDF first, pullprint/render.py). Files are parsed in
memory, never written to disk in clear (but an office document, in the renderer's private folder
while it runs). ``GET /upload`` is the page a phone's browser shows; ``GET /api/v1/printers``
finds printers by keyword or tag for it. docs/email.md ("Upload").

A guest (where ``guest_uploads`` is on) sends ``X-Pullprint-Guest: ADDRESS`` instead of credentials:
an address outside the serviced domains, each document held for that guest with a release code of
its own that is mailed to the address (never shown on the page: only the mailbox's owner prints
it), a bounded number of uploads per address and per client address.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import logging
import re
from typing import IO, Any

from flask import Blueprint, Response, jsonify, render_template, request
from werkzeug.formparser import parse_form_data

from collector import intake
from collector.station import STATION_HEADERS
from collector.throttle import limits_of
from collector.web import login_throttle, node
from email_gateway.reply import Outcome, Replier
from nodeserver import peer
from pullprint import keys
from pullprint.documents import KINDS
from pullprint.errors import BadRequest, Forbidden, TooLarge, TooManyRequests, Unauthorized, Unavailable
from pullprint.render import RenderError, printable
from pullprint.wire import H_OWNER, H_OWNER_EMAIL, MAX_COPIES, JobSubmission

bp = Blueprint("uploads", __name__)
log = logging.getLogger(__name__)
H_GUEST = "X-Pullprint-Guest"
_ADDRESS = re.compile(r"[^@\s\x00-\x1f<>]{1,64}@[A-Za-z0-9.-]{1,189}\.[A-Za-z]{2,63}")
GUEST_HINT = "At any pullprint printer, choose \"A release code from a mail?\" and type the code of the document."

UPLOAD_HOST = "web-upload"  # the origin_host of uploaded jobs
MAX_FILES = 10
SIDES = {"one-sided": "one-sided", "two-sided": "two-sided-long-edge"}
COLORS = {"monochrome": "monochrome", "color": "color"}
CREDENTIALS = ("bad-credentials", "user name (or email) or PIN not recognised")


@bp.after_request
def _page_headers(response: Response) -> Response:
    if request.path == "/upload":
        for name, value in STATION_HEADERS.items():
            response.headers.setdefault(name, value)
    return response


@bp.get("/upload")
def page() -> str:
    return render_template("upload.html", max_files=MAX_FILES, max_copies=MAX_COPIES,
                           kinds=", ".join(KINDS.values()), guests=node().config.guest_uploads)


def _basic_credentials() -> tuple[str, str]:
    scheme, _, encoded = (request.headers.get("Authorization") or "").partition(" ")
    if scheme.lower() != "basic" or not encoded:
        raise Unauthorized("credentials-required", "send your user name (or email) and PIN (HTTP Basic)")
    try:
        user, sep, pin = base64.b64decode(encoded, validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise Unauthorized(*CREDENTIALS) from None
    if not sep or not user.strip() or not pin or len(user) > 254 or len(pin) > 64:
        raise Unauthorized(*CREDENTIALS)
    return user.strip(), pin


def _authenticate(user: str, pin: str) -> str:
    """The user name these credentials are, throttled like a terminal's PIN login (same counters)."""
    n = node()
    throttle = login_throttle()
    address = peer.client_address()
    name = user
    if "@" in user:  # an address: whose it is (not a guest: an upload needs an account)
        sender = n.analyst.sender(user)
        if sender.get("guest"):
            raise Unauthorized(*CREDENTIALS)
        name = str(sender["user"])
    attempt = throttle.admit(limits_of(n.config).subjects(terminal=None, address=address, user=name))
    try:
        who = n.directory.authenticate({"user": name, "pin": pin}, printer="", collector=n.id, source=address)
    except Unauthorized:
        throttle.failed(attempt)
        raise Unauthorized(*CREDENTIALS) from None
    except BaseException:
        throttle.abandoned(attempt)
        raise
    throttle.succeeded(attempt)
    return who.user


def _guest() -> str:
    """The guest's address of an upload without an account ("" when it has credentials instead), admitted
    by the site's policy and within the guests' limits; refused otherwise, before the body is read."""
    address = (request.headers.get(H_GUEST) or "").strip().lower()
    if not address:
        return ""
    n = node()
    if not n.config.guest_uploads:
        raise Forbidden("guest-uploads-off", "this site takes uploads from its own users only: log in with your "
                        "user name (or email) and PIN")
    if len(address) > 254 or not _ADDRESS.fullmatch(address):
        raise BadRequest("bad-field", "not an email address", field="guest")
    client = peer.client_address()
    for subject in (f"e:{hashlib.sha256(address.encode()).hexdigest()}", f"a:{client}"):
        name = keys.guest_uploads(subject)
        try:
            pipe = n.redis.pipeline(transaction=True)
            pipe.incr(name)
            pipe.expire(name, int(n.config.guest_window_seconds), nx=True)
            pipe.ttl(name)
            count, _, ttl = pipe.execute()
        except Exception:  # noqa: BLE001 - without the count, no guest upload (it sends mail)
            raise Unavailable("guest-limit-unavailable", "guests' uploads cannot be taken now; try again later") \
                from None
        if int(count) > n.config.guest_uploads_per_window:
            wait = max(int(ttl), 1)
            raise TooManyRequests("too-many-uploads", f"too many uploads from a guest; try again in {wait} s",
                                  retry_after=wait)
    sender = n.analyst.sender(address)  # 403 not-serviced when the analyst's guest_printing is off
    if not sender.get("guest"):
        raise Unauthorized("account-required", "this address has an account here: log in with it (or your user "
                           "name) and your PIN")
    return address


def _mail_codes(address: str, held: list[tuple[str, int | None, str]]) -> None:
    """Each held document's release code, to the guest's address (the only place a code goes)."""
    cfg = node().config
    Replier(cfg.mail_relay, cfg.mail_from, GUEST_HINT, 0.0).send_later(
        Outcome(address, "your upload", "", held=held))


def _options(form: Any) -> tuple[int, dict[str, str]]:
    try:
        copies = int(form.get("copies") or 1)
    except ValueError:
        raise BadRequest("bad-field", "copies must be a number", field="copies") from None
    if not 1 <= copies <= MAX_COPIES:
        raise BadRequest("bad-field", f"copies must be 1-{MAX_COPIES}", field="copies")
    sides, color = form.get("sides") or "one-sided", form.get("color") or "monochrome"
    if sides not in SIDES or color not in COLORS:
        raise BadRequest("bad-field", f"sides is one of {', '.join(SIDES)}; color one of {', '.join(COLORS)}")
    return copies, {"sides": SIDES[sides], "print-color-mode": COLORS[color]}


def _in_memory(total_content_length: int | None, content_type: str | None, filename: str | None,
               content_length: int | None = None) -> IO[bytes]:
    return io.BytesIO()  # never a temporary file: the only copy at rest is the sealed spool's


@bp.post("/api/v1/uploads")
def upload() -> tuple[Response, int]:
    n = node()
    limit = n.config.max_job_bytes
    if request.content_length is None:
        raise BadRequest("length-required", "send the upload with a Content-Length")
    if request.content_length > limit:
        raise TooLarge("body-too-large", f"an upload may be at most {limit} bytes", limit=limit)
    guest = _guest()
    user = "" if guest else _authenticate(*_basic_credentials())
    _, form, files = parse_form_data(request.environ, stream_factory=_in_memory, max_content_length=limit,
                                     max_form_parts=MAX_FILES + 8)
    copies, options = _options(form)
    uploaded = files.getlist("file")
    if not uploaded:
        raise BadRequest("missing-file", "choose at least one file")
    if len(uploaded) > MAX_FILES:
        raise BadRequest("too-many-files", f"at most {MAX_FILES} files at once", limit=MAX_FILES)
    key = (request.headers.get("Idempotency-Key") or "").strip()
    held: list[dict[str, Any]] = []
    refused: list[dict[str, str]] = []
    codes: list[tuple[str, int | None, str]] = []
    for index, item in enumerate(uploaded, 1):
        title = (item.filename or f"upload {index}").replace("\\", "/").rsplit("/", 1)[-1][:255] or f"upload {index}"
        try:
            data, kind = printable(item.stream.read(), title, item.mimetype or "")
        except RenderError as exc:
            refused.append({"title": title, "reason": exc.reason})
            continue
        headers = JobSubmission(owner=user, title=title, copies=copies, options=options, content_type=kind,
                                idempotency_key=f"{key}-{index}" if key else "").to_headers()
        if guest:  # the owner is the guest the analyst names for the address
            headers.pop(H_OWNER, None)
            headers[H_OWNER_EMAIL] = guest
        job, created = intake.submit(n, headers, iter([data]), submitter=UPLOAD_HOST)
        held.append({"id": job["id"], "title": title, "pages": job.get("pages"), "copies": copies})
        if guest and created and job.get("release_code"):
            codes.append((title, job.get("pages"), str(job["release_code"])))
    if codes:
        _mail_codes(guest, codes)
        log.info("guest upload: %d document(s) held, their codes mailed", len(codes))
    answer: dict[str, Any] = {"user": user, "held": held, "refused": refused}
    if guest:
        answer = {"guest": guest, "held": held, "refused": refused, "codes_sent_to": guest}
    return jsonify(answer), 201 if held else 422


@bp.get("/api/v1/printers")
def find_printers() -> Response:
    """Printers for people (HP's printer search): every word of `q` in the id, location, building, room or
    tags, and every `tag` given; in service only. From the synced directory (no analyst call)."""
    words = [w.lower() for w in (request.args.get("q") or "").split()[:8] if len(w) <= 64]
    tags = {t.lower() for t in request.args.getlist("tag")[:8] if len(t) <= 32}
    found = []
    for printer in node().directory.printers():
        if not printer.get("in_service", True):
            continue
        own_tags = {str(t).lower() for t in printer.get("tags") or []}
        text = " ".join(str(printer.get(k) or "") for k in ("id", "location", "building", "floor", "room"))
        text = f"{text} {' '.join(own_tags)}".lower()
        if all(w in text for w in words) and tags <= own_tags:
            found.append({k: printer.get(k, "") for k in ("id", "location", "building", "floor", "room")}
                         | {"tags": sorted(own_tags), "capabilities": list(printer.get("capabilities") or [])})
    return jsonify({"printers": sorted(found, key=lambda p: p["id"])[:50]})
