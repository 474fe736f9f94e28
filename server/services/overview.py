"""Use cases of the dashboard's reading pages: the experiment list and one experiment's page."""

from __future__ import annotations

from dataclasses import dataclass

from server.core.decision import Decision
from server.core.models import AuditEntry, Experiment, Status
from server.core.stats import VariantResult
from server.services.decisions import conversion_goal, decision_goal, experiment_decision
from server.services.experiments import (
    SECONDS_PER_DAY,
    audit_trail,
    get_experiment,
    list_experiments,
)
from server.services.results import (
    ExperimentResults,
    GoalReport,
    ResultsReader,
    best_challenger,
    is_winner,
)
from server.storage.store import Store

# Experiments one overview shows; a shop runs a few dozen at a time, and each listed experiment
# costs one counter read, so the list stays well under a second even when full.
MAX_LISTED = 200


@dataclass(frozen=True, slots=True)
class ExperimentOverview:
    """One row of the experiment list.

    ``challenger`` is the variant the primary goal's sentence speaks of (``best_challenger``:
    the clearest winner, else the strongest adjusted evidence) and ``challenger_result`` its
    result against the control (None until a comparison meets the minimum-evidence rule).
    ``leader`` is the variant ahead by a verdict (significant after Holm, interval off zero):
    that challenger when it is clearly better, the control when it is clearly worse, None while
    nothing is clear. ``decision`` is what to do now
    (None for drafts and experiments without goals), about ``decision_goal``, with
    ``conversion`` as the secondary figure.
    """

    experiment: Experiment
    visitors: int
    days_running: int | None
    primary: GoalReport | None
    leader: str | None
    challenger: str | None
    challenger_result: VariantResult | None
    is_sample_ratio_mismatch: bool
    decision: Decision | None = None
    decision_goal: GoalReport | None = None
    conversion: GoalReport | None = None
    has_guardrail_alarm: bool = False  # some challenger significantly harms a guardrail


def _days_running(experiment: Experiment, now: float) -> int | None:
    """Whole days since the start, up to the stop (paused days count: enrolled visitors stay)."""
    if experiment.started_at is None:
        return None
    end = experiment.stopped_at if experiment.stopped_at is not None else now
    return max(0, int((end - experiment.started_at) // SECONDS_PER_DAY))


def _leader(
    experiment: Experiment, primary: GoalReport
) -> tuple[str | None, str | None, VariantResult | None]:
    """The leading variant by a verdict (None without one), the best challenger, its result."""
    best = best_challenger(primary.result)
    if best is None:
        return None, None, None
    key = experiment.variants[best.variant].key
    if not is_winner(best):
        return None, key, best
    return (key if (best.uplift or 0.0) > 0.0 else experiment.control.key), key, best


def _matches(experiment: Experiment, search: str) -> bool:
    needle = search.casefold()
    return any(
        needle in text.casefold()
        for text in (experiment.key, experiment.name, experiment.hypothesis)
    )


def list_overview(
    store: Store,
    reader: ResultsReader,
    *,
    status: Status | None,
    search: str,
    now: float,
) -> list[ExperimentOverview]:
    """Experiments (newest first) filtered by status and a case-insensitive text search.

    Drafts never enrolled anybody, so their counters are not read.
    """
    experiments, _ = list_experiments(store, status, 1, MAX_LISTED)
    rows = []
    for experiment in experiments:
        if search and not _matches(experiment, search):
            continue
        if experiment.status == Status.DRAFT:
            rows.append(ExperimentOverview(experiment, 0, None, None, None, None, None, False))
            continue
        results = reader.results(experiment, now)
        primary = next((goal for goal in results.goals if goal.is_primary), None)
        leader, challenger, result = (
            (None, None, None) if primary is None else _leader(experiment, primary)
        )
        rows.append(
            ExperimentOverview(
                experiment=experiment,
                visitors=sum(variant.visitors for variant in results.variants),
                days_running=_days_running(experiment, now),
                primary=primary,
                leader=leader,
                challenger=challenger,
                challenger_result=result,
                is_sample_ratio_mismatch=results.sample_ratio.is_mismatch,
                decision=experiment_decision(results),
                decision_goal=decision_goal(results),
                conversion=conversion_goal(results),
                has_guardrail_alarm=results.has_guardrail_alarm,
            )
        )
    return rows


@dataclass(frozen=True, slots=True)
class ExperimentPage:
    """An experiment with its current results (None for drafts) and its newest audit entries."""

    experiment: Experiment
    results: ExperimentResults | None
    audit: list[AuditEntry]


def experiment_page(
    store: Store, reader: ResultsReader, key: str, *, audit_limit: int, now: float
) -> ExperimentPage:
    """Everything the experiment page shows.

    Raises:
        NotFound: there is no experiment with this key.
    """
    experiment = get_experiment(store, key)
    results = None if experiment.status == Status.DRAFT else reader.results(experiment, now)
    return ExperimentPage(experiment, results, audit_trail(store, key, audit_limit))
