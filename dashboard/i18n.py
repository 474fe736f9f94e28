"""Which language a page is in (English or German) and the gettext lookup of its texts.

The language comes from the ``splitwerk_locale`` cookie (set by the switch in the page header),
else from the browser's Accept-Language, else English; Flask-Babel asks ``select_locale``.
Texts are written in English in the code and templates and translated by the gettext
catalogues in ``dashboard/translations/<locale>/LC_MESSAGES/messages.po`` (compiled to
``messages.mo``, committed; ``make translations`` extracts, updates and compiles them).

Every message is a python-format string: placeholders are ``%(name)s`` and a literal percent
sign is written ``%%``, as in templates, where Jinja's ``_()`` and ``ngettext()`` format the
same way. Only catalogue texts go through a translation call, never text made at run time.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from babel.support import NullTranslations, Translations
from flask import request
from werkzeug.datastructures import LanguageAccept

SUPPORTED = ("en", "de")  # the languages with a catalogue; English is the source language
DEFAULT = "en"
COOKIE = "splitwerk_locale"  # remembers an explicit choice made with the language switch
COOKIE_MAX_AGE = 365 * 24 * 60 * 60  # seconds: a language choice holds for a year
# BCP 47 tags for the browser side (Intl.NumberFormat in the charts, <html lang>).
BROWSER_TAGS = {"en": "en", "de": "de-DE"}
TRANSLATIONS = Path(__file__).parent / "translations"  # <locale>/LC_MESSAGES/messages.mo
DOMAIN = "messages"  # the gettext domain of the dashboard's catalogues


def N_(text: str) -> str:  # noqa: N802  # gettext's conventional name, known to extractors
    """Mark a text for extraction where it is defined; it is translated where it is shown."""
    return text


def choose_locale(cookie: str | None, accept: LanguageAccept) -> str:
    """The page language: an explicit choice first, then the browser's preference."""
    if cookie in SUPPORTED:
        return cookie
    # best_match also matches regional tags: "de-AT" → "de".
    return accept.best_match(SUPPORTED) or DEFAULT


def select_locale() -> str:
    """Flask-Babel's locale selector: the language of the current request."""
    return choose_locale(request.cookies.get(COOKIE), request.accept_languages)


@functools.cache
def catalogue(locale: str) -> NullTranslations:
    """The compiled catalogue of ``locale`` (read once per process)."""
    return Translations.load(str(TRANSLATIONS), [locale], DOMAIN)


@dataclass(frozen=True)
class Translator:
    """The texts of one language: ``t(text, **values)`` and ``t.ngettext(...)``.

    Passed to the presenters, which format numbers and dates for ``locale`` too; the views
    build it from Flask-Babel's locale and translations of the request.
    """

    locale: str
    translations: NullTranslations

    @classmethod
    def of(cls, locale: str) -> Translator:
        """The translator of ``locale`` outside a request (tests, the command line)."""
        return cls(locale, catalogue(locale))

    def __call__(self, text: str, /, **values: object) -> str:
        """``text`` in this language with its ``%(name)s`` placeholders filled in."""
        return self.translations.gettext(text) % values

    def ngettext(self, singular: str, plural: str, count: int, /, **values: object) -> str:
        """The singular or a plural form for ``count``; ``%(num)d`` is the count."""
        return self.translations.ngettext(singular, plural, count) % {"num": count, **values}
