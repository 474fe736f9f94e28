"""Create and start the five experiments the load tests use; running it twice changes nothing.

Usage: ``python loadtests/seed.py [--url http://127.0.0.1:8000] [--token EDITOR_TOKEN]``
(defaults from ``SPLITWERK_URL`` and ``SPLITWERK_TOKEN``, like the ``splitwerk`` command).
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from typing import Any

from server.config import client_settings

REQUEST_TIMEOUT = 10.0  # seconds per admin call; the server answers in milliseconds when healthy

GOALS = [
    {"key": "purchase", "primary": True},
    {"key": "revenue", "kind": "revenue", "event": "purchase"},
    {"key": "margin", "kind": "margin", "event": "purchase"},
    {"key": "add_to_cart"},
]
SEGMENTS = ["source", "device"]  # what shops segment results by; the enrol script counts both


def _experiment(key: str, name: str, variants: list[str]) -> dict[str, Any]:
    return {
        "key": key,
        "name": name,
        "variants": [{"key": variant} for variant in variants],
        "goals": GOALS,
        "segments": SEGMENTS,
    }


# The first one is the product page's main experiment; the five together make the
# "one request names five experiments" case of the bench.
EXPERIMENTS = [
    _experiment("checkout-button", "Checkout button colour", ["control", "green"]),
    _experiment("free-shipping-banner", "Free-shipping banner", ["control", "banner"]),
    _experiment("product-images", "Large product images", ["control", "large"]),
    _experiment("price-display", "Price with or without VAT note", ["control", "note", "bold"]),
    _experiment("recommendations", "Recommendation widget", ["control", "similar"]),
]
EXPERIMENT_KEYS = [experiment["key"] for experiment in EXPERIMENTS]


class SeedError(RuntimeError):
    """The server refused a call or could not be reached; the message says which."""


def _call(base_url: str, token: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """One admin API call; returns the status and the decoded JSON body (None if empty)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base_url + path, data=data, method=method)
    request.add_header("Authorization", f"Bearer {token}")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as error:
        raw = error.read()
        return error.code, json.loads(raw) if raw else None
    except OSError as error:
        raise SeedError(f"{method} {path}: {error}") from None


def seed(base_url: str, token: str) -> list[str]:
    """Create the missing experiments and start drafts; returns what was done, one line each.

    Raises:
        SeedError: a call failed, or an experiment exists but is neither draft nor running.
    """
    done: list[str] = []
    for definition in EXPERIMENTS:
        key = definition["key"]
        status, current = _call(base_url, token, "GET", f"/v1/experiments/{key}")
        if status == 404:
            status, current = _call(base_url, token, "POST", "/v1/experiments", definition)
            if status != 201:
                raise SeedError(f"creating {key}: HTTP {status} {current}")
            done.append(f"created {key}")
        elif status != 200:
            raise SeedError(f"reading {key}: HTTP {status} {current}")
        if current["status"] == "draft":
            status, current = _call(base_url, token, "POST", f"/v1/experiments/{key}/start")
            if status != 200:
                raise SeedError(f"starting {key}: HTTP {status} {current}")
            done.append(f"started {key}")
        elif current["status"] != "running":
            raise SeedError(f"{key} is {current['status']}; the load test needs it running")
    return done


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; prints what it did."""
    default_url, default_token = client_settings()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=default_url, help="server base URL")
    parser.add_argument("--token", default=default_token, help="an editor token")
    options = parser.parse_args(argv)
    if not options.token:
        parser.error("an editor token is needed: --token or SPLITWERK_TOKEN")
    try:
        done = seed(options.url.rstrip("/"), options.token)
    except SeedError as error:
        print(f"seed: {error}", file=sys.stderr)
        return 1
    print("\n".join(done) or "seed: every experiment already exists and runs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
