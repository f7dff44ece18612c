"""What a document is, by its first bytes: the kinds printers take as they are (mail and upload intake)."""

from __future__ import annotations

# The printable kinds and what people call them (rendering other kinds is not done yet: docs/email.md).
KINDS = {"application/pdf": "PDF", "application/postscript": "PostScript", "application/vnd.hp-pcl": "PCL",
         "text/plain": "text"}
# The page description languages a printer record may list (analyst printers.languages), and the
# language of each kind (what intake knows a held job as).
LANGUAGES = ("pdf", "postscript", "pcl", "text")
LANGUAGE_OF = {"application/pdf": "pdf", "application/postscript": "postscript",
               "application/vnd.hp-pcl": "pcl", "text/plain": "text",
               # What phones send over IPP (IPP Everywhere's PWG raster, AirPrint's Apple raster): no
               # printer record lists it, so it is always converted at release (to PDF, then onwards).
               "image/pwg-raster": "raster", "image/urf": "raster"}
KIND_OF = {language: kind for kind, language in LANGUAGE_OF.items() if language in LANGUAGES}


def sniff(data: bytes) -> str | None:
    """The printable kind of `data` by its first bytes (not by any label a sender gave it), or None."""
    head = data[:1024].lstrip(b"\r\n\t ")
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"%!PS") or head.startswith(b"\x04%!PS"):
        return "application/postscript"
    if head.startswith((b"\x1bE", b"\x1b%-12345X")):
        return "application/vnd.hp-pcl"
    return None


def is_text(data: bytes) -> bool:
    """Plain UTF-8 text with no NUL or escape (which would make it printer commands, not text)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return not any(c in text for c in "\x00\x1b")


def kind_of(data: bytes, declared: str = "") -> str | None:
    """`sniff`, or text/plain when it was declared so (or has no label) and is plain text; None: not printable."""
    return sniff(data) or ("text/plain" if declared in ("text/plain", "") and is_text(data) else None)
