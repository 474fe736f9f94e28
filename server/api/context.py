"""Typed access to the objects create_app() wired into the running app."""

from __future__ import annotations

from flask import current_app

from server.services.experiments import ExperimentCache
from server.storage.store import Store


def store() -> Store:
    """The app's Redis store."""
    value: Store = current_app.extensions["splitwerk.store"]
    return value


def experiment_cache() -> ExperimentCache:
    """This worker's cache of the experiment configuration."""
    value: ExperimentCache = current_app.extensions["splitwerk.experiment_cache"]
    return value
