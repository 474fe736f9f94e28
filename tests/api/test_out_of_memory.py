"""A full Redis (noeviction): writes are 503 and write nothing, reads work, recovery is automatic.

Against a redis-server of the test's own with a small ``maxmemory``, filled with filler keys.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis

from server.app import create_app
from server.storage import keys
from tests.api.test_readiness import fill_until_full
from tests.conftest import RedisServer
from tests.dashboard.conftest import csrf_token, sign_in
from tests.helpers import EDITOR, INGEST_TOKEN, VIEWER, VIEWER_TOKEN, app_settings

INGEST = {"X-Splitwerk-Ingest-Key": INGEST_TOKEN}
EXPERIMENT: dict[str, Any] = {
    "key": "checkout-button",
    "name": "Checkout button",
    "variants": [{"key": "control"}, {"key": "green"}],
    "goals": [
        {"key": "purchase", "primary": True},
        {"key": "margin", "kind": "margin", "event": "purchase"},
    ],
    "segments": ["source"],
}


def _snapshot(client: redis.Redis) -> dict[bytes, bytes]:
    """Every Splitwerk key with its serialised value (the readiness probe aside)."""
    return {
        name: client.dump(name)
        for name in client.scan_iter(match=f"{keys.PREFIX}:*")
        if name != keys.READINESS_PROBE.encode()
    }


def _order(visitor: str, order_id: str) -> dict[str, Any]:
    return {
        "type": "order",
        "visitor": visitor,
        "order_id": order_id,
        "revenue": "119.00",
        "tax": "19.00",
        "cost_of_goods": "40.00",
        "currency": "EUR",
    }


def test_a_full_redis_refuses_every_write_whole_keeps_reads_and_recovers(
    own_redis: Callable[..., RedisServer],
) -> None:
    server = own_redis("--maxmemory", "4mb", "--maxmemory-policy", "noeviction")
    app = create_app(app_settings(server.url, CONFIG_REFRESH_INTERVAL=0.001))
    client = app.test_client()
    assert client.post("/v1/experiments", json=EXPERIMENT, headers=EDITOR).status_code == 201
    assert client.post("/v1/experiments/checkout-button/start", headers=EDITOR).status_code == 200
    visitors = [f"v-{number}" for number in range(20)]
    for visitor in visitors:
        body = {"visitor": visitor, "attributes": {"source": "ads"}}
        assert client.post("/v1/assign", json=body).json["recorded"] is True
    batch = [_order(visitor, f"o-{visitor}") for visitor in visitors[:10]]
    assert client.post("/v1/events", json={"events": batch}, headers=INGEST).status_code == 200

    # a viewer signed in before Redis filled up keeps reading pages (a new sign-in is a write)
    signed_in = sign_in(create_app(app_settings(server.url)).test_client(), VIEWER_TOKEN)

    admin = server.client()
    fill_until_full(admin)
    before = _snapshot(admin)

    # writes: 503 (or unrecorded), and not one key changed
    late_orders = [_order(visitor, f"late-{visitor}") for visitor in visitors]
    conversions = [
        {"type": "conversion", "id": f"c-{visitor}", "visitor": visitor, "goal": "purchase"}
        for visitor in visitors
    ]
    for events in (late_orders, conversions, late_orders[:1]):
        response = client.post("/v1/events", json={"events": events}, headers=INGEST)
        assert response.status_code == 503
    refund = {"type": "refund", "id": "r-1", "order_id": "o-v-0", "amount": "10.00"}
    assert client.post("/v1/events", json={"events": [refund]}, headers=INGEST).status_code == 503
    fresh = client.post("/v1/assign", json={"visitor": "newcomer"})
    assert fresh.status_code == 200
    assert fresh.json["recorded"] is False  # refused up front: nothing was written
    assert fresh.headers["X-Splitwerk-Recorded"] == "false"
    created = client.post("/v1/experiments", json={**EXPERIMENT, "key": "second"}, headers=EDITOR)
    assert created.status_code == 503
    assert _snapshot(admin) == before

    # reads: a worker that never saw the configuration reads it, results and pages work
    reader = create_app(app_settings(server.url)).test_client()
    config = reader.get("/v1/config")
    assert config.status_code == 200
    assert [item["key"] for item in config.json["experiments"]] == ["checkout-button"]
    results = reader.get("/v1/experiments/checkout-button/results", headers=VIEWER)
    assert results.status_code == 200
    page = signed_in.get("/dashboard/experiments/checkout-button")
    assert page.status_code == 200
    login = reader.post(
        "/dashboard/login", data={"token": VIEWER_TOKEN, "csrf_token": csrf_token(reader)}
    )
    assert login.status_code == 503  # the session cannot be stored: refused, not half made
    assert reader.get("/readyz").json == {"status": "degraded", "redis": "out_of_memory"}

    # memory frees: the same worker writes again without a restart
    for name in admin.scan_iter(match="filler:*", count=1000):
        admin.delete(name)
    response = client.post("/v1/events", json={"events": conversions}, headers=INGEST)
    assert response.status_code == 200
    assert response.json["accepted"] == len(conversions)
    assert client.post("/v1/assign", json={"visitor": "newcomer"}).json["recorded"] is True
    assert client.get("/readyz?strict=true").json == {"status": "ok", "redis": "ok"}
    admin.close()
