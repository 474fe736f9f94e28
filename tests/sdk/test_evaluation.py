"""Local assignment against the shared spec vectors, and config compilation."""

import json
import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from splitwerk.bucketing import BUCKETS, bucket
from splitwerk.evaluation import SPEC, parse_config, parse_experiment

from .fakeserver import VECTORS_PATH

VECTORS = json.loads(VECTORS_PATH.read_text(encoding="utf-8"))


def experiment(**overrides: object) -> dict[str, object]:
    document: dict[str, object] = {
        "key": "exp",
        "salt": "exp",
        "status": "running",
        "coverage": 10000,
        "variants": [{"key": "control", "allocation": 5000}, {"key": "b", "allocation": 5000}],
        "layer": None,
        "winner": None,
    }
    document.update(overrides)
    return document


def test_vectors_are_for_this_spec() -> None:
    assert VECTORS["spec"] == SPEC


@pytest.mark.parametrize(
    "case", VECTORS["bucket"], ids=lambda case: f"{case['visitor']}|{case['salt']}"
)
def test_bucket_matches_vectors(case: dict[str, object]) -> None:
    assert bucket(case["visitor"], case["salt"]) == case["bucket"]


def test_assignments_match_vectors() -> None:
    config = parse_config({"spec": SPEC, "experiments": VECTORS["experiments"]})
    assert config is not None
    assert set(config.experiments) == {raw["key"] for raw in VECTORS["experiments"]}
    for case in VECTORS["assign"]:
        answer = config.experiments[case["experiment"]].evaluate(case["visitor"])
        assert (answer.variant, answer.enrolled) == (case["variant"], case["enrolled"]), case


@given(st.text(min_size=1, max_size=128), st.integers(0, BUCKETS), st.integers(0, BUCKETS))
def test_raising_coverage_never_moves_an_enrolled_visitor(
    visitor: str, low: int, high: int
) -> None:
    low, high = sorted((low, high))
    narrow = parse_experiment(experiment(coverage=low))
    wide = parse_experiment(experiment(coverage=high))
    assert narrow is not None and wide is not None
    before = narrow.evaluate(visitor)
    if before.enrolled:
        assert wide.evaluate(visitor) == before


def test_stopped_experiment_with_winner_shows_the_winner_unenrolled() -> None:
    compiled = parse_experiment(experiment(status="stopped", winner="b"))
    assert compiled is not None
    answer = compiled.evaluate("v-1")
    assert (answer.variant, answer.enrolled, answer.reason) == ("b", False, "winner")


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        ("paused", "paused"),
        ("stopped", "stopped"),
        ("draft", "not_running"),
        ("archived", "not_running"),
    ],
)
def test_experiments_not_running_show_the_control(status: str, reason: str) -> None:
    compiled = parse_experiment(experiment(status=status))
    assert compiled is not None
    answer = compiled.evaluate("v-1")
    assert (answer.variant, answer.enrolled, answer.reason) == ("control", False, reason)


def test_forced_variant_is_shown_but_not_enrolled() -> None:
    compiled = parse_experiment(experiment())
    assert compiled is not None
    answer = compiled.evaluate("v-1", forced="b")
    assert (answer.variant, answer.enrolled, answer.reason) == ("b", False, "forced")
    assert compiled.evaluate("v-1", forced="no-such-variant").reason == "running"


def test_visitor_without_consent_sees_the_variant_unenrolled() -> None:
    compiled = parse_experiment(
        experiment(
            variants=[{"key": "control", "allocation": 0}, {"key": "b", "allocation": 10000}]
        )
    )
    assert compiled is not None
    assert compiled.evaluate("v-1").variant == "b"
    answer = compiled.evaluate("v-1", has_consent=False)
    assert (answer.variant, answer.enrolled, answer.reason) == ("b", False, "no_consent")
    assert (
        parse_experiment(experiment(coverage=0)).evaluate("v-1", has_consent=False).reason
        == "outside_coverage"
    )  # type: ignore[union-attr]


def test_visitor_not_matching_conditions_is_not_targeted() -> None:
    compiled = parse_experiment(experiment(conditions={"source": "facebook"}, segments=["device"]))
    assert compiled is not None
    assert compiled.evaluate("v-1", {"source": "google"}).reason == "not_targeted"
    assert compiled.evaluate("v-1").reason == "not_targeted"
    assert compiled.evaluate("v-1", {"source": "facebook"}).reason == "running"
    assert compiled.attribute_names == {"source", "device"}


@pytest.mark.parametrize("conditions", [["not", "an", "object"], {"$or": []}, {"v": {"$foo": 1}}])
def test_experiment_with_a_condition_the_server_refuses_targets_nobody(
    conditions: object, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="splitwerk"):
        config = parse_config({"spec": SPEC, "experiments": [experiment(conditions=conditions)]})
    assert config is not None
    answer = config.experiments["exp"].evaluate("v-1", {"v": 1})
    assert (answer.variant, answer.enrolled, answer.reason) == ("control", False, "not_targeted")
    assert "'exp' targets nobody" in caplog.text


def test_layer_and_coverage_reasons() -> None:
    outside_layer = parse_experiment(experiment(layer={"salt": "l", "start": 0, "end": 0}))
    no_coverage = parse_experiment(experiment(coverage=0))
    assert outside_layer is not None and no_coverage is not None
    assert outside_layer.evaluate("v-1").reason == "layer"
    assert no_coverage.evaluate("v-1").reason == "outside_coverage"


def test_payloads_are_read_only() -> None:
    compiled = parse_experiment(
        experiment(
            variants=[
                {"key": "control", "allocation": 0, "payload": {"colors": ["red"]}},
                {"key": "b", "allocation": 10000},
            ]
        ),
    )
    assert compiled is not None
    payload = compiled.evaluate("v-1", forced="control").payload
    assert payload["colors"] == ("red",)
    with pytest.raises(TypeError):
        payload["colors"] = "blue"


@pytest.mark.parametrize(
    "overrides",
    [
        {"variants": [{"key": "control", "allocation": 5000}, {"key": "b", "allocation": 4000}]},
        {"variants": [{"key": "control", "allocation": 5000.0}, {"key": "b", "allocation": 5000}]},
        {
            "variants": [
                {"key": "control", "allocation": 5000},
                {"key": "control", "allocation": 5000},
            ]
        },
        {"variants": []},
        {"coverage": 10001},
        {"coverage": True},
        {"status": "running-ish"},
        {"winner": "c"},
        {"layer": {"salt": "l", "start": 6000, "end": 5000}},
        {"key": ""},
    ],
)
def test_invalid_experiments_are_left_out_not_fixed(
    overrides: dict[str, object], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="splitwerk"):
        config = parse_config(
            {"spec": SPEC, "experiments": [experiment(**overrides), experiment(key="ok")]}
        )
    assert config is not None
    assert list(config.experiments) == ["ok"]
    assert "left out" in caplog.text


def test_salt_defaults_to_the_key() -> None:
    compiled = parse_experiment(experiment(salt=None))
    assert compiled is not None and compiled.salt == "exp"


@pytest.mark.parametrize(
    "document", [{"spec": "assignment v2", "experiments": []}, {"spec": SPEC}, [], None]
)
def test_config_for_another_spec_is_refused(document: object) -> None:
    assert parse_config(document) is None
