"""The evaluator: looks at every live experiment periodically, announces once, pauses on harm.

Results are computed on read; nobody reads them at night. The evaluator reads them every
``interval`` seconds in a background thread of each worker, and a turn in Redis
(``sw:evaluator-turn``, taken for one interval) lets only one worker of all servers evaluate
per interval. For every running or paused experiment it announces, each once per experiment
phase (``sw:{_webhooks}:announced``):

- ``sample_ratio_mismatch``: the sample ratio check raised its alarm;
- ``guardrail_harm``: a challenger significantly harms a guardrail goal (one per goal and
  variant); when the experiment's ``pause_on_harm`` is set and it runs, it is paused first,
  with an audit entry by the actor ``guardrail``. Pausing is the lifecycle's pause: every
  visitor sees the control and nothing new is counted until an editor resumes; a resumed
  experiment is not paused again for a harm already announced;
- ``conclusive``: the decision says ship (server.core.decision).

With a webhook configured each announcement is queued in the same Redis script that records
it, and the outbox is delivered at the end of each turn (server.services.webhooks). The thread
never runs on a request: the assign and event paths do not wait for it. ``stop`` ends it
within the time of one Redis command or HTTP attempt (gunicorn's worker_exit and SIGTERM).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from server.core.decision import Verdict
from server.core.errors import DomainError
from server.core.models import Delivery, Experiment, Status
from server.services.decisions import experiment_decision
from server.services.experiments import pause_for_harm
from server.services.results import ExperimentResults, ResultsReader
from server.services.webhooks import DeliveryReport, WebhookSender
from server.storage import keys
from server.storage.errors import StorageUnavailable
from server.storage.store import Store

log = logging.getLogger(__name__)

INTERVAL_JITTER = 0.1  # ± share of each wait, so that workers do not all ask at one instant
SAMPLE_RATIO_MISMATCH = "sample_ratio_mismatch"  # announcement types, also the webhook's
GUARDRAIL_HARM = "guardrail_harm"
CONCLUSIVE = "conclusive"
NO_DELIVERIES = DeliveryReport()  # a turn without a webhook


@dataclass(frozen=True, slots=True)
class Announcement:
    """Something to announce once: its type, its field in the announced hash, its details."""

    type: str
    field: str
    details: dict[str, Any]


@dataclass(frozen=True, slots=True)
class EvaluationReport:
    """What one turn did: experiments looked at, announcements made, pauses, deliveries."""

    experiments: int = 0
    announced: tuple[str, ...] = ()  # the fields of the new announcements
    paused: tuple[str, ...] = ()  # experiment keys
    deliveries: DeliveryReport = NO_DELIVERIES


def _number(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def announcements(experiment: Experiment, results: ExperimentResults) -> list[Announcement]:
    """Everything an experiment's current results give reason to announce (pure)."""

    def field(kind: str, *detail: str) -> str:
        return keys.announcement(
            experiment.key, experiment.created_at, experiment.phase, kind, *detail
        )

    found = []
    if results.sample_ratio.is_mismatch:
        details = {
            "p_value": results.sample_ratio.p_value,
            "visitors": {variant.key: variant.visitors for variant in results.variants},
            "allocations": {variant.key: variant.allocation for variant in results.variants},
        }
        found.append(Announcement(SAMPLE_RATIO_MISMATCH, field("sample-ratio"), details))
    for check in results.guardrails:
        if check.is_harmful:
            interval = check.uplift_interval
            details = {
                "goal": check.goal,
                "harm": check.harm.value,
                "variant": check.variant,
                "uplift": _number(check.uplift),
                "uplift_interval": None
                if interval is None
                else [_number(interval.lower), _number(interval.upper)],
                "adjusted_p_value": _number(check.adjusted_p_value),
            }
            found.append(
                Announcement(GUARDRAIL_HARM, field("harm", check.goal, check.variant), details)
            )
    decision = experiment_decision(results)
    if decision is not None and decision.verdict is Verdict.SHIP:
        details = {
            "goal": decision.goal,
            "verdict": decision.verdict.value,
            "variant": decision.variant,
            "money": decision.is_money,
            "per_thousand": _number(decision.per_thousand),
        }
        found.append(Announcement(CONCLUSIVE, field("conclusive"), details))
    return found


def _body(delivery_id: str, announcement: Announcement, experiment: Experiment, now: float) -> str:
    """The JSON a webhook receives (README "Webhooks")."""
    document = {
        "id": delivery_id,
        "type": announcement.type,
        "created_at": dt.datetime.fromtimestamp(now, dt.UTC).isoformat(timespec="seconds"),
        "experiment": {
            "key": experiment.key,
            "name": experiment.name,
            "phase": experiment.phase,
            "status": experiment.status.value,
        },
        "details": announcement.details,
    }
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)


class Evaluator:
    """Evaluates live experiments periodically in a background thread (see the module doc)."""

    def __init__(
        self,
        store: Store,
        reader: ResultsReader,
        interval: float,
        webhook: WebhookSender | None = None,
        clock: Callable[[], float] = time.time,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        """``on_change`` is called after a pause, so that this worker's next assignment sees
        it at once (other workers within their CONFIG_REFRESH_INTERVAL)."""
        self._store = store
        self._reader = reader
        self._interval = interval
        self._webhook = webhook
        self._clock = clock
        self._on_change = on_change
        self._token = secrets.token_hex(16)  # this worker's name on the turn
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._random = random.Random()

    def run_once(self, now: float, keep_turn: Callable[[], bool] | None = None) -> EvaluationReport:
        """Evaluate every experiment whose figures still change, deliver due webhooks, now, here.

        ``keep_turn`` is asked before each experiment; False ends the turn early (another
        worker took over after this one overran its interval).

        Raises:
            StorageUnavailable: Redis failed; the next turn starts over.
        """
        _, experiments = self._store.load_experiments()
        self._store.prune_announcements(experiments.keys())
        looked = 0
        announced: list[str] = []
        paused: list[str] = []
        for experiment in sorted(experiments.values(), key=lambda item: item.key):
            if not experiment.figures_change(now):
                continue  # final figures: announced, if at all, while they still changed
            if self._stopping.is_set() or (keep_turn is not None and not keep_turn()):
                break
            looked += 1
            found = [
                item
                for item in announcements(experiment, self._reader.results(experiment, now))
                if not self._store.is_announced(item.field)
            ]
            harms = [item.details for item in found if item.type == GUARDRAIL_HARM]
            if harms and experiment.pause_on_harm and experiment.status is Status.RUNNING:
                updated = pause_for_harm(self._store, experiment.key, experiment.phase, harms, now)
                if updated is not None:
                    experiment = updated
                    paused.append(experiment.key)
                    if self._on_change is not None:
                        self._on_change()
                    log.warning("experiment %s paused: guardrail harm", experiment.key)
            for item in found:
                if item.type == GUARDRAIL_HARM:
                    item.details["paused"] = experiment.status is Status.PAUSED
                if self._announce(item, experiment, now):
                    announced.append(item.field)
        deliveries = NO_DELIVERIES
        if self._webhook is not None and not self._stopping.is_set():
            deliveries = self._webhook.deliver_due(self._store, now)
        return EvaluationReport(looked, tuple(announced), tuple(paused), deliveries)

    def _announce(self, item: Announcement, experiment: Experiment, now: float) -> bool:
        delivery = None
        if self._webhook is not None:
            delivery_id = uuid.uuid4().hex
            body = _body(delivery_id, item, experiment, now)
            delivery = Delivery(delivery_id, item.type, body)
        outcome = self._store.announce(item.field, now, delivery)
        if outcome == 2:
            log.warning("webhook outbox full: %s of %s not queued", item.type, experiment.key)
        if outcome:
            log.info("announced %s of %s", item.type, experiment.key)
        return outcome != 0

    def take_turn(self, now: float) -> EvaluationReport | None:
        """Evaluate when it is this worker's turn (None when another worker has it)."""
        if not self._store.take_turn(self._token, self._interval):
            return None
        return self.run_once(now, lambda: self._store.keep_turn(self._token, self._interval))

    def _loop(self) -> None:
        # the first wait is spread over one interval: workers started together ask apart
        wait = self._random.uniform(0.0, self._interval)
        while not self._stopping.wait(wait):
            try:
                self.take_turn(self._clock())
            except (StorageUnavailable, DomainError) as error:
                log.warning("evaluation failed: %s", error)
            spread = self._random.uniform(-INTERVAL_JITTER, INTERVAL_JITTER)
            wait = self._interval * (1.0 + spread)
        log.info("evaluator stopped")

    def start(self) -> None:
        """Start the background thread (once; after a fork, in each worker)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._loop, name="splitwerk-evaluator", daemon=True)
        self._thread.start()
        log.info("evaluator started (every %.0f s)", self._interval)

    def stop(self, timeout: float) -> bool:
        """Ask the thread to stop and wait up to ``timeout`` seconds; whether it stopped."""
        self._stopping.set()
        thread = self._thread
        if thread is None:
            return True
        thread.join(timeout)
        return not thread.is_alive()
