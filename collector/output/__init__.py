"""Printer outputs behind one interface, chosen by the printer URI's scheme from a registry."""

from __future__ import annotations

import importlib

from collector.output.base import (
    SUCCESS,
    DeliveryResult,
    OutputJob,
    PrinterOutput,
    UnsupportedPrinterUri,
    scheme_of,
)

# scheme -> "module:class" of the output that serves it, imported on first use, so that a node whose
# printers are all raw sockets never loads pycups.
OUTPUTS: dict[str, str] = {
    "socket": "collector.output.raw_socket:RawSocketOutput",
    "ipp": "collector.output.cups_queue:CupsQueueOutput",
    "ipps": "collector.output.cups_queue:CupsQueueOutput",
    "lpd": "collector.output.cups_queue:CupsQueueOutput",
}
# The schemes sent through the collector's local cupsd: their output takes its address.
VIA_CUPSD = frozenset({"ipp", "ipps", "lpd"})


def output_for(uri: str, *, cups_server: str | None = None) -> PrinterOutput:
    """The output for `uri`: socket:// is sent directly; ipp, ipps and lpd go through the local cupsd.

    `cups_server` ("127.0.0.1:PORT", see pullprint.cupsd.PrivateCupsd.server) is needed for the
    queued schemes.
    """
    scheme = scheme_of(uri)
    if scheme not in OUTPUTS:
        raise UnsupportedPrinterUri(f"no output path for {scheme or 'this'}:// printer URIs "
                                    f"(supported: {', '.join(OUTPUTS)})")
    if scheme in VIA_CUPSD and not cups_server:
        raise UnsupportedPrinterUri(f"{scheme}:// printers need the collector's local cupsd (cups_server)")
    module_name, class_name = OUTPUTS[scheme].split(":")
    output_class = getattr(importlib.import_module(module_name), class_name)
    output: PrinterOutput = output_class(cups_server) if scheme in VIA_CUPSD else output_class()
    return output


__all__ = ["OUTPUTS", "SUCCESS", "VIA_CUPSD", "DeliveryResult", "OutputJob", "PrinterOutput",
           "UnsupportedPrinterUri", "output_for", "scheme_of"]
