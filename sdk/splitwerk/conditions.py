"""Compiles targeting conditions (a MongoDB-style language) into predicates over attributes.

A condition is a JSON object evaluated against a visitor's attributes. It is compiled once per
config into nested closures, so evaluating it costs a few dict lookups and no parsing. This is
the only Python implementation: the server imports it (``server/core/conditions.py`` only maps
refusals to its 422). ``tests/cases/conditions.json`` is the table it and the browser snippet
must pass, row for row; ``docs/targeting.md`` lists where it differs from GrowthBook.

- Keys are attribute paths; dots walk into nested objects (``"user.country"``). A missing
  attribute, or a path through something that is not an object, reads as ``null``.
- ``{"path": literal}`` is JSON equality: no type coercion (``"1"`` is not ``1``), booleans are
  not numbers (``true`` is not ``1``), ``1`` equals ``1.0``, arrays and objects compare deeply.
  An array attribute is not searched by a literal (use ``$in``, ``$all`` or ``$elemMatch``).
- ``{"path": {"$op": operand, ...}}``: an object whose keys all start with ``$`` is a set of
  operators that must all hold: ``$eq $ne $gt $gte $lt $lte $in $nin $exists $not $all
  $elemMatch $size $regex $type``.
- ``$gt $gte $lt $lte`` compare number with number or string with string (code points);
  any other pairing, a missing attribute included, is false.
- ``$in``/``$nin`` take a list; an array attribute is ``$in`` when any element is.
  ``$exists`` takes a boolean (``false`` matches a missing or null attribute).
- ``$all``, ``$elemMatch`` and ``$size`` match only array attributes; ``$size`` takes a whole
  number or an operator object applied to the length.
- ``$and``/``$or``/``$nor`` take non-empty lists of conditions, ``$not`` a condition.
- ``$regex`` takes a pattern of the documented subset (``splitwerk.patterns``), run on RE2 in
  linear time on strings of at most ``MAX_REGEX_SUBJECT_LENGTH`` characters, never on
  Python's backtracking ``re``.
- Numbers are ``int`` and ``float`` (what JSON gives); other attribute types, ``Decimal``
  included, are neither numbers nor strings to a condition.

Invalid conditions are those the server refuses with a 422 when an experiment is saved: an
unknown operator, an operand of the wrong type, an empty ``$and``/``$or``/``$nor``/``$all``,
an empty object ``{}`` as a value, an object mixing ``$``-keys and plain keys, a regex outside
the subset, nesting deeper than ``MAX_DEPTH``. ``compile_condition`` raises ``ConditionError``
(a ``ValueError``) for them, naming the offending part; the SDK does not guess what they
mean: ``evaluation`` then answers "not targeted" for the whole experiment (the control, not
enrolled).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from math import isfinite
from types import MappingProxyType
from typing import Any, NoReturn, TypeVar

from splitwerk.patterns import compile_pattern

Attributes = Mapping[str, Any]
Predicate = Callable[[Attributes], bool]  # a compiled condition over a visitor's attributes
ValuePredicate = Callable[[Any], bool]  # a compiled test of one attribute value
PathPart = str | int  # a key or a list index inside a condition, for messages
_Subject = TypeVar("_Subject")

# The limits are the server's: a condition or pattern it accepts must be accepted here.
MAX_DEPTH = 32  # nesting of objects and lists; real targeting uses 3-4, this bounds recursion
MAX_REGEX_SUBJECT_LENGTH = 1024  # longer strings never match a regex, on the server too

_EMPTY: Attributes = MappingProxyType({})  # stands in for attributes that are not an object
_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "$gt": operator.gt,
    "$gte": operator.ge,
    "$lt": operator.lt,
    "$lte": operator.le,
}
JSON_TYPES = frozenset({"null", "boolean", "number", "string", "array", "object"})  # for $type
COMBINATORS = frozenset({"$and", "$or", "$nor", "$not"})
OPERATORS = frozenset(
    {
        "$eq", "$ne", "$in", "$nin", "$gt", "$gte", "$lt", "$lte", "$exists",
        "$not", "$all", "$elemMatch", "$size", "$regex", "$type",
    }
)  # fmt: skip


def compile_condition(condition: Any) -> Predicate:
    """Check ``condition`` as the server does and turn it into a predicate over attributes.

    Raises:
        ValueError: the server would refuse the condition; the message names the offending
            part by its path, e.g. ``$or[1].country.$in: $in needs a list``.
    """
    return _compile_condition(condition, (), 0)


def matches(condition: Any, attributes: Attributes | None) -> bool:
    """Evaluate ``condition`` once; an invalid one is False (use ``compile_condition`` in loops)."""
    try:
        test = compile_condition(condition)
    except ValueError:
        return False
    return test(attributes if attributes is not None else _EMPTY)


def attribute_names(condition: Any) -> frozenset[str]:
    """Return the top-level attribute names that ``condition`` reads."""
    names: set[str] = set()
    _collect_names(condition, names)
    return frozenset(names)


class ConditionError(ValueError):
    """A condition the server refuses; ``path`` locates the offending part, ``reason`` says why."""

    def __init__(self, reason: str, path: Sequence[PathPart] = ()) -> None:
        self.reason = reason
        self.path: tuple[PathPart, ...] = tuple(path)
        self.path_text = format_path(self.path)
        super().__init__(f"{self.path_text}: {reason}" if self.path_text else reason)


def _refuse(message: str, path: Sequence[PathPart]) -> NoReturn:
    raise ConditionError(message, path)


def format_path(path: Sequence[PathPart]) -> str:
    """Render a path like ``$or[1].country.$in`` (list indices in brackets), as the server does."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


# ---------------------------------------------------------------------------------------------
# Compiling conditions into closures
# ---------------------------------------------------------------------------------------------


def _compile_condition(condition: object, path: tuple[PathPart, ...], depth: int) -> Predicate:
    if depth > MAX_DEPTH:
        _refuse(f"nested deeper than {MAX_DEPTH} levels", path)
    if not isinstance(condition, Mapping):
        _refuse("a condition must be an object", path)
    tests: list[Predicate] = []
    for key, operand in condition.items():
        here = (*path, key)
        if not isinstance(key, str) or not key:
            _refuse("attribute names must be non-empty strings", here)
        if key in ("$and", "$or", "$nor"):
            tests.append(_compile_combination(key, operand, here, depth))
        elif key == "$not":
            tests.append(_negation(_compile_condition(operand, here, depth + 1)))
        elif key.startswith("$"):
            known = ", ".join(sorted(COMBINATORS))
            _refuse(f"unknown operator {key}; a condition takes {known}", here)
        else:
            tests.append(_compile_attribute(key, operand, here, depth))
    return _all_of(tests)


def _compile_combination(
    key: str, operand: object, path: tuple[PathPart, ...], depth: int
) -> Predicate:
    # An empty list is refused rather than given GrowthBook's meaning ($or [] is true, $nor []
    # false): in a hand-written condition it is far more likely a mistake than an intent.
    if not isinstance(operand, list) or not operand:
        _refuse(f"{key} needs a non-empty list of conditions", path)
    parts = [
        _compile_condition(item, (*path, index), depth + 1) for index, item in enumerate(operand)
    ]
    if key == "$and":
        return _all_of(parts)
    return _any_of(parts) if key == "$or" else _negation(_any_of(parts))


def _compile_attribute(
    key: str, operand: object, path: tuple[PathPart, ...], depth: int
) -> Predicate:
    names = key.split(".")
    if not all(names):
        _refuse("attribute paths are names joined by single dots", path)
    test = _compile_value(operand, path, depth + 1)
    if len(names) == 1:
        # The common case, a top-level attribute, is one dict lookup.
        return lambda attributes: test(attributes.get(key))
    return lambda attributes: test(_lookup(attributes, names))


def _lookup(attributes: Mapping[str, Any], names: list[str]) -> Any:
    value: Any = attributes
    for name in names:
        if not isinstance(value, Mapping):
            return None
        value = value.get(name)
    return value


def _compile_value(operand: object, path: tuple[PathPart, ...], depth: int) -> ValuePredicate:
    """Compile what an attribute value is tested against: a literal or an operator object."""
    if depth > MAX_DEPTH:
        _refuse(f"nested deeper than {MAX_DEPTH} levels", path)
    if isinstance(operand, Mapping):
        operators = [key for key in operand if isinstance(key, str) and key.startswith("$")]
        if not operand:
            # GrowthBook reads {} as "no operators", true for everything; Mongo reads it as
            # "equals {}". Refuse the ambiguity instead of picking one silently.
            _refuse("an empty object is ambiguous; use an operator", path)
        if operators and len(operators) != len(operand):
            _refuse("an object mixes operators and plain keys", path)
        if operators:
            return _all_of(
                [
                    _compile_operator(key, value, (*path, key), depth + 1)
                    for key, value in operand.items()
                ]
            )
    return _equality(_check_json(operand, path, depth))


def _compile_operator(
    name: str, operand: object, path: tuple[PathPart, ...], depth: int
) -> ValuePredicate:
    if name in ("$eq", "$ne"):
        equal = _equality(_check_json(operand, path, depth))
        return equal if name == "$eq" else _negation(equal)
    if name in ("$in", "$nin"):
        if not isinstance(operand, list):
            _refuse(f"{name} needs a list", path)
        _check_json(operand, path, depth)
        is_in = _membership(operand)
        return is_in if name == "$in" else _negation(is_in)
    if name in ("$gt", "$gte", "$lt", "$lte"):
        return _comparison(name, operand, path)
    if name == "$exists":
        if not isinstance(operand, bool):
            _refuse("$exists needs true or false", path)
        if operand:
            return lambda value: value is not None
        return lambda value: value is None
    if name == "$not":
        return _negation(_compile_value(operand, path, depth + 1))
    if name == "$all":
        if not isinstance(operand, list) or not operand:
            _refuse("$all needs a non-empty list", path)
        wanted = [
            _compile_value(item, (*path, index), depth + 1) for index, item in enumerate(operand)
        ]
        return lambda value: (
            _is_list(value) and all(any(test(item) for item in value) for test in wanted)
        )
    if name == "$elemMatch":
        return _element_match(operand, path, depth)
    if name == "$size":
        return _size(operand, path, depth)
    if name == "$regex":
        if not isinstance(operand, str):
            _refuse("$regex needs a string", path)
        try:
            pattern = compile_pattern(operand)
        except ValueError as error:
            _refuse(str(error), path)
        limit = MAX_REGEX_SUBJECT_LENGTH
        return lambda value: (
            isinstance(value, str) and len(value) <= limit and pattern.search(value)
        )
    if name == "$type":
        if operand not in JSON_TYPES:
            _refuse(f"$type needs one of {', '.join(sorted(JSON_TYPES))}", path)
        return lambda value: _json_type(value) == operand
    _refuse(f"unknown operator {name}; known: {', '.join(sorted(OPERATORS))}", path)


def _comparison(name: str, operand: object, path: tuple[PathPart, ...]) -> ValuePredicate:
    if isinstance(operand, str):
        is_comparable: Callable[[object], bool] = _is_string
    elif _is_number(operand) and isfinite(operand):  # type: ignore[arg-type]  # a number here
        is_comparable = _is_number
    else:
        _refuse(f"{name} needs a number or a string", path)
    compare = _COMPARISONS[name]
    bound: Any = operand
    return lambda value: is_comparable(value) and compare(value, bound)


def _element_match(operand: object, path: tuple[PathPart, ...], depth: int) -> ValuePredicate:
    if not isinstance(operand, Mapping) or not operand:
        _refuse("$elemMatch needs a non-empty object", path)
    if all(isinstance(key, str) and key.startswith("$") for key in operand):
        item_test = _compile_value(operand, path, depth + 1)
        return lambda value: _is_list(value) and any(item_test(item) for item in value)
    condition = _compile_condition(operand, path, depth + 1)
    # As in GrowthBook, an element that is not an object is tested as if it had no attributes.
    return lambda value: (
        _is_list(value)
        and any(condition(item if isinstance(item, Mapping) else _EMPTY) for item in value)
    )


def _size(operand: object, path: tuple[PathPart, ...], depth: int) -> ValuePredicate:
    if isinstance(operand, int) and not isinstance(operand, bool):
        if operand < 0:
            _refuse("$size needs a count of at least 0", path)
        count = operand
        return lambda value: _is_list(value) and len(value) == count
    if isinstance(operand, Mapping):
        length_test = _compile_value(operand, path, depth + 1)
        return lambda value: _is_list(value) and length_test(len(value))
    _refuse("$size needs a whole number or an operator object", path)


def _check_json(operand: object, path: tuple[PathPart, ...], depth: int) -> object:
    """Return ``operand`` if it is a JSON value (finite numbers, string keys), else raise."""
    if depth > MAX_DEPTH:
        _refuse(f"nested deeper than {MAX_DEPTH} levels", path)
    if operand is None or isinstance(operand, (bool, str, int)):
        return operand
    if isinstance(operand, float):
        if not isfinite(operand):
            _refuse("numbers must be finite", path)
        return operand
    if isinstance(operand, list):
        for index, item in enumerate(operand):
            _check_json(item, (*path, index), depth + 1)
        return operand
    if isinstance(operand, Mapping):
        for key, item in operand.items():
            if not isinstance(key, str):
                _refuse("object keys must be strings", path)
            _check_json(item, (*path, key), depth + 1)
        return operand
    _refuse(f"{type(operand).__name__} is not a JSON value", path)


def _equality(expected: object) -> ValuePredicate:
    # Fast paths for the literals that targeting uses nearly always.
    if isinstance(expected, str):
        return lambda value: isinstance(value, str) and value == expected
    if expected is None:
        return lambda value: value is None
    if isinstance(expected, bool):
        return lambda value: value is expected
    if _is_number(expected):
        return lambda value: _is_number(value) and value == expected
    return lambda value: _json_equal(value, expected)


def _membership(expected: list[Any]) -> ValuePredicate:
    equal_tests = [_equality(item) for item in expected]
    strings = frozenset(item for item in expected if isinstance(item, str))

    def is_in(value: Any) -> bool:
        if isinstance(value, str):
            return value in strings  # a string equals only strings: one set lookup
        if _is_list(value):
            return any(test(item) for item in value for test in equal_tests)
        return any(test(value) for test in equal_tests)

    return is_in


def _json_equal(value: Any, expected: object) -> bool:
    """Compare an attribute value with a validated JSON literal, as JSON would; never raises."""
    if expected is None or isinstance(expected, bool):
        return value is expected
    if isinstance(expected, (int, float)):
        return _is_number(value) and value == expected
    if isinstance(expected, str):
        return isinstance(value, str) and value == expected
    if isinstance(expected, list):
        return (
            _is_list(value)
            and len(value) == len(expected)
            and all(_json_equal(item, want) for item, want in zip(value, expected, strict=True))
        )
    if isinstance(expected, Mapping):
        return (
            isinstance(value, Mapping)
            and len(value) == len(expected)
            and all(
                key in value and _json_equal(value[key], want) for key, want in expected.items()
            )
        )
    return False


def _json_type(value: object) -> str | None:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if _is_list(value):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return None


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_string(value: object) -> bool:
    return isinstance(value, str)


def _is_list(value: object) -> bool:
    # JSON arrays arrive as lists; tuples are accepted for Python callers.
    return isinstance(value, (list, tuple))


def _all_of(tests: Sequence[Callable[[_Subject], bool]]) -> Callable[[_Subject], bool]:
    if not tests:
        return _always
    if len(tests) == 1:
        return tests[0]
    frozen = tuple(tests)

    def all_hold(subject: _Subject) -> bool:
        for test in frozen:  # noqa: SIM110  (all() over a generator allocates per call)
            if not test(subject):
                return False
        return True

    return all_hold


def _negation(test: Callable[[_Subject], bool]) -> Callable[[_Subject], bool]:
    return lambda subject: not test(subject)


def _any_of(tests: Sequence[Callable[[_Subject], bool]]) -> Callable[[_Subject], bool]:
    if len(tests) == 1:
        return tests[0]
    frozen = tuple(tests)

    def any_holds(subject: _Subject) -> bool:
        for test in frozen:  # noqa: SIM110  (any() over a generator allocates per call)
            if test(subject):
                return True
        return False

    return any_holds


def _always(subject: object) -> bool:
    return True


def never_matches(subject: object) -> bool:
    """Stand in for a condition that targets nobody."""
    return False


def _collect_names(condition: Any, names: set[str]) -> None:
    if not isinstance(condition, Mapping):
        return
    for key, operand in condition.items():
        if key in ("$and", "$or", "$nor") and isinstance(operand, list):
            for child in operand:
                _collect_names(child, names)
        elif key == "$not":
            _collect_names(operand, names)
        elif isinstance(key, str) and not key.startswith("$"):
            names.add(key.split(".", 1)[0])
