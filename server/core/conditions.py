"""Targeting conditions for the server: the SDK's compiler, with refusals as domain errors.

The language, its semantics and the ``$regex`` subset live in one place, the SDK's pure
``splitwerk.conditions`` (installed with the server); ``docs/targeting.md`` describes them and
lists where they differ from GrowthBook's. This module only turns a refused condition into an
``InvalidInput`` that the API answers with a 422 naming the ``conditions`` field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from server.core.errors import InvalidInput
from splitwerk import conditions as language
from splitwerk.conditions import Predicate

Matcher = Predicate  # a compiled condition over a visitor's attributes


class ConditionError(InvalidInput, ValueError):
    """A targeting condition the server refuses; ``path`` locates the offending part."""

    def __init__(self, refusal: language.ConditionError) -> None:
        self.path = refusal.path
        self.path_text = refusal.path_text
        super().__init__(str(refusal), {"conditions": [str(refusal)]})


def compile_condition(condition: object) -> Matcher:
    """Check ``condition`` and turn it into a function of the attributes, built once per experiment.

    Raises:
        ConditionError: an unknown operator, a wrong operand type, or a bad regex.
    """
    try:
        return language.compile_condition(condition)
    except language.ConditionError as refusal:
        raise ConditionError(refusal) from None


def validate_condition(condition: object) -> None:
    """Raise ``ConditionError`` unless ``condition`` is a valid targeting condition."""
    compile_condition(condition)


def matches(condition: object, attributes: Mapping[str, Any]) -> bool:
    """Tell whether ``attributes`` satisfy ``condition`` (compiles it; hot paths use a Matcher)."""
    return compile_condition(condition)(attributes)
