"""The upload page as someone uses it on a phone, in Chromium: files held for them, checked at the cluster."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, pdf
from tests.e2e.conftest import analyst_call, user

pytestmark = pytest.mark.e2e


@pytest.fixture
def phone(playwright):
    profile = tempfile.mkdtemp(prefix="pullprint-phone-")
    context = playwright.chromium.launch_persistent_context(
        profile, executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True, ignore_https_errors=True,
        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True, locale="en-GB")
    try:
        yield context
    finally:
        context.close()
        shutil.rmtree(profile, ignore_errors=True)


def test_a_phone_uploads_documents_that_are_held_for_the_user(cluster, phone, tmp_path: Path) -> None:
    carol = user(cluster, "carol")
    report = tmp_path / "Quarterly report.pdf"
    report.write_bytes(pdf(3, "uploaded from a phone"))
    picture = tmp_path / "holiday.jpg"
    picture.write_bytes(b"\xff\xd8\xff\xe0 not printable here")
    errors: list[str] = []
    page = phone.new_page()
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    page.goto(f"{cluster.lb_url}/upload")
    page.fill("#user", carol["email"])
    page.fill("#pin", carol["pin"])
    page.set_input_files("#files", [str(report), str(picture)])
    page.select_option("#sides", "two-sided")
    page.tap("#send")
    page.wait_for_selector("#results li.held", timeout=15000)
    assert page.locator("#results li.held").inner_text() == "Held: Quarterly report.pdf (3 pages)"
    assert "holiday.jpg" in page.locator("#results li.refused").inner_text()
    assert page.input_value("#pin") == ""  # the PIN does not stay in the page
    jobs = analyst_call(cluster, "GET", "/users/carol/jobs").json()["jobs"]
    held = [j for j in jobs if j["title"] == "Quarterly report.pdf"]
    assert len(held) == 1 and held[0]["pages"] == 3 and held[0]["options"]["sides"] == "two-sided-long-edge"
    assert held[0]["origin_host"] == "web-upload"
    # Finding a printer by a word of its location.
    page.fill("#query", "floor 2")
    page.click("#find-form button")
    page.wait_for_selector("#printers li")
    assert page.locator("#printers li").all_inner_texts() == ["p2 — Building A, floor 2 (a4, mono)"]
    # A wrong PIN: a clear sentence, nothing held.
    page.fill("#pin", "999999x")
    page.set_input_files("#files", [str(report)])
    page.tap("#send")
    page.wait_for_selector("#message:has-text('not recognised')")  # (the CSP forbids evaluated scripts)
    assert len([j for j in analyst_call(cluster, "GET", "/users/carol/jobs").json()["jobs"]
                if j["title"] == "Quarterly report.pdf"]) == 1
    assert [e for e in errors if "401" not in e] == []  # no resource failed but the refused upload
