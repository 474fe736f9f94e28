"""Targeting conditions against the shared cases table, refusals, and the linear-time regex."""

import json
import logging
import re
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from splitwerk.conditions import (
    MAX_REGEX_SUBJECT_LENGTH,
    OPERATORS,
    attribute_names,
    compile_condition,
    compile_pattern,
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


def test_refusal_names_the_offending_part() -> None:
    with pytest.raises(ValueError, match=r"^\$or\[1\]\.country\.\$in: \$in needs a list$"):
        compile_condition({"$or": [{"a": 1}, {"country": {"$in": "DE"}}]})


def test_compiled_condition_is_reusable() -> None:
    check = compile_condition({"country": {"$in": ["DE", "AT"]}, "age": {"$gte": 18}})
    assert check({"country": "DE", "age": 30})
    assert not check({"country": "DE", "age": 10})
    assert not check({"country": "FR", "age": 30})


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


@pytest.mark.parametrize(
    "pattern", [r"^(a+)+$", r"^(a|aa)*$", r"^(a|a)*b", r"\d*\d*\d*\d*\d*\d*\d*x", r"^(\w+\s?)*$"]
)
def test_regex_that_backtracks_in_re_runs_in_linear_time_on_the_longest_subject(
    pattern: str,
) -> None:
    subject = "a" * (MAX_REGEX_SUBJECT_LENGTH - 1) + "!"
    started = time.perf_counter()
    for _ in range(5):
        compile_pattern(pattern).search(subject)
    assert time.perf_counter() - started < 1.0


ATOMS = ["a", "b", ".", "[ab]", "[^a]", r"\d", r"\w", r"\s", r"\.", "1"]


@st.composite
def patterns(draw: st.DrawFn, depth: int = 0) -> str:
    """Patterns of the supported subset, on which Python's re agrees (with $ as \\Z)."""
    parts = []
    for _ in range(draw(st.integers(1, 4))):
        if depth < 2 and draw(st.integers(0, 4)) == 0:
            inner = "|".join(draw(st.lists(patterns(depth + 1), min_size=1, max_size=3)))
            atom = f"(?:{inner})"
        else:
            atom = draw(st.sampled_from(ATOMS))
        atom += draw(st.sampled_from(["", "", "*", "+", "?", "{2}", "{1,3}", "{2,}", "*?"]))
        parts.append(atom)
    prefix = draw(st.sampled_from(["", "^"])) if depth == 0 else ""
    suffix = draw(st.sampled_from(["", "$"])) if depth == 0 else ""
    return prefix + "".join(parts) + suffix


@settings(max_examples=300)
@given(patterns(), st.lists(st.text(alphabet="ab1. \n_x", max_size=12), min_size=1, max_size=5))
def test_regex_engine_agrees_with_python_re_on_the_subset(
    pattern: str, subjects: list[str]
) -> None:
    try:
        compiled = compile_pattern(pattern)
    except ValueError as error:
        assert "too complex" in str(error)
        assume(False)
    reference = re.compile(pattern.replace("$", r"\Z"))
    for subject in subjects:
        assert compiled.search(subject) == bool(reference.search(subject)), (pattern, subject)


REFUSED_PATTERNS = ["*a", "a**", "a{", "a}", "a{,2}", "a{3,2}", "[]", "[z-a]", r"\b", r"\1",
                    "(?P<n>a)", "(?i)a", "(?=a)", "\\", "a)", "(a", "a" * 257,
                    "a{101}"]  # fmt: skip


@pytest.mark.parametrize("pattern", REFUSED_PATTERNS)
def test_regex_outside_the_server_subset_is_refused(pattern: str) -> None:
    with pytest.raises(ValueError):
        compile_pattern(pattern)
    with pytest.raises(ValueError, match=r"^v\.\$regex: "):
        compile_condition({"v": {"$regex": pattern}})


# --- differential test against the server's implementation ------------------------------------
# The SDK ports server/core/conditions.py; random conditions show that the port answers alike.

LEAVES = st.none() | st.booleans() | st.integers(-3, 3) | st.sampled_from([1.5, "a", "b", "1"])
VALUES = st.recursive(
    LEAVES,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.sampled_from(["x", "y"]), children)
    ),
    max_leaves=6,
)
ATTRIBUTE_NAMES = st.sampled_from(["x", "y", "x.y"])
OPERANDS = st.recursive(
    VALUES,
    lambda children: st.dictionaries(
        st.sampled_from([*sorted(OPERATORS), "$bad"]) | st.sampled_from(["x", "y"]),
        children | st.sampled_from(["^a", "(a|b)+$", "[", "null", "array"]),
        max_size=2,
    ),
    max_leaves=8,
)
CONDITIONS = st.recursive(
    st.dictionaries(ATTRIBUTE_NAMES, OPERANDS, max_size=2),
    lambda children: st.dictionaries(
        st.sampled_from(["$and", "$or", "$nor", "$not", "$bad"]),
        children | st.lists(children, max_size=2),
        max_size=2,
    ),
    max_leaves=6,
)


@settings(max_examples=500)
@given(CONDITIONS, st.dictionaries(st.sampled_from(["x", "y"]), VALUES, max_size=2))
def test_sdk_and_server_agree_on_random_conditions(
    condition: dict[str, Any], attributes: dict[str, Any]
) -> None:
    server = pytest.importorskip("server.core.conditions")
    try:
        server_test = server.compile_condition(condition)
    except server.ConditionError:
        with pytest.raises(ValueError):
            compile_condition(condition)
        return
    assert compile_condition(condition)(attributes) is bool(server_test(attributes))
