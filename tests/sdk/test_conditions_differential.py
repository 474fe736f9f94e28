"""Differential test: seeded random conditions, evaluated by the Python core and the snippet.

The Python core (``splitwerk.conditions``, which the server imports) and the browser snippet
(``sdk/js/splitwerk.js``, run in node through ``tests/js/conditions-oracle.mjs``) must agree
on every condition made only of operators the snippet evaluates; a condition using any other
operator must be handed to the server by the snippet, never answered.
"""

import json
import random
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from splitwerk.conditions import compile_condition

ORACLE = Path(__file__).resolve().parents[1] / "js" / "conditions-oracle.mjs"
# The operators the snippet evaluates itself (sdk/js/README.md); adapt when it learns more.
SNIPPET_OPERATORS = frozenset(
    {"$and", "$or", "$nor", "$not", "$eq", "$ne", "$in", "$nin"}
    | {"$gt", "$gte", "$lt", "$lte", "$exists"}
)
# What the oracle reports for a condition the snippet leaves to the server.
HANDED = "handed"
SEEDS = (1901, 1902, 1903)  # one node call per seed; fixed so that a failure can be replayed
CASES_PER_SEED = 2000  # 6000 per run: the issue asks for at least 5000
NODE_TIMEOUT = 60.0  # seconds for one batch; it takes well under one

SCALARS: list[Any] = [None, True, False, 0, 1, -1, 2, 3, 0.5, -1.5, 2.0, 1e3]
SCALARS += ["", "a", "b", "ab", "B", "1", "é", "ä", "z"]
PATHS = ["x", "y", "a.b", "missing"]
UNSUPPORTED = ["$all", "$elemMatch", "$size", "$regex", "$type"]
COMPARISONS = ["$gt", "$gte", "$lt", "$lte"]
JSON_TYPES = ["null", "boolean", "number", "string", "array", "object"]
# Inputs on which a naive snippet would differ: names of Object.prototype's members read as
# attributes, strings compared by UTF-16 code units (an astral character sorts below U+FFFF),
# integers above 2^53 rounded by JSON.parse (the snippet hands those to the server).
EDGE_SCALARS: list[Any] = ["\U0001f600", "\uffff", 2**53, 2**53 + 1]
EDGE_PATHS = ["constructor", "toString", "__proto__"]


class Generator:
    """Random JSON values, attributes and conditions from one seeded ``random.Random``."""

    def __init__(self, seed: int, *, edges: bool = False) -> None:
        self.random = random.Random(seed)
        self.scalars = SCALARS + EDGE_SCALARS if edges else SCALARS
        self.paths = PATHS + EDGE_PATHS if edges else PATHS

    def scalar(self) -> Any:
        return self.random.choice(self.scalars)

    def value(self, depth: int = 0) -> Any:
        roll = self.random.random()
        if depth < 2 and roll < 0.12:
            return [self.value(depth + 1) for _ in range(self.random.randint(0, 3))]
        if depth < 2 and roll < 0.2:
            return {"b": self.value(depth + 1)}
        return self.scalar()

    def attributes(self) -> dict[str, Any]:
        attributes: dict[str, Any] = {}
        for name in ("x", "y"):
            if self.random.random() < 0.85:
                attributes[name] = self.value()
        if self.random.random() < 0.6:
            attributes["a"] = {"b": self.value()} if self.random.random() < 0.8 else self.value()
        return attributes

    def condition(self, depth: int = 0) -> dict[str, Any]:
        condition: dict[str, Any] = {}
        for _ in range(self.random.randint(1, 2)):
            roll = self.random.random()
            if depth < 3 and roll < 0.2:
                key = self.random.choice(["$and", "$or", "$nor"])
                count = self.random.randint(1, 3)
                condition[key] = [self.condition(depth + 1) for _ in range(count)]
            elif depth < 3 and roll < 0.27:
                condition["$not"] = self.condition(depth + 1)
            else:
                condition[self.random.choice(self.paths)] = self.test(depth)
        return condition

    def test(self, depth: int) -> Any:
        if self.random.random() < 0.3:
            return self.value()
        return {self.operator(): None for _ in range(self.random.randint(1, 2))}

    def operator(self) -> str:
        if self.random.random() < 0.12:
            return self.random.choice(UNSUPPORTED)
        return self.random.choice(["$eq", "$ne", "$in", "$nin", "$exists", "$not", *COMPARISONS])

    def operand(self, name: str, depth: int) -> Any:
        if name in ("$eq", "$ne"):
            return self.value()
        if name in ("$in", "$nin"):
            return [self.value(1) for _ in range(self.random.randint(0, 3))]
        if name in COMPARISONS:
            return self.random.choice([0, 1, 2, -1, 0.5, "", "a", "b", "é", *self.scalars[-4:]])
        if name == "$exists":
            return self.random.random() < 0.5
        if name == "$not":
            return self.operators(depth + 1)
        if name == "$all":
            return [self.scalar() for _ in range(self.random.randint(1, 2))]
        if name == "$elemMatch":
            return {"b": self.scalar()}
        if name == "$size":
            return self.random.randint(0, 3)
        if name == "$regex":
            return self.random.choice(["a", "^a", "b$", "[ab]+", "é|1", "^$"])
        return self.random.choice(JSON_TYPES)

    def operators(self, depth: int) -> dict[str, Any]:
        names = {self.operator() for _ in range(self.random.randint(1, 2))}
        if depth >= 3:
            names.discard("$not")
            names = names or {"$eq"}
        return {name: self.operand(name, depth) for name in names}

    def case(self) -> tuple[dict[str, Any], dict[str, Any]]:
        condition = self.condition()
        self._fill(condition, 0)
        return condition, self.attributes()

    def _fill(self, condition: dict[str, Any], depth: int) -> None:
        """Give every operator object its operands (built after the shape, for readability)."""
        for key, operand in condition.items():
            if key in ("$and", "$or", "$nor"):
                for item in operand:
                    self._fill(item, depth + 1)
            elif key == "$not":
                self._fill(operand, depth + 1)
            elif isinstance(operand, dict) and all(name.startswith("$") for name in operand):
                condition[key] = {name: self.operand(name, depth) for name in operand}


def operators_in(condition: Any) -> set[str]:
    """Every ``$``-key used anywhere in ``condition``."""
    found: set[str] = set()
    if isinstance(condition, dict):
        for key, value in condition.items():
            if key.startswith("$"):
                found.add(key)
            found |= operators_in(value)
    elif isinstance(condition, list):
        for item in condition:
            found |= operators_in(item)
    return found


def valid_cases(
    seed: int, count: int, *, edges: bool = False
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """``count`` random (condition, attributes) pairs whose condition the server accepts."""
    generator = Generator(seed, edges=edges)
    cases = []
    while len(cases) < count:
        condition, attributes = generator.case()
        try:
            compile_condition(condition)
        except ValueError:
            continue  # the server refuses it at save time: it never reaches a page
        cases.append((condition, attributes))
    return cases


def snippet_verdicts(cases: list[tuple[dict[str, Any], dict[str, Any]]]) -> list[Any]:
    """The snippet's verdict for each case: one node process for the whole batch."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (make test installs it with the JS tests)")
    document = {"cases": [{"condition": c, "attributes": a} for c, a in cases]}
    finished = subprocess.run(
        [node, str(ORACLE)],
        input=json.dumps(document),
        capture_output=True,
        text=True,
        timeout=NODE_TIMEOUT,
        check=True,
    )
    verdicts: list[Any] = json.loads(finished.stdout)["verdicts"]
    assert len(verdicts) == len(cases)
    return verdicts


@pytest.mark.parametrize("seed", SEEDS)
def test_python_core_and_snippet_agree_on_random_conditions(seed: int) -> None:
    assert_agreement(valid_cases(seed, CASES_PER_SEED))


def test_python_core_and_snippet_agree_on_edge_values() -> None:
    assert_agreement(valid_cases(SEEDS[0], CASES_PER_SEED, edges=True))


def has_unsafe_integer(value: Any) -> bool:
    """Whether an integer outside JavaScript's safe range (|n| ≥ 2^53) is anywhere in it."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return abs(value) > 2**53 - 1  # Number.MAX_SAFE_INTEGER
    if isinstance(value, dict):
        return any(has_unsafe_integer(item) for item in value.values())
    if isinstance(value, list):
        return any(has_unsafe_integer(item) for item in value)
    return False


def assert_agreement(cases: list[tuple[dict[str, Any], dict[str, Any]]]) -> None:
    """The snippet answers as the core within its operators, and hands over the rest."""
    verdicts = snippet_verdicts(cases)
    disagreements = []
    not_handed = []
    both = 0
    for (condition, attributes), verdict in zip(cases, verdicts, strict=True):
        expected = compile_condition(condition)(attributes)
        if operators_in(condition) <= SNIPPET_OPERATORS:
            both += 1
            if verdict == HANDED and has_unsafe_integer([condition, attributes]):
                continue  # documented: beyond 2^53 the browser cannot compare, the server does
            if verdict is not expected:
                disagreements.append((condition, attributes, expected, verdict))
        elif verdict != HANDED:
            not_handed.append((condition, attributes, expected, verdict))
    # Both kinds must be well represented, or the test proves little.
    assert both > len(cases) // 2
    assert len(cases) - both > len(cases) // 20
    assert disagreements[:5] == [], f"{len(disagreements)} disagreements"
    assert not_handed[:5] == [], f"{len(not_handed)} unsupported conditions answered"
