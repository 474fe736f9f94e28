"""The experiment form: submitted fields → the API's input shape, and errors → field ids.

The form is only a different way of writing the API's JSON: ``parse`` builds the dict that
``server.schemas.ExperimentCreateSchema`` / ``ExperimentUpdateSchema`` load, so the dashboard
applies exactly the API's validation. Field ids follow the data's path with dashes
(``variants-2-weight``), which is how marshmallow's and the domain's error paths map back onto
the inputs, shifted from the data's list positions to the form's rows.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from server.core import strict_json
from server.core.conditions import ConditionError, validate_condition
from server.core.lifecycle import EDITABLE
from server.core.models import Experiment, Status
from server.schemas import MAX_GOALS, MAX_VARIANTS

PERCENT = 100  # coverage, layer size and minimum effect are entered in percent
SPARE_ROWS = 1  # empty rows offered after the filled ones (more appear with "add")
MINIMUM_VARIANT_ROWS = 2  # an experiment needs a control and one challenger
ROW_GROUPS = {"variants": MAX_VARIANTS, "goals": MAX_GOALS}  # repeated rows and their limits
VARIANT_FIELDS = ("key", "weight", "payload")
GOAL_FIELDS = ("key", "kind", "event")
NO_GOAL = "Add at least one goal: without one the experiment cannot start."
ORDER_GOAL = "purchase"  # the goal an order counts for unless it names another (schemas)


@dataclass
class FormState:
    """What the form shows: the raw values by field id, rows in use, and errors by field id."""

    values: dict[str, str]
    rows: dict[str, int]
    errors: dict[str, list[str]] = field(default_factory=dict)
    message: str = ""

    def value(self, name: str, default: str = "") -> str:
        """The raw value of a field, as typed."""
        return self.values.get(name, default)


@dataclass
class Parsed:
    """The API-shaped data of a submitted form, what could not even be parsed, and row maps."""

    data: dict[str, Any]
    errors: dict[str, list[str]]
    rows: dict[str, list[int]]  # group → the form row of each list entry


def _rows_in_use(values: Mapping[str, str], group: str, names: tuple[str, ...]) -> list[int]:
    return [
        row
        for row in range(ROW_GROUPS[group])
        if any(values.get(f"{group}-{row}-{name}", "").strip() for name in names)
    ]


def number(raw: str, name: str, errors: dict[str, list[str]]) -> float | None:
    """A number typed into ``name``; on failure None and a message under that field id."""
    try:
        return float(raw)
    except ValueError:
        errors.setdefault(name, []).append("must be a number")
        return None


def _json(raw: str, name: str, errors: dict[str, list[str]]) -> Any:
    try:
        return strict_json.loads(raw)
    except ValueError as error:
        errors.setdefault(name, []).append(f"not valid JSON: {error}")
        return None


def percent_to_points(raw: str, name: str, errors: dict[str, list[str]]) -> int | None:
    """A percentage typed into ``name`` as basis points (25.5 → 2550)."""
    share = number(raw, name, errors)
    return None if share is None else round(share * PERCENT)


def parse(values: Mapping[str, str]) -> Parsed:
    """Build API input from form values; values that are not even numbers or JSON are errors."""
    errors: dict[str, list[str]] = {}
    data: dict[str, Any] = {}
    for name in ("key", "name", "hypothesis"):
        if name in values:
            data[name] = values[name].strip()
    variant_rows = _rows_in_use(values, "variants", VARIANT_FIELDS)
    variants = []
    for row in variant_rows:
        prefix = f"variants-{row}-"
        variant: dict[str, Any] = {"key": values.get(prefix + "key", "").strip()}
        weight = values.get(prefix + "weight", "").strip()
        parsed_weight = number(weight, prefix + "weight", errors) if weight else None
        if parsed_weight is not None:
            variant["weight"] = parsed_weight
            if not parsed_weight > 0:
                # the domain refuses it too, but only after the schema passed: said here, it
                # comes together with every other error
                errors.setdefault(prefix + "weight", []).append("must be > 0")
        payload = values.get(prefix + "payload", "").strip()
        variant["payload"] = _json(payload, prefix + "payload", errors) if payload else None
        variants.append(variant)
    data["variants"] = variants
    coverage = values.get("coverage", "").strip()
    points = percent_to_points(coverage, "coverage", errors) if coverage else None
    if points is not None:
        data["coverage"] = points
    conditions = values.get("conditions", "").strip()
    data["conditions"] = _json(conditions, "conditions", errors) if conditions else None
    if data["conditions"] is not None:
        try:  # the service checks it again; here it joins the schema's errors
            validate_condition(data["conditions"])
        except ConditionError as error:
            errors.setdefault("conditions", []).append(str(error))
    goal_rows = _rows_in_use(values, "goals", ("key", "event"))
    primary = values.get("goals-primary", "")
    data["goals"] = [
        {
            "key": values.get(f"goals-{row}-key", "").strip(),
            "kind": values.get(f"goals-{row}-kind", "conversion"),
            "event": values.get(f"goals-{row}-event", "").strip() or None,
            "primary": primary == str(row),
            "accept_browser_value": values.get(f"goals-{row}-browser") == "on",
            **_guardrail(values.get(f"goals-{row}-guardrail", "")),
        }
        for row in goal_rows
    ]
    segments = values.get("segments", "")
    data["segments"] = [part.strip() for part in segments.split(",") if part.strip()]
    layer_name = values.get("layer-name", "").strip()
    if layer_name:
        size = values.get("layer-size", "").strip()
        data["layer"] = {
            "name": layer_name,
            "size": percent_to_points(size, "layer-size", errors) if size else None,
        }
    else:
        data["layer"] = None
    if "analysis" in values:
        data["analysis"] = values["analysis"]
    data["pause_on_harm"] = values.get("pause_on_harm") == "on"
    effect = values.get("minimum_effect", "").strip()
    share = number(effect, "minimum_effect", errors) if effect else None
    if share is not None:
        data["minimum_effect"] = share / PERCENT
    return Parsed(data, errors, {"variants": variant_rows, "goals": goal_rows})


def _guardrail(choice: str) -> dict[str, Any]:
    """A goal row's guardrail select: "" (none) or the harmful direction; anything else goes
    to the schema, which names the field."""
    if not choice:
        return {"guardrail": False}
    return {"guardrail": True, "harm": choice}


def require_goal(parsed: Parsed) -> None:
    """A new experiment needs a goal: without one it could never start, so ask at once."""
    if not parsed.data.get("goals"):
        parsed.errors.setdefault("goals", []).append(NO_GOAL)


def split_preview(values: Mapping[str, str]) -> list[tuple[str, float]]:
    """Each filled variant row's key and share of the traffic (0..1) from the typed weights.

    Rows without a usable positive weight get no share; an empty list means no split yet.
    """
    rows = []
    for row in _rows_in_use(values, "variants", VARIANT_FIELDS):
        key = values.get(f"variants-{row}-key", "").strip() or f"#{row + 1}"
        try:
            weight = float(values.get(f"variants-{row}-weight", ""))
        except ValueError:
            weight = 0.0
        rows.append((key, weight if weight > 0 and weight != float("inf") else 0.0))
    total = sum(weight for _, weight in rows)
    return [(key, weight / total) for key, weight in rows] if total > 0 else []


def percent_text(points: int) -> str:
    """Basis points as the percentage a form shows (2550 → "25.5")."""
    return f"{points / PERCENT:g}"


def values_of(experiment: Experiment) -> dict[str, str]:
    """The form values that show an existing experiment."""
    values = {
        "key": experiment.key,
        "name": experiment.name,
        "hypothesis": experiment.hypothesis,
        "coverage": percent_text(experiment.coverage),
        "conditions": ""
        if experiment.conditions is None
        else json.dumps(experiment.conditions, indent=2, ensure_ascii=False),
        "segments": ", ".join(experiment.segments),
        "analysis": experiment.analysis.value,
        "minimum_effect": f"{experiment.minimum_effect * PERCENT:g}",
        "layer-name": experiment.layer.name if experiment.layer else "",
        "layer-size": percent_text(experiment.layer.end - experiment.layer.start)
        if experiment.layer
        else "",
    }
    for row, variant in enumerate(experiment.variants):
        values[f"variants-{row}-key"] = variant.key
        values[f"variants-{row}-weight"] = f"{variant.weight:g}"
        values[f"variants-{row}-payload"] = (
            "" if variant.payload is None else json.dumps(variant.payload, ensure_ascii=False)
        )
    for row, goal in enumerate(experiment.goals):
        values[f"goals-{row}-key"] = goal.key
        values[f"goals-{row}-kind"] = goal.kind.value
        values[f"goals-{row}-event"] = goal.event
        if goal.accepts_browser_value:
            values[f"goals-{row}-browser"] = "on"
        if goal.is_primary:
            values["goals-primary"] = str(row)
        if goal.is_guardrail:
            values[f"goals-{row}-guardrail"] = goal.harm.value
    if experiment.pause_on_harm:
        values["pause_on_harm"] = "on"
    return values


def new_values(sends_orders: bool = False) -> dict[str, str]:
    """The values of an empty form: a control, one challenger, full coverage, one goal.

    Money first: when the shop sends orders, the primary goal is the contribution margin per
    visitor of the orders, with their conversion rate as a second goal.
    """
    values = {
        "variants-0-key": "control",
        "variants-0-weight": "1",
        "variants-1-weight": "1",
        "coverage": "100",
        "analysis": "sequential",
        "minimum_effect": "5",
        "goals-0-kind": "conversion",
        "goals-primary": "0",
    }
    if sends_orders:
        values.update(
            {
                "goals-0-key": "margin",
                "goals-0-kind": "margin",
                "goals-0-event": ORDER_GOAL,
                "goals-1-key": ORDER_GOAL,
                "goals-1-kind": "conversion",
            }
        )
    return values


def rows_shown(values: Mapping[str, str]) -> dict[str, int]:
    """How many rows of each group are visible: those in use plus a spare one."""
    variants = _rows_in_use(values, "variants", VARIANT_FIELDS)
    goals = _rows_in_use(values, "goals", ("key", "event"))
    return {
        "variants": min(
            MAX_VARIANTS, max(MINIMUM_VARIANT_ROWS, (variants[-1] + 1) if variants else 0)
        )
        + (SPARE_ROWS if len(variants) < MAX_VARIANTS else 0),
        "goals": min(MAX_GOALS, ((goals[-1] + 1) if goals else 0) + SPARE_ROWS),
    }


def group_of(name: str) -> str:
    """The API field a form field belongs to (``variants-1-key`` → ``variants``)."""
    head = name.split("-", 1)[0]
    return head


def editable_fields(status: Status) -> frozenset[str]:
    """API fields the status allows to change (all of them while creating a draft)."""
    return EDITABLE[status]


def merged_values(
    submitted: Mapping[str, str], current: Mapping[str, str], editable: frozenset[str]
) -> dict[str, str]:
    """Submitted values for editable fields, the stored values for locked (disabled) ones."""
    merged = {name: value for name, value in current.items() if group_of(name) not in editable}
    for name, value in submitted.items():
        if group_of(name) in editable:
            merged[name] = value
    if "goals" in editable and "goals-primary" not in submitted:
        merged.pop("goals-primary", None)
    return merged


def changes(submitted: Parsed, current: Parsed, editable: frozenset[str]) -> dict[str, Any]:
    """The editable API fields whose submitted value differs from the stored one."""
    return {
        name: value
        for name, value in submitted.data.items()
        if name in editable and current.data.get(name) != value
    }


def field_errors(errors: Mapping[Any, Any], rows: Mapping[str, list[int]]) -> dict[str, list[str]]:
    """Flatten nested marshmallow or domain errors into messages per form field id."""
    flat: dict[str, list[str]] = {}

    def walk(value: Any, path: list[str]) -> None:
        if isinstance(value, Mapping):
            for name, inner in value.items():
                walk(inner, [*path, str(name)])
            return
        messages = value if isinstance(value, list) else [value]
        for message in messages:
            if isinstance(message, Mapping):
                walk(message, path)
                continue
            flat.setdefault(_field_id(path, rows), []).append(str(message))

    walk(errors, [])
    return flat


def _field_id(path: list[str], rows: Mapping[str, list[int]]) -> str:
    if not path:
        return "_form"
    head = path[0]
    if head == "_schema":
        return "_form"
    if head == "segments":
        return "segments"  # one text field holds every segment
    if head in rows and len(path) > 1 and path[1].isdigit():
        index = int(path[1])
        row = rows[head][index] if index < len(rows[head]) else index
        return "-".join([head, str(row), *path[2:]])
    return "-".join(path)


def merge_errors(*groups: Mapping[str, list[str]]) -> dict[str, list[str]]:
    """Join error maps keyed by field id."""
    merged: dict[str, list[str]] = {}
    for group in groups:
        for name, messages in group.items():
            merged.setdefault(name, []).extend(messages)
    return merged
