"""Web and phone upload against a real cluster, through HAProxy: a user's own credential (name or email and
PIN), each file held like an lp job and released by badge with its bytes at the printer, and every bad
upload refused with a clear answer and nothing held."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import requests

from localcluster.cluster import LocalCluster
from pullprint.render import printable
from tests.e2e.conftest import cluster_state_dir, login, received, release, sha, tls
from tests.unit.test_render import png

pytestmark = pytest.mark.e2e

PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Count 1>>endobj\n%%EOF\n"


@pytest.fixture(scope="module")
def site():
    state = cluster_state_dir()
    with LocalCluster(state, n_collectors=2, n_printers=1, with_cupsd=False) as running:
        yield running
    shutil.rmtree(state, ignore_errors=True)


def _user(cluster: LocalCluster, name: str) -> dict:
    return next(u for u in cluster.users if u["name"] == name)


def _upload(cluster: LocalCluster, user: str | None, pin: str | None, files: list[tuple[str, bytes, str]],
            key: str | None = None, **fields: str) -> requests.Response:
    headers = {"Idempotency-Key": key} if key else {}
    return requests.post(f"{cluster.lb_url}/api/v1/uploads", auth=(user, pin) if user else None, headers=headers,
                         files=[("file", f) for f in files], data=fields, timeout=60, verify=cluster.ca_file)


def test_a_users_upload_is_held_and_released_by_badge(site: LocalCluster) -> None:
    alice = _user(site, "alice")
    big = PDF + os.urandom(1_500_000)  # larger than HAProxy's cap on JSON bodies: documents pass
    files = [("Quarterly report.pdf", big, "application/pdf"), ("photo.png", b"\x89PNG\r\n\x1a\n", "image/png"),
             ("chart.png", png(), "image/png")]
    answer = _upload(site, alice["name"], alice["pin"], files, copies="2", sides="two-sided", color="monochrome")
    assert answer.status_code == 201, answer.text
    held, refused = answer.json()["held"], answer.json()["refused"]
    assert [(h["title"], h["copies"], h["pages"]) for h in held] == [("Quarterly report.pdf", 2, 1),
                                                                     ("chart.png", 2, 1)]  # rendered to PDF
    assert refused[0]["title"] == "photo.png" and "could not be rendered" in refused[0]["reason"]
    session = login(site, site.printers[0]["id"], badge=alice["badge"]).json()
    jobs = {j["id"]: j for j in session["jobs"]}
    job = jobs[held[0]["id"]]
    assert job["title"] == "Quarterly report.pdf" and job["size"] == len(big) and job["copies"] == 2
    result = release(site, session["session"], {"jobs": [job["id"]]}).json()
    assert result["results"][0]["status"] == "printed"
    # A raw 9100 printer gets the copies one after the other, the document's bytes unchanged.
    assert sha(big * 2) in [e["sha256"] for e in received(site.printers[0])]
    assert job["duplex"] is True and job["color"] is False  # what the release station shows


def test_the_email_address_works_as_the_user_name_and_a_key_holds_once(site: LocalCluster) -> None:
    bob = _user(site, "bob")
    first = _upload(site, bob["email"], bob["pin"], [("notes.txt", b"remember the milk\n", "text/plain")], key="k-1")
    again = _upload(site, bob["email"], bob["pin"], [("notes.txt", b"remember the milk\n", "text/plain")], key="k-1")
    assert first.status_code == 201 and first.json()["user"] == "bob"
    assert again.json()["held"][0]["id"] == first.json()["held"][0]["id"]
    session = login(site, site.printers[0]["id"], badge=bob["badge"]).json()
    assert [j["title"] for j in session["jobs"]].count("notes.txt") == 1


@pytest.mark.parametrize(("user", "pin", "status", "error"), [
    (None, None, 401, "credentials-required"),
    ("carol", "000000x", 401, "bad-credentials"),
    ("nobody", "472913", 401, "bad-credentials"),
])
def test_without_the_users_own_credential_nothing_is_held(site: LocalCluster, user: str | None, pin: str | None,
                                                           status: int, error: str) -> None:
    answer = _upload(site, user, pin, [("x.pdf", PDF, "application/pdf")])
    assert answer.status_code == status and answer.json()["error"] == error
    # The cluster's submit token is no upload credential either.
    token = requests.post(f"{site.lb_url}/api/v1/uploads", files=[("file", ("x.pdf", PDF))], timeout=30,
                          headers={"Authorization": f"Bearer {site.secret('submit_token')}"}, verify=site.ca_file)
    assert token.status_code == 401


def test_bad_uploads_get_a_clear_refusal(site: LocalCluster) -> None:
    carol = _user(site, "carol")
    assert _upload(site, "carol", carol["pin"], []).json()["error"] == "missing-file"
    assert _upload(site, "carol", carol["pin"], [("x.pdf", PDF, "application/pdf")], copies="0").status_code == 400
    assert _upload(site, "carol", carol["pin"], [("x.pdf", PDF, "application/pdf")], sides="both").status_code == 400
    only_refused = _upload(site, "carol", carol["pin"], [("evil.exe", b"MZ\x90\x00", "application/octet-stream")])
    assert only_refused.status_code == 422 and only_refused.json()["held"] == []
    chunked = requests.post(f"{site.lb_url}/api/v1/uploads", data=iter([b"--x\r\n"]), auth=("carol", carol["pin"]),
                            timeout=30, verify=site.ca_file,
                            headers={"Content-Type": "multipart/form-data; boundary=x"})
    assert chunked.status_code in (400, 411)
    session = login(site, site.printers[0]["id"], badge=carol["badge"]).json()
    assert session["jobs"] == []


def test_printers_are_found_by_a_word_of_their_location(site: LocalCluster) -> None:
    found = requests.get(f"{site.lb_url}/api/v1/printers", params={"q": "building a floor 1"}, timeout=10,
                         verify=site.ca_file).json()["printers"]
    assert [p["id"] for p in found] == ["p1"] and found[0]["location"] == "Building A, floor 1"
    assert requests.get(f"{site.lb_url}/api/v1/printers", params={"q": "basement"}, timeout=10,
                        verify=site.ca_file).json()["printers"] == []


def test_the_page_is_served_with_a_strict_policy(site: LocalCluster) -> None:
    page = requests.get(f"{site.lb_url}/upload", timeout=10, verify=site.ca_file)
    assert page.status_code == 200 and "Hold for printing" in page.text
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    for asset in ("upload.js", "upload.css", "favicon.svg"):
        assert requests.get(f"{site.lb_url}/static/{asset}", timeout=10, verify=site.ca_file).status_code == 200
    _ = tls  # the public address needs no client certificate


def test_a_printer_that_takes_only_postscript_gets_the_pdf_converted_at_release(site: LocalCluster) -> None:
    from tests.e2e.conftest import analyst_call

    alice = _user(site, "alice")
    printer = site.printers[0]
    assert analyst_call(site, "POST", "/printers", json={"id": printer["id"], "languages": ["postscript"]}) \
        .json()["printer"]["languages"] == ["postscript"]
    try:
        slides = printable(png(), "slides.png")[0]  # a whole PDF (the module's PDF is only a sketch of one)
        held = _upload(site, alice["name"], alice["pin"], [("Slides.pdf", slides, "application/pdf"),
                                                           ("Form.pcl", b"\x1bE\x1b&l0O form\x1bE", "")]).json()["held"]
        session = login(site, printer["id"], badge=alice["badge"]).json()
        ids = {h["title"]: h["id"] for h in held}
        answer = release(site, session["session"], {"jobs": list(ids.values())}).json()
        results = {r["id"]: r for r in answer["results"]}
        assert results[ids["Slides.pdf"]]["status"] == "printed"
        sink = Path(printer["sink_dir"])
        assert any(p.read_bytes().startswith(b"%!PS-Adobe-3.0") for p in sink.iterdir() if p.suffix != ".json"), \
            [p.read_bytes()[:20] for p in sink.iterdir() if p.suffix != ".json"]
        # PCL cannot become PostScript: the job stays held, to be released at another printer.
        refused = results[ids["Form.pcl"]]
        assert refused["status"] == "cannot-convert" and "another printer" in refused["message"]
        assert analyst_call(site, "GET", f"/jobs/{ids['Form.pcl']}").json()["job"]["state"] == "held"
    finally:
        analyst_call(site, "POST", "/printers", json={"id": printer["id"], "languages": ["pdf", "postscript", "pcl",
                                                                                         "text"]})
    assert analyst_call(site, "POST", "/printers", json={"id": printer["id"], "languages": ["braille"]}) \
        .status_code == 400
