"""The splitwerk command: serve with embedded Redis end to end, experiments against a server."""

from __future__ import annotations

import json
import os
import signal
import socket
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


def _serve(data_dir: Path, port: int, *, new_session: bool = False) -> subprocess.Popen[bytes]:
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
        start_new_session=new_session,
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


@pytest.fixture
def served(redis_server: Any, redis_client: Any) -> Any:
    """A live server with the suite's tokens and one draft experiment."""
    app = create_app(app_settings(redis_server.url))
    with LiveServer(app) as server:
        request = urllib.request.Request(
            server.url + "/v1/experiments",
            data=json.dumps(
                {"key": "hero-image", "name": "Hero", "variants": [{"key": "a"}, {"key": "b"}]}
            ).encode(),
            method="POST",
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {EDITOR_TOKEN}"},
        )
        urllib.request.urlopen(request, timeout=5).close()
        yield server


@pytest.mark.parametrize(
    "arguments",
    [
        ["experiments", "list", "--url", "{url}", "--token", "{token}"],
        ["--url", "{url}", "--token", "{token}", "experiments", "list"],
        ["experiments", "--url", "{url}", "--token", "{token}", "list"],
        ["--url", "{url}", "experiments", "list", "--token", "{token}"],
    ],
    ids=["after-the-command", "before-the-group", "between", "mixed"],
)
def test_client_options_are_accepted_in_any_position(served: Any, arguments: list[str]) -> None:
    filled = [part.format(url=served.url, token=EDITOR_TOKEN) for part in arguments]
    result = CliRunner().invoke(main, filled)
    assert result.exit_code == 0, result.output
    assert "hero-image" in result.output


def test_the_innermost_option_wins(served: Any) -> None:
    unreachable = f"http://127.0.0.1:{free_port()}"
    result = CliRunner().invoke(
        main,
        ["--url", unreachable, "experiments", "list", "--url", served.url, "--token", EDITOR_TOKEN],
    )
    assert result.exit_code == 0, result.output
    assert "hero-image" in result.output


def test_the_development_token_is_read_when_no_token_is_given(served: Any, tmp_path: Path) -> None:
    (tmp_path / "dev-token").write_text(EDITOR_TOKEN + "\n")
    result = CliRunner(env={"SPLITWERK_DATA_DIR": str(tmp_path)}).invoke(
        main, ["experiments", "show", "hero-image", "--url", served.url]
    )
    assert result.exit_code == 0, result.output
    assert "hero-image: Hero" in result.output


def test_an_explicit_token_wins_over_the_development_token(served: Any, tmp_path: Path) -> None:
    (tmp_path / "dev-token").write_text(EDITOR_TOKEN)
    result = CliRunner(env={"SPLITWERK_DATA_DIR": str(tmp_path)}).invoke(
        main, ["experiments", "list", "--url", served.url, "--token", "wrong"]
    )
    assert result.exit_code != 0
    assert "401" in result.output


def test_a_401_says_how_to_give_a_token(served: Any, tmp_path: Path) -> None:
    result = CliRunner(env={"SPLITWERK_DATA_DIR": str(tmp_path)}).invoke(
        main, ["experiments", "list", "--url", served.url]
    )
    assert result.exit_code != 0
    assert "401" in result.output
    assert "--token" in result.output
    assert "SPLITWERK_TOKEN" in result.output
    assert str(tmp_path / "dev-token") in result.output


def test_serve_reports_a_taken_port_before_anything_else(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = time.monotonic()
        result = CliRunner(env={"SPLITWERK_DATA_DIR": str(tmp_path / "data")}).invoke(
            main, ["serve", "--dev", "--port", str(port)]
        )
        elapsed = time.monotonic() - started
    assert result.exit_code == 1
    assert f"port {port} on 127.0.0.1 is taken" in result.output
    assert f"make run PORT={port + 1}" in result.output
    assert f"splitwerk serve --port {port + 1}" in result.output
    # nothing happened before: no secrets, no Redis data, no demo, no token printed
    assert not (tmp_path / "data").exists()
    assert "token" not in result.output.split("Choose another port")[0]
    assert "embedded Redis" not in result.output
    assert elapsed < 5


def test_serve_without_tokens_names_every_missing_setting(tmp_path: Path) -> None:
    result = CliRunner(env={"SPLITWERK_DATA_DIR": str(tmp_path)}).invoke(
        main, ["serve", "--port", str(free_port())]
    )
    assert result.exit_code == 1
    assert "SPLITWERK_SECRET_KEY" in result.output
    assert "SPLITWERK_TOKENS" in result.output
    assert "splitwerk hash-token" in result.output
    assert "--dev" in result.output


@pytest.mark.slow
@pytest.mark.parametrize("to_the_group", [False, True], ids=["kill-hup", "terminal-closed"])
def test_sighup_stops_the_server_and_its_redis(to_the_group: bool) -> None:
    # A closed terminal sends SIGHUP to its whole process group (the server, its workers and
    # the embedded Redis); `kill -HUP` reaches the server alone. gunicorn would reload on it.
    data_dir = Path(tempfile.mkdtemp(prefix="sw-cli-"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = _serve(data_dir, port, new_session=to_the_group)
    try:
        _wait_until_up(url, process)
        if to_the_group:
            os.killpg(process.pid, signal.SIGHUP)
        else:
            process.send_signal(signal.SIGHUP)
        output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output.decode()
    assert "Hang up" not in output.decode()  # gunicorn's reload, which would keep it running
    with pytest.raises(OSError):
        _get(url + "/healthz")
    leftover = subprocess.run(
        ["pgrep", "-f", str(data_dir)], capture_output=True, text=True, check=False
    )
    assert leftover.stdout.strip() == "", "embedded redis-server still running"


def test_make_run_reports_a_taken_port_before_installing_anything(tmp_path: Path) -> None:
    repository = Path(__file__).resolve().parents[1]
    venv = tmp_path / "venv"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = subprocess.Popen(
            ["make", "-C", str(repository), "run", f"PORT={port}", f"VENV={venv}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # so that a broken check's install can be stopped as a group
        )
        try:
            output, _ = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
    text = output.decode()
    assert process.returncode != 0
    assert f"port {port} on 127.0.0.1 is taken" in text
    assert f"make run PORT={port + 1}" in text
    assert not venv.exists()  # nothing was installed


def test_a_wrong_setting_stops_a_client_command_with_its_name() -> None:
    result = CliRunner(env={"SPLITWERK_RETENTION_DAYS": "many"}).invoke(
        main, ["experiments", "list", "--url", f"http://127.0.0.1:{free_port()}"]
    )
    assert result.exit_code == 1
    assert "SPLITWERK_RETENTION_DAYS: expected a number" in result.output
