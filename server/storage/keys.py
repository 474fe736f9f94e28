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
sw:dashboard-session:<sha256>              string  "1" while a dashboard sign-in is valid; the
                                                   SHA-256 of the session id in its cookie;
                                                   expires with the session (12 h), deleted at
                                                   sign-out
sw:readiness                               string  "1", written by each /readyz to see that
                                                   Redis takes writes; expires after 60 s
sw:deletions                               list    audit entries of deleted experiments as JSON
                                                   (who, when, key and name), newest first,
                                                   capped at AUDIT_LIMIT; never expires
sw:{<exp>}:audit                           list    audit entries as JSON, newest first, capped
                                                   at AUDIT_LIMIT; deleted with the experiment
sw:{<exp>}:p<phase>:enrolments             hash    pseudonymous visitor id → enrolment record
                                                   "<variant index>␟<segment values…>" (␟ is
                                                   the unit separator, \\x1f), then extras
                                                   "\\x1e<letter>:<value>" in any order
                                                   (readers ignore unknown letters; a record
                                                   without \\x1e has none): "x:<integer>"
                                                   the CUPED covariate in hundredths,
                                                   within ±10^8 (issue 20);
                                                   per-visitor: expires RETENTION_DAYS after
                                                   the experiment stops or the phase ends
sw:{<exp>}:p<phase>:counts                 hash    aggregate counters (see counter fields
                                                   below); never expires, no personal data
sw:{<exp>}:p<phase>:segment-values:<attr>  set     distinct values seen for a segment
                                                   attribute, at most SEGMENT_VALUE_LIMIT
sw:{<exp>}:p<phase>:totals                 hash    "<pseudonym>:<goal>" → the visitor's total
                                                   of that goal in cents (events for conversion
                                                   goals), |total| ≤ MAX_VISITOR_TOTAL_CENTS;
                                                   "<pseudonym>:@day" → "<YYYY-MM-DD>:<n>", the
                                                   visitor's new conversion ids of that server
                                                   day (n ≤ the daily cap; one field, reset each
                                                   day); per-visitor: expires with enrolments
sw:{<exp>}:p<phase>:orders                 hash    order id → "<pseudonym>␟<variant>␟<gross>␟
                                                   <net>␟<refunded>␟<goals>␟<segment values…>"
                                                   (cents); per-visitor: expires with enrolments
sw:{<exp>}:p<phase>:seen                   zset    idempotency members, one namespace per event
                                                   kind: "c:<pseudonym>:<event id>" conversion,
                                                   "o:<order id>" order, "r:<length of order
                                                   id>:<order id>:<refund id or empty>" refund
                                                   → score minute·2^24 + 24-bit content digest
                                                   (unix minute; exact below 2^53 until the
                                                   year 2990); members older than
                                                   IDEMPOTENCY_WINDOW are trimmed on write;
                                                   per-visitor: expires with enrolments
=========================================  ======  ==============================================

Counter fields in ``…:counts`` (``<v>`` is the variant index, ``<day>`` is YYYY-MM-DD in UTC):

- ``e:<v>``                   enrolled visitors of a variant
- ``e:<v>:<attr>=<value>``    enrolled visitors of a variant with that segment value
- ``e:<v>:d:<day>``           enrolments of a variant on that day
- ``c:<v>:<goal>``            visitors of a variant who reached the goal (unique)
- ``n:<v>:<goal>``            events of the goal
- ``s:<v>:<goal>``            sum of the goal's value in cents (net revenue or margin)
- ``qh:<v>:<goal>``, ``q:<v>:<goal>``  sum over visitors of the square of each visitor's total
  (cents²) in two parts: squares = qh·10^8 + q. Each visitor's t² is split as
  ``(h² + ⌊2hl/10^4⌋)·10^8 + ((2hl mod 10^4)·10^4 + l²)`` with t = h·10^4 + l, so both parts
  stay below 2^53 for 10 million visitors of up to MAX_VISITOR_TOTAL_CENTS each (a single
  int64 overflows at 9.2e18 cents², about 920 visitors of a million). ``q`` written by
  versions before the split holds whole squares (``qh`` absent), which reads the same.
- ``cs:<v>:<goal>``, ``cqh:<v>:<goal>``, ``cq:<v>:<goal>``  as s and qh/q, with each visitor's
  total capped at the value cap (winsorised to ±VALUE_CAP at write time; issue 13); the
  statistics use these, the shown totals use the uncapped s. The capped squares are two-part
  like q (capped squares = cqh·10^8 + cq): a capped total is at most the cap, but the sum of
  capped squares is not (a cap of 1,000.00 is 10^10 cents² per visitor, 10^17 for 10 million
  visitors, above 2^53). ``cq`` written before the split holds whole squares (``cqh`` absent).
- ``xn:<v>``                  enrolled visitors of a variant who sent a CUPED covariate
  (issue 20); ``xs:<v>`` their Σx in hundredths; ``xqh:<v>``, ``xq:<v>`` their Σx² in two
  parts (xqh·10^8 + xq, split as q). Visitors without a covariate add nothing (x = 0).
- ``xyh:<v>:<goal>``, ``xy:<v>:<goal>``  Σ x·y over the variant's visitors with a covariate,
  in two parts (xyh·10^8 + xy), y being the goal's statistic: converted (0/1) for a
  conversion goal, the capped total in cents for a value goal; hundredths × y. Changed by
  x·Δy whenever a visitor's y changes (events and refunds).
- xn/xs/xq/xqh and xy/xyh also per UTC day (``…:d:<day>``, the changes of that day); not
  per segment value.
- c/s/q/qh/cs/cq/cqh also per segment value (``…:<goal>:<attr>=<value>``) and per UTC day
  (``…:<goal>:d:<day>``; a day's ``q``/``qh``/``cq``/``cqh`` are the change of the squares that
  day, so the days up to D add up to the sum of squares of the totals as of D)

Bounds (README "Limits and security"): every counter stays within ±2^53 when a variant has
at most 10 million visitors, each with totals within ±MAX_VISITOR_TOTAL_CENTS (in
server.core.money), whatever the value cap; the Lua scripts check each counter they change,
capped ones included, before their first write and refuse an event that would leave ±2^53.
CUPED's sums stay exact at the same bounds with |covariate| ≤ 1,000,000.00 (10^8
hundredths): Σx ≤ 10^15; each visitor's x² and x·y split into two parts of at most about
10^8 each, so both parts stay below 2^53 for 10 million visitors.
"""

from __future__ import annotations

PREFIX = "sw"  # one prefix, so that Splitwerk can share a Redis with other applications
AUDIT_LIMIT = 1000  # audit entries kept per experiment; older ones are trimmed

EXPERIMENTS = f"{PREFIX}:experiments"
CONFIG_VERSION = f"{PREFIX}:config-version"
READINESS_PROBE = f"{PREFIX}:readiness"
READINESS_PROBE_TTL = 60  # seconds; the probe is rewritten by every readiness check
ERASURES = f"{PREFIX}:erasures"
DASHBOARD_SESSION_PREFIX = f"{PREFIX}:dashboard-session:"


def dashboard_session(digest: str) -> str:
    """The marker of one open dashboard session, by the hex SHA-256 of its id."""
    return DASHBOARD_SESSION_PREFIX + digest


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


def conversion_member(pseudonym: str, event_id: str) -> str:
    """The idempotency member of a conversion (pseudonyms are 16 base64url characters)."""
    return f"c:{pseudonym}:{event_id}"


def conversion_member_prefix(pseudonym: str) -> str:
    """What every conversion member of one visitor starts with (for erasure)."""
    return f"c:{pseudonym}:"


def order_member(order_id: str) -> str:
    """The idempotency member of an order: one per order id and phase, whoever sends it."""
    return f"o:{order_id}"


def refund_member(order_id: str, refund_id: str) -> str:
    """The idempotency member of a refund; the length prefix keeps order ids with ':' apart."""
    return f"{refund_member_prefix(order_id)}{refund_id}"


def refund_member_prefix(order_id: str) -> str:
    """What every refund member of one order starts with, and no other order's (for erasure)."""
    return f"r:{len(order_id)}:{order_id}:"


def legacy_member_prefix(pseudonym: str) -> str:
    """Members of versions before the namespaces ("<pseudonym>:<event id>"), trimmed by age."""
    return f"{pseudonym}:"


def per_visitor(experiment: str, phase: int) -> tuple[str, ...]:
    """Every key of a phase that holds per-visitor data (expired by the retention limit)."""
    return (
        enrolments(experiment, phase),
        totals(experiment, phase),
        orders(experiment, phase),
        seen(experiment, phase),
    )
