"""A one-page Django shop: the visitor middleware, a server-side variant, an order.

Run it next to ``make run`` (the server on :8000)::

    SPLITWERK_URL=http://127.0.0.1:8000 SHOP_INGEST_KEY=<the ingest key make run prints> \
        .venv/bin/python -m examples.django_shop runserver 127.0.0.1:5002

Everything a real project keeps in ``settings.py`` and ``urls.py`` is in this one file.
"""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path

from splitwerk import Client
from splitwerk.adapters import django_visitor

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY=os.environ.get("SHOP_SECRET_KEY", "example-only-not-a-secret"),
        ALLOWED_HOSTS=["127.0.0.1", "localhost", "testserver"],
        ROOT_URLCONF=__name__,
        MIDDLEWARE=["splitwerk.adapters.DjangoVisitorMiddleware"],
        # A dotted path to the shop's consent check; it gets request.META.
        SPLITWERK_CONSENT="examples.django_shop.app.has_ab_consent",
    )


def has_ab_consent(meta: Any) -> bool:
    """The visitor accepted A/B testing in the shop's consent banner (its own cookie here)."""
    return "ab_consent=yes" in meta.get("HTTP_COOKIE", "")


# One client per process, created on first use (after a pre-forking server has forked).
_clients: list[Client] = []


def client() -> Client:
    if not _clients:
        _clients.append(
            Client(
                os.environ.get("SPLITWERK_URL", "http://127.0.0.1:8000"),
                ingest_key=os.environ.get("SHOP_INGEST_KEY") or None,
            )
        )
    return _clients[0]


def product(request: HttpRequest) -> HttpResponse:
    visitor, consent = django_visitor(request)
    variant = client().variant("checkout-button", visitor, consent=consent)
    color = "#2e7d32" if variant != "control" else "#1565c0"
    return HttpResponse(f'<button style="background:{color}">In den Warenkorb</button>')


def checkout(request: HttpRequest) -> JsonResponse:
    visitor, consent = django_visitor(request)
    order_id = request.GET.get("order", "o-1")
    if consent:
        client().order(visitor, order_id, revenue="59.90", tax="9.56", currency="EUR")
    return JsonResponse({"order": order_id, "visitor": visitor})


urlpatterns = [path("", product), path("checkout", checkout)]
