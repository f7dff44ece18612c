"""The page counter (collector/pages.py): it reads every submitted document as it streams in."""

from __future__ import annotations

import time

from hypothesis import example, given
from hypothesis import strategies as st

from collector.pages import PageCounter
from tests.fuzz.profile import fuzz

MARKERS = [b"%PDF-1.7\n", b"%!PS-Adobe-3.0\n", b"\x1b%-12345X@PJL JOB\n", b"/Type /Page", b"/Type/Pages",
           b"/Type /Page ", b"/Count ", b"/Count 3", b"%%Pages: ", b"%%Pages: 7\n", b"%%Page: 1 1\n",
           b"@PJL SET PAGES=", b'@PJL JOBATTR="TOTALPAGES=', b"@PJL SET TOTALPAGES = 2\n", b">>", b"<<",
           b" ", b"\n", b"\t", b"0", b"9", b"s", b"X",
           b"\x1bE", b"\x0c", b"\x1b*b4W", b"\x1b*b", b"W", b"\x1b&l1o2A", b"\x1b%-12345X",
           b"@PJL ENTER LANGUAGE=PCL\n",
           b"@PJL ENTER LANGUAGE=PCLXL\n", b"\x1b"]
# Documents made of the markers the counter looks for, with noise between them.
piece = st.one_of(st.sampled_from(MARKERS), st.binary(max_size=12), st.integers(0, 10**12).map(lambda n: b"%d" % n))
document = st.lists(piece, max_size=40).map(b"".join)


def count(chunks):
    counter = PageCounter()
    for chunk in chunks:
        counter.feed(chunk)
    return counter.pages()


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


@given(st.one_of(document, st.binary(max_size=2048)))
@example(b"%!PS\n%%Pages: " + b"9" * 5000 + b"\n")  # int() refuses past 4,300 digits: the submit failed with a 500
@example(b"%PDF-1.4\n/Type /Pages /Count " + b"1" * 40 + b"\n")  # absurd: no printer prints 10^39 pages
@example(b"@PJL SET PAGES=0")  # was 0 pages; a count of nothing is no count (None), as for PDF and DSC
@fuzz()
def test_pages_is_none_or_a_plausible_count(data):
    pages = count([data])
    assert pages is None or (isinstance(pages, int) and 1 <= pages <= 10**9)


@given(document, st.lists(st.integers(0, 10**6), max_size=8))
@example(b"%PDF-1.4\n/Type /Page" + b"s\n", [len(b"%PDF-1.4\n/Type /Page")])  # the tree root counted as a page
@example(b"%!PS\n%%Pages: 12\n", [len(b"%!PS\n%%Pages: 1")])
@fuzz()
def test_pages_do_not_depend_on_how_the_stream_is_chunked(data, cuts):
    """The network decides where chunks end; the count must not."""
    assert count(split(data, cuts)) == count([data])


@given(document, st.binary(min_size=1, max_size=300))
@fuzz()
def test_a_marker_far_from_the_start_is_seen_in_any_chunking(data, filler):
    """Bytes the counter keeps between chunks cover a marker split across them, wherever it lies."""
    long = b"%PDF-1.5\n" + filler * 3 + data
    assert count(split(long, [len(long) // 3, len(long) // 2 + 1])) == count([long])


def test_hostile_repetitions_cost_one_pass():
    """A 64 KiB chunk of "/Type/Pages" without a ">" took 2 s of CPU (a scan to the chunk's end per
    occurrence: quadratic in the chunk). The same bytes in 64 KiB chunks or in 16 KiB ones must cost
    about the same CPU (quadratic work would make the large chunks cost 4 times as much), whatever
    the machine's speed."""
    def cpu(chunks: list[bytes]) -> float:
        best = float("inf")
        for _ in range(3):
            started = time.thread_time()  # this thread's CPU: not the suite's other threads'
            count(chunks)
            best = min(best, time.thread_time() - started)
        return best

    for unit in (b"/Type/Pages", b"/Count 1 ", b"/Type /Page "):
        body = unit * (256 * 1024 // len(unit))
        large = [b"%PDF-1.4\n" + body[i:i + 64 * 1024] for i in range(0, len(body), 64 * 1024)]
        small = [b"%PDF-1.4\n" + body[i:i + 16 * 1024] for i in range(0, len(body), 16 * 1024)]
        assert cpu(large) < 2 * cpu(small) + 0.05, unit
