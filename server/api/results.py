"""Results of an experiment: statistics per goal, variant, segment and day; JSON or CSV."""

from __future__ import annotations

import csv
import io
import time
from typing import Any

from flask import Response

from server import schemas
from server.api import links
from server.api.auth import require
from server.api.jsonio import Blueprint
from server.context import current_services
from server.core import strict_json
from server.core.models import Role
from server.services import experiments as experiment_services
from server.services.decisions import experiment_decision
from server.services.results import ExperimentResults

blp = Blueprint("results", __name__, url_prefix="/v1/experiments", description="Results.")

RESULTS = schemas.ResultsSchema()
DECISION = schemas.DecisionSchema()
CSV_COLUMNS = (
    "goal", "kind", "segment", "segment_value", "judged", "variant", "visitors", "converted",
    "estimate", "uplift", "uplift_lower", "uplift_upper", "relative_uplift", "p_value",
    "adjusted_p_value", "significant", "chance_to_beat_control", "expected_loss", "status",
    "reason", "cuped_uplift", "cuped_uplift_lower", "cuped_uplift_upper", "cuped_p_value",
    "cuped_adjusted_p_value", "cuped_significant", "variance_ratio",
)  # fmt: skip
CUPED_CELLS = 7  # the last columns: a challenger's CUPED comparison on its "all" row, if reported


# OWASP "CSV injection": a text cell starting with one of these is a formula to spreadsheets.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_cell(value: Any) -> Any:
    """A cell that no spreadsheet evaluates: text that starts a formula gets a leading quote.

    Only text is touched: computed numbers (uplifts are often negative) are Python numbers and
    stay numbers. Text comes from outside (segment values that browsers send), so text that
    merely looks like a number ("-2.85") is quoted too; it is shown as that text.
    """
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def results_csv(results: ExperimentResults) -> str:
    """One row per goal × segment value × variant (the whole experiment has segment "all").

    A goal with CUPED reported (docs/statistics.md, "CUPED") carries each challenger's adjusted
    comparison in the ``cuped_*`` and ``variance_ratio`` cells of its "all" row; they are empty
    elsewhere.
    """
    keys = [variant.key for variant in results.variants]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    blocks: list[tuple[str, str, str, str, bool, Any]] = [
        (goal.key, goal.kind.value, "all", "", True, goal.result) for goal in results.goals
    ]
    adjusted = {
        (goal.key, comparison.variant): comparison
        for goal in results.goals
        if goal.covariate is not None
        for comparison in goal.covariate.variants
        if comparison is not None
    }
    kinds = {goal.key: goal.kind.value for goal in results.goals}
    for report in results.segments:
        for segment in report.segments:
            blocks.append(
                (report.goal, kinds[report.goal], report.attribute, segment.segment,
                 segment.is_judged, segment.result)
            )  # fmt: skip
    for goal, kind, attribute, value, judged, result in blocks:
        for row in result.variants:
            interval = row.uplift_interval
            cells = [
                goal, kind, attribute, value, judged, keys[row.variant], row.visitors,
                row.converted, row.estimate, row.uplift,
                interval.lower if interval else None, interval.upper if interval else None,
                row.relative_uplift, row.p_value, row.adjusted_p_value, row.is_significant,
                row.chance_to_beat_control, row.expected_loss, row.status, row.reason,
            ]  # fmt: skip
            cuped = adjusted.get((goal, row.variant)) if attribute == "all" else None
            if cuped is None:
                cells += [None] * CUPED_CELLS
            else:
                bounds = cuped.uplift_interval
                cells += [
                    cuped.uplift, bounds.lower if bounds else None,
                    bounds.upper if bounds else None, cuped.p_value, cuped.adjusted_p_value,
                    cuped.is_significant, cuped.variance_ratio,
                ]  # fmt: skip
            writer.writerow([spreadsheet_cell(cell) for cell in cells])
    return out.getvalue()


@blp.route("/<key:key>/results", methods=["GET"])
@require(Role.VIEWER)
@blp.arguments(schemas.ResultsQuerySchema, location="query")
@blp.response(200, schemas.ResultsSchema)
@blp.doc(
    security=[{"bearerAuth": []}],
    responses={
        200: {
            "links": links.READ,
            "description": "Results; as CSV (one row per goal, segment value and variant; "
            "a challenger's CUPED comparison in the cuped_* columns of its 'all' row) "
            "with ?format=csv",
            "content": {"text/csv": {"schema": {"type": "string"}}},
        }
    },
)
def get_results(query: dict[str, Any], key: str) -> Response:
    """Statistics of the current phase: per goal, variant, segment value and day."""
    experiment = experiment_services.get_experiment(current_services().store, key)
    results = current_services().results_reader.results(experiment, time.time())
    if query["format"] == "csv":
        return Response(
            results_csv(results),
            mimetype="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{key}-results.csv"'},
        )
    body = RESULTS.dump(results)
    decision = experiment_decision(results)
    body["decision"] = None if decision is None else DECISION.dump(decision)
    return Response(
        # statistics that are not numbers (an empty variant) are null, never NaN
        strict_json.dumps(strict_json.without_nonfinite(body)),
        mimetype="application/json",
    )
