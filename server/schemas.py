"""Every marshmallow schema of the HTTP API, and the ID patterns that guard Redis keys."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
import re
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

from server.core.models import BASIS_POINTS, Analysis, Experiment, GoalKind, Status
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
MAX_SEGMENTS = 5  # segment attributes per experiment; each multiplies the counters
MAX_ALLOW_LIST = 200  # QA visitors per experiment
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

    @validates_schema
    def _value_goals_only(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("accept_browser_value") and data.get("kind") == GoalKind.CONVERSION:
            raise ValidationError(
                {"accept_browser_value": ["only revenue and margin goals take values"]}
            )


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
    created_at = Timestamp()
    updated_at = Timestamp()
    started_at = Timestamp(allow_none=True)
    stopped_at = Timestamp(allow_none=True)
    revision = fields.Integer()


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
    attributes = AttributesField(MAX_ATTRIBUTES_BYTES, load_default=dict)
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


# Fast path for well-formed conversions and orders, which are nearly all events: the same rules
# as their schemas, checked without marshmallow's per-field machinery (which costs 40 us for a
# conversion and 100 us for an order, more than the rest of recording it). Anything unusual —
# every error included — goes through the schemas, which stay the definition; a test checks
# that both give the same result.
_EVENT_ID = re.compile(EVENT_ID_PATTERN)
_KEY = re.compile(ID_PATTERN)
_CURRENCY = re.compile(CURRENCY_PATTERN)
_CONVERSION_FIELDS = frozenset({"type", "id", "visitor", "goal", "ts", "value"})
_ORDER_MONEY = ("tax", "shipping", "discount", "cost_of_goods", "payment_fee")
_ORDER_FIELDS = frozenset(
    {"type", "id", "visitor", "order_id", "goal", "revenue", "ts", "currency", *_ORDER_MONEY}
)


def _is_visitor(value: Any) -> bool:
    if not isinstance(value, str) or not 0 < len(value) <= VISITOR_MAX_LENGTH:
        return False
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def _is_match(pattern: re.Pattern[str], value: Any) -> bool:
    return isinstance(value, str) and pattern.match(value) is not None


def _timestamp(raw: dict[str, Any]) -> float | None:
    """The event's ts as the schema loads it; raises ValueError when the schema would refuse."""
    ts = raw.get("ts")
    if ts is None:
        return None
    if isinstance(ts, bool) or not isinstance(ts, int | float) or not math.isfinite(ts):
        raise ValueError("ts")
    return float(ts)


def _fast_event(raw: dict[str, Any]) -> dict[str, Any] | None:
    """The loaded event if it is a well-formed conversion or order, else None (use the schema)."""
    try:
        kind = raw.get("type")
        if kind == "conversion" and raw.keys() <= _CONVERSION_FIELDS:
            if not (
                _is_match(_EVENT_ID, raw.get("id"))
                and _is_visitor(raw.get("visitor"))
                and _is_match(_KEY, raw.get("goal"))
            ):
                return None
            return {
                "type": kind,
                "id": raw["id"],
                "visitor": raw["visitor"],
                "goal": raw["goal"],
                "ts": _timestamp(raw),
                "value": parse_cents(raw["value"]) if "value" in raw else 0,
            }
        if kind == "order" and raw.keys() <= _ORDER_FIELDS:
            event_id, goal, currency = (
                raw.get("id"),
                raw.get("goal", "purchase"),
                raw.get("currency"),
            )
            if not (
                (event_id is None or _is_match(_EVENT_ID, event_id))
                and _is_visitor(raw.get("visitor"))
                and _is_match(_EVENT_ID, raw.get("order_id"))
                and _is_match(_KEY, goal)
                and (currency is None or _is_match(_CURRENCY, currency))
                and "revenue" in raw
            ):
                return None
            loaded = {
                "type": kind,
                "id": event_id,
                "visitor": raw["visitor"],
                "order_id": raw["order_id"],
                "goal": goal,
                "revenue": parse_cents(raw["revenue"]),
                "currency": currency,
                "ts": _timestamp(raw),
            }
            for name in _ORDER_MONEY:
                loaded[name] = parse_cents(raw[name]) if name in raw else 0
            return loaded
    except (MoneyError, ValueError, OverflowError):
        return None
    return None


def load_event(raw: Any) -> dict[str, Any]:
    """Validate one event of a batch by its type.

    Raises:
        ValidationError: the event is invalid; ``messages`` names the fields.
    """
    if isinstance(raw, dict):
        fast = _fast_event(raw)
        if fast is not None:
            return fast
    if not isinstance(raw, dict):
        raise ValidationError({"_event": ["must be a JSON object"]})
    kind = raw.get("type")
    schema = EVENT_SCHEMAS.get(kind) if isinstance(kind, str) else None
    if schema is None:
        raise ValidationError({"type": [f"must be one of {', '.join(EVENT_SCHEMAS)}"]})
    loaded: dict[str, Any] = schema.load(raw)
    return loaded


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
    removed = fields.Dict(keys=fields.String(), values=fields.Integer())
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


class ResultsQuerySchema(BaseSchema):
    class Meta:
        unknown = EXCLUDE

    format = fields.String(validate=validate.OneOf(["json", "csv"]), load_default="json")


# Fast path of the hot assign endpoint, like the events' one: well-formed requests are checked
# with the schema's rules directly; anything else goes through AssignRequestSchema, which stays
# the definition (tests compare both). The answer is built directly too (compared with
# AssignResponseSchema in the tests).
_ASSIGN_FIELDS = frozenset({"visitor", "experiments", "attributes", "consent"})
_SCALARS = (str, int, float, bool)


_SMALL_INT = 10**30  # ints below this in magnitude take at most 32 bytes of JSON


def _json_size_bound(item: str | float | bool | None) -> int:
    """At least as many bytes as ``item`` takes in JSON; exact enough for the fast path."""
    if isinstance(item, str):
        return (6 if item.isascii() else 12) * len(item) + 2
    if isinstance(item, int) and not -_SMALL_INT < item < _SMALL_INT:
        return len(str(item))  # at most 4,300 digits: json refuses longer ints
    return 32


def _fast_attributes(value: Any) -> dict[str, Any] | None:
    if not isinstance(value, dict) or len(value) > MAX_ATTRIBUTES:
        return None
    # an upper bound of the JSON size: an ASCII character takes at most 6 bytes ("\\u001f"),
    # another 12 (two "\\uXXXX" for one beyond the BMP); a float at most 24, an int its digits
    size = 2
    for name, item in value.items():
        if not 0 < len(name) <= 64 or not (item is None or isinstance(item, _SCALARS)):
            return None
        if isinstance(item, float) and not math.isfinite(item):
            return None
        size += _json_size_bound(name) + _json_size_bound(item) + 2
    # close calls go through the schema, which measures exactly
    return value if size <= MAX_ATTRIBUTES_BYTES else None


def fast_assign_request(raw: Any) -> dict[str, Any] | None:
    """An assign request body loaded on the fast path, or None when the schema must decide.

    Only the common, well-formed shape qualifies: visitor, experiments, attributes and consent,
    each valid by the schema's rules; anything else (force, user_agent, errors) is None.
    """
    if not isinstance(raw, dict) or not raw.keys() <= _ASSIGN_FIELDS:
        return None
    visitor, experiments = raw.get("visitor"), raw.get("experiments")
    attributes = _fast_attributes(raw.get("attributes", {}))
    consent = raw.get("consent", True)
    if (
        _is_visitor(visitor)
        and attributes is not None
        and isinstance(consent, bool)
        and (
            experiments is None
            or (isinstance(experiments, list) and all(_is_match(_KEY, key) for key in experiments))
        )
    ):
        return {
            "visitor": visitor,
            "experiments": experiments,
            "attributes": attributes,
            "consent": consent,
            "force": None,
            "user_agent": None,
            "covariate": None,
        }
    return None


def load_assign_request(raw: Any) -> dict[str, Any]:
    """Validate an assign request body.

    Raises:
        ValidationError: naming the fields.
    """
    fast = fast_assign_request(raw)
    if fast is not None:
        return fast
    loaded: dict[str, Any] = ASSIGN_REQUEST.load(raw)
    return loaded


def dump_assign_result(result: Any) -> dict[str, Any]:
    """The assign answer as AssignResponseSchema dumps it, built directly."""
    return {
        "visitor": result.visitor,
        "recorded": recorded_value(result.is_recorded),
        "assignments": {
            item.experiment: {
                "variant": item.variant_key,
                "payload": item.payload,
                "enrolled": item.is_enrolled,
                "reason": str(item.reason),
            }
            for item in result.assignments
        },
    }


ASSIGN_REQUEST = AssignRequestSchema()  # built once: the slow path of load_assign_request


def load_event_batch(raw: Any) -> list[Any]:
    """The events of a batch body (each validated later, on its own).

    Raises:
        ValidationError: the body is not ``{"events": [1..500 items]}``.
    """
    if isinstance(raw, dict) and raw.keys() == {"events"}:
        events = raw["events"]
        if isinstance(events, list) and 0 < len(events) <= MAX_EVENTS_PER_BATCH:
            return events
    loaded: list[Any] = EVENT_BATCH.load(raw)["events"]
    return loaded


def dump_event_results(outcomes: Any) -> dict[str, Any]:
    """The batch answer as EventBatchResultSchema dumps it, built directly (hot path)."""
    summary = {status: 0 for status in ("accepted", "duplicate", "conflict", "ignored", "rejected")}
    results = []
    for outcome in outcomes:
        summary[outcome.status] += 1
        results.append({"status": outcome.status, "errors": outcome.errors})
    return {**summary, "results": results}


EVENT_BATCH = EventBatchSchema()  # the slow path of load_event_batch


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
