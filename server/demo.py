"""The demo experiment and simulated shop traffic that `splitwerk serve --dev` starts with.

The demo tells the story Splitwerk exists for: the green button with a free-shipping note
wins the first order (more visitors buy), but its buyers send more goods back and come back
less often to buy again, so over 30 days after their first visit it earns less contribution
margin per visitor than the control. Its primary goal is therefore the margin over a 30-day
attribution window (issue 21), judged on the visitors whose window and 14-day return period
have closed, and with the traffic `serve --dev` generates (seed 42) the decision card says to
keep the control (tests/test_demo.py holds it to that).
"""

from __future__ import annotations

import random
from typing import Any

from server import schemas
from server.context import AppServices
from server.services import experiments as services
from server.services.assignments import AssignRequest
from server.services.experiments import SECONDS_PER_DAY
from server.storage.store import Store

DEMO_KEY = "checkout-button"  # the example shop's product page renders this experiment
DEMO_RETENTION_DAYS = 90  # the default retention; only used if the demo is stopped

DEMO_EXPERIMENT: dict[str, Any] = {
    "key": DEMO_KEY,
    "name": "Checkout button: green and free-shipping note",
    "hypothesis": (
        "A green button with a free-shipping note sells more often; does it earn more margin?"
    ),
    "variants": [
        {"key": "control", "weight": 1.0, "payload": {"color": "#1f5fbf", "note": ""}},
        {
            "key": "green-note",
            "weight": 1.0,
            "payload": {"color": "#1b7f3a", "note": "Kostenloser Versand ab 50 €"},
        },
    ],
    "coverage": 10_000,
    "goals": [
        {
            "key": "margin",
            "kind": "margin",
            "event": "purchase",
            "primary": True,
            "window_days": 30,
        },
        {"key": "purchase"},
        {"key": "revenue", "kind": "revenue", "event": "purchase", "window_days": 30},
        {"key": "add_to_cart"},
    ],
    "segments": ["source", "device", "customer"],
    # The demo runs open-ended (no planned size): the always-valid test judges it, which may be
    # read at any time; a group sequential design would still be at its first, strictest looks.
    "analysis": "always_valid",
    # Returns and repeat orders move the 30-day margin by a fifth and more; the always-valid
    # test's mixture is tuned to the effect that matters, and finds such effects sooner.
    "minimum_effect": 0.2,
}


def ensure_demo_experiment(store: Store, now: float) -> bool:
    """Create and start the demo experiment if there is no experiment at all; True if created."""
    _, experiments = store.load_experiments()
    if experiments:
        return False
    data = schemas.ExperimentCreateSchema().load(DEMO_EXPERIMENT)
    services.create_experiment(store, data, "demo", now)
    services.act_on_experiment(
        store, DEMO_KEY, "start", "demo", now, retention_days=DEMO_RETENTION_DAYS
    )
    return True


# Traffic sources and their shares of visitors, as a German shop that advertises on social
# networks sees them.
DEMO_SOURCES = (
    ("facebook", 0.25),
    ("instagram", 0.2),
    ("search", 0.2),
    ("newsletter", 0.1),
    ("youtube", 0.1),
    ("direct", 0.15),
)
DEMO_DEVICES = (("mobile", 0.65), ("desktop", 0.35))
RETURNING_IN_TEN = 3  # visitors in ten who have bought before (the built-in "customer" segment)
# Purchase probability of the control by source. Visitors enrol when they see the checkout
# button in the cart, so a good share of them buy.
DEMO_BASE_RATES = {
    "facebook": 0.18,
    "instagram": 0.15,
    "search": 0.3,
    "newsletter": 0.4,
    "youtube": 0.12,
    "direct": 0.27,
}
# The green note makes almost a third more visitors buy, at the same baskets (median about 55 €): it
# wins the first order. But a free-shipping promise draws buyers who order to try and send
# back, and who rarely come back: within 30 days, more returns and fewer repeat orders.
GREEN_PURCHASE_FACTOR = 1.3
BASKET_LOG_MEDIAN = 4.0  # log of the median basket in euros
BASKET_LOG_SPREAD = 0.4  # standard deviation of the log basket: most baskets within ×1.5
RETURN_SHARE = {"control": 0.08, "green-note": 0.45}  # orders sent back within the 14 days
REPEAT_SHARE = {"control": 0.45, "green-note": 0.05}  # buyers who order again within 30 days
# Days of history the generator spreads visitors over: more than the 30-day window and the
# 14-day return period, so that the first weeks' visitors have matured figures.
DEMO_DAYS = 90


def _pick(rng: random.Random, table: tuple[tuple[str, float], ...]) -> str:
    return rng.choices([name for name, _ in table], weights=[share for _, share in table])[0]


def generate_traffic(services: AppServices, visitors: int, now: float, seed: int = 42) -> int:
    """Simulate ``visitors`` shoppers of the demo experiment over the last DEMO_DAYS days.

    Goes through the same services as the HTTP API (assignment, events), seeded so that every
    run gives the same data. Returns the number of orders placed.
    """
    rng = random.Random(seed)
    assigner, recorder = services.assigner, services.event_recorder
    orders = 0
    for number in range(visitors):
        visitor = f"demo-{seed}-{number}"
        source, device = _pick(rng, DEMO_SOURCES), _pick(rng, DEMO_DEVICES)
        # three in ten visitors have bought before (not drawn: the seeded story stays as it is)
        customer = "returning" if number % 10 < RETURNING_IN_TEN else "new"
        moment = now - SECONDS_PER_DAY * DEMO_DAYS * (1 - number / visitors)
        result = assigner.assign(
            AssignRequest(
                visitor=visitor,
                experiments=(DEMO_KEY,),
                attributes={"source": source, "device": device, "customer": customer},
            ),
            moment,
        )
        (answer,) = result.assignments
        if not answer.is_enrolled:
            continue
        is_green = answer.variant_key != "control"
        rate = DEMO_BASE_RATES[source] * (GREEN_PURCHASE_FACTOR if is_green else 1.0)
        events: list[dict[str, Any]] = []
        if rng.random() < rate * 1.5:  # some add one more product from the cart's suggestions
            events.append(_conversion(visitor, "add_to_cart", number, moment))
        buys = rng.random() < rate
        basket = 0.0
        if buys:
            basket = rng.lognormvariate(BASKET_LOG_MEDIAN, BASKET_LOG_SPREAD)
            events.append(_order(visitor, f"demo-order-{number}", basket, moment))
            orders += 1
        if events:
            recorder.record(events, moment + 60, is_trusted=True)
        if buys:
            orders += _afterwards(
                rng, recorder, (visitor, number, basket), answer.variant_key or "", moment, now
            )
    return orders


def _afterwards(
    rng: random.Random,
    recorder: Any,
    first: tuple[str, int, float],
    variant: str,
    moment: float,
    now: float,
) -> int:
    """A buyer's return of the first order (visitor, number, basket) and repeat order, each
    when it happens before ``now``; returns the number of repeat orders placed."""
    visitor, number, basket = first
    if rng.random() < RETURN_SHARE[variant]:
        at = moment + SECONDS_PER_DAY * rng.uniform(2, 12)
        if at < now:
            refund = _refund(f"demo-order-{number}", round(basket * 100), at)
            recorder.record([refund], at + 60, is_trusted=True)
    if rng.random() >= REPEAT_SHARE[variant]:
        return 0
    at = moment + SECONDS_PER_DAY * rng.uniform(3, 28)
    if at >= now:
        return 0
    basket = rng.lognormvariate(BASKET_LOG_MEDIAN, BASKET_LOG_SPREAD)
    repeat = _order(visitor, f"demo-order-{number}-again", basket, at)
    recorder.record([repeat], at + 60, is_trusted=True)
    return 1


def _conversion(visitor: str, goal: str, number: int, moment: float) -> dict[str, Any]:
    return {"type": "conversion", "id": f"demo-{goal}-{number}", "visitor": visitor,
            "goal": goal, "value": 0, "ts": moment}  # fmt: skip


def _refund(order_id: str, revenue: int, moment: float) -> dict[str, Any]:
    """The whole basket sent back and refunded (the shop keeps the shipping)."""
    return {"type": "refund", "id": "return", "order_id": order_id, "amount": revenue,
            "ts": moment}  # fmt: skip


def _order(visitor: str, order_id: str, basket: float, moment: float) -> dict[str, Any]:
    revenue = round(basket * 100)  # cents, VAT included
    tax = revenue * 19 // 119  # German standard VAT contained in the price
    return {
        "type": "order", "id": None, "visitor": visitor, "order_id": order_id,
        "goal": "purchase", "revenue": revenue, "tax": tax, "shipping": 490,
        "discount": 0, "cost_of_goods": revenue * 45 // 100, "payment_fee": 35 + revenue // 50,
        "currency": "EUR", "ts": moment,
    }  # fmt: skip
