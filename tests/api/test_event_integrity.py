"""POST /v1/events against a hostile sender: money limits, all-or-nothing scripts, idempotency
namespaces, browser values, per-visitor bounds (issue #12)."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from tests.api.test_events import INGEST, enrol, order, send, start


def keyspace(redis_client: redis.Redis) -> dict[bytes, bytes]:
    """A DUMP of every key with its TTL: equal before and after means nothing was written."""
    state = {}
    for name in sorted(redis_client.keys("*")):
        state[name] = (redis_client.dump(name), redis_client.pttl(name) > 0)
    return state  # type: ignore[return-value]


def conversion(visitor: str, event_id: str, goal: str = "purchase", **extra: Any) -> dict[str, Any]:
    return {"type": "conversion", "id": event_id, "visitor": visitor, "goal": goal, **extra}


@pytest.mark.parametrize(
    "amount", ["1e999999", "\uff11\uff12", "\u0661\u0662\u0663", "1_000", "-0", "1.001", "NaN"]
)
@pytest.mark.parametrize("with_key", [True, False])
def test_malformed_amounts_are_a_422_naming_the_field(
    client: Any, redis_client: redis.Redis, amount: str, with_key: bool
) -> None:
    start(client)
    enrol(client, "kunde-1")
    before = keyspace(redis_client)
    headers = INGEST if with_key else {"Origin": "https://shop.example"}
    for event, field in [
        (conversion("kunde-1", "c-1", value=amount), "value"),
        (order("kunde-1", "o-1", amount), "revenue"),
        (order("kunde-1", "o-2", "10.00", tax=amount), "tax"),
        ({"type": "refund", "id": "r", "order_id": "o", "amount": amount}, "amount"),
    ]:
        response = send(client, event, headers=headers)
        assert response.status_code == 422, (event, response.json)
        assert field in response.json["errors"]["events"]["0"]
    assert keyspace(redis_client) == before
