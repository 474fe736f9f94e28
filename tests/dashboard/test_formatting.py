"""Numbers, money and dates per locale, and the choice of the page language."""

from __future__ import annotations

import datetime as dt

import pytest
from werkzeug.datastructures import LanguageAccept
from werkzeug.http import parse_accept_header

from dashboard import formatting
from dashboard.i18n import Translator, choose_locale


@pytest.mark.parametrize(("locale", "expected"), [("de", "1.234,56\u00a0€"), ("en", "€1,234.56")])
def test_money_is_written_the_locale_s_way(locale: str, expected: str) -> None:
    assert formatting.money(1234.56, "EUR", locale) == expected


def test_signed_money_puts_the_sign_first() -> None:
    assert formatting.money(0.42, "EUR", "de", signed=True) == "+0,42\u00a0€"
    assert formatting.money(-0.42, "EUR", "en", signed=True) == "−€0.42"


def test_other_currencies_keep_their_symbol() -> None:
    assert formatting.money(10, "CHF", "de") == "10,00\u00a0CHF"


def test_percentages_and_points() -> None:
    assert formatting.percent(0.991, "de") == "99\u00a0%"
    assert formatting.percent(0.991, "en") == "99%"
    assert formatting.percent(0.0523, "de", 1, signed=True) == "+5,2\u00a0%"
    assert formatting.points(-0.0089, "en") == "−0.89"


def test_numbers_are_grouped() -> None:
    assert formatting.number(12345, "de") == "12.345"
    assert formatting.number(12345, "en") == "12,345"


def test_p_values_below_a_thousandth_are_not_spelled_out() -> None:
    assert formatting.p_value(0.00001, "de") == "< 0,001"
    assert formatting.p_value(0.1234, "en") == "0.123"


def test_undefined_numbers_are_a_dash() -> None:
    assert formatting.money(None, "EUR", "de") == formatting.DASH
    assert formatting.percent(None, "en") == formatting.DASH
    assert formatting.date(None, "de") == formatting.DASH


def test_dates() -> None:
    day = dt.date(2026, 11, 25)
    assert formatting.date(day, "de") == "25.11.2026"
    assert formatting.date(day, "en") == "Nov 25, 2026"
    assert formatting.short_date(day, "de") == "25.11."
    assert formatting.timestamp(0, "en") == "Jan 1, 1970 00:00 UTC"


def accept(header: str) -> LanguageAccept:
    return parse_accept_header(header, LanguageAccept)


def test_the_browser_language_decides_without_a_cookie() -> None:
    assert choose_locale(None, accept("de-AT,de;q=0.9,en;q=0.5")) == "de"
    assert choose_locale(None, accept("en-US,en;q=0.9")) == "en"
    assert choose_locale(None, accept("fr-FR,fr;q=0.9")) == "en"
    assert choose_locale(None, accept("")) == "en"


def test_an_explicit_choice_beats_the_browser() -> None:
    assert choose_locale("en", accept("de-DE")) == "en"
    assert choose_locale("xx", accept("de-DE")) == "de"


def test_translations_fill_in_values_and_fall_back_to_english() -> None:
    assert Translator.of("de")("Started %(date)s", date="1. Mai") == "Gestartet am 1. Mai"
    assert Translator.of("de")("Pause") == "Pausieren"
    assert Translator.of("en")("Pause") == "Pause"
    assert Translator.of("de")("an unknown %(text)s", text="text") == "an unknown text"


def test_plural_forms_follow_the_count() -> None:
    one, many = "%(num)d experiment", "%(num)d experiments"
    assert Translator.of("de").ngettext(one, many, 1) == "1 Experiment"
    assert Translator.of("de").ngettext(one, many, 3) == "3 Experimente"
    assert Translator.of("en").ngettext(one, many, 0) == "0 experiments"
