"""Print by mail against a real cluster: a real SMTP conversation (smtplib → the gateway, STARTTLS with
the cluster CA), each part held like an lp job, released by badge with its bytes at the printer, one
reply through a real relay, and each bad mail refused with a clear SMTP answer and nothing held."""

from __future__ import annotations

import email
import email.policy
import os
import shutil
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import pytest
import requests

from localcluster.cluster import PRINT_ADDRESS, LocalCluster
from tests.e2e.conftest import ONE_PAGE_PDF as PDF
from tests.e2e.conftest import analyst_call, cluster_state_dir, login, received_hashes, release, sha, tls, wait_for

pytestmark = pytest.mark.e2e



@pytest.fixture(scope="module")
def mailed():
    state = cluster_state_dir()
    with LocalCluster(state, n_collectors=2, n_printers=1, with_cupsd=False, with_mail=True,
                      extra_env={"PULLPRINT_MAIL_MAILS_PER_SENDER": "4",
                                 "PULLPRINT_MAIL_REPLY_DELAY_SECONDS": "0.5"}) as running:
        yield running
    shutil.rmtree(state, ignore_errors=True)


def _mail(sender: str, *, attachments: list[tuple[str, str, bytes]] = (), body: str = "please print",
          subject: str = "print this", header_from: str | None = None) -> EmailMessage:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = header_from or sender, PRINT_ADDRESS, subject
    message["Message-ID"] = make_msgid(domain="client.example")
    message.set_content(body)
    for filename, content_type, data in attachments:
        maintype, subtype = content_type.split("/")
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return message


def _smtp(cluster: LocalCluster, *, starttls: bool = True) -> smtplib.SMTP:
    host, port = cluster.smtp.split(":")
    client = smtplib.SMTP(host, int(port), timeout=30)
    client.ehlo("workstation.client.example")
    if starttls:
        client.starttls(context=ssl.create_default_context(cafile=cluster.ca_file))
        client.ehlo("workstation.client.example")
    return client


def _send(cluster: LocalCluster, message: EmailMessage, sender: str | None = None) -> tuple[int, str]:
    """Send one mail; the SMTP answer to its DATA (or to the first command refused)."""
    with _smtp(cluster) as client:
        code, text = client.mail(sender or str(message["From"]))
        if code != 250:
            return code, text.decode()
        code, text = client.rcpt(PRINT_ADDRESS)
        if code != 250:
            return code, text.decode()
        code, text = client.data(message.as_bytes(policy=email.policy.SMTP))  # CRLF lines, as MTAs send
        return code, text.decode()


def _held(cluster: LocalCluster, user: dict, title: str) -> tuple[str, list[dict]]:
    answer = login(cluster, cluster.printers[0]["id"], badge=user["badge"])
    assert answer.status_code == 201, answer.text
    return answer.json()["session"], [j for j in answer.json()["jobs"] if j["title"] == title]


def _replies(cluster: LocalCluster, to: str) -> list[EmailMessage]:
    found = []
    for path in sorted(cluster.mail_outbox.glob("*.eml")):
        reply = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if str(reply["To"]) == to:
            found.append(reply)
    return found


def test_a_mailed_pdf_is_held_released_by_badge_and_the_sender_told(mailed: LocalCluster) -> None:
    from tests.unit.test_render import docx

    alice = next(u for u in mailed.users if u["name"] == "alice")
    word = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    message = _mail(alice["email"], attachments=[("Quarterly report.pdf", "application/pdf", PDF),
                                                 ("Minutes.docx", word, docx("Minutes of the board")),
                                                 ("notes.docx", word, b"PK\x03\x04" + os.urandom(200))])
    code, text = _send(mailed, message)
    assert code == 250 and "2 held, 1 not printed" in text
    token, jobs = _held(mailed, alice, "Quarterly report.pdf")
    assert len(jobs) == 1 and jobs[0]["size"] == len(PDF)
    # The same mail again (its MTA did not see the 250): nothing is held twice.
    assert _send(mailed, message)[0] == 250
    token, jobs = _held(mailed, alice, "Quarterly report.pdf")
    assert len(jobs) == 1
    result = release(mailed, token, {"jobs": [jobs[0]["id"]]}).json()
    assert result["results"][0]["status"] == "printed"
    assert received_hashes(mailed.printers[0]).count(sha(PDF)) == 1
    replies = wait_for(lambda: _replies(mailed, alice["email"]), 15, "the reply to alice")
    text = replies[0].get_content()
    assert "Quarterly report.pdf" in text and "Minutes.docx (1 page)" in text
    assert "notes.docx: it could not be rendered" in text  # the damaged one, named with the reason
    # The Word document is held as the PDF LibreOffice made of it.
    _, minutes = _held(mailed, alice, "Minutes.docx")
    assert len(minutes) == 1 and minutes[0]["pages"] == 1
    # The parts of one mail are one job group; another mail's are another.
    groups = [analyst_call(mailed, "GET", f"/jobs/{j['id']}").json()["job"]["options"].get("pullprint-job-group")
              for j in (jobs[0], minutes[0])]
    assert groups[0] == groups[1] and groups[0].startswith("mail-")
    assert replies[0]["In-Reply-To"] == message["Message-ID"] and replies[0]["Auto-Submitted"] == "auto-replied"


def test_a_mailed_image_is_rendered_to_pdf_once_and_counted(mailed: LocalCluster) -> None:
    from tests.unit.test_render import png

    carol = next(u for u in mailed.users if u["name"] == "carol")
    code, text = _send(mailed, _mail(carol["email"], attachments=[("whiteboard.png", "image/png", png())]))
    assert code == 250 and "1 held" in text
    token, jobs = _held(mailed, carol, "whiteboard.png")
    assert len(jobs) == 1 and jobs[0]["pages"] == 1  # the rendered PDF's page count
    group = analyst_call(mailed, "GET", f"/jobs/{jobs[0]['id']}").json()["job"]["options"]["pullprint-job-group"]
    alices = {analyst_call(mailed, "GET", f"/jobs/{j['id']}").json()["job"]["options"].get("pullprint-job-group")
              for j in analyst_call(mailed, "GET", "/users/alice/jobs").json()["jobs"]}
    assert group.startswith("mail-") and group not in alices
    assert release(mailed, token, {"jobs": [jobs[0]["id"]]}).json()["results"][0]["status"] == "printed"
    sink = Path(mailed.printers[0]["sink_dir"])
    printed = [p for p in sink.iterdir() if p.suffix != ".json" and p.read_bytes()[:5] == b"%PDF-"]
    assert printed, "the printer received the image rendered as PDF"


def test_a_mail_without_attachment_prints_its_text(mailed: LocalCluster) -> None:
    carol = next(u for u in mailed.users if u["name"] == "carol")
    code, _ = _send(mailed, _mail(carol["email"], subject="Shopping list", body="milk\neggs\n"))
    assert code == 250
    token, jobs = _held(mailed, carol, "Shopping list")
    assert len(jobs) == 1
    assert release(mailed, token, {"jobs": [jobs[0]["id"]]}).json()["results"][0]["status"] == "printed"
    # The body's text, with CR LF line ends (a printer given bare LFs staircases the lines).
    assert received_hashes(mailed.printers[0]).count(sha(b"milk\r\neggs\r\n")) == 1


@pytest.mark.parametrize(("sender", "header_from", "expected"), [
    ("dave@pullprint.example", None, "not a user here"),                # unknown address, no auto-provisioning
    ("eve@elsewhere.example", None, "is not served here"),              # outside the serviced domains
    ("alice@pullprint.example", "bob@pullprint.example", "envelope sender"),  # a forged From
])
def test_senders_that_are_not_served_are_refused_and_nothing_is_held(mailed: LocalCluster, sender: str,
                                                                       header_from: str | None, expected: str) -> None:
    before = analyst_call(mailed, "GET", "/jobs").json()["jobs"]
    code, text = _send(mailed, _mail(sender, attachments=[("x.pdf", "application/pdf", PDF)],
                                     header_from=header_from), sender=sender)
    assert code == 550 and expected in text
    assert analyst_call(mailed, "GET", "/jobs").json()["jobs"] == before


def test_mail_before_starttls_and_to_other_addresses_is_refused(mailed: LocalCluster) -> None:
    with _smtp(mailed, starttls=False) as client:
        code, text = client.mail("alice@pullprint.example")
        assert code == 530 and b"STARTTLS" in text
    with _smtp(mailed) as client:
        assert client.mail("alice@pullprint.example")[0] == 250
        code, _ = client.rcpt("someone@pullprint.example")
        assert code == 550


def test_a_flood_from_one_sender_is_slowed_and_others_are_served(mailed: LocalCluster) -> None:
    codes = []
    for _ in range(6):
        with _smtp(mailed) as client:
            codes.append(client.mail("flood@elsewhere.example")[0])
    assert codes[:4] == [250] * 4 and codes[4:] == [451, 451]  # mails_per_sender is 4 here
    carol = next(u for u in mailed.users if u["name"] == "carol")
    assert _send(mailed, _mail(carol["email"], subject="after the flood"))[0] == 250


def test_a_denied_user_is_refused_at_mail_and_login_and_keeps_held_jobs(mailed: LocalCluster) -> None:
    bob = next(u for u in mailed.users if u["name"] == "bob")
    assert _send(mailed, _mail(bob["email"], subject="bob before"))[0] == 250
    assert len(_held(mailed, bob, "bob before")[1]) == 1
    assert analyst_call(mailed, "POST", "/users", json={"name": "bob", "allowed": False}).status_code == 200
    try:
        code, text = _send(mailed, _mail(bob["email"], subject="bob after"))
        assert code == 550 and "may not print" in text
        answer = login(mailed, mailed.printers[0]["id"], badge=bob["badge"])
        assert answer.status_code == 403 and answer.json()["error"] == "user-denied"
    finally:
        analyst_call(mailed, "POST", "/users", json={"name": "bob", "allowed": True})
    session, jobs = _held(mailed, bob, "bob before")
    assert len(jobs) == 1  # still held, releasable again once allowed
    assert not _held(mailed, bob, "bob after")[1]
    requests.delete(f"{mailed.lb_url}/api/v1/sessions/{session}", timeout=10, **tls(mailed))


# --- guests (HP's job PIN): mail from outside the serviced domains, a release code per job ----------------------

GUEST_UPLOADS = 4  # per guest address and per client address in the window (an hour)

@pytest.fixture(scope="module")
def guests():
    state = cluster_state_dir()
    with LocalCluster(state, n_collectors=2, n_printers=1, with_cupsd=False, with_mail=True,
                      extra_env={"PULLPRINT_ANALYST_GUEST_PRINTING": "1",
                                 "PULLPRINT_MAIL_REPLY_DELAY_SECONDS": "0.2",
                                 # Uploads without an account, their codes mailed (collector/uploads.py).
                                 "PULLPRINT_COLLECTOR_GUEST_UPLOADS": "1",
                                 "PULLPRINT_COLLECTOR_GUEST_UPLOADS_PER_WINDOW": str(GUEST_UPLOADS)}) as running:
        yield running
    shutil.rmtree(state, ignore_errors=True)


def _code_for(cluster: LocalCluster, guest: str, title: str) -> str:
    def find() -> str | None:
        for reply in _replies(cluster, guest):
            text = reply.get_content()
            lines = text.splitlines()
            for i, line in enumerate(lines):
                if line.strip().startswith(f"- {title}") and i + 1 < len(lines) and "release code:" in lines[i + 1]:
                    return "".join(c for c in lines[i + 1] if c.isdigit())
        return None
    return wait_for(find, 15, f"the release code of {title}")


def test_a_guest_releases_each_mailed_document_with_its_own_code_once(guests: LocalCluster) -> None:
    guest = "visitor@partner.example"
    first, second = PDF + b"% first\n", PDF + b"% second\n"
    assert _send(guests, _mail(guest, attachments=[("Boarding pass.pdf", "application/pdf", first)]))[0] == 250
    assert _send(guests, _mail(guest, attachments=[("Agenda.pdf", "application/pdf", second)]))[0] == 250
    code = _code_for(guests, guest, "Boarding pass.pdf")
    other = _code_for(guests, guest, "Agenda.pdf")
    assert len(code) == 10 and code != other
    # No analyst record or log holds the code itself.
    assert code not in (guests.state_dir / "mail" / "gateway.log").read_text()
    assert all(code not in (c.spool_dir.parent / "collector.log").read_text() for c in guests.collectors.values())
    # The code alone, at any terminal: a session for that one job (not the guest's other one).
    answer = login(guests, guests.printers[0]["id"], code=f"{code[:3]} {code[3:6]} {code[6:]}")
    assert answer.status_code == 201, answer.text
    assert [j["title"] for j in answer.json()["jobs"]] == ["Boarding pass.pdf"]
    result = release(guests, answer.json()["session"], {"all": True}).json()
    assert [r["status"] for r in result["results"]] == ["printed"]
    hashes = received_hashes(guests.printers[0])
    assert hashes.count(sha(first)) == 1 and sha(second) not in hashes
    # Single use: the printed job's code opens nothing; the other code still opens the other job.
    again = login(guests, guests.printers[0]["id"], code=code)
    assert again.status_code == 401 and again.json()["error"] == "bad-credentials"
    assert [j["title"] for j in login(guests, guests.printers[0]["id"], code=other).json()["jobs"]] == ["Agenda.pdf"]


# --- guests by upload (no account): the code goes to the address, never to the page ------------------------------

def _guest_upload(cluster: LocalCluster, address: str | None, files: list[tuple[str, bytes, str]],
                  **headers: str) -> requests.Response:
    if address is not None:
        headers["X-Pullprint-Guest"] = address
    return requests.post(f"{cluster.lb_url}/api/v1/uploads", headers=headers, files=[("file", f) for f in files],
                         timeout=60, verify=cluster.ca_file)


def test_a_guests_upload_is_released_with_the_code_mailed_to_the_address(guests: LocalCluster) -> None:
    guest = "traveller@partner.example"
    ticket = PDF + b"% train ticket\n"
    answer = _guest_upload(guests, guest, [("Train ticket.pdf", ticket, "application/pdf")])
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["codes_sent_to"] == guest and [h["title"] for h in body["held"]] == ["Train ticket.pdf"]
    assert "release_code" not in answer.text and "code" not in body["held"][0]  # never on the page
    code = _code_for(guests, guest, "Train ticket.pdf")
    assert code not in answer.text
    session = login(guests, guests.printers[0]["id"], code=code)
    assert session.status_code == 201, session.text
    assert [j["title"] for j in session.json()["jobs"]] == ["Train ticket.pdf"]
    result = release(guests, session.json()["session"], {"all": True}).json()
    assert [r["status"] for r in result["results"]] == ["printed"]
    assert received_hashes(guests.printers[0]).count(sha(ticket)) == 1


def test_guest_uploads_are_refused_for_members_bad_addresses_and_floods(guests: LocalCluster) -> None:
    before = analyst_call(guests, "GET", "/jobs").json()["jobs"]
    files = [("x.pdf", PDF, "application/pdf")]
    # An address with an account here logs in with its PIN; not an address at all; no credential at all.
    member = _guest_upload(guests, "alice@pullprint.example", files)
    assert member.status_code == 401 and member.json()["error"] == "account-required"
    assert _guest_upload(guests, "not an address", files).status_code == 400
    assert _guest_upload(guests, None, files).status_code == 401
    # One address, many uploads: past the window's allowance, 429 with when to try again.
    statuses = [_guest_upload(guests, "flood@partner.example", files).status_code for _ in range(GUEST_UPLOADS + 2)]
    assert 429 in statuses and statuses.index(429) <= GUEST_UPLOADS, statuses
    late = _guest_upload(guests, "flood@partner.example", files)
    assert late.status_code == 429 and late.json()["retry_after"] > 0 and int(late.headers["Retry-After"]) > 0
    held = [j for j in analyst_call(guests, "GET", "/jobs").json()["jobs"] if j not in before]
    assert len(held) == statuses.count(201)  # nothing held for any refusal


def test_guest_uploads_are_refused_where_the_site_takes_none(mailed: LocalCluster) -> None:
    answer = _guest_upload(mailed, "visitor@partner.example", [("x.pdf", PDF, "application/pdf")])
    assert answer.status_code == 403 and answer.json()["error"] == "guest-uploads-off"


def test_guessing_release_codes_is_throttled(guests: LocalCluster) -> None:
    statuses = [login(guests, guests.printers[0]["id"], code=f"{n:010d}").status_code for n in range(12)]
    assert statuses[0] == 401 and statuses[-1] in (423, 429)  # last: it leaves this address throttled
