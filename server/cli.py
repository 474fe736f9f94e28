"""The `splitwerk` command: one group of the launcher (serve), the admin client and hash-token."""

from __future__ import annotations

import secrets
import sys

import click

from server.admin import client_options, experiments
from server.config import hash_token
from server.launcher import serve


@click.group()
@client_options
def main() -> None:
    """Splitwerk: self-hosted A/B testing for online shops."""


main.add_command(serve)
main.add_command(experiments)


@main.command("hash-token")
@click.argument("token", required=False)
def hash_token_command(token: str | None) -> None:
    """Print the SHA-256 of TOKEN (or of a new random token) for SPLITWERK_TOKENS."""
    if token is None:
        token = secrets.token_urlsafe(32)
        click.echo(f"token: {token}")
    click.echo(f"sha256: {hash_token(token)}")


if __name__ == "__main__":  # pragma: no cover - `python -m server.cli`
    sys.exit(main())
