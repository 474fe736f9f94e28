"""The experiment form: WTForms classes that read the submitted fields into the API's input.

The form is only a different way of writing the API's JSON: WTForms reads and types the fields
(numbers, percentages, JSON, choices, with their messages in the page's language: WTForms'
own German ones and the project's from the catalogue), and ``parse`` builds the dict that
``server.schemas.ExperimentCreateSchema`` / ``ExperimentUpdateSchema`` then load, so the
dashboard applies exactly the API's validation on top. Field names are WTForms' own for lists of
subforms (``variants-2-weight``, ``layer-size``), which is also how marshmallow's and the
domain's error paths map back onto the inputs, shifted from the data's list positions to the
form's rows.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from flask_babel import lazy_gettext
from flask_wtf import FlaskForm
from werkzeug.datastructures import MultiDict
from wtforms import (
    BooleanField,
    Field,
    FieldList,
    FloatField,
    FormField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import InputRequired, NumberRange, Optional, ValidationError

from dashboard.i18n import N_
from server.core import strict_json
from server.core.conditions import ConditionError, validate_condition
from server.core.lifecycle import EDITABLE
from server.core.models import Analysis, Experiment, GoalKind, Status
from server.schemas import MAX_GOALS, MAX_RETURN_DAYS, MAX_VARIANTS, MAX_WINDOW_DAYS

PERCENT = 100  # coverage, layer size and minimum effect are entered in percent
SPARE_ROWS = 1  # empty rows offered after the filled ones (more appear with "add")
MINIMUM_VARIANT_ROWS = 2  # an experiment needs a control and one challenger
ROW_GROUPS = {"variants": MAX_VARIANTS, "goals": MAX_GOALS}  # repeated rows and their limits
VARIANT_FIELDS = ("key", "weight", "payload")
GOAL_FIELDS = ("key", "kind", "event")
NO_GOAL = N_("Add at least one goal: without one the experiment cannot start.")
ORDER_GOAL = "purchase"  # the goal an order counts for unless it names another (schemas)
NOT_A_NUMBER = lazy_gettext("Enter a number, such as 1 or 2.5.")
NOT_JSON = lazy_gettext('This is not valid JSON, e.g. {"color": "#1b7f3a"}.')
NOT_POSITIVE = lazy_gettext("Enter a weight greater than 0.")
# the ranges of the fields typed in percent (the API's are in basis points or fractions)
COVERAGE_RANGE = NumberRange(0, 100, lazy_gettext("Enter a percentage from 0 to 100."))
LAYER_RANGE = NumberRange(0.01, 100, lazy_gettext("Enter a percentage from 0.01 to 100."))
EFFECT_RANGE = NumberRange(0.1, 1000, lazy_gettext("Enter a percentage from 0.1 to 1000."))
WINDOW_RANGE = NumberRange(
    1, MAX_WINDOW_DAYS, lazy_gettext("Enter whole days from 1 to %(max)s.", max=MAX_WINDOW_DAYS)
)
RETURN_RANGE = NumberRange(
    0, MAX_RETURN_DAYS, lazy_gettext("Enter whole days from 0 to %(max)s.", max=MAX_RETURN_DAYS)
)


class NumberField(FloatField):
    """A finite number as people type it; the message for anything else is the project's."""

    def process_formdata(self, valuelist: list[Any]) -> None:
        if not valuelist or not str(valuelist[0]).strip():
            self.data = None
            return
        try:
            number = float(valuelist[0])
        except ValueError:
            number = math.nan
        if not math.isfinite(number):  # "nan" and "inf" are floats to Python, not to people
            self.data = None
            raise ValueError(NOT_A_NUMBER)
        self.data = number


def _json(form: FlaskForm, field: Field) -> None:
    """Validator: the field holds strict JSON (empty is fine)."""
    if field.data and field.data.strip():
        try:
            strict_json.loads(field.data)
        except ValueError:
            raise ValidationError(NOT_JSON) from None


def _positive(form: FlaskForm, field: Field) -> None:
    """Validator: a weight above zero (the domain says so too, but only after the schema)."""
    if field.data is not None and not field.data > 0:
        raise ValidationError(NOT_POSITIVE)


def _strip(value: str | None) -> str | None:
    return value.strip() if isinstance(value, str) else value


class _Part(FlaskForm):
    """Base of the form and its rows: Flask-WTF's translations; CSRF is checked per request."""

    class Meta:
        csrf = False  # every dashboard POST is checked by CSRFProtect before the view


class VariantRow(_Part):
    """One variant: its key, relative weight and optional JSON payload."""

    key = StringField(filters=[_strip])
    weight = NumberField(validators=[Optional(), _positive])
    payload = TextAreaField(filters=[_strip], validators=[_json])


class GoalRow(_Part):
    """One goal: its key, what it measures, the event it listens to, browser values."""

    key = StringField(filters=[_strip])
    kind = SelectField(choices=[kind.value for kind in GoalKind], default=GoalKind.CONVERSION.value)
    event = StringField(filters=[_strip])
    browser = BooleanField()
    guardrail = StringField(filters=[_strip])  # "" or the harmful direction (a select)
    window_days = NumberField(validators=[Optional(), WINDOW_RANGE])  # attribution window
    return_days = NumberField(validators=[Optional(), RETURN_RANGE])


class LayerPart(_Part):
    """The optional layer: its name and the share of it the experiment takes (percent)."""

    name = StringField(filters=[_strip])
    size = NumberField(validators=[Optional(), LAYER_RANGE])


class ExperimentForm(_Part):
    """The whole experiment form (create and edit); locked fields come from the stored values."""

    key = StringField(filters=[_strip])
    name = StringField(filters=[_strip], validators=[InputRequired()])
    hypothesis = TextAreaField(filters=[_strip])
    variants = FieldList(FormField(VariantRow), max_entries=MAX_VARIANTS)
    coverage = NumberField(validators=[Optional(), COVERAGE_RANGE])
    conditions = TextAreaField(filters=[_strip], validators=[_json])
    layer = FormField(LayerPart)
    goals = FieldList(FormField(GoalRow), max_entries=MAX_GOALS)
    primary = StringField(name="goals-primary")
    segments = StringField()
    analysis = SelectField(choices=[analysis.value for analysis in Analysis])
    minimum_effect = NumberField(validators=[Optional(), EFFECT_RANGE])
    pause_on_harm = BooleanField()


class NewPhaseForm(_Part):
    """The optional changes of a new phase: coverage (percent) and each variant's weight."""

    coverage = NumberField(validators=[Optional(), COVERAGE_RANGE])
    weight = FieldList(NumberField(validators=[Optional(), _positive]), max_entries=MAX_VARIANTS)


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
    """The API-shaped data of a submitted form, its errors, and the form row of each entry.

    ``said`` holds WTForms' messages, already in the page's language; ``errors`` holds messages
    in the API's words (a refused condition, a missing goal) that ``dashboard.messages`` says
    plainly, like the schema's and the domain's.
    """

    data: dict[str, Any]
    errors: dict[str, list[str]]
    rows: dict[str, list[int]]  # group → the form row of each list entry
    said: dict[str, list[str]] = field(default_factory=dict)

    @property
    def has_errors(self) -> bool:
        """Whether reading the form already found something wrong."""
        return bool(self.errors or self.said)


def _rows_in_use(values: Mapping[str, str], group: str, names: tuple[str, ...]) -> list[int]:
    return [
        row
        for row in range(ROW_GROUPS[group])
        if any(values.get(f"{group}-{row}-{name}", "").strip() for name in names)
    ]


def _form_rows(values: Mapping[str, str], group: str, limit: int) -> list[int]:
    """The form rows of a group that were submitted, in order: WTForms' entries, one each.

    WTForms renumbers a list's entries 0…N-1 (rows left out leave no gap); the page keeps
    the row numbers people saw, so errors and the primary goal are matched by these.
    """
    pattern = re.compile(rf"^{re.escape(group)}-(\d+)(?:-|$)")
    found = {int(match.group(1)) for name in values if (match := pattern.match(name))}
    return sorted(found)[:limit]


def _is_used(row: FormField, names: tuple[str, ...]) -> bool:
    return any((row.form[name].raw_data or [""])[0].strip() for name in names)


def messages_of(form: FlaskForm, values: Mapping[str, str]) -> dict[str, list[str]]:
    """WTForms' errors by the page's field id (``variants-1-weight``), as strings of the page."""
    found: dict[str, list[str]] = {}

    def walk(fields: Any, prefix: str) -> None:
        for item in fields:
            name = prefix + item.short_name
            if isinstance(item, FieldList):
                rows = _form_rows(values, name, len(item.entries))
                for row, entry in zip(rows, item.entries, strict=False):
                    if isinstance(entry, FormField):
                        walk(entry.form, f"{name}-{row}-")
                    elif entry.errors:
                        found[f"{name}-{row}"] = [str(message) for message in entry.errors]
            elif isinstance(item, FormField):
                walk(item.form, name + "-")
            elif item.errors:
                found[item.name if not prefix else name] = [str(m) for m in item.errors]

    walk(form, "")
    return found


def _optional(value: float | None, convert: Callable[[float], Any]) -> Any:
    return None if value is None else convert(value)


def parse(values: Mapping[str, str]) -> Parsed:
    """Read form values with WTForms and build the API's input from what could be read.

    Every field is validated, so every error of the form comes at once; a field WTForms
    refused is left out of the data, so the API does not refuse it a second time.
    """
    form = ExperimentForm(formdata=MultiDict(values))
    form.validate()
    said = messages_of(form, values)
    errors: dict[str, list[str]] = {}
    data: dict[str, Any] = {}
    for name in ("key", "name", "hypothesis"):
        if name in values and name not in said:
            data[name] = form[name].data or ""
    variant_numbers = _form_rows(values, "variants", len(form.variants.entries))
    variant_rows = [
        (number, row)
        for number, row in zip(variant_numbers, form.variants.entries, strict=False)
        if _is_used(row, VARIANT_FIELDS)
    ]
    variants = []
    for _, row in variant_rows:
        variant: dict[str, Any] = {"key": row.form.key.data or ""}
        if row.form.weight.data is not None and not row.form.weight.errors:
            variant["weight"] = row.form.weight.data
        payload = row.form.payload.data
        variant["payload"] = (
            strict_json.loads(payload) if payload and not row.form.payload.errors else None
        )
        variants.append(variant)
    data["variants"] = variants
    if form.coverage.data is not None and "coverage" not in said:
        data["coverage"] = round(form.coverage.data * PERCENT)
    conditions = form.conditions.data
    data["conditions"] = (
        strict_json.loads(conditions) if conditions and "conditions" not in said else None
    )
    if data["conditions"] is not None:
        try:  # the service checks it again; here it joins the other errors
            validate_condition(data["conditions"])
        except ConditionError as error:
            errors.setdefault("conditions", []).append(str(error))
    goal_numbers = _form_rows(values, "goals", len(form.goals.entries))
    goal_rows = [
        (number, row)
        for number, row in zip(goal_numbers, form.goals.entries, strict=False)
        if _is_used(row, ("key", "event"))
    ]
    primary = form.primary.data or ""
    data["goals"] = [
        {
            "key": row.form.key.data or "",
            "kind": row.form.kind.data,
            "event": row.form.event.data or None,
            "primary": primary == str(number),
            "accept_browser_value": bool(row.form.browser.data),
            **_guardrail(row.form.guardrail.data or ""),
            "window_days": _days(row.form.window_days.data),
            "return_days": _days(row.form.return_days.data),
        }
        for number, row in goal_rows
    ]
    data["segments"] = [
        part.strip() for part in (form.segments.data or "").split(",") if part.strip()
    ]
    layer = form.layer.form
    if layer.name.data:
        data["layer"] = {
            "name": layer.name.data,
            "size": None
            if layer.size.errors
            else _optional(layer.size.data, lambda share: round(share * PERCENT)),
        }
    else:
        data["layer"] = None
    if "analysis" in values and "analysis" not in said:
        data["analysis"] = form.analysis.data
    if form.minimum_effect.data is not None and "minimum_effect" not in said:
        data["minimum_effect"] = form.minimum_effect.data / PERCENT
    data["pause_on_harm"] = bool(form.pause_on_harm.data)
    rows = {
        "variants": [number for number, _ in variant_rows],
        "goals": [number for number, _ in goal_rows],
    }
    return Parsed(data, errors, rows, said)


def _days(typed: float | None) -> int | float | None:
    """Days as the API takes them: a whole number as an integer; a fraction goes as typed, so
    that the API's refusal names the field."""
    if typed is None:
        return None
    return int(typed) if typed.is_integer() else typed


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
        if goal.window_days is not None:
            values[f"goals-{row}-window_days"] = str(goal.window_days)
        if goal.return_days is not None:
            values[f"goals-{row}-return_days"] = str(goal.return_days)
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
