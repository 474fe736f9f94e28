"""The hot routes' bodies (POST /v1/assign, POST /v1/events) loaded and dumped without marshmallow.

Nearly every request to these routes is well-formed, and marshmallow's per-field machinery cost
more than the rest of answering it (40 us for a conversion, 100 us for an order). The loaders
here check the common shapes with the schemas' own rules and constants; anything unusual, every
error included, goes through the schemas in ``server.schemas``, which stay the definition
(tests/api/test_fastschemas.py checks that both give the same result).
"""

from __future__ import annotations

import math
import re
from typing import Any

from marshmallow import ValidationError

from server import schemas
from server.core import strict_json
from server.core.money import MoneyError, parse_cents

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
    if not isinstance(value, dict) or len(value) > schemas.MAX_ATTRIBUTES:
        return None
    if value.get(schemas.CUSTOMER_ATTRIBUTE, schemas.CUSTOMER_VALUES[0]) not in (
        schemas.CUSTOMER_VALUES
    ):
        return None  # the schema names the field
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
    return value if size <= schemas.MAX_ATTRIBUTES_BYTES else None


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
    loaded: dict[str, Any] = schemas.ASSIGN_REQUEST.load(raw)
    return loaded


def dump_assign_result(result: Any) -> dict[str, Any]:
    """The assign answer as AssignResponseSchema dumps it, built directly."""
    return {
        "visitor": result.visitor,
        "recorded": schemas.recorded_value(result.is_recorded),
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


def load_event_batch(raw: Any) -> list[Any]:
    """The events of a batch body (each validated later, on its own).

    Raises:
        ValidationError: the body is not ``{"events": [1..500 items]}``.
    """
    if isinstance(raw, dict) and raw.keys() == {"events"}:
        events = raw["events"]
        if isinstance(events, list) and 0 < len(events) <= schemas.MAX_EVENTS_PER_BATCH:
            return events
    loaded: list[Any] = schemas.EVENT_BATCH.load(raw)["events"]
    return loaded


_EVENT_STATUSES = ("accepted", "duplicate", "conflict", "ignored", "rejected")
# the JSON of a result without errors, per status: nearly every result of a batch
_PLAIN_RESULTS = {status: f'{{"status":"{status}","errors":null}}' for status in _EVENT_STATUSES}


def encode_event_results(outcomes: Any) -> str:
    """The batch answer as EventBatchResultSchema dumps it, in the JSON text
    ``strict_json.dumps`` writes, put together from the ready text of each result without
    errors (a tenth of the route's own work was building and encoding a dict per event)."""
    summary = dict.fromkeys(_EVENT_STATUSES, 0)
    results = []
    for outcome in outcomes:
        summary[outcome.status] += 1
        if outcome.errors is None:
            results.append(_PLAIN_RESULTS[outcome.status])
        else:
            results.append(strict_json.dumps({"status": outcome.status, "errors": outcome.errors}))
    counts = ",".join(f'"{status}":{count}' for status, count in summary.items())
    return f'{{{counts},"results":[{",".join(results)}]}}'


# Fast path for well-formed conversions and orders, which are nearly all events: the same rules
# as their schemas, checked without marshmallow's per-field machinery (which costs 40 us for a
# conversion and 100 us for an order, more than the rest of recording it). Anything unusual —
# every error included — goes through the schemas, which stay the definition; a test checks
# that both give the same result.
_EVENT_ID = re.compile(schemas.EVENT_ID_PATTERN)
_KEY = re.compile(schemas.ID_PATTERN)
_CURRENCY = re.compile(schemas.CURRENCY_PATTERN)
_CONVERSION_FIELDS = frozenset({"type", "id", "visitor", "goal", "ts", "value"})
_ORDER_MONEY = ("tax", "shipping", "discount", "cost_of_goods", "payment_fee")
_ORDER_FIELDS = frozenset(
    {"type", "id", "visitor", "order_id", "goal", "revenue", "ts", "currency", *_ORDER_MONEY}
)


def _is_visitor(value: Any) -> bool:
    if not isinstance(value, str) or not 0 < len(value) <= schemas.VISITOR_MAX_LENGTH:
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
    schema = schemas.EVENT_SCHEMAS.get(kind) if isinstance(kind, str) else None
    if schema is None:
        raise ValidationError({"type": [f"must be one of {', '.join(schemas.EVENT_SCHEMAS)}"]})
    loaded: dict[str, Any] = schema.load(raw)
    return loaded
