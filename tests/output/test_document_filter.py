"""The document filter (issue 9): the PJL and PostScript that would reconfigure a printer or outlive the job
are stripped (or make the job refused), whatever the chunking, while ordinary documents pass byte for byte."""

from __future__ import annotations

import os
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.output.document_filter import (
    MAX_LINE,
    UEL,
    DocumentFilter,
    filtered,
    first_refused_command,
    mode_of,
)

HOSTILE = (UEL + b'@PJL JOB NAME="report"\r\n'
           b"@PJL DEFAULT COPIES=999\r\n"          # persistent default (NVRAM)
           b"@PJL SET DUPLEX=ON\r\n"                # ordinary job setting: stays
           b"@PJL SET PASSWORD=4711\r\n"            # locks the owner out
           b'@PJL RDYMSG DISPLAY="Call 555-0100"\r\n'
           b"@PJL INITIALIZE\r\n"
           b"@PJL ENTER LANGUAGE=POSTSCRIPT\r\n"
           b"%!PS-Adobe-3.0\n"
           b"serverdict begin 0 exitserver\n"
           b"/showpage { } def\n"
           b"true (secret) startjob pop\n"
           b"<< /SystemParamsPassword (x) >> setsystemparams\n"
           b"(%disk0%) << /Password 1 >> setdevparams\n"
           b"/Helvetica findfont 12 scalefont setfont 72 72 moveto (Quarterly report) show showpage\n"
           + UEL + b'@PJL FSDOWNLOAD FORMAT:BINARY SIZE=12 NAME="0:/webServer/x.htm"\r\n'
           b"<h1>owned</h1"   # the 12-byte payload, then the next command on the same line
           b"\r\n@PJL EOJ\r\n" + UEL)


def run(data: bytes, size: int, mode: str = "strip") -> bytes:
    return b"".join(filtered([data[i:i + size] for i in range(0, len(data), size)], mode))


def test_device_changing_commands_are_stripped_and_the_document_still_prints() -> None:
    out = run(HOSTILE, 65536)
    for gone in (b"DEFAULT", b"PASSWORD=4711", b"RDYMSG", b"INITIALIZE", b"exitserver", b"startjob",
                 b"setsystemparams", b"setdevparams", b"FSDOWNLOAD", b"owned"):
        assert gone not in out, gone
    # What prints, and the PJL that only concerns this job, are untouched.
    for kept in (b'@PJL JOB NAME="report"\r\n', b"@PJL SET DUPLEX=ON\r\n", b"@PJL ENTER LANGUAGE=POSTSCRIPT\r\n",
                 b"/Helvetica findfont 12 scalefont setfont 72 72 moveto (Quarterly report) show showpage\n",
                 b"@PJL EOJ\r\n"):
        assert kept in out, kept
    # Operators become stack-equivalent no-ops, so the program still runs.
    assert b"serverdict begin 0 pop\n" in out and b"true (secret) pop pop false pop\n" in out
    assert out.count(UEL) == 3


def test_what_was_stripped_is_named() -> None:
    doc = DocumentFilter()
    doc.feed(HOSTILE)
    doc.close()
    assert doc.found == ["pjl-default", "pjl-set-password", "pjl-rdymsg", "pjl-initialize", "ps-exitserver",
                         "ps-startjob", "ps-setsystemparams", "ps-setdevparams", "pjl-fsdownload"]


def test_every_chunk_boundary_gives_the_same_document() -> None:
    # Commands, operators and the UEL itself cut at every possible place (two chunks), and 1..9-byte chunks.
    whole = run(HOSTILE, len(HOSTILE))
    for cut in range(1, len(HOSTILE)):
        assert b"".join(filtered([HOSTILE[:cut], HOSTILE[cut:]])) == whole, cut
    for size in range(1, 10):
        assert run(HOSTILE, size) == whole, size


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=len(HOSTILE)), min_size=1, max_size=30))
def test_any_chunking_gives_the_same_document(cuts: list[int]) -> None:
    points = sorted(set(cuts))
    pieces = [HOSTILE[a:b] for a, b in zip([0, *points], [*points, len(HOSTILE)], strict=True)]
    assert b"".join(filtered(pieces)) == run(HOSTILE, len(HOSTILE))


def _binary_pdf(seed: int, size: int = 300_000) -> bytes:
    rng = random.Random(seed)
    body = bytearray(rng.randbytes(size))
    # Words the filter looks for, inside compressed streams: a PDF is never scanned for them.
    for word in (b" exitserver ", b"\n@PJL DEFAULT X=1\n", b"/startjob ", b" setsystemparams "):
        at = rng.randrange(len(body))
        body[at:at] = word
    pdf = (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Length " + str(len(body)).encode()
           + b" /Filter /FlateDecode >>\nstream\n")
    pdf += bytes(body).replace(UEL, b"") + b"\nendstream\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
    return pdf


@pytest.mark.parametrize("size", [1000, 4096, 65536])
def test_a_binary_pdf_passes_byte_for_byte(size: int) -> None:
    pdf = _binary_pdf(size)
    assert run(pdf, size) == pdf
    assert first_refused_command([pdf]) is None
    # …also behind a PJL header, as drivers send it.
    wrapped = UEL + b"@PJL JOB\r\n@PJL ENTER LANGUAGE=PDF\r\n" + pdf + UEL + b"@PJL EOJ\r\n" + UEL
    assert run(wrapped, size) == wrapped


def test_a_uel_inside_a_pdf_brings_the_printer_back_to_pjl_and_that_pjl_is_filtered() -> None:
    # The printer honours a UEL anywhere, so a "PDF" can smuggle PJL after one.
    pdf = _binary_pdf(1, 5000)
    doc = pdf + UEL + b"@PJL DEFAULT PASSWORD=1\r\n@PJL ENTER LANGUAGE=PDF\r\n" + pdf
    out = run(doc, 777)
    assert out == pdf + UEL + b"@PJL ENTER LANGUAGE=PDF\r\n" + pdf
    assert first_refused_command([doc[:6000], doc[6000:]]) == "pjl-default"


def test_pcl_passes_untouched() -> None:
    pcl = b"\x1bE\x1b&l26A\x1b(s0p12h10v0s0b3T exitserver setsystemparams text\x0c\x1bE"
    assert run(pcl, 5) == pcl


def test_words_that_only_look_like_operators_are_left_alone() -> None:
    ps = (b"%!PS\n/myexitserver 1 def exitservers startjob2 (setdevparams) pop % startjobX\n"
          b"<< /PageSize [595 842] >> setpagedevice 1183615869 internaldict pop showpage\n")
    out = run(ps, 3)
    assert b"myexitserver" in out and b"exitservers" in out and b"startjob2" in out
    assert b"setpagedevice" in out and b"internaldict" in out
    # A string holding an operator's name is rewritten too: the filter does not trust its own idea of
    # "inside a string", which data read with readstring could fool.
    assert b"(pop pop)" in out


def test_literal_names_of_the_operators_are_made_harmless() -> None:
    out = run(b"%!PS\nserverdict /exitserver get exec\n/startjob where { pop } if //setsystemparams\n", 4)
    assert b"/pullprint-stripped-exitserver get" in out and b"/pullprint-stripped-startjob where" in out
    assert b"//pullprint-stripped-setsystemparams" in out


def test_pjl_without_a_uel_at_the_start_is_still_pjl() -> None:
    out = run(b"@PJL DEFAULT DISKLOCK=ON\n@PJL SET CPLOCK=ON\n@pjl rdymsg display=\"x\"\n%!PS\nshowpage\n", 2)
    assert out == b"%!PS\nshowpage\n"


def test_an_over_long_pjl_line_is_judged_on_its_start_and_memory_stays_bounded() -> None:
    doc = DocumentFilter()
    chunk = b"x" * 65536
    out = doc.feed(b"@PJL DEFAULT " + chunk)
    for _ in range(100):  # a 6.5 MB line of a stripped command: dropped as it streams
        out += doc.feed(chunk)
        assert len(doc._pending) <= MAX_LINE + len(chunk)
    out += doc.feed(b"\n%!PS\nshowpage\n") + doc.close()
    assert out == b"%!PS\nshowpage\n"


def test_a_long_postscript_run_without_delimiters_streams_with_bounded_memory() -> None:
    doc = DocumentFilter()
    out = doc.feed(b"%!PS\n<")
    run_of_hex = os.urandom(32).hex().encode() * 2048  # 128 KiB of one token
    for i in range(0, len(run_of_hex), 1000):
        out += doc.feed(run_of_hex[i:i + 1000])
        assert len(doc._pending) < 2000
    out += doc.feed(b"> exitserver\n") + doc.close()
    assert out == b"%!PS\n<" + run_of_hex + b"> pop\n"


def test_refuse_names_the_first_command_and_off_changes_nothing() -> None:
    assert first_refused_command([HOSTILE[:50], HOSTILE[50:]]) == "pjl-default"
    assert first_refused_command([b"%!PS\n0 exitserver\n"]) == "ps-exitserver"
    assert first_refused_command([b"%!PS\n/Times-Roman findfont setfont showpage\n"]) is None
    assert run(HOSTILE, 10, "off") == HOSTILE


def test_a_printer_without_a_valid_setting_gets_the_default() -> None:
    assert mode_of({"document_filter": "refuse"}) == "refuse"
    assert mode_of({"document_filter": "off"}) == "off"
    for printer in ({}, {"document_filter": None}, {"document_filter": "OFF"}, None):
        assert mode_of(printer) == "strip"
