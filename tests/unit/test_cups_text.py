"""What the collector's output queues let through to a cupsd: names without whitespace or controls."""

from __future__ import annotations

import pytest

from collector.output import cups_queue


@pytest.mark.parametrize(("title", "shown"), [
    ("Quarterly report", "Quarterly\u00a0report"),
    ("  padded\t\ttabs\nnew  ", "padded\u00a0tabs\u00a0new"),
    ("bell\x07 del\x7f c1\x85x", "bell\u00a0del\u00a0c1\u00a0x"),  # NEL (U+0085) is whitespace too
    ("ctrl\x01\x1bonly", "ctrlonly"),
    ("it's \"q\" \\", "it's\u00a0\"q\"\u00a0\\"),
    ("", "untitled"),
    (" \t\n", "untitled"),
    ("\x00\x01", "untitled"),
])
def test_titles_become_safe_readable_names(title: str, shown: str) -> None:
    assert cups_queue.cups_text(title, "untitled") == shown


def test_long_titles_are_cut_to_255_octets_on_a_character_boundary() -> None:
    name = cups_queue.cups_text("é" * 300, "untitled")
    assert len(name.encode()) <= 255
    assert name == "é" * 127  # 254 octets: the 128th "é" would split


def test_print_options_with_whitespace_or_controls_are_left_out() -> None:
    options = {"media": "iso_a4_210x297mm", "sides": "two-sided-long-edge ", "finishings": "3 4",
               "number-up": "2\x00", "page-ranges": "1-3", "job-billing": "not a print option"}
    assert cups_queue.cups_options(options) == {"media": "iso_a4_210x297mm", "sides": "two-sided-long-edge",
                                                "page-ranges": "1-3"}
