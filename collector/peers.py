"""PeerClient: the calls one collector makes to another (store a replica, fetch, direct print, delete)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any, BinaryIO
from urllib.parse import quote

from collector.outbound import NodeClient, Unreachable

META_HEADER = "X-Pullprint-Meta"
INTERNAL = "/internal/v1"


class PeerUnreachable(Unreachable):
    """Another collector did not answer in time, refused the connection, or answered 5xx."""


def encode_meta(meta: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(meta).encode()).decode()


def decode_meta(value: str) -> dict[str, Any]:
    return dict(json.loads(base64.urlsafe_b64decode(value.encode())))


class PeerClient:
    def __init__(self, cluster_token: str, timeout: float, transfer_timeout: float = 120.0) -> None:
        self.http = NodeClient(cluster_token, timeout, PeerUnreachable)
        # Transfers connect fast or fail fast, but may then stream for a while.
        self._transfer = (timeout, transfer_timeout)

    def store_replica(self, peer_url: str, job_id: str, meta: dict[str, Any], sealed: BinaryIO) -> None:
        self.http.request("PUT", f"{peer_url}{INTERNAL}/replicas/{quote(job_id, safe='')}", data=sealed,
                          headers={META_HEADER: encode_meta(meta), "Content-Type": "application/octet-stream"},
                          timeout=self._transfer)

    def commit(self, peer_url: str, job_id: str) -> None:
        self.http.request("PUT", f"{peer_url}{INTERNAL}/replicas/{quote(job_id, safe='')}/commit")

    def fetch(self, peer_url: str, job_id: str) -> tuple[dict[str, Any], Iterator[bytes]]:
        response = self.http.request("GET", f"{peer_url}{INTERNAL}/jobs/{quote(job_id, safe='')}/spool", stream=True,
                                     timeout=self._transfer)
        return decode_meta(response.headers[META_HEADER]), response.iter_content(64 * 1024)

    def print_direct(self, peer_url: str, job_id: str, body: dict[str, Any], timeout: float) -> dict[str, Any]:
        return self.http.json("POST", f"{peer_url}{INTERNAL}/jobs/{quote(job_id, safe='')}/print", json=body,
                              timeout=(self.http.timeout, timeout))

    def delete(self, peer_url: str, job_id: str) -> None:
        self.http.request("DELETE", f"{peer_url}{INTERNAL}/jobs/{quote(job_id, safe='')}", ok=(200, 404))

    def held_for_user(self, peer_url: str, user: str) -> list[dict[str, Any]]:
        return list(self.http.json("GET", f"{peer_url}{INTERNAL}/users/{quote(user, safe='')}/jobs")["jobs"])
