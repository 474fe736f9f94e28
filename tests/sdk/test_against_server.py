"""The SDK against the real server: answers, local-mode agreement, counting once, failures."""

from __future__ import annotations

import concurrent.futures
import http.client
import random
import threading
import time
from collections import Counter, deque
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import redis

from server.app import create_app
from server.storage import keys
from splitwerk import Client
from tests.helpers import EDITOR, INGEST_TOKEN, LiveServer, app_settings

VISITORS = (
    3000  # local-mode agreement: enough that every branch (layer, coverage, targeting) is hit
)
SERVER_WORKERS = 4  # threads asking the server; the answers, not the order, are compared
PATIENT_TIMEOUT = 5.0  # seconds for remote calls where the answer, not the speed, is tested
GOALS = [
    {"key": "purchase", "kind": "revenue", "primary": True},
    {"key": "add_to_cart"},
]


class Shop:
    """The real app served on 127.0.0.1, plus an editor's test client to set experiments up."""

    def __init__(self, url: str, admin: Any, redis_client: redis.Redis) -> None:
        self.url = url
        self.admin = admin
        self.redis = redis_client

    def start(self, key: str, **fields: Any) -> None:
        body = {
            "key": key,
            "name": key,
            "variants": [{"key": "control"}, {"key": "green", "payload": {"color": "#0a0"}}],
            "goals": GOALS,
            **fields,
        }
        created = self.admin.post("/v1/experiments", json=body, headers=EDITOR)
        assert created.status_code == 201, created.json
        started = self.admin.post(f"/v1/experiments/{key}/start", headers=EDITOR)
        assert started.status_code == 200, started.json

    def counts(self, key: str) -> dict[str, int]:
        raw = self.redis.hgetall(keys.counts(key, 1))
        return {name.decode(): int(value) for name, value in raw.items()}

    def enrolled(self, key: str) -> Counter[int]:
        """Enrolled visitors per variant index (counter fields ``e:<v>``)."""
        return Counter(
            {
                int(name[2:]): value
                for name, value in self.counts(key).items()
                if name.startswith("e:") and name.count(":") == 1
            }
        )

    def total(self, key: str, prefix: str, goal: str) -> int:
        """Sum over variants of a goal counter: ``n`` events, ``c`` visitors, ``s`` cents."""
        return sum(
            value
            for name, value in self.counts(key).items()
            if name.startswith(f"{prefix}:") and name.count(":") == 2 and name.endswith(goal)
        )


@pytest.fixture
def shop(redis_server: Any, redis_client: redis.Redis) -> Iterator[Shop]:
    app = create_app(app_settings(redis_server.url))
    with LiveServer(app) as server:
        yield Shop(server.url, app.test_client(), redis_client)


def remote(url: str, **options: Any) -> Client:
    settings: dict[str, Any] = {
        "timeout": PATIENT_TIMEOUT,
        "ingest_key": INGEST_TOKEN,
        "poll_interval": None,
        "flush_interval": 60.0,  # the tests flush explicitly
        "retry_backoff": 0.01,
    }
    settings.update(options)
    return Client(url, **settings)


def local(url: str, **options: Any) -> Client:
    client = remote(url, mode="local", poll_interval=60.0, **options)
    assert client.wait_for_config(PATIENT_TIMEOUT)
    return client


# --- remote mode -------------------------------------------------------------------------------


def test_variant_and_assign_return_the_servers_answers_with_payloads(shop: Shop) -> None:
    shop.start("checkout-button", segments=["source"])
    with remote(shop.url) as client:
        variants = {f"v-{n}": client.variant("checkout-button", f"v-{n}") for n in range(40)}
        assert set(variants.values()) == {"control", "green"}
        answers = client.assign("v-0", ["checkout-button", "no-such-thing"], {"source": "ads"})
        assert client.stats()["assign_errors"] == 0
    answer = answers["checkout-button"]
    assert (answer.variant, answer.enrolled, answer.reason) == (variants["v-0"], True, "running")
    assert answer.payload == (None if answer.variant == "control" else {"color": "#0a0"})
    unknown = answers["no-such-thing"]
    assert (unknown.variant, unknown.enrolled, unknown.reason) == (
        None,
        False,
        "unknown_experiment",
    )
    # The server is sticky: asking again with other attributes changed nothing.
    expected = Counter(["control", "green"].index(variant) for variant in variants.values())
    assert shop.enrolled("checkout-button") == expected


def test_assign_without_names_lists_the_running_experiments_that_match(shop: Shop) -> None:
    shop.start("everyone")
    shop.start("germans", conditions={"country": "DE"})
    with remote(shop.url) as client:
        assert set(client.assign("v-1", attributes={"country": "FR"})) == {"everyone"}
        assert set(client.assign("v-2", attributes={"country": "DE"})) == {"everyone", "germans"}


# --- local mode agrees with the server ----------------------------------------------------------

CONDITION = {
    "$or": [
        {"country": {"$in": ["DE", "AT"]}},
        {"url": {"$regex": "^/sale/(a+)+$"}},  # backtracks in Python's re; not here
    ],
    "cart_value": {"$gte": 50},
    "device": {"$ne": "bot-farm"},
}
LOCAL_EXPERIMENTS = ["hero", "banner", "free-shipping"]


def _attributes(rng: random.Random) -> dict[str, Any]:
    attributes: dict[str, Any] = {}
    country = rng.choice(["DE", "AT", "FR", "CH", None])
    if country is not None:
        attributes["country"] = country
    cart_value = rng.choice([10, 49.99, 50, 75.5, 120, "80", None])  # "80": a type mismatch
    if cart_value is not None:
        attributes["cart_value"] = cart_value
    attributes["url"] = rng.choice(["/sale/aaaa", "/sale/" + "a" * 30 + "!", "/home"])
    attributes["device"] = rng.choice(["mobile", "desktop", "bot-farm"])
    return attributes


def _start_local_experiments(shop: Shop) -> None:
    shop.start("hero", layer={"name": "home", "size": 6000})
    shop.start(
        "banner",
        layer={"name": "home", "size": 4000},
        coverage=5000,
        variants=[{"key": "control"}, {"key": "b", "weight": 1}, {"key": "c", "weight": 2}],
    )
    shop.start("free-shipping", coverage=8000, conditions=CONDITION, segments=["country"])


def test_local_answers_equal_the_servers_for_thousands_of_fresh_visitors(shop: Shop) -> None:
    _start_local_experiments(shop)
    rng = random.Random(20240601)
    population = [(f"fresh-{n}-{rng.random():.6f}", _attributes(rng)) for n in range(VISITORS)]
    with remote(shop.url) as server, local(shop.url) as client:
        # Each visitor is new to the server, so its answer is computed, not remembered.
        with concurrent.futures.ThreadPoolExecutor(SERVER_WORKERS) as pool:
            answers = list(
                pool.map(
                    lambda item: server.assign(item[0], LOCAL_EXPERIMENTS, item[1]), population
                )
            )
        disagreements = []
        enrolled = Counter[str]()
        for (visitor, attributes), expected in zip(population, answers, strict=True):
            got = client.assign(visitor, LOCAL_EXPERIMENTS, attributes)
            for key in LOCAL_EXPERIMENTS:
                want = (expected[key].variant, expected[key].enrolled, expected[key].reason)
                have = (got[key].variant, got[key].enrolled, got[key].reason)
                if want != have:
                    disagreements.append((visitor, key, attributes, want, have))
                enrolled[key] += got[key].enrolled
        assert server.stats()["assign_errors"] == 0
    assert disagreements == []
    # Every branch was exercised: layers split the visitors, coverage and targeting leave some out.
    assert 0 < enrolled["banner"] < enrolled["hero"] < VISITORS
    assert 0 < enrolled["free-shipping"] < VISITORS * 0.5


def test_local_exposures_make_the_server_count_each_visitor_exactly_once(shop: Shop) -> None:
    _start_local_experiments(shop)
    rng = random.Random(7)
    population = [(f"v-{n}", _attributes(rng)) for n in range(600)]
    expected = {key: Counter[int]() for key in LOCAL_EXPERIMENTS}
    variant_keys = {"banner": ["control", "b", "c"]}
    with local(shop.url) as first, local(shop.url) as second:
        for visitor, attributes in population:
            for _ in range(3):  # page views: repeated calls report once
                answers = first.assign(visitor, LOCAL_EXPERIMENTS, attributes)
                first.variant("hero", visitor, attributes)
            # Another process (e.g. a second gunicorn worker) sees the same visitor.
            second.assign(visitor, LOCAL_EXPERIMENTS, attributes)
            for key, answer in answers.items():
                if answer.enrolled:
                    index = variant_keys.get(key, ["control", "green"]).index(answer.variant)
                    expected[key][index] += 1
        assert first.flush(PATIENT_TIMEOUT) and second.flush(PATIENT_TIMEOUT)
        reported = first.stats()["exposures"]
    assert reported == sum(sum(counter.values()) for counter in expected.values())
    for key in LOCAL_EXPERIMENTS:
        assert shop.enrolled(key) == expected[key], key


# --- failures and consent --------------------------------------------------------------------


class FlakyProxy:
    """An HTTP proxy on 127.0.0.1 in front of the server, failing scripted requests.

    Actions, consumed one per request to a path: ``500`` (answer 500 without forwarding),
    ``"drop"`` (close the connection without forwarding), ``"lose-response"`` (forward, then
    close the connection instead of answering: the server has the events, the client does not
    know), ``"stall"`` (wait ``stall_seconds`` before forwarding). Anything else is forwarded.
    """

    def __init__(self, target: str, stall_seconds: float = 0.0) -> None:
        self.host, port = target.removeprefix("http://").split(":")
        self.port = int(port)
        self.stall_seconds = stall_seconds
        self.scripts: dict[str, deque[Any]] = {}
        self.seen: Counter[str] = Counter()
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                proxy.handle(self)

            def do_POST(self) -> None:
                proxy.handle(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def script(self, path: str, *actions: Any) -> None:
        with self.lock:
            self.scripts.setdefault(path, deque()).extend(actions)

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else None
        path = request.path.split("?")[0]
        with self.lock:
            self.seen[path] += 1
            queue = self.scripts.get(path)
            action = queue.popleft() if queue else None
        if action == 500:
            request.send_response(500)
            request.send_header("Content-Length", "0")
            request.send_header("Connection", "close")
            request.end_headers()
            request.close_connection = True
            return
        if action == "drop":
            request.close_connection = True
            return
        if action == "stall":
            time.sleep(self.stall_seconds)
        upstream = http.client.HTTPConnection(self.host, self.port, timeout=10)
        try:
            headers = {k: v for k, v in request.headers.items() if k.lower() != "connection"}
            upstream.request(request.command, request.path, body, headers)
            response = upstream.getresponse()
            content = response.read()
        finally:
            upstream.close()
        if action == "lose-response":
            request.close_connection = True
            return
        request.send_response(response.status)
        for name, value in response.getheaders():
            if name.lower() not in ("connection", "transfer-encoding", "content-length"):
                request.send_header(name, value)
        request.send_header("Content-Length", str(len(content)))
        request.end_headers()
        request.wfile.write(content)

    def __enter__(self) -> FlakyProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def test_remote_call_keeps_its_time_limit_when_the_server_stalls(shop: Shop) -> None:
    shop.start("checkout-button")
    with FlakyProxy(shop.url, stall_seconds=2.0) as proxy:
        proxy.script("/v1/assign", "stall", "stall")
        with remote(proxy.url, timeout=0.2) as client:
            started = time.monotonic()
            variant = client.variant("checkout-button", "v-1", default="fallback")
            answers = client.assign("v-2", ["checkout-button"])
            elapsed = time.monotonic() - started
            stats = client.stats()
    assert variant == "fallback"
    assert answers["checkout-button"].reason == "unavailable"
    assert elapsed < 2 * 0.2 + 0.3  # two calls of at most 0.2 s each, plus scheduling slack
    assert stats["assign_errors"] == 2


def test_without_consent_the_server_records_nothing(shop: Shop) -> None:
    shop.start("checkout-button", segments=["source"])
    with remote(shop.url) as online, local(shop.url) as offline:
        answer = online.assign("v-1", ["checkout-button"], {"source": "ads"}, consent=False)
        online.variant("checkout-button", "v-1", consent=False)
        for visitor in ("v-2", "v-3"):
            offline.variant("checkout-button", visitor, consent=False)
            local_answer = offline.assign(visitor, ["checkout-button"], consent=False)
        assert offline.flush(PATIENT_TIMEOUT)
        assert offline.stats()["exposures"] == 0
    assert answer["checkout-button"].enrolled is False
    assert answer["checkout-button"].reason == "no_consent"
    assert local_answer["checkout-button"].reason == "no_consent"
    assert shop.counts("checkout-button") == {}
    assert shop.redis.hlen(keys.enrolments("checkout-button", 1)) == 0


# --- events exactly once ----------------------------------------------------------------------


def _enrol(shop: Shop, visitors: list[str]) -> None:
    with remote(shop.url) as client:
        for visitor in visitors:
            assert client.assign(visitor, ["checkout-button"])["checkout-button"].enrolled


def test_conversions_count_once_through_a_flaky_proxy(shop: Shop) -> None:
    shop.start("checkout-button")
    visitors = [f"v-{n}" for n in range(20)]
    _enrol(shop, visitors)
    with FlakyProxy(shop.url) as proxy:
        # Every kind of failure before the first delivery, then lost responses of batches
        # the server did record: the retries carry the same ids and must count nothing new.
        proxy.script("/v1/events", 500, "drop", "lose-response", 500, "lose-response", "drop")
        with remote(proxy.url, batch_size=15, max_retries=8) as client:
            for visitor in visitors:
                for _ in range(3):
                    client.track("add_to_cart", visitor)
            assert client.flush(PATIENT_TIMEOUT * 4)
            stats = client.stats()
    distinct_events = len(visitors) * 3
    assert stats["failed"] == 0 and stats["retried"] > 0
    assert shop.total("checkout-button", "n", "add_to_cart") == distinct_events
    assert shop.total("checkout-button", "c", "add_to_cart") == len(visitors)
    assert proxy.seen["/v1/events"] > distinct_events // 15


def test_orders_and_refunds_count_once_through_a_flaky_proxy(shop: Shop) -> None:
    shop.start("checkout-button")
    _enrol(shop, ["buyer-1", "buyer-2"])
    with FlakyProxy(shop.url) as proxy:
        proxy.script("/v1/events", "lose-response", 500, "lose-response", "drop")
        with remote(proxy.url, batch_size=1, max_retries=6) as client:
            client.order("buyer-1", "o-1", revenue="119.00", tax="19.00", currency="EUR")
            client.order("buyer-2", "o-2", revenue="59.50", tax="9.50")
            assert client.flush(PATIENT_TIMEOUT * 2)
            client.refund("o-1", "59.50")  # half of the gross: half of the 100.00 net
            assert client.flush(PATIENT_TIMEOUT * 2)
            stats = client.stats()
    assert stats["failed"] == 0 and stats["rejected"] == 0
    assert shop.total("checkout-button", "c", "purchase") == 2
    assert shop.total("checkout-button", "n", "purchase") == 2
    assert shop.total("checkout-button", "s", "purchase") == 10000 + 5000 - 5000  # cents


def test_money_events_without_the_ingest_key_are_rejected_by_the_server(shop: Shop) -> None:
    shop.start("checkout-button")
    _enrol(shop, ["buyer-1"])
    with remote(shop.url, ingest_key="not-the-key") as client:
        client.order("buyer-1", "o-1", revenue="10.00")
        client.track("add_to_cart", "buyer-1")
        assert client.flush(PATIENT_TIMEOUT)
        stats = client.stats()
    assert (stats["accepted"], stats["rejected"]) == (1, 1)
    assert shop.total("checkout-button", "n", "purchase") == 0
    assert shop.total("checkout-button", "n", "add_to_cart") == 1


# --- CUPED covariate (issue 20) ----------------------------------------------------------------


def _covariate_sums(shop: Shop, key: str) -> tuple[int, int]:
    """Visitors with a covariate and Σx (hundredths) over the variants."""
    counts = shop.counts(key)
    return (
        sum(counts.get(f"xn:{v}", 0) for v in range(2)),
        sum(counts.get(f"xs:{v}", 0) for v in range(2)),
    )


@pytest.mark.parametrize("mode", ["remote", "local"])
def test_the_covariate_reaches_the_server_in_both_modes(shop: Shop, mode: str) -> None:
    shop.start("cuped-sdk")
    make = remote if mode == "remote" else local
    with make(shop.url) as client:
        client.variant("cuped-sdk", "v-1", covariate=12.34)
        client.assign("v-2", ["cuped-sdk"], covariate=-5)
        client.assign("v-3", ["cuped-sdk"])  # none: counted as enrolled, without a covariate
        assert client.flush(PATIENT_TIMEOUT)
        assert client.stats()["invalid"] == 0
    assert sum(shop.enrolled("cuped-sdk").values()) == 3
    assert _covariate_sums(shop, "cuped-sdk") == (2, 1234 - 500)


@pytest.mark.parametrize("mode", ["remote", "local"])
@pytest.mark.parametrize("covariate", [float("nan"), "12", True, 0.1 + 0.2, 2e6, 10**400])
def test_an_invalid_covariate_is_left_out_and_the_visitor_still_gets_an_answer(
    shop: Shop, mode: str, covariate: Any
) -> None:
    shop.start("cuped-bad")
    make = remote if mode == "remote" else local
    with make(shop.url) as client:
        answer = client.assign("v-1", ["cuped-bad"], covariate=covariate)["cuped-bad"]
        assert answer.enrolled and answer.variant in ("control", "green")
        assert client.flush(PATIENT_TIMEOUT)
        assert client.stats()["invalid"] == 1
    assert sum(shop.enrolled("cuped-bad").values()) == 1
    assert _covariate_sums(shop, "cuped-bad") == (0, 0)
