"""The demo experiment that `splitwerk serve --dev` creates on an empty Redis."""

from __future__ import annotations

from typing import Any

from server import schemas
from server.services import experiments as services
from server.storage.store import Store

DEMO_KEY = "checkout-button"  # the example shop's product page renders this experiment

DEMO_EXPERIMENT: dict[str, Any] = {
    "key": DEMO_KEY,
    "name": "Checkout button: green and free-shipping note",
    "hypothesis": "A green button with a free-shipping note sells more and earns more margin.",
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
        {"key": "purchase", "primary": True},
        {"key": "revenue", "kind": "revenue", "event": "purchase"},
        {"key": "margin", "kind": "margin", "event": "purchase"},
        {"key": "add_to_cart"},
    ],
    "segments": ["source", "device"],
}


def ensure_demo_experiment(store: Store, now: float) -> bool:
    """Create and start the demo experiment if there is no experiment at all; True if created."""
    _, experiments = store.load_experiments()
    if experiments:
        return False
    data = schemas.ExperimentCreateSchema().load(DEMO_EXPERIMENT)
    services.create_experiment(store, data, "demo", now)
    services.act_on_experiment(store, DEMO_KEY, "start", "demo", now, retention_days=1)
    return True
