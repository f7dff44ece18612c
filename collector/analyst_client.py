"""The collector's calls to the analyst (docs/api.md), each with a tight timeout, and the heartbeat's probe of it."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import quote

from collector.redis_client import optional
from collector.state_mac import StateMac
from nodeserver.client import NodeClient, Unreachable
from pullprint import keys
from pullprint.errors import Forbidden, Locked, PullprintError, TooManyRequests, Unauthorized
from pullprint.pki import pool_dns
from pullprint.tls import TlsFiles
from pullprint.wire import JobSubmission

# Any analyst of the pool: every analyst certificate carries this name beside its own.
ANALYST = pool_dns("analyst")


# The analyst's refusals of a login or an enrollment, as the errors the collector's callers catch.
_REFUSALS: dict[int, type[PullprintError]] = {401: Unauthorized, 403: Forbidden, 423: Locked, 429: TooManyRequests}


class AnalystUnavailable(Unreachable):
    """The analyst did not answer in time, refused the connection, answered 5xx, or is known to be down."""


class _Breaker:
    """Skips the analyst while it is known to be down, instead of waiting for a timeout on every call.

    Known down = this process saw a call fail in the last `cooldown` seconds, or the site's
    housekeeping (which probes the analyst every second) flagged it in Redis.
    """

    def __init__(self, redis: Any, site: str, cooldown: float, seals: StateMac | None = None) -> None:
        self.redis = redis
        self.seals = seals
        self.key = keys.analyst_down(site)
        self.cooldown = cooldown
        self._down_until = 0.0
        self._flag_checked_at = 0.0
        self._flag = False

    def is_open(self) -> bool:
        now = time.monotonic()
        if now < self._down_until:
            return True
        if self.redis is None or self.seals is None:
            return False  # no Redis, or no way to tell a collector's flag from a planted one
        if now - self._flag_checked_at > 0.25:
            self._flag_checked_at = now
            # Redis away or slow: rely on this process's own view.
            self._flag = self.seals.valid(self.key, optional("analyst-down flag", lambda: self.redis.get(self.key)))
        return self._flag

    def tripped(self) -> None:
        self._down_until = time.monotonic() + self.cooldown

    def reset(self) -> None:
        self._down_until = 0.0
        self._flag = False


class AnalystClient:
    def __init__(self, base_url: str, tls: TlsFiles | None, timeout: float, *, redis: Any = None,
                 site: str = "main", cooldown: float = 2.0, seals: StateMac | None = None) -> None:
        self.root = base_url.rstrip("/")
        self.base = self.root + "/api/v1"
        self.http = NodeClient(tls, timeout, AnalystUnavailable)
        self.breaker = _Breaker(redis, site, cooldown, seals)

    def _request(self, method: str, url: str, *, bypass_breaker: bool = False, **kwargs: Any) -> Any:
        if not bypass_breaker and self.breaker.is_open():
            error = AnalystUnavailable("analyst-unreachable", "the analyst is known to be unreachable")
            error.maybe_acted = False  # not sent at all
            raise error
        try:
            return self.http.request(method, url, identity=ANALYST, **kwargs)
        except AnalystUnavailable as exc:
            # Only a refused or unanswered connection opens the breaker here; a slow answer under
            # load does not. A hung analyst is found by the housekeeping probe (two misses).
            if not exc.maybe_acted:
                self.breaker.tripped()
            raise

    def _call(self, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
        return dict(self._request(method, url, **kwargs).json())

    def probe(self, collector: str, url: str, site: str,
              report: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """A heartbeat that ignores the breaker: how the site finds out the analyst is back. `report`: what
        the operators' console shows of this node (version, spool and journal depth)."""
        body = self.http.json("POST", f"{self.base}/collectors/{quote(collector, safe='')}/heartbeat",
                              identity=ANALYST, json={"url": url, "site": site, **(report or {})})
        self.breaker.reset()
        return list(body.get("collectors", []))

    def register_job(self, job: JobSubmission, *, offline_at: str | None = None) -> tuple[dict[str, Any], bool]:
        """Register a job (its metadata record); `offline_at`: replayed from the journal, accepted then."""
        # Always tried, breaker or not: a submission can wait a second, and every registration
        # that reaches the analyst is one fewer to replay (and to keep safe) later.
        body: dict[str, Any] = job.to_json()
        if offline_at:
            body.update(offline=True, at=offline_at)
        answer = self._call("POST", f"{self.base}/jobs", json=body, bypass_breaker=True)
        return answer["job"], bool(answer.get("created", True))

    def job(self, job_id: str) -> dict[str, Any]:
        return self._call("GET", f"{self.base}/jobs/{quote(job_id, safe='')}")["job"]

    def lookup(self, job_ids: list[str]) -> dict[str, dict[str, Any]]:
        """The analyst's record of each job it knows among `job_ids` (at most 1000 per call)."""
        return dict(self._call("POST", f"{self.base}/jobs/lookup", json={"ids": job_ids})["jobs"])

    def jobs(self, **filters: str) -> Iterator[dict[str, Any]]:
        """Every job matching `filters`, oldest first: a page (`limit`, default 1000) per call, each
        asked for as the one before is used up (an analyst without paging gives one page)."""
        params = dict(filters)
        while True:
            answer = self._call("GET", f"{self.base}/jobs", params=params)
            yield from answer["jobs"]
            if not answer.get("next"):
                return
            params["after"] = str(answer["next"])

    def user_jobs(self, user: str, limit: int | None = None) -> tuple[list[dict[str, Any]], int]:
        """The user's open jobs, oldest first (at most `limit`), and how many there are in all."""
        query = f"?limit={limit}" if limit else ""
        answer = self._call("GET", f"{self.base}/users/{quote(user, safe='')}/jobs{query}")
        return list(answer["jobs"]), int(answer.get("total", len(answer["jobs"])))

    def claim(self, job_id: str, *, collector: str, printer: str, user: str, lease_seconds: int,
              offline_at: str | None = None, confirm_interrupted: bool = False) -> tuple[dict[str, Any], int]:
        body: dict[str, Any] = {"collector": collector, "printer": printer, "user": user,
                                "lease_seconds": lease_seconds, "confirm_interrupted": confirm_interrupted}
        if offline_at:
            body.update(offline=True, at=offline_at)
        answer = self._call("POST", f"{self.base}/jobs/{quote(job_id, safe='')}/claim", json=body)
        return answer["job"], int(answer["token"])

    def renew(self, job_id: str, *, token: int, lease_seconds: float) -> dict[str, Any]:
        """Extend the claim `token`'s lease; a Conflict (stale-token) means someone has claimed it since."""
        return self._call("POST", f"{self.base}/jobs/{quote(job_id, safe='')}/renew",
                          json={"token": token, "lease_seconds": lease_seconds})["job"]

    def finish(self, job_id: str, *, token: int, state: str, reason: str = "", printer: str = "",
               collector: str = "", pages: int | None = None, copies: int | None = None,
               offline_at: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"token": token, "state": state, "reason": reason, "printer": printer,
                                "collector": collector, "pages": pages, "copies": copies}
        if offline_at:
            body.update(offline=True, at=offline_at)
        return self._call("POST", f"{self.base}/jobs/{quote(job_id, safe='')}/finish", json=body)["job"]

    def delete_job(self, job_id: str, *, user: str | None = None, reason: str = "") -> dict[str, Any]:
        return self._call("DELETE", f"{self.base}/jobs/{quote(job_id, safe='')}",
                          json={"user": user, "reason": reason})["job"]

    def add_location(self, job_id: str, collector: str) -> None:
        self._request("PUT", f"{self.base}/jobs/{quote(job_id, safe='')}/locations/{quote(collector, safe='')}")

    def remove_location(self, job_id: str, collector: str) -> None:
        self._request("DELETE", f"{self.base}/jobs/{quote(job_id, safe='')}/locations/{quote(collector, safe='')}",
                          ok=(200, 404))

    def _decision(self, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
        """`_call` for the analyst's decisions a terminal is told: its refusals come back as what they
        are (NodeClient raises a plain PullprintError for any 4xx): 401 Unauthorized, 403 Forbidden,
        423 Locked and 429 TooManyRequests, with their details (`retry_after`)."""
        try:
            return self._call(method, url, **kwargs)
        except AnalystUnavailable:
            raise
        except PullprintError as exc:
            kind = _REFUSALS.get(exc.status)
            if kind is None:
                raise
            refusal = kind(exc.code, exc.message)
            refusal.details = dict(exc.details)  # retry_after and the like, as the analyst said them
            raise refusal from None

    def auth(self, credentials: dict[str, str], *, printer: str, collector: str, terminal: str = "",
             source: str = "", jobs_limit: int | None = None,
             ) -> tuple[str, str, tuple[list[dict[str, Any]], int] | None]:
        """(user, job, listing) the credentials name: job "" but for a guest's release code (the one
        job it releases); with a `jobs_limit`, listing is the user's open jobs as
        `user_jobs(user, jobs_limit)` gives them (0: all), asked for in the same call (None: not
        asked, or an analyst that does not list at login). The analyst throttles by `terminal`,
        `source` and user, and refuses a terminal revoked since this collector's last sync (403)."""
        body: dict[str, Any] = {**credentials, "printer": printer, "collector": collector, "terminal": terminal,
                                "source": source}
        if jobs_limit is not None:
            body["jobs_limit"] = jobs_limit or None
        body = self._decision("POST", f"{self.base}/auth", json=body)
        listing = None
        if isinstance(body.get("jobs"), list):
            listing = list(body["jobs"]), int(body.get("total", len(body["jobs"])))
        return str(body["user"]), str(body.get("job") or ""), listing

    def sender(self, email: str) -> dict[str, Any]:
        """Whose a sender's address is, ``{"user", "email", "provisioned", "guest"}`` (the analyst's policy:
        serviced domains, auto-provisioning, guests, denied users); its refusals (403 not-serviced,
        unknown-user, user-denied) come back as they are."""
        return self._decision("POST", f"{self.base}/identities/email", json={"email": email})

    def credential(self, section: str, token_hash: str) -> dict[str, Any] | None:
        """The active terminal (`section` "terminals": ``{"id", "printer", ...}``) or submitting host
        ("submitters": ``{"host", ...}``) whose token has this digest; None: no such one."""
        try:
            answer = self._call("POST", f"{self.base}/{section}/lookup", json={"token_hash": token_hash})
        except AnalystUnavailable:
            raise
        except PullprintError as exc:
            if exc.status == 404:
                return None
            raise
        return dict(answer[section.removesuffix("s")])

    def redeem_enrollment(self, code: str) -> dict[str, Any]:
        """Trade a one-time enrollment code for a terminal's credential: ``{"terminal": {...}, "token"}``;
        a code that is unknown, used or expired is a 403."""
        return self._decision("POST", f"{self.base}/terminals/enroll", json={"code": code})

    def printer(self, printer_id: str) -> dict[str, Any]:
        return self._call("GET", f"{self.base}/printers/{quote(printer_id, safe='')}")["printer"]

    def printer_status(self, printer_id: str, status: dict[str, Any]) -> None:
        self._request("PUT", f"{self.base}/printers/{quote(printer_id, safe='')}/status", json=status)

    def crl(self) -> bytes:
        """The cluster CA's revocation list as the analyst has it (PEM; check it with pki.take_crl)."""
        return bytes(self._request("GET", f"{self.root}/pki/crl", bypass_breaker=True).content)

    def sync(self) -> dict[str, Any]:
        return self._call("GET", f"{self.base}/sync")

    def expire(self) -> list[dict[str, Any]]:
        return list(self._call("POST", f"{self.base}/maintenance/expire")["expired"])


class AnalystProbe:
    """The heartbeat's call to the analyst, once a beat, and the site's analyst-down flag it keeps in Redis.

    Two misses in a row, not one slow answer, set the flag (`keys.analyst_down`, which every
    collector's breaker reads), so the whole site stops waiting for the analyst; an answer clears it.
    """

    def __init__(self, client: AnalystClient, redis: Any, collector: str, url: str, site: str,
                 heartbeat_seconds: float, report: Callable[[], Mapping[str, Any]] | None = None) -> None:
        self.client = client
        self.report = report
        self.redis = redis
        self.collector, self.url, self.site = collector, url, site
        self.heartbeat_seconds = heartbeat_seconds
        self.away = False   # the last beat did not reach the analyst
        self.back = False   # the last beat reached it after it had been away
        self.misses = 0

    def _report(self) -> Mapping[str, Any] | None:
        try:
            return self.report() if self.report else None
        except Exception:  # noqa: BLE001 - a spool that cannot be counted must not stop the heartbeat
            return None

    def beat(self) -> list[dict[str, Any]] | None:
        """Heartbeat the analyst: its list of collectors, or None when it did not answer."""
        down_key = keys.analyst_down(self.site)
        try:
            collectors = self.client.probe(self.collector, self.url, self.site, self._report())
        except PullprintError:  # AnalystUnavailable, or an error answer
            self.away, self.back = True, False
            self.misses += 1
            if self.misses >= 2:
                seals, ttl = self.client.breaker.seals, self.heartbeat_seconds * 3
                if seals is not None:
                    with contextlib.suppress(Exception):
                        self.redis.set(down_key, seals.seal(down_key, self.collector, ttl_seconds=ttl),
                                       px=int(ttl * 1000))
            return None
        self.back, self.away, self.misses = self.away, False, 0
        with contextlib.suppress(Exception):
            self.redis.delete(down_key)
        return collectors
