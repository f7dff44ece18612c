"""Rendering what printers do not speak, with the real tools (cups-filters, Ghostscript to check the result),
in a box: time, memory and user limits that hold when a document misbehaves."""

from __future__ import annotations

import io
import os
import struct
import subprocess
import time
import zipfile
import zlib
from pathlib import Path

import pytest

from pullprint import render
from pullprint.render import Limits, RenderError, printable


def png(width: int = 40, height: int = 30) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    rows = b"".join(b"\x00" + b"\x20\x60\xc0" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def docx(text: str) -> bytes:
    """A minimal Word document (Office Open XML: three parts in a ZIP), as a word processor saves one."""
    main = "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml",
                   '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/'
                   '2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-'
                   'package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override '
                   f'PartName="/word/document.xml" ContentType="{main}"/></Types>')
        z.writestr("_rels/.rels",
                   '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/'
                   'package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/'
                   'officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>')
        z.writestr("word/document.xml",
                   '<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="http://schemas.openxmlformats.org/'
                   f'wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>{text}</w:t></w:r></w:p></w:body></w:document>')
    return buf.getvalue()


def text_of(pdf: bytes, tmp_path: Path) -> str:
    """The text Ghostscript reads in a PDF."""
    path = tmp_path / "text.pdf"
    path.write_bytes(pdf)
    return subprocess.run(["gs", "-q", "-dSAFER", "-dBATCH", "-dNOPAUSE", "-sDEVICE=txtwrite", "-sOutputFile=-",
                           str(path)], capture_output=True, text=True, check=True).stdout


def pages_of(pdf: bytes, tmp_path: Path) -> int:
    """What Ghostscript counts in a PDF (a real reader, not our own page counter)."""
    path = tmp_path / "out.pdf"
    path.write_bytes(pdf)
    done = subprocess.run(["gs", "-q", "-dNODISPLAY", "-dNOSAFER", "-c",
                           f"({path}) (r) file runpdfbegin pdfpagecount = quit"], capture_output=True, text=True,
                          check=True)
    return int(done.stdout.strip())


def test_an_image_becomes_a_one_page_pdf(tmp_path: Path) -> None:
    data, kind = printable(png(), "holiday.png", "image/png")
    assert kind == "application/pdf" and data.startswith(b"%PDF-")
    assert pages_of(data, tmp_path) == 1


@pytest.mark.parametrize(("data", "declared", "kind"), [
    (b"%PDF-1.7\n%%EOF\n", "application/octet-stream", "application/pdf"),
    (b"%!PS-Adobe-3.0\nshowpage\n", "", "application/postscript"),
    (b"\x1bE\x1b&l0O text", "application/octet-stream", "application/vnd.hp-pcl"),
    (b"just words\n", "text/plain", "text/plain"),
])
def test_what_printers_speak_passes_unchanged(data: bytes, declared: str, kind: str) -> None:
    assert printable(data, "x", declared) == (data, kind)


@pytest.mark.parametrize(("data", "name", "reason"), [
    (b"", "x.pdf", "empty"),
    (b"MZ\x90\x00\x03", "setup.exe", "send it as PDF"),
    (b"just words but labelled otherwise\n", "x.bin", "send it as PDF"),
    (b"\x89PNG\r\n\x1a\n not really an image", "broken.png", "could not be rendered"),
])
def test_what_cannot_print_is_refused_with_a_reason(data: bytes, name: str, reason: str) -> None:
    with pytest.raises(RenderError, match=reason):
        printable(data, name, "application/octet-stream")


def test_an_office_document_is_rendered_by_libreoffice_in_the_box(tmp_path: Path) -> None:
    data, kind = printable(docx("Quarterly revenue 2026"), "Quarterly report.docx",
                           "application/vnd.openxmlformats-officedocument.wordprocessingml.document")
    assert kind == "application/pdf" and data.startswith(b"%PDF-")
    assert pages_of(data, tmp_path) == 1
    words = text_of(data, tmp_path).split()
    assert "Quarterly" in words and "2026" in words


def test_a_damaged_office_document_is_refused_with_a_reason() -> None:
    with pytest.raises(RenderError, match="could not be rendered"):
        printable(b"PK\x03\x04" + os.urandom(64), "notes.docx")


def test_without_libreoffice_office_documents_are_refused_with_that_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(render, "office_available", lambda: False)
    with pytest.raises(RenderError, match="LibreOffice is not installed"):
        printable(docx("x"), "notes.docx")


def test_the_box_stops_a_renderer_that_hangs(tmp_path: Path) -> None:
    with pytest.raises(RenderError, match="within 0.5 s"):
        render._boxed(["sleep", "30"], tmp_path, Limits(seconds=0.5))


def test_the_box_caps_the_renderers_memory(tmp_path: Path) -> None:
    tmp_path.chmod(0o777)
    hog = ["python3", "-c", "x = bytearray(1 << 30)"]
    with pytest.raises(RenderError, match="could not be rendered"):
        render._boxed(hog, tmp_path, Limits(memory_bytes=256 * 1024 ** 2))
    assert render._boxed(["python3", "-c", "print(len(bytearray(1 << 20)))"], tmp_path, Limits()) == b"1048576\n"


@pytest.mark.skipif(os.geteuid() != 0, reason="only a service running as root has privileges to give up")
def test_the_box_runs_the_renderer_as_nobody(tmp_path: Path) -> None:
    tmp_path.chmod(0o777)
    assert render._boxed(["id", "-u"], tmp_path, Limits()).strip() == b"65534"


@pytest.mark.parametrize(("language", "languages", "target", "head"), [
    ("pdf", ["postscript"], "postscript", b"%!PS-Adobe-3.0"),
    ("pdf", ["pcl", "text"], "pcl", b"\x1bE"),
    ("postscript", ["pdf", "pcl"], "pdf", b"%PDF-"),
    ("text", ["pdf"], "pdf", b"%PDF-"),
    ("text", ["postscript"], "postscript", b"%!PS-Adobe-3.0"),  # text to PDF, then to PostScript
    ("pdf", ["pdf", "postscript"], "pdf", b"%PDF-"),             # what it takes passes unchanged
])
def test_a_document_is_put_in_a_language_the_printer_takes(language: str, languages: list[str], target: str,
                                                            head: bytes, tmp_path: Path) -> None:
    source = {"pdf": printable(png(), "x.png")[0], "text": b"Quarterly report\r\nQ3 revenue up\r\n",
              "postscript": b"%!PS-Adobe-3.0\n/Helvetica findfont 20 scalefont setfont 72 720 moveto (Q3) show "
                            b"showpage\n"}[language]
    data, got = render.for_printer(source, language, languages)
    assert got == target and data.startswith(head)
    if language == target:
        assert data == source
    if target == "pdf":
        assert pages_of(data, tmp_path) == 1


@pytest.mark.parametrize(("language", "languages"), [("pcl", ["pdf", "postscript"]), ("pdf", ["text"])])
def test_no_way_to_the_printers_language_is_a_clear_refusal(language: str, languages: list[str]) -> None:
    with pytest.raises(RenderError, match=f"this printer takes {', '.join(languages)}"):
        render.for_printer(b"\x1bE whatever" if language == "pcl" else b"%PDF-1.4\n%%EOF\n", language, languages)


@pytest.mark.parametrize("device", ["pwgraster", "appleraster"], ids=["ipp-everywhere-pwg", "airprint-urf"])
@pytest.mark.parametrize(("languages", "target", "head"), [
    (["pdf"], "pdf", b"%PDF-"), (["pcl"], "pcl", b"\x1bE"), (["postscript"], "postscript", b"%!PS")])
def test_a_phones_raster_is_converted_for_any_printer(device: str, languages: list[str], target: str, head: bytes,
                                                       tmp_path: Path) -> None:
    """What a phone sends over IPP (PWG raster, or AirPrint's URF), made by Ghostscript from a real page."""
    pdf, _ = printable(png(), "page.png")
    (tmp_path / "page.pdf").write_bytes(pdf)
    raster = subprocess.run(["gs", "-q", "-dSAFER", "-dBATCH", "-dNOPAUSE", f"-sDEVICE={device}", "-r100",
                             "-sOutputFile=-", str(tmp_path / "page.pdf")], capture_output=True, check=True).stdout
    assert raster.startswith(b"RaS2" if device == "pwgraster" else b"UNIRAST\0")
    data, got = render.for_printer(raster, "raster", languages)
    assert got == target and data.startswith(head)
    if target == "pdf":
        assert pages_of(data, tmp_path) == 1


def test_a_damaged_raster_is_refused_with_a_reason() -> None:
    with pytest.raises(RenderError):
        render.for_printer(b"RaS2" + os.urandom(2000), "raster", ["pdf"])


def test_a_zip_bomb_in_an_office_document_is_refused_within_its_bounds() -> None:
    """A .docx whose text inflates from ~1 MB to 1 GB: the box stops LibreOffice, nothing runs away."""
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr("[Content_Types].xml", zipfile.ZipFile(io.BytesIO(docx("x"))).read("[Content_Types].xml"))
        z.writestr("_rels/.rels", zipfile.ZipFile(io.BytesIO(docx("x"))).read("_rels/.rels"))
        with z.open("word/document.xml", "w", force_zip64=True) as part:
            part.write(b'<?xml version="1.0"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/'
                       b'2006/main"><w:body><w:p><w:r><w:t>')
            chunk = b"A" * (1 << 20)
            for _ in range(1024):
                part.write(chunk)
            part.write(b"</w:t></w:r></w:p></w:body></w:document>")
    data = bomb.getvalue()
    assert len(data) < 4 << 20  # what arrives is small
    started = time.monotonic()
    with pytest.raises(RenderError, match="could not be rendered"):
        printable(data, "bomb.docx", limits=Limits(seconds=20, cpu_seconds=20, memory_bytes=768 * 1024 ** 2))
    assert time.monotonic() - started < 30
