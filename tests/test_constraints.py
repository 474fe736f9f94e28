"""constraints.txt: every requirement of the server, the SDK and the tools has a pin that fits it,
and the suite runs with the pinned versions (the Makefile installs with ``-c constraints.txt``)."""

from __future__ import annotations

import configparser
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPOSITORY = Path(__file__).resolve().parents[1]
OWN = {"splitwerk", "splitwerk-server"}  # this checkout's packages, installed editable


def pins(text: str) -> dict[str, Version]:
    """The ``name==version`` lines of a constraints file, by canonical name."""
    found: dict[str, Version] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, separator, version = line.partition("==")
        assert separator, f"not an exact pin: {line!r}"
        key = canonicalize_name(name)
        assert key not in found, f"pinned twice: {name}"
        found[key] = Version(version)
    return found


def requirements(setup_cfg: Path, *extras: str) -> list[Requirement]:
    """install_requires (and the named extras) of a setup.cfg."""
    parser = configparser.ConfigParser()
    parser.read(setup_cfg)
    lines = parser.get("options", "install_requires").splitlines()
    for extra in extras:
        lines += parser.get("options.extras_require", extra).splitlines()
    return [
        Requirement(line.strip())
        for line in lines
        if line.strip() and not line.strip().startswith("#")
    ]


def all_requirements() -> list[Requirement]:
    found = requirements(REPOSITORY / "setup.cfg", "dev")
    found += requirements(REPOSITORY / "sdk" / "setup.cfg")
    return [item for item in found if canonicalize_name(item.name) not in OWN]


def test_pins_are_read_exactly() -> None:
    text = "# a comment\n\nFlask==3.1.3\nredis==8.2.0\n"
    assert pins(text) == {"flask": Version("3.1.3"), "redis": Version("8.2.0")}
    with pytest.raises(AssertionError, match="not an exact pin"):
        pins("flask>=3\n")
    with pytest.raises(AssertionError, match="pinned twice"):
        pins("Flask==3.1.3\nflask==3.1.2\n")


def test_every_requirement_has_a_pin_that_fits_it() -> None:
    pinned = pins((REPOSITORY / "constraints.txt").read_text())
    wanted = all_requirements()
    assert len(wanted) > 20  # the parse found the lists
    for requirement in wanted:
        name = canonicalize_name(requirement.name)
        assert name in pinned, f"{requirement.name} has no pin in constraints.txt"
        assert requirement.specifier.contains(pinned[name], prereleases=True), (
            f"constraints.txt pins {requirement.name} {pinned[name]}, outside {requirement}"
        )


def test_the_suite_runs_with_the_pinned_versions() -> None:
    pinned = pins((REPOSITORY / "constraints.txt").read_text())
    for requirement in all_requirements():
        name = canonicalize_name(requirement.name)
        installed = Version(metadata.version(requirement.name))
        assert installed == pinned[name], (
            f"{requirement.name} {installed} is installed, constraints.txt pins {pinned[name]}: "
            "run `make install` (it installs the pins)"
        )


def test_the_docker_image_installs_the_pinned_versions() -> None:
    dockerfile = (REPOSITORY / "Dockerfile").read_text().splitlines()
    copies = [line for line in dockerfile if line.startswith("COPY ") and "constraints.txt" in line]
    installs = [line for line in dockerfile if "pip install" in line]
    assert copies and installs
    assert all("-c constraints.txt" in line for line in installs)
