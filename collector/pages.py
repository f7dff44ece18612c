"""Page counting while a document streams in: PDF page trees, PostScript DSC comments, PJL attributes, PCL 5."""

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
_PJL_LANGUAGE = re.compile(rb"@PJL\s{1,32}ENTER\s{1,32}LANGUAGE\s{0,32}=\s{0,32}([A-Z0-9]{1,16})", re.I)
_TAIL = 256  # bytes kept between chunks so a marker split across two chunks is still seen

# PCL 5: the next escape or form feed; one parameter group of an escape sequence (value, character).
_PCL_NEXT = re.compile(rb"[\x1b\x0c]")
_PCL_GROUP = re.compile(rb"([+-]?[0-9]{0,12}(?:\.[0-9]{0,12})?)([\x40-\x7e])")
_PCL_PENDING_MAX = 64  # an escape sequence's head or one parameter group longer than this is garbage
_PCL_DATA_MAX = 1 << 31


class Pcl5Pages:
    """Pages of a PCL 5 stream: form feeds, plus a page left marked at a reset or the end.

    The escape sequences are parsed, so the bytes of binary data they carry (raster rows, fonts,
    patterns, transparent print data: `ESC *b#W`, `ESC (s#W`, `ESC &p#X`, …) are skipped, not
    searched for form feeds. State carries over between chunks: how the stream is cut does not
    matter.
    """

    def __init__(self) -> None:
        self.ejected = 0
        self.marked = False        # something was put on the current page
        self._pending = b""        # an escape sequence (or group) cut by the chunk's end
        self._skip = 0             # binary data bytes still to pass over
        self._sequence = b""       # the parameterized sequence being read (its parameter and group)
        self._pjl = False          # after a Universal Exit Language: PJL text lines, which print nothing

    def feed(self, chunk: bytes) -> None:
        data = self._pending + chunk
        self._pending = b""
        pos, end = 0, len(data)
        while pos < end:
            if self._skip:
                taken = min(self._skip, end - pos)
                pos += taken
                self._skip -= taken
                continue
            if self._sequence:
                group = _PCL_GROUP.match(data, pos)
                if group is None:
                    if end - pos < _PCL_PENDING_MAX:
                        self._pending = data[pos:]
                        return
                    self._sequence = b""  # not PCL after all: read on as text
                    continue
                pos = self._parameter(group)
                continue
            found = _PCL_NEXT.search(data, pos)
            text = data[pos:found.start() if found else end]
            if not self._pjl and text.strip(b" \t\r\n\x00"):
                self.marked = True
            if found is None:
                return
            at = found.start()
            if data[at] == 0x0C:
                self.ejected += 1
                self.marked = False
                pos = at + 1
                continue
            if end - at < 3:  # ESC and what follows it may be cut here
                self._pending = data[at:]
                return
            kind = data[at + 1]
            if 0x21 <= kind <= 0x2F:  # parameterized: ESC, a parameter, an optional group, then groups
                group_char = data[at + 2]
                if 0x60 <= group_char <= 0x7E:
                    self._sequence, pos = data[at + 1:at + 3], at + 3
                else:
                    self._sequence, pos = data[at + 1:at + 2], at + 2
                continue
            self._pjl = False
            if kind == 0x45 and self.marked:  # ESC E, the reset, prints a page left marked
                self.ejected += 1
                self.marked = False
            pos = at + 2

    def _parameter(self, group: re.Match[bytes]) -> int:
        value, char = group.group(1), group.group(2).upper()
        sequence = self._sequence
        final = 0x40 <= group.group(2)[0] <= 0x5E  # an upper-case character ends the sequence
        # ESC %-12345X, the Universal Exit Language: PJL lines follow, until the next PCL escape.
        self._pjl = sequence == b"%" and char == b"X" and value == b"-12345"
        if char == b"W" or (sequence == b"*b" and char == b"V") or (sequence == b"&p" and char == b"X"):
            try:
                self._skip = min(abs(int(float(value or b"0"))), _PCL_DATA_MAX)
            except ValueError:
                self._skip = 0
            if sequence in (b"*b", b"&p") and self._skip:  # raster rows, transparent print data: marks
                self.marked = True
        if final:
            self._sequence = b""
        return group.end()

    def pages(self) -> int | None:
        return (self.ejected + (1 if self.marked else 0)) or None


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
        self._pjl_language: bytes | None = None
        self._pcl: Pcl5Pages | None = None

    def feed(self, chunk: bytes) -> None:
        if not chunk:
            return
        if len(self._head) < 8:
            self._head = (self._head + chunk)[:8]
            if self._pcl is None and self._head.startswith(b"\x1b"):  # PCL or PJL: both begin with ESC
                self._pcl = Pcl5Pages()
        window = self._tail + chunk
        self._take(window, len(self._tail))
        self._tail = window[-_TAIL:]
        if self._pcl is not None:
            if self._pjl_language not in (None, b"PCL"):
                self._pcl = None  # PCL XL or PostScript after PJL: not PCL 5, stop reading it as such
            else:
                self._pcl.feed(chunk)

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
        for m in found(_PJL_LANGUAGE):
            self._pjl_language = self._pjl_language or m.group(1).upper()

    def pages(self) -> int | None:
        final = copy.copy(self)  # pages() may be asked before the end; the stream's state stays as it is
        final._take(self._tail, 0, final=True)
        if final._head.startswith(b"%PDF"):
            # The page tree's /Count is authoritative; counting page objects covers broken trees.
            return final._pdf_count or final._pdf_pages or None
        if final._head.startswith(b"%!"):
            return final._dsc_pages or final._dsc_page_marks or None
        if final._pjl_pages:
            return final._pjl_pages  # PAGES=0 says nothing either
        if final._pcl is not None and final._pjl_language in (None, b"PCL"):
            # PCL 5 (a reset first, or PJL that enters PCL): its pages, counted as they streamed
            return final._pcl.pages()
        return None
