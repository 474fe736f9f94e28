"""Typed access to the objects create_app() wired into the running app (API and dashboard)."""

from __future__ import annotations

from flask import current_app

from server.config import Settings
from server.core.bots import BotDetector
from server.core.privacy import Pseudonymiser
from server.services.assignments import Assigner
from server.services.events import EventRecorder
from server.services.experiments import ExperimentCache
from server.services.results import ResultsReader
from server.storage.store import Store


def store() -> Store:
    """The app's Redis store."""
    value: Store = current_app.extensions["splitwerk.store"]
    return value


def experiment_cache() -> ExperimentCache:
    """This worker's cache of the experiment configuration."""
    value: ExperimentCache = current_app.extensions["splitwerk.experiment_cache"]
    return value


def assigner() -> Assigner:
    """This worker's assignment service."""
    value: Assigner = current_app.extensions["splitwerk.assigner"]
    return value


def bot_detector() -> BotDetector:
    """The bot detector built from the shipped User-Agent list."""
    value: BotDetector = current_app.extensions["splitwerk.bot_detector"]
    return value


def event_recorder() -> EventRecorder:
    """This worker's event recording service."""
    value: EventRecorder = current_app.extensions["splitwerk.event_recorder"]
    return value


def results_reader() -> ResultsReader:
    """This worker's results service (with its short cache)."""
    value: ResultsReader = current_app.extensions["splitwerk.results_reader"]
    return value


def settings() -> Settings:
    """The settings of the running app."""
    value: Settings = current_app.extensions["splitwerk.settings"]
    return value


def pseudonymiser() -> Pseudonymiser:
    """The keyed pseudonymiser of visitor ids."""
    value: Pseudonymiser = current_app.extensions["splitwerk.pseudonymiser"]
    return value
