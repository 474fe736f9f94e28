"""Every module of server/ is in the import contracts that lint-imports checks."""

from __future__ import annotations

import configparser
import pkgutil
from pathlib import Path

import server

ROOT = Path(__file__).resolve().parents[1]


def _contract(name: str, option: str) -> list[str]:
    """The names listed under ``option`` of an import-linter contract in setup.cfg."""
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg", encoding="utf-8")
    return config[f"importlinter:contract:{name}"][option].split()


def _layered_modules() -> set[str]:
    layers = _contract("layers", "layers")
    return {name for name in layers if name not in {"|", ":"}}


def test_every_module_of_server_is_in_a_layer() -> None:
    modules = {f"server.{info.name}" for info in pkgutil.iter_modules(server.__path__)}
    assert modules  # the package was found
    assert modules - _layered_modules() == set()


def test_the_layers_name_only_modules_that_exist() -> None:
    modules = {f"server.{info.name}" for info in pkgutil.iter_modules(server.__path__)}
    named = {name for name in _layered_modules() if name.startswith("server.")}
    assert named - modules == set()


def test_only_the_storage_layer_may_import_redis() -> None:
    guarded = set(_contract("redis", "source_modules"))
    modules = {f"server.{info.name}" for info in pkgutil.iter_modules(server.__path__)}
    assert modules - guarded == {"server.storage"}
