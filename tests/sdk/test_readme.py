"""Every Python example of sdk/README.md runs as written against `make run`'s server.

The server is started the way ``make run`` starts it (``splitwerk serve --dev``: embedded
Redis, dev tokens, the demo experiment), on a free port instead of 8000. The examples are run
in order in one namespace, as a reader pasting them into one session would, with the two
documented replacements: ``http://127.0.0.1:8000`` becomes this server's URL, and the
placeholder ``"…"`` the ingest key the server wrote to its data folder.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from splitwerk import Client
from tests.helpers import free_port

from .serverprocess import ROOT, START_TIMEOUT, ServerProcess

README = ROOT / "sdk" / "README.md"
MAKE_RUN_URL = "http://127.0.0.1:8000"  # what the README's examples name
PLACEHOLDER = '"…"'  # the README's ingest key placeholder
BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)
# Examples for hosts that only exist inside them: compiled, not run (listed, so that no
# other example can fail quietly).
COMPILE_ONLY = {"from celery.signals import worker_process_shutdown": "needs Celery"}
pytestmark = pytest.mark.slow


def examples() -> list[str]:
    return BLOCK.findall(README.read_text())


@pytest.fixture(scope="module")
def make_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """``splitwerk serve --dev`` on a free port; yields its URL and its ingest key."""
    data = tmp_path_factory.mktemp("make-run")
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SPLITWERK_")}
    environment["SPLITWERK_DATA_DIR"] = str(data)
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("splitwerk")), "serve", "--dev", "--port", str(port)],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    probe = ServerProcess("", port)  # only its is_up() probe
    try:
        deadline = time.monotonic() + START_TIMEOUT * 2  # the demo traffic takes a while
        while not probe.is_up():
            assert process.poll() is None, "splitwerk serve --dev exited"
            assert time.monotonic() < deadline, "splitwerk serve --dev did not start"
            time.sleep(0.1)
        yield probe.url, (data / "dev-ingest-token").read_text().strip()
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)


def test_the_readme_names_make_runs_port_only() -> None:
    text = README.read_text()
    assert ":5000" not in text
    assert all(MAKE_RUN_URL in block for block in examples() if "Client(" in block)


def test_every_python_example_runs_as_written(
    make_run: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, ingest_key = make_run
    monkeypatch.chdir(tmp_path)  # the spool example creates its folder here
    namespace: dict[str, Any] = {"__name__": "readme"}
    clients: list[Client] = []
    blocks = examples()
    assert len(blocks) >= 8
    for number, block in enumerate(blocks, start=1):
        code = block.replace(MAKE_RUN_URL, url).replace(PLACEHOLDER, repr(ingest_key))
        compiled = compile(code, f"sdk/README.md example {number}", "exec")
        if any(marker in block for marker in COMPILE_ONLY):
            continue
        exec(compiled, namespace)
        clients.extend(
            value
            for value in namespace.values()
            if isinstance(value, Client) and value not in clients
        )
        if number == 1:
            # The quick start's calls reached the server: a real answer, events accepted.
            client = namespace["client"]
            assert namespace["variant"] in ("control", "green-note")
            assert client.flush(10.0)
            stats = client.stats()
            assert stats["assign_errors"] == 0, stats
            assert stats["sent"] == 3 and stats["rejected"] == 0 and stats["failed"] == 0, stats
        if number == 2:
            answer = namespace["answers"]["checkout-button"]
            assert answer.reason in ("running", "not_targeted"), answer
    for client in clients:
        assert client.stats()["assign_errors"] == 0
        client.close(5.0)
