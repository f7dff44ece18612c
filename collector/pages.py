"""Page counting while a document streams in: PDF page objects, PostScript DSC comments, PJL job attributes."""

from __future__ import annotations

import copy
import re

# Bounded repetitions: every match but the page tree's fits in the bytes kept between chunks, and a
# count of ten digits or more (or past int()'s 4,300-digit limit) is no count at all.
_PDF_PAGE = re.compile(rb"/Type\s{0,32}/Page(?![a-zA-Z])")
# The span between /Type /Pages and /Count stops at the next /Type (or /Count): one pass over hostile
# input ("/Type/Pages" repeated, no ">") instead of one scan to the chunk's end per occurrence.
_PDF_COUNT = re.compile(rb"/Type\s{0,32}/Pages\b(?:[^>/]|/(?!Type))*?/Count\s{1,32}(\d{1,9})(?!\d)"
                        rb"|/Count\s{1,32}(\d{1,9})(?!\d)(?:[^>/]|/(?!Count))*?/Type\s{0,32}/Pages\b", re.S)
_DSC_PAGES = re.compile(rb"%%Pages:\s{0,32}(\d{1,9})(?!\d)")
_DSC_PAGE = re.compile(rb"%%Page:\s")
_PJL_PAGES = re.compile(rb'@PJL\s{1,32}(?:SET\s{1,32})?(?:JOBATTR\s{0,32}=\s{0,32}"?)?(?:PAGES|TOTALPAGES)'
                        rb"\s{0,32}=\s{0,32}(\d{1,9})(?!\d)", re.I)
_TAIL = 256  # bytes kept between chunks so a marker split across two chunks is still seen


def _settled(pattern: re.Pattern[bytes], window: bytes, boundary: int) -> list[re.Match[bytes]]:
    """The matches to take from this window: not taken before (ending at or past the kept tail) and final.

    A match that reaches the window's end may grow with the next chunk ("/Page" + "s", "%%Pages: 1" + "2"):
    it waits for the next window, which holds it whole, unless it is too long for the kept tail."""
    return [m for m in pattern.finditer(window)
            if m.end() >= boundary and (m.end() < len(window) or m.start() < len(window) - _TAIL)]


class PageCounter:
    """Feed it the document chunk by chunk; `pages()` gives the count, or None when the format says nothing."""

    def __init__(self) -> None:
        self._head = b""
        self._tail = b""
        self._pdf_pages = 0
        self._pdf_count: int | None = None
        self._dsc_pages: int | None = None
        self._dsc_page_marks = 0
        self._pjl_pages: int | None = None

    def feed(self, chunk: bytes) -> None:
        if not chunk:
            return
        if len(self._head) < 8:
            self._head = (self._head + chunk)[:8]
        window = self._tail + chunk
        self._take(window, len(self._tail))
        self._tail = window[-_TAIL:]

    def _take(self, window: bytes, boundary: int, *, final: bool = False) -> None:
        def found(pattern: re.Pattern[bytes]) -> list[re.Match[bytes]]:
            if final:  # the end of the document: what waited at the window's end is final now
                return [m for m in pattern.finditer(window) if m.end() == len(window)]
            return _settled(pattern, window, boundary)

        self._pdf_pages += len(found(_PDF_PAGE))
        for m in found(_PDF_COUNT):
            self._pdf_count = max(self._pdf_count or 0, int(m.group(1) or m.group(2)))
        for m in found(_DSC_PAGES):
            self._dsc_pages = int(m.group(1))
        self._dsc_page_marks += len(found(_DSC_PAGE))
        for m in found(_PJL_PAGES):
            self._pjl_pages = int(m.group(1))

    def pages(self) -> int | None:
        final = copy.copy(self)  # pages() may be asked before the end; the stream's state stays as it is
        final._take(self._tail, 0, final=True)
        if final._head.startswith(b"%PDF"):
            # The page tree's /Count is authoritative; counting page objects covers broken trees.
            return final._pdf_count or final._pdf_pages or None
        if final._head.startswith(b"%!"):
            return final._dsc_pages or final._dsc_page_marks or None
        return final._pjl_pages or None  # PAGES=0 says nothing either
