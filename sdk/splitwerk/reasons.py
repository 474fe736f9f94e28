"""The one vocabulary of reasons: why a visitor sees their variant (server, SDK and snippet)."""

import enum


class Reason(enum.StrEnum):
    """Why a visitor got their variant; only ``running`` means enrolled.

    The server's API answers with these names, the SDK's ``Assignment.reason`` holds them, and
    the browser snippet uses the same strings (``docs/targeting.md`` lists them).
    """

    RUNNING = "running"  # in the experiment, counted from now on
    NOT_RUNNING = "not_running"  # draft or archived: control
    PAUSED = "paused"  # control until resumed
    STOPPED = "stopped"  # stopped without a winner: control
    WINNER = "winner"  # stopped with a winner: everyone sees it
    FORCED = "forced"  # QA: allow-list or force parameter
    BOT = "bot"  # crawlers see control and are never counted
    NOT_TARGETED = "not_targeted"  # attributes fail the experiment's conditions
    LAYER = "layer"  # the visitor's layer slot belongs to another experiment
    OUTSIDE_COVERAGE = "outside_coverage"  # in no variant's range at the current coverage
    NO_CONSENT = "no_consent"  # sees their variant, but without consent is never counted
    UNKNOWN_EXPERIMENT = "unknown_experiment"  # no experiment of that key: no variant
    UNAVAILABLE = "unavailable"  # SDK only: no answer from the server in time; the fallback
    INVALID_VISITOR = "invalid_visitor"  # SDK only: the visitor id cannot be bucketed
