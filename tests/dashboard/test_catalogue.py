"""The gettext catalogues: every dashboard text has German, placeholders agree, .mo is current.

The texts are extracted from the code and templates exactly as `make translations` does
(babel.cfg; keywords t, N_ and lazy_gettext besides gettext's own), so a text added without
running it, or left untranslated or fuzzy, fails here and not silently on a German page.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po

from dashboard.i18n import DOMAIN, SUPPORTED, TRANSLATIONS, Translator

ROOT = Path(__file__).resolve().parents[2]
KEYWORDS = {
    "_": None,
    "gettext": None,
    "ngettext": (1, 2),
    "N_": None,
    "lazy_gettext": None,
    "t": None,
}


def extracted() -> set[str | tuple[str, str]]:
    """The msgids (a pair for plural texts) that the code and templates use."""
    with (ROOT / "babel.cfg").open() as config:
        method_map, options_map = parse_mapping_cfg(config)
    found: set[str | tuple[str, str]] = set()
    for _, _, message, _, _ in extract_from_dir(
        str(ROOT), method_map, options_map, keywords=KEYWORDS
    ):
        found.add(message if isinstance(message, str) else (message[0], message[1]))
    return found


def catalogue(locale: str) -> Catalog:
    with (TRANSLATIONS / locale / "LC_MESSAGES" / f"{DOMAIN}.po").open("rb") as po:
        return read_po(po, locale=locale)


def entries(catalog: Catalog) -> dict[object, object]:
    """msgid → msgstr; plural ids and strings as tuples (read_mo gives lists)."""

    def plain(value: object) -> object:
        return tuple(value) if isinstance(value, list | tuple) else value

    return {plain(message.id): plain(message.string) for message in catalog if message.id}


@pytest.fixture(scope="module")
def used() -> set[str | tuple[str, str]]:
    return extracted()


def test_the_extraction_finds_the_dashboards_texts(used: set[str | tuple[str, str]]) -> None:
    assert "Experiments" in used  # a template
    assert "Ship %(variant)s" in used  # a t() call in Python
    assert "Draft" in used  # an N_() mark in a table
    assert ("%(num)d experiment", "%(num)d experiments") in used  # ngettext in a template


@pytest.mark.parametrize("locale", SUPPORTED)
def test_each_catalogue_holds_exactly_the_texts_in_use(
    used: set[str | tuple[str, str]], locale: str
) -> None:
    held = set(entries(catalogue(locale)))
    assert not used - held, f"run `make translations`: missing {sorted(map(str, used - held))}"
    assert not held - used, f"run `make translations`: unused {sorted(map(str, held - used))}"


def test_every_text_has_a_german_translation() -> None:
    german = catalogue("de")
    untranslated = [
        message.id
        for message in german
        if message.id
        and (
            message.fuzzy
            or not message.string
            or (isinstance(message.string, tuple) and not all(message.string))
        )
    ]
    assert not untranslated, untranslated


@pytest.mark.parametrize("locale", SUPPORTED)
def test_translations_keep_the_placeholders(locale: str) -> None:
    # Babel's checkers: python-format placeholders of msgid and msgstr must agree
    problems = [(message.id, errors) for message, errors in catalogue(locale).check()]
    assert not problems, problems


@pytest.mark.parametrize("locale", SUPPORTED)
def test_the_compiled_catalogues_match_the_po_files(locale: str) -> None:
    """The .mo files are committed (every install path gets them); they must be current."""
    with (TRANSLATIONS / locale / "LC_MESSAGES" / f"{DOMAIN}.mo").open("rb") as mo:
        committed = entries(read_mo(mo))
    compiled = io.BytesIO()
    write_mo(compiled, catalogue(locale))
    compiled.seek(0)
    assert committed == entries(read_mo(compiled)), "run `make translations` and commit the .mo"


def test_german_needs_the_plural_form_of_the_count() -> None:
    german = Translator.of("de")
    assert german.ngettext("Keep running for about %(num)d day", "", 1) == (
        "Noch etwa 1 Tag laufen lassen"
    )
    assert german.ngettext("Keep running for about %(num)d day", "", 12) == (
        "Noch etwa 12 Tage laufen lassen"
    )
