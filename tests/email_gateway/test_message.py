"""What a mail becomes: printable parts by their bytes, refusals with reasons, and no crash on any input."""

from __future__ import annotations

import email.policy
from email.message import EmailMessage

import pytest
from hypothesis import given
from hypothesis import strategies as st

from email_gateway.message import BadMail, parse
from email_gateway.server import SenderLimit
from pullprint.documents import sniff

PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\n%%EOF\n"


def _mail(*attachments: tuple[str, str, bytes], body: str = "hello", sender: str = "Alice <Alice@Example.org>",
          html_only: bool = False) -> bytes:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, "print@example.org", "Report\r\n"
    if html_only:
        message.set_content("<p>hi</p>", subtype="html")
    else:
        message.set_content(body)
    for filename, content_type, data in attachments:
        maintype, subtype = content_type.split("/")
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return message.as_bytes(policy=email.policy.SMTP)


def test_each_attachment_is_a_part_with_what_its_sender_declared() -> None:
    mail = parse(_mail(("a.pdf", "application/octet-stream", PDF), ("b.ps", "application/postscript", b"%!PS-Adobe\n"),
                       ("e.png", "image/png", b"\x89PNG\r\n\x1a\n"), ("empty.pdf", "application/pdf", b"")),
                 max_parts=10)
    assert mail.sender == "alice@example.org" and mail.subject == "Report"
    # Whether each prints, renders or is refused is pullprint.render.printable's to say (tests/unit/test_render.py).
    assert [(p.title, p.content_type) for p in mail.parts] == [
        ("a.pdf", "application/octet-stream"), ("b.ps", "application/postscript"), ("e.png", "image/png")]
    assert mail.parts[0].data == PDF
    assert [(r.title, r.reason) for r in mail.refused] == [("empty.pdf", "the attachment is empty")]


def test_the_body_is_printed_only_when_there_is_no_attachment() -> None:
    assert [p.data for p in parse(_mail(body="line 1\nline 2"), max_parts=10).parts] == [b"line 1\r\nline 2\r\n"]
    assert [p.title for p in parse(_mail(("a.pdf", "application/pdf", PDF)), max_parts=10).parts] == ["a.pdf"]
    html = parse(_mail(html_only=True), max_parts=10)
    assert html.parts == [] and "no plain-text body" in html.refused[0].reason


def test_parts_past_the_limit_are_refused_with_the_reason() -> None:
    mail = parse(_mail(*[(f"{i}.pdf", "application/pdf", PDF) for i in range(5)]), max_parts=3)
    assert len(mail.parts) == 3 and [r.title for r in mail.refused] == ["3.pdf", "4.pdf"]
    assert "at most 3 documents" in mail.refused[0].reason


@pytest.mark.parametrize("sender", ["", "a@example.org, b@example.org", "not an address"])
def test_a_mail_needs_exactly_one_from_address(sender: str) -> None:
    raw = _mail(("a.pdf", "application/pdf", PDF)).replace(b"From: Alice <Alice@Example.org>",
                                                            f"From: {sender}".encode())
    with pytest.raises(BadMail, match="exactly one From"):
        parse(raw, max_parts=10)


def test_a_filename_cannot_smuggle_control_characters_into_the_title() -> None:
    mail = parse(_mail(("evil\x1b[2J\x07.pdf", "application/pdf", PDF)), max_parts=10)
    assert mail.parts[0].title == "evil [2J .pdf"


@pytest.mark.parametrize(("head", "kind"), [(PDF, "application/pdf"), (b"\n\n%!PS-Adobe-3.0", "application/postscript"),
                                            (b"\x1bE\x1b&l0O", "application/vnd.hp-pcl"),
                                            (b"\x1b%-12345X@PJL", "application/vnd.hp-pcl"), (b"GIF89a", None)])
def test_sniff(head: bytes, kind: str | None) -> None:
    assert sniff(head) == kind


@given(st.binary(max_size=4096))
def test_any_bytes_are_a_mail_or_a_clear_refusal(raw: bytes) -> None:
    try:
        mail = parse(raw, max_parts=10)
    except BadMail as exc:
        assert str(exc)
    else:
        assert "@" in mail.sender and all(p.data for p in mail.parts)


@given(st.lists(st.sampled_from([b"From: a@example.org\r\n", b"Content-Type: multipart/mixed; boundary=x\r\n",
                                 b"\r\n", b"--x\r\n", b"--x--\r\n",
                                 b"Content-Disposition: attachment; filename=a.pdf\r\n",
                                 b"Content-Transfer-Encoding: base64\r\n", b"JVBERi0xLjQK\r\n", b"=?utf-8?b?////?=\r\n",
                                 b"Content-Type: message/rfc822\r\n", b"%PDF-1.4\r\n"]), max_size=40))
def test_structured_hostile_mime_never_crashes(lines: list[bytes]) -> None:
    try:
        parse(b"".join(lines), max_parts=3)
    except BadMail:
        pass


def test_a_sender_gets_a_bounded_number_of_mails_per_window() -> None:
    now = [0.0]
    limit = SenderLimit(3, 60, clock=lambda: now[0])
    assert [limit.admit("a@x.org") for _ in range(4)] == [True, True, True, False]
    assert limit.admit("b@x.org") is True  # another sender is not slowed
    now[0] = 61
    assert limit.admit("a@x.org") is True
