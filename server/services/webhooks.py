"""Delivering webhook announcements: signed POSTs from the Redis outbox, retried with backoff.

The outbox lives in Redis (``server.storage.keys``: ``sw:{_webhooks}:outbox``), so that an
announcement queued before a restart is still delivered after it. Each due delivery is POSTed
as JSON with the headers of ``server.core.signing``; a 2xx answer takes it out of the outbox.
Anything else (another status, a timeout, a refused connection) counts as a failed attempt:
the next one is due after ``retry_interval`` doubled per attempt, at most ``MAX_RETRY_DELAY``,
with ±25 % jitter, or after the receiver's ``Retry-After`` when that is longer. After
``max_attempts`` the delivery is given up and logged. The secret and the URL's path and query
(which may hold a token) are never logged.
"""

from __future__ import annotations

import logging
import random
import urllib.parse
from dataclasses import dataclass, replace

import httpx

from server.core import signing
from server.core.models import Delivery
from server.storage.store import Store

log = logging.getLogger(__name__)

MAX_RETRY_DELAY = 3600.0  # seconds; an hour between late attempts keeps a dead receiver cheap
JITTER = 0.25  # ± share of each delay, so that many failed deliveries do not retry in step
DELIVERIES_PER_RUN = 20  # at most this many POSTs per evaluation; the rest wait for the next
USER_AGENT = "Splitwerk-Webhook/1"


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """What one pass over the outbox did."""

    delivered: int = 0
    retried: int = 0
    given_up: int = 0


def _retry_after(response: httpx.Response | None) -> float:
    """The receiver's Retry-After in seconds (the delta form), 0 when absent or a date."""
    if response is None:
        return 0.0
    try:
        seconds = float(str(response.headers.get("Retry-After", "")))
    except ValueError:
        return 0.0
    return max(0.0, seconds)


class WebhookSender:
    """Sends the outbox's due deliveries to one URL, signed with one secret."""

    def __init__(
        self,
        url: str,
        secret: str,
        client: httpx.Client,
        *,
        max_attempts: int,
        retry_interval: float,
        jitter: random.Random | None = None,
    ) -> None:
        self._url = url
        self._secret = secret
        self._client = client
        self._max_attempts = max_attempts
        self._retry_interval = retry_interval
        self._random = jitter or random.Random()
        # where deliveries go, for the log: scheme and host only
        parts = urllib.parse.urlsplit(url)
        self.destination = f"{parts.scheme}://{parts.hostname}"

    def close(self) -> None:
        """Close the HTTP connections."""
        self._client.close()

    def _post(self, delivery: Delivery, now: float) -> httpx.Response | None:
        """One attempt; the response, or None when none came (timeout, refused, reset)."""
        body = delivery.body.encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            signing.SIGNATURE_HEADER: signing.signature_header(self._secret, int(now), body),
            signing.DELIVERY_HEADER: delivery.id,
            signing.EVENT_HEADER: delivery.type,
        }
        try:
            return self._client.post(self._url, content=body, headers=headers)
        except httpx.HTTPError as error:
            log.warning(
                "webhook %s to %s failed: %s", delivery.id, self.destination, type(error).__name__
            )
            return None

    def _delay(self, attempts: int, response: httpx.Response | None) -> float:
        """Seconds until the next attempt after ``attempts`` failed ones."""
        backoff = min(self._retry_interval * 2.0 ** (attempts - 1), MAX_RETRY_DELAY)
        backoff *= 1.0 + self._random.uniform(-JITTER, JITTER)
        return min(max(backoff, _retry_after(response)), MAX_RETRY_DELAY)

    def deliver_due(self, store: Store, now: float) -> DeliveryReport:
        """Attempt every due delivery once (up to DELIVERIES_PER_RUN).

        Raises:
            StorageUnavailable: Redis failed; a delivery sent but not yet taken out is sent
                again later (receivers deduplicate by the delivery id).
        """
        delivered = retried = given_up = 0
        for delivery in store.due_deliveries(now, DELIVERIES_PER_RUN):
            response = self._post(delivery, now)
            if response is not None and response.is_success:
                store.finish_delivery(delivery.id)
                delivered += 1
                continue
            attempts = delivery.attempts + 1
            status = "no answer" if response is None else f"status {response.status_code}"
            if attempts >= self._max_attempts:
                log.warning(
                    "webhook %s (%s) to %s given up after %d attempts (%s)",
                    delivery.id,
                    delivery.type,
                    self.destination,
                    attempts,
                    status,
                )
                store.finish_delivery(delivery.id)
                given_up += 1
                continue
            due = now + self._delay(attempts, response)
            store.retry_delivery(replace(delivery, attempts=attempts), due)
            log.info(
                "webhook %s attempt %d failed (%s); retry later", delivery.id, attempts, status
            )
            retried += 1
        return DeliveryReport(delivered, retried, given_up)
