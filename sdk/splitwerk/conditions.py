"""Compiles targeting conditions (a MongoDB-style language) into predicates, as the server does.

A condition is a JSON object evaluated against a visitor's attributes. It is compiled once per
config into nested closures, so evaluating it costs a few dict lookups and no parsing. The
semantics are the server's (``server/core/conditions.py``), ported rather than imported: the
SDK is installed alone into shop backends. ``tests/cases/conditions.json`` is the table both
implementations must pass, row for row.

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
- ``$regex`` runs the server's linear-time engine (below) on strings of at most
  ``MAX_REGEX_SUBJECT_LENGTH`` characters, never Python's backtracking ``re``.
- Numbers are ``int`` and ``float`` (what JSON gives); other attribute types, ``Decimal``
  included, are neither numbers nor strings to a condition.

Invalid conditions are those the server refuses with a 422 when an experiment is saved: an
unknown operator, an operand of the wrong type, an empty ``$and``/``$or``/``$nor``/``$all``,
an empty object ``{}`` as a value, an object mixing ``$``-keys and plain keys, a regex outside
the subset, nesting deeper than ``MAX_DEPTH``. ``compile_condition`` raises ``ValueError`` for
them, naming the offending part; the SDK does not guess what they mean: ``evaluation`` then
answers "not targeted" for the whole experiment (the control, not enrolled).
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from math import isfinite
from types import MappingProxyType
from typing import Any, NoReturn, TypeVar

Attributes = Mapping[str, Any]
Predicate = Callable[[Attributes], bool]  # a compiled condition over a visitor's attributes
ValuePredicate = Callable[[Any], bool]  # a compiled test of one attribute value
CharTest = Callable[[str], bool]  # a regex atom: does it match this one character?
PathPart = str | int  # a key or a list index inside a condition, for messages
_Subject = TypeVar("_Subject")

# The limits are the server's: a condition or pattern it accepts must be accepted here.
MAX_DEPTH = 32  # nesting of objects and lists; real targeting uses 3-4, this bounds recursion
MAX_REGEX_LENGTH = 256  # characters of a pattern; enough for any URL or user-agent rule
MAX_REGEX_SUBJECT_LENGTH = 1024  # longer strings never match a regex, on the server too
MAX_REGEX_REPEAT = 100  # largest n in x{n} or x{m,n}: counted repeats are expanded into code
MAX_REGEX_PROGRAM = 512  # NFA instructions: bounds the work per subject character
MAX_DFA_TRANSITIONS = 4096  # cached per pattern (~0.5 MB at most); beyond, steps are computed
REGEX_CACHE_SIZE = 128  # compiled patterns kept across config versions; shops use a handful

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


def _refuse(message: str, path: Sequence[PathPart]) -> NoReturn:
    text = format_path(path)
    raise ValueError(f"{text}: {message}" if text else message)


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


# ---------------------------------------------------------------------------------------------
# $regex: a linear-time engine for a documented subset
# ---------------------------------------------------------------------------------------------
#
# Why not Python's `re`: it backtracks, so a pattern such as (a+)+$ or (a|aa)*b takes time
# exponential in the subject, and `re` has no timeout. Rejecting "dangerous" patterns is a
# heuristic with known gaps (overlapping alternatives, adjacent quantifiers like \d*\d*\d*
# are polynomial with a large degree). Instead the pattern is compiled to a Thompson NFA and
# run as a lazily built DFA (as RE2 does): every subject character costs one dict lookup, or
# one NFA step (bounded by the program size) when the transition is not cached yet. A
# pattern's own syntax is also ours, so Python's and JavaScript's dialects cannot disagree.
# Measured: ordinary URL or user-agent patterns take well under 1 ms on 1024 characters; the
# worst case, a pattern built to explode the DFA (``[ab]*a(?:(?:[ab]){50}){10}``) against a
# hostile 1024-character value, takes ~70 ms, which MAX_REGEX_PROGRAM bounds.
#
# The subset, which covers what URL, referrer and user-agent targeting needs:
#   literals; `.` (any character but newline); classes `[abc]`, `[^a-z0-9_-]`; escapes
#   \d \w \s (ASCII digits, ASCII word characters, str.isspace) and \D \W \S, \n \r \t \f \v,
#   and a backslash before any punctuation; groups `(...)` and `(?:...)`; alternation `|`;
#   quantifiers * + ? {n} {n,} {n,m} (n, m <= 100), lazy forms accepted (same yes/no answer);
#   anchors ^ and $ (start and end of the whole string). Search semantics: the pattern may
#   match anywhere unless anchored. Case-sensitive.
# Refused: backreferences, lookaround, \b, named groups, inline flags, unescaped { or }, and
# empty classes ([] means different things in Python and JavaScript).

_CHAR, _SPLIT, _JUMP, _AT_START, _AT_END, _MATCH = range(6)  # NFA instruction kinds
_ESCAPED_CHARACTERS = {"n": "\n", "r": "\r", "t": "\t", "f": "\f", "v": "\v"}


@dataclass(frozen=True)
class _Atom:
    test: CharTest


@dataclass(frozen=True)
class _Anchor:
    at_end: bool


@dataclass(frozen=True)
class _Sequence:
    items: tuple[_Node, ...]


@dataclass(frozen=True)
class _Choice:
    options: tuple[_Node, ...]


@dataclass(frozen=True)
class _Repeat:
    item: _Node
    minimum: int
    maximum: int | None  # None: unbounded


_Node = _Atom | _Anchor | _Sequence | _Choice | _Repeat


@functools.lru_cache(maxsize=REGEX_CACHE_SIZE)
def compile_pattern(pattern: str) -> Pattern:
    """Compile a ``$regex`` pattern of the supported subset (cached).

    Raises:
        ValueError: the pattern is too long, malformed, or uses an unsupported feature.
    """
    if len(pattern) > MAX_REGEX_LENGTH:
        raise ValueError(f"regex longer than {MAX_REGEX_LENGTH} characters")
    return Pattern(_Program.build(_Parser(pattern).parse()))


class Pattern:
    """A compiled pattern; ``search`` walks a DFA built lazily from the NFA, in linear time."""

    def __init__(self, program: _Program) -> None:
        self._program = program
        self._match = program.match_index
        # The state at position 0 may pass ^; later states restart the search without it.
        self._first = program.closure([0], at_start=True, at_end=False)
        self._restart = program.closure([0], at_start=False, at_end=False)
        self._transitions: dict[tuple[frozenset[int], str], frozenset[int]] = {}
        self._states: dict[frozenset[int], frozenset[int]] = {}

    def search(self, subject: str) -> bool:
        """Tell whether the pattern matches somewhere in ``subject``."""
        state = self._first
        if self._match in state:
            return True
        transitions = self._transitions
        for character in subject:
            following = transitions.get((state, character))
            if following is None:
                following = self._step(state, character)
            state = following
            if self._match in state:
                return True
        ends = self._program.closure(state, at_start=not subject, at_end=True)
        return self._match in ends

    def _step(self, state: frozenset[int], character: str) -> frozenset[int]:
        program = self._program
        advanced = [
            program.targets[index]
            for index in state
            if program.kinds[index] == _CHAR and program.tests[index](character)
        ]
        following = program.closure(advanced, at_start=False, at_end=False) | self._restart
        # Benign races under threads: two workers may compute the same entry twice.
        if len(self._transitions) < MAX_DFA_TRANSITIONS:
            following = self._states.setdefault(following, following)
            self._transitions[(state, character)] = following
        return following


class _Program:
    """Thompson NFA instructions in parallel lists; instruction ``match_index`` accepts."""

    def __init__(self) -> None:
        self.kinds: list[int] = []
        self.targets: list[int] = []  # _CHAR/_AT_*/_JUMP: next instruction; _SPLIT: first branch
        self.others: list[int] = []  # _SPLIT: second branch
        self.tests: list[CharTest] = []  # _CHAR: the character test
        self.match_index = -1

    @classmethod
    def build(cls, node: _Node) -> _Program:
        program = cls()
        program._emit_node(node)
        program.match_index = program._emit(_MATCH)
        return program

    def closure(self, start: Iterable[int], *, at_start: bool, at_end: bool) -> frozenset[int]:
        """Follow jumps, splits and satisfied anchors; keep character tests, end anchors, match."""
        kept: set[int] = set()
        seen: set[int] = set()
        stack = list(start)
        while stack:
            index = stack.pop()
            if index in seen:
                continue
            seen.add(index)
            kind = self.kinds[index]
            if kind == _SPLIT:
                stack.append(self.others[index])
                stack.append(self.targets[index])
            elif kind == _JUMP or (kind == _AT_START and at_start):
                stack.append(self.targets[index])
            elif kind == _AT_END:
                if at_end:
                    stack.append(self.targets[index])
                else:
                    kept.add(index)  # may still hold when the subject ends here
            elif kind != _AT_START:
                kept.add(index)
        return frozenset(kept)

    def _emit(self, kind: int, test: CharTest | None = None) -> int:
        index = len(self.kinds)
        if index >= MAX_REGEX_PROGRAM:
            raise ValueError("regex too complex once its repeats are expanded")
        self.kinds.append(kind)
        self.targets.append(index + 1)  # fall through unless patched
        self.others.append(index + 1)
        self.tests.append(test or never_matches)
        return index

    def _emit_node(self, node: _Node) -> None:
        if isinstance(node, _Atom):
            self._emit(_CHAR, node.test)
        elif isinstance(node, _Anchor):
            self._emit(_AT_END if node.at_end else _AT_START)
        elif isinstance(node, _Sequence):
            for item in node.items:
                self._emit_node(item)
        elif isinstance(node, _Choice):
            self._emit_choice(node.options)
        else:
            self._emit_repeat(node)

    def _emit_choice(self, options: tuple[_Node, ...]) -> None:
        # split L1, L2; L1: first; jump end; L2: (rest of the options)
        if len(options) == 1:
            self._emit_node(options[0])
            return
        split = self._emit(_SPLIT)
        self._emit_node(options[0])
        jump = self._emit(_JUMP)
        self.others[split] = len(self.kinds)
        self._emit_choice(options[1:])
        self.targets[jump] = len(self.kinds)

    def _emit_repeat(self, node: _Repeat) -> None:
        for _ in range(node.minimum):
            self._emit_node(node.item)
        if node.maximum is None:
            # loop: split body, end; body; jump loop
            split = self._emit(_SPLIT)
            self._emit_node(node.item)
            jump = self._emit(_JUMP)
            self.targets[jump] = split
            self.others[split] = len(self.kinds)
            return
        # x{0,k} is the language of k optional copies of x.
        for _ in range(node.maximum - node.minimum):
            split = self._emit(_SPLIT)
            self._emit_node(node.item)
            self.others[split] = len(self.kinds)


class _Parser:
    """Recursive descent over the supported subset; raises ValueError with a position."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self.position = 0

    def parse(self) -> _Node:
        node = self._alternation()
        if self.position < len(self.pattern):
            self._fail("unbalanced )")  # _sequence stops only at | or ) and | is consumed
        return node

    def _fail(self, message: str) -> NoReturn:
        raise ValueError(f"regex {message} at position {self.position}")

    def _peek(self) -> str:
        return self.pattern[self.position] if self.position < len(self.pattern) else ""

    def _take(self) -> str:
        character = self._peek()
        self.position += 1
        return character

    def _alternation(self) -> _Node:
        options = [self._sequence()]
        while self._peek() == "|":
            self.position += 1
            options.append(self._sequence())
        return options[0] if len(options) == 1 else _Choice(tuple(options))

    def _sequence(self) -> _Node:
        items: list[_Node] = []
        while self._peek() not in ("", "|", ")"):
            items.append(self._quantified(self._atom()))
        return items[0] if len(items) == 1 else _Sequence(tuple(items))

    def _atom(self) -> _Node:
        character = self._take()
        if character == "(":
            if self.pattern.startswith("?:", self.position):
                self.position += 2
            elif self._peek() == "?":
                self._fail("group syntax (?... is not supported")
            inner = self._alternation()
            if self._take() != ")":
                self.position -= 1
                self._fail("missing )")
            return inner
        if character == "[":
            return _Atom(self._character_class())
        if character == ".":
            return _Atom(_not_newline)
        if character in "^$":
            return _Anchor(at_end=character == "$")
        if character == "\\":
            return _Atom(self._escape(in_class=False))
        if character in "*+?":
            self.position -= 1
            self._fail(f"{character} has nothing to repeat")
        if character in "{}":
            self.position -= 1
            self._fail("braces must be escaped as \\{ \\} outside a repeat count")
        return _Atom(character.__eq__)

    def _quantified(self, atom: _Node) -> _Node:
        marker = self._peek()
        if marker not in ("*", "+", "?", "{"):
            return atom
        if isinstance(atom, _Anchor):
            self._fail("an anchor cannot be repeated")
        self.position += 1
        if marker == "*":
            minimum, maximum = 0, None
        elif marker == "+":
            minimum, maximum = 1, None
        elif marker == "?":
            minimum, maximum = 0, 1
        else:
            minimum, maximum = self._counts()
        if self._peek() == "?":
            self.position += 1  # lazy: the same set of matches, so the same yes/no answer
        if self._peek() in ("*", "+", "?", "{"):
            self._fail("a repeat cannot be repeated; use a group")
        return _Repeat(atom, minimum, maximum)

    def _counts(self) -> tuple[int, int | None]:
        closing = self.pattern.find("}", self.position)
        low, comma, high = self.pattern[self.position : max(closing, 0)].partition(",")
        if closing < 0 or not _is_count(low) or not (_is_count(high) or not high):
            self._fail("repeat count must be {n}, {n,} or {n,m}")
        self.position = closing + 1
        minimum = int(low)
        maximum = (int(high) if high else None) if comma else minimum
        if max(minimum, maximum or 0) > MAX_REGEX_REPEAT:
            self._fail(f"repeat counts above {MAX_REGEX_REPEAT} are not supported")
        if maximum is not None and maximum < minimum:
            self._fail("repeat count {n,m} needs n <= m")
        return minimum, maximum

    def _escape(self, *, in_class: bool) -> CharTest:
        character = self._take()
        if character == "":
            self.position -= 1
            self._fail("ends with a lone backslash")
        if character in _CLASS_ESCAPES:
            return _CLASS_ESCAPES[character]
        if character in _ESCAPED_CHARACTERS:
            return _ESCAPED_CHARACTERS[character].__eq__
        if character.isalnum() or character == "_":
            self.position -= 1
            self._fail(f"\\{character} is not supported")
        return character.__eq__

    def _character_class(self) -> CharTest:
        negated = self._peek() == "^"
        if negated:
            self.position += 1
        ranges: list[tuple[str, str]] = []
        tests: list[CharTest] = []
        if self._peek() == "]":
            self._fail("empty class; escape a literal ] as \\]")
        while True:
            character = self._take()
            if character == "":
                self._fail("missing ]")
            if character == "]":
                break
            low = self._class_character(character, tests)
            if low is None:
                continue
            if self._peek() == "-" and self.pattern[self.position + 1 : self.position + 2] not in (
                "]",
                "",
            ):
                self.position += 1
                high = self._class_character(self._take(), tests)
                if high is None:
                    self._fail("a range cannot end in a class escape")
                if high < low:
                    self._fail(f"range {low}-{high} is reversed")
                ranges.append((low, high))
            else:
                ranges.append((low, low))
        frozen_ranges = tuple(ranges)
        frozen_tests = tuple(tests)

        def test(character: str) -> bool:
            hit = any(low <= character <= high for low, high in frozen_ranges) or any(
                inner(character) for inner in frozen_tests
            )
            return hit != negated

        return test

    def _class_character(self, character: str, tests: list[CharTest]) -> str | None:
        """Return a class member's literal character, or None after adding an escape's test."""
        if character != "\\":
            return character
        escaped = self._peek()
        if escaped in _CLASS_ESCAPES:
            self.position += 1
            tests.append(_CLASS_ESCAPES[escaped])
            return None
        if escaped in _ESCAPED_CHARACTERS:
            self.position += 1
            return _ESCAPED_CHARACTERS[escaped]
        if escaped == "" or escaped.isalnum() or escaped == "_":
            self._fail(f"\\{escaped} is not supported in a class")
        self.position += 1
        return escaped


def _not_newline(character: str) -> bool:
    return character != "\n"


def _is_digit(character: str) -> bool:
    return "0" <= character <= "9"


def _is_word(character: str) -> bool:
    return (
        "a" <= character <= "z" or "A" <= character <= "Z" or "0" <= character <= "9"
    ) or character == "_"


def _is_count(text: str) -> bool:
    # str.isdigit alone would accept "²", which int() refuses.
    return text.isascii() and text.isdigit()


_CLASS_ESCAPES: dict[str, CharTest] = {
    "d": _is_digit,
    "D": lambda character: not _is_digit(character),
    "w": _is_word,
    "W": lambda character: not _is_word(character),
    "s": str.isspace,
    "S": lambda character: not character.isspace(),
}
