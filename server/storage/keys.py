"""The whole Redis keyspace of Splitwerk; the only module that writes key strings.

Keys of one experiment share the hash tag ``{<experiment>}`` so that every Lua script and
transaction of an experiment touches one Redis Cluster slot. An experiment with more than one
sub-shard (``Experiment.shards``) keeps its per-phase keys (enrolments, counts, segment values,
totals, orders, seen) once per sub-shard, with the sub-shard's tag ``{<experiment>:<k>:<n>}``
in place of ``{<experiment>}`` (``sub_shard``); a visitor's records all sit in the sub-shard of
their pseudonym (``shard_of``), and readers sum the counts of every sub-shard. The audit list
keeps the experiment's own tag. One sub-shard is the plain ``{<experiment>}`` layout.

Every part of a key that comes from outside (experiment keys, attribute names, pseudonymous
visitor ids) has passed the ID pattern in ``server.schemas`` or was made by
``server.core.privacy`` before it gets here.

=========================================  ======  ==============================================
key                                        type    holds / expires
=========================================  ======  ==============================================
sw:experiments                             hash    experiment key → experiment JSON
                                                   (storage.codec); never expires
sw:config-version                          string  counter, +1 on every experiment change;
                                                   the ETag of /v1/config; never expires
{sw:experiments}:version                   string  the same counter in a Redis Cluster, in the
                                                   slot of sw:experiments (the hash tag is that
                                                   key's whole name), so that one node reads and
                                                   changes both; it continues sw:config-version
                                                   when a cluster holds data of a single Redis
sw:erasures                                string  counter, +1 on every visitor erasure; workers
                                                   drop their cached enrolments when it changes
sw:dashboard-session:<sha256>              string  "1" while a dashboard sign-in is valid; the
                                                   SHA-256 of the session id in its cookie;
                                                   expires with the session (12 h), deleted at
                                                   sign-out
sw:readiness                               string  "1", written by each /readyz to see that
                                                   Redis takes writes; expires after 60 s
sw:readiness:{<n>}                         string  the same in a Redis Cluster, one key on each
                                                   master (the first n whose slot it serves)
sw:deletions                               list    audit entries of deleted experiments as JSON
                                                   (who, when, key and name), newest first,
                                                   capped at AUDIT_LIMIT; never expires
sw:{_webhooks}:announced                   hash    "<exp>@<created_at>:p<phase>:<kind>[:<goal>:
                                                   <variant>]" → unix seconds it was announced
                                                   (sample ratio alarm, guardrail harm,
                                                   conclusive result): each is announced once;
                                                   fields of deleted experiments are pruned by
                                                   the evaluator; never expires
sw:{_webhooks}:outbox                      zset    webhook delivery id → unix seconds of its
                                                   next attempt; at most OUTBOX_LIMIT members
                                                   (a full outbox drops new deliveries, logged)
sw:{_webhooks}:deliveries                  hash    webhook delivery id → JSON {"type", "body",
                                                   "attempts"}; deleted when delivered or given
                                                   up after WEBHOOK_MAX_ATTEMPTS
sw:evaluator-turn                          string  random token of the worker evaluating now;
                                                   expires EVALUATION_INTERVAL after it was
                                                   taken, so one worker evaluates per interval
sw:{<exp>}:audit                           list    audit entries as JSON, newest first, capped
                                                   at AUDIT_LIMIT; deleted with the experiment
sw:{<exp>:<k>:<n>}:p<phase>:…             any     the per-phase keys below, of sub-shard k of an
                                                   experiment with several (see above)
sw:{<exp>}:p<phase>:enrolments             hash    pseudonymous visitor id → enrolment record
                                                   "<variant index>␟<segment values…>" (␟ is
                                                   the unit separator, \\x1f), then extras
                                                   "␞<letter>:<value>" (␞ is \\x1e; see
                                                   "Per-visitor extras" below);
                                                   per-visitor: expires RETENTION_DAYS after
                                                   the experiment stops or the phase ends
sw:{<exp>}:p<phase>:counts                 hash    aggregate counters (see counter fields
                                                   below); never expires, no personal data
sw:{<exp>}:p<phase>:segment-values:<attr>  set     distinct values seen for a segment
                                                   attribute, at most SEGMENT_VALUE_LIMIT
sw:{<exp>}:p<phase>:totals                 hash    totals written by earlier versions, one field
                                                   per visitor and name ("<pseudonym>:<goal>",
                                                   "…:<goal>:r", "…:@day"): read where the
                                                   enrolment record lacks the name, and deleted
                                                   when the record takes the value (the "g"
                                                   extra below); per-visitor: expires with
                                                   enrolments
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

Per-visitor extras of an enrolment record (``EXTRA`` + one letter + ``:`` + value, any order,
parsed by letter, unknown letters ignored; a record without ``\x1e`` reads as before):

- ``t:<unix minute>``  the enrolment time, written only while the experiment has a goal with an
  attribution window (issue 21; windows are fixed once it started). 13 bytes.
- ``x:<integer>``      the CUPED covariate in hundredths, within ±10^8 (issue 20), from the
  visitor's first enrolment.
- ``g:<name>=<value>;…``  the visitor's totals (issue 21), written by record_event.lua and
  refund.lua (``read_totals``/``write_totals`` in counters.lua): ``<goal>`` → the visitor's
  total of that goal in cents (events for conversion goals), |total| ≤ MAX_VISITOR_TOTAL_CENTS;
  ``<goal>:r`` → a revenue goal's refunded net revenue (cents; from the first refund);
  ``@day`` → ``<YYYY-MM-DD>:<n>``, the visitor's new conversion ids of that server day (n ≤ the
  daily cap). Goal keys never hold ``=`` or ``;``. In the record, not a hash field of its own:
  a field costs Redis about 70 bytes before its contents.

Order records of windowed goals name the goal as ``<goal>=<kind letter>/<cohort>/<deadline>``:
the buyer's cohort (enrolment day number) and the unix minute until which refunds count.

Windowed goals (issue 21) and their per-visitor storage: a visitor of an experiment with
windowed goals holds one enrolment record (pseudonym 16 B + variant, segment values, the
13-byte time and their totals), plus one order record and one idempotency member per order
until the idempotency window trims the member. tests/api/test_windows.py measures the record
of a buyer of three windowed goals with MEMORY USAGE: at most 200 bytes per visitor and
experiment (128 measured); each order costs about 260 bytes more (order record 144, idempotency
member 118) while kept. They are kept while the experiment runs (stickiness needs them) and
expire RETENTION_DAYS after the stop plus the longest window and return period (the last
visitor's figures settle then; nothing counts afterwards).

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
- ``ds:<v>:<goal>``, ``dqh:<v>:<goal>``, ``dq:<v>:<goal>``  the capped sums as their
  difference from the uncapped ones: the capped sum is s + ds, the capped squares
  (qh + dqh)·10^8 + (q + dq), with each visitor's total capped at the value cap (winsorised to
  ±VALUE_CAP at write time; issue 13). The statistics use the capped sums, the shown totals the
  uncapped s. A visitor whose total stays within the cap changes no difference, so most
  events write none of these (the reader, ``services.results.capped_from_differences``, takes
  a missing one as 0). Phases from ``Experiment.capped_differences_from`` on.
- ``cs:<v>:<goal>``, ``cqh:<v>:<goal>``, ``cq:<v>:<goal>``  the capped sums themselves, in
  phases begun before that format (they keep it to the end: the scripts are told which). The
  capped squares are two-part like q (capped squares = cqh·10^8 + cq): a capped total is at
  most the cap, but the sum of capped squares is not (a cap of 1,000.00 is 10^10 cents² per
  visitor, 10^17 for 10 million visitors, above 2^53). ``cq`` written before the split holds
  whole squares (``cqh`` absent).
- ``rp:<v>:<goal>``            visitors with two or more events of a conversion goal (repeat
  buyers; issue 21)
- ``nq:<v>:<goal>``            sum over visitors of the square of their event count (events per
  visitor's variance); below 2^53 for 10 million visitors of up to 30,000 events each (the
  scripts refuse an event that would leave it, like every counter)
- ``rt:<v>:<goal>``, ``rth:<v>:<goal>``  see rf (the return rate's cross sums)
- ``rf:<v>:<goal>``, ``rfqh:<v>:<goal>``, ``rfq:<v>:<goal>``  a revenue goal's refunded net
  revenue (Σr, cents), the two-part sum of its squares (Σr² = rfqh·10^8 + rfq) and the
  two-part cross sum with the visitors' totals (Σr·T = rth·10^8 + rt; T = net − r): the return
  rate's delta method (docs/statistics.md); each part stays below 2^53 like q/qh
- ``…:k:<cohort>`` (windowed goals, issue 21): c/n/s/q/qh/cs/cq/cqh (or ds/dq/dqh) and
  rp/nq/rf/rfq/rfqh/rt/rth
  of the visitors enrolled on day number <cohort> (unix day, minute // 1440), whenever their
  events come: a visitor's whole contribution lies in their cohort, so the matured figures of a
  goal are the sums over the cohorts whose window and return period have closed (with
  ``e:<v>:d:<day>`` as the cohort sizes), exact and without per-visitor data; a closed cohort
  never changes again (record_event.lua and refund.lua refuse what comes after a visitor's
  deadline)
- ``xn:<v>``                  enrolled visitors of a variant who sent a CUPED covariate
  (issue 20); ``xs:<v>`` their Σx in hundredths; ``xqh:<v>``, ``xq:<v>`` their Σx² in two
  parts (xqh·10^8 + xq, split as q). Visitors without a covariate add nothing (x = 0).
- ``xyh:<v>:<goal>``, ``xy:<v>:<goal>``  Σ x·y over the variant's visitors with a covariate,
  in two parts (xyh·10^8 + xy), y being the goal's statistic: converted (0/1) for a
  conversion goal, the capped total in cents for a value goal; hundredths × y. Changed by
  x·Δy whenever a visitor's y changes (events and refunds).
- xn/xs/xq/xqh and xy/xyh also per UTC day (``…:d:<day>``, the changes of that day); not
  per segment value.
- c/s/q/qh/cs/cq/cqh/ds/dq/dqh also per segment value (``…:<goal>:<attr>=<value>``)
  and per UTC day (``…:<goal>:d:<day>``; a day's ``q``/``qh``/``cq``/``cqh`` are the change of
  the squares that day, so the days up to D add up to the sum of squares of the totals as of D)

Bounds (README "Limits and security"): every counter stays within ±2^53 when a variant has
at most 10 million visitors, each with totals within ±MAX_VISITOR_TOTAL_CENTS (in
server.core.money), whatever the value cap; the Lua scripts check each counter they change,
capped ones included, before their first write and refuse an event that would leave ±2^53.
CUPED's sums stay exact at the same bounds with |covariate| ≤ 1,000,000.00 (10^8
hundredths): Σx ≤ 10^15; each visitor's x² and x·y split into two parts of at most about
10^8 each, so both parts stay below 2^53 for 10 million visitors.
"""

from __future__ import annotations

import binascii
import functools
import itertools
import zlib

PREFIX = "sw"  # one prefix, so that Splitwerk can share a Redis with other applications
AUDIT_LIMIT = 1000  # audit entries kept per experiment; older ones are trimmed
EXTRA = "\x1e"  # starts each per-visitor extra of an enrolment record (see above)

EXPERIMENTS = f"{PREFIX}:experiments"
CONFIG_VERSION = f"{PREFIX}:config-version"
READINESS_PROBE = f"{PREFIX}:readiness"
READINESS_PROBE_TTL = 60  # seconds; the probe is rewritten by every readiness check
# In a cluster: how many probe keys to try to find one on every master. 16,384 slots over
# even a few hundred masters put one in each within a few thousand tries.
READINESS_PROBE_SEARCH = 100_000
# The configuration's version in a Redis Cluster: its hash tag is the whole name of
# EXPERIMENTS, so both keys share a slot and one transaction changes both.
CLUSTER_CONFIG_VERSION = "{" + EXPERIMENTS + "}:version"


def readiness_probe(number: int) -> str:
    """The readiness probe key of a cluster with hash tag ``number`` (one per master)."""
    return f"{READINESS_PROBE}:{{{number}}}"


ERASURES = f"{PREFIX}:erasures"
DASHBOARD_SESSION_PREFIX = f"{PREFIX}:dashboard-session:"
# Webhook keys share one hash tag (one Redis Cluster slot for announce.lua); it starts with "_",
# which no experiment key can, so deleting an experiment's keys never matches these.
WEBHOOKS_PREFIX = f"{PREFIX}:{{_webhooks}}:"
ANNOUNCED = WEBHOOKS_PREFIX + "announced"
OUTBOX = WEBHOOKS_PREFIX + "outbox"
DELIVERIES = WEBHOOKS_PREFIX + "deliveries"
OUTBOX_LIMIT = 1000  # queued deliveries; a receiver down for days must not fill Redis
EVALUATOR_TURN = f"{PREFIX}:evaluator-turn"


def announcement(experiment: str, created_at: float, phase: int, kind: str, *detail: str) -> str:
    """The field of one announcement in ANNOUNCED; ``created_at`` tells a re-created
    experiment of the same key apart from the deleted one."""
    return ":".join((f"{experiment}@{int(created_at)}", f"p{phase}", kind, *detail))


def announced_experiment(field: str) -> str:
    """The experiment key an ANNOUNCED field belongs to."""
    return field.partition("@")[0]


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


def sub_shard_pattern(experiment: str) -> str:
    """A SCAN pattern matching every key of the sub-shards of one experiment (ids have no ':',
    so no other experiment's keys start the same way)."""
    return f"{PREFIX}:{{{experiment}:*"


SLOTS = 16_384  # hash slots of a Redis Cluster
SUB_SHARD_TAGS = 4096  # sub-shard hash tags remembered per process (a few per experiment)


def slot(tag: str) -> int:
    """The Redis Cluster slot of a hash tag: CRC16 (XMODEM) of it, modulo 16,384."""
    return binascii.crc_hqx(tag.encode(), 0) % SLOTS


@functools.lru_cache(maxsize=SUB_SHARD_TAGS)
def sub_shard(experiment: str, shard: int, shards: int) -> str:
    """The hash tag of one of an experiment's ``shards`` sub-shards; used in place of the
    experiment key in the per-phase keys above.

    One sub-shard is the experiment itself (``{<exp>}``, what every version wrote). With more,
    sub-shard k is ``{<exp>:<k>:<n>}`` with the smallest n whose slot lies in the k-th of
    ``shards`` equal parts of the slot range: a cluster whose masters hold equal contiguous
    ranges (as ``redis-cli --cluster create`` assigns them) then gets one sub-shard per master
    when ``shards`` equals the number of masters, and an even spread for multiples of it.
    """
    if shards == 1:
        return experiment
    low, high = shard * SLOTS // shards, (shard + 1) * SLOTS // shards
    # CRC16 spreads the candidates over every slot: about ``shards`` tries find one in range
    for attempt in itertools.count():
        tag = f"{experiment}:{shard}:{attempt}"
        if low <= slot(tag) < high:
            return tag
    raise AssertionError("unreachable")  # pragma: no cover


def shard_of(pseudonym: str, shards: int) -> int:
    """The sub-shard of a visitor: a hash bucket of their pseudonym, which every request
    about the visitor (assign, events, erasure) knows, so that all of one visitor's records
    of an experiment phase stay in one slot."""
    return zlib.crc32(pseudonym.encode()) % shards


def visitor_shard(experiment: str, pseudonym: str, shards: int) -> str:
    """The sub-shard hash tag that holds one visitor's records of an experiment."""
    if shards == 1:  # the usual case, on the event path: no hash of the pseudonym
        return experiment
    return sub_shard(experiment, shard_of(pseudonym, shards), shards)


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
