"""schemathesis against `splitwerk serve` (gunicorn, real redis-server): no 5xx, no schema drift.

A bounded, seeded run of every phase (coverage, fuzzing, and stateful scenarios that follow the
OpenAPI links from creating an experiment to starting it, assigning a visitor, sending their
event and reading results). The suite runs few examples; `make fuzz` sets FUZZ_MAX_EXAMPLES
higher. Both must find no server error and no answer that its schema does not describe.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import EDITOR_TOKEN, serving

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "10"))  # per operation; `make fuzz`: 200
SEED = int(os.environ.get("FUZZ_SEED", "20261202"))  # fixed: a failure replays with the seed
RUN_TIMEOUT = 60 + 6 * MAX_EXAMPLES  # seconds for one run on a busy 2-core machine
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
)
# The chain of links (server.api.links) from creating an experiment to an event. The stateful
# scheduler spends only a few steps on each link and picks them at random, so a run is required
# to take its first and its last link; the middle one is taken in most runs (see the report).
CHAIN = (
    "POST /v1/experiments -> [201] StartExperiment -> POST /v1/experiments/{key}/start",
    "POST /v1/experiments/{key}/start -> [200] AssignVisitor -> POST /v1/assign",
    "POST /v1/assign -> [200] SendConversion -> POST /v1/events",
)


def transitions(report: Path) -> set[str]:
    """The ids of the link transitions the stateful phase took (from the NDJSON events)."""
    taken: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            transition = value.get("transition")
            if isinstance(transition, dict) and isinstance(transition.get("id"), str):
                taken.add(transition["id"])
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    for line in report.read_text().splitlines():
        walk(json.loads(line))
    return taken


def run_schemathesis(url: str, phases: str, report: Path, folder: Path) -> str:
    """One seeded schemathesis run of the given phases; returns its output, asserting success."""
    command = [
        sys.executable, "-m", "schemathesis.cli",
        "--config-file", str(HERE / "schemathesis.toml"),
        "run", f"{url}/v1/openapi.json", "--url", url,
        "--header", f"Authorization: Bearer {EDITOR_TOKEN}",
        "--checks", ",".join(CHECKS),
        "--phases", phases,
        "--max-examples", str(MAX_EXAMPLES), "--seed", str(SEED),
        "--workers", "1", "--request-timeout", "10",
        "--report", "ndjson", "--report-ndjson-path", str(report),
    ]  # fmt: skip
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(ROOT),
        "SCHEMATHESIS_HOOKS": "tests.fuzz.hooks",
        "NO_COLOR": "1",
    }
    done = subprocess.run(
        command, cwd=folder, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT
    )
    output = done.stdout[-6000:] + done.stderr[-2000:]
    assert done.returncode == 0, output
    # "1280 passed" is a success: only a count of exactly 0 is not
    assert not re.search(r"\b0 passed", output.split("Test cases:")[-1]), output
    return output


@pytest.mark.slow
def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    redis_server: Any, redis_client: Any, tmp_path: Path
) -> None:
    stateful = tmp_path / "stateful.ndjson"
    with serving(redis_server.url, tmp_path / "serve.log", CORS_ORIGINS="*") as url:
        # The stateful phase runs on its own: after the other phases its scheduler had
        # written off most links and walked a dozen scenarios.
        run_schemathesis(url, "coverage,fuzzing", tmp_path / "fuzzing.ndjson", tmp_path)
        output = run_schemathesis(url, "stateful", stateful, tmp_path)
    missing = [step for step in (CHAIN[0], CHAIN[-1]) if step not in transitions(stateful)]
    assert not missing, f"the stateful phase never took {missing}\n{output}"
