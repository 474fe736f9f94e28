"""Targeting conditions: the cases table, refusals with paths, never raising, the regex engine."""

import json
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.core.conditions import (
    ConditionError,
    compile_condition,
    matches,
    validate_condition,
)
from server.core.errors import InvalidInput
from splitwerk.conditions import MAX_REGEX_SUBJECT_LENGTH, OPERATORS

# The table shared with the Python SDK: valid rows must give `expected`, rows marked
# `invalid` must be refused at validation (the SDK then targets nobody).
CASES_PATH = Path(__file__).resolve().parents[1] / "cases" / "conditions.json"
CASES = json.loads(CASES_PATH.read_text(encoding="utf-8"))
VALID_CASES = [case for case in CASES if not case.get("invalid")]
INVALID_CASES = [case for case in CASES if case.get("invalid")]
ROW_TIME_LIMIT = 0.5  # seconds per row; backtracking `re` would take minutes on the regex rows


def test_case_names_are_unique():
    names = [case["name"] for case in CASES]
    assert len(names) == len(set(names))


def _operators_in(value, found):
    if isinstance(value, dict):
        for key, item in value.items():
            if key.startswith("$"):
                found.add(key)
            _operators_in(item, found)
    elif isinstance(value, list):
        for item in value:
            _operators_in(item, found)
    return found


def test_table_has_at_least_three_cases_per_operator():
    counts = dict.fromkeys(OPERATORS | {"$and", "$or", "$nor"}, 0)
    for case in VALID_CASES:
        for operator in _operators_in(case["condition"], set()):
            counts[operator] += 1
    assert {operator: count for operator, count in counts.items() if count < 3} == {}


@pytest.mark.parametrize("case", VALID_CASES, ids=[case["name"] for case in VALID_CASES])
def test_condition_case(case):
    started = time.perf_counter()
    assert matches(case["condition"], case["attributes"]) is case["expected"]
    assert time.perf_counter() - started < ROW_TIME_LIMIT


@pytest.mark.parametrize("case", INVALID_CASES, ids=[case["name"] for case in INVALID_CASES])
def test_invalid_condition_case_is_refused(case):
    with pytest.raises(ConditionError):
        validate_condition(case["condition"])


@pytest.mark.parametrize(
    ("condition", "path", "fragment"),
    [
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
    ],
)
def test_invalid_condition_is_refused_with_its_path(condition, path, fragment):
    with pytest.raises(ConditionError) as caught:
        validate_condition(condition)
    assert caught.value.path_text == path
    assert fragment in str(caught.value)


def test_condition_error_is_a_422_domain_error_and_a_value_error():
    with pytest.raises(ConditionError) as caught:
        validate_condition({"$or": [{"country": {"$in": 3}}]})
    error = caught.value
    assert isinstance(error, InvalidInput)
    assert isinstance(error, ValueError)
    assert error.path == ("$or", 0, "country", "$in")
    assert error.errors == {"conditions": ["$or[0].country.$in: $in needs a list"]}


def test_too_deep_nesting_is_refused():
    condition = {"a": 1}
    for _ in range(40):
        condition = {"$not": condition}
    with pytest.raises(ConditionError, match="nested deeper"):
        validate_condition(condition)


def test_compiled_condition_is_reusable_and_pure():
    matcher = compile_condition({"country": {"$in": ["DE", "AT"]}, "cart_value": {"$gte": 50}})
    assert matcher({"country": "DE", "cart_value": 50})
    assert not matcher({"country": "FR", "cart_value": 50})
    assert matcher({"country": "AT", "cart_value": 99.5})


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
def test_matching_never_raises_on_any_attribute_values(attributes):
    for matcher in COMPILED_CASES:
        assert matcher(attributes) in (True, False)


def test_matching_tolerates_non_json_attribute_values():
    odd = {"country": object(), "tags": {1, 2}, "cart": b"bytes", "items": 1j, "url": None}
    for matcher in COMPILED_CASES:
        assert matcher(odd) in (True, False)


def test_regex_does_not_match_subjects_over_the_length_limit():
    condition = {"url": {"$regex": "x"}}
    assert matches(condition, {"url": "x" * MAX_REGEX_SUBJECT_LENGTH})
    assert not matches(condition, {"url": "x" * (MAX_REGEX_SUBJECT_LENGTH + 1)})
