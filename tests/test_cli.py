"""The splitwerk command: serve with embedded Redis end to end, experiments against a server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from server.app import create_app
from server.cli import main
from tests.helpers import EDITOR_TOKEN, LiveServer, app_settings, free_port

EXPERIMENT_YAML = """\
key: hero-image
name: Hero image with a model
variants:
  - {key: control}
  - {key: model, payload: {src: /img/model.jpg}}
goals:
  - {key: purchase, primary: true}
"""


def _get(url: str, token: str | None = None) -> Any:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def _wait_until_up(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        try:
            _get(url + "/readyz")
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError("server did not come up")


def _serve(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith("SPLITWERK_")
    }
    environment["SPLITWERK_DATA_DIR"] = str(data_dir)
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "server.cli",
            "serve",
            "--dev",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=Path(__file__).resolve().parents[1],
    )


def _stop(process: subprocess.Popen[bytes], how: signal.Signals = signal.SIGINT) -> str:
    process.send_signal(how)
    output, _ = process.communicate(timeout=30)
    return output.decode()


@pytest.mark.slow
def test_serve_dev_creates_demo_prints_token_and_keeps_data_across_restarts() -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="sw-cli-"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = _serve(data_dir, port)
    try:
        _wait_until_up(url, process)
        config = _get(url + "/v1/config")
        assert [e["key"] for e in config["experiments"]] == ["checkout-button"]
        token = (data_dir / "dev-token").read_text().strip()
        request = urllib.request.Request(
            url + "/v1/experiments/checkout-button/pause", method="POST"
        )
        request.add_header("Authorization", f"Bearer {token}")
        urllib.request.urlopen(request, timeout=5).close()
    finally:
        output = _stop(process)
    assert f"admin token (editor): {token}" in output
    ingest = (data_dir / "dev-ingest-token").read_text().strip()
    assert f"ingest key (orders and refunds): {ingest}" in output
    assert f"{url}/dashboard/" in output
    assert process.returncode == 0

    restarted = _serve(data_dir, port)
    try:
        _wait_until_up(url, restarted)
        experiments = _get(url + "/v1/experiments", token)["items"]
        assert [(e["key"], e["status"]) for e in experiments] == [("checkout-button", "paused")]
    finally:
        output = _stop(restarted, signal.SIGTERM)  # as systemd, docker and CI stop services
    assert "created the demo experiment" not in output
    leftover = subprocess.run(
        ["pgrep", "-f", str(data_dir)], capture_output=True, text=True, check=False
    )
    assert leftover.stdout.strip() == "", "embedded redis-server still running"


def test_experiments_commands_against_a_running_server(
    redis_server: Any, redis_client: Any, tmp_path: Path
) -> None:
    app = create_app(app_settings(redis_server.url))
    definition = tmp_path / "hero.yaml"
    definition.write_text(EXPERIMENT_YAML)
    runner = CliRunner()
    with LiveServer(app) as server:
        base = ["experiments", "--url", server.url, "--token", EDITOR_TOKEN]
        created = runner.invoke(main, [*base, "create", "-f", str(definition)])
        assert created.exit_code == 0, created.output
        assert "hero-image: Hero image with a model" in created.output
        assert "50.00 %" in created.output
        started = runner.invoke(main, [*base, "start", "hero-image"])
        assert "status running" in started.output
        listed = runner.invoke(main, [*base, "list"])
        assert "hero-image" in listed.output
        assert "running" in listed.output
        stopped = runner.invoke(main, [*base, "stop", "hero-image", "--winner", "model"])
        assert "winner model" in stopped.output
        refused = runner.invoke(main, [*base, "start", "hero-image"])
        assert refused.exit_code != 0
        assert "409" in refused.output
        unauthorised = runner.invoke(
            main, ["experiments", "--url", server.url, "--token", "wrong", "list"]
        )
        assert unauthorised.exit_code != 0
        assert "401" in unauthorised.output


def test_experiments_command_reports_unreachable_server() -> None:
    result = CliRunner().invoke(
        main, ["experiments", "--url", f"http://127.0.0.1:{free_port()}", "list"]
    )
    assert result.exit_code != 0
    assert "cannot reach" in result.output


def test_hash_token_prints_a_sha256() -> None:
    result = CliRunner().invoke(main, ["hash-token", "abc"])
    assert result.output.strip() == (
        "sha256: ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )
