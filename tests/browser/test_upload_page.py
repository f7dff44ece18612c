"""The upload page as someone uses it on a phone, in Chromium: files held for them, checked at the cluster."""

from __future__ import annotations

import email
import email.policy
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, pdf
from tests.e2e.conftest import analyst_call, login, received_hashes, release, sha, user, wait_for

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


def test_a_guest_uploads_from_a_phone_and_the_code_goes_only_to_the_mailbox(cluster, phone, tmp_path: Path) -> None:
    ticket = tmp_path / "Train ticket.pdf"
    ticket.write_bytes(pdf(1, "a guest's ticket"))
    guest = "visitor@partner.example"
    page = phone.new_page()
    page.goto(f"{cluster.lb_url}/upload")
    page.tap("#guest")
    assert page.locator("#pin").is_hidden() and page.locator("#user-label").inner_text() == "Your email address"
    page.fill("#user", guest)
    page.set_input_files("#files", [str(ticket)])
    page.tap("#send")
    page.wait_for_selector("#results li.held", timeout=15000)
    assert page.locator("#results li.held").inner_text() == "Held: Train ticket.pdf (1 page)"
    assert guest in page.locator("#message").inner_text()

    def mailed_code() -> str | None:
        for path in sorted(cluster.mail_outbox.glob("*.eml")):
            reply = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            text = reply.get_content()
            if str(reply["To"]) == guest and "Train ticket.pdf" in text and "release code:" in text:
                return "".join(c for c in text.split("release code:", 1)[1].splitlines()[0] if c.isdigit())
        return None

    code = wait_for(mailed_code, 15, "the guest's code in the mail")
    assert len(code) == 10 and code not in page.content()  # in the mailbox only, never on the page
    session = login(cluster, cluster.printers[0]["id"], code=code).json()
    assert [j["title"] for j in session["jobs"]] == ["Train ticket.pdf"]
    assert [r["status"] for r in release(cluster, session["session"], {"all": True}).json()["results"]] == ["printed"]
    assert received_hashes(cluster.printers[0]).count(sha(ticket.read_bytes())) == 1
