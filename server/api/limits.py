"""Request size limits answered as JSON: bodies (413), also chunked ones, and request lines (414).

Werkzeug checks ``MAX_CONTENT_LENGTH`` against a Content-Length header, but a chunked body is
only cut off at the limit, so the truncated text reached the JSON parser as a 400. gunicorn
refuses request lines longer than its ``limit_request_line`` itself, with an HTML page; the
server therefore runs gunicorn with GUNICORN_REQUEST_LINE_LIMIT and refuses lines longer than
MAX_REQUEST_LINE here, in the JSON shape. Lines beyond gunicorn's limit still get its HTML 414
(README, "Errors").
"""

from __future__ import annotations

from flask import request
from werkzeug.exceptions import RequestEntityTooLarge, RequestURITooLarge

MAX_BODY_BYTES = 2 * 1024 * 1024  # a full batch of 500 events is far below; larger is a 413
MAX_REQUEST_LINE = 4094  # bytes of "GET /v1/assign?... HTTP/1.1": gunicorn's usual default
GUNICORN_REQUEST_LINE_LIMIT = 8190  # gunicorn's largest allowed value; above it, its HTML 414

# The OpenAPI document's description of errors, the ones gunicorn answers included.
ERRORS_DESCRIPTION = f"""\
Every error the application answers has one JSON body: `{{"code", "status", "message",
"errors"}}`. Bad JSON is a 400 (also nesting deeper than 64 levels, NaN or Infinity; the
reason is under `errors.json`), validation a 422 naming the field, bodies over
{MAX_BODY_BYTES} bytes (chunked too) a 413, request lines over {MAX_REQUEST_LINE} bytes a 414.

Answered by gunicorn before the application, as HTML, not JSON: request lines over
{GUNICORN_REQUEST_LINE_LIMIT} bytes (414), a header over 8190 bytes or more than 100 headers
(431 or 400) and malformed HTTP (400).
"""


def request_line_length() -> int:
    """Bytes of the request line as the client sent it (method, target, protocol, 2 spaces)."""
    environ = request.environ
    target = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if target is None:  # servers that keep no raw target: rebuild it
        query = environ.get("QUERY_STRING", "")
        target = environ.get("PATH_INFO", "") + (f"?{query}" if query else "")
    protocol = environ.get("SERVER_PROTOCOL", "HTTP/1.1")
    return len(environ.get("REQUEST_METHOD", "")) + len(target) + len(protocol) + 2


def refuse_oversized_requests() -> None:
    """A ``before_request`` hook: 414 for a long request line, 413 for a long chunked body.

    Raises:
        RequestURITooLarge: the request line is longer than MAX_REQUEST_LINE.
        RequestEntityTooLarge: a body without Content-Length is longer than MAX_BODY_BYTES.
    """
    if request_line_length() > MAX_REQUEST_LINE:
        raise RequestURITooLarge(
            f"the request line is longer than {MAX_REQUEST_LINE} bytes; send a POST body"
        )
    if (
        request.content_length is None
        and request.environ.get("wsgi.input_terminated")
        # read (and cache for the view) at most the limit; one byte more means too large
        and len(request.get_data(cache=True)) >= MAX_BODY_BYTES
        and request.environ["wsgi.input"].read(1)
    ):
        raise RequestEntityTooLarge(f"the body is larger than {MAX_BODY_BYTES} bytes")
