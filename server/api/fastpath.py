"""POST /v1/assign below Flask: a WSGI middleware that answers well-formed requests directly.

The assign call sits inside shop page loads. Under gunicorn's threads, Flask's per-request
machinery (request and app contexts, context locals, URL matching, the response object) cost
more CPU than the assignment itself: a fresh visitor took 0.51 ms of server CPU through Flask
and 0.34 ms here (loadtests/README.md). So the common request, a JSON body of visitor,
experiments, attributes and consent that the schema's fast path accepts, is answered here with
the same use case, the same body and the same headers as the Flask route. Everything else goes
to Flask unchanged: other routes and methods, bodies the fast path does not accept (errors,
force, user_agent), browser requests with an Origin (CORS), chunked or oversized bodies, and
requests whose assignment raised (too many experiments, Redis never reached): the Flask route
then answers them the documented way. tests/api/test_fastpath.py checks that both paths answer
byte for byte alike.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from server import schemas
from server.api.assignments import answer_of, request_of
from server.core import strict_json
from server.core.bots import BotDetector
from server.services.assignments import Assigner

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

log = logging.getLogger(__name__)

PATH = "/v1/assign"


class AssignFastPath:
    """WSGI middleware in front of the Flask app (``app.wsgi_app``)."""

    def __init__(
        self,
        flask_app: WSGIApplication,
        assigner: Assigner,
        bots: BotDetector,
        max_body: int,
        *,
        vary_origin: bool = False,
    ) -> None:
        self.flask_app = flask_app  # everything the fast path does not answer goes here
        self._assigner = assigner
        self._bots = bots
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
            data = schemas.fast_assign_request(strict_json.loads(body))
        except ValueError:  # not JSON, not UTF-8, too deep, NaN: Flask's 400
            return self.flask_app(environ, start_response)
        if data is None:
            return self.flask_app(environ, start_response)
        agent = environ.get("HTTP_USER_AGENT")
        try:
            result = self._assigner.assign(request_of(data, self._bots.is_bot(agent)), time.time())
        except Exception:  # the Flask route answers it (4xx, 503) and logs what it must
            log.debug("assign fast path handed a request to Flask", exc_info=True)
            return self.flask_app(environ, start_response)
        payload, headers = answer_of(result)
        start_response("200 OK", headers + self._extra_headers)
        return [payload]
