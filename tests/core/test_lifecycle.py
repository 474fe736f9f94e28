"""Pure lifecycle rules: weight normalisation (property tests), transitions, edits, layers."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from server.core import lifecycle
from server.core.errors import Conflict, InvalidInput, TransitionRefused
from server.core.models import BASIS_POINTS, Experiment, Layer, Status, Variant

weights = st.lists(
    st.one_of(st.integers(1, 1000), st.floats(0.01, 1000, allow_nan=False)), min_size=2,
    max_size=10,
)  # fmt: skip


def can_normalise(values: list[float]) -> bool:
    """Every weight is worth at least one basis point of the whole."""
    return min(values) * BASIS_POINTS >= sum(values)


@given(weights)
def test_normalised_weights_sum_to_10000_and_stay_proportional(values: list[float]) -> None:
    assume(can_normalise(values))
    allocations = lifecycle.normalise_weights(values)
    assert sum(allocations) == BASIS_POINTS
    assert all(allocation >= 1 for allocation in allocations)
    total = sum(Fraction(value) for value in values)
    for value, allocation in zip(values, allocations, strict=True):
        exact = Fraction(value) * BASIS_POINTS / total
        assert abs(allocation - exact) < 1  # floor, plus at most one point of the remainder


@given(weights)
def test_normalisation_is_deterministic_and_scale_free(values: list[float]) -> None:
    assume(can_normalise(values))
    assert lifecycle.normalise_weights(values) == lifecycle.normalise_weights(values)
    assert lifecycle.normalise_weights([v * 4 for v in values]) == lifecycle.normalise_weights(
        values
    )


def test_largest_remainders_first_and_earlier_variants_win_ties() -> None:
    assert lifecycle.normalise_weights([1, 1, 1]) == [3334, 3333, 3333]
    assert lifecycle.normalise_weights([1, 2]) == [3333, 6667]
    assert lifecycle.normalise_weights([0.5, 0.25, 0.25]) == [5000, 2500, 2500]


@pytest.mark.parametrize("values", [[0, 1], [-1, 2], [1, 1e-9]])
def test_weights_that_cannot_be_normalised_are_rejected(values: list[float]) -> None:
    with pytest.raises(InvalidInput):
        lifecycle.normalise_weights(values)


def experiment(status: Status = Status.DRAFT, **changes: object) -> Experiment:
    base = Experiment(
        key="exp",
        name="Exp",
        variants=(Variant("a", 1, 5000), Variant("b", 1, 5000)),
        status=status,
        coverage=5000,
    )
    return Experiment(**{**base.__dict__, **changes})  # type: ignore[arg-type]


def test_transitions_follow_the_lifecycle() -> None:
    running = lifecycle.transition(experiment(), "start", 10.0)
    assert (running.status, running.started_at) == (Status.RUNNING, 10.0)
    stopped = lifecycle.stop(running, "b", 20.0)
    assert (stopped.status, stopped.winner, stopped.stopped_at) == (Status.STOPPED, "b", 20.0)
    with pytest.raises(TransitionRefused, match="cannot start"):
        lifecycle.transition(stopped, "start", 30.0)
    with pytest.raises(InvalidInput):
        lifecycle.stop(running, "c", 20.0)


def test_live_experiments_keep_allocations_and_only_grow_coverage() -> None:
    live = experiment(Status.RUNNING)
    lifecycle.check_update(live, {"coverage": 6000, "name": "x"})
    with pytest.raises(Conflict):
        lifecycle.check_update(live, {"coverage": 4000})
    with pytest.raises(Conflict):
        lifecycle.check_update(live, {"variants": (Variant("a", 1, 2000), Variant("b", 3, 8000))})
    with pytest.raises(Conflict, match="segments"):
        lifecycle.check_editable(live, ["segments"])
    with pytest.raises(Conflict, match="variants"):
        lifecycle.check_editable(experiment(Status.ARCHIVED), ["variants"])


def test_new_phase_changes_salt_and_is_refused_when_stopped() -> None:
    running = experiment(Status.RUNNING)
    second = lifecycle.new_phase(running, {"coverage": 1000}, 5.0)
    assert (second.phase, second.coverage) == (2, 1000)
    assert second.assignment_salt != running.assignment_salt
    with pytest.raises(TransitionRefused):
        lifecycle.new_phase(experiment(Status.STOPPED), {}, 5.0)


def test_layer_slots_fill_gaps_and_refuse_overlaps() -> None:
    others = [
        experiment(key="one", layer=Layer("home", 0, 3000)),
        experiment(key="two", layer=Layer("home", 5000, 8000)),
        experiment(key="old", status=Status.STOPPED, layer=Layer("home", 3000, 5000)),
    ]
    assert lifecycle.allocate_layer_slots("home", 2000, None, None, "new", others) == Layer(
        "home", 3000, 5000
    )
    with pytest.raises(Conflict, match="no free range of 2001"):
        lifecycle.allocate_layer_slots("home", 2001, None, None, "new", others)
    last = [*others, experiment(key="mid", layer=Layer("home", 3000, 5000))]
    assert lifecycle.allocate_layer_slots("home", 2000, None, None, "new", last) == Layer(
        "home", 8000, 10000
    )
    with pytest.raises(Conflict, match="overlap"):
        lifecycle.allocate_layer_slots("home", None, 2500, 3500, "new", others)
    with pytest.raises(InvalidInput):
        lifecycle.allocate_layer_slots("home", None, 4000, 3000, "new", others)
    own = lifecycle.allocate_layer_slots("home", None, 0, 3000, "one", others)
    assert own == Layer("home", 0, 3000)  # an experiment does not overlap itself
