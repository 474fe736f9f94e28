"""Every marshmallow schema of the HTTP API, and the ID patterns that guard Redis keys."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
from typing import Any

from marshmallow import (
    EXCLUDE,
    RAISE,
    Schema,
    ValidationError,
    fields,
    validate,
    validates,
    validates_schema,
)

from server.core.models import BASIS_POINTS, Analysis, Experiment, GoalKind, Harm, Status
from server.core.money import MoneyError, parse_cents

# Experiment, variant and goal keys: lowercase, URL- and Redis-key-safe, 1..64 characters.
ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
# Attribute names used as segments become part of Redis keys: short snake_case.
ATTRIBUTE_PATTERN = r"^[a-z][a-z0-9_]{0,31}$"
# Layer names share the key alphabet.
LAYER_PATTERN = ID_PATTERN
VISITOR_MAX_LENGTH = 128  # spec/ASSIGNMENT.md: a visitor id is 1..128 characters
MAX_VARIANTS = 10  # more variants split traffic too thin to ever reach a result
MAX_GOALS = 20  # goals per experiment; each costs counters on every event
# Sub-shards per experiment: results read one counters hash per sub-shard, and a few per
# cluster master spread an experiment evenly (README "Redis Cluster").
MAX_SHARDS = 64
MAX_SEGMENTS = 5  # segment attributes per experiment; each multiplies the counters
MAX_ALLOW_LIST = 200  # QA visitors per experiment
# An attribution window of half a year covers seasonal repeat buyers; longer ones keep
# per-visitor records (and the experiment's figures) open for too long (issue 21).
MAX_WINDOW_DAYS = 180
MAX_RETURN_DAYS = 60  # statutory return periods are 14-30 days; 60 covers generous shops
MAX_PAYLOAD_BYTES = 16_384  # a payload travels with every assignment answer and config
MAX_CONDITION_BYTES = 16_384  # targeting conditions are evaluated on every assignment
PAGE_SIZE_LIMIT = 100  # experiments per page of the list endpoint

key_field = validate.Regexp(ID_PATTERN, error="must match {regex}")


class StrictNumber(fields.Float):
    """A JSON number; unlike fields.Float it refuses strings and booleans."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValidationError("must be a number")
        result: float = super()._deserialize(value, attr, data, **kwargs)
        return result


class JsonValue(fields.Raw):
    """Any JSON value, limited in serialised size."""

    def __init__(self, max_bytes: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_bytes = max_bytes

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if len(json.dumps(value, separators=(",", ":"))) > self.max_bytes:
            raise ValidationError(f"must be at most {self.max_bytes} bytes of JSON")
        return value


class Timestamp(fields.Field[float]):
    """Unix seconds in Python, ISO 8601 (UTC) on the wire."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        if value is None:
            return None
        return dt.datetime.fromtimestamp(value, dt.UTC).isoformat(timespec="seconds")


class BaseSchema(Schema):
    """Refuses unknown fields: a typo in a field name is an error, not a silent default."""

    class Meta:
        unknown = RAISE


# --- experiments: input ------------------------------------------------------------------


class VariantInSchema(BaseSchema):
    key = fields.String(required=True, validate=key_field)
    weight = StrictNumber(load_default=1.0, allow_nan=False)
    payload = JsonValue(MAX_PAYLOAD_BYTES, load_default=None, allow_none=True)


class LayerInSchema(BaseSchema):
    name = fields.String(required=True, validate=validate.Regexp(LAYER_PATTERN))
    size = fields.Integer(
        strict=True, validate=validate.Range(1, BASIS_POINTS), load_default=None, allow_none=True
    )
    start = fields.Integer(
        strict=True, validate=validate.Range(0, BASIS_POINTS - 1), load_default=None
    )
    end = fields.Integer(strict=True, validate=validate.Range(1, BASIS_POINTS), load_default=None)


class GoalInSchema(BaseSchema):
    key = fields.String(required=True, validate=key_field)
    kind = fields.Enum(GoalKind, by_value=True, load_default=GoalKind.CONVERSION)
    primary = fields.Boolean(load_default=False)
    event = fields.String(validate=key_field, load_default=None, allow_none=True)
    accept_browser_value = fields.Boolean(
        load_default=False,
        metadata={
            "description": "revenue and margin goals only: also count the value of conversions "
            "sent without the ingest key (from browsers). Anyone can send such a conversion "
            "with any value, so the goal's money figures can be forged."
        },
    )

    guardrail = fields.Boolean(
        load_default=False,
        metadata={
            "description": "watch this goal for harm: a significant change in the `harm` "
            "direction (always-valid test, Holm-corrected over all guardrails) raises an alarm "
            "and, with the experiment's `pause_on_harm`, pauses the experiment"
        },
    )
    harm = fields.Enum(
        Harm,
        by_value=True,
        load_default=None,
        metadata={
            "description": "guardrails only: the direction that counts as harm, `decrease` "
            "(default; e.g. margin down) or `increase` (e.g. a return goal up)"
        },
    )
    window_days = fields.Integer(
        strict=True,
        validate=validate.Range(1, MAX_WINDOW_DAYS),
        load_default=None,
        allow_none=True,
        metadata={
            "description": "attribution window: count this goal's events for this many days "
            "after each visitor's enrolment, also after the experiment stopped; results use "
            "the visitors whose window (plus return_days) has closed. Null: count while the "
            "experiment runs. Fixed once the experiment started."
        },
    )
    return_days = fields.Integer(
        strict=True,
        validate=validate.Range(0, MAX_RETURN_DAYS),
        load_default=None,
        allow_none=True,
        metadata={
            "description": "windowed goals only: days after the window during which refunds "
            "(and late sends) still count before a visitor's figures are final; null: 14 for "
            "revenue and margin goals, 0 for conversion goals"
        },
    )

    @validates_schema
    def _value_goals_only(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("accept_browser_value") and data.get("kind") == GoalKind.CONVERSION:
            raise ValidationError(
                {"accept_browser_value": ["only revenue and margin goals take values"]}
            )
        if data.get("harm") is not None and not data.get("guardrail"):
            raise ValidationError({"harm": ["only guardrail goals have a harm direction"]})
        if data.get("return_days") is not None and data.get("window_days") is None:
            raise ValidationError({"return_days": ["only goals with a window_days have one"]})


def _unique_keys(items: list[dict[str, Any]], name: str) -> None:
    seen: set[str] = set()
    for index, item in enumerate(items):
        if item["key"] in seen:
            raise ValidationError({name: {index: {"key": ["duplicate key"]}}})
        seen.add(item["key"])


class ExperimentFieldsSchema(BaseSchema):
    """The editable fields, shared by create (required ones) and update (all optional)."""

    name = fields.String(validate=validate.Length(1, 200))
    hypothesis = fields.String(validate=validate.Length(0, 2000))
    variants = fields.List(
        fields.Nested(VariantInSchema), validate=validate.Length(2, MAX_VARIANTS)
    )
    coverage = fields.Integer(strict=True, validate=validate.Range(0, BASIS_POINTS))
    layer = fields.Nested(LayerInSchema, allow_none=True)
    conditions = JsonValue(MAX_CONDITION_BYTES, allow_none=True)
    goals = fields.List(fields.Nested(GoalInSchema), validate=validate.Length(0, MAX_GOALS))
    segments = fields.List(
        fields.String(validate=validate.Regexp(ATTRIBUTE_PATTERN)),
        validate=validate.Length(0, MAX_SEGMENTS),
    )
    allow_list = fields.Dict(
        keys=fields.String(validate=validate.Length(1, VISITOR_MAX_LENGTH)),
        values=fields.String(validate=key_field),
        validate=validate.Length(0, MAX_ALLOW_LIST),
    )
    analysis = fields.Enum(Analysis, by_value=True)
    minimum_effect = StrictNumber(validate=validate.Range(0.001, 10.0), allow_nan=False)
    pause_on_harm = fields.Boolean(
        metadata={
            "description": "pause the experiment when a guardrail shows significant harm "
            "(false: only raise the alarm)"
        }
    )
    shards = fields.Integer(strict=True, validate=validate.Range(1, MAX_SHARDS))

    @validates("segments")
    def _segments_unique(self, value: list[str], **kwargs: Any) -> None:
        if len(set(value)) != len(value):
            raise ValidationError("segments must be unique")

    @validates("conditions")
    def _conditions_object(self, value: Any, **kwargs: Any) -> None:
        if value is not None and not isinstance(value, dict):
            raise ValidationError("must be a JSON object")

    @validates_schema
    def _consistent(self, data: dict[str, Any], **kwargs: Any) -> None:
        if "variants" in data:
            _unique_keys(data["variants"], "variants")
            keys = {variant["key"] for variant in data["variants"]}
            for visitor, variant in data.get("allow_list", {}).items():
                if variant not in keys:
                    raise ValidationError({"allow_list": {visitor: [f"no variant {variant!r}"]}})
        if "goals" in data:
            _unique_keys(data["goals"], "goals")
            primaries = sum(goal["primary"] for goal in data["goals"])
            if data["goals"] and primaries != 1:
                raise ValidationError({"goals": ["mark exactly one goal as primary"]})


class ExperimentCreateSchema(ExperimentFieldsSchema):
    key = fields.String(required=True, validate=key_field)
    name = fields.String(required=True, validate=validate.Length(1, 200))
    variants = fields.List(
        fields.Nested(VariantInSchema), required=True, validate=validate.Length(2, MAX_VARIANTS)
    )


class ExperimentUpdateSchema(ExperimentFieldsSchema):
    winner = fields.String(validate=key_field, allow_none=True)


class StopSchema(BaseSchema):
    winner = fields.String(validate=key_field, load_default=None, allow_none=True)


class NewPhaseSchema(BaseSchema):
    confirm = fields.Boolean(required=True)
    variants = fields.List(
        fields.Nested(VariantInSchema), validate=validate.Length(2, MAX_VARIANTS)
    )
    coverage = fields.Integer(strict=True, validate=validate.Range(0, BASIS_POINTS))

    @validates("confirm")
    def _confirmed(self, value: bool, **kwargs: Any) -> None:
        if not value:
            raise ValidationError("must be true: a new phase resets every count")

    @validates_schema
    def _unique(self, data: dict[str, Any], **kwargs: Any) -> None:
        if "variants" in data:
            _unique_keys(data["variants"], "variants")


class ExperimentListQuerySchema(BaseSchema):
    class Meta:
        unknown = EXCLUDE  # query strings also carry cache-busters and the like

    status = fields.Enum(Status, by_value=True, load_default=None)
    page = fields.Integer(validate=validate.Range(min=1), load_default=1)
    page_size = fields.Integer(validate=validate.Range(1, PAGE_SIZE_LIMIT), load_default=20)


# --- experiments: output -----------------------------------------------------------------


class VariantSchema(Schema):
    key = fields.String()
    weight = fields.Float()
    allocation = fields.Integer(metadata={"description": "share in basis points (1/100 %)"})
    payload = fields.Raw(allow_none=True)


class LayerSchema(Schema):
    name = fields.String()
    start = fields.Integer()
    end = fields.Integer()


class GoalSchema(Schema):
    key = fields.String()
    kind = fields.Enum(GoalKind, by_value=True)
    primary = fields.Boolean(attribute="is_primary")
    event = fields.String(attribute="event_name")
    accept_browser_value = fields.Boolean(attribute="accepts_browser_value")
    guardrail = fields.Boolean(attribute="is_guardrail")
    harm = fields.Enum(Harm, by_value=True)
    window_days = fields.Integer(allow_none=True)
    return_days = fields.Function(
        lambda goal: goal.return_period_days if goal.is_windowed else None,
        allow_none=True,
        metadata={
            "type": "integer",
            "description": "the return period in effect; null without a window",
        },
    )


class ExperimentSchema(Schema):
    key = fields.String()
    name = fields.String()
    hypothesis = fields.String()
    status = fields.Enum(Status, by_value=True)
    variants = fields.List(fields.Nested(VariantSchema))
    coverage = fields.Integer()
    layer = fields.Nested(LayerSchema, allow_none=True)
    conditions = fields.Raw(allow_none=True)
    goals = fields.List(fields.Nested(GoalSchema))
    segments = fields.List(fields.String())
    allow_list = fields.Dict(keys=fields.String(), values=fields.String())
    winner = fields.String(allow_none=True)
    phase = fields.Integer()
    salt = fields.String(attribute="assignment_salt")
    analysis = fields.Enum(Analysis, by_value=True)
    minimum_effect = fields.Float()
    pause_on_harm = fields.Boolean()
    created_at = Timestamp()
    updated_at = Timestamp()
    started_at = Timestamp(allow_none=True)
    stopped_at = Timestamp(allow_none=True)
    windows_close_at = Timestamp(
        allow_none=True,
        metadata={
            "description": "when the last attribution window closes (the stop plus the longest "
            "window_days); events of windowed goals count until then. Null while the "
            "experiment may still enrol, or without windowed goals"
        },
    )
    matures_at = Timestamp(
        allow_none=True,
        metadata={
            "description": "when every visitor's figures are final (windows plus return "
            "periods); null like windows_close_at"
        },
    )
    revision = fields.Integer()
    shards = fields.Integer()


class ExperimentPageSchema(Schema):
    items = fields.List(fields.Nested(ExperimentSchema))
    page = fields.Integer()
    page_size = fields.Integer()
    total = fields.Integer()


class AuditEntrySchema(Schema):
    at = Timestamp()
    actor = fields.String()
    action = fields.String()
    details = fields.Raw()


class AuditQuerySchema(BaseSchema):
    class Meta:
        unknown = EXCLUDE

    limit = fields.Integer(validate=validate.Range(1, 1000), load_default=100)


# --- public configuration for SDKs and the snippet -------------------------------------------


class ConfigLayerSchema(Schema):
    name = fields.String()
    salt = fields.String()
    start = fields.Integer()
    end = fields.Integer()


class ConfigVariantSchema(Schema):
    key = fields.String()
    allocation = fields.Integer()
    payload = fields.Raw(allow_none=True)


class ConfigExperimentSchema(Schema):
    key = fields.String()
    status = fields.Enum(Status, by_value=True)
    salt = fields.String(attribute="assignment_salt")
    variants = fields.List(fields.Nested(ConfigVariantSchema))
    coverage = fields.Integer()
    layer = fields.Nested(ConfigLayerSchema, allow_none=True)
    winner = fields.String(allow_none=True)
    conditions = fields.Raw(allow_none=True)
    segments = fields.List(fields.String())
    goals = fields.Method("_goal_events")

    def _goal_events(self, experiment: Experiment) -> list[str]:
        return sorted({goal.event_name for goal in experiment.goals})


class ConfigSchema(Schema):
    spec = fields.String()
    version = fields.String()
    experiments = fields.List(fields.Nested(ConfigExperimentSchema))


# --- assignment (public, hot path) -----------------------------------------------------------

MAX_ATTRIBUTES = 50  # attributes per assign request; targeting never needs more
MAX_ATTRIBUTES_BYTES = 8_192  # serialised attributes per request
# The built-in customer attribute (issue 21): whether the visitor has bought before. An
# experiment that lists it in its segments breaks every goal down by new and returning customers.
CUSTOMER_ATTRIBUTE = "customer"
CUSTOMER_VALUES = ("new", "returning")


def _check_visitor(value: str) -> None:
    """A visitor id must have a UTF-8 form: the bucket hash and the pseudonym need one."""
    try:
        value.encode()
    except UnicodeEncodeError:
        raise ValidationError("must be valid Unicode text (no lone surrogates)") from None


visitor_field = validate.And(validate.Length(1, VISITOR_MAX_LENGTH), _check_visitor)


class AttributesField(JsonValue):
    """Visitor attributes: a JSON object with short names, scalar or list values."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if not isinstance(value, dict):
            raise ValidationError("must be a JSON object of attribute name → value")
        if len(value) > MAX_ATTRIBUTES:
            raise ValidationError(f"at most {MAX_ATTRIBUTES} attributes")
        for name in value:
            if not 0 < len(name) <= 64:
                raise ValidationError("attribute names must be 1..64 characters")
        if value.get(CUSTOMER_ATTRIBUTE, CUSTOMER_VALUES[0]) not in CUSTOMER_VALUES:
            raise ValidationError({CUSTOMER_ATTRIBUTE: ['must be "new" or "returning"']})
        return super()._deserialize(value, attr, data, **kwargs)


MAX_COVARIATE = 1_000_000  # |CUPED covariate|: keeps Σx, Σx² and Σxy exact in Redis (keys.py)
COVARIATE_DECIMALS = 2  # the covariate is stored exactly in hundredths


class Covariate(fields.Field[int]):
    """CUPED's pre-experiment covariate: a finite JSON number with at most two decimals and
    |x| ≤ MAX_COVARIATE, loaded as an exact integer of hundredths (12.34 → 1234)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValidationError("must be a number")
        if abs(value) > MAX_COVARIATE or not math.isfinite(value):  # a huge int fits no float
            raise ValidationError(f"must be a finite number within ±{MAX_COVARIATE}")
        # the shortest text of the number decides its decimals: 0.1 + 0.2 has 17 of them
        exact = decimal.Decimal(repr(value))
        exponent = exact.as_tuple().exponent
        if not isinstance(exponent, int) or exponent < -COVARIATE_DECIMALS:
            raise ValidationError(f"must have at most {COVARIATE_DECIMALS} decimals")
        return int(exact.scaleb(COVARIATE_DECIMALS))


class AssignRequestSchema(BaseSchema):
    visitor = fields.String(required=True, validate=visitor_field)
    experiments = fields.List(
        fields.String(validate=key_field),
        load_default=None,
        metadata={"description": "experiment keys; omitted: every running experiment"},
    )
    attributes = AttributesField(
        MAX_ATTRIBUTES_BYTES,
        load_default=dict,
        metadata={
            "description": "visitor attributes for targeting and segments; the built-in "
            '"customer" is "new" or "returning" (has bought before): list it in an '
            "experiment's segments for new versus returning customers"
        },
    )
    consent = fields.Boolean(
        load_default=True,
        metadata={"description": "false: answer, but record nothing (no consent to counting)"},
    )
    force = fields.Dict(
        keys=fields.String(validate=key_field),
        values=fields.String(validate=key_field),
        load_default=None,
        metadata={"description": "QA: experiment → variant; needs a preview token or dev mode"},
    )
    user_agent = fields.String(
        validate=validate.Length(0, 1024),
        load_default=None,
        metadata={
            "description": "the visitor's User-Agent when a back end calls on their "
            "behalf; only used for bot detection, never stored"
        },
    )
    covariate = Covariate(
        load_default=None,
        metadata={
            "type": "number",
            "description": "CUPED: a number known about the visitor before the experiment "
            "(for example the customer's margin over the last 90 days; at most 2 decimals, "
            f"within ±{MAX_COVARIATE}); recorded with the first enrolment only, and used to "
            "narrow the results' intervals",
        },
    )


class AssignQuerySchema(BaseSchema):
    """GET /v1/assign for simple clients; attributes as ``attr.<name>=value``."""

    class Meta:
        unknown = EXCLUDE  # attr.* parameters are read separately

    visitor = fields.String(required=True, validate=visitor_field)
    experiments = fields.String(
        load_default=None, metadata={"description": "comma-separated experiment keys"}
    )
    consent = fields.Boolean(load_default=True)
    force = fields.String(
        load_default=None, metadata={"description": "comma-separated experiment:variant pairs"}
    )
    covariate = fields.String(
        load_default=None,
        metadata={"description": "CUPED covariate as a decimal number (see the POST body)"},
    )


class AssignmentSchema(Schema):
    variant = fields.String(attribute="variant_key", allow_none=True)
    payload = fields.Raw(allow_none=True)
    enrolled = fields.Boolean(attribute="is_enrolled")
    reason = fields.String()


ASSIGNMENT = AssignmentSchema()  # built once: schema construction costs more than a dump


RECORDED_UNKNOWN = "unknown"  # `recorded` when Redis got the enrolment but never answered


def recorded_value(is_recorded: bool | None) -> bool | str:
    """`recorded` of an assign answer: true, false, or "unknown"."""
    return RECORDED_UNKNOWN if is_recorded is None else is_recorded


class AssignResponseSchema(Schema):
    visitor = fields.String()
    recorded = fields.Function(
        lambda result: recorded_value(result.is_recorded),
        metadata={
            "description": "true: Redis acknowledged every enrolment of this answer; false: "
            'nothing was written (Redis unreachable, full, or no consent); "unknown": the '
            "enrolment was sent but Redis did not answer in time, so it may have been "
            "recorded (assigning the same visitor again is safe: enrolments are sticky "
            "and counted once)",
            "oneOf": [{"type": "boolean"}, {"type": "string", "enum": [RECORDED_UNKNOWN]}],
        },
    )
    assignments = fields.Method("_by_experiment")

    def _by_experiment(self, result: Any) -> dict[str, Any]:
        return {item.experiment: ASSIGNMENT.dump(item) for item in result.assignments}


# --- events (public) -------------------------------------------------------------------------

MAX_EVENTS_PER_BATCH = 500  # events per POST /v1/events; a retry of a full batch stays small
EVENT_ID_PATTERN = r"^[A-Za-z0-9_.:@/+=-]{1,128}$"  # UUIDs, shop order numbers, ULIDs
CURRENCY_PATTERN = r"^[A-Z]{3}$"  # ISO 4217 code


class Money(fields.Field[int]):
    """A non-negative decimal string or JSON number, loaded as exact integer cents."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        try:
            return parse_cents(value)
        except MoneyError as error:
            raise ValidationError(str(error)) from None


class EventBaseSchema(BaseSchema):
    type = fields.String(required=True)
    id = fields.String(validate=validate.Regexp(EVENT_ID_PATTERN), load_default=None)
    ts = StrictNumber(allow_nan=False, load_default=None, metadata={"description": "unix seconds"})


class ConversionEventSchema(EventBaseSchema):
    id = fields.String(validate=validate.Regexp(EVENT_ID_PATTERN), required=True)
    visitor = fields.String(required=True, validate=visitor_field)
    goal = fields.String(required=True, validate=key_field)
    value = Money(load_default=0, metadata={"description": "optional amount for value goals"})


class OrderEventSchema(EventBaseSchema):
    visitor = fields.String(required=True, validate=visitor_field)
    order_id = fields.String(required=True, validate=validate.Regexp(EVENT_ID_PATTERN))
    goal = fields.String(validate=key_field, load_default="purchase")
    revenue = Money(required=True, metadata={"description": "paid, VAT incl., after discounts"})
    tax = Money(load_default=0)
    shipping = Money(load_default=0, metadata={"description": "the shop's shipping cost"})
    discount = Money(load_default=0)
    cost_of_goods = Money(load_default=0)
    payment_fee = Money(load_default=0)
    currency = fields.String(validate=validate.Regexp(CURRENCY_PATTERN), load_default=None)


class RefundEventSchema(EventBaseSchema):
    order_id = fields.String(required=True, validate=validate.Regexp(EVENT_ID_PATTERN))
    amount = Money(required=True, metadata={"description": "refunded gross amount"})
    visitor = fields.String(validate=visitor_field, load_default=None)

    @validates("amount")
    def _positive(self, value: int, **kwargs: Any) -> None:
        if value <= 0:
            raise ValidationError("must be greater than 0")


class ExposureEventSchema(EventBaseSchema):
    visitor = fields.String(required=True, validate=visitor_field)
    experiment = fields.String(required=True, validate=key_field)
    variant = fields.String(validate=key_field, load_default=None)
    attributes = AttributesField(MAX_ATTRIBUTES_BYTES, load_default=dict)
    covariate = Covariate(
        load_default=None,
        metadata={"type": "number", "description": "CUPED covariate, as /v1/assign takes it"},
    )


EVENT_SCHEMAS: dict[str, Schema] = {
    "conversion": ConversionEventSchema(),
    "order": OrderEventSchema(),
    "refund": RefundEventSchema(),
    "exposure": ExposureEventSchema(),
}


class EventBatchSchema(BaseSchema):
    events = fields.List(
        fields.Raw(),
        required=True,
        validate=validate.Length(1, MAX_EVENTS_PER_BATCH),
        metadata={"description": "conversion, order, refund or exposure events"},
    )


class EventResultSchema(Schema):
    status = fields.String(
        metadata={
            "description": "accepted (counted now, or by an earlier send of the same content), "
            "duplicate (an order counted before the idempotency window), conflict (the id "
            "came before with other content; nothing counted), ignored, or rejected"
        }
    )
    errors = fields.Dict(load_default=None)


class EventBatchResultSchema(Schema):
    accepted = fields.Integer()
    duplicate = fields.Integer()
    conflict = fields.Integer()
    ignored = fields.Integer()
    rejected = fields.Integer()
    results = fields.List(fields.Nested(EventResultSchema))


class ErasureRequestSchema(BaseSchema):
    visitor = fields.String(
        required=True,
        validate=visitor_field,
        metadata={"description": "any id /v1/assign accepts, also with '/', '%' or spaces"},
    )


class ErasureSchema(Schema):
    removed = fields.Dict(
        keys=fields.String(),
        values=fields.Integer(),
        metadata={
            "description": "records removed by kind: enrolments (with the visitor's totals), "
            "totals (fields kept apart by earlier versions), orders, idempotency_keys"
        },
    )
    experiments = fields.List(fields.String())


# --- results ---------------------------------------------------------------------------------


class IntervalSchema(Schema):
    lower = fields.Float()
    upper = fields.Float()


class VariantResultSchema(Schema):
    variant = fields.Integer(metadata={"description": "index; 0 is the control"})
    visitors = fields.Integer()
    converted = fields.Integer(allow_none=True)
    estimate = fields.Float(allow_none=True, metadata={"description": "rate or mean per visitor"})
    uplift = fields.Float(allow_none=True)
    uplift_interval = fields.Nested(IntervalSchema, allow_none=True)
    relative_uplift = fields.Float(allow_none=True)
    relative_uplift_interval = fields.Nested(IntervalSchema, allow_none=True)
    p_value = fields.Float(allow_none=True)
    adjusted_p_value = fields.Float(allow_none=True)
    is_significant = fields.Boolean()
    chance_to_beat_control = fields.Float(
        allow_none=True, metadata={"description": "None below the minimum-evidence rule"}
    )
    expected_loss = fields.Float(allow_none=True)
    status = fields.String(
        metadata={
            "description": "judged; not_enough_data (below the minimum-evidence rule: never "
            "significant, no chance to beat or loss); control for variant 0",
            "enum": ["judged", "not_enough_data", "control"],
        }
    )
    reason = fields.String(
        allow_none=True, metadata={"description": "why the comparison is not_enough_data"}
    )
    relative_reason = fields.String(
        allow_none=True,
        metadata={"description": "why relative_uplift is None (e.g. a baseline not above zero)"},
    )


class GoalResultSchema(Schema):
    kind = fields.String()
    method = fields.String(
        metadata={"description": "the experiment's analysis: sequential, always_valid or fixed"}
    )
    test = fields.String(
        metadata={
            "description": "the test run: group_sequential (alpha spending over the planned "
            "size), always_valid (mSPRT) or fixed"
        }
    )
    information_fraction = fields.Float(
        allow_none=True,
        metadata={
            "description": "group_sequential: share of the planned visitors reached at the "
            "last counted look (capped at 1; 1 is the final look)"
        },
    )
    boundary = fields.Float(
        allow_none=True,
        metadata={
            "description": "group_sequential: the last counted look's critical |z| at alpha; "
            "the intervals use it"
        },
    )
    alpha = fields.Float()
    minimum_effect = fields.Float()
    adjustment = fields.String()
    variants = fields.List(fields.Nested(VariantResultSchema))
    minimum_visitors = fields.Integer(
        metadata={"description": "minimum-evidence rule: visitors in control and variant each"}
    )
    minimum_conversions = fields.Integer(
        metadata={
            "description": "minimum-evidence rule: conversions (buyers for value goals) in "
            "control and variant together"
        }
    )


class VariantTotalsSchema(Schema):
    key = fields.String()
    visitors = fields.Integer()
    converted = fields.Integer()
    events = fields.Integer()
    value_sum = fields.Float()


class StratifiedComparisonSchema(Schema):
    variant = fields.Integer()
    uplift = fields.Float(metadata={"description": "post-stratified uplift against the control"})
    standard_error = fields.Float()
    uplift_interval = fields.Nested(IntervalSchema)
    variance_ratio = fields.Float(
        allow_none=True,
        metadata={"description": "adjusted over unadjusted variance (0.8: 20 % less)"},
    )


class StratifiedSchema(Schema):
    attribute = fields.String(metadata={"description": "the segment attribute stratified on"})
    strata = fields.Integer(
        metadata={"description": "values with 20 visitors in every variant, plus the rest"}
    )
    variants = fields.List(
        fields.Nested(StratifiedComparisonSchema, allow_none=True),
        metadata={"description": "variants 1, 2, …; null where a stratum has no variance"},
    )


class RatioComparisonSchema(Schema):
    variant = fields.Integer(metadata={"description": "index; 0 is the control"})
    estimate = fields.Float(allow_none=True, metadata={"description": "the variant's ratio"})
    uplift = fields.Float(
        allow_none=True, metadata={"description": "difference to the control's ratio"}
    )
    uplift_interval = fields.Nested(IntervalSchema, allow_none=True)
    p_value = fields.Float(allow_none=True)
    adjusted_p_value = fields.Float(allow_none=True)
    significant = fields.Boolean(attribute="is_significant")


class CustomerSchema(Schema):
    repeat = fields.Nested(
        GoalResultSchema,
        allow_none=True,
        metadata={
            "description": "conversion goals: share of visitors with two or more events "
            "(repeat-purchase rate for a goal fed by orders)"
        },
    )
    per_visitor = fields.Nested(
        GoalResultSchema,
        allow_none=True,
        metadata={"description": "conversion goals: events (orders) per visitor"},
    )
    return_rate = fields.List(
        fields.Nested(RatioComparisonSchema),
        metadata={
            "description": "revenue goals: refunded net revenue ÷ net revenue per variant; the "
            "difference to the control by the delta method (fixed horizon, Holm-adjusted)"
        },
    )


class WindowSchema(Schema):
    window_days = fields.Integer()
    return_days = fields.Integer()
    matured_through = fields.Date(
        allow_none=True,
        metadata={
            "description": "the last enrolment day whose visitors' window and return period "
            "have closed: the goal's result and totals count the visitors enrolled up to it"
        },
    )
    provisional = fields.Nested(
        GoalResultSchema,
        metadata={"description": "the statistics on every visitor so far (windows still open)"},
    )
    provisional_totals = fields.List(fields.Nested(VariantTotalsSchema))


class CovariateComparisonSchema(Schema):
    variant = fields.Integer()
    uplift = fields.Float(metadata={"description": "CUPED-adjusted uplift against the control"})
    standard_error = fields.Float()
    uplift_interval = fields.Nested(IntervalSchema, allow_none=True)
    slope = fields.Float(metadata={"description": "pooled within-variant slope of y on x"})
    variance_ratio = fields.Float(
        allow_none=True,
        metadata={"description": "adjusted over unadjusted variance (0.7: 30 % less)"},
    )
    p_value = fields.Float(allow_none=True, metadata={"description": "under the goal's test"})
    adjusted_p_value = fields.Float(allow_none=True, metadata={"description": "Holm"})
    is_significant = fields.Boolean()
    chance_to_beat_control = fields.Float(allow_none=True)
    expected_loss = fields.Float(allow_none=True)


class CovariateSchema(Schema):
    visitors = fields.List(
        fields.Integer(), metadata={"description": "visitors with a covariate, per variant"}
    )
    variants = fields.List(
        fields.Nested(CovariateComparisonSchema, allow_none=True),
        metadata={"description": "variants 1, 2, …; null where the fit is undefined"},
    )


class GoalReportSchema(Schema):
    key = fields.String()
    kind = fields.Enum(GoalKind, by_value=True)
    primary = fields.Boolean(attribute="is_primary")
    result = fields.Nested(GoalResultSchema)
    totals = fields.List(fields.Nested(VariantTotalsSchema))
    visitors_needed = fields.Integer(allow_none=True)
    estimated_end = fields.Date(allow_none=True)
    traffic_days = fields.Integer(
        metadata={"description": "days of enrolments (1 to 7) the end date's traffic averages"}
    )
    cap = fields.Float(
        attribute="value_cap",
        allow_none=True,
        metadata={
            "description": "value goals: each visitor's total counts at most this much (and at "
            "least minus this much) in the statistics; totals stay uncapped"
        },
    )
    stratified = fields.List(
        fields.Nested(StratifiedSchema),
        metadata={
            "description": "post-stratified uplifts per segment attribute recorded at "
            "enrolment, beside the unadjusted result"
        },
    )
    covariate = fields.Nested(
        CovariateSchema,
        allow_none=True,
        metadata={
            "description": "CUPED: uplifts adjusted for the covariate sent with /v1/assign, "
            "beside the unadjusted result; present when every variant has 100 visitors with a "
            "covariate, and then it decides the verdict (summary); null otherwise"
        },
    )
    customer = fields.Nested(
        CustomerSchema,
        allow_none=True,
        metadata={"description": "customer metrics on the same visitors as result (issue 21)"},
    )
    window = fields.Nested(
        WindowSchema,
        allow_none=True,
        metadata={
            "description": "windowed goals: result, totals and summary are the matured figures "
            "(visitors whose window and return period closed); the provisional ones are here"
        },
    )
    summary = fields.String()
    unavailable = fields.String(
        allow_none=True,
        metadata={
            "description": "why this goal's stored counters cannot be analysed (its result "
            "then shows no data); null when they can"
        },
    )


class SegmentResultSchema(Schema):
    value = fields.String(attribute="segment")
    judged = fields.Boolean(attribute="is_judged")
    result = fields.Nested(GoalResultSchema)


class SegmentReportSchema(Schema):
    attribute = fields.String()
    goal = fields.String()
    segments = fields.List(fields.Nested(SegmentResultSchema))


class DailyVariantSchema(Schema):
    visitors = fields.Integer()
    converted = fields.Integer()
    estimate = fields.Float(allow_none=True)
    interval = fields.Nested(IntervalSchema, allow_none=True)


class DailyPointSchema(Schema):
    day = fields.Date()
    variants = fields.List(fields.Nested(DailyVariantSchema))


class DailySeriesSchema(Schema):
    goal = fields.String()
    points = fields.List(fields.Nested(DailyPointSchema))


class SampleRatioSchema(Schema):
    chi_square = fields.Float(allow_none=True)
    p_value = fields.Float()
    mismatch = fields.Boolean(attribute="is_mismatch")


class VariantSummarySchema(Schema):
    key = fields.String()
    allocation = fields.Integer()
    visitors = fields.Integer()


class DecisionSchema(Schema):
    """What to do now (server/core/decision.py); money per 1,000 visitors and per month."""

    verdict = fields.String(metadata={"description": "ship, keep-running, stop or investigate"})
    goal = fields.String(metadata={"description": "the goal decided on: money first"})
    money = fields.Boolean(attribute="is_money")
    variant = fields.String(
        allow_none=True, metadata={"description": "the variant to ship (maybe the control)"}
    )
    challenger = fields.String(
        allow_none=True, metadata={"description": "the challenger the figures are about"}
    )
    per_thousand = fields.Float(allow_none=True)
    per_thousand_interval = fields.Nested(IntervalSchema, allow_none=True)
    per_month = fields.Float(allow_none=True)
    per_month_interval = fields.Nested(IntervalSchema, allow_none=True)
    chance_to_be_better = fields.Float(allow_none=True)
    expected_loss_per_thousand = fields.Float(allow_none=True)
    days_left = fields.Integer(allow_none=True)
    daily_visitors = fields.Float(allow_none=True)


class GuardrailCheckSchema(Schema):
    """One challenger on one guardrail goal (server/core/guardrails.py)."""

    goal = fields.String()
    harm = fields.Enum(Harm, by_value=True, metadata={"description": "the harmful direction"})
    variant = fields.String(metadata={"description": "the challenger's key"})
    uplift = fields.Float(allow_none=True)
    uplift_interval = fields.Nested(IntervalSchema, allow_none=True)
    p_value = fields.Float(
        allow_none=True, metadata={"description": "always-valid (mSPRT) p-value of no difference"}
    )
    adjusted_p_value = fields.Float(
        allow_none=True,
        metadata={"description": "Holm-adjusted over every guardrail comparison of the experiment"},
    )
    harmful = fields.Boolean(
        attribute="is_harmful",
        metadata={"description": "significant after the adjustment, in the harmful direction"},
    )
    status = fields.String(metadata={"enum": ["judged", "not_enough_data"]})


class ResultsSchema(Schema):
    experiment = fields.String()
    name = fields.String()
    status = fields.Enum(Status, by_value=True)
    phase = fields.Integer()
    analysis = fields.String()
    generated_at = Timestamp()
    variants = fields.List(fields.Nested(VariantSummarySchema))
    sample_ratio = fields.Nested(SampleRatioSchema)
    goals = fields.List(fields.Nested(GoalReportSchema))
    segments = fields.List(fields.Nested(SegmentReportSchema))
    daily = fields.List(fields.Nested(DailySeriesSchema))
    summary = fields.String()
    decision = fields.Nested(DecisionSchema, allow_none=True, dump_only=True)
    guardrails = fields.List(fields.Nested(GuardrailCheckSchema))
    guardrail_alarm = fields.Boolean(
        attribute="has_guardrail_alarm",
        metadata={"description": "some challenger significantly harms some guardrail goal"},
    )


class ResultsQuerySchema(BaseSchema):
    class Meta:
        unknown = EXCLUDE

    format = fields.String(validate=validate.OneOf(["json", "csv"]), load_default="json")


ASSIGN_REQUEST = AssignRequestSchema()  # built once: assign requests the fast loader leaves
EVENT_BATCH = EventBatchSchema()  # built once: batches the fast loader leaves


class ReadinessQuerySchema(BaseSchema):
    """Query of /readyz."""

    class Meta:
        unknown = EXCLUDE

    strict = fields.Boolean(
        load_default=False,
        metadata={"description": "also 503 while Redis does not take writes (deploy gates)"},
    )


class ReadinessSchema(Schema):
    """Body of a ready /readyz."""

    status = fields.String(
        required=True, metadata={"description": "ok, or degraded while Redis does not take writes"}
    )
    redis = fields.String(
        required=True,
        metadata={
            "description": "ok, unreachable, out_of_memory, read_only, evicting or refusing_writes"
        },
    )
