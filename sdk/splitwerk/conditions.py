"""Compiles targeting conditions (GrowthBook's MongoDB-style language) into predicates; no I/O.

A condition is a JSON object evaluated against a visitor's attributes. It is compiled once per
config into nested closures, so evaluating it costs a few dict lookups and no parsing. The
semantics below are the contract shared with the server through ``tests/sdk/condition_cases.json``:

- Keys are attribute paths; dots walk into nested objects (``"user.country"``). A missing
  attribute, or a path through something that is not an object, reads as ``null``.
- ``{"path": literal}`` is JSON equality: no type coercion (``"1"`` is not ``1``), booleans are
  not numbers (``true`` is not ``1``), ``1`` equals ``1.0``, arrays and objects compare deeply.
  An array attribute is not searched by a literal (use ``$in``, ``$all`` or ``$elemMatch``).
- ``{"path": {"$op": operand, ...}}``: an object whose keys all start with ``$`` is a set of
  operators that must all hold. Operators: ``$eq $ne $gt $gte $lt $lte $in $nin $exists $not
  $all $elemMatch $size $regex $type``.
- ``$gt $gte $lt $lte`` compare number with number or string with string (code points);
  any other pairing, a missing attribute included, is false.
- ``$in``/``$nin`` take an array; an array attribute is ``$in`` when any element is.
  ``$exists`` takes a boolean (``false`` matches a missing or null attribute).
- ``$all`` and ``$elemMatch`` and ``$size`` match only array attributes; ``$size`` takes a
  number or an operator object applied to the length.
- ``$and``/``$or``/``$nor`` take arrays of conditions, ``$not`` a condition. As in GrowthBook,
  an empty ``$and`` or ``$or`` is true and an empty ``$nor`` false.
- Invalid conditions (unknown operator, operand of the wrong type, unsafe regex) never match:
  the visitor sees the control. They are logged once, when the config is compiled.

``$regex`` uses Python's ``re.search`` with the server's reading of a pattern: ``\\d``, ``\\w``
and ``\\s`` are ASCII only, and ``$`` is the very end of the value. Because ``re`` backtracks,
``(a+)+$`` takes exponential and ``\\d+\\d+x`` cubic time on a hostile value, so patterns must
pass ``is_safe_pattern`` (at most one repetition, no repeated group with choices inside, no
back-references, at most ``MAX_PATTERN_LENGTH`` characters) and values longer than
``MAX_REGEX_INPUT`` never match. The server runs a linear-time engine and accepts some of
the patterns refused here; see ``README.md`` (targeting conditions).

Server-side, conditions that are invalid here are refused with a 422 when an experiment is
saved, so the "never match" rule only guards against configs from elsewhere.
"""

import logging
import re
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any

log = logging.getLogger(__name__)

Attributes = Mapping[str, Any]
Predicate = Callable[[Attributes], bool]
ValuePredicate = Callable[[Any], bool]

MAX_PATTERN_LENGTH = 256  # targeting patterns are short; longer ones are likely pasted data
MAX_REGEX_INPUT = 1024  # longest attribute value a regex is run against; bounds matching time
MAX_PATTERN_REPETITIONS = 1  # two repetitions already cost ~0.3 s on 1024 characters (measured)
MAX_PATTERN_OPTIONALS = 4  # each `?` can double the work of a failed search
_EMPTY: Attributes = {}  # stands in for attributes that are not an object
_NUMBERS = (int, float, Decimal)  # bool is excluded separately: it subclasses int
_ARRAYS = (list, tuple)
_TYPE_NAMES = frozenset({"string", "number", "boolean", "array", "object", "null"})
_QUANTIFIER_BRACE = re.compile(r"\{\d*,?\d*\}")  # `{m}`, `{m,}`, `{,n}`, `{m,n}` after an atom


def compile_condition(condition: Any) -> Predicate:
    """Return a predicate over attributes for ``condition``; invalid parts never match."""
    if not isinstance(condition, Mapping):
        return _invalid("condition is not an object", condition)
    parts: list[Predicate] = []
    for key, operand in condition.items():
        if key in ("$and", "$or", "$nor"):
            parts.append(_compile_logical(key, operand))
        elif key == "$not":
            parts.append(_negate(compile_condition(operand)))
        elif not isinstance(key, str) or key.startswith("$"):
            parts.append(_invalid("unknown top-level operator", key))
        else:
            parts.append(_compile_path(key, compile_value(operand)))
    return _all_of(parts)


def matches(condition: Any, attributes: Attributes | None) -> bool:
    """Evaluate ``condition`` once (compiles it each call: use ``compile_condition`` in loops)."""
    return compile_condition(condition)(attributes if attributes is not None else _EMPTY)


def attribute_names(condition: Any) -> frozenset[str]:
    """Return the top-level attribute names that ``condition`` reads."""
    names: set[str] = set()
    _collect_names(condition, names)
    return frozenset(names)


def compile_value(operand: Any) -> ValuePredicate:
    """Return a predicate over one attribute value: an operator object or a literal."""
    if not _is_operator_object(operand):
        return _compile_equal(operand)
    checks = [_compile_operator(name, argument) for name, argument in operand.items()]
    if len(checks) == 1:
        return checks[0]

    def all_operators(value: Any) -> bool:
        for check in checks:  # noqa: SIM110  (any() would allocate per call)
            if not check(value):
                return False
        return True

    return all_operators


def is_safe_pattern(pattern: str) -> bool:
    """Tell whether ``pattern`` is short and cannot make ``re`` backtrack for long.

    Python's ``re`` backtracks, so the work of a failed search grows with the product of the
    choices its quantifiers offer. Allowed: at most ``MAX_PATTERN_REPETITIONS`` repetition
    (``*``, ``+``, ``{m,}``, ``{m,n}``), at most ``MAX_PATTERN_OPTIONALS`` optional parts
    (``?``), exact counts (``{n}``) on anything without choices inside. Refused: a repeated
    group that contains a quantifier or an alternation (``(a+)+``, ``(a|ab)*``) and
    back-references (``\\1``). With inputs capped at ``MAX_REGEX_INPUT`` characters this keeps
    a worst-case search around a millisecond.
    """
    if len(pattern) > MAX_PATTERN_LENGTH:
        return False
    repetitions = optionals = 0
    # Each open group records whether it contains a choice: a quantifier or an alternation.
    stack: list[bool] = [False]
    closed_group_has_choice: bool | None = None  # set right after a `)`
    index = 0
    while index < len(pattern):
        char = pattern[index]
        after_group: bool | None = None
        if char == "\\":
            if index + 1 < len(pattern) and pattern[index + 1] in "123456789":
                return False
            index += 2
        elif char == "[":
            index = _skip_class(pattern, index)
        elif char == "(":
            stack.append(False)
            index += 1
            if pattern.startswith("?", index):
                index += 1  # `(?:`, `(?P<`, `(?=`: group syntax, not a quantifier
        elif char == ")":
            if len(stack) == 1:
                return False
            after_group = stack.pop()
            stack[-1] = stack[-1] or after_group
            index += 1
        elif char == "|":
            stack[-1] = True
            index += 1
        elif char in "*+?{":
            brace = _QUANTIFIER_BRACE.match(pattern, index) if char == "{" else None
            quantifier = brace.group() if brace is not None else char
            if char == "{" and brace is None:
                index += 1  # a literal brace
            elif quantifier in ("?", "{0,1}", "{,1}"):
                optionals += 1
                stack[-1] = True
                index += len(quantifier)
            else:
                if closed_group_has_choice:
                    return False
                if "," in quantifier or quantifier in ("*", "+"):
                    repetitions += 1
                    stack[-1] = True
                index += len(quantifier)
            if repetitions > MAX_PATTERN_REPETITIONS or optionals > MAX_PATTERN_OPTIONALS:
                return False
            is_quantifier = char != "{" or brace is not None
            if is_quantifier and index < len(pattern) and pattern[index] in "?+":
                index += 1  # lazy or possessive marker
        else:
            index += 1
        closed_group_has_choice = after_group
    return len(stack) == 1


def _anchor_at_end(pattern: str) -> str:
    """Turn each ``$`` outside a character class into ``\\Z``.

    Python's ``$`` also matches before a final newline; the server's engine, like most,
    only at the very end, and both must agree on ``"abc\\n"``.
    """
    parts = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":
            parts.append(pattern[index : index + 2])
            index += 2
        elif char == "[":
            end = _skip_class(pattern, index)
            parts.append(pattern[index:end])
            index = end
        else:
            parts.append("\\Z" if char == "$" else char)
            index += 1
    return "".join(parts)


def _skip_class(pattern: str, index: int) -> int:
    """Return the index just after the character class that starts at ``pattern[index]``."""
    index += 1
    if index < len(pattern) and pattern[index] == "^":
        index += 1
    if index < len(pattern) and pattern[index] == "]":
        index += 1  # a leading `]` is a literal
    while index < len(pattern) and pattern[index] != "]":
        index += 2 if pattern[index] == "\\" else 1
    return index + 1


def _compile_logical(operator: str, operand: Any) -> Predicate:
    if not isinstance(operand, _ARRAYS):
        return _invalid(f"{operator} needs an array", operand)
    children = [compile_condition(child) for child in operand]
    if operator == "$and":
        return _all_of(children)
    if not children:
        return _always if operator == "$or" else _never

    def any_of(attributes: Attributes) -> bool:
        for child in children:  # noqa: SIM110  (any() would allocate per call)
            if child(attributes):
                return True
        return False

    if operator == "$or":
        return any_of
    return lambda attributes: not any_of(attributes)


def _negate(inner: Predicate) -> Predicate:
    return lambda attributes: not inner(attributes)


def _compile_path(path: str, check: ValuePredicate) -> Predicate:
    if "." not in path:
        return lambda attributes: check(attributes.get(path))
    steps = path.split(".")

    def nested(attributes: Attributes) -> bool:
        value: Any = attributes
        for step in steps:
            if not isinstance(value, Mapping):
                return check(None)
            value = value.get(step)
        return check(value)

    return nested


def _compile_operator(name: str, argument: Any) -> ValuePredicate:
    if name == "$eq":
        return _compile_equal(argument)
    if name == "$ne":
        equal = _compile_equal(argument)
        return lambda value: not equal(value)
    if name in ("$gt", "$gte", "$lt", "$lte"):
        return _compile_comparison(name, argument)
    if name in ("$in", "$nin"):
        if not isinstance(argument, _ARRAYS):
            return _invalid_value(f"{name} needs an array", argument)
        contains = _compile_membership(argument)
        if name == "$in":
            return contains
        return lambda value: not contains(value)
    if name == "$exists":
        if not isinstance(argument, bool):
            return _invalid_value("$exists needs a boolean", argument)
        if argument:
            return lambda value: value is not None
        return lambda value: value is None
    if name == "$not":
        inner = compile_value(argument)
        return lambda value: not inner(value)
    if name == "$all":
        return _compile_all(argument)
    if name == "$elemMatch":
        return _compile_element_match(argument)
    if name == "$size":
        if not _is_number(argument) and not _is_operator_object(argument):
            return _invalid_value("$size needs a number or an operator object", argument)
        length = compile_value(argument)
        return lambda value: isinstance(value, _ARRAYS) and length(len(value))
    if name == "$regex":
        return _compile_regex(argument)
    if name == "$type":
        if not isinstance(argument, str) or argument not in _TYPE_NAMES:
            return _invalid_value("$type needs a JSON type name", argument)
        return lambda value: _type_name(value) == argument
    return _invalid_value("unknown operator", name)


def _compile_equal(literal: Any) -> ValuePredicate:
    # Specialised closures: string and number literals dominate real targeting rules.
    if literal is None or isinstance(literal, bool):
        return lambda value: value is literal
    if isinstance(literal, str):
        return lambda value: isinstance(value, str) and value == literal
    if isinstance(literal, _NUMBERS):
        return lambda value: _is_number(value) and value == literal
    return lambda value: _equal(value, literal)


def _compile_comparison(name: str, argument: Any) -> ValuePredicate:
    if isinstance(argument, str):
        kind: Callable[[Any], bool] = _is_string
    elif _is_number(argument):
        kind = _is_number
    else:
        return _invalid_value(f"{name} needs a number or a string", argument)
    if name == "$gt":
        return lambda value: kind(value) and value > argument
    if name == "$gte":
        return lambda value: kind(value) and value >= argument
    if name == "$lt":
        return lambda value: kind(value) and value < argument
    return lambda value: kind(value) and value <= argument


def _compile_membership(members: Iterable[Any]) -> ValuePredicate:
    # Strings go into a set for O(1) lookups; other members are few and compared one by one,
    # because a set would treat True as 1.
    strings = frozenset(member for member in members if isinstance(member, str))
    others = [_compile_equal(member) for member in members if not isinstance(member, str)]

    def is_member(value: Any) -> bool:
        if isinstance(value, str):
            return value in strings
        for equal in others:  # noqa: SIM110  (any() would allocate per call)
            if equal(value):
                return True
        return False

    def contains(value: Any) -> bool:
        if isinstance(value, _ARRAYS):
            for item in value:  # noqa: SIM110  (any() would allocate per call)
                if is_member(item):
                    return True
            return False
        return is_member(value)

    return contains


def _compile_all(argument: Any) -> ValuePredicate:
    if not isinstance(argument, _ARRAYS):
        return _invalid_value("$all needs an array", argument)
    required = [compile_value(element) for element in argument]

    def has_all(value: Any) -> bool:
        if not isinstance(value, _ARRAYS):
            return False
        for check in required:
            for item in value:
                if check(item):
                    break
            else:
                return False
        return True

    return has_all


def _compile_element_match(argument: Any) -> ValuePredicate:
    if not isinstance(argument, Mapping):
        return _invalid_value("$elemMatch needs an object", argument)
    if _is_operator_object(argument):
        item_check = compile_value(argument)
    else:
        condition = compile_condition(argument)

        def item_check(item: Any) -> bool:
            return condition(item if isinstance(item, Mapping) else _EMPTY)

    def has_match(value: Any) -> bool:
        if not isinstance(value, _ARRAYS):
            return False
        for item in value:  # noqa: SIM110  (any() would allocate per call)
            if item_check(item):
                return True
        return False

    return has_match


def _compile_regex(argument: Any) -> ValuePredicate:
    if not isinstance(argument, str):
        return _invalid_value("$regex needs a string", argument)
    if not is_safe_pattern(argument):
        return _invalid_value(
            "$regex pattern refused as too long or prone to backtracking", argument
        )
    try:
        search = re.compile(_anchor_at_end(argument), re.ASCII).search
    except re.error:
        return _invalid_value("$regex pattern does not compile", argument)
    return lambda value: (
        isinstance(value, str) and len(value) <= MAX_REGEX_INPUT and search(value) is not None
    )


def _all_of(parts: list[Predicate]) -> Predicate:
    if not parts:
        return _always
    if len(parts) == 1:
        return parts[0]

    def all_parts(attributes: Attributes) -> bool:
        for part in parts:  # noqa: SIM110  (any() would allocate per call)
            if not part(attributes):
                return False
        return True

    return all_parts


def _collect_names(condition: Any, names: set[str]) -> None:
    if not isinstance(condition, Mapping):
        return
    for key, operand in condition.items():
        if key in ("$and", "$or", "$nor") and isinstance(operand, _ARRAYS):
            for child in operand:
                _collect_names(child, names)
        elif key == "$not":
            _collect_names(operand, names)
        elif isinstance(key, str) and not key.startswith("$"):
            names.add(key.split(".", 1)[0])


def _is_operator_object(operand: Any) -> bool:
    return (
        isinstance(operand, Mapping)
        and len(operand) > 0
        and all(isinstance(key, str) and key.startswith("$") for key in operand)
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, _NUMBERS) and not isinstance(value, bool)


def _is_string(value: Any) -> bool:
    return isinstance(value, str)


def _equal(left: Any, right: Any) -> bool:
    """JSON equality: booleans are not numbers, arrays and objects compare element-wise."""
    if isinstance(left, bool) or isinstance(right, bool) or left is None or right is None:
        return left is right
    if isinstance(left, _ARRAYS):
        return (
            isinstance(right, _ARRAYS)
            and len(left) == len(right)
            and all(_equal(a, b) for a, b in zip(left, right, strict=True))
        )
    if isinstance(left, Mapping):
        return (
            isinstance(right, Mapping)
            and left.keys() == right.keys()
            and all(_equal(left[key], right[key]) for key in left)
        )
    if isinstance(right, (*_ARRAYS, Mapping)):
        return False
    if isinstance(left, str) or isinstance(right, str):
        return isinstance(left, str) and isinstance(right, str) and left == right
    return _is_number(left) and _is_number(right) and bool(left == right)


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, str):
        return "string"
    if isinstance(value, _NUMBERS):
        return "number"
    if isinstance(value, _ARRAYS):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return "unknown"


def _always(attributes: Attributes) -> bool:
    return True


def _never(attributes: Attributes) -> bool:
    return False


def _never_value(value: Any) -> bool:
    return False


def _invalid(reason: str, detail: Any) -> Predicate:
    log.warning("splitwerk: invalid condition (%s: %.80r); it never matches", reason, detail)
    return _never


def _invalid_value(reason: str, detail: Any) -> ValuePredicate:
    log.warning("splitwerk: invalid condition (%s: %.80r); it never matches", reason, detail)
    return _never_value
