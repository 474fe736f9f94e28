"""POST /v1/assign below Flask: a WSGI middleware that answers well-formed requests directly.

The assign call sits inside shop page loads. Under gunicorn's threads, Flask's per-request
machinery (request and app contexts, context locals, URL matching, the response object) cost
more CPU than the assignment itself: a fresh visitor took 0.51 ms of server CPU through Flask
and 0.34 ms here (loadtests/README.md). So the common request, a JSON body of visitor,
experiments, attributes and consent that ``fastschemas`` accepts, is answered here with the
same use case and rendered by the same code as the Flask route: ``assignments.answer_of`` for
answers, the error handlers of ``server.errors`` for the two refusals of the use case (invalid
input such as too many experiments: 422; Redis never reached: 503). A request is run once: what
the fast path started, it answers.

Everything else goes to Flask before any work is done: other routes and methods, bodies the
fast path does not accept (errors, force, user_agent), browser requests with an Origin (CORS),
and chunked or oversized bodies. tests/api/test_fastpath.py checks that both paths answer byte
for byte alike, errors included, and that a dead Redis is asked as often as by the Flask route.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from werkzeug.wrappers import Response

from server import errors
from server.api import fastschemas
from server.api.assignments import answer_of, request_of
from server.context import AppServices
from server.core import strict_json
from server.core.errors import DomainError
from server.storage.errors import StorageUnavailable

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

PATH = "/v1/assign"


class AssignFastPath:
    """WSGI middleware in front of the Flask app (``app.wsgi_app``)."""

    def __init__(
        self,
        flask_app: WSGIApplication,
        services: AppServices,
        max_body: int,
        *,
        vary_origin: bool = False,
    ) -> None:
        self.flask_app = flask_app  # everything the fast path does not answer goes here
        self._assigner = services.assigner
        self._bots = services.bot_detector
        self._max_body = max_body
        # with CORS configured, answers name the Origin in Vary, as the Flask route's do
        self._extra_headers = [("Vary", "Origin")] if vary_origin else []

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if (
            environ.get("PATH_INFO") != PATH
            or environ.get("REQUEST_METHOD") != "POST"
            or "HTTP_ORIGIN" in environ  # CORS answers are Flask's
        ):
            return self.flask_app(environ, start_response)
        length = environ.get("CONTENT_LENGTH") or ""
        if not length.isdigit() or not 0 < int(length) <= self._max_body:
            return self.flask_app(environ, start_response)  # chunked, empty or too large
        body = environ["wsgi.input"].read(int(length))
        environ["wsgi.input"] = io.BytesIO(body)  # Flask reads it again if we hand over
        try:
            data = fastschemas.fast_assign_request(strict_json.loads(body))
        except ValueError:  # not JSON, not UTF-8, too deep, NaN: Flask's 400
            return self.flask_app(environ, start_response)
        if data is None:
            return self.flask_app(environ, start_response)
        agent = environ.get("HTTP_USER_AGENT")
        try:
            result = self._assigner.assign(request_of(data, self._bots.is_bot(agent)), time.time())
        except DomainError as error:
            return self._error(errors.handle_domain_error(error), environ, start_response)
        except StorageUnavailable as error:
            return self._error(errors.handle_storage_unavailable(error), environ, start_response)
        payload, headers = answer_of(result)
        start_response("200 OK", headers + self._extra_headers)
        return [payload]

    def _error(
        self, response: Response, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        """Answer with the error response the Flask route's handler built."""
        for name, value in self._extra_headers:
            response.headers.add(name, value)
        return response(environ, start_response)
