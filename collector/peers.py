"""PeerClient: the calls one collector makes to another (store a replica, fetch, direct print, delete)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any, BinaryIO
from urllib.parse import quote

from collector.membership import Member
from nodeserver.client import NodeClient, Unreachable
from pullprint.pki import identity_dns
from pullprint.tls import TlsFiles

META_HEADER = "X-Pullprint-Meta"
INTERNAL = "/internal/v1"


class PeerUnreachable(Unreachable):
    """Another collector did not answer in time, refused the connection, or answered 5xx."""


def _identity(peer: Member) -> str:
    return identity_dns("collector", peer.id)


def encode_meta(meta: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(meta).encode()).decode()


def decode_meta(value: str) -> dict[str, Any]:
    return dict(json.loads(base64.urlsafe_b64decode(value.encode())))


class PeerClient:
    """Each call goes to one `Member` and only to it: the peer's certificate must name that collector."""

    def __init__(self, tls: TlsFiles | None, timeout: float, transfer_timeout: float = 120.0) -> None:
        self.http = NodeClient(tls, timeout, PeerUnreachable)
        # Transfers connect fast or fail fast, but may then stream for a while.
        self._transfer = (timeout, transfer_timeout)

    def _call(self, method: str, peer: Member, path: str, **kwargs: Any) -> Any:
        return self.http.request(method, f"{peer.url}{INTERNAL}{path}", identity=_identity(peer), **kwargs)

    def store_replica(self, peer: Member, job_id: str, meta: dict[str, Any], sealed: BinaryIO) -> None:
        self._call("PUT", peer, f"/replicas/{quote(job_id, safe='')}", data=sealed, timeout=self._transfer,
                   headers={META_HEADER: encode_meta(meta), "Content-Type": "application/octet-stream"})

    def commit(self, peer: Member, job_id: str) -> None:
        self._call("PUT", peer, f"/replicas/{quote(job_id, safe='')}/commit")

    def fetch(self, peer: Member, job_id: str) -> tuple[dict[str, Any], Iterator[bytes]]:
        response = self._call("GET", peer, f"/jobs/{quote(job_id, safe='')}/spool", stream=True,
                              timeout=self._transfer)
        return decode_meta(response.headers[META_HEADER]), response.iter_content(64 * 1024)

    def print_direct(self, peer: Member, job_id: str, body: dict[str, Any], timeout: float) -> dict[str, Any]:
        return dict(self._call("POST", peer, f"/jobs/{quote(job_id, safe='')}/print", json=body,
                               timeout=(self.http.timeout, timeout)).json())

    def delete(self, peer: Member, job_id: str) -> None:
        self._call("DELETE", peer, f"/jobs/{quote(job_id, safe='')}", ok=(200, 404))

    def held_for_user(self, peer: Member, user: str) -> list[dict[str, Any]]:
        return list(self._call("GET", peer, f"/users/{quote(user, safe='')}/jobs").json()["jobs"])
