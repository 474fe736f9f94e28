"""The SDK's distribution: its own dependencies only, and the server depends on this version."""

import configparser
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from splitwerk import Client
from splitwerk.client import VERSION

from .fakeserver import FakeServer

ROOT = Path(__file__).resolve().parents[2]


def requirements(path: Path) -> list[str]:
    parser = configparser.ConfigParser()
    parser.read(path, encoding="utf-8")
    lines = parser["options"]["install_requires"].splitlines()
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def test_sdk_depends_only_on_mmh3_and_re2():
    names = {line.split(">")[0].split("=")[0] for line in requirements(ROOT / "sdk" / "setup.cfg")}
    assert names == {"mmh3", "google-re2"}


def test_server_requires_exactly_this_sdk_version():
    assert f"splitwerk=={VERSION}" in requirements(ROOT / "setup.cfg")


# Runs in the fresh venv: local evaluation against the test's fake server, exposures sent.
LOCAL_SCRIPT = """
import json, sys
import splitwerk
client = splitwerk.Client(sys.argv[1], mode="local", poll_interval=60.0, flush_interval=0.05)
assert client.wait_for_config(10.0), "no config"
answers = {f"v-{n}": client.variant("checkout-button", f"v-{n}") for n in range(50)}
answers["facebook"] = client.variant("facebook-only", "v-1", {"source": "facebook"})
assert client.flush(10.0), "exposures not sent"
client.close()
print(json.dumps(answers))
"""


@pytest.mark.slow
def test_the_sdk_installs_alone_into_a_fresh_venv_and_evaluates_locally(
    tmp_path: Path, server: FakeServer
) -> None:
    source = tmp_path / "sdk"
    shutil.copytree(
        ROOT / "sdk",
        source,
        ignore=shutil.ignore_patterns("js", "*.egg-info", "build", "__pycache__"),
    )
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    pip = [python, "-m", "pip", "install", "-q", str(source)]
    subprocess.run(pip, check=True, capture_output=True, timeout=600)
    listed = subprocess.run(
        [python, "-m", "pip", "list", "--format", "json"],
        check=True,
        capture_output=True,
        text=True,
    )
    installed = {item["name"].lower() for item in json.loads(listed.stdout)}
    assert installed - {"pip", "setuptools", "wheel"} == {"splitwerk", "mmh3", "google-re2"}

    run = subprocess.run(
        [python, "-I", "-c", LOCAL_SCRIPT, server.url],  # -I: nothing of this checkout on the path
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    answers = json.loads(run.stdout)
    here = Client(server.url, mode="local", poll_interval=60.0)
    assert here.wait_for_config(5.0)
    expected = {f"v-{n}": here.variant("checkout-button", f"v-{n}") for n in range(50)}
    here.close(0)
    assert {key: answers[key] for key in expected} == expected  # the same buckets as here
    assert set(expected.values()) == {"control", "green"}
    assert answers["facebook"] == "banner"
    assert any(event["type"] == "exposure" for event in server.unique_events())
