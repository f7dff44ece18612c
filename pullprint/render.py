"""Rendering what no printer speaks into PDF, with the real tools, each run boxed in.

Mail and uploads bring images and office documents; printers take PDF, PostScript, PCL and text.
`to_pdf` turns the others into PDF once, where they come in (so the page count, the user's answer
and the accounting are those of what will print): images and plain text through cups-filters
(``imagetopdf``, ``texttopdf``), office documents through LibreOffice (``soffice --headless``)
when it is installed; without it they are refused with that reason.

Each conversion runs in a box (`_boxed`): its own empty private folder, CPU seconds and address
space capped (RLIMIT_CPU, RLIMIT_AS), a wall-clock timeout, no core files, output capped, and, when
the service runs as root, as the unprivileged `nobody`. A document that hangs the renderer or
eats memory is refused ("could not be rendered") and the service stays up.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pullprint.documents import kind_of, sniff

CUPS_FILTERS = Path("/usr/lib/cups/filter")
# What mail and uploads may bring beyond what printers speak: by sniffed bytes or by the sender's label.
IMAGES = {"image/jpeg": (b"\xff\xd8\xff",), "image/png": (b"\x89PNG\r\n\x1a\n",),
          "image/gif": (b"GIF87a", b"GIF89a"), "image/tiff": (b"II*\x00", b"MM\x00*")}
OFFICE = {".doc", ".docx", ".odt", ".rtf", ".xls", ".xlsx", ".ods", ".ppt", ".pptx", ".odp"}


class RenderError(Exception):
    """The document could not be made printable: `reason` is the sentence the user is told."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Limits:
    seconds: float = 60.0            # wall clock for one conversion
    cpu_seconds: int = 60
    memory_bytes: int = 1024 ** 3    # address space of the renderer
    output_bytes: int = 200 * 1024 ** 2


def image_kind(data: bytes) -> str | None:
    for kind, heads in IMAGES.items():
        if data.startswith(heads):
            return kind
    return None


def is_office(filename: str, data: bytes) -> bool:
    """An office document by its name (and the ZIP or OLE container its formats use, where they do)."""
    suffix = Path(filename).suffix.lower()
    if suffix not in OFFICE:
        return False
    return suffix == ".rtf" and data.startswith(b"{\\rtf") or data.startswith((b"PK\x03\x04", b"\xd0\xcf\x11\xe0"))


def office_available() -> bool:
    return shutil.which("soffice") is not None


def _boxed(argv: list[str], folder: Path, limits: Limits, stdin: bytes | None = None,
           env: dict[str, str] | None = None) -> bytes:
    """Run `argv` in `folder` boxed in; its standard output (RenderError if it fails or overruns).

    The limits are set by util-linux's prlimit and the user by subprocess itself, not in a
    preexec function (which is not safe in the threaded servers this runs in)."""
    environment = {"PATH": "/usr/bin:/bin", "HOME": str(folder), "TMPDIR": str(folder), "LANG": "C.UTF-8",
                   **(env or {})}
    boxed = ["prlimit", f"--cpu={limits.cpu_seconds}", f"--as={limits.memory_bytes}", "--core=0",
             f"--fsize={limits.output_bytes}", "--", *argv]
    root = os.geteuid() == 0
    try:
        done = subprocess.run(boxed, input=stdin, capture_output=True, cwd=folder, env=environment,
                              timeout=limits.seconds, start_new_session=True, check=False,
                              user="nobody" if root else None, group="nogroup" if root else None,
                              extra_groups=[] if root else None)
    except subprocess.TimeoutExpired:
        raise RenderError(f"it could not be rendered within {limits.seconds:g} s") from None
    except OSError as exc:
        raise RenderError(f"the renderer could not be started ({exc.strerror})") from None
    if done.returncode != 0:
        raise RenderError("it could not be rendered (damaged, or too large to render)")
    return done.stdout


def _private_folder() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="pullprint-render-"))
    if os.geteuid() == 0:  # the renderer runs as nobody: its folder is nobody's alone
        nobody = pwd.getpwnam("nobody")
        os.chown(folder, nobody.pw_uid, nobody.pw_gid)
    folder.chmod(0o700)
    return folder


def to_pdf(data: bytes, filename: str, *, limits: Limits = Limits()) -> bytes | None:
    """`data` as PDF when it is an image, plain text or an office document; None when it is already
    what printers speak (PDF, PostScript, PCL) or not a kind this knows. RenderError says why not."""
    if sniff(data):
        return None
    image = image_kind(data)
    office = is_office(filename, data)
    if image is None and not office:
        return None
    folder = _private_folder()
    try:
        if image is not None:
            output = _boxed([str(CUPS_FILTERS / "imagetopdf"), "1", "pullprint", "document", "1", ""], folder,
                            limits, stdin=data, env={"CONTENT_TYPE": image})
        else:
            if not office_available():
                raise RenderError("office documents cannot be printed here (LibreOffice is not installed); "
                                  "send it as PDF")
            source = folder / ("document" + Path(filename).suffix.lower())
            source.write_bytes(data)
            if os.geteuid() == 0:
                nobody = pwd.getpwnam("nobody")
                os.chown(source, nobody.pw_uid, nobody.pw_gid)
            _boxed(["soffice", "--headless", "--norestore", "--convert-to", "pdf", "--outdir", str(folder),
                    source.name], folder, limits)
            output = (folder / "document.pdf").read_bytes() if (folder / "document.pdf").exists() else b""
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if not output.startswith(b"%PDF-"):
        raise RenderError("it could not be rendered (the renderer made no PDF)")
    return output


def printable(data: bytes, filename: str, declared: str = "", *, limits: Limits = Limits()) -> tuple[bytes, str]:
    """(bytes, kind) a printer can take for this file: as it is when it already is PDF, PostScript, PCL
    or plain text (by its bytes; text only when labelled so), else rendered to PDF; RenderError says why not."""
    if not data:
        raise RenderError("the file is empty")
    kind = kind_of(data, "text/plain" if declared == "text/plain" else "other")
    if kind is not None:
        return data, kind
    rendered = to_pdf(data, filename, limits=limits)
    if rendered is None:
        raise RenderError("this kind of file cannot be printed; send it as PDF")
    return rendered, "application/pdf"


def _ghostscript(device: str) -> list[str]:
    # Ghostscript's own messages go to stderr: stdout is the document.
    return ["gs", "-q", "-dSAFER", "-dBATCH", "-dNOPAUSE", "-sstdout=%stderr", f"-sDEVICE={device}",
            "-sOutputFile=%stdout", "-"]


# How a document in each language starts: a conversion's output is checked against it.
_HEADS = {"pdf": (b"%PDF-",), "postscript": (b"%!PS",), "pcl": (b"\x1bE", b"\x1b%-12345X")}
# How each language is turned into another the printer takes, in order of preference.
_CONVERSIONS: dict[str, list[tuple[str, list[str]]]] = {
    "pdf": [("postscript", _ghostscript("ps2write")), ("pcl", _ghostscript("ljet4"))],
    "postscript": [("pdf", _ghostscript("pdfwrite")), ("pcl", _ghostscript("ljet4"))],
    "text": [("pdf", [str(CUPS_FILTERS / "texttopdf"), "1", "pullprint", "document", "1", ""])],
    # cups-filters' rastertopdf reads PWG and Apple (URF) raster alike (libcups tells them by their sync word).
    "raster": [("pdf", [str(CUPS_FILTERS / "rastertopdf"), "1", "pullprint", "document", "1", ""])],
}
# What each filter is told it reads (cups-filters take it from CONTENT_TYPE).
_FILTER_ENV = {"text": {"CONTENT_TYPE": "text/plain", "CHARSET": "utf-8"},
               "raster": {"CONTENT_TYPE": "image/pwg-raster"}}


def for_printer(data: bytes, language: str, languages: tuple[str, ...] | list[str], *,
                limits: Limits = Limits()) -> tuple[bytes, str]:
    """`data` (in `language`) in one of the printer's `languages`: as it is when the printer takes it,
    else converted once (text and phones' raster to PDF with cups-filters; PDF and PostScript to each
    other or to PCL 5 with Ghostscript). RenderError when there is no way (PCL for a printer without PCL)."""
    if language in languages:
        return data, language
    for target, argv in _CONVERSIONS.get(language, []):
        via_pdf = target == "pdf" and "pdf" not in languages
        if target in languages or via_pdf:
            folder = _private_folder()
            try:
                output = _boxed(argv, folder, limits, stdin=data, env=_FILTER_ENV.get(language))
            finally:
                shutil.rmtree(folder, ignore_errors=True)
            if not output.startswith(_HEADS[target]):
                raise RenderError(f"it could not be converted from {language} to {target} (damaged?)")
            return for_printer(output, target, languages, limits=limits) if via_pdf else (output, target)
    raise RenderError(f"this printer takes {', '.join(languages)}, and {language} cannot be converted to them")
