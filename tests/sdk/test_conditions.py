"""Targeting conditions against the shared cases table, and the regex safety rules."""

import json
import time
from pathlib import Path

import pytest

from splitwerk.conditions import attribute_names, compile_condition, is_safe_pattern, matches

CASES = json.loads((Path(__file__).parent / "condition_cases.json").read_text(encoding="utf-8"))[
    "cases"
]


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_condition_cases(case: dict[str, object]) -> None:
    assert matches(case["condition"], case["attributes"]) is case["expected"]


def test_cases_cover_every_operator() -> None:
    text = json.dumps([case["condition"] for case in CASES])
    for operator in (
        "$eq",
        "$ne",
        "$in",
        "$nin",
        "$gt",
        "$gte",
        "$lt",
        "$lte",
        "$exists",
        "$and",
        "$or",
        "$nor",
        "$not",
        "$all",
        "$elemMatch",
        "$size",
        "$regex",
        "$type",
    ):
        assert f'"{operator}"' in text, operator


def test_compiled_condition_is_reusable() -> None:
    check = compile_condition({"country": {"$in": ["DE", "AT"]}, "age": {"$gte": 18}})
    assert check({"country": "DE", "age": 30})
    assert not check({"country": "DE", "age": 10})
    assert not check({"country": "FR", "age": 30})


@pytest.mark.parametrize(
    "pattern",
    [
        "^Mozilla.*Mobile",
        r"\.de$",
        "(ab)+c",
        "(?:foo|bar)",
        "(?i)shop",
        "x{3}",
        "a+?",
        "[(]+",
        "(?P<name>x)",
    ],
)
def test_safe_patterns_are_allowed(pattern: str) -> None:
    assert is_safe_pattern(pattern)


@pytest.mark.parametrize(
    "pattern",
    [
        "(a+)+",
        "(a*b)*",
        "(a|ab)*",
        r"\d+\d+b",
        ".*a.*b",
        "(a|b){3}",
        r"(a)\1",
        "a?b?c?d?e?",
        "x" * 257,
        "(a",
    ],
)
def test_patterns_prone_to_backtracking_are_refused(pattern: str) -> None:
    assert not is_safe_pattern(pattern)


def test_hostile_regex_input_returns_quickly() -> None:
    started = time.monotonic()
    for pattern in ("(a+)+$", "(a|a)*b", ".*.*.*b", "^(.*?,){11}P"):
        assert not matches({"v": {"$regex": pattern}}, {"v": "a" * 1024 + "!"})
    assert time.monotonic() - started < 0.5


def test_attribute_names_lists_top_level_attributes() -> None:
    condition = {
        "user.country": "DE",
        "$or": [{"source": "x"}, {"$not": {"device": "m"}}],
        "tags": {"$elemMatch": {"inner": 1}},
    }
    assert attribute_names(condition) == {"user", "source", "device", "tags"}


def test_invalid_condition_logs_once_at_compile_time(caplog: pytest.LogCaptureFixture) -> None:
    check = compile_condition({"v": {"$foo": 1}})
    assert "unknown operator" in caplog.text
    caplog.clear()
    assert not check({"v": 1})
    assert caplog.text == ""


CORE_CASES_PATH = Path(__file__).resolve().parents[1] / "core" / "condition_cases.json"


@pytest.mark.skipif(not CORE_CASES_PATH.exists(), reason="the server's cases file is not there")
def test_server_condition_cases_agree() -> None:
    # The server's own table (tests/core): the SDK must answer every valid condition alike.
    cases = json.loads(CORE_CASES_PATH.read_text(encoding="utf-8"))
    disagreements = [
        case["name"]
        for case in cases
        if matches(case["condition"], case["attributes"]) is not case["expected"]
    ]
    assert disagreements == []


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("abc$", "abc\n", False),
        ("abc$", "abc", True),
        ("[$]", "$", True),
        (r"\$", "$", True),
        (r"^\d+$", "٣", False),
    ],
)
def test_regex_reads_patterns_like_the_server(pattern: str, value: str, expected: bool) -> None:
    assert matches({"v": {"$regex": pattern}}, {"v": value}) is expected
