"""The bare Flask app the bench compares the server with: one route, a constant JSON body."""

from __future__ import annotations

from flask import Flask, Response, request

# About the size of one /v1/assign answer, so both measurements send similar bytes.
BODY = (
    '{"visitor": "v-0000000000", "recorded": true, "assignments": {"checkout-button": '
    '{"variant": "green", "payload": null, "enrolled": true, "reason": "running"}}}'
)


def create_app() -> Flask:
    """Build the baseline app; gunicorn runs it as ``baseline:create_app()``."""
    app = Flask("baseline")

    @app.route("/v1/assign", methods=["POST"])
    def assign() -> Response:
        # Read the posted body like the real endpoint, so only the work behind it differs.
        request.get_data()
        return Response(BODY, mimetype="application/json")

    return app
