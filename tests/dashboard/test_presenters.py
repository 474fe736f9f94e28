"""View rows from statistics: colour only for conclusive results, plain words, progress."""

from __future__ import annotations

import dataclasses
import datetime as dt

from dashboard import presenters
from dashboard.i18n import Translator
from server.core.models import GoalKind
from server.core.stats import CovariateResult, GoalResult, Interval, VariantResult
from server.services.results import CovariateReport, GoalReport, VariantTotals

EN, DE = Translator.of("en"), Translator.of("de")


def variant(index: int, **fields: object) -> VariantResult:
    values: dict[str, object] = {
        "variant": index, "visitors": 1000, "converted": 30, "estimate": 0.03, "uplift": None,
        "uplift_interval": None, "relative_uplift": None, "relative_uplift_interval": None,
        "p_value": None, "adjusted_p_value": None, "is_significant": False,
        "chance_to_beat_control": None, "expected_loss": None,
    }  # fmt: skip
    values.update(fields)
    return VariantResult(**values)  # type: ignore[arg-type]


CONTROL = variant(0, estimate=1.10)


def challenger(**fields: object) -> VariantResult:
    defaults: dict[str, object] = {
        "estimate": 1.52, "uplift": 0.42, "uplift_interval": Interval(0.10, 0.75),
        "relative_uplift": 0.38, "p_value": 0.004, "adjusted_p_value": 0.004,
        "is_significant": True, "chance_to_beat_control": 0.99,
    }  # fmt: skip
    defaults.update(fields)
    return variant(1, **defaults)


def test_a_conclusive_gain_is_green_and_said_in_plain_words() -> None:
    found = presenters.effect(GoalKind.MARGIN, "b", challenger(), CONTROL, EN, "EUR")
    assert found.tone == presenters.BETTER
    assert found.sentence == (
        "b earns about +€0.42 margin per visitor; 99% likely better. Conclusive."
    )
    assert found.interval == "+€0.10 to +€0.75"


def test_the_same_gain_without_significance_stays_uncoloured() -> None:
    found = presenters.effect(
        GoalKind.MARGIN, "b", challenger(is_significant=False, chance_to_beat_control=0.93),
        CONTROL, EN, "EUR",
    )  # fmt: skip
    assert found.tone == presenters.NEUTRAL
    assert found.sentence.endswith("93% likely better. Not conclusive yet.")


def test_a_conclusive_loss_is_red_and_says_worse() -> None:
    found = presenters.effect(
        GoalKind.REVENUE, "b",
        challenger(uplift=-0.5, uplift_interval=Interval(-0.9, -0.1), chance_to_beat_control=0.01),
        CONTROL, DE, "EUR",
    )  # fmt: skip
    assert found.tone == presenters.WORSE
    assert found.sentence == (
        "b bringt etwa −0,50\u00a0€ Nettoumsatz pro Besucher; zu 99\u00a0% wahrscheinlich "
        "schlechter. Das Ergebnis ist belastbar."
    )


def test_conversion_uplifts_are_in_percentage_points() -> None:
    control = variant(0, estimate=0.0378)
    found = presenters.effect(
        GoalKind.CONVERSION, "green",
        challenger(estimate=0.0289, uplift=-0.0089, uplift_interval=Interval(-0.02, 0.01),
                   is_significant=False, chance_to_beat_control=0.17),
        control, EN, "EUR",
    )  # fmt: skip
    assert found.uplift == "−0.89 pp"
    assert found.sentence.startswith(
        "green converts 0.89 percentage points less often (2.89% vs 3.78%); 83% likely worse."
    )


def report(needed: int | None, visitors: tuple[int, int], end: dt.date | None) -> GoalReport:
    result = GoalResult("conversion", "sequential", 0.05, 0.05, "holm", (CONTROL, challenger()))
    pairs = zip("ab", visitors, strict=True)
    totals = tuple(VariantTotals(key, count, 0, 0, 0.0) for key, count in pairs)
    return GoalReport("purchase", GoalKind.CONVERSION, True, result, totals, needed, end, "")


def test_progress_counts_the_visitors_still_missing_in_all_variants() -> None:
    found = presenters.progress(report(1000, (600, 800), dt.date(2026, 1, 31)), 0.05, EN)
    assert found.still_needed == "600"
    assert found.share == 60
    assert "around Jan 31, 2026" in found.sentence


def test_progress_without_a_sample_size_says_why() -> None:
    found = presenters.progress(report(None, (0, 0), None), 0.05, DE)
    assert found.share == 0
    assert "Stichprobe unbekannt" in found.sentence


def test_progress_when_enough_visitors_are_in() -> None:
    found = presenters.progress(report(500, (600, 800), dt.date(2026, 1, 1)), 0.05, EN)
    assert found.share == 100
    assert found.sentence.startswith("Enough visitors")


# --- results that never mislead (issue 13) ------------------------------------------------------


def goal_report(*challengers: VariantResult, traffic_days: int = 7) -> GoalReport:
    result = GoalResult("conversion", "fixed", 0.05, 0.05, "holm", (CONTROL, *challengers))
    totals = tuple(
        VariantTotals(key, 1000, 30, 30, 0.0) for key in "abcdefghij"[: 1 + len(challengers)]
    )
    return GoalReport(
        "purchase", GoalKind.CONVERSION, True, result, totals, None, None, "", traffic_days
    )


def test_chances_never_read_as_certain() -> None:
    found = presenters.effect(
        GoalKind.MARGIN, "b", challenger(chance_to_beat_control=0.9967), CONTROL, EN, "EUR"
    )
    assert found.chance == "> 99%"
    assert found.sentence.endswith("> 99% likely better. Conclusive.")
    worse = presenters.effect(
        GoalKind.MARGIN, "b",
        challenger(uplift=-0.4, uplift_interval=Interval(-0.7, -0.1), chance_to_beat_control=0.001),
        CONTROL, DE, "EUR",
    )  # fmt: skip
    assert worse.chance == "< 1\u00a0%"
    assert "zu > 99\u00a0% wahrscheinlich schlechter" in worse.sentence


def test_a_significant_result_whose_interval_crosses_zero_is_no_verdict() -> None:
    found = presenters.effect(
        GoalKind.MARGIN, "b", challenger(uplift_interval=Interval(-0.01, 0.8)), CONTROL, EN, "EUR"
    )
    assert found.tone == presenters.NEUTRAL
    assert found.sentence.endswith("Not conclusive yet.")


def test_the_headline_follows_adjusted_evidence_not_the_highest_chance() -> None:
    lucky = challenger(
        uplift=0.5, p_value=0.02, adjusted_p_value=0.18, is_significant=False,
        chance_to_beat_control=0.99,
    )  # fmt: skip
    steady = variant(
        2, estimate=1.3, uplift=0.2, uplift_interval=Interval(-0.2, 0.6), p_value=0.015,
        adjusted_p_value=0.15, is_significant=False, chance_to_beat_control=0.9,
    )  # fmt: skip
    view = presenters.goal_view(goal_report(lucky, steady), ["a", "b", "c"], None, EN, "EUR")
    assert view.headline.startswith("c earns") or view.headline.startswith("c converts")
    assert view.headline.endswith("Not conclusive yet.") and view.headline_tone == ""


def test_below_the_minimum_evidence_the_page_says_not_enough_data() -> None:
    small = challenger(
        status="not_enough_data", reason="fewer than 100 visitors in the control or the variant",
        adjusted_p_value=None, is_significant=False, chance_to_beat_control=None,
    )  # fmt: skip
    view = presenters.goal_view(goal_report(small), ["a", "b"], None, EN, "EUR")
    assert view.headline == (
        "Not enough data yet: a verdict needs 100 visitors in each variant and 10 conversions "
        "in both together."
    )
    row = view.rows[1].effect
    assert row is not None and row.chance == "–" and row.tone == ""
    assert "Conclusive" not in row.sentence


def test_a_missing_relative_change_says_why() -> None:
    found = presenters.effect(
        GoalKind.MARGIN, "b", challenger(relative_uplift=None), CONTROL, EN, "EUR"
    )
    assert found.relative == "–"
    assert found.relative_note == (
        "No relative change: the control's value is not clearly above zero."
    )


def test_progress_of_a_one_day_old_experiment_speaks_of_the_first_day() -> None:
    report = goal_report(challenger(), traffic_days=1)
    report = GoalReport(
        report.key, report.kind, True, report.result, report.totals, 5000,
        dt.date(2026, 2, 13), "", 1,
    )  # fmt: skip
    found = presenters.progress(report, 0.05, EN)
    assert "at the traffic of the first day that is around Feb 13, 2026" in found.sentence


def test_a_value_goal_shows_its_cap() -> None:
    report = goal_report(challenger())
    capped = GoalReport(
        "revenue", GoalKind.REVENUE, False, report.result, report.totals, None, None, "", 7,
        1000.0,
    )  # fmt: skip
    view = presenters.goal_view(capped, ["a", "b"], None, DE, "EUR")
    assert "höchstens mit 1.000,00\u00a0€" in view.cap_note
    assert presenters.goal_view(report, ["a", "b"], None, EN, "EUR").cap_note == ""


def test_the_p_value_heading_names_the_test_that_was_run() -> None:
    def result(method: str, test: str) -> GoalResult:
        return GoalResult("conversion", method, 0.05, 0.05, "holm", (CONTROL,), test=test)

    assert presenters.p_value_method(result("fixed", "fixed"), EN) == "fixed horizon"
    planned = result("sequential", "group_sequential")
    assert presenters.p_value_method(planned, EN) == "group sequential, over the planned size"
    assert presenters.p_value_method(planned, DE) == "gruppensequenziell, über die geplante Größe"
    open_ended = result("sequential", "always_valid")
    assert presenters.p_value_method(open_ended, EN) == "sequential, always valid"


def test_progress_says_what_the_covariate_saves_when_cuped_plans_the_size() -> None:
    adjusted = [
        CovariateResult(index, 0.1, 0.05, None, 0.5, ratio, 0.2, 0.2, False, 0.9, 0.01)
        for index, ratio in ((1, 0.64), (2, 0.73))
    ]
    plain = report(1000, (600, 800), dt.date(2026, 1, 31))
    with_cuped = dataclasses.replace(plain, covariate=CovariateReport((300, 400), tuple(adjusted)))
    # the least helped comparison sets the size, so it says what that one saves
    assert presenters.progress(with_cuped, 0.05, EN).sentence.endswith(
        "The pre-experiment values your shop sends make that 27% fewer visitors than without "
        "them (CUPED)."
    )
    assert "27\u00a0% weniger Besucher" in presenters.progress(with_cuped, 0.05, DE).sentence
    assert "CUPED" not in presenters.progress(plain, 0.05, EN).sentence
