"""JSON in and out of the HTTP layer: strict request bodies and responses without NaN.

Every request body is parsed by ``server.core.strict_json`` (nesting depth bounded before any
recursion, NaN and Infinity refused): the hot routes through :func:`parse_body`, the
``@blp.arguments`` routes through the webargs parser of :class:`Blueprint`, and anything that
calls ``request.get_json()`` through :class:`StrictJsonProvider`, which also makes ``jsonify``
refuse to write a NaN.
"""

from __future__ import annotations

import json
from typing import Any, NoReturn

import flask
import flask_smorest
from flask.json.provider import DefaultJSONProvider
from webargs.flaskparser import FlaskParser, is_json_request

from server.core import strict_json
from server.errors import InvalidJson


def refuse_body(reason: str | None = None) -> NoReturn:
    """Answer a body that is not acceptable JSON with the one bad-JSON 400.

    Raises:
        InvalidJson: always; ``reason`` (depth, NaN) is listed under ``errors.body``.
    """
    raise InvalidJson(reason)


def parse_body(body: bytes) -> Any:
    """A request body as strict JSON.

    Raises:
        InvalidJson: not JSON, not UTF-8, nested too deep, or NaN/Infinity inside.
    """
    try:
        return strict_json.loads(body)
    except strict_json.JsonRefused as error:
        refuse_body(str(error))
    except ValueError:  # json.JSONDecodeError and UnicodeDecodeError are ValueErrors
        refuse_body()


class StrictParser(FlaskParser):
    """webargs' Flask parser with the strict JSON loader."""

    def _raw_load_json(self, req: flask.Request) -> Any:
        if not is_json_request(req):
            return super()._raw_load_json(req)  # webargs' own "missing"
        body = req.get_data(cache=True)
        if not body:
            raise json.JSONDecodeError("empty body", "", 0)  # webargs: the body is missing
        return parse_body(body)


class Blueprint(flask_smorest.Blueprint):  # type: ignore[misc]  # flask-smorest ships no types
    """flask-smorest's Blueprint whose ``@arguments`` parse JSON bodies strictly."""

    ARGUMENTS_PARSER = StrictParser()


def template_dumps(value: Any, **kwargs: Any) -> str:
    """JSON for templates (``|tojson``, chart data): a computed NaN becomes null, never NaN.

    A page must not fail on an odd number, and a NaN there would break the chart's JSON.parse.
    """
    return json.dumps(strict_json.without_nonfinite(value), allow_nan=False, **kwargs)


class StrictJsonProvider(DefaultJSONProvider):
    """Flask's JSON with strict parsing and without NaN or Infinity in responses."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return strict_json.loads(s)

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        kwargs["allow_nan"] = False  # a NaN raises here, as a bug, instead of breaking clients
        return super().dumps(obj, **kwargs)
