"""AnalystClient: the collector's calls to the central registry (docs/api.md), each with a tight timeout."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from collector.http import NodeClient, NodeUnreachable

AnalystUnavailable = NodeUnreachable


class AnalystClient:
    def __init__(self, base_url: str, cluster_token: str, timeout: float) -> None:
        self.base = base_url.rstrip("/") + "/api/v1"
        self.http = NodeClient(cluster_token, timeout)

    def register_job(self, job: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        body = self.http.json("POST", f"{self.base}/jobs", json=job)
        return body["job"], bool(body.get("created", True))

    def job(self, job_id: str) -> dict[str, Any]:
        return self.http.json("GET", f"{self.base}/jobs/{job_id}")["job"]

    def jobs(self, **filters: str) -> list[dict[str, Any]]:
        return list(self.http.json("GET", f"{self.base}/jobs", params=filters)["jobs"])

    def user_jobs(self, user: str) -> list[dict[str, Any]]:
        return list(self.http.json("GET", f"{self.base}/users/{quote(user, safe='')}/jobs")["jobs"])

    def claim(self, job_id: str, *, collector: str, printer: str, user: str, lease_seconds: int
              ) -> tuple[dict[str, Any], int]:
        body = self.http.json("POST", f"{self.base}/jobs/{job_id}/claim",
                              json={"collector": collector, "printer": printer, "user": user,
                                    "lease_seconds": lease_seconds})
        return body["job"], int(body["token"])

    def finish(self, job_id: str, *, token: int, state: str, reason: str = "", printer: str = "",
               collector: str = "", pages: int | None = None, copies: int | None = None) -> dict[str, Any]:
        body = {"token": token, "state": state, "reason": reason, "printer": printer, "collector": collector,
                "pages": pages, "copies": copies}
        return self.http.json("POST", f"{self.base}/jobs/{job_id}/finish", json=body)["job"]

    def delete_job(self, job_id: str, *, user: str | None = None, reason: str = "") -> dict[str, Any]:
        return self.http.json("DELETE", f"{self.base}/jobs/{job_id}", json={"user": user, "reason": reason})["job"]

    def add_location(self, job_id: str, collector: str) -> None:
        self.http.request("PUT", f"{self.base}/jobs/{job_id}/locations/{quote(collector, safe='')}")

    def remove_location(self, job_id: str, collector: str) -> None:
        self.http.request("DELETE", f"{self.base}/jobs/{job_id}/locations/{quote(collector, safe='')}",
                          ok=(200, 404))

    def auth(self, credentials: dict[str, str], *, printer: str, collector: str) -> str:
        body = self.http.json("POST", f"{self.base}/auth",
                              json={**credentials, "printer": printer, "collector": collector})
        return str(body["user"])

    def heartbeat(self, collector: str, url: str, site: str) -> list[dict[str, Any]]:
        body = self.http.json("POST", f"{self.base}/collectors/{quote(collector, safe='')}/heartbeat",
                              json={"url": url, "site": site})
        return list(body.get("collectors", []))

    def printer(self, printer_id: str) -> dict[str, Any]:
        return self.http.json("GET", f"{self.base}/printers/{quote(printer_id, safe='')}")["printer"]

    def sync(self) -> dict[str, Any]:
        return self.http.json("GET", f"{self.base}/sync")

    def expire(self) -> list[dict[str, Any]]:
        return list(self.http.json("POST", f"{self.base}/maintenance/expire")["expired"])
