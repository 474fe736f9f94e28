"""OpenAPI links: which answer feeds which next request (create → start → assign → events).

Clients and stateful API fuzzers (``make fuzz``) follow them: the key of a created
experiment leads to its start, results and audit; a started experiment leads to assigning a
visitor in it; an assignment leads to an event of that visitor.
"""

from __future__ import annotations

from typing import Any

KEY = {"key": "$response.body#/key"}  # the experiment key of an ExperimentSchema answer
FUZZ_EVENT_ID = "link-conversion"  # id of the conversion the assign → events link sends


def operation(path: str, method: str) -> str:
    """A JSON pointer to an operation of this document (RFC 6901 escapes ~ and /)."""
    return "#/paths/" + path.replace("~", "~0").replace("/", "~1") + "/" + method


def _on_experiment(path: str, method: str, description: str) -> dict[str, Any]:
    return {
        "operationRef": operation("/v1/experiments/{key}" + path, method),
        "parameters": KEY,
        "description": description,
    }


# Few links per answer on purpose: a stateful fuzzer picks one at random, and the walk from
# create to events must happen within a short run.
CREATED = {
    "StartExperiment": _on_experiment("/start", "post", "Start it."),
    "UpdateExperiment": _on_experiment("", "patch", "Change the draft."),
    "DeleteExperiment": _on_experiment("", "delete", "Delete the draft."),
}

STARTED = {
    "AssignVisitor": {
        "operationRef": operation("/v1/assign", "post"),
        "requestBody": {"experiments": ["$response.body#/key"]},
        "description": "Assign a visitor in the started experiment.",
    },
    "GetResults": _on_experiment("/results", "get", "Results while it runs."),
}

RESULTS_KEY = {"key": "$response.body#/experiment"}  # the key in a ResultsSchema answer

# From results to deciding: pause or stop the experiment they are about, or read its trail.
READ = {
    name: {**link, "parameters": RESULTS_KEY}
    for name, link in {
        "PauseExperiment": _on_experiment("/pause", "post", "Pause it."),
        "StopExperiment": _on_experiment("/stop", "post", "Stop it."),
        "GetAudit": _on_experiment("/audit", "get", "Who changed it."),
    }.items()
}

PAUSED = {
    "ResumeExperiment": _on_experiment("/resume", "post", "Resume it."),
    "StartNewPhase": {
        **_on_experiment("/new-phase", "post", "Re-randomise with fresh counts."),
        "requestBody": {"confirm": True},
    },
    "StopExperiment": _on_experiment("/stop", "post", "Stop it."),
}

STOPPED = {
    "GetResults": _on_experiment("/results", "get", "The final results."),
    "ArchiveExperiment": _on_experiment("/archive", "post", "Archive it."),
}

ARCHIVED = {
    "DeleteExperiment": _on_experiment("", "delete", "Delete it and its data."),
}

# The links of each lifecycle action's answer, by action.
AFTER_ACTION = {
    "start": STARTED,
    "pause": PAUSED,
    "resume": STARTED,
    "stop": STOPPED,
    "archive": ARCHIVED,
}

ASSIGNED = {
    "SendConversion": {
        "operationRef": operation("/v1/events", "post"),
        "requestBody": {
            "events": [
                {
                    "type": "conversion",
                    "id": FUZZ_EVENT_ID,
                    "visitor": "$response.body#/visitor",
                    "goal": "purchase",
                }
            ]
        },
        "description": "A conversion of the visitor just assigned.",
    },
}
