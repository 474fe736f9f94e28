"""`splitwerk serve`: the server and dashboard under gunicorn, with an embedded Redis by default."""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import click
from flask import Flask
from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter

from server.api.limits import GUNICORN_REQUEST_LINE_LIMIT
from server.app import create_app, start_background, stop_background
from server.config import DEV_TOKEN_FILE, ConfigError, Settings, hash_token, load_config
from server.context import services_of
from server.demo import DEMO_DAYS, ensure_demo_experiment, generate_traffic
from server.ports import taken_port_message
from server.services.experiments import SECONDS_PER_DAY
from server.storage.embedded import EmbeddedRedis
from server.storage.errors import StorageUnavailable

GUNICORN_TIMEOUT = 30  # seconds; far above the Redis timeouts, so a slow Redis never kills workers
GRACEFUL_TIMEOUT = 10  # seconds for in-flight requests at shutdown
# Seconds a stopping worker waits for its evaluator: one webhook attempt (WEBHOOK_TIMEOUT's
# default) plus a Redis command; the thread is a daemon and ends with the process anyway.
EVALUATOR_STOP_TIMEOUT = 6.0
SECRET_FILE = "secret-key"  # development secret, created once under DATA_DIR
INGEST_TOKEN_FILE = "dev-ingest-token"  # development ingest key (orders from the example shop)
DEMO_VISITORS = 4000  # simulated demo visitors: enough for charts, made in a few seconds


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
        # the evaluator thread runs in each worker (a Redis turn lets one evaluate at a time)
        self.cfg.set("post_worker_init", _start_evaluator)
        self.cfg.set("worker_exit", _stop_evaluator)

    def load(self) -> Flask:
        return create_app(self.overrides)

    def run(self) -> None:
        StopOnHangup(self).run()


def _worker_app(worker: Any) -> Flask | None:
    """The worker's app; None when it failed to load (gunicorn then has no app or an error
    page in its place)."""
    app = getattr(worker, "wsgi", None)
    return app if isinstance(app, Flask) else None


def _start_evaluator(worker: Any) -> None:
    """gunicorn's post_worker_init: start the worker's evaluator thread."""
    app = _worker_app(worker)
    if app is not None:
        start_background(app)


def _stop_evaluator(server: Any, worker: Any) -> None:
    """gunicorn's worker_exit (after SIGTERM, too): stop the thread before the worker ends."""
    app = _worker_app(worker)
    if app is not None and not stop_background(app, EVALUATOR_STOP_TIMEOUT):
        server.log.warning("evaluator of worker %s did not stop in time", worker.pid)


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


@click.command()
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
            services = services_of(app)
            settings, store = services.settings, services.store
            now = time.time()
            started = now - DEMO_DAYS * SECONDS_PER_DAY
            if settings.DEV and not no_demo and ensure_demo_experiment(store, started):
                orders = generate_traffic(services, DEMO_VISITORS, now)
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
