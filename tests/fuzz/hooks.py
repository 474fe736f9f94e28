"""schemathesis hooks (SCHEMATHESIS_HOOKS=tests.fuzz.hooks): stateful runs create valid experiments.

The create schema cannot say everything the API checks (variant keys unique, exactly one
primary goal, allow-list entries naming variants, condition syntax), so nearly every generated
experiment was refused and the stateful phase never got past the first link. In the stateful
phase only, a positive create body is made to satisfy those cross-field rules; every other phase
still sends bodies exactly as generated, invalid ones included.
"""

from __future__ import annotations

from typing import Any

import schemathesis

CREATE_PATH = "/v1/experiments"


def _valid_experiment(body: dict[str, Any]) -> dict[str, Any]:
    variants = [dict(v) for v in body.get("variants", []) if isinstance(v, dict)]
    for index, variant in enumerate(variants):
        variant["key"] = f"v{index}"  # unique, and valid by the key pattern
        variant["weight"] = 1
    goals = [dict(g) for g in body.get("goals", []) if isinstance(g, dict)]
    for index, goal in enumerate(goals):
        goal["key"] = "purchase" if index == 0 else f"goal-{index}"
        goal["primary"] = index == 0
    body = {**body, "variants": variants, "goals": goals, "allow_list": {}}
    body.pop("conditions", None)
    body.pop("layer", None)
    if isinstance(body.get("segments"), list):
        body["segments"] = sorted(set(body["segments"]))
    return body


@schemathesis.hook
def map_case(context: Any, case: Any) -> Any:
    operation = context.operation
    if (
        operation is not None
        and operation.path == CREATE_PATH
        and operation.method.upper() == "POST"
        and case.meta is not None
        and case.meta.phase.name == "stateful"
        and isinstance(case.body, dict)
        and len(case.body.get("variants") or []) >= 2
    ):
        case.body = _valid_experiment(case.body)
    return case
