"""redis+cluster:// URLs against a local three-master cluster that the suite starts itself.

The API tests marked ``both_redis`` run every feature against the cluster too; this file
holds what only a cluster has: URL checks, routing per node, readiness of every master,
the configuration's version key, and sub-shards that spread one experiment over the nodes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import random
import shutil
import signal
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.crc import key_slot
from redis.retry import Retry

from server.app import create_app
from server.config import ConfigError, load_config
from server.core.models import AuditEntry
from server.storage import keys
from server.storage.clients import parse_cluster_url
from server.storage.connection import BoundedConnection
from server.storage.errors import RedisRefused
from tests.cluster import LocalCluster, started
from tests.helpers import EDITOR, INGEST_TOKEN, SECRET, TOKENS, app_settings

INGEST = {"X-Splitwerk-Ingest-Key": INGEST_TOKEN}
SHOP: dict[str, Any] = {
    "key": "checkout-button",
    "name": "Checkout button",
    "variants": [{"key": "control"}, {"key": "green"}],
    "goals": [
        {"key": "purchase", "primary": True},
        {"key": "revenue", "kind": "revenue", "event": "purchase"},
        {"key": "add_to_cart"},
    ],
    "segments": ["source"],
}
BUDGET = 0.3  # seconds: the default REDIS_REQUEST_TIMEOUT
SLACK = 0.05  # seconds a request may take beyond its budget (the limit)
SPREAD_VISITORS = 3000  # enough that ±10 % of a third is about four standard deviations


def start(client: Any, **changes: Any) -> None:
    body = {**SHOP, **changes}
    answer = client.post("/v1/experiments", json=body, headers=EDITOR)
    assert answer.status_code == 201, answer.json
    assert client.post(f"/v1/experiments/{body['key']}/start", headers=EDITOR).status_code == 200


def test_cluster_urls_are_parsed_and_checked() -> None:
    assert parse_cluster_url("redis+cluster://a:7000,b:7001") == (
        "redis://a:7000",
        [("a", 7000), ("b", 7001)],
    )
    assert parse_cluster_url("rediss+cluster://u:p%40ss@a:7000,b:7001/0?ssl_cert_reqs=none") == (
        "rediss://u:p%40ss@a:7000/0?ssl_cert_reqs=none",
        [("a", 7000), ("b", 7001)],
    )
    base = {"SECRET_KEY": SECRET, "TOKENS": TOKENS}
    for right in ("redis+cluster://a:1", "rediss+cluster://:pw@a:1,b:2/0"):
        assert right == load_config({**base, "REDIS_URL": right}).REDIS_URL
    for wrong in (
        "redis+cluster://a",
        "redis+cluster://a:1/3",
        "redis+cluster://",
        "cluster://a:1",
    ):
        with pytest.raises(ConfigError, match="REDIS_URL"):
            load_config({**base, "REDIS_URL": wrong})


def test_sub_shard_tags_lie_in_equal_parts_of_the_slots_and_match_redis() -> None:
    assert keys.sub_shard("checkout-button", 0, 1) == "checkout-button"  # what every version wrote
    for shards in (2, 3, 5, 64):
        tags = [keys.sub_shard("checkout-button", shard, shards) for shard in range(shards)]
        for shard, tag in enumerate(tags):
            assert (
                shard * keys.SLOTS // shards <= keys.slot(tag) < (shard + 1) * keys.SLOTS // shards
            )
            # Redis hashes only the tag, which keys.slot computes like redis-py
            assert keys.slot(tag) == key_slot(keys.counts(tag, 1).encode())
    assert Counter(keys.shard_of(f"visitor-{n}", 4) for n in range(4000)).keys() == {0, 1, 2, 3}


def test_a_visitors_sub_shard_is_the_one_their_bucket_names() -> None:
    visitors = [f"visitor-{n}" for n in range(200)]
    # one sub-shard: the experiment's own tag for everyone, without hashing the pseudonym
    assert {keys.visitor_shard("checkout-button", v, 1) for v in visitors} == {"checkout-button"}
    for shards in (2, 3):
        tags = [keys.visitor_shard("checkout-button", v, shards) for v in visitors]
        assert tags == [
            keys.sub_shard("checkout-button", keys.shard_of(v, shards), shards) for v in visitors
        ]
        assert set(tags) == {keys.sub_shard("checkout-button", k, shards) for k in range(shards)}


def test_the_configuration_version_shares_the_experiments_slot() -> None:
    assert key_slot(keys.CLUSTER_CONFIG_VERSION.encode()) == key_slot(keys.EXPERIMENTS.encode())


def test_a_cluster_serves_assign_events_results_and_erasure(
    redis_cluster: LocalCluster,
) -> None:
    redis_cluster.flush()
    client = create_app(app_settings(redis_cluster.url)).test_client()
    start(client)
    assert client.post("/v1/assign", json={"visitor": "anna"}).json["recorded"] is True
    order = {"type": "order", "visitor": "anna", "order_id": "o-1", "revenue": "50.00"}
    answer = client.post("/v1/events", json={"events": [order]}, headers=INGEST)
    assert answer.json["accepted"] == 1
    results = client.get("/v1/experiments/checkout-button/results", headers=EDITOR).json
    assert sum(variant["visitors"] for variant in results["variants"]) == 1
    erased = client.post("/v1/visitors/erase", json={"visitor": "anna"}, headers=EDITOR).json
    assert erased["removed"]["enrolments"] == 1 and erased["removed"]["orders"] == 1
    # the version key lives in the experiments' slot, on the experiments' node
    owner = redis_cluster.client().get_node_from_key(keys.EXPERIMENTS).port
    assert redis_cluster.node(owner).get(keys.CLUSTER_CONFIG_VERSION) == b"2"


def test_a_cluster_continues_the_version_of_data_from_a_single_redis(
    redis_cluster: LocalCluster,
) -> None:
    redis_cluster.flush()
    redis_cluster.client().set(keys.CONFIG_VERSION, 41)  # as copied over from a single Redis
    client = create_app(app_settings(redis_cluster.url)).test_client()
    assert client.post("/v1/experiments", json=SHOP, headers=EDITOR).status_code == 201
    answer = client.get("/v1/config")
    assert answer.headers["ETag"].strip('"W/') == "42"


def test_multi_experiment_assigns_and_event_batches_take_one_round_trip_per_node(
    redis_cluster: LocalCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    redis_cluster.flush()
    client = create_app(app_settings(redis_cluster.url)).test_client()
    names = [f"exp-{number}" for number in range(9)]
    for name in names:
        start(client, key=name, name=name)
    per_node = Counter(
        redis_cluster.client().get_node_from_key(keys.counts(name, 1)).port for name in names
    )
    assert len(per_node) == 3  # the experiments live on every master
    # connects to every node and loads the scripts there
    client.post("/v1/assign", json={"visitor": "warm-up", "experiments": names})
    warm_up = [{"type": "conversion", "visitor": "warm-up", "goal": "purchase", "id": "e-0"}]
    assert client.post("/v1/events", json={"events": warm_up}).json["accepted"] == 1
    steps: list[tuple[str, int]] = []  # ("send" or "read", port), in order
    send, read = BoundedConnection.send_packed_command, BoundedConnection.read_response

    def counted_send(self: Any, command: Any, check_health: bool = True) -> None:
        steps.append(("send", self.port))
        send(self, command, check_health)

    def counted_read(self: Any, *args: Any, **kwargs: Any) -> Any:
        steps.append(("read", self.port))
        return read(self, *args, **kwargs)

    monkeypatch.setattr(BoundedConnection, "send_packed_command", counted_send)
    monkeypatch.setattr(BoundedConnection, "read_response", counted_read)
    answer = client.post("/v1/assign", json={"visitor": "anna", "experiments": names})
    assert answer.json["recorded"] is True
    # nine scripts, three writes (a pipeline per node), then their nine replies
    assert Counter(port for kind, port in steps if kind == "send") == Counter(
        dict.fromkeys(per_node, 1)
    )
    assert [kind for kind, _ in steps] == ["send"] * 3 + ["read"] * 9
    steps.clear()
    events = [{"type": "conversion", "visitor": "anna", "goal": "purchase", "id": "e-1"}]
    assert client.post("/v1/events", json={"events": events}).json["accepted"] == 1
    # several experiments listen: each experiment's read of the visitor's enrolment, then each
    # experiment's record script, leaves the moment it is ready, on its node's connection, and
    # the replies are read when all nine are sent: one round trip per node for each step
    assert [kind for kind, _ in steps] == (["send"] * 9 + ["read"] * 9) * 2
    for step in (steps[:9], steps[9:18], steps[18:27], steps[27:]):
        assert Counter(port for _, port in step) == per_node


def test_readiness_and_the_time_budget_with_a_stopped_master() -> None:
    with started(LocalCluster, "sw-own-cluster-") as cluster:
        app = create_app(app_settings(cluster.url, REDIS_REQUEST_TIMEOUT=BUDGET))
        client = app.test_client()
        names = [f"exp-{number}" for number in range(9)]
        for name in names:
            start(client, key=name, name=name)
        assert client.get("/readyz").json == {"status": "ok", "redis": "ok"}
        # every master took a probe write, not just the one of a single key's slot
        probes = [cluster.node(port).keys("sw:readiness:*") for port in cluster.ports]
        assert all(len(found) == 1 for found in probes)
        stopped = cluster.processes[1]
        os.kill(stopped.pid, signal.SIGSTOP)
        try:
            strict = client.get("/readyz?strict=1")
            relaxed = client.get("/readyz")  # degraded answers still work: ready
            timings = []
            for attempt in range(3):  # a loaded machine may starve one request of CPU
                begin = time.monotonic()
                answer = client.post(
                    "/v1/assign", json={"visitor": f"v{attempt}", "experiments": names}
                )
                timings.append(time.monotonic() - begin)
                assert answer.status_code == 200
        finally:
            os.kill(stopped.pid, signal.SIGCONT)
        assert strict.status_code == 503 and strict.json["errors"]["redis"] != ["ok"]
        assert relaxed.status_code == 200 and relaxed.json["status"] == "degraded"
        assert answer.json["recorded"] is not True  # one node never answered
        assert min(timings) <= BUDGET + SLACK, timings


def test_a_cluster_node_with_an_allkeys_policy_is_refused(redis_cluster: LocalCluster) -> None:
    node = redis_cluster.node(redis_cluster.ports[2])
    node.config_set("maxmemory-policy", "allkeys-lru")
    try:
        with pytest.raises(RedisRefused, match="maxmemory-policy is allkeys-lru"):
            create_app(app_settings(redis_cluster.url))  # the start checks every master
    finally:
        node.config_set("maxmemory-policy", "noeviction")


def _traffic(seed: int) -> tuple[list[dict[str, Any]], list[list[dict[str, Any]]]]:
    """Seeded visitors with a source, and event batches: conversions, orders, refunds."""
    chance = random.Random(seed)
    visitors = [
        {"visitor": f"visitor-{number}", "attributes": {"source": chance.choice("abc")}}
        for number in range(SPREAD_VISITORS)
    ]
    events: list[dict[str, Any]] = []
    for number, visitor in enumerate(visitors):
        name = visitor["visitor"]
        if chance.random() < 0.3:
            events.append({"type": "conversion", "visitor": name, "goal": "add_to_cart", "id": "c"})
        if chance.random() < 0.1:
            cents = chance.randint(100, 50_000)
            events.append(
                {
                    "type": "order",
                    "visitor": name,
                    "order_id": f"o-{number}",
                    "revenue": f"{cents / 100:.2f}",
                }
            )
            if chance.random() < 0.2:
                events.append(
                    {
                        "type": "refund",
                        "id": "r",
                        "order_id": f"o-{number}",
                        "amount": f"{chance.randint(1, cents) / 100:.2f}",
                    }
                )
    # orders first in a batch of their own: a refund finds its order only once it is stored
    batches = [[event for event in events if event["type"] != "refund"]]
    batches.append([event for event in events if event["type"] == "refund"])
    return visitors, [batch[at : at + 500] for batch in batches for at in range(0, len(batch), 500)]


def _run(url: str, shards: int) -> tuple[dict[str, Any], Any]:
    # batches of 500 events may take Redis longer than the production socket timeout on a
    # loaded shared machine; this test is about sums, not time
    settings = app_settings(url, REDIS_SOCKET_TIMEOUT=5.0, REDIS_REQUEST_TIMEOUT=10.0)
    client = create_app(settings).test_client()
    start(client, shards=shards)
    visitors, batches = _traffic(seed=16)
    for visitor in visitors:
        assert client.post("/v1/assign", json=visitor).json["recorded"] is True
    for batch in batches:
        answer = client.post("/v1/events", json={"events": batch}, headers=INGEST).json
        assert answer["accepted"] == len(batch), answer
    results = client.get("/v1/experiments/checkout-button/results", headers=EDITOR)
    assert results.status_code == 200
    return results.json, client


@pytest.fixture
def both(redis_server: Any, redis_cluster: LocalCluster) -> Iterator[tuple[str, LocalCluster]]:
    redis_server.client().flushall()
    redis_cluster.flush()
    yield redis_server.url, redis_cluster


def _without_clock(results: dict[str, Any]) -> dict[str, Any]:
    """Results without the fields that name the time they were computed at."""
    return {name: value for name, value in results.items() if "_at" not in name}


@pytest.mark.slow
def test_three_sub_shards_spread_one_experiment_evenly_with_the_results_of_one_redis(
    both: tuple[str, LocalCluster],
) -> None:
    single_url, cluster = both
    single, _ = _run(single_url, shards=1)
    sharded, _ = _run(cluster.url, shards=3)
    assert _without_clock(sharded) == _without_clock(single)
    routing = cluster.client()
    per_node: Counter[int] = Counter()
    for shard in range(3):
        name = keys.enrolments(keys.sub_shard("checkout-button", shard, 3), 1)
        per_node[routing.get_node_from_key(name).port] += routing.hlen(name)
    assert sum(per_node.values()) == SPREAD_VISITORS
    assert len(per_node) == 3
    for count in per_node.values():
        assert abs(count - SPREAD_VISITORS / 3) <= 0.1 * SPREAD_VISITORS / 3, per_node


def test_sub_shards_are_chosen_on_drafts_only_and_erasure_finds_the_visitors_sub_shard(
    redis_cluster: LocalCluster,
) -> None:
    redis_cluster.flush()
    client = create_app(app_settings(redis_cluster.url)).test_client()
    for wrong in (0, 65, "3", 2.5):
        body = {**SHOP, "shards": wrong}
        answer = client.post("/v1/experiments", json=body, headers=EDITOR)
        assert answer.status_code == 422 and "shards" in answer.json["errors"]
    start(client, shards=3)
    path = "/v1/experiments/checkout-button"
    assert client.get(path, headers=EDITOR).json["shards"] == 3
    refused = client.patch(path, json={"shards": 2}, headers=EDITOR)
    assert refused.status_code == 409 and "shards" in refused.json["errors"]
    visitors = [f"visitor-{number}" for number in range(30)]
    for visitor in visitors:
        client.post("/v1/assign", json={"visitor": visitor})
    routing = redis_cluster.client()
    names = [keys.enrolments(keys.sub_shard("checkout-button", k, 3), 1) for k in range(3)]
    assert all(routing.hlen(name) > 0 for name in names)  # the visitors are spread
    erased = client.post("/v1/visitors/erase", json={"visitor": "visitor-7"}, headers=EDITOR)
    assert erased.json["removed"]["enrolments"] == 1
    assert sum(routing.hlen(name) for name in names) == len(visitors) - 1


def test_a_configuration_version_names_one_configuration_under_concurrent_changes(
    redis_cluster: LocalCluster,
) -> None:
    redis_cluster.flush()
    app = create_app(app_settings(redis_cluster.url))
    assert app.test_client().post("/v1/experiments", json=SHOP, headers=EDITOR).status_code == 201
    store = app.store
    seen: dict[int, set[str]] = {}
    is_done = threading.Event()

    def write(writer: int) -> None:
        for number in range(40):
            store.save_experiment(
                "checkout-button",
                lambda current, _, name=f"{writer}-{number}": dataclasses.replace(
                    current, name=name
                ),
                AuditEntry(0.0, "test", "update", {}),
            )

    def read() -> None:
        while not is_done.is_set():
            version, experiments = store.load_experiments()
            seen.setdefault(version, set()).add(experiments["checkout-button"].name)

    readers = [threading.Thread(target=read) for _ in range(2)]
    writers = [threading.Thread(target=write, args=(n,)) for n in range(2)]
    for thread in readers + writers:
        thread.start()
    for thread in writers:
        thread.join()
    is_done.set()
    for thread in readers:
        thread.join()
    assert len(seen) > 10  # the readers saw many versions while the writers changed them
    assert all(len(names) == 1 for names in seen.values()), seen
    assert store.load_experiments()[0] == 81  # the create and 80 changes, none lost


def test_a_timed_out_batch_is_not_resent_by_the_cluster_client(
    redis_cluster: LocalCluster,
) -> None:
    redis_cluster.flush()
    # a budget long enough for redis-py's cluster retry to get its answer, were it allowed
    app = create_app(app_settings(redis_cluster.url, CONFIG_REFRESH_INTERVAL=60))
    client = app.test_client()
    start(client)
    assert client.post("/v1/assign", json={"visitor": "buyer"}).json["recorded"] is True
    warm = [{"type": "conversion", "id": "c-0", "visitor": "buyer", "goal": "purchase"}]
    assert client.post("/v1/events", json={"events": warm}).json["accepted"] == 1
    batch = {
        "events": [{"type": "conversion", "id": "c-1", "visitor": "buyer", "goal": "purchase"}]
    }
    counts = keys.counts("checkout-button", 1)
    node = redis_cluster.node(redis_cluster.client().get_node_from_key(counts).port)
    sleeper = threading.Thread(target=lambda: node.execute_command("DEBUG", "SLEEP", "1"))
    sleeper.start()
    probe = redis.Redis(
        port=node.connection_pool.connection_kwargs["port"],
        socket_timeout=0.05,
        retry=Retry(NoBackoff(), 0),  # one unanswered ping says the node sleeps
    )
    deadline = time.monotonic() + 0.5
    with contextlib.suppress(redis.TimeoutError):  # asleep once a ping gets no answer
        while time.monotonic() < deadline:
            probe.ping()
    stalled = client.post("/v1/events", json=batch)
    sleeper.join()
    assert stalled.status_code == 503
    assert "may have been stored" in stalled.json["message"]
    again = client.post("/v1/events", json=batch)
    # the first send ran once, after the sleep: the re-send gets its answer, not "duplicate"
    assert again.json["accepted"] == 1 and again.json["duplicate"] == 0
    found = redis_cluster.client().hgetall(counts)
    assert sum(int(v) for k, v in found.items() if k.startswith(b"n:")) == 2


def test_a_server_started_before_its_cluster_degrades_then_serves() -> None:
    folder = Path(tempfile.mkdtemp(prefix="sw-late-cluster-"))
    cluster = LocalCluster(folder)  # its ports are chosen; nothing listens yet
    try:
        app = create_app(app_settings(cluster.url, CONFIG_REFRESH_INTERVAL=0.01))
        client = app.test_client()
        assert client.get("/readyz").status_code == 503  # never saw a configuration
        refused = client.post("/v1/experiments", json=SHOP, headers=EDITOR)
        assert refused.status_code == 503
        cluster.start()
        start(client)
        assert client.get("/readyz").json == {"status": "ok", "redis": "ok"}
        assert client.post("/v1/assign", json={"visitor": "anna"}).json["recorded"] is True
    finally:
        cluster.stop()
        shutil.rmtree(folder, ignore_errors=True)
