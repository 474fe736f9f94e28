"""Size limits under gunicorn (`splitwerk serve`): chunked bodies 413, long URLs 414, as JSON."""

from __future__ import annotations

import http.client
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from server.api.limits import GUNICORN_REQUEST_LINE_LIMIT, MAX_BODY_BYTES, MAX_REQUEST_LINE
from tests.helpers import EDITOR, serving

CHUNK = 64 * 1024  # bytes per chunk of the chunked bodies sent here


@pytest.fixture(scope="module")
def live(redis_server: Any) -> Iterator[int]:
    """The port of a gunicorn server of the production command."""
    with (
        tempfile.TemporaryDirectory(prefix="sw-serve-") as folder,
        serving(redis_server.url, Path(folder) / "serve.log") as url,
    ):
        yield int(url.rsplit(":", 1)[1])


def send(port: int, method: str, target: str, body: Any = None, **headers: str) -> Any:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        chunked = body is not None and not isinstance(body, bytes)
        connection.request(method, target, body=body, headers=headers, encode_chunked=chunked)
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type"), response.read()
    finally:
        connection.close()


def chunks(total: int, head: bytes = b"") -> Iterator[bytes]:
    yield head
    sent = len(head)
    while sent < total:
        size = min(CHUNK, total - sent)
        yield b" " * size  # JSON whitespace: the body is valid JSON up to its size
        sent += size


@pytest.mark.parametrize("path", ["/v1/events", "/v1/assign", "/v1/experiments"])
def test_chunked_body_over_the_limit_is_413_json(live: int, path: str) -> None:
    status, content_type, body = send(
        live, "POST", path, chunks(MAX_BODY_BYTES + CHUNK, b"{}"),
        **{"Content-Type": "application/json", **EDITOR},
    )  # fmt: skip
    assert status == 413
    assert content_type == "application/json"
    assert json.loads(body)["code"] == 413


def test_chunked_body_under_the_limit_is_read_whole(live: int, redis_client: Any) -> None:
    batch = json.dumps({"events": [{"type": "conversion", "visitor": "v", "goal": "g"}]})
    head = batch.encode()
    status, _, body = send(
        live, "POST", "/v1/events", chunks(MAX_BODY_BYTES - CHUNK, head),
        **{"Content-Type": "text/plain"},
    )  # fmt: skip
    assert status == 422  # the event itself is refused (no id): the body arrived whole
    assert "events" in json.loads(body)["errors"]


def test_request_line_over_the_limit_is_414_json(live: int) -> None:
    target = "/v1/assign?visitor=" + "v" * MAX_REQUEST_LINE
    status, content_type, body = send(live, "GET", target)
    assert (status, content_type) == (414, "application/json")
    assert str(MAX_REQUEST_LINE) in json.loads(body)["message"]
    ok = "/v1/assign?visitor=v&attr.a=" + "x" * (MAX_REQUEST_LINE - 60)
    assert send(live, "GET", ok)[0] == 200


def test_request_line_beyond_gunicorn_is_its_documented_html_414(live: int) -> None:
    # documented in README ("Errors"): gunicorn answers before the app, in HTML
    target = "/v1/assign?visitor=" + "v" * GUNICORN_REQUEST_LINE_LIMIT
    status, content_type, _ = send(live, "GET", target)
    assert status == 414
    assert content_type.startswith("text/html")


def test_dockerfile_runs_gunicorn_with_the_same_request_line_limit() -> None:
    dockerfile = (Path(__file__).resolve().parents[2] / "Dockerfile").read_text()
    assert f'"--limit-request-line", "{GUNICORN_REQUEST_LINE_LIMIT}"' in dockerfile


@pytest.mark.parametrize("path", ["/v1/assign", "/v1/events"])
def test_deep_json_under_gunicorn_is_the_json_400(live: int, path: str) -> None:
    body = b'{"visitor": "v", "events": ' + b"[" * 5_000 + b"]" * 5_000 + b"}"
    status, content_type, answer = send(live, "POST", path, body, **{"Content-Type": "text/plain"})
    assert (status, content_type) == (400, "application/json")  # was gunicorn's HTML 500
    assert "nested deeper than" in json.loads(answer)["errors"]["body"][0]
