"""Which language a page is in (English or German) and the lookup of its texts.

The language comes from the ``splitwerk_locale`` cookie (set by the switch in the page header),
else from the browser's Accept-Language, else English. Texts are written in English in the
code and templates; ``dashboard.catalogue`` maps them to German.
"""

from __future__ import annotations

from dataclasses import dataclass

from werkzeug.datastructures import LanguageAccept

from dashboard.catalogue import ENGLISH, GERMAN

SUPPORTED = ("en", "de")  # the languages the catalogue covers; English is the source
DEFAULT = "en"
COOKIE = "splitwerk_locale"  # remembers an explicit choice made with the language switch
COOKIE_MAX_AGE = 365 * 24 * 60 * 60  # seconds: a language choice holds for a year
# BCP 47 tags for the browser side (Intl.NumberFormat in the charts, <html lang>).
BROWSER_TAGS = {"en": "en", "de": "de-DE"}


def choose_locale(cookie: str | None, accept: LanguageAccept) -> str:
    """The page language: an explicit choice first, then the browser's preference."""
    if cookie in SUPPORTED:
        return cookie
    # best_match also matches regional tags: "de-AT" → "de".
    return accept.best_match(SUPPORTED) or DEFAULT


@dataclass(frozen=True)
class Translator:
    """The texts of one language; call it with the English text and its ``{named}`` values."""

    locale: str

    def __call__(self, text: str, /, **values: object) -> str:
        catalogue = GERMAN if self.locale == "de" else ENGLISH
        template = catalogue.get(text, ENGLISH.get(text, text))
        return template.format(**values) if values else template
