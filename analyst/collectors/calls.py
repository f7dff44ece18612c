"""What the analyst asks of collectors itself: shred the copies of a job deleted in the console now,
instead of at each holder's next reconcile."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from urllib.parse import quote

from sqlalchemy import select
from sqlalchemy.orm import Session

from analyst.collectors.models import Collector
from nodeserver.client import NodeClient, Unreachable
from pullprint.errors import PullprintError
from pullprint.pki import identity_dns
from pullprint.tls import TlsFiles

log = logging.getLogger(__name__)

TIMEOUT = (1.0, 2.0)  # connect, read: the operator waits for the answer


def shred_copies(session: Session, tls: TlsFiles | None, job_id: str, holders: Iterable[str]) -> dict[str, bool]:
    """Ask each holder to crypto-shred its copy of `job_id` (already recorded deleted); by holder, whether it
    did. A holder that cannot be reached now shreds it at its next reconcile, which finds the job deleted."""
    holders = sorted(set(holders))
    found = session.execute(select(Collector.id, Collector.url).where(Collector.id.in_(holders)))
    urls = {row.id: row.url for row in found}
    client = NodeClient(tls, timeout=2.0)
    done: dict[str, bool] = {}
    for holder in holders:
        url = urls.get(holder, "")
        try:
            if not url:
                raise Unreachable("no-address", f"collector {holder} has no address on record")
            client.request("DELETE", f"{url.rstrip('/')}/internal/v1/jobs/{quote(job_id, safe='')}",
                           identity=identity_dns("collector", holder), timeout=TIMEOUT)
            done[holder] = True
        except PullprintError as exc:
            log.warning("collector %s did not shred its copy of deleted job %s now (%s); it will at its next "
                        "reconcile", holder, job_id, exc.message)
            done[holder] = False
    return done
