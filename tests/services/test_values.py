"""The hot path's small helpers: day names of the counters and segment values."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from server.services.assignments import (
    MISSING_SEGMENT_VALUE,
    SEGMENT_VALUE_LENGTH,
    segment_value,
    utc_day,
)

# 1970 to 2100, with fractions of a second: the range of event timestamps and server clocks
unix_times = st.floats(min_value=0, max_value=4_102_444_800, allow_nan=False)


@given(unix_times)
def test_utc_day_is_the_calendar_day_in_utc(now: float) -> None:
    expected = dt.datetime.fromtimestamp(now, dt.UTC).strftime("%Y-%m-%d")
    assert utc_day(now) == expected


def test_utc_day_changes_exactly_at_midnight_utc() -> None:
    midnight = dt.datetime(2026, 11, 25, tzinfo=dt.UTC).timestamp()
    assert utc_day(midnight - 0.001) == "2026-11-24"
    assert utc_day(midnight) == "2026-11-25"
    assert utc_day(midnight + 86_399.999) == "2026-11-25"


@given(st.text(max_size=100))
def test_segment_values_are_printable_capped_and_never_empty(text: str) -> None:
    value = segment_value(text)
    kept = "".join(ch for ch in text[:SEGMENT_VALUE_LENGTH] if ch.isprintable())
    assert value == (kept or MISSING_SEGMENT_VALUE)
    assert value.isprintable()


def test_segment_values_of_other_json_types() -> None:
    assert segment_value("facebook") == "facebook"
    assert segment_value("news\x00letter\n") == "newsletter"
    assert segment_value("\x07") == MISSING_SEGMENT_VALUE
    assert segment_value(None) == MISSING_SEGMENT_VALUE
    assert segment_value(True) == "true"
    assert segment_value(42) == "42"
    assert segment_value(["a"]) == "other"
