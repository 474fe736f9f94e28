"""The assignment procedure: the spec's vectors, the reasons, and its invariants."""

import itertools
import json
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.core.assignment import Decision, Reason, compile_experiment, decide
from server.core.models import Experiment, Layer, Status, Variant
from splitwerk.bucketing import bucket as bucket_of

VECTORS_PATH = Path(__file__).resolve().parents[2] / "spec" / "assignment-vectors.json"


def load_vectors() -> dict:
    # A missing file must fail the run, not skip: the vectors are the contract.
    assert VECTORS_PATH.is_file(), f"spec vectors missing at {VECTORS_PATH}"
    return json.loads(VECTORS_PATH.read_text(encoding="utf-8"))


def experiment_from_vector(config: dict) -> Experiment:
    """Convert a vector configuration into the domain model."""
    layer = config["layer"]
    return Experiment(
        key=config["key"],
        name=config["key"],
        variants=tuple(
            Variant(
                key=variant["key"], weight=variant["allocation"], allocation=variant["allocation"]
            )
            for variant in config["variants"]
        ),
        coverage=config["coverage"],
        layer=None
        if layer is None
        else Layer(name=layer["salt"], start=layer["start"], end=layer["end"], salt=layer["salt"]),
        status=Status(config["status"]),
        winner=config["winner"],
        salt=config["salt"],
    )


VECTORS = load_vectors()
EXPERIMENTS = {config["key"]: experiment_from_vector(config) for config in VECTORS["experiments"]}


@pytest.mark.parametrize(
    "vector",
    VECTORS["assign"],
    ids=[f"{v['experiment']}:{v['visitor']!r}" for v in VECTORS["assign"]],
)
def test_assignment_matches_spec_vector(vector):
    decision = decide(EXPERIMENTS[vector["experiment"]], vector["visitor"], {})
    assert (decision.variant.key, decision.is_enrolled) == (vector["variant"], vector["enrolled"])


def test_vectors_exercise_every_spec_step():
    reasons = {
        decide(EXPERIMENTS[vector["experiment"]], vector["visitor"], {}).reason
        for vector in VECTORS["assign"]
    }
    assert {Reason.RUNNING, Reason.PAUSED, Reason.WINNER, Reason.NOT_RUNNING} <= reasons
    assert {Reason.LAYER, Reason.OUTSIDE_COVERAGE} <= reasons


def make_experiment(
    allocations=(5000, 5000), coverage=10_000, status=Status.RUNNING, **fields
) -> Experiment:
    variants = tuple(
        Variant(
            key="control" if index == 0 else f"v{index}", weight=allocation, allocation=allocation
        )
        for index, allocation in enumerate(allocations)
    )
    return Experiment(
        key=fields.pop("key", "exp"), name="Experiment", variants=variants, coverage=coverage,
        status=status, **fields,
    )  # fmt: skip


# --- step 1: status -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "winner", "variant", "reason"),
    [
        (Status.DRAFT, None, "control", Reason.NOT_RUNNING),
        (Status.ARCHIVED, None, "control", Reason.NOT_RUNNING),
        (Status.ARCHIVED, "v1", "control", Reason.NOT_RUNNING),
        (Status.PAUSED, None, "control", Reason.PAUSED),
        (Status.STOPPED, None, "control", Reason.STOPPED),
        (Status.STOPPED, "v1", "v1", Reason.WINNER),
        (Status.STOPPED, "gone", "control", Reason.STOPPED),
    ],
)
def test_experiment_that_is_not_running_enrols_nobody(status, winner, variant, reason):
    experiment = make_experiment(status=status, winner=winner, allow_list={"qa": "v1"})
    for visitor in ["a", "b", "qa"]:
        decision = decide(experiment, visitor, {}, forced="v1", is_bot=False)
        assert decision == Decision(experiment.variant(variant), False, reason)


def test_running_experiment_enrols_with_reason_running():
    decision = decide(make_experiment(), "visitor-1", {})
    assert decision.is_enrolled
    assert decision.reason is Reason.RUNNING


# --- step 2: forced variants and bots -----------------------------------------------------------


def test_force_parameter_gives_that_variant_without_enrolment():
    decision = decide(make_experiment(), "visitor-1", {}, forced="v1")
    assert decision == Decision(make_experiment().variant("v1"), False, Reason.FORCED)


def test_allow_list_gives_its_variant_without_enrolment():
    experiment = make_experiment(allow_list={"qa-anna": "v1"})
    assert decide(experiment, "qa-anna", {}) == Decision(
        experiment.variant("v1"), False, Reason.FORCED
    )
    assert decide(experiment, "someone", {}).reason is not Reason.FORCED


def test_force_parameter_wins_over_the_allow_list():
    experiment = make_experiment(allocations=(3000, 3000, 4000), allow_list={"qa": "v1"})
    assert decide(experiment, "qa", {}, forced="v2").variant.key == "v2"


def test_unknown_forced_key_is_ignored():
    experiment = make_experiment(allow_list={"qa": "v1", "old": "removed"})
    assert decide(experiment, "qa", {}, forced="nope").variant.key == "v1"
    assert decide(experiment, "old", {}).reason is not Reason.FORCED
    assert decide(experiment, "x", {}, forced="nope") == decide(experiment, "x", {})


def test_forced_variant_wins_over_bot_detection_and_targeting():
    experiment = make_experiment(conditions={"country": "DE"})
    decision = decide(experiment, "qa", {"country": "FR"}, forced="v1", is_bot=True)
    assert (decision.variant.key, decision.reason) == ("v1", Reason.FORCED)


@given(st.text(min_size=1, max_size=128).filter(lambda text: text.isprintable()))
def test_bot_sees_control_and_is_never_enrolled(visitor):
    experiment = make_experiment(allocations=(1, 9999))
    assert decide(experiment, visitor, {}, is_bot=True) == Decision(
        experiment.control, False, Reason.BOT
    )


# --- step 3: targeting --------------------------------------------------------------------------


def test_visitor_failing_the_conditions_sees_control_unenrolled():
    experiment = make_experiment(
        allocations=(1, 9999), conditions={"country": {"$in": ["DE", "AT"]}}
    )
    assert decide(experiment, "v", {"country": "FR"}) == Decision(
        experiment.control, False, Reason.NOT_TARGETED
    )
    assert decide(experiment, "v", {}).reason is Reason.NOT_TARGETED
    assert decide(experiment, "v", {"country": "AT"}).is_enrolled


def test_precompiled_experiment_is_used_instead_of_recompiling():
    experiment = make_experiment(allocations=(1, 9999), conditions={"country": "DE"})
    untargeted = compile_experiment(make_experiment(allocations=(1, 9999)))
    decision = decide(experiment, "v", {"country": "FR"}, compiled=untargeted)
    assert decision.is_enrolled
    compiled = compile_experiment(experiment)
    assert (
        decide(experiment, "v", {"country": "FR"}, compiled=compiled).reason is Reason.NOT_TARGETED
    )


def test_empty_conditions_target_everyone():
    assert decide(make_experiment(conditions={}), "v", {}).is_enrolled


# --- step 4: layers -----------------------------------------------------------------------------


def test_visitor_outside_the_layer_range_sees_control_unenrolled():
    layer = Layer(name="home", start=0, end=5000)
    experiment = make_experiment(layer=layer)
    visitors = [f"visitor-{index}" for index in range(200)]
    inside = [visitor for visitor in visitors if bucket_of(visitor, "layer:home") < 5000]
    outside = [visitor for visitor in visitors if bucket_of(visitor, "layer:home") >= 5000]
    assert inside and outside
    assert all(decide(experiment, visitor, {}).is_enrolled for visitor in inside)
    for visitor in outside:
        assert decide(experiment, visitor, {}) == Decision(experiment.control, False, Reason.LAYER)


@st.composite
def layer_ranges(draw):
    cuts = sorted(draw(st.sets(st.integers(1, 9999), min_size=1, max_size=5)))
    bounds = [0, *cuts, 10_000]
    return list(itertools.pairwise(bounds))


@settings(max_examples=100)
@given(
    layer_ranges(), st.lists(st.text(min_size=1, max_size=20).filter(str.isprintable), max_size=30)
)
def test_experiments_with_disjoint_layer_ranges_never_share_a_visitor(ranges, visitors):
    experiments = [
        make_experiment(key=f"exp-{index}", layer=Layer(name="checkout", start=start, end=end))
        for index, (start, end) in enumerate(ranges)
    ]
    for visitor in visitors:
        enrolled = [
            experiment.key
            for experiment in experiments
            if decide(experiment, visitor, {}).is_enrolled
        ]
        # The ranges cover the whole layer at full coverage: exactly one experiment has them.
        assert len(enrolled) == 1


# --- step 5: variants and coverage --------------------------------------------------------------


@st.composite
def allocations(draw):
    cuts = sorted(draw(st.sets(st.integers(1, 9999), min_size=1, max_size=4)))
    bounds = [0, *cuts, 10_000]
    return tuple(high - low for low, high in itertools.pairwise(bounds))


@settings(max_examples=300)
@given(
    allocations(),
    st.integers(0, 10_000),
    st.integers(0, 10_000),
    st.text(min_size=1, max_size=40).filter(str.isprintable),
)
def test_raising_coverage_never_moves_an_enrolled_visitor(split, first, second, visitor):
    low, high = sorted((first, second))
    before = decide(make_experiment(allocations=split, coverage=low), visitor, {})
    after = decide(make_experiment(allocations=split, coverage=high), visitor, {})
    if before.is_enrolled:
        assert after.is_enrolled
        assert after.variant == before.variant
    if not after.is_enrolled:
        assert not before.is_enrolled


def test_zero_coverage_enrols_nobody_and_full_coverage_everybody():
    visitors = [f"visitor-{index}" for index in range(500)]
    empty = make_experiment(coverage=0)
    full = make_experiment(allocations=(3333, 3333, 3334))
    assert not any(decide(empty, visitor, {}).is_enrolled for visitor in visitors)
    assert all(decide(full, visitor, {}).is_enrolled for visitor in visitors)
    assert {decide(empty, visitor, {}).reason for visitor in visitors} == {Reason.OUTSIDE_COVERAGE}


def test_even_split_distributes_10000_visitors_within_two_percent():
    experiment = make_experiment()
    counts = {"control": 0, "v1": 0}
    for index in range(10_000):
        counts[decide(experiment, f"visitor-{index:05d}", {}).variant.key] += 1
    # 200 is four standard deviations of a fair binomial(10000, 0.5).
    assert abs(counts["control"] - 5000) <= 200


def test_coverage_enrols_its_share_of_visitors():
    experiment = make_experiment(coverage=2000)
    enrolled = sum(
        decide(experiment, f"visitor-{index}", {}).is_enrolled for index in range(10_000)
    )
    assert abs(enrolled - 2000) <= 160  # four standard deviations of binomial(10000, 0.2)


def test_salt_decides_the_bucket_and_defaults_to_the_key():
    experiment = make_experiment(key="exp")
    assert experiment.assignment_salt == "exp"
    phase_two = replace(experiment, salt="exp-phase2")
    visitors = [f"visitor-{index}" for index in range(200)]
    moved = [
        v for v in visitors if decide(experiment, v, {}).variant != decide(phase_two, v, {}).variant
    ]
    assert moved  # a new salt re-randomises


def test_decision_is_frozen():
    decision = decide(make_experiment(), "v", {})
    with pytest.raises(AttributeError):
        decision.is_enrolled = False
