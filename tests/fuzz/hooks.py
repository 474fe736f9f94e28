"""schemathesis hooks (SCHEMATHESIS_HOOKS=tests.fuzz.hooks): stateful runs create valid experiments.

The create schema cannot say everything the API checks (variant keys unique, exactly one
primary goal, allow-list entries naming variants, condition syntax), so nearly every generated
experiment was refused, or could not start without a goal, and the stateful phase never got
past the first link. In the stateful
phase only, a positive create body is made to satisfy those cross-field rules; every other phase
still sends bodies exactly as generated, invalid ones included. Assignments in the stateful
phase likewise drop a random ``force`` (it names no variant) and attributes that are not an
object, so that the link from an assignment to its visitor's event is followed.
"""

from __future__ import annotations

from typing import Any

import schemathesis

CREATE_PATH = "/v1/experiments"
ASSIGN_PATH = "/v1/assign"


def _valid_experiment(body: dict[str, Any]) -> dict[str, Any]:
    variants = [dict(v) for v in body.get("variants", []) if isinstance(v, dict)]
    for index, variant in enumerate(variants):
        variant["key"] = f"v{index}"  # unique, and valid by the key pattern
        variant["weight"] = 1
    # an experiment starts only with a goal (409 otherwise)
    goals = [dict(g) for g in body.get("goals", []) if isinstance(g, dict)] or [{}]
    for index, goal in enumerate(goals):
        goal["key"] = "purchase" if index == 0 else f"goal-{index}"
        goal["primary"] = index == 0
    body = {**body, "variants": variants, "goals": goals, "allow_list": {}}
    body.pop("conditions", None)
    body.pop("layer", None)
    if isinstance(body.get("segments"), list):
        body["segments"] = sorted(set(body["segments"]))
    return body


def _valid_assignment(body: dict[str, Any]) -> dict[str, Any]:
    # a random force names no variant (a 422), and attributes are any JSON in the schema
    body = {name: value for name, value in body.items() if name != "force"}
    attributes = body.get("attributes")
    if not isinstance(attributes, dict) or not all(0 < len(name) <= 64 for name in attributes):
        body["attributes"] = {}
    return body


@schemathesis.hook
def map_case(context: Any, case: Any) -> Any:
    operation = context.operation
    if (
        operation is None
        or operation.method.upper() != "POST"
        or case.meta is None
        or case.meta.phase.name != "stateful"
        or not isinstance(case.body, dict)
    ):
        return case
    if operation.path == CREATE_PATH and len(case.body.get("variants") or []) >= 2:
        case.body = _valid_experiment(case.body)
    elif operation.path == ASSIGN_PATH:
        case.body = _valid_assignment(case.body)
    return case
