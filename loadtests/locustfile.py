"""A shop's traffic against a Splitwerk server on 127.0.0.1, failing by exit code on thresholds.

Run (server started and seeded first, see loadtests/README.md)::

    .venv/bin/locust -f loadtests/locustfile.py --config loadtests/locust.conf

Each simulated user is one shopper's browser session: product page views that call
/v1/assign (new and returning visitors), SDK polls of /v1/config with If-None-Match, and the
shop's back end sending conversions and orders to /v1/events in batches. At the end the run
fails (exit code 1) when more than ``--max-failure-ratio`` of the requests failed or a
request type's p99 exceeds ``--max-p99-ms``.

So that the run measures the server and not the load generator's own bursts:

- arrivals are staggered: locust starts ``spawn-rate`` users in the same instant every second,
  so each shopper waits a random part of the think time before the first click, as visitors
  arriving one by one do;
- events are batched the way the shop back end's SDK batches them: one queue per locust
  process that every shopper adds to, sent when it holds ``--event-batch-size`` events or
  when its oldest event has waited ``--event-flush-interval`` (jittered ±20 %), not per
  shopper and not all at the end;
- thresholds are judged once, by the process that holds the whole run's statistics: the
  master under ``--processes`` (the workers' own statistics are emptied at every report).

``--request-log PATH`` writes one JSON line per request (start time, name, response time,
events, distinct visitors and orders of a batch, whether it was sent at the end) for analysis.
"""

from __future__ import annotations

import json
import random
import time
import urllib.parse
import uuid
from pathlib import Path
from typing import IO, Any

import gevent
from locust import FastHttpUser, between, events, task
from locust.env import Environment
from locust.runners import WorkerRunner
from seed import EXPERIMENT_KEYS

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})  # the only targets allowed

# Where shop visitors come from, with weights in percent of visits (a mid-size fashion shop:
# search and social lead, the newsletter brings few but loyal buyers).
SOURCES = {
    "search": 34,
    "facebook": 20,
    "instagram": 18,
    "direct": 14,
    "youtube": 8,
    "newsletter": 6,
}
DEVICES = {"mobile": 65, "desktop": 30, "tablet": 5}  # share of visits per device, percent
NEW_VISITOR_SHARE = 0.7  # 70 % of product page views come from visitors never seen before
RETURNING_POOL = 5_000  # ids that returning visitors are drawn from (per locust process)
MULTI_EXPERIMENT_SHARE = 0.2  # pages that render several experiments name them in one request
ADD_TO_CART_RATE = 0.08  # share of product page views followed by an add-to-cart
ORDER_RATE = 0.02  # share of product page views that end in an order
THINK_TIME = (0.5, 3.0)  # seconds a shopper looks at a page before the next click
EVENT_BATCH_SIZE = 100  # events per /v1/events request: the SDK's default batch_size
EVENT_FLUSH_INTERVAL = 5.0  # seconds the oldest queued event waits: the SDK's flush_interval
FLUSH_JITTER = 0.2  # ±20 % on the flush interval, as the SDK (processes do not send in step)
USER_AGENT = (  # a real browser's, so that bot detection runs as in production
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)

# Whether /v1/events exists; probed once per run (it is new, and the run must not fail on it).
events_state: dict[str, bool] = {"is_available": True}


@events.init_command_line_parser.add_listener
def _add_options(parser: Any) -> None:
    parser.add_argument(
        "--max-failure-ratio",
        type=float,
        default=0.01,
        help="fail the run above this share of failed requests (default 1 %%)",
    )
    parser.add_argument(
        "--max-p99-ms",
        type=float,
        default=50.0,
        help="fail the run when any request type's p99 exceeds this many milliseconds",
    )
    parser.add_argument(
        "--event-batch-size",
        type=int,
        default=EVENT_BATCH_SIZE,
        help="events per /v1/events request, as the SDK's batch_size (default %(default)s)",
    )
    parser.add_argument(
        "--event-flush-interval",
        type=float,
        default=EVENT_FLUSH_INTERVAL,
        help="seconds before queued events are sent, as the SDK's flush_interval "
        "(default %(default)s)",
    )
    parser.add_argument(
        "--request-log",
        default="",
        help="write one JSON line per request to this file (default: none)",
    )
    parser.add_argument(
        "--ingest-key",
        default="",
        env_var="LOCUST_INGEST_KEY",
        help="token with the ingest role, sent as X-Splitwerk-Ingest-Key with orders",
    )


@events.test_start.add_listener
def _check_target(environment: Environment, **_: Any) -> None:
    host = urllib.parse.urlsplit(environment.host or "").hostname
    if host not in LOOPBACK_HOSTS:
        raise SystemExit(f"locustfile: refusing to load {environment.host!r}: loopback only")


# The parsed options and the --request-log file of this process (each --processes worker
# writes its own lines to the same file, appending whole lines).
process_state: dict[str, Any] = {}


@events.init.add_listener
def _keep_options(environment: Environment, **_: Any) -> None:
    process_state["options"] = environment.parsed_options


@events.request.add_listener
def _log_request(
    name: str, response_time: float, start_time: float, context: dict[str, Any], **_: Any
) -> None:
    """One JSON line per request when --request-log is given (times in seconds)."""
    path = getattr(process_state.get("options"), "request_log", "")
    if not path:
        return
    if "log" not in process_state:
        process_state["log"] = Path(path).open("a", encoding="utf-8", buffering=1)  # noqa: SIM115
    line = {"start": start_time, "name": name, "seconds": response_time / 1000, **context}
    process_state["log"].write(json.dumps(line) + "\n")


@events.quitting.add_listener
def _close_request_log(**_: Any) -> None:
    log: IO[str] | None = process_state.pop("log", None)
    if log is not None:
        log.close()


@events.quitting.add_listener
def _check_thresholds(environment: Environment, **_: Any) -> None:
    """Set a non-zero exit code when the run missed a threshold, and say which.

    Under ``--processes`` (or ``--master``/``--worker``) only the master holds the run's
    statistics; a worker's are emptied at every report, so workers do not judge.
    """
    if isinstance(environment.runner, WorkerRunner):
        return
    options = environment.parsed_options
    total = environment.stats.total
    problems = []
    if total.num_requests == 0:
        problems.append("no request was made")
    elif total.fail_ratio > options.max_failure_ratio:
        problems.append(f"failure ratio {total.fail_ratio:.2%} > {options.max_failure_ratio:.2%}")
    for entry in environment.stats.entries.values():
        p99 = entry.get_response_time_percentile(0.99)
        if entry.num_requests and p99 > options.max_p99_ms:
            problems.append(f"p99 of {entry.name} {p99:.0f} ms > {options.max_p99_ms:g} ms")
    for problem in problems:
        print(f"THRESHOLD MISSED: {problem}")
    if problems:
        environment.process_exit_code = 1
    else:
        print(f"thresholds met ({total.num_requests} requests)")


def _weighted(choices: dict[str, int]) -> str:
    return random.choices(list(choices), weights=list(choices.values()))[0]


class EventQueue:
    """The shop back end's queue of events, shared by every shopper of one locust process.

    Sent as the SDK sends: a full batch at once, otherwise when the oldest event has waited
    the flush interval (jittered, so that several processes do not send in step).
    """

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.deadline = 0.0  # monotonic seconds when the oldest queued event is due

    def add(self, event: dict[str, Any], flush_interval: float) -> None:
        """Queue one event; the first of a batch starts the flush clock."""
        if not self.events:
            jitter = random.uniform(1 - FLUSH_JITTER, 1 + FLUSH_JITTER)
            self.deadline = time.monotonic() + flush_interval * jitter
        self.events.append(event)

    def take(self, batch_size: int, *, is_due_anyway: bool = False) -> list[dict[str, Any]]:
        """The next batch if it is due (full, or waited long enough), else nothing."""
        is_due = len(self.events) >= batch_size or time.monotonic() >= self.deadline
        if not self.events or not (is_due or is_due_anyway):
            return []
        # what is left over a full batch keeps the deadline of the oldest: due at once
        batch, self.events = self.events[:batch_size], self.events[batch_size:]
        return batch


event_queue = EventQueue()  # this process's shop back end (module state: one per process)


class Shopper(FastHttpUser):
    """One browser session in the shop, with the shop back end's event calls for it."""

    wait_time = between(*THINK_TIME)

    def on_start(self) -> None:
        """Decide who this shopper is (new or returning, where from, on which device), then
        arrive at a random moment of the first think time, not with the whole spawn batch."""
        if random.random() < NEW_VISITOR_SHARE:
            self.visitor = f"v-{uuid.uuid4().hex}"
        else:
            self.visitor = f"r-{random.randrange(RETURNING_POOL)}"
        self.attributes = {"source": _weighted(SOURCES), "device": _weighted(DEVICES)}
        self.config_etag = ""
        gevent.sleep(random.uniform(0, THINK_TIME[1]))

    @task(10)
    def view_product(self) -> None:
        """A product page: one experiment usually, several on richer pages."""
        if random.random() < MULTI_EXPERIMENT_SHARE:
            experiments = EXPERIMENT_KEYS
            name = f"/v1/assign [{len(experiments)} experiments]"
        else:
            experiments = EXPERIMENT_KEYS[:1]
            name = "/v1/assign [1 experiment]"
        body = {"visitor": self.visitor, "experiments": experiments, "attributes": self.attributes}
        with self.client.post(
            "/v1/assign",
            json=body,
            headers={"User-Agent": USER_AGENT},
            name=name,
            catch_response=True,
        ) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}")
            elif set(response.json()["assignments"]) != set(experiments):
                response.failure("answer lacks an experiment")
        self._shop(random.random())
        self.send_events(event_queue.take(self.environment.parsed_options.event_batch_size))

    @task(1)
    def poll_config(self) -> None:
        """An SDK revalidating its configuration; mostly answered 304."""
        headers = {"If-None-Match": self.config_etag} if self.config_etag else {}
        with self.client.get(
            "/v1/config", headers=headers, name="/v1/config", catch_response=True
        ) as response:
            if response.status_code in (200, 304):
                self.config_etag = response.headers.get("ETag", self.config_etag)
                response.success()
            else:
                response.failure(f"HTTP {response.status_code}")

    def _shop(self, chance: float) -> None:
        """Queue what the shopper did after the page view in the shop back end's queue."""
        interval = self.environment.parsed_options.event_flush_interval
        if chance < ORDER_RATE:
            order_id = f"o-{uuid.uuid4().hex[:12]}"
            event = {
                "type": "order",
                "id": str(uuid.uuid4()),
                "visitor": self.visitor,
                "order_id": order_id,
                "revenue": "49.90",
                "cost_of_goods": "20.00",
                "shipping": "4.90",
                "payment_fee": "0.95",
                "tax": "7.97",
            }
            event_queue.add(event, interval)
        elif chance < ORDER_RATE + ADD_TO_CART_RATE:
            event = {
                "type": "conversion",
                "id": str(uuid.uuid4()),
                "visitor": self.visitor,
                "goal": "add_to_cart",
            }
            event_queue.add(event, interval)

    def on_stop(self) -> None:
        """Send what the queue still holds, like the SDK's flush at exit (once per process:
        the first shopper to stop takes it all)."""
        size = self.environment.parsed_options.event_batch_size
        while batch := event_queue.take(size, is_due_anyway=True):
            self.send_events(batch, is_final=True)

    def send_events(self, batch: list[dict[str, Any]], *, is_final: bool = False) -> None:
        """POST one batch of the queue (skipped while /v1/events does not exist)."""
        if not batch or not events_state["is_available"]:
            return
        headers = {"X-Splitwerk-Ingest-Key": self.environment.parsed_options.ingest_key}
        context = {
            "events": len(batch),
            "visitors": len({event["visitor"] for event in batch}),
            "orders": sum(1 for event in batch if event["type"] == "order"),
            "is_final": is_final,
        }
        with self.client.post(
            "/v1/events",
            json={"events": batch},
            headers=headers,
            catch_response=True,
            context=context,
        ) as response:
            if response.status_code in (404, 405):
                # not built yet: say so once and leave it out of this run's figures
                events_state["is_available"] = False
                print("locustfile: /v1/events is not there yet; events are skipped this run")
                response.success()
            elif response.status_code >= 300:
                response.failure(f"HTTP {response.status_code}")
