"""The whole Redis keyspace of Splitwerk; the only module that writes key strings.

Keys of one experiment share the hash tag ``{<experiment>}`` so that every Lua script and
transaction of an experiment touches one Redis Cluster slot. Every part of a key that comes
from outside (experiment keys, attribute names, pseudonymous visitor ids) has passed the
ID pattern in ``server.schemas`` or was made by ``server.core.privacy`` before it gets here.

=========================================  ======  ==============================================
key                                        type    holds / expires
=========================================  ======  ==============================================
sw:experiments                             hash    experiment key → experiment JSON
                                                   (storage.codec); never expires
sw:config-version                          string  counter, +1 on every experiment change;
                                                   the ETag of /v1/config; never expires
sw:erasures                                string  counter, +1 on every visitor erasure; workers
                                                   drop their cached enrolments when it changes
sw:deletions                               list    audit entries of deleted experiments as JSON
                                                   (who, when, key and name), newest first,
                                                   capped at AUDIT_LIMIT; never expires
sw:{<exp>}:audit                           list    audit entries as JSON, newest first, capped
                                                   at AUDIT_LIMIT; deleted with the experiment
sw:{<exp>}:p<phase>:enrolments             hash    pseudonymous visitor id → enrolment record
                                                   "<variant index>|<segment values…>";
                                                   per-visitor: expires RETENTION_DAYS after
                                                   the experiment stops or the phase ends
sw:{<exp>}:p<phase>:counts                 hash    aggregate counters (see counter fields
                                                   below); never expires, no personal data
sw:{<exp>}:p<phase>:segment-values:<attr>  set     distinct values seen for a segment
                                                   attribute, at most SEGMENT_VALUE_LIMIT
sw:{<exp>}:p<phase>:totals                 hash    "<pseudonym>:<goal>" → the visitor's total
                                                   of that goal in cents (events for conversion
                                                   goals); per-visitor: expires with enrolments
sw:{<exp>}:p<phase>:orders                 hash    order id → "<pseudonym>␟<variant>␟<gross>␟
                                                   <net>␟<refunded>␟<goals>␟<segment values…>"
                                                   (cents); per-visitor: expires with enrolments
sw:{<exp>}:p<phase>:seen                   zset    "<pseudonym>:<event id>" or "r:<order>:<id>"
                                                   → unix time; idempotency of events for
                                                   IDEMPOTENCY_WINDOW (members older are
                                                   trimmed on write); per-visitor: expires with
                                                   enrolments
=========================================  ======  ==============================================

Counter fields in ``…:counts`` (``<v>`` is the variant index, ``<day>`` is YYYY-MM-DD in UTC):

- ``e:<v>``                   enrolled visitors of a variant
- ``e:<v>:<attr>=<value>``    enrolled visitors of a variant with that segment value
- ``e:<v>:d:<day>``           enrolments of a variant on that day
- ``c:<v>:<goal>``            visitors of a variant who reached the goal (unique)
- ``n:<v>:<goal>``            events of the goal
- ``s:<v>:<goal>``            sum of the goal's value in cents (net revenue or margin)
- ``q:<v>:<goal>``            sum over visitors of the square of each visitor's total (cents²)
- c/s/q also per segment value (``…:<goal>:<attr>=<value>``) and per UTC day
  (``…:<goal>:d:<day>``; a day's ``q`` is the change of the squares that day, so the days up to
  D add up to the sum of squares of the totals as of D)
"""

from __future__ import annotations

PREFIX = "sw"  # one prefix, so that Splitwerk can share a Redis with other applications
AUDIT_LIMIT = 1000  # audit entries kept per experiment; older ones are trimmed

EXPERIMENTS = f"{PREFIX}:experiments"
CONFIG_VERSION = f"{PREFIX}:config-version"
ERASURES = f"{PREFIX}:erasures"
DELETIONS = f"{PREFIX}:deletions"


def experiment_prefix(experiment: str) -> str:
    """The common prefix (with hash tag) of every key of one experiment."""
    return f"{PREFIX}:{{{experiment}}}:"


def experiment_pattern(experiment: str) -> str:
    """A SCAN pattern matching every key of one experiment (its key is regex-checked)."""
    return experiment_prefix(experiment) + "*"


def audit(experiment: str) -> str:
    """The audit trail list of an experiment."""
    return experiment_prefix(experiment) + "audit"


def enrolments(experiment: str, phase: int) -> str:
    """The hash of enrolment records of one phase."""
    return f"{experiment_prefix(experiment)}p{phase}:enrolments"


def counts(experiment: str, phase: int) -> str:
    """The hash of aggregate counters of one phase."""
    return f"{experiment_prefix(experiment)}p{phase}:counts"


def segment_values(experiment: str, phase: int, attribute: str) -> str:
    """The set of distinct values seen for one segment attribute in one phase."""
    return f"{experiment_prefix(experiment)}p{phase}:segment-values:{attribute}"


def totals(experiment: str, phase: int) -> str:
    """The hash of each visitor's running total per goal."""
    return f"{experiment_prefix(experiment)}p{phase}:totals"


def orders(experiment: str, phase: int) -> str:
    """The hash of orders attributed to the experiment (for refunds)."""
    return f"{experiment_prefix(experiment)}p{phase}:orders"


def seen(experiment: str, phase: int) -> str:
    """The sorted set of recently applied event ids (idempotency)."""
    return f"{experiment_prefix(experiment)}p{phase}:seen"


def per_visitor(experiment: str, phase: int) -> tuple[str, ...]:
    """Every key of a phase that holds per-visitor data (expired by the retention limit)."""
    return (
        enrolments(experiment, phase),
        totals(experiment, phase),
        orders(experiment, phase),
        seen(experiment, phase),
    )
