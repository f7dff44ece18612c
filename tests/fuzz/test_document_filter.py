"""The PJL/PostScript document filter (collector/output/document_filter.py): every released document goes
through it on its way to the printer, and its input is whatever any user printed.

Properties, in strip mode (the default) and for any chunking of the stream:
- it never raises, and its output does not depend on where the chunks end;
- nothing dangerous gets through: filtering its output again finds nothing and changes nothing, and in
  PostScript no device-changing operator is left as a token (checked by an oracle of its own, below);
- a clean PDF (or a PDF announced by PJL) is byte-identical; `off` is the identity;
- `refuse` refuses exactly the documents strip mode would have changed.
"""

from __future__ import annotations

import re

from hypothesis import example, given
from hypothesis import strategies as st

from collector.output.document_filter import (
    OFF,
    PS_REPLACEMENTS,
    STRIP,
    UEL,
    DocumentFilter,
    filtered,
    first_refused_command,
)
from tests.fuzz.profile import fuzz

DANGEROUS_PJL = [b"@PJL DEFAULT COPIES=9\r\n", b"@pjl initialize\n", b"@PJL FSDOWNLOAD FORMAT:BINARY SIZE=4 NAME=x\n",
                 b"@PJL FSAPPEND SIZE=3 NAME=\"0:x\"\n", b"@PJL FSDELETE NAME=\"0:x\"\n", b"@PJL RDYMSG DISPLAY=hi\n",
                 b"@PJL SET PASSWORD=1234\n", b"@PJL SET LPARM:PCL CPLOCK=ON\n", b"@PJL  set  servicemode=hpboot\n",
                 b"@PJL DMCMD ASCIIHEX=\"00\"\n", b"  @PJL OPMSG DISPLAY=x\n"]
HARMLESS_PJL = [b"@PJL JOB NAME=\"a\"\n", b"@PJL SET COPIES=2\n", b"@PJL COMMENT DEFAULT\n",
                b"@PJL ENTER LANGUAGE=POSTSCRIPT\n", b"@PJL ENTER LANGUAGE=PDF\n", b"@PJL ENTER LANGUAGE=PCL\n",
                b"@PJL EOJ\n", b"\r\n", b"@PJL\n"]
PS_WORDS = list(PS_REPLACEMENTS)
PS_BITS = [b"%!PS-Adobe-3.0\n", b"serverdict begin 0 ", b"(secret) ", b"true 0 ", b"<< /Password 0 >> ", b"showpage\n",
           b" ", b"\n", b"(", b")", b"/", b"//", b"%", b"{", b"}", b"[", b"]", b"<", b">", b"\x00", b"\\", b"a", b"x1"]
piece = st.one_of(
    st.sampled_from([UEL, UEL[:5], b"%PDF-1.7\n", b"\x1bE", b") HP-PCL XL;2;0\n"]),
    st.sampled_from(DANGEROUS_PJL), st.sampled_from(HARMLESS_PJL), st.sampled_from(PS_BITS),
    st.sampled_from(PS_WORDS), st.binary(max_size=10),
)
document = st.lists(piece, max_size=30).map(b"".join)
cuts = st.lists(st.integers(0, 10**6), max_size=6)


def split(data: bytes, at: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in at})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


def run(chunks: list[bytes], mode: str = STRIP) -> tuple[bytes, list[str]]:
    doc = DocumentFilter(mode)
    out = b"".join(doc.feed(chunk) for chunk in chunks) + doc.close()
    return out, doc.found


_DELIMS = rb"\x00\t\n\x0c\r ()<>\[\]{}/%"
_OPERATOR = re.compile(rb"(?<![^" + _DELIMS + rb"])(" + b"|".join(PS_WORDS) + rb")(?![^" + _DELIMS + rb"])")


@given(document, cuts)
@example(b"%!PS\n(x) exitserver", [len(b"%!PS\n(x) exits")])  # an operator split across two chunks
@example(UEL + b"@PJL FSDOWNLOAD SIZE=4 NAME=\"0:x\"\n" + b"abcd" + b"@PJL DEFAULT X=1\n", [30, 31])
@fuzz(ci_examples=300)
def test_output_is_safe_and_independent_of_chunking(data, at):
    whole, found = run([data])
    chunked, found_chunked = run(split(data, at))
    assert chunked == whole and found_chunked == found
    # A fixpoint: the filter's own reader sees nothing dangerous in what it let through.
    again, found_again = run([whole])
    assert found_again == [] and again == whole
    if UEL not in data and not data.lstrip(b" \t\r\n\x04\x00").startswith((b"%PDF", b"\x1b", b"@PJL", b"@pjl", b")")):
        # Plain PostScript: no device-changing operator is left as a token, whatever the filter thinks.
        assert not _OPERATOR.search(whole), whole


pdf = st.lists(st.one_of(st.binary(max_size=40), st.sampled_from(PS_WORDS + DANGEROUS_PJL + [b"/exitserver"])),
               max_size=20).map(lambda parts: b"%PDF-1.7\n" + b"".join(parts).replace(UEL, b""))


@given(pdf, cuts, st.booleans())
@fuzz()
def test_a_pdf_passes_byte_for_byte(data, at, announced):
    if announced:
        data = UEL + b"@PJL JOB\n@PJL ENTER LANGUAGE=PDF\n" + data
    assert run(split(data, at)) == (data, [])


@given(st.one_of(document, st.binary(max_size=300)), cuts)
@fuzz()
def test_off_is_the_identity_and_refuse_refuses_what_strip_changes(data, at):
    assert run(split(data, at), OFF) == (data, [])
    stripped, found = run([data])
    refused = first_refused_command(iter(split(data, at)))
    assert (refused is not None) == bool(found)
    if refused is None:
        assert stripped == data  # nothing found, nothing changed
    assert b"".join(filtered(split(data, at))) == stripped
