"""The HTTP admin client behind `splitwerk experiments`: list, show, create, start, stop, …"""

from __future__ import annotations

import functools
import json
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import click
import yaml

from server.config import DEV_TOKEN_FILE, ConfigError, client_settings, load_config

CLIENT_TIMEOUT = 10.0  # seconds for one admin API call from the CLI
TOKEN_HINT = (
    "pass an editor or viewer token with --token (or SPLITWERK_TOKEN); without one the "
    "development token in {path} is used when it exists"
)

P = ParamSpec("P")
R = TypeVar("R")


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


@click.group()
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
