"""Splitwerk's Python SDK: assign visitors to A/B test variants and record conversions.

Quick start::

    from splitwerk import Client

    client = Client("http://127.0.0.1:8000", ingest_key="...")
    variant = client.variant("checkout-button", visitor_id)
    client.track("add_to_cart", visitor_id)

See ``README.md`` for modes, web framework adapters and every option.
"""

from splitwerk.client import VERSION, Client
from splitwerk.errors import ConfigError
from splitwerk.evaluation import Assignment
from splitwerk.reasons import Reason
from splitwerk.transport import HttpTransport, Response, Transport
from splitwerk.web import VisitorCookie, VisitorMiddleware, visitor_of

__version__ = VERSION
__all__ = [
    "Assignment",
    "Client",
    "ConfigError",
    "HttpTransport",
    "Reason",
    "Response",
    "Transport",
    "VisitorCookie",
    "VisitorMiddleware",
    "__version__",
    "visitor_of",
]
