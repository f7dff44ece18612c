"""Printer output paths behind one interface: raw socket (9100) directly, IPP/IPPS/LPD via the local cupsd."""

from __future__ import annotations

from collector.output.base import (
    SUCCESS,
    DeliveryResult,
    OutputJob,
    PrinterOutput,
    UnsupportedPrinterUri,
    output_for,
)

__all__ = ["SUCCESS", "DeliveryResult", "OutputJob", "PrinterOutput", "UnsupportedPrinterUri", "output_for"]
