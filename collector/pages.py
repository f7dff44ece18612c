"""Page counting while a document streams in: PDF page objects, PostScript DSC comments, PJL job attributes."""

from __future__ import annotations

import re

_PDF_PAGE = re.compile(rb"/Type\s*/Page(?![a-zA-Z])")
_PDF_COUNT = re.compile(rb"/Type\s*/Pages\b[^>]*?/Count\s+(\d+)|/Count\s+(\d+)[^>]*?/Type\s*/Pages\b", re.S)
_DSC_PAGES = re.compile(rb"%%Pages:\s*(\d+)")
_DSC_PAGE = re.compile(rb"%%Page:\s")
_PJL_PAGES = re.compile(rb'@PJL\s+(?:SET\s+)?(?:JOBATTR\s*=\s*"?)?(?:PAGES|TOTALPAGES)\s*=\s*(\d+)', re.I)
_TAIL = 256  # bytes kept between chunks so a marker split across two chunks is still seen


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
        if len(self._head) < 8:
            self._head = (self._head + chunk)[:8]
        window = self._tail + chunk
        # Count only matches that end inside the new bytes, so nothing in the tail is counted twice.
        boundary = len(self._tail)
        self._pdf_pages += sum(1 for m in _PDF_PAGE.finditer(window) if m.end() > boundary)
        for m in _PDF_COUNT.finditer(window):
            if m.end() > boundary:
                self._pdf_count = max(self._pdf_count or 0, int(m.group(1) or m.group(2)))
        for m in _DSC_PAGES.finditer(window):
            if m.end() > boundary:
                self._dsc_pages = int(m.group(1))
        self._dsc_page_marks += sum(1 for m in _DSC_PAGE.finditer(window) if m.end() > boundary)
        for m in _PJL_PAGES.finditer(window):
            if m.end() > boundary:
                self._pjl_pages = int(m.group(1))
        self._tail = window[-_TAIL:]

    def pages(self) -> int | None:
        if self._head.startswith(b"%PDF"):
            # The page tree's /Count is authoritative; counting page objects covers broken trees.
            return self._pdf_count or self._pdf_pages or None
        if self._head.startswith(b"%!"):
            return self._dsc_pages or self._dsc_page_marks or None
        return self._pjl_pages
