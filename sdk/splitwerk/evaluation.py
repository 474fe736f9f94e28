"""The per-visitor decision of spec/ASSIGNMENT.md over a compiled experiment; pure, no I/O.

The procedure is ``spec/ASSIGNMENT.md`` of the Splitwerk repository ("assignment v1"). The
server imports this module for its own decisions (``server.core.assignment``), so the procedure
is written once in Python; it is tested against ``spec/assignment-vectors.json``.
A config is compiled once when it is fetched: each experiment gets a 10000-entry lookup table
from bucket to variant and a ready-made ``Assignment`` for every possible answer, so
``Experiment.evaluate`` hashes at most twice, indexes a table and returns a shared object
without allocating.
"""

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from splitwerk.bucketing import BUCKETS, HASH_BITS, HASH_SEED, hash32
from splitwerk.conditions import (
    Attributes,
    Predicate,
    attribute_names,
    compile_condition,
    never_matches,
)
from splitwerk.reasons import Reason

_EMPTY: Attributes = MappingProxyType({})  # stands in for "no attributes"

log = logging.getLogger(__name__)

SPEC = "assignment v1"  # the only spec version this module implements
MAX_VARIANTS = 255  # the lookup table stores variant numbers 1..255 in one byte each
STATUSES = frozenset({"draft", "running", "paused", "stopped", "archived"})


@dataclass(frozen=True, slots=True)
class Assignment:
    """The answer for one experiment and one visitor.

    ``variant`` is ``None`` only for ``reason == "unknown_experiment"``. ``payload`` is the
    variant's JSON payload; in local mode it is shared and read-only (objects are
    ``MappingProxyType``, arrays tuples). ``reason`` is one of the server's reasons
    (``running``, ``not_targeted``, ``outside_coverage``, ``layer``, ``forced``, ``paused``,
    ``stopped``, ``winner``, ``not_running``, ``no_consent``, ``unknown_experiment``, …) or one
    of the SDK's own: ``unavailable`` (no answer from the server in time) and
    ``invalid_visitor``.
    """

    variant: str | None
    payload: Any
    enrolled: bool
    reason: str


UNKNOWN = Assignment(None, None, False, Reason.UNKNOWN_EXPERIMENT)


class Experiment:
    """One experiment compiled for fast, allocation-free evaluation."""

    __slots__ = (
        "_bot",
        "_enrolled",
        "_forced",
        "_inactive",
        "_layer_end",
        "_layer_salt",
        "_layer_start",
        "_not_targeted",
        "_outside_coverage",
        "_outside_layer",
        "_table",
        "_unconsented",
        "attribute_names",
        "condition",
        "control",
        "fallback",
        "is_running",
        "key",
        "salt",
    )

    def __init__(
        self,
        key: str,
        salt: str,
        status: str,
        variants: list[tuple[str, int, Any]],
        coverage: int,
        layer: tuple[str, int, int] | None,
        winner: str | None,
        condition: Any,
        segments: frozenset[str],
    ) -> None:
        self.key = key
        self.salt = salt
        self.is_running = status == "running"
        payloads = {variant_key: _freeze(payload) for variant_key, _, payload in variants}
        self.control = variants[0][0]

        def answer(variant: str, enrolled: bool, reason: str) -> Assignment:
            return Assignment(variant, payloads[variant], enrolled, reason)

        if status == "stopped" and winner in payloads:  # an unknown winner: the control
            self._inactive = answer(winner, False, Reason.WINNER)
        else:
            reason = {"paused": Reason.PAUSED, "stopped": Reason.STOPPED}.get(
                status, Reason.NOT_RUNNING
            )
            self._inactive = answer(self.control, False, reason)
        # The answer when the server cannot be asked in remote mode: exact for experiments
        # that are not running, the control otherwise.
        self.fallback = (
            self._inactive
            if not self.is_running
            else answer(self.control, False, Reason.UNAVAILABLE)
        )
        self._not_targeted = answer(self.control, False, Reason.NOT_TARGETED)
        self._outside_layer = answer(self.control, False, Reason.LAYER)
        self._outside_coverage = answer(self.control, False, Reason.OUTSIDE_COVERAGE)
        self._bot = answer(self.control, False, Reason.BOT)
        self._forced = {key: answer(key, False, Reason.FORCED) for key in payloads}
        # Index 0 of the table means "no variant"; variant i is stored as i + 1.
        self._enrolled = (
            self._outside_coverage,
            *(answer(variant_key, True, Reason.RUNNING) for variant_key, _, _ in variants),
        )
        # As on the server: without consent a visitor sees their variant but is not counted.
        self._unconsented = (
            self._outside_coverage,
            *(answer(variant_key, False, Reason.NO_CONSENT) for variant_key, _, _ in variants),
        )
        table = bytearray(BUCKETS)
        start = 0
        for number, (_, allocation, _) in enumerate(variants, start=1):
            width = allocation * coverage // BUCKETS
            table[start : start + width] = bytes((number,)) * width
            start += allocation  # the allocation, not the width: ramping up moves nobody
        self._table = bytes(table)
        self._layer_salt: str | None = layer[0] if layer is not None else None
        self._layer_start = layer[1] if layer is not None else 0
        self._layer_end = layer[2] if layer is not None else BUCKETS
        self.condition: Predicate | None = None
        if condition is not None:
            try:
                self.condition = compile_condition(condition)
            except ValueError as error:
                # The server refuses such a condition when the experiment is saved, so it
                # comes from elsewhere (a hand-edited config, a newer server). Guessing its
                # meaning could enrol visitors the server would not: target nobody instead.
                log.warning("splitwerk: experiment %r targets nobody: %s", key, error)
                self.condition = never_matches
        # Attributes sent with an exposure: what the server needs to re-evaluate and segment.
        self.attribute_names = segments | (
            attribute_names(condition) if condition is not None else frozenset()
        )

    def evaluate(
        self,
        visitor: str,
        attributes: Attributes | None = None,
        has_consent: bool = True,
        forced: str | None = None,
        is_bot: bool = False,
    ) -> Assignment:
        """Return the spec's answer for ``visitor`` (steps 1–5, with forcing and consent).

        ``forced`` is a variant key a QA request asked for (unknown keys are ignored);
        ``is_bot`` marks a crawler, which sees the control and is never counted.
        """
        if not self.is_running:
            return self._inactive
        if not visitor.isascii():
            # mmh3 must never see a lone surrogate (see ``bucketing``); the client refuses such
            # ids before they get here, and this raises UnicodeEncodeError instead of crashing.
            visitor.encode()
        if forced is not None and forced in self._forced:
            return self._forced[forced]
        if is_bot:
            return self._bot
        if self.condition is not None and not self.condition(
            attributes if attributes is not None else _EMPTY
        ):
            return self._not_targeted
        if self._layer_salt is not None:
            slot = (hash32(visitor + self._layer_salt, HASH_SEED, False) * BUCKETS) >> HASH_BITS
            if not self._layer_start <= slot < self._layer_end:
                return self._outside_layer
        number = self._table[(hash32(visitor + self.salt, HASH_SEED, False) * BUCKETS) >> HASH_BITS]
        return self._enrolled[number] if has_consent else self._unconsented[number]


@dataclass(frozen=True, slots=True)
class Config:
    """A compiled ``/v1/config`` document: experiments by key, and the server's version.

    ``experiments`` is a plain dict, for the fastest lookup; nothing may change it.
    """

    version: str
    experiments: dict[str, Experiment]


EMPTY_CONFIG = Config("", {})


def parse_config(document: Any) -> Config | None:
    """Compile a ``/v1/config`` JSON document; ``None`` if it is not for this spec.

    Experiments that break the spec's rules (allocations not summing to 10000, unknown winner,
    …) are left out with a warning rather than "fixed": the SDK then answers with the default
    for them, as it would for an experiment it has never heard of. An experiment whose
    targeting condition the server would refuse is kept, but targets nobody (the control,
    not enrolled, reason ``not_targeted``).
    """
    if not isinstance(document, Mapping) or document.get("spec") != SPEC:
        log.warning("splitwerk: config refused: not an %r document", SPEC)
        return None
    raw_experiments = document.get("experiments")
    if not isinstance(raw_experiments, list):
        log.warning("splitwerk: config refused: 'experiments' is not a list")
        return None
    experiments: dict[str, Experiment] = {}
    for raw in raw_experiments:
        experiment = parse_experiment(raw)
        if experiment is not None:
            experiments[experiment.key] = experiment
    return Config(str(document.get("version", "")), experiments)


def parse_experiment(raw: Any) -> Experiment | None:
    """Compile one experiment of a config; ``None`` (and a warning) if it is invalid."""
    problem = _find_problem(raw)
    if problem is not None:
        key = raw.get("key") if isinstance(raw, Mapping) else None
        log.warning("splitwerk: experiment %r left out of the config: %s", key, problem)
        return None
    layer = raw.get("layer")
    segments = raw.get("segments") or []
    return Experiment(
        key=raw["key"],
        salt=raw["salt"] if raw.get("salt") is not None else raw["key"],
        status=raw["status"],
        variants=[(v["key"], v["allocation"], v.get("payload")) for v in raw["variants"]],
        coverage=raw["coverage"],
        layer=(layer["salt"], layer["start"], layer["end"]) if layer is not None else None,
        winner=raw.get("winner"),
        condition=raw.get("conditions"),
        segments=frozenset(name for name in segments if isinstance(name, str)),
    )


def _find_problem(raw: Any) -> str | None:
    """Return what is wrong with an experiment document, or ``None`` if it is usable."""
    if not isinstance(raw, Mapping):
        return "not an object"
    if not isinstance(raw.get("key"), str) or not raw["key"]:
        return "key is not a non-empty string"
    if raw.get("salt") is not None and not isinstance(raw["salt"], str):
        return "salt is not a string"
    if raw.get("status") not in STATUSES:
        return f"unknown status {raw.get('status')!r}"
    variants = raw.get("variants")
    if not isinstance(variants, list) or not 0 < len(variants) <= MAX_VARIANTS:
        return f"variants is not a list of 1..{MAX_VARIANTS}"
    keys = []
    for variant in variants:
        if not isinstance(variant, Mapping) or not isinstance(variant.get("key"), str):
            return "a variant has no string key"
        if not _is_basis_points(variant.get("allocation")):
            return f"variant {variant['key']!r} has no allocation in 0..10000"
        keys.append(variant["key"])
    if len(set(keys)) != len(keys):
        return "variant keys repeat"
    if sum(variant["allocation"] for variant in variants) != BUCKETS:
        return "allocations do not sum to 10000"
    if not _is_basis_points(raw.get("coverage")):
        return "coverage is not in 0..10000"
    layer = raw.get("layer")
    if layer is not None and not (
        isinstance(layer, Mapping)
        and isinstance(layer.get("salt"), str)
        and _is_basis_points(layer.get("start"))
        and _is_basis_points(layer.get("end"))
        and layer["start"] <= layer["end"]
    ):
        return "layer is not {salt, start, end} with 0 <= start <= end <= 10000"
    if raw.get("winner") is not None and raw["winner"] not in keys:
        return f"winner {raw['winner']!r} is not a variant"
    if raw.get("segments") is not None and not isinstance(raw["segments"], list):
        return "segments is not a list"
    return None


def _is_basis_points(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= BUCKETS


def _freeze(value: Any) -> Any:
    """Return a read-only deep copy of a JSON value, safe to share between callers."""
    if isinstance(value, Mapping):
        return MappingProxyType({key: _freeze(item) for key, item in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(item) for item in value)
    return value
