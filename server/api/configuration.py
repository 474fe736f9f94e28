"""Public configuration for SDKs and the snippet (/v1/config), and health checks."""

from __future__ import annotations

import time

from flask import Response, request

from server import schemas
from server.api.jsonio import Blueprint
from server.context import current_services
from server.core import strict_json
from server.services import experiments as services

blp = Blueprint(
    "configuration",
    __name__,
    description="Configuration that SDKs evaluate locally, and health checks (public).",
)

CONFIG_MAX_AGE = 5  # seconds browsers and proxies may reuse /v1/config before revalidating
CONFIG_SCHEMA = schemas.ConfigSchema()


@blp.route("/v1/config", methods=["GET"])
@blp.response(200, schemas.ConfigSchema)
@blp.alt_response(304, description="Not modified (If-None-Match matched the ETag)")
def get_config() -> Response:
    """All running, paused and stopped experiments in the form of spec/ASSIGNMENT.md."""
    snapshot = current_services().experiment_cache.get(time.time())
    etag = f'"{snapshot.version}"'
    headers = {"ETag": etag, "Cache-Control": f"public, max-age={CONFIG_MAX_AGE}"}
    if etag in request.headers.get("If-None-Match", ""):
        return Response(status=304, headers=headers)
    body = strict_json.dumps(CONFIG_SCHEMA.dump(services.public_config(snapshot)))
    return Response(body, status=200, headers=headers, mimetype="application/json")


@blp.route("/healthz", methods=["GET"])
@blp.response(200)
def liveness() -> dict[str, str]:
    """The process answers (for restarts); says nothing about Redis."""
    return {"status": "ok"}


@blp.route("/readyz", methods=["GET"])
@blp.arguments(schemas.ReadinessQuerySchema, location="query")
@blp.response(200, schemas.ReadinessSchema)
@blp.alt_response(503, description="Not ready; `errors.redis` names the Redis state")
def readiness(query: dict[str, bool]) -> dict[str, str]:
    """Ready while this worker can answer, degraded included (for load balancers); with
    ``strict=true`` only while Redis also takes writes (for deploy gates)."""
    wired = current_services()
    return services.readiness(wired.store, wired.experiment_cache, time.time(), query["strict"])
