"""The hand-written loaders of the hot routes load and dump exactly what the schemas do."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from marshmallow import ValidationError

from server import schemas
from server.api import fastschemas
from server.core import strict_json
from server.services.events import EventOutcome


def test_fast_request_path_loads_exactly_what_the_schema_loads() -> None:
    scalar = st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=30),
        st.text(alphabet="üß€中\ud800", max_size=1500),
    )  # fmt: skip
    value = st.one_of(scalar, st.lists(scalar, max_size=3), st.dictionaries(st.text(), scalar))
    raw = st.fixed_dictionaries(
        {},
        optional={
            "visitor": st.one_of(st.text(max_size=140), st.integers(), st.just("\ud800")),
            "experiments": st.one_of(
                st.none(), st.lists(st.sampled_from(["a", "checkout-button", "Bad", ""])),
                st.text(max_size=5),
            ),
            "attributes": st.one_of(
                st.dictionaries(st.text(max_size=70), value, max_size=8), st.text(), st.lists(value)
            ),
            "consent": st.one_of(st.booleans(), st.text(max_size=3), st.integers()),
            "force": st.dictionaries(st.just("a"), st.just("b")),
            "surprise": st.integers(),
        },
    )  # fmt: skip

    @given(raw)
    def check(body: dict[str, Any]) -> None:
        try:
            slow = schemas.ASSIGN_REQUEST.load(body)
        except ValidationError:
            with pytest.raises(ValidationError):
                fastschemas.load_assign_request(body)
            return
        assert fastschemas.load_assign_request(body) == slow

    check()


def test_fast_event_path_loads_exactly_what_the_schemas_load() -> None:
    text = st.one_of(
        st.sampled_from(["v-1", "o-1", "add_to_cart", "purchase", "EUR", "euro", "", "x" * 200,
                         "Bad Key", "4b1d2f3e-1111-4000-8000-000000000001", "\ud800"]),
        st.text(max_size=12),
    )  # fmt: skip
    money = st.one_of(
        st.sampled_from(["49.90", "0", "-1", "1.001", "abc", "1e2"]),
        st.integers(-5, 10**12),
        st.floats(allow_nan=True, allow_infinity=True),
        st.none(),
        st.booleans(),
    )
    ts = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True),
                   st.integers(-(10**400), 10**400), st.booleans(), text)  # fmt: skip
    field = st.sampled_from(
        ["id", "visitor", "goal", "order_id", "revenue", "tax", "shipping", "discount",
         "cost_of_goods", "payment_fee", "currency", "ts", "value", "extra"]
    )  # fmt: skip
    money_fields = ("revenue", "tax", "shipping", "discount", "cost_of_goods", "payment_fee")
    value_for = {name: money for name in (*money_fields, "value")} | {"ts": ts}

    @given(
        kind=st.sampled_from(["conversion", "order"]),
        fields=st.dictionaries(field, st.none(), max_size=10),
        data=st.data(),
    )
    def check(kind: str, fields: dict[str, None], data: Any) -> None:
        raw: dict[str, Any] = {"type": kind}
        for name in fields:
            raw[name] = data.draw(value_for.get(name, text))
        fast = fastschemas._fast_event(raw)
        try:
            slow = schemas.EVENT_SCHEMAS[kind].load(raw)
        except ValidationError:
            assert fast is None
            return
        if fast is not None:
            assert fast == slow

    check()


@pytest.mark.parametrize(
    "raw",
    [
        {"type": "conversion", "id": "c-1", "visitor": "v", "goal": "add_to_cart"},
        {"type": "conversion", "id": "c-1", "visitor": "v", "goal": "x", "ts": 1.5, "value": "2"},
        {"type": "order", "visitor": "v", "order_id": "o", "revenue": "49.90", "tax": "7.97"},
        {"type": "order", "id": "i", "visitor": "v", "order_id": "o", "revenue": 10,
         "currency": "EUR", "goal": "purchase", "cost_of_goods": "1", "payment_fee": 0.3},
    ],
)  # fmt: skip
def test_well_formed_conversions_and_orders_take_the_fast_path(raw: dict[str, Any]) -> None:
    fast = fastschemas._fast_event(raw)
    assert fast is not None
    assert fast == schemas.EVENT_SCHEMAS[raw["type"]].load(raw)


def test_direct_batch_answer_equals_the_response_schema() -> None:
    outcomes = [
        EventOutcome("accepted"),
        EventOutcome("duplicate"),
        EventOutcome("rejected", {"revenue": ["must not be negative"]}),
        EventOutcome("ignored"),
        EventOutcome("conflict", {"id": ["was sent before with other content"]}),
    ]
    summary = {"accepted": 1, "duplicate": 1, "conflict": 1, "ignored": 1, "rejected": 1}
    expected = schemas.EventBatchResultSchema().dump({**summary, "results": outcomes})
    assert json.loads(fastschemas.encode_event_results(outcomes)) == expected


_OUTCOMES = st.builds(
    EventOutcome,
    st.sampled_from(["accepted", "duplicate", "conflict", "ignored", "rejected"]),
    st.none() | st.dictionaries(st.text(max_size=8), st.lists(st.text(max_size=20), max_size=2)),
)


@given(st.lists(_OUTCOMES, min_size=1, max_size=30))
def test_the_batch_answer_text_is_the_response_schemas_dumped_by_strict_json(
    outcomes: list[EventOutcome],
) -> None:
    # the route writes the answer's text directly; it is what the schema's dump serialises to
    summary = dict.fromkeys(["accepted", "duplicate", "conflict", "ignored", "rejected"], 0)
    for outcome in outcomes:
        summary[outcome.status] += 1
    dumped = schemas.EventBatchResultSchema().dump({**summary, "results": outcomes})
    assert fastschemas.encode_event_results(outcomes) == strict_json.dumps(dumped)


@pytest.mark.parametrize(
    "body", [{"events": []}, {"events": {}}, {"events": [1] * 501}, {"events": [], "x": 1}, []]
)
def test_batch_fast_path_refuses_what_the_schema_refuses(body: Any) -> None:
    with pytest.raises(ValidationError):
        fastschemas.load_event_batch(body)
