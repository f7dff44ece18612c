"""Each printer's document filter (issue 9): stored, validated, served to the collectors, set from the CLI."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from analyst.app import create_app
from analyst.cli import printer_main
from analyst.printers.service import DOCUMENT_FILTERS
from collector.output import document_filter
from tests.analyst.conftest import Api, make_config


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'analyst.db'}"  # no SQL of its own beyond a column; one database is enough


def test_a_printer_filters_by_default_and_keeps_the_mode_it_is_given(api: Api) -> None:
    created = api.post("/printers", json={"id": "p1", "uri": "socket://10.0.0.1:9100"})
    assert created.status_code == 201 and created.json["printer"]["document_filter"] == "strip"
    assert api.post("/printers", json={"id": "p1", "document_filter": "refuse"}).status_code == 200
    assert api.get("/printers/p1").json["printer"]["document_filter"] == "refuse"
    # The collectors read it from the directory they sync.
    assert [p["document_filter"] for p in api.get("/sync").json["printers"]] == ["refuse"]


@pytest.mark.parametrize("value", ["OFF", "none", "", 1, True])
def test_an_unknown_mode_is_a_400(api: Api, value: object) -> None:
    answer = api.post("/printers", json={"id": "p1", "uri": "socket://10.0.0.1:9100", "document_filter": value})
    assert answer.status_code == 400 and answer.json["field"] == "document_filter"


def test_the_cli_sets_the_mode(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PULLPRINT_ANALYST_DB_URL", db_url)
    out = io.StringIO()
    assert printer_main(["add", "p1", "--uri", "socket://10.0.0.1:9100", "--document-filter", "off",
                         "--db-url", db_url], out=out) == 0
    printer_main(["list", "--db-url", db_url], out=out)
    assert "filter=off" in out.getvalue()
    with pytest.raises(SystemExit):
        printer_main(["add", "p1", "--document-filter", "maybe", "--db-url", db_url])
    app = create_app(make_config(db_url))
    try:
        assert Api(app.test_client()).get("/printers/p1").json["printer"]["document_filter"] == "off"
    finally:
        app.extensions["pullprint.analyst"].db.dispose()


def test_the_analyst_and_the_collectors_know_the_same_modes() -> None:
    assert DOCUMENT_FILTERS == document_filter.MODES
    assert DOCUMENT_FILTERS[0] == document_filter.DEFAULT_MODE
