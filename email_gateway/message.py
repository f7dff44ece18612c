"""A mail, as the parts pullprint can hold: each attachment, or the text body when there is none.

Each part keeps the type its sender declared; what it *is*, and whether it prints as it is or is
rendered first, `pullprint.render.printable` decides from its bytes (a PDF sent as
application/octet-stream is a PDF; an "application/pdf" that is a ZIP is not). Nothing is
decompressed here, so there is no zip bomb to defuse: a part is at most as large as the mail,
which SMTP already capped.
"""

from __future__ import annotations

import email.policy
import re
from dataclasses import dataclass
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import getaddresses

_TITLE_CHARS = re.compile(r"[\x00-\x1f\x7f]+")


@dataclass(frozen=True)
class Part:
    title: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class Refusal:
    title: str
    reason: str


@dataclass(frozen=True)
class Mail:
    sender: str               # the From header's address, lower case ("" when there is not exactly one)
    message_id: str
    subject: str
    parts: list[Part]
    refused: list[Refusal]


class BadMail(Exception):
    """A mail that cannot be read at all (the SMTP answer is a 550 with this text)."""


def _title(name: str | None, fallback: str) -> str:
    title = _TITLE_CHARS.sub(" ", name or "").strip()[:255]
    return title or fallback


def _attachments(message: EmailMessage) -> list[Message]:
    found: list[Message] = []
    for part in message.walk():
        if part.is_multipart():
            continue
        disposition = (part.get_content_disposition() or "").lower()
        if disposition == "attachment" or (part.get_filename() and disposition != "inline"):
            found.append(part)
    return found


def parse(raw: bytes, *, max_parts: int) -> Mail:
    """The parts of the mail `raw` (its bytes as received); BadMail when it has no usable From."""
    try:
        message = BytesParser(policy=email.policy.default).parsebytes(raw)
        assert isinstance(message, EmailMessage)
        senders = [addr for _, addr in getaddresses([str(v) for v in message.get_all("From", [])])
                   if "@" in addr.strip("@")]
        subject = _title(str(message.get("Subject", "")), "mail")
        message_id = str(message.get("Message-ID", "")).strip()[:255]
    except Exception as exc:  # the parser of the standard library raises many kinds on hostile headers
        raise BadMail(f"the mail's headers cannot be read ({exc.__class__.__name__})") from None
    if len(senders) != 1:
        raise BadMail("the mail must have exactly one From address")
    parts: list[Part] = []
    refused: list[Refusal] = []
    try:
        attachments = _attachments(message)
        if attachments:
            for index, attachment in enumerate(attachments, 1):
                title = _title(attachment.get_filename(), f"{subject} (attachment {index})")
                if len(parts) >= max_parts:
                    refused.append(Refusal(title, f"a mail may carry at most {max_parts} documents"))
                    continue
                payload = attachment.get_payload(decode=True)
                data = payload if isinstance(payload, bytes) else b""
                if not data:
                    refused.append(Refusal(title, "the attachment is empty"))
                else:  # what it is, and whether it prints or renders, is decided from its bytes (render.printable)
                    parts.append(Part(title, attachment.get_content_type(), data))
        else:
            body = message.get_body(preferencelist=("plain",))
            text = body.get_content() if body is not None else ""
            if isinstance(text, str) and text.strip():
                # CR LF line ends, whatever the mail had: a printer given bare LFs staircases the text.
                parts.append(Part(subject, "text/plain", ("\r\n".join(text.splitlines()) + "\r\n").encode()))
            else:
                refused.append(Refusal(subject, "the mail has no attachment and no plain-text body to print"))
    except Exception as exc:
        raise BadMail(f"the mail's parts cannot be read ({exc.__class__.__name__})") from None
    return Mail(senders[0].strip().lower(), message_id, subject, parts, refused)
