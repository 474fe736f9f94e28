"""The Makefile's README commands: what `make run` and `make test` install, and in which order."""

from __future__ import annotations

import subprocess
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]


def planned(target: str, tmp_path: Path, *extra: str) -> list[str]:
    """The commands ``make TARGET`` would run for a fresh venv (``make -n`` runs nothing)."""
    result = subprocess.run(
        ["make", "-n", "--no-print-directory", target, f"VENV={tmp_path / 'venv'}", *extra],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPOSITORY,
    )
    return result.stdout.splitlines()


def test_make_run_installs_only_the_runtime_dependencies(tmp_path: Path) -> None:
    commands = planned("run", tmp_path)
    installs = [line for line in commands if "pip install" in line]
    assert installs, commands
    assert any(
        line.endswith("pip install -q -c constraints.txt -e . -e ./sdk") for line in installs
    )
    assert not any("[dev]" in line for line in commands)


def test_make_run_checks_the_port_first_and_passes_it_on(tmp_path: Path) -> None:
    commands = planned("run", tmp_path, "PORT=8123")
    assert "server.ports" in commands[0]
    assert commands[0].endswith(" 8123")
    assert commands[-1].endswith("splitwerk serve --dev --port 8123")


def test_make_test_adds_the_development_extras(tmp_path: Path) -> None:
    commands = planned("test", tmp_path)
    assert any("pip install -q -c constraints.txt -e '.[dev]'" in line for line in commands)
    assert any("scripts/system-packages.sh" in line for line in commands)
