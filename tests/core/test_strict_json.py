"""Strict JSON: depth counted without recursion, NaN and Infinity refused in and out."""

from __future__ import annotations

import json

import pytest

from server.core import strict_json
from server.core.strict_json import MAX_DEPTH, JsonRefused


def nested(levels: int, opener: str = "[", closer: str = "]") -> bytes:
    return (opener * levels + closer * levels).encode()


def test_nesting_up_to_the_limit_is_parsed() -> None:
    assert strict_json.loads(nested(MAX_DEPTH)) is not None
    mixed = '{"a":' * (MAX_DEPTH // 2) + "[" * (MAX_DEPTH // 2) + "]" * (MAX_DEPTH // 2)
    assert strict_json.loads(mixed + "}" * (MAX_DEPTH // 2)) is not None


@pytest.mark.parametrize("levels", [MAX_DEPTH + 1, 5_000, 100_000])
def test_deeper_nesting_is_refused_before_parsing(levels: int) -> None:
    with pytest.raises(JsonRefused, match=f"nested deeper than {MAX_DEPTH} levels"):
        strict_json.loads(nested(levels))


def test_brackets_inside_strings_do_not_count() -> None:
    text = json.dumps(["[" * 1000, '\\"[{' * 500, {"k": "{" * 100}]).encode()
    assert not strict_json.is_too_deep(text)
    assert strict_json.loads(text)[0] == "[" * 1000


def test_escaped_backslash_before_a_quote_ends_the_string() -> None:
    # "\\" is a whole string; the brackets after it are real nesting
    text = b'["\\\\",' + nested(MAX_DEPTH + 1) + b"]"
    assert strict_json.is_too_deep(text)


def test_many_unterminated_quotes_are_scanned_quickly() -> None:
    text = b'"\\"' * 500_000 + nested(MAX_DEPTH + 1)
    strict_json.is_too_deep(text)  # returns at all: no quadratic rescanning
    with pytest.raises(ValueError):
        strict_json.loads(text)


@pytest.mark.parametrize(
    "text",
    ["NaN", "[Infinity]", '{"price": -Infinity}', '{"price": NaN}', "1e999", "[-1e400]"],
)
def test_nan_infinity_and_overflowing_numbers_are_refused(text: str) -> None:
    with pytest.raises(JsonRefused):
        strict_json.loads(text)


def test_ordinary_numbers_still_parse() -> None:
    assert strict_json.loads('{"a": 1.5, "b": -2, "c": 1e300}') == {"a": 1.5, "b": -2, "c": 1e300}


def test_dumps_refuses_nan_and_infinity() -> None:
    assert strict_json.dumps({"a": [1.5]}) == '{"a":[1.5]}'
    for value in (float("nan"), float("inf"), float("-inf")):
        with pytest.raises(ValueError):
            strict_json.dumps({"price": value})


def test_without_nonfinite_replaces_only_nonfinite_floats() -> None:
    value = {"a": float("nan"), "b": [1.5, float("inf"), 2], "c": "NaN", "d": None}
    assert strict_json.without_nonfinite(value) == {
        "a": None,
        "b": [1.5, None, 2],
        "c": "NaN",
        "d": None,
    }
