"""The document filter: strips (or refuses) the PJL and PostScript commands that change a printer, not a page.

Anyone who can print can send raw PJL and PostScript, and printers obey commands that outlive the job:
``@PJL DEFAULT`` and ``INITIALIZE`` rewrite the NVRAM defaults (and wear it out), ``FSDOWNLOAD`` and
the other ``FS*`` commands read and write the printer's file system, ``RDYMSG``/``OPMSG``/``STMSG``
put a message on the panel for the next user, ``SET PASSWORD``/``CPLOCK``/``DISKLOCK``/
``SERVICEMODE`` lock the owner out or unlock service functions, ``DMCMD``/``DMINFO`` are device
management; PostScript's ``exitserver`` and ``startjob`` leave the job's save level so that later
jobs can be captured or broken, ``setsystemparams``/``setdevparams`` change passwords and device
settings, ``deletefile``/``renamefile``/``filenameforall`` touch the printer's disk and
``superexec`` lifts access checks (Müller et al., "Exploiting Network Printers", 2017; PRET).

Modes, per printer (the analyst's ``printers.document_filter``):

- ``strip`` (default): those PJL lines are removed (an ``FSDOWNLOAD``'s payload with them);
  those PostScript operators become stack-equivalent no-ops (``exitserver`` → ``pop``, ``startjob``
  → ``pop pop false``, …) and their literal names (``/exitserver``) a name no dictionary has, so the
  document still prints and nothing outlives it.
- ``refuse``: a document holding any of them is not printed at all; the job fails with the
  reason ``document-refused:<command>`` (e.g. ``document-refused:pjl-default``).
- ``off``: the bytes go to the printer as they are.

How it reads a document: PJL is only interpreted at the start of the data and after each Universal
Exit Language (``ESC%-12345X``), line by line, until ``@PJL ENTER LANGUAGE`` or a line that is not
PJL; the printer then reads page description data until the next UEL. Data that starts ``%PDF``,
or PCL/PCL XL, passes byte for byte; anything else is scanned as PostScript, where the operators
are matched as whole tokens anywhere (strings included: a lexer that could be fooled into "inside a
string" would be a way round). It works chunk by chunk with bounded memory (a PJL line is at most
`MAX_LINE` bytes; a few bytes are held back where a UEL or an operator could straddle chunks).

Not covered: PostScript that builds an operator's name at run time (``(exit) (server) … cvx exec``),
and PCL permanent macros/fonts. The printer's own StartJobPassword / SystemParamsPassword and a PJL
password remain the last defence; docs/printers.md says so.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

STRIP, REFUSE, OFF = "strip", "refuse", "off"
MODES = (STRIP, REFUSE, OFF)
DEFAULT_MODE = STRIP
REFUSED_PREFIX = "document-refused:"

UEL = b"\x1b%-12345X"
MAX_LINE = 8192  # a PJL line longer than this is judged on its first MAX_LINE bytes

# PJL commands that change the device (by command word, case-insensitive); every FS* command too.
_PJL_COMMANDS = frozenset({"DEFAULT", "INITIALIZE", "DMCMD", "DMINFO", "RDYMSG", "OPMSG", "STMSG"})
# Variables whose SET locks the panel or disk, sets a password or enters service mode.
_PJL_LOCKED_VARIABLES = frozenset({"PASSWORD", "CPLOCK", "DISKLOCK", "SERVICEMODE"})
_PJL_SIZE = re.compile(rb"SIZE\s*=\s*(\d{1,12})", re.IGNORECASE)
_PJL_LANGUAGE = re.compile(rb"LANGUAGE\s*=\s*([A-Za-z0-9_]+)", re.IGNORECASE)
_PJL_SET_VARIABLE = re.compile(rb"\s*(?:LPARM\s*:\s*\S+\s+)?([A-Za-z0-9_]+)", re.IGNORECASE)

# PostScript operator -> what replaces it: the same operands consumed, the same results pushed.
PS_REPLACEMENTS: dict[bytes, bytes] = {
    b"exitserver": b"pop",                # password exitserver
    b"startjob": b"pop pop false",        # bool password startjob -> bool (false: refused)
    b"setsystemparams": b"pop",           # dict setsystemparams
    b"setdevparams": b"pop pop",          # string dict setdevparams
    b"deletefile": b"pop",                # filename deletefile
    b"renamefile": b"pop pop",            # old new renamefile
    b"filenameforall": b"pop pop pop",    # template proc scratch filenameforall
    b"superexec": b"pop",                 # proc superexec
}
_PS_WORDS = b"|".join(word for _, word in sorted((-len(word), word) for word in PS_REPLACEMENTS))
_PS_DELIMS = rb"\x00\t\n\x0c\r ()<>\[\]{}/%"
_PS_DELIMS_BUT_SLASH = rb"\x00\t\n\x0c\r ()<>\[\]{}%"
# An executable name: not preceded by a regular character or a slash, not followed by a regular one.
# A literal (/name) or immediately evaluated (//name) name: the slashes start the token.
_PS_TOKEN = re.compile(rb"(?P<slash>//?)(?P<lit>" + _PS_WORDS + rb")(?![^" + _PS_DELIMS + rb"])"
                       rb"|(?<![^" + _PS_DELIMS_BUT_SLASH + rb"])(?P<exe>" + _PS_WORDS + rb")(?![^"
                       + _PS_DELIMS + rb"])")
_PS_DELIM_SET = frozenset(b"\x00\t\n\x0c\r ()<>[]{}/%")
_PS_MAX_TOKEN = 2 + max(len(word) for word in PS_REPLACEMENTS)


class _PostScript:
    """Rewrites the dangerous operators in a stream of PostScript, holding back at most one short token."""

    def __init__(self, found: list[str]) -> None:
        self.found = found
        self._carry = b""     # the start of a token that may continue in the next chunk
        self._in_run = False  # the last chunk ended inside a run of regular characters too long to matter

    def feed(self, data: bytes, *, final: bool = False) -> bytes:
        # Inside a long run of regular characters, a leading "a" keeps the next chunk's first bytes
        # from reading as the start of a token; it is dropped from the output again.
        lead = 1 if self._in_run and not self._carry else 0
        buf = b"a" * lead + self._carry + data
        self._carry, self._in_run = b"", False
        if final:
            cut = len(buf)
        else:
            last = max(buf.rfind(bytes([d])) for d in _PS_DELIM_SET)
            if last >= 0 and len(buf) - last <= _PS_MAX_TOKEN + 1:
                cut = last  # the token after the last delimiter may be unfinished: held back
            elif last < 0 and not lead and len(buf) <= _PS_MAX_TOKEN:
                cut = 0
            else:  # ends in a run of regular characters longer than any operator: not one of them
                cut = len(buf)
                self._in_run = buf[-1] not in _PS_DELIM_SET
        out = bytearray()
        position = 0
        # The token pattern is tried at every byte; a plain search for the words skips almost every
        # chunk of a real document (none of them in it) at memchr's speed.
        suspect = any(word in buf for word in PS_REPLACEMENTS)
        for match in _PS_TOKEN.finditer(buf) if suspect else ():
            if match.end() > cut:
                break  # touches what is held back: judged with the next chunk
            out += buf[position:match.start()]
            if match.group("lit"):
                word = match.group("lit")
                out += match.group("slash") + b"pullprint-stripped-" + word
            else:
                word = match.group("exe")
                out += PS_REPLACEMENTS[word]
            self.found.append("ps-" + word.decode())
            position = match.end()
        out += buf[position:cut]
        self._carry = buf[max(cut, position):]
        return bytes(out[lead:])


class DocumentFilter:
    """Feed a document's chunks in order, then `close()`; `found` lists what was (or would be) stripped."""

    def __init__(self, mode: str = DEFAULT_MODE) -> None:
        if mode not in MODES:
            raise ValueError(f"document filter mode must be one of {', '.join(MODES)}, got {mode!r}")
        self.mode = mode
        self.found: list[str] = []
        self._pending = b""
        self._pjl = True          # reading PJL lines (start of data, after each UEL) or PDL data
        self._skip = 0            # bytes of a stripped FSDOWNLOAD/FSAPPEND payload still to drop
        self._rest_of_line: str | None = None  # "drop" / "pass": the tail of an over-long PJL line
        self._kind: str | None = None          # the PDL segment: "ps", "raw", or None (not known yet)
        self._language = b""
        self._ps: _PostScript | None = None
        self._dropped_last = False  # the last PJL command line was stripped

    # -- public -------------------------------------------------------------------------------------
    def feed(self, chunk: bytes) -> bytes:
        if self.mode == OFF:
            return chunk
        self._pending += chunk
        return self._run(final=False)

    def close(self) -> bytes:
        if self.mode == OFF:
            return b""
        return self._run(final=True)

    # -- the state machine ---------------------------------------------------------------------------
    def _run(self, *, final: bool) -> bytes:
        out = bytearray()
        while self._pending:
            if self._skip:
                dropped = min(self._skip, len(self._pending))
                self._skip -= dropped
                self._pending = self._pending[dropped:]
                continue
            progressed = self._pjl_step(out, final) if self._pjl else self._pdl_step(out, final)
            if not progressed:
                break
        if final and self._ps is not None:
            out += self._ps.feed(b"", final=True)
            self._ps = None
        return bytes(out)

    def _pjl_step(self, out: bytearray, final: bool) -> bool:
        data = self._pending
        if self._rest_of_line is not None:
            end = _line_end(data)
            piece = data if end is None else data[:end]
            if self._rest_of_line == "pass":
                out += piece
            if end is not None:
                self._rest_of_line = None
            self._pending = data[len(piece):]
            return True
        if data.startswith(UEL):
            out += UEL
            self._pending = data[len(UEL):]
            return True
        if not final and len(data) < len(UEL) and UEL.startswith(data):
            return False  # perhaps a UEL, cut by the chunk boundary
        end = _line_end(data)
        if end is None:
            if len(data) < MAX_LINE and not final:
                return False
            line, complete = data[:MAX_LINE], False
        else:
            line, complete = data[:end], True
        command = line.lstrip(b" \t\r\n\x00")
        if not command.strip():
            out += line  # blank: still PJL
        elif command[:4].upper() == b"@PJL":
            self._pjl_command(out, line, command[4:])
            if not complete:  # judged on its first MAX_LINE bytes; the rest of it follows suit
                self._rest_of_line = "drop" if self._dropped_last else "pass"
        else:
            self._enter_pdl(b"")  # not PJL: the page description starts here (same bytes)
            return True
        self._pending = data[len(line):]
        return True

    def _pjl_command(self, out: bytearray, line: bytes, rest: bytes) -> None:
        words = rest.split()
        command = words[0].decode("latin-1").upper() if words else ""
        code = None
        if command in _PJL_COMMANDS or command.startswith("FS"):
            code = f"pjl-{command.lower()}"
        elif command == "SET":
            after = rest[rest.upper().find(b"SET") + 3:]
            variable = _PJL_SET_VARIABLE.match(after)
            if variable and variable.group(1).decode("latin-1").upper() in _PJL_LOCKED_VARIABLES:
                code = f"pjl-set-{variable.group(1).decode('latin-1').lower()}"
        self._dropped_last = code is not None
        if code is None:
            out += line
            if command == "ENTER":
                language = _PJL_LANGUAGE.search(rest)
                self._enter_pdl(language.group(1).upper() if language else b"")
            return
        self.found.append(code)
        if command in ("FSDOWNLOAD", "FSAPPEND"):
            size = _PJL_SIZE.search(rest)
            self._skip = int(size.group(1)) if size else 0  # the payload follows the line: it goes too

    def _enter_pdl(self, language: bytes) -> None:
        self._pjl = False
        self._language = language
        self._kind = {b"POSTSCRIPT": "ps", b"PDF": "raw", b"PCL": "raw", b"PCLXL": "raw"}.get(language)
        self._ps = _PostScript(self.found) if self._kind == "ps" else None

    def _pdl_step(self, out: bytearray, final: bool) -> bool:
        data = self._pending
        if self._kind is None:
            head = data.lstrip(b" \t\r\n\x04\x00")
            if len(head) < 5 and not final and len(data) < 64 and UEL not in data:
                return False  # not enough to tell what this is yet
            pcl = head[:1] == b"\x1b" and not head.startswith(UEL)
            self._kind = "raw" if head.startswith(b"%PDF") or pcl or head.startswith(b") HP-PCL XL") else "ps"
            if self._kind == "ps":
                self._ps = _PostScript(self.found)
        at = data.find(UEL)
        if at >= 0:
            segment, self._pending, ends = data[:at], data[at:], True
        else:
            keep = 0 if final else _uel_prefix_at_end(data)
            segment, self._pending, ends = data[:len(data) - keep], data[len(data) - keep:], final
        if self._kind == "ps":
            assert self._ps is not None
            out += self._ps.feed(segment, final=ends)
        else:
            out += segment
        if at >= 0:
            self._pjl, self._kind, self._ps = True, None, None
            return True
        return False


def _line_end(data: bytes) -> int | None:
    """Where the first PJL line ends: after its LF, or before a UEL (which always starts anew)."""
    newline, uel = data.find(b"\n"), data.find(UEL)
    ends = [i for i in (newline + 1 if newline >= 0 else -1, uel) if i > 0]
    return min(ends) if ends else None


def _uel_prefix_at_end(data: bytes) -> int:
    """How many bytes at the end of `data` could be the start of a UEL cut by the chunk boundary."""
    for size in range(min(len(UEL) - 1, len(data)), 0, -1):
        if UEL.startswith(data[-size:]):
            return size
    return 0


def filtered(chunks: Iterable[bytes], mode: str = DEFAULT_MODE) -> Iterator[bytes]:
    """The document `chunks` with the device-changing commands stripped (``strip``) or left (``off``)."""
    doc = DocumentFilter(STRIP if mode == REFUSE else mode)
    for chunk in chunks:
        if out := doc.feed(chunk):
            yield out
    if tail := doc.close():
        yield tail


def first_refused_command(chunks: Iterable[bytes]) -> str | None:
    """The first device-changing command in the document (``pjl-default``, ``ps-exitserver``, …), or None."""
    doc = DocumentFilter(STRIP)
    try:
        for chunk in chunks:
            doc.feed(chunk)
            if doc.found:
                return doc.found[0]
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()  # a spool file read only part way
    doc.close()
    return doc.found[0] if doc.found else None


def strictest(*printers: dict[str, object] | None) -> str:
    """The strictest mode among these records of one printer (the one a release was given, the synced
    directory's): tightening a printer's filter takes effect at once, relaxing it once both agree."""
    modes = [mode_of(printer) for printer in printers] or [DEFAULT_MODE]
    return max(modes, key=(OFF, STRIP, REFUSE).index)


def mode_of(printer: dict[str, object] | None) -> str:
    """A printer record's filter mode; missing or unknown reads as the default (strip), never as off."""
    value = (printer or {}).get("document_filter")
    return value if isinstance(value, str) and value in MODES else DEFAULT_MODE
