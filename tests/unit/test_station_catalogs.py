"""The release station's translations: the template holds every text of the sources, each language
translates all of it with the same placeholders, and the compiled catalog is the one Flask-Babel loads."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from collector.station import LANGUAGES

ROOT = Path(__file__).resolve().parents[2]
CATALOGS = ROOT / "collector" / "translations"
PLACEHOLDER = re.compile(r"%\(\w+\)s|\{\w+\}")


def _ids(catalog) -> set[str]:
    return {m.id for m in catalog if m.id}


def test_the_template_holds_every_text_of_the_sources(tmp_path):
    fresh = tmp_path / "messages.pot"
    subprocess.run([sys.executable, "-c", "from babel.messages.frontend import main; main()", "-q", "extract",
                    "-F", str(ROOT / "collector" / "babel.cfg"), "-k", "N_", "-o", str(fresh),
                    str(ROOT / "collector")], check=True, cwd=ROOT)
    with fresh.open("rb") as f:
        extracted = _ids(read_po(f))
    with (CATALOGS / "messages.pot").open("rb") as f:
        committed = _ids(read_po(f))
    assert extracted, "nothing extracted: the babel.cfg mapping is wrong"
    assert extracted == committed, "run the pybabel extract/update in docs/terminals.md"


@pytest.mark.parametrize("language", [lang for lang in LANGUAGES if lang != "en"])
def test_each_language_translates_everything_and_its_compiled_catalog_matches(language):
    with (CATALOGS / "messages.pot").open("rb") as f:
        wanted = _ids(read_po(f))
    po_path = CATALOGS / language / "LC_MESSAGES" / "messages.po"
    with po_path.open("rb") as f:
        po = read_po(f, locale=language)
    translated = {m.id: m.string for m in po if m.id and m.string and not m.fuzzy}
    assert set(translated) == wanted
    for source, text in translated.items():
        assert sorted(PLACEHOLDER.findall(source)) == sorted(PLACEHOLDER.findall(text)), source
    with po_path.with_suffix(".mo").open("rb") as f:
        compiled = {m.id: m.string for m in read_mo(f) if m.id}
    assert compiled == translated, "run pybabel compile -d collector/translations"
