"""Targeting conditions, table-driven: the shared cases table (tests/cases/conditions.json,
which the snippet runs too), the refusals with their paths, and matching that never raises.

The one place for the condition language's tests: the server only adapts refusals to a 422
(tests/core/test_conditions.py), and the $regex pattern subset has its own tests
(tests/sdk/test_patterns.py).
"""

import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from splitwerk.conditions import (
    MAX_REGEX_SUBJECT_LENGTH,
    OPERATORS,
    ConditionError,
    attribute_names,
    compile_condition,
    matches,
)
from splitwerk.evaluation import parse_experiment

CASES_PATH = Path(__file__).resolve().parents[1] / "cases" / "conditions.json"
CASES: list[dict[str, Any]] = json.loads(CASES_PATH.read_text(encoding="utf-8"))
VALID_CASES = [case for case in CASES if not case.get("invalid")]
INVALID_CASES = [case for case in CASES if case.get("invalid")]
ROW_TIME_LIMIT = 0.5  # seconds per row; backtracking `re` would take minutes on the regex rows


def _names(cases: list[dict[str, Any]]) -> list[str]:
    return [case["name"] for case in cases]


def _operators_in(value: object, found: set[str]) -> set[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key.startswith("$"):
                found.add(key)
            _operators_in(item, found)
    elif isinstance(value, list):
        for item in value:
            _operators_in(item, found)
    return found


def test_case_names_are_unique() -> None:
    assert len(set(_names(CASES))) == len(CASES)


def test_invalid_rows_expect_no_match() -> None:
    assert all(case["expected"] is False for case in INVALID_CASES)


def test_every_operator_has_at_least_three_valid_cases() -> None:
    counts = dict.fromkeys(OPERATORS | {"$and", "$or", "$nor"}, 0)
    for case in VALID_CASES:
        for operator in _operators_in(case["condition"], set()):
            counts[operator] += 1
    assert {operator: count for operator, count in counts.items() if count < 3} == {}


@pytest.mark.parametrize("case", VALID_CASES, ids=_names(VALID_CASES))
def test_valid_condition_case(case: dict[str, Any]) -> None:
    started = time.perf_counter()
    assert matches(case["condition"], case["attributes"]) is case["expected"]
    assert time.perf_counter() - started < ROW_TIME_LIMIT


@pytest.mark.parametrize("case", INVALID_CASES, ids=_names(INVALID_CASES))
def test_condition_the_server_refuses_targets_nobody(
    case: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(ValueError):
        compile_condition(case["condition"])
    assert matches(case["condition"], case["attributes"]) is False
    with caplog.at_level(logging.WARNING, logger="splitwerk"):
        compiled = parse_experiment(
            {
                "key": "exp",
                "status": "running",
                "coverage": 10000,
                "variants": [
                    {"key": "control", "allocation": 0},
                    {"key": "b", "allocation": 10000},
                ],
                "conditions": case["condition"],
            }
        )
    assert compiled is not None
    answer = compiled.evaluate("v-1", case["attributes"])
    assert (answer.variant, answer.enrolled, answer.reason) == ("control", False, "not_targeted")
    assert "targets nobody" in caplog.text


# A refusal names the offending part by its path: (condition, path, part of the reason).
REFUSALS: list[tuple[Any, str, str]] = [
    ([], "", "must be an object"),
    ({"$where": "1"}, "$where", "unknown operator"),
    ({"country": {"$eqq": "DE"}}, "country.$eqq", "unknown operator"),
    ({"country": {"$in": "DE"}}, "country.$in", "needs a list"),
    ({"country": {"$nin": {"a": 1}}}, "country.$nin", "needs a list"),
    ({"cart_value": {"$gt": True}}, "cart_value.$gt", "number or a string"),
    ({"cart_value": {"$lte": None}}, "cart_value.$lte", "number or a string"),
    ({"cart_value": {"$lt": float("nan")}}, "cart_value.$lt", "number or a string"),
    ({"device": {"$exists": 1}}, "device.$exists", "true or false"),
    ({"$or": {"country": "DE"}}, "$or", "non-empty list"),
    ({"$or": []}, "$or", "non-empty list"),
    ({"$or": [{"a": 1}, {"country": {"$in": "DE"}}]}, "$or[1].country.$in", "needs a list"),
    ({"$and": [{"a": 1}, "b"]}, "$and[1]", "must be an object"),
    ({"$nor": [{"a": {"$bad": 1}}]}, "$nor[0].a.$bad", "unknown operator"),
    ({"$not": [{"a": 1}]}, "$not", "must be an object"),
    ({"tags": {"$all": []}}, "tags.$all", "non-empty list"),
    ({"tags": {"$all": [{"$foo": 1}]}}, "tags.$all[0].$foo", "unknown operator"),
    ({"lines": {"$elemMatch": []}}, "lines.$elemMatch", "non-empty object"),
    ({"tags": {"$size": -1}}, "tags.$size", "at least 0"),
    ({"tags": {"$size": "2"}}, "tags.$size", "whole number"),
    ({"tags": {"$size": 2.0}}, "tags.$size", "whole number"),
    ({"url": {"$regex": 5}}, "url.$regex", "needs a string"),
    ({"url": {"$regex": "(a"}}, "url.$regex", "missing )"),
    ({"url": {"$regex": "a" * 257}}, "url.$regex", "longer than 256"),
    ({"url": {"$regex": r"(\w+)\1"}}, "url.$regex", r"\1 is not supported"),
    ({"url": {"$regex": "(?=x)"}}, "url.$regex", "not supported"),
    ({"url": {"$regex": "a{1000}"}}, "url.$regex", "above 100"),
    ({"cart": {}}, "cart", "empty object"),
    ({"cart": {"$gt": 1, "value": 2}}, "cart", "mixes operators"),
    ({"cart..value": 1}, "cart..value", "single dots"),
    ({"": 1}, "", "non-empty"),
    ({"cart": {"$eq": {1, 2}}}, "cart.$eq", "not a JSON value"),
    ({"cart": {"$eq": {"a": float("inf")}}}, "cart.$eq.a", "finite"),
]


@pytest.mark.parametrize(("condition", "path", "fragment"), REFUSALS)
def test_a_refusal_names_the_offending_part(condition: Any, path: str, fragment: str) -> None:
    with pytest.raises(ConditionError) as caught:
        compile_condition(condition)
    assert caught.value.path_text == path
    assert fragment in str(caught.value)
    assert str(caught.value) == (f"{path}: {caught.value.reason}" if path else caught.value.reason)


def test_too_deep_nesting_is_refused() -> None:
    condition: dict[str, Any] = {"a": 1}
    for _ in range(40):
        condition = {"$not": condition}
    with pytest.raises(ConditionError, match="nested deeper"):
        compile_condition(condition)


def test_compiled_condition_is_reusable() -> None:
    check = compile_condition({"country": {"$in": ["DE", "AT"]}, "cart_value": {"$gte": 50}})
    assert check({"country": "DE", "cart_value": 50})
    assert not check({"country": "DE", "cart_value": 10})
    assert not check({"country": "FR", "cart_value": 50})
    assert check({"country": "AT", "cart_value": 99.5})


def test_attribute_names_lists_top_level_attributes() -> None:
    condition = {
        "user.country": "DE",
        "$or": [{"source": "x"}, {"$not": {"device": "m"}}],
        "tags": {"$elemMatch": {"inner": 1}},
    }
    assert attribute_names(condition) == {"user", "source", "device", "tags"}


def test_regex_does_not_match_subjects_over_the_length_limit() -> None:
    condition = {"url": {"$regex": "x"}}
    assert matches(condition, {"url": "x" * MAX_REGEX_SUBJECT_LENGTH})
    assert not matches(condition, {"url": "x" * (MAX_REGEX_SUBJECT_LENGTH + 1)})


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from(["DE", "mobile", "google", "vip", "A1", "3"]),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(["value", "sku", "qty", "a", "b"]), children, max_size=4)
    ),
    max_leaves=12,
)
ATTRIBUTES = st.dictionaries(
    st.sampled_from(
        ["country", "device", "cart_value", "items", "tags", "cart", "url", "scores", "code"]
    ),
    JSON_VALUES,
    max_size=8,
)
COMPILED_CASES = [compile_condition(case["condition"]) for case in VALID_CASES]


@settings(max_examples=100)
@given(ATTRIBUTES)
def test_matching_never_raises_on_any_attribute_values(attributes: dict[str, Any]) -> None:
    for check in COMPILED_CASES:
        assert check(attributes) in (True, False)


def test_matching_tolerates_attribute_values_that_are_not_json() -> None:
    odd = {"country": object(), "tags": {1, 2}, "cart": b"bytes", "items": 1j, "url": None}
    for check in COMPILED_CASES:
        assert check(odd) in (True, False)
