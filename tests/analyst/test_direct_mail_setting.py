"""Which printers print mail to their own address at once: off unless the operator says so, validated,
served to the collectors, set from the CLI."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from analyst.cli import printer_main
from tests.analyst.conftest import Api


def test_a_printer_does_not_print_mail_at_once_unless_opened_to_it(api: Api) -> None:
    created = api.post("/printers", json={"id": "p1", "uri": "socket://10.0.0.1:9100"})
    assert created.status_code == 201 and created.json["printer"]["direct_mail"] is False
    assert api.post("/printers", json={"id": "p1", "direct_mail": True}).status_code == 200
    assert api.get("/printers/p1").json["printer"]["direct_mail"] is True
    # A change of anything else keeps it; the collectors see it in the directory they sync.
    assert api.post("/printers", json={"id": "p1", "location": "Library"}).status_code == 200
    assert [p["direct_mail"] for p in api.get("/sync").json["printers"]] == [True]


@pytest.mark.parametrize("value", ["yes", 1, "true", [True]])
def test_direct_mail_must_be_true_or_false(api: Api, value: object) -> None:
    answer = api.post("/printers", json={"id": "p1", "uri": "socket://10.0.0.1:9100", "direct_mail": value})
    assert answer.status_code == 400 and answer.json["field"] == "direct_mail"
    assert api.get("/printers/p1").status_code == 404


def test_the_cli_opens_and_closes_a_printer_to_mail(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PULLPRINT_ANALYST_DB_URL", f"sqlite:///{tmp_path / 'analyst.db'}")
    assert printer_main(["add", "p1", "--uri", "socket://10.0.0.1:9100", "--direct-mail"], out=io.StringIO()) == 0
    listing = io.StringIO()
    printer_main(["list"], out=listing)
    assert "direct_mail=on" in listing.getvalue()
    assert printer_main(["add", "p1", "--no-direct-mail"], out=io.StringIO()) == 0
    listing = io.StringIO()
    printer_main(["list"], out=listing)
    assert "direct_mail=off" in listing.getvalue()
