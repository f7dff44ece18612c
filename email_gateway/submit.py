"""Hand one part of a mail to the cluster: ``POST /api/v1/jobs`` through the load balancer, as a print server does.

The gateway is a submitting host with its own credential; the owner is not a name it asserts but
the sender's address (``X-Pullprint-Owner-Email``), which the collector has the analyst resolve
under its policy (serviced domains, auto-provisioning, denied users). A job is acknowledged (201)
only once it is durable on two collectors, so a mail is accepted (SMTP 250) only after all its
parts are. The idempotency key comes from the mail, so a mail the sending MTA delivers again
(after a 451, or a lost 250) holds each part once.
"""

from __future__ import annotations

import http.client
import json
import ssl
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from email_gateway.message import Part
from pullprint import log
from pullprint.wire import API, H_OWNER, H_OWNER_EMAIL, H_PRINT_AT, JobSubmission

# Answers that mean "the same mail will not do better later" (the sender is told why); all other
# failures are temporary: the SMTP answer is 451 and the sending MTA tries again.
_FINAL = {400, 403, 404, 409, 411, 413, 415}
# The option that ties the jobs of one mail together (never sent to a printer: not a print option).
JOB_GROUP = "pullprint-job-group"


@dataclass(frozen=True)
class Held:
    job_id: str
    pages: int | None
    release_code: str = ""  # a guest's job: the code that releases it (only in this answer)
    printed: str = ""       # sent to print_at's printer (printed, or queued there)
    not_printed: str = ""   # print_at's printer could not take it: why (the job is held)


class Refused(Exception):
    """The cluster refused the part for good: `code` (not-serviced, unknown-user, user-denied, quota-exceeded…)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


class TryLater(Exception):
    """The cluster could not take the part now (unreachable, too few copies, the analyst away)."""


class ClusterClient:
    def __init__(self, url: str, token: str, ca_file: str, *, timeout: float = 30.0,
                 retry_delays: tuple[float, ...] = (0.5, 2.0)) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError(f"mail.submit_url must be https://HOST:PORT, got {url!r}")
        self.scheme, self.host = parts.scheme, parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.path = f"{parts.path.rstrip('/')}{API}/jobs"
        self._token = token
        self.context = ssl.create_default_context(cafile=ca_file or None) if parts.scheme == "https" else None
        self.timeout = timeout
        self.retry_delays = retry_delays

    def __repr__(self) -> str:
        return f"ClusterClient({self.scheme}://{self.host}:{self.port})"

    def _post(self, headers: dict[str, str], data: bytes) -> tuple[int, dict[str, Any]]:
        if self.context is not None:
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout,
                                                                          context=self.context)
        else:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            conn.request("POST", self.path, body=data, headers=headers)
            response = conn.getresponse()
            body = response.read(64 * 1024)
        finally:
            conn.close()
        try:
            answer = json.loads(body) if body else {}
        except ValueError:
            answer = {}
        return response.status, answer if isinstance(answer, dict) else {}

    def submit(self, sender: str, part: Part, idempotency_key: str, *, print_at: str = "", group: str = "") -> Held:
        """Hold one part; `group` names the mail its parts came in (the jobs' ``pullprint-job-group`` option)."""
        headers = JobSubmission(owner="", title=part.title, content_type=part.content_type,
                                options={JOB_GROUP: group} if group else {},
                                idempotency_key=idempotency_key).to_headers()
        headers.pop(H_OWNER, None)
        headers.update({H_OWNER_EMAIL: sender, "Authorization": f"Bearer {self._token}",
                        "User-Agent": "pullprint-mail-gateway/1", "Content-Length": str(len(part.data)),
                        **log.outgoing_headers()})
        if print_at:
            headers[H_PRINT_AT] = print_at
        problem = ""
        for delay in (0.0, *self.retry_delays):
            time.sleep(delay)
            try:
                status, answer = self._post(headers, part.data)
            except (OSError, http.client.HTTPException) as exc:
                problem = f"the cluster is unreachable ({exc.__class__.__name__})"
                continue
            if status in (200, 201):
                pages = answer.get("pages")
                found = answer.get("printed")
                printed: dict[str, Any] = found if isinstance(found, dict) else {}
                went = printed.get("status") in ("printed", "queued")
                return Held(str(answer.get("id", "")), pages if isinstance(pages, int) else None,
                            str(answer.get("release_code") or ""),
                            printed=str(printed.get("printer", "")) if went else "",
                            not_printed=str(printed.get("message") or printed.get("status") or "")
                            if printed and not went else "")
            message = str(answer.get("message") or f"HTTP {status}")
            if status in _FINAL:
                raise Refused(str(answer.get("error") or f"http-{status}"), message)
            if status == 401:
                raise TryLater("this gateway's submit credential was refused (pullprint submitter add HOST)")
            problem = message
        raise TryLater(problem)
