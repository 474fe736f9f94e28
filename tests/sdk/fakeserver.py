"""A scriptable fake Splitwerk server on 127.0.0.1 for the SDK's network tests."""

import json
import threading
import time
from collections import Counter, defaultdict, deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

VECTORS_PATH = Path(__file__).resolve().parents[2] / "spec" / "assignment-vectors.json"

CONFIG: dict[str, Any] = {
    "spec": "assignment v1",
    "version": "17",
    "experiments": [
        {
            "key": "checkout-button",
            "status": "running",
            "salt": "checkout-button",
            "variants": [
                {"key": "control", "allocation": 5000, "payload": None},
                {"key": "green", "allocation": 5000, "payload": {"color": "green"}},
            ],
            "coverage": 10000,
            "layer": None,
            "winner": None,
            "conditions": None,
            "segments": ["source"],
            "goals": ["purchase"],
        },
        {
            "key": "facebook-only",
            "status": "running",
            "salt": "facebook-only",
            "variants": [
                {"key": "base", "allocation": 0, "payload": None},
                {"key": "banner", "allocation": 10000, "payload": {"banner": True}},
            ],
            "coverage": 10000,
            "layer": None,
            "winner": None,
            "conditions": {"source": "facebook"},
            "segments": [],
            "goals": [],
        },
        {
            "key": "old-test",
            "status": "stopped",
            "salt": "old-test",
            "variants": [
                {"key": "control", "allocation": 5000, "payload": None},
                {"key": "b", "allocation": 5000, "payload": None},
            ],
            "coverage": 10000,
            "layer": None,
            "winner": "b",
            "conditions": None,
            "segments": [],
            "goals": [],
        },
    ],
}


class FakeServer:
    """Answers like the Splitwerk server, unless a scripted action for the path says otherwise.

    Actions (consumed one per request, per path): an int status, ``(status, headers)``,
    ``"stall"`` (sleep ``stall_seconds``, then answer normally), ``"close"`` (drop the
    connection without answering), ``"process-then-500"`` (record the events, then fail:
    the response is lost, so the client retries events the server already has).
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.scripts: dict[str, deque[Any]] = defaultdict(deque)
        self.requests: list[tuple[str, str, dict[str, str], Any]] = []
        self.event_deliveries: Counter[str] = Counter()
        self.events: dict[str, dict[str, Any]] = {}
        self.config = json.loads(json.dumps(CONFIG))
        self.etag = '"17"'
        self.stall_seconds = 0.5
        self.connections = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                with server.lock:
                    server.connections += 1

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                server.handle(self, "GET")

            def do_POST(self) -> None:
                server.handle(self, "POST")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.handle_error = lambda request, address: None  # type: ignore[method-assign]  # clients that time out leave broken pipes
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def script(self, path: str, *actions: Any) -> None:
        with self.lock:
            self.scripts[path].extend(actions)

    def count(self, path: str) -> int:
        with self.lock:
            return sum(1 for _, request_path, _, _ in self.requests if request_path == path)

    def bodies(self, path: str) -> list[Any]:
        with self.lock:
            return [body for _, request_path, _, body in self.requests if request_path == path]

    def unique_events(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.events.values())

    def handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        path = handler.path
        with self.lock:
            self.requests.append((method, path, dict(handler.headers), body))
            action = self.scripts[path].popleft() if self.scripts[path] else None
        if action == "close":
            handler.close_connection = True
            return
        if action == "stall":
            time.sleep(self.stall_seconds)
        if action == "process-then-500":
            self.record_events(body)
            action = 500
        if isinstance(action, int):
            self.reply(handler, action, {"code": action})
            return
        if isinstance(action, tuple):
            self.reply(handler, action[0], {"code": action[0]}, action[1])
            return
        if path == "/v1/config":
            if handler.headers.get("If-None-Match") == self.etag:
                self.reply(handler, 304, None, {"ETag": self.etag})
            else:
                self.reply(handler, 200, self.config, {"ETag": self.etag})
        elif path == "/v1/assign":
            self.reply(handler, 200, self.assign(body))
        elif path == "/v1/events":
            self.reply(handler, 200, self.record_events(body))
        else:
            self.reply(handler, 404, {"code": 404})

    def assign(self, body: dict[str, Any]) -> dict[str, Any]:
        known = {experiment["key"]: experiment for experiment in self.config["experiments"]}
        assignments = {}
        for key in body.get("experiments") or list(known):
            if key in known:
                variant = known[key]["variants"][-1]
                has_consent = body.get("consent", True)
                assignments[key] = {
                    "variant": variant["key"],
                    "payload": variant["payload"],
                    "enrolled": has_consent,
                    "reason": "running" if has_consent else "no_consent",
                }
            else:
                assignments[key] = {
                    "variant": None,
                    "payload": None,
                    "enrolled": False,
                    "reason": "unknown_experiment",
                }
        return {"visitor": body["visitor"], "recorded": True, "assignments": assignments}

    def record_events(self, body: dict[str, Any]) -> dict[str, Any]:
        accepted = duplicate = 0
        results = []
        with self.lock:
            for event in body["events"]:
                self.event_deliveries[event["id"]] += 1
                if event["id"] in self.events:
                    duplicate += 1
                    results.append({"status": "duplicate"})
                else:
                    self.events[event["id"]] = event
                    accepted += 1
                    results.append({"status": "accepted"})
        return {
            "accepted": accepted,
            "duplicate": duplicate,
            "ignored": 0,
            "rejected": 0,
            "results": results,
        }

    def reply(
        self,
        handler: BaseHTTPRequestHandler,
        status: int,
        document: Any,
        headers: dict[str, str] | None = None,
    ) -> None:
        payload = json.dumps(document).encode() if document is not None else b""
        handler.send_response(status)
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        if status != 304:
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        if status != 304:
            handler.wfile.write(payload)

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def wait_until(condition: Any, timeout: float = 3.0) -> bool:
    """Poll ``condition`` until it is true or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return bool(condition())
