"""The experiment list's leader follows the verdict rule of the results, not the highest chance."""

from __future__ import annotations

from server.services.overview import _leader
from server.services.results import compute_results
from tests.services.test_results import NOW, experiment


def test_a_lucky_variant_among_ten_does_not_lead() -> None:
    # v3's chance to beat is 98 %, but after Holm over 9 comparisons nothing is clear
    raw = {"e:0": 10000, "c:0:purchase": 500}
    for i in range(1, 10):
        raw |= {f"e:{i}": 10000, f"c:{i}:purchase": 565 if i == 3 else 500 + i}
    test = experiment(10)
    primary = compute_results(test, raw, NOW, "EUR").goals[0]
    leader, challenger, result = _leader(test, primary)
    assert leader is None and challenger == "v3"
    assert result is not None and result.chance_to_beat_control is not None
    assert result.chance_to_beat_control > 0.95


def test_a_clear_winner_leads_and_a_clear_loser_leaves_the_control_ahead() -> None:
    test = experiment()
    better = {"e:0": 10000, "e:1": 10000, "c:0:purchase": 500, "c:1:purchase": 580}
    assert _leader(test, compute_results(test, better, NOW, "EUR").goals[0])[:2] == ("v1", "v1")
    worse = better | {"c:1:purchase": 420}
    assert _leader(test, compute_results(test, worse, NOW, "EUR").goals[0])[:2] == (
        "control",
        "v1",
    )
    small = {"e:0": 50, "e:1": 50, "c:0:purchase": 5, "c:1:purchase": 9}
    assert _leader(test, compute_results(test, small, NOW, "EUR").goals[0]) == (None, None, None)
