"""The demo experiment and simulated shop traffic that `splitwerk serve --dev` starts with.

The demo tells the story Splitwerk exists for: the green button with a free-shipping note
converts more often, but the baskets it sells are smaller, so it earns less contribution margin
per visitor than the control. Its primary goal is therefore the margin, and with the traffic
`serve --dev` generates (seed 42) the decision card says to keep the control
(tests/test_demo.py holds it to that).
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
        {"key": "margin", "kind": "margin", "event": "purchase", "primary": True},
        {"key": "purchase"},
        {"key": "revenue", "kind": "revenue", "event": "purchase"},
        {"key": "add_to_cart"},
    ],
    "segments": ["source", "device"],
    # The demo runs open-ended (no planned size): the always-valid test judges it, which may be
    # read at any time; a group sequential design would still be at its first, strictest looks.
    "analysis": "always_valid",
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
# The green note makes a fifth more visitors buy, but they stop at smaller baskets (median about
# 37 € instead of 55 €): more orders, less margin per visitor — about 1 € less at these rates.
GREEN_PURCHASE_FACTOR = 1.2
BASKET_LOG_MEDIAN = {"control": 4.0, "green-note": 3.6}  # log of the median basket in euros
BASKET_LOG_SPREAD = 0.4  # standard deviation of the log basket: most baskets within ×1.5
DEMO_DAYS = 14  # days of history the generator spreads visitors over


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
        moment = now - SECONDS_PER_DAY * DEMO_DAYS * (1 - number / visitors)
        result = assigner.assign(
            AssignRequest(
                visitor=visitor,
                experiments=(DEMO_KEY,),
                attributes={"source": source, "device": device},
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
        if rng.random() < rate:
            median = BASKET_LOG_MEDIAN["green-note" if is_green else "control"]
            basket = rng.lognormvariate(median, BASKET_LOG_SPREAD)
            events.append(_order(visitor, number, basket, moment))
            orders += 1
        if events:
            recorder.record(events, moment + 60, is_trusted=True)
    return orders


def _conversion(visitor: str, goal: str, number: int, moment: float) -> dict[str, Any]:
    return {"type": "conversion", "id": f"demo-{goal}-{number}", "visitor": visitor,
            "goal": goal, "value": 0, "ts": moment}  # fmt: skip


def _order(visitor: str, number: int, basket: float, moment: float) -> dict[str, Any]:
    revenue = round(basket * 100)  # cents, VAT included
    tax = revenue * 19 // 119  # German standard VAT contained in the price
    return {
        "type": "order", "id": None, "visitor": visitor, "order_id": f"demo-order-{number}",
        "goal": "purchase", "revenue": revenue, "tax": tax, "shipping": 490,
        "discount": 0, "cost_of_goods": revenue * 45 // 100, "payment_fee": 35 + revenue // 50,
        "currency": "EUR", "ts": moment,
    }  # fmt: skip
