"""Numbers, money, percentages and dates written the way a reader of the locale expects.

Babel's CLDR data decides separators, symbol placement and spacing, so German pages read
"1.234,56 €" and English ones "€1,234.56" without a hand-kept table of conventions.
"""

from __future__ import annotations

import datetime as dt

from babel import Locale
from babel.dates import format_date as babel_format_date
from babel.dates import format_skeleton
from babel.numbers import format_currency, format_decimal, format_percent

DASH = "–"  # shown where a number is undefined (no data, or the control's own uplift)
# A chance is never shown as 0 % or 100 %; beyond these it reads "< 1 %" or "> 99 %".
SURE_BELOW = 0.01
SURE_ABOVE = 0.99
PERCENT_POINT_DIGITS = 2  # rates move by tenths of a point; two digits keep small effects visible


def number(value: float | None, locale: str, digits: int = 0, signed: bool = False) -> str:
    """A number with the locale's grouping, rounded to ``digits`` decimals, optionally with an
    explicit sign for changes."""
    if value is None:
        return DASH
    pattern = "#,##0" + ("." + "0" * digits if digits else "")
    text = format_decimal(abs(value) if signed else value, format=pattern, locale=locale)
    if not signed:
        return text
    return ("+" if value >= 0 else "−") + text


def money(value: float | None, currency: str, locale: str, signed: bool = False) -> str:
    """An amount in the shop's currency, e.g. 1.234,56 € (de) or €1,234.56 (en)."""
    if value is None:
        return DASH
    text = format_currency(abs(value) if signed else value, currency, locale=locale)
    if not signed:
        return text
    # CLDR has no signed currency pattern; a leading sign reads naturally in both languages.
    return ("+" if value >= 0 else "−") + text


def percent(value: float | None, locale: str, digits: int = 0, signed: bool = False) -> str:
    """A share (0.991 → 99 %, en 99%), optionally with an explicit sign for changes."""
    if value is None:
        return DASH
    # The locale's own pattern keeps its spacing (de "99 %", en "99%"); only the digits change.
    pattern = Locale.parse(locale).percent_formats[None].pattern
    if digits:
        pattern = pattern.replace("#,##0", "#,##0." + "0" * digits, 1)
    text = format_percent(abs(value) if signed else value, format=pattern, locale=locale)
    if not signed:
        return text
    return ("+" if value >= 0 else "−") + text


def chance(value: float | None, locale: str) -> str:
    """A probability in whole percent that never reads as certain: "< 1 %" and "> 99 %".

    0.9967 would round to "100 %", a certainty no finite sample gives.
    """
    if value is None:
        return DASH
    if value < SURE_BELOW:
        return "< " + percent(SURE_BELOW, locale)
    if value > SURE_ABOVE:
        return "> " + percent(SURE_ABOVE, locale)
    return percent(value, locale)


def points(value: float | None, locale: str) -> str:
    """A difference of two rates in signed percentage points (0.0052 → +0,52)."""
    if value is None:
        return DASH
    text = number(abs(value) * 100, locale, PERCENT_POINT_DIGITS)
    return ("+" if value >= 0 else "−") + text


def p_value(value: float | None, locale: str) -> str:
    """A p-value with three decimals; below 0.001 it is written as "< 0.001"."""
    if value is None:
        return DASH
    # Three decimals are what a decision at alpha 0.05 needs; smaller values are all "tiny".
    if value < 0.001:
        return "< " + number(0.001, locale, 3)
    return number(value, locale, 3)


def date(value: dt.date | None, locale: str) -> str:
    """A calendar date in the locale's medium form (25.11.2025 or Nov 25, 2025)."""
    if value is None:
        return DASH
    return babel_format_date(value, format="medium", locale=locale)


def short_date(value: dt.date, locale: str) -> str:
    """Day and month only, for chart axes (25.11. or 11/25)."""
    return format_skeleton("Md", value, locale=locale)


def timestamp(value: float | None, locale: str) -> str:
    """Unix seconds as a UTC date and time (the audit trail's clock is UTC)."""
    if value is None:
        return DASH
    moment = dt.datetime.fromtimestamp(value, dt.UTC)
    return f"{babel_format_date(moment.date(), format='medium', locale=locale)} {moment:%H:%M} UTC"
