"""The release station in a real browser: Debian's chromium driven by Playwright, against a real cluster.

Never `playwright install` (it downloads a browser of its own): the tests launch /usr/bin/chromium
(scripts/run installs the package) with a fresh profile each. Each test enrols its own station
through a one-time enrolment link, as an administrator would, so no test leans on another's state.
Set PULLPRINT_SCREENSHOT_DIR (e.g. docs/images) to have the tests save the screenshots the docs show.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from localcluster.cluster import LocalCluster
from tests.e2e.conftest import analyst_call, cluster_state_dir

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SESSION_IDLE_SECONDS = 20  # short enough for the countdown test to watch it run out
RELEASE_WAIT_SECONDS = 5

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is installed by scripts/run (dev group)")
if not Path(CHROMIUM).exists():
    pytest.skip("Debian's chromium package is not installed (scripts/run installs it)", allow_module_level=True)


@pytest.fixture(scope="package")
def cluster() -> Iterator[LocalCluster]:
    state = cluster_state_dir()
    # with_mail: a relay for the codes of guests' uploads (and the gateway, unused here).
    with LocalCluster(state, n_collectors=2, n_printers=2, with_cupsd=False, with_mail=True,
                      extra_env={"PULLPRINT_COLLECTOR_SESSION_IDLE_SECONDS": str(SESSION_IDLE_SECONDS),
                                 "PULLPRINT_COLLECTOR_HEALTH_MAX_AGE": "0.5",
                                 # A release answers within 5 s; a slower printer's jobs are "queued".
                                 "PULLPRINT_COLLECTOR_RELEASE_WAIT_SECONDS": str(RELEASE_WAIT_SECONDS),
                                 "PULLPRINT_COLLECTOR_POLL_INTERVAL_SECONDS": "1",
                                 # A lease that lapses within a test: the interrupted release.
                                 "PULLPRINT_COLLECTOR_LEASE_SECONDS": "4",
                                 "PULLPRINT_ANALYST_LEASE_GRACE_SECONDS": "1",
                                 # Mail from outside the serviced domains is a guest's, released by code;
                                 # the upload page takes guests too, their codes mailed.
                                 "PULLPRINT_ANALYST_GUEST_PRINTING": "1",
                                 "PULLPRINT_COLLECTOR_GUEST_UPLOADS": "1"}) as running:
        yield running
    shutil.rmtree(state, ignore_errors=True)


@pytest.fixture(scope="package")
def playwright() -> Iterator[Any]:
    with sync_api.sync_playwright() as driver:
        yield driver


def launch(playwright: Any, profile: str, *, extra_args: tuple[str, ...] = (), **options: Any) -> Any:
    """Chromium with a fresh profile; the cluster's certificate comes from its own CA, which this
    profile does not know (a kiosk would have it installed), hence ignore_https_errors."""
    return playwright.chromium.launch_persistent_context(
        profile, executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, *extra_args], headless=True,
        ignore_https_errors=True, viewport={"width": 1024, "height": 900}, locale="en-GB", **options)


@pytest.fixture
def browser(playwright: Any) -> Iterator[Any]:
    profile = tempfile.mkdtemp(prefix="pullprint-chromium-")
    context = launch(playwright, profile)
    try:
        yield context
    finally:
        context.close()
        shutil.rmtree(profile, ignore_errors=True)


def enrolment_link(cluster: LocalCluster, printer: str, base: str | None = None, query: str = "") -> str:
    """A new terminal for `printer` and its one-time enrolment link (the code in the #fragment)."""
    added = analyst_call(cluster, "POST", "/terminals", json={"printer": printer, "description": "browser test"})
    assert added.status_code == 201, added.text
    terminal = added.json()["terminal"]["id"]
    link = analyst_call(cluster, "POST", f"/terminals/{terminal}/enrollment", json={})
    assert link.status_code == 201, link.text
    path = link.json()["path"]  # /release/enroll#code=…
    page, _, fragment = path.partition("#")
    return f"{base or cluster.lb_url}{page}{query}#{fragment}"


def open_station(context: Any, cluster: LocalCluster, printer: str, *, base: str | None = None,
                 query: str = "") -> Any:
    """A page enrolled (through its link, in this browser) as the release station of `printer`."""
    page = context.new_page()
    page.goto(enrolment_link(cluster, printer, base, query))
    try:
        # The enrolment answers, then the page moves to the station 1.5 s later (30 s: a loaded CI machine).
        page.wait_for_url("**/release*", timeout=30000)
    except Exception as exc:
        said = page.locator("#message").inner_text(timeout=1000) if page.locator("#message").count() else ""
        raise AssertionError(f"the enrolment page never opened the station; it says {said!r} at {page.url}") from exc
    page.wait_for_selector("#badge")
    return page


def terminal_of(page: Any) -> dict[str, str]:
    """The credential the station's enrolment left in the browser."""
    import json

    return dict(json.loads(page.evaluate("localStorage.getItem('pullprint.terminal')")))


def shoot(page: Any, name: str) -> None:
    """Save a screenshot for the docs when PULLPRINT_SCREENSHOT_DIR is set (never otherwise)."""
    folder = os.environ.get("PULLPRINT_SCREENSHOT_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"station-{name}.png"), full_page=True)


def pdf(pages: int, note: str = "") -> bytes:
    """A small valid PDF with `pages` pages (its page tree's /Count is what intake counts)."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>"]
    kids = " ".join(f"{3 + i} 0 R" for i in range(pages))
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {pages} >>".encode())
    for _ in range(pages):
        objects.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>")
    body = b"%PDF-1.4\n% " + note.encode() + b"\n"
    offsets = []
    for number, obj in enumerate(objects, start=1):
        offsets.append(len(body))
        body += f"{number} 0 obj\n".encode() + obj + b"\nendobj\n"
    xref = len(body)
    body += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    body += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    body += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return body


def postscript(pages: int, note: str = "") -> bytes:
    """A small DSC-conforming PostScript document with `pages` pages."""
    head = f"%!PS-Adobe-3.0\n%%Title: {note}\n%%Pages: {pages}\n%%EndComments\n".encode()
    body = b"".join(f"%%Page: {i} {i}\n/Helvetica findfont 24 scalefont setfont 72 720 moveto ({note} {i}) show "
                    f"showpage\n".encode() for i in range(1, pages + 1))
    return head + body + b"%%EOF\n"


class PlainHttpFront:
    """A plain-HTTP front for the cluster's TLS load balancer, as a kiosk network might have.

    Reached by a host name that is not this machine's (the browser maps it to loopback), so the
    browser treats the page as insecure: what a kiosk over plain HTTP gets. Forwards every request
    as it is and the answer as it came."""

    HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host", "upgrade",
           "proxy-connection", "te", "trailer", "content-encoding"}

    def __init__(self, cluster: LocalCluster) -> None:
        import http.server
        import threading

        import requests

        from tests.e2e.conftest import tls

        target, options, hop = cluster.lb_url, tls(cluster), self.HOP

        class Forward(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() not in hop}
                answer = requests.request(self.command, target + self.path, data=body, headers=headers,
                                          timeout=60, allow_redirects=False, **options)
                self.send_response(answer.status_code)
                for name, value in answer.headers.items():
                    if name.lower() not in hop:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_POST = do_DELETE = do_PUT = _forward  # noqa: N815

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Forward)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
