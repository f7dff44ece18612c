"""A bare IPP client for tests: one Print-Job with the requesting-user-name and credentials a test chooses.

CUPS' own clients (lp, pycups) send the user they authenticate as as requesting-user-name too, so a
client that claims to be someone else needs a request built by hand. Run as a script (``python
ipp_submit.py URL USER FILE [--auth NAME:PASSWORD]``, used inside a network namespace) it prints
``{"http": status, "ipp": status, "job_id": id}`` as JSON.

The encoding is RFC 8010's: version, operation, request id, the operation attributes group
(tag, name length, name, value length, value), end-of-attributes, then the document.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import ssl
import struct
import sys
from urllib.parse import urlsplit

PRINT_JOB = 0x0002
_CHARSET, _LANGUAGE, _URI, _NAME, _MIME, _INTEGER = 0x47, 0x48, 0x45, 0x42, 0x49, 0x21


def _attribute(tag: int, name: str, value: str) -> bytes:
    raw_name, raw_value = name.encode(), value.encode()
    return struct.pack(">BH", tag, len(raw_name)) + raw_name + struct.pack(">H", len(raw_value)) + raw_value


def print_job_request(printer_uri: str, user: str, title: str, document_format: str = "application/octet-stream",
                      request_id: int = 1) -> bytes:
    return (struct.pack(">BBHI", 2, 0, PRINT_JOB, request_id) + b"\x01"
            + _attribute(_CHARSET, "attributes-charset", "utf-8")
            + _attribute(_LANGUAGE, "attributes-natural-language", "en")
            + _attribute(_URI, "printer-uri", printer_uri)
            + _attribute(_NAME, "requesting-user-name", user)
            + _attribute(_NAME, "job-name", title)
            + _attribute(_MIME, "document-format", document_format)
            + b"\x03")


def _job_id(answer: bytes) -> int | None:
    """job-id from a Print-Job answer, walking its attributes."""
    at = 8
    while at < len(answer):
        tag = answer[at]
        at += 1
        if tag == 0x03:
            return None
        if tag < 0x10:  # a group delimiter
            continue
        (name_len,) = struct.unpack(">H", answer[at:at + 2])
        name = answer[at + 2:at + 2 + name_len]
        at += 2 + name_len
        (value_len,) = struct.unpack(">H", answer[at:at + 2])
        value = answer[at + 2:at + 2 + value_len]
        at += 2 + value_len
        if name == b"job-id" and tag == _INTEGER:
            return int(struct.unpack(">i", value)[0])
    return None


def print_job(url: str, user: str, document: bytes, *, title: str = "ipp-test", auth: tuple[str, str] | None = None,
              timeout: float = 30.0) -> dict[str, int | None]:
    """Send one Print-Job to `url` (``ipp://`` plain, ``ipps://`` TLS, e.g. ``ipps://host:631/printers/Q``).

    The server's certificate is not checked (cupsd makes itself a self-signed one); the point is
    that the password never crosses the network in clear.
    """
    parts = urlsplit(url)
    port = parts.port or 631
    if parts.scheme == "ipps":
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(parts.hostname or "", port, timeout=timeout,
                                                                       context=context)
    else:
        conn = http.client.HTTPConnection(parts.hostname or "", port, timeout=timeout)
    printer_uri = f"ipp://{parts.hostname}:{port}{parts.path}"
    headers = {"Content-Type": "application/ipp"}
    if auth:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    body = print_job_request(printer_uri, user, title) + document
    try:
        conn.request("POST", parts.path, body=body, headers=headers)
        response = conn.getresponse()
        answer = response.read()
    finally:
        conn.close()
    ipp_status = struct.unpack(">H", answer[2:4])[0] if response.status == 200 and len(answer) >= 8 else None
    return {"http": response.status, "ipp": ipp_status,
            "job_id": _job_id(answer) if ipp_status is not None and ipp_status < 0x0400 else None}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("user", help="the requesting-user-name to claim")
    parser.add_argument("file")
    parser.add_argument("--auth", help="NAME:PASSWORD for HTTP Basic")
    parser.add_argument("--title", default="ipp-test")
    args = parser.parse_args(argv)
    auth = tuple(args.auth.split(":", 1)) if args.auth else None
    with open(args.file, "rb") as handle:
        document = handle.read()
    print(json.dumps(print_job(args.url, args.user, document, title=args.title, auth=auth)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
