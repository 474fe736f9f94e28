"""The server's adapter of the SDK's condition language: a refusal is a 422 naming `conditions`.

The language itself (the shared cases table, refusals with their paths, matching that never
raises) is tested in one place, tests/sdk/test_conditions.py.
"""

import json
from pathlib import Path

import pytest

from server.core.conditions import ConditionError, compile_condition, matches, validate_condition
from server.core.errors import InvalidInput

CASES_PATH = Path(__file__).resolve().parents[1] / "cases" / "conditions.json"
CASES = json.loads(CASES_PATH.read_text(encoding="utf-8"))


def test_condition_error_is_a_422_domain_error_and_a_value_error():
    with pytest.raises(ConditionError) as caught:
        validate_condition({"$or": [{"country": {"$in": 3}}]})
    error = caught.value
    assert isinstance(error, InvalidInput)
    assert isinstance(error, ValueError)
    assert error.path == ("$or", 0, "country", "$in")
    assert error.path_text == "$or[0].country.$in"
    assert error.errors == {"conditions": ["$or[0].country.$in: $in needs a list"]}


def test_every_refused_row_of_the_table_is_a_condition_error_here():
    refused = [case for case in CASES if case.get("invalid")]
    assert refused
    for case in refused:
        with pytest.raises(ConditionError):
            compile_condition(case["condition"])
        with pytest.raises(ConditionError):
            matches(case["condition"], case["attributes"])
