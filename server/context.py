"""The objects create_app() wires for one app, as one typed object for the API and dashboard."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, current_app

from server.config import Settings
from server.core.bots import BotDetector
from server.core.privacy import Pseudonymiser
from server.services.assignments import Assigner
from server.services.events import EventRecorder
from server.services.experiments import ExperimentCache
from server.services.results import ResultsReader
from server.storage.store import Store

EXTENSION = "splitwerk"  # the app.extensions entry that holds the AppServices; read only here


@dataclass(frozen=True)
class AppServices:
    """What request handlers use, built once per app by create_app()."""

    settings: Settings  # the settings the app was built with
    store: Store  # the app's Redis store
    experiment_cache: ExperimentCache  # this worker's cache of the experiment configuration
    assigner: Assigner  # this worker's assignment service
    event_recorder: EventRecorder  # this worker's event recording service
    results_reader: ResultsReader  # this worker's results service (with its short cache)
    bot_detector: BotDetector  # built from the shipped User-Agent list
    pseudonymiser: Pseudonymiser  # the keyed pseudonymiser of visitor ids

    def attach(self, app: Flask) -> None:
        """Make these the services of ``app`` (create_app() calls it once)."""
        app.extensions[EXTENSION] = self


def services_of(app: Flask) -> AppServices:
    """The services create_app() wired into ``app`` (outside a request: CLI, demo, tests)."""
    services: AppServices = app.extensions[EXTENSION]
    return services


def current_services() -> AppServices:
    """The services of the app that handles the current request."""
    return services_of(current_app)
