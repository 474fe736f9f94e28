"""The SDK's distribution: its own dependencies only, and the server depends on this version."""

import configparser
from pathlib import Path

from splitwerk.client import VERSION

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
