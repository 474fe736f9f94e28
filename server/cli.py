"""The `splitwerk` command: serve (embedded Redis by default), experiments, hash-token."""

from __future__ import annotations

import contextlib
import functools
import json
import secrets
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import click
import yaml
from flask import Flask
from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter

from server.api.limits import GUNICORN_REQUEST_LINE_LIMIT
from server.app import create_app
from server.config import (
    DEV_TOKEN_FILE,
    ConfigError,
    Settings,
    client_settings,
    hash_token,
    load_config,
)
from server.demo import DEMO_DAYS, ensure_demo_experiment, generate_traffic
from server.ports import taken_port_message
from server.services.experiments import SECONDS_PER_DAY
from server.storage.embedded import EmbeddedRedis
from server.storage.errors import StorageUnavailable

GUNICORN_TIMEOUT = 30  # seconds; far above the Redis timeouts, so a slow Redis never kills workers
GRACEFUL_TIMEOUT = 10  # seconds for in-flight requests at shutdown
CLIENT_TIMEOUT = 10.0  # seconds for one admin API call from the CLI
SECRET_FILE = "secret-key"  # development secret, created once under DATA_DIR
INGEST_TOKEN_FILE = "dev-ingest-token"  # development ingest key (orders from the example shop)
DEMO_VISITORS = 4000  # simulated demo visitors: enough for charts, made in a few seconds
TOKEN_HINT = (
    "pass an editor or viewer token with --token (or SPLITWERK_TOKEN); without one the "
    "development token in {path} is used when it exists"
)

P = ParamSpec("P")
R = TypeVar("R")


class StopOnHangup(Arbiter):  # type: ignore[misc]  # gunicorn ships no types
    """gunicorn's arbiter, except that SIGHUP stops the server like SIGTERM.

    gunicorn reloads its workers on SIGHUP; for a server started in a terminal, SIGHUP means
    the terminal was closed, and a server nobody can stop any more must not keep running.
    """

    def handle_hup(self) -> None:
        self.handle_term()


class GunicornApplication(BaseApplication):  # type: ignore[misc]  # gunicorn ships no types
    """Runs create_app(overrides) in every gunicorn worker (the production path)."""

    def __init__(self, overrides: Mapping[str, Any], options: Mapping[str, Any]) -> None:
        self.overrides = dict(overrides)
        self.options = dict(options)
        super().__init__()

    def load_config(self) -> None:
        for name, value in self.options.items():
            self.cfg.set(name, value)

    def load(self) -> Flask:
        return create_app(self.overrides)

    def run(self) -> None:
        StopOnHangup(self).run()


def _secret_file(folder: Path, name: str) -> str:
    """Read a development secret, creating it (readable by the owner only) the first time."""
    path = folder / name
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(32))
    return path.read_text().strip()


def _dev_overrides(settings: Settings) -> tuple[dict[str, Any], dict[str, str]]:
    """A stable secret, editor token and ingest key for development, kept in DATA_DIR."""
    folder = Path(settings.DATA_DIR)
    overrides: dict[str, Any] = {}
    tokens: dict[str, str] = {}
    if not settings.SECRET_KEY:
        overrides["SECRET_KEY"] = _secret_file(folder, SECRET_FILE)
    if not settings.TOKENS:
        tokens = {
            "editor": _secret_file(folder, DEV_TOKEN_FILE),
            "ingest": _secret_file(folder, INGEST_TOKEN_FILE),
        }
        overrides["TOKENS"] = ",".join(
            f"{role}:dev:{hash_token(token)}" for role, token in tokens.items()
        )
    return overrides, tokens


@contextlib.contextmanager
def _redis_for(settings: Settings) -> Iterator[str]:
    """The configured Redis URL, or an embedded redis-server for as long as the block runs."""
    if settings.REDIS_URL:
        yield settings.REDIS_URL
        return
    embedded = EmbeddedRedis(Path(settings.DATA_DIR).resolve() / "redis")
    with embedded:
        click.echo(f"embedded Redis: {embedded.url} (data in {embedded.data_dir})")
        yield embedded.url


def _remember(context: click.Context, parameter: click.Parameter, value: str | None) -> None:
    """Keep a client option wherever on the command line it was given (meta is shared)."""
    if value is not None and parameter.name is not None:
        context.meta[f"splitwerk.{parameter.name}"] = value


def client_options(function: Callable[P, R]) -> Callable[P, R]:
    """Add --url and --token; the command, its group and `splitwerk` itself all accept them."""
    url = click.option(
        "--url",
        default=None,
        expose_value=False,
        callback=_remember,
        help="Server URL (SPLITWERK_URL, default http://127.0.0.1:8000).",
    )
    token = click.option(
        "--token",
        default=None,
        expose_value=False,
        callback=_remember,
        help="Admin token (SPLITWERK_TOKEN; default: the development token, if there is one).",
    )
    return url(token(function))


@click.group()
@client_options
def main() -> None:
    """Splitwerk: self-hosted A/B testing for online shops."""


@main.command()
@click.option("--dev", is_flag=True, help="Development mode: dev token and secret, demo data.")
@click.option("--host", default=None, help="Address to bind (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default 8000).")
@click.option("--workers", type=int, default=None, help="gunicorn worker processes.")
@click.option("--threads", type=int, default=None, help="Threads per worker.")
@click.option("--redis-url", default=None, help="External Redis; default: an embedded one.")
@click.option("--no-demo", is_flag=True, help="Do not create the demo experiment.")
def serve(
    dev: bool,
    host: str | None,
    port: int | None,
    workers: int | None,
    threads: int | None,
    redis_url: str | None,
    no_demo: bool,
) -> None:
    """Start the server and dashboard under gunicorn."""
    flags = {
        "DEV": dev or None,
        "HOST": host,
        "PORT": port,
        "WORKERS": workers,
        "THREADS": threads,
        "REDIS_URL": redis_url,
    }
    overrides: dict[str, Any] = {name: value for name, value in flags.items() if value is not None}
    try:
        settings = load_config(overrides, validate=False)
        # before anything else happens: secrets, Redis and demo data cost time and print tokens
        taken = taken_port_message(settings.HOST, settings.PORT)
        if taken is not None:
            raise click.ClickException(taken)
        tokens: dict[str, str] = {}
        if settings.DEV:
            extra, tokens = _dev_overrides(settings)
            overrides.update(extra)
        with _redis_for(load_config(overrides)) as url:
            overrides["REDIS_URL"] = url
            app = create_app(overrides)
            settings = app.extensions["splitwerk.settings"]
            store = app.extensions["splitwerk.store"]
            now = time.time()
            started = now - DEMO_DAYS * SECONDS_PER_DAY
            if settings.DEV and not no_demo and ensure_demo_experiment(store, started):
                orders = generate_traffic(app, DEMO_VISITORS, now)
                click.echo(
                    f"created the demo experiment 'checkout-button' with {DEMO_VISITORS} "
                    f"simulated visitors and {orders} orders"
                )
            store.close()
            base = f"http://{settings.HOST}:{settings.PORT}"
            click.echo(f"dashboard: {base}/dashboard/   API: {base}/v1/openapi.json")
            if tokens:
                click.echo(f"admin token (editor): {tokens['editor']}")
                click.echo(f"ingest key (orders and refunds): {tokens['ingest']}")
            options = {
                "bind": f"{settings.HOST}:{settings.PORT}",
                "workers": settings.WORKERS,
                "threads": settings.THREADS,
                # gthread, with liveness probes on threads of their own (server/worker.py)
                "worker_class": "server.worker.HealthFirstWorker",
                "timeout": GUNICORN_TIMEOUT,
                "keepalive": settings.KEEPALIVE,
                "graceful_timeout": GRACEFUL_TIMEOUT,
                # lines up to this reach the app, which answers the longer ones with a JSON 414
                "limit_request_line": GUNICORN_REQUEST_LINE_LIMIT,
                "accesslog": None,
                # no runtime control socket: it lives in a shared home folder path and
                # would clash between several servers on one machine
                "control_socket_disable": True,
            }
            GunicornApplication(overrides, options).run()
    except (ConfigError, StorageUnavailable) as error:
        raise click.ClickException(str(error)) from None


@main.command("hash-token")
@click.argument("token", required=False)
def hash_token_command(token: str | None) -> None:
    """Print the SHA-256 of TOKEN (or of a new random token) for SPLITWERK_TOKENS."""
    if token is None:
        token = secrets.token_urlsafe(32)
        click.echo(f"token: {token}")
    click.echo(f"sha256: {hash_token(token)}")


class ApiClient:
    """A small client of the admin API for the `experiments` commands."""

    def __init__(self, url: str, token: str | None, token_hint: str = "") -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.token_hint = token_hint

    def call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=CLIENT_TIMEOUT) as response:
                raw = response.read()
        except urllib.error.HTTPError as error:
            detail = json.loads(error.read() or b"{}")
            errors = detail.get("errors")
            suffix = f" {json.dumps(errors, ensure_ascii=False)}" if errors else ""
            if error.code in {401, 403}:
                suffix += f"\n{self.token_hint}"
            raise click.ClickException(
                f"{error.code}: {detail.get('message', error.reason)}{suffix}"
            ) from None
        except urllib.error.URLError as error:
            raise click.ClickException(f"cannot reach {self.url}: {error.reason}") from None
        return json.loads(raw) if raw else None


def _api_client() -> ApiClient:
    """The client for the options given anywhere on the command line, else the defaults.

    The token comes from --token, else SPLITWERK_TOKEN, else the development editor token
    that `splitwerk serve --dev` (`make run`) keeps in DATA_DIR.
    """
    meta = click.get_current_context().meta
    default_url, default_token = client_settings()
    try:
        dev_token = Path(load_config(validate=False).DATA_DIR) / DEV_TOKEN_FILE
    except ConfigError as error:
        raise click.ClickException(str(error)) from None
    token = meta.get("splitwerk.token") or default_token
    if token is None and dev_token.is_file():
        token = dev_token.read_text().strip() or None
    hint = TOKEN_HINT.format(path=dev_token)
    return ApiClient(meta.get("splitwerk.url") or default_url, token, hint)


def pass_api(function: Callable[..., R]) -> Callable[..., R]:
    """Give a command the ApiClient as its first argument, and the client options."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> R:
        return function(_api_client(), *args, **kwargs)

    return client_options(wrapper)


def _table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(line.rstrip() for line in lines)


def _describe(experiment: Mapping[str, Any]) -> str:
    variants = [
        (v["key"], f"{v['allocation'] / 100:.2f} %", json.dumps(v["payload"], ensure_ascii=False))
        for v in experiment["variants"]
    ]
    lines = [
        f"{experiment['key']}: {experiment['name']}",
        f"status {experiment['status']}, phase {experiment['phase']}, "
        f"coverage {experiment['coverage'] / 100:.2f} %, winner {experiment['winner'] or '-'}",
        "",
        _table(variants, ["variant", "allocation", "payload"]),
    ]
    return "\n".join(lines)


@main.group()
@client_options
def experiments() -> None:
    """Manage experiments on a running server (--url and --token fit anywhere)."""


@experiments.command("list")
@click.option("--status", default=None, help="Only experiments with this status.")
@pass_api
def list_command(api: ApiClient, status: str | None) -> None:
    """List experiments."""
    query = f"?page_size=100&status={status}" if status else "?page_size=100"
    page = api.call("GET", "/v1/experiments" + query)
    rows = [
        (item["key"], item["status"], str(len(item["variants"])), item["name"])
        for item in page["items"]
    ]
    click.echo(_table(rows, ["key", "status", "variants", "name"]))


@experiments.command("show")
@click.argument("key")
@pass_api
def show_command(api: ApiClient, key: str) -> None:
    """Show one experiment."""
    click.echo(_describe(api.call("GET", f"/v1/experiments/{key}")))


@experiments.command("create")
@click.option("-f", "--file", "path", type=click.Path(exists=True, dir_okay=False), required=True)
@pass_api
def create_command(api: ApiClient, path: str) -> None:
    """Create an experiment from a YAML (or JSON) file."""
    try:
        document = yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as error:
        raise click.ClickException(f"{path}: not valid YAML: {error}") from None
    click.echo(_describe(api.call("POST", "/v1/experiments", document)))


def _action_command(action: str) -> click.Command:
    @click.argument("key")
    @pass_api
    def command(api: ApiClient, key: str) -> None:
        click.echo(_describe(api.call("POST", f"/v1/experiments/{key}/{action}")))

    command.__doc__ = f"{action.capitalize()} an experiment."
    return click.command(action)(command)


for _action in ("start", "pause", "resume", "archive"):
    experiments.add_command(_action_command(_action))


@experiments.command("stop")
@click.argument("key")
@click.option("--winner", default=None, help="Variant everybody sees from now on.")
@pass_api
def stop_command(api: ApiClient, key: str, winner: str | None) -> None:
    """Stop an experiment, optionally with a winner."""
    click.echo(_describe(api.call("POST", f"/v1/experiments/{key}/stop", {"winner": winner})))


@experiments.command("delete")
@click.argument("key")
@pass_api
def delete_command(api: ApiClient, key: str) -> None:
    """Delete a draft or archived experiment."""
    api.call("DELETE", f"/v1/experiments/{key}")
    click.echo(f"deleted {key}")


if __name__ == "__main__":  # pragma: no cover - `python -m server.cli`
    sys.exit(main())
