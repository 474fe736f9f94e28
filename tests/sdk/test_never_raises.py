"""Property tests: no input makes a public SDK call raise, crash the process or overrun its time.

Every call runs in a child process (``fuzz_worker.py``) against a real server, in remote mode,
remote mode with the server unreachable, and local mode. A segmentation fault or any other
death of the child fails the test with the call that caused it; hypothesis then shrinks the
input on a fresh child.
"""

from __future__ import annotations

import os
import pickle
import select
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.app import create_app
from tests.helpers import EDITOR, INGEST_TOKEN, LiveServer, app_settings, free_port

from .fuzz_worker import HEADER, TIMEOUT

ROOT = Path(__file__).resolve().parents[2]
SLACK = 1.0  # seconds beyond a call's own limit: scheduling on a shared 2-core machine
REPLY_LIMIT = 20.0  # seconds to wait for the child before calling it hung
EXAMPLES = 300  # per test: surrogates, huge values and odd types, in ~20 s for the file
TARGETS = ("remote", "remote-down", "local")
EXPERIMENTS = ["checkout-button", "targeted", "no-such-experiment"]

# Any code point, lone surrogates included (hypothesis leaves them out by default), and the
# inputs that broke the SDK before: a lone surrogate, oversized and empty strings.
ANY_TEXT = st.one_of(
    st.text(st.characters(exclude_categories=()), max_size=40),
    st.sampled_from(["v\ud800", "\udfff", "", "x" * 129, "é" * 5000, "x" * 200_000, "v-1"]),
)
JSON_LIKE = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**64)
    | st.floats()
    | st.decimals(allow_nan=True)
    | ANY_TEXT,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(ANY_TEXT, children, max_size=5)
    ),
    max_leaves=20,
)
# Attributes aimed at the experiments' conditions, plus anything else.
ATTRIBUTES = st.one_of(
    st.none(),
    st.dictionaries(
        st.sampled_from(["country", "cart_value", "url", "device"]) | ANY_TEXT,
        JSON_LIKE,
        max_size=6,
    ),
    st.just({"url": "/sale/" + "a" * 5000 + "!"}),
    st.just({"country": ["DE"] * 50_000}),
    JSON_LIKE,  # not even a mapping
)
MONEY = st.one_of(
    st.none(),
    st.decimals(allow_nan=True),
    st.integers(),
    st.floats(),
    ANY_TEXT,
    st.sampled_from(["19.99", "0", "1" * 40]),
)
EXPERIMENT = st.sampled_from(EXPERIMENTS) | ANY_TEXT
MAX_TIMEOUT = 0.3  # seconds: the largest timeout handed to flush() and friends here
# Timeouts a caller might pass by mistake: negative, NaN, not numbers. (A large one is obeyed:
# the caller asked to wait that long, so the test does not hand out any.)
TIMEOUTS = st.one_of(
    st.floats(min_value=-10.0, max_value=MAX_TIMEOUT),
    st.sampled_from([float("nan"), -float("inf"), None, "1", True, [0.1]]),
)
VISITOR = st.sampled_from(["v-1", "v-2", "v\ud800"]) | ANY_TEXT | JSON_LIKE
FUZZ = settings(max_examples=EXAMPLES, suppress_health_check=[HealthCheck.function_scoped_fixture])


class Worker:
    """The child process that runs the calls; restarted after it dies."""

    def __init__(self, url: str, dead_url: str, spool: Path) -> None:
        self.command = [
            sys.executable,
            "-m",
            "tests.sdk.fuzz_worker",
            url,
            dead_url,
            INGEST_TOKEN,
            str(spool),
        ]
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            self.command,
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        assert process.stdout is not None
        assert process.stdout.readline() == b"ready\n", "the worker did not start"
        self.process = process
        return process

    def call(self, target: str, method: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        process = self.process if self.process is not None else self.start()
        assert process.stdin is not None and process.stdout is not None
        request = pickle.dumps((target, method, args, kwargs))
        what = f"{target}.{method}{args!r:.300}{kwargs!r:.200}"
        try:
            process.stdin.write(HEADER.pack(len(request)) + request)
            process.stdin.flush()
            ready, _, _ = select.select([process.stdout], [], [], REPLY_LIMIT)
            if not ready:
                raise TimeoutError
            header = process.stdout.read(HEADER.size)
            if len(header) < HEADER.size:
                raise EOFError
            reply: dict[str, Any] = pickle.loads(process.stdout.read(HEADER.unpack(header)[0]))
        except (OSError, EOFError) as error:
            process.kill()
            code = process.wait()
            self.process = None
            pytest.fail(f"the SDK process died ({code}, {error!r}) on {what}")
        assert reply["error"] is None, f"{what} raised {reply['error']}"
        return reply

    def stop(self) -> None:
        if self.process is not None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            self.process.wait(10)


@pytest.fixture(scope="module")
def worker(redis_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    redis_server.client().flushall()
    app = create_app(app_settings(redis_server.url))
    admin = app.test_client()
    variants = [{"key": "control"}, {"key": "green"}]
    for key, extra in (
        ("checkout-button", {"segments": ["device"]}),
        (
            "targeted",
            {"conditions": {"country": {"$in": ["DE"]}, "url": {"$regex": "^/sale/(a+)+$"}}},
        ),
    ):
        body = {
            "key": key,
            "name": key,
            "variants": variants,
            "goals": [{"key": "purchase", "kind": "revenue", "primary": True}],
            **extra,
        }
        assert admin.post("/v1/experiments", json=body, headers=EDITOR).status_code == 201
        assert admin.post(f"/v1/experiments/{key}/start", headers=EDITOR).status_code == 200
    with LiveServer(app) as server:
        spool = tmp_path_factory.mktemp("fuzz-spool")
        child = Worker(server.url, f"http://127.0.0.1:{free_port()}", spool)
        yield child
        child.stop()


def _seconds(timeout: Any) -> float:
    """The time a call given ``timeout`` may take: that many seconds if it is a sane number."""
    is_number = isinstance(timeout, (int, float)) and not isinstance(timeout, bool)
    return float(timeout) if is_number and 0 <= timeout <= MAX_TIMEOUT else 0.0


def _within(reply: dict[str, Any], limit: float) -> None:
    assert reply["elapsed"] <= limit + SLACK, f"took {reply['elapsed']:.2f}s, limit {limit}s"


@FUZZ
@given(
    target=st.sampled_from(TARGETS),
    experiment=EXPERIMENT,
    visitor=VISITOR,
    attributes=ATTRIBUTES,
    default=st.none() | ANY_TEXT | JSON_LIKE,
    consent=st.booleans() | JSON_LIKE,
    force=st.none() | st.sampled_from(["green", "control"]) | ANY_TEXT,
)
def test_variant_answers_a_string_in_time_whatever_it_is_given(
    worker: Worker,
    target: str,
    experiment: Any,
    visitor: Any,
    attributes: Any,
    default: Any,
    consent: Any,
    force: Any,
) -> None:
    reply = worker.call(
        target, "variant", experiment, visitor, attributes, default, consent=consent, force=force
    )
    assert reply["type"] == "str"
    _within(reply, TIMEOUT)


@FUZZ
@given(
    target=st.sampled_from(TARGETS),
    visitor=VISITOR,
    experiments=st.none() | st.lists(EXPERIMENT, max_size=4) | JSON_LIKE,
    attributes=ATTRIBUTES,
    consent=st.booleans() | JSON_LIKE,
    force=st.none() | st.dictionaries(EXPERIMENT, ANY_TEXT, max_size=3) | JSON_LIKE,
)
def test_assign_answers_a_dict_in_time_whatever_it_is_given(
    worker: Worker,
    target: str,
    visitor: Any,
    experiments: Any,
    attributes: Any,
    consent: Any,
    force: Any,
) -> None:
    reply = worker.call(
        target, "assign", visitor, experiments, attributes, consent=consent, force=force
    )
    assert reply["type"] == "dict"
    _within(reply, TIMEOUT)


@FUZZ
@given(
    target=st.sampled_from(TARGETS),
    call=st.one_of(
        st.tuples(
            st.just("track"),
            st.tuples(ANY_TEXT | JSON_LIKE, VISITOR, MONEY),
            st.fixed_dictionaries({}, optional={"ts": JSON_LIKE}),
        ),
        st.tuples(
            st.just("order"),
            st.tuples(VISITOR, ANY_TEXT | JSON_LIKE, MONEY),
            st.fixed_dictionaries(
                {},
                optional={
                    "tax": MONEY,
                    "shipping": MONEY,
                    "discount": MONEY,
                    "currency": ANY_TEXT | JSON_LIKE,
                    "goal": ANY_TEXT | JSON_LIKE,
                },
            ),
        ),
        st.tuples(st.just("refund"), st.tuples(ANY_TEXT | JSON_LIKE, MONEY), st.just({})),
        st.tuples(st.just("flush"), st.tuples(TIMEOUTS), st.just({})),
        st.tuples(st.just("wait_for_config"), st.tuples(TIMEOUTS), st.just({})),
        st.tuples(st.just("close_on_sigterm"), st.tuples(TIMEOUTS), st.just({})),
        st.tuples(st.just("stats"), st.just(()), st.just({})),
    ),
)
def test_events_and_housekeeping_return_at_once_whatever_they_are_given(
    worker: Worker, target: str, call: tuple[str, tuple[Any, ...], dict[str, Any]]
) -> None:
    method, args, kwargs = call
    reply = worker.call(target, method, *args, **kwargs)
    expected = {"track": "NoneType", "order": "NoneType", "refund": "NoneType"}
    if method in expected:
        assert reply["type"] == expected[method]
        _within(reply, 0.0)  # the caller's thread never waits on the network for an event
    elif method in ("flush", "wait_for_config", "close_on_sigterm"):
        assert reply["type"] == "bool"
        _within(reply, _seconds(args[0]))
    else:
        assert reply["type"] == "dict"


@FUZZ
@given(
    cookie=ANY_TEXT
    | st.sampled_from(
        ["splitwerk_vid=abc", "splitwerk_vid=\ud800", "a=b; splitwerk_vid=" + "x" * 5000]
    ),
    consent=st.booleans() | st.just("consent check failed") | JSON_LIKE,
)
def test_visitor_middlewares_answer_whatever_cookie_they_get(
    worker: Worker, cookie: str, consent: Any
) -> None:
    worker.call("wsgi", "", cookie, consent)
    worker.call("asgi", "", cookie.encode("utf-8", "surrogatepass"), consent)


@FUZZ
@given(
    state=JSON_LIKE,
    cookie=ANY_TEXT,
    consent=st.booleans() | st.just("consent check failed") | JSON_LIKE,
)
def test_visitor_readers_and_the_django_middleware_answer_whatever_the_request_holds(
    worker: Worker, state: Any, cookie: str, consent: Any
) -> None:
    worker.call("readers", "", state, cookie, consent)


def test_a_lone_surrogate_visitor_gets_the_fallback_in_local_mode(worker: Worker) -> None:
    """The reported crash: mmh3 was handed "v\\ud800" and the process died (SIGSEGV)."""
    assert worker.call("local", "variant", "checkout-button", "v\ud800")["value"] == "control"
    reasons = worker.call("local", "assign", "v\ud800", ["checkout-button"])["reasons"]
    assert reasons == {"checkout-button": "invalid_visitor"}


OPTION_VALUES = st.one_of(JSON_LIKE, st.sampled_from([0, 1, 0.05, -1, float("inf"), 10**30]))


@FUZZ
@given(
    url=st.sampled_from(["http://127.0.0.1:9", "https://x.example/p", "ftp://x", ""]) | ANY_TEXT,
    options=st.dictionaries(
        st.sampled_from(
            [
                "timeout",
                "ingest_key",
                "mode",
                "poll_interval",
                "flush_interval",
                "batch_size",
                "max_queue",
                "retry_deadline",
                "max_retries",
                "retry_backoff",
                "spool_dir",
                "background_timeout",
                "close_timeout",
                "handle_sigterm",
                "failure_threshold",
                "circuit_cooldown",
                "remembered_assignments",
            ]
        ),
        OPTION_VALUES | st.sampled_from(["local", "remote"]),
        max_size=4,
    ),
)
def test_the_constructor_raises_config_error_or_nothing(
    worker: Worker, url: Any, options: dict[str, Any]
) -> None:
    options.pop("spool_dir", None)  # a path made of arbitrary text could land anywhere
    reply = worker.call("construct", "", url, **options)
    assert reply["value"] in ("Client", "ConfigError")


@pytest.mark.parametrize("target", TARGETS)
def test_close_with_odd_timeouts_then_every_call_still_answers(worker: Worker, target: str) -> None:
    for timeout in (None, float("nan"), -1, "soon", 10**400, 0.1):
        _within(worker.call(target, "close", timeout), 0.1)
    assert worker.call(target, "variant", "checkout-button", "v-1")["type"] == "str"
    assert worker.call(target, "assign", "v-1")["type"] == "dict"
    worker.call(target, "order", "v-1", "o-after-close", "1.00")
    assert worker.call(target, "flush", 0.1)["type"] == "bool"
    worker.call(target, "__exit__", None, None, None)
