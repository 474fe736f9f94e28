"""Composition root: create_app() builds the Flask app; the only module that sees every layer."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from flask import Flask, Request, Response, request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from flask_babel import Babel
from flask_cors import CORS
from flask_smorest import Api
from flask_wtf.csrf import CSRFProtect
from werkzeug.routing import BaseConverter

from dashboard import i18n
from dashboard import views as dashboard_views
from server import schemas
from server.api import (
    assignments,
    configuration,
    events,
    experiments,
    results,
    snippet,
)
from server.api.fastpath import AssignFastPath
from server.api.jsonio import StrictJsonProvider, template_dumps
from server.api.limits import ERRORS_DESCRIPTION, MAX_BODY_BYTES, refuse_oversized_requests
from server.config import ConfigError, Settings, load_config
from server.context import AppServices
from server.core.bots import BotDetector
from server.core.money import CENTS_PER_UNIT
from server.core.privacy import Pseudonymiser
from server.errors import register_error_handlers
from server.services.assignments import Assigner
from server.services.events import EventRecorder
from server.services.experiments import SECONDS_PER_DAY, ExperimentCache
from server.services.monitor import Evaluator
from server.services.results import ResultsReader
from server.services.webhooks import WebhookSender
from server.storage.clients import connect
from server.storage.store import Store

DASHBOARD_PREFIX = "/dashboard"  # the only routes that use cookie sessions
API_VERSION = "1.0.0"  # of the HTTP API described at /v1/openapi.json
# Routes whose Redis work shares one time budget (REDIS_REQUEST_TIMEOUT): the public ones that
# shops and load balancers call at volume and that must answer fast or degrade. Admin routes
# may scan (deleting, erasing) and keep the per-command socket timeouts only.
BUDGETED_PATHS = ("/v1/assign", "/v1/events", "/v1/config", "/readyz")
EVALUATOR = "splitwerk.evaluator"  # the app's Evaluator (None when EVALUATION_INTERVAL is 0)

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment


class BudgetedFlask(Flask):
    """Flask whose public requests share one time budget for all their Redis work.

    Applied outside every WSGI middleware, so that the assign fast path is bounded too.
    """

    store: Store | None = None  # set by create_app
    redis_request_timeout = 0.0  # seconds; REDIS_REQUEST_TIMEOUT

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if self.store is None or not path.startswith(BUDGETED_PATHS):
            return super().__call__(environ, start_response)
        with self.store.budget(self.redis_request_timeout):
            return super().__call__(environ, start_response)


class DashboardOnlySessions(SecureCookieSessionInterface):
    """Signed cookie sessions for the dashboard only; the API is stateless.

    Opening a session costs a cookie parse and a signature check on every request; the hot
    public routes skip it (measured: about a tenth of an assign request's CPU).
    """

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if not request.path.startswith(DASHBOARD_PREFIX):
            return self.null_session_class()
        return super().open_session(app, request)

    def get_cookie_secure(self, app: Flask) -> bool:
        # over https (directly, or through a proxy and ProxyFix) the session cookie is Secure
        return request.is_secure or super().get_cookie_secure(app)


class KeyConverter(BaseConverter):
    """URL part that must be an experiment key; anything else is a 404 before any Redis access."""

    regex = schemas.ID_PATTERN.strip("^$")


def _api_config(settings: Settings) -> dict[str, Any]:
    return {
        "API_TITLE": "Splitwerk",
        "API_VERSION": API_VERSION,
        "OPENAPI_VERSION": "3.0.3",
        "OPENAPI_URL_PREFIX": "/v1",
        "OPENAPI_JSON_PATH": "openapi.json",
        "API_SPEC_OPTIONS": {"info": {"description": ERRORS_DESCRIPTION}},
        "SECRET_KEY": settings.SECRET_KEY,
        "JSON_SORT_KEYS": False,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
    }


def create_app(overrides: Mapping[str, Any] | None = None) -> Flask:
    """Build the app from defaults, ``SPLITWERK_*`` variables and ``overrides``.

    Raises:
        ConfigError: a setting is invalid, or no Redis URL is set.
    """
    settings = load_config(overrides)
    if not settings.REDIS_URL:
        raise ConfigError(
            "SPLITWERK_REDIS_URL: required here; `splitwerk serve` starts an embedded Redis "
            "when it is not set"
        )
    logging.getLogger("server").setLevel(settings.LOG_LEVEL.upper())
    app = BudgetedFlask("server")
    app.json = StrictJsonProvider(app)  # bodies parsed strictly; no NaN in any response
    app.config.update(_api_config(settings))
    app.config.update(settings.extra)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.jinja_env.policies["json.dumps_function"] = template_dumps  # |tojson: NaN → null
    app.before_request(refuse_oversized_requests)  # chunked bodies and long URLs, as JSON
    app.url_map.converters["key"] = KeyConverter
    app.session_interface = DashboardOnlySessions()

    store = Store(
        connect(
            settings.REDIS_URL,
            socket_timeout=settings.REDIS_SOCKET_TIMEOUT,
            connect_timeout=settings.REDIS_CONNECT_TIMEOUT,
            retries=settings.REDIS_RETRIES,
            max_connections=settings.REDIS_MAX_CONNECTIONS,
        ),
        value_cap_cents=round(settings.VALUE_CAP * CENTS_PER_UNIT),
    )
    store.check_at_start()
    cache = ExperimentCache(store, settings.CONFIG_REFRESH_INTERVAL)
    snippet_path = Path(settings.SNIPPET_PATH) if settings.SNIPPET_PATH else None
    app.extensions[snippet.SNIPPET_EXTENSION] = snippet.Snippet(
        snippet_path or snippet.default_snippet_path()
    )
    pseudonymiser = Pseudonymiser(settings.SECRET_KEY.encode())
    assigner = Assigner(
        store,
        cache,
        pseudonymiser,
        segment_value_limit=settings.SEGMENT_VALUE_LIMIT,
        experiments_limit=settings.MAX_EXPERIMENTS_PER_REQUEST,
        enrolment_cache_size=settings.ENROLMENT_CACHE_SIZE,
    )
    services = AppServices(
        settings=settings,
        store=store,
        experiment_cache=cache,
        assigner=assigner,
        event_recorder=EventRecorder(
            store,
            cache,
            pseudonymiser,
            assigner,
            idempotency_window=settings.IDEMPOTENCY_DAYS * SECONDS_PER_DAY,
            currency=settings.CURRENCY,
            daily_conversions=settings.CONVERSIONS_PER_VISITOR_DAY,
        ),
        results_reader=ResultsReader(
            store, settings.RESULTS_CACHE_TTL, settings.CURRENCY, value_cap=settings.VALUE_CAP
        ),
        bot_detector=BotDetector.default(),
        pseudonymiser=pseudonymiser,
    )
    services.attach(app)
    app.extensions[EVALUATOR] = _evaluator(settings, store, services.results_reader, cache)

    api = Api(app)
    api.register_converter(
        KeyConverter, lambda _: {"type": "string", "pattern": schemas.ID_PATTERN}
    )
    api.spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer"})
    # /v1/assign and /v1/events parse their bodies themselves (hot paths); documented here
    api.spec.components.schema("AssignRequest", schema=schemas.AssignRequestSchema)
    api.spec.components.schema("EventBatch", schema=schemas.EventBatchSchema)
    for blueprint in (
        assignments.blp,
        configuration.blp,
        events.blp,
        experiments.blp,
        results.blp,
        snippet.blp,
    ):
        api.register_blueprint(blueprint)
    app.register_blueprint(dashboard_views.blp)
    # CSRF tokens for the dashboard's forms; only the dashboard checks them (the API is stateless)
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False
    app.config["WTF_CSRF_TIME_LIMIT"] = None  # a token lives as long as its session
    CSRFProtect(app)
    # the dashboard's texts: gettext catalogues, the language chosen per request
    Babel(
        app,
        locale_selector=i18n.select_locale,
        default_domain=i18n.DOMAIN,
        default_translation_directories=str(i18n.TRANSLATIONS),
    )
    _allow_browsers(app, settings)
    register_error_handlers(app)
    # well-formed POST /v1/assign requests are answered below Flask (see api.fastpath)
    app.wsgi_app = AssignFastPath(  # type: ignore[method-assign]
        app.wsgi_app,
        services,
        MAX_BODY_BYTES,
        vary_origin=bool(settings.CORS_ORIGINS),
    )
    app.store = store
    app.redis_request_timeout = settings.REDIS_REQUEST_TIMEOUT
    return app


def _evaluator(
    settings: Settings, store: Store, reader: ResultsReader, cache: ExperimentCache
) -> Evaluator | None:
    """The evaluator with its webhook, built but not started (see start_background)."""
    if not settings.EVALUATION_INTERVAL:
        return None
    webhook = None
    if settings.WEBHOOK_URL:
        client = httpx.Client(timeout=settings.WEBHOOK_TIMEOUT, follow_redirects=False)
        webhook = WebhookSender(
            settings.WEBHOOK_URL,
            settings.WEBHOOK_SECRET,
            client,
            max_attempts=settings.WEBHOOK_MAX_ATTEMPTS,
            retry_interval=settings.WEBHOOK_RETRY_INTERVAL,
        )
    return Evaluator(
        store, reader, settings.EVALUATION_INTERVAL, webhook, on_change=cache.invalidate
    )


def start_background(app: Flask) -> None:
    """Start the app's background evaluator; gunicorn calls it in each worker after the fork
    (a thread started before the fork would not exist in the workers)."""
    evaluator: Evaluator | None = app.extensions.get(EVALUATOR)
    if evaluator is not None:
        evaluator.start()


def stop_background(app: Flask, timeout: float) -> bool:
    """Stop the app's background evaluator within ``timeout`` seconds; whether it stopped."""
    evaluator: Evaluator | None = app.extensions.get(EVALUATOR)
    return evaluator is None or evaluator.stop(timeout)


# Public routes that shop pages call from the browser; the admin API never gets CORS headers.
BROWSER_ROUTES = (r"/v1/assign", r"/v1/events", r"/v1/config", r"/sdk\.js")
BROWSER_PATHS = frozenset(route.replace("\\", "") for route in BROWSER_ROUTES)


def _vary_by_origin(response: Response) -> Response:
    """Say that the CORS headers of a browser route depend on the Origin, on every answer.

    flask-cors names the Origin in Vary only when it echoes one, and then not for a single
    allowed origin; a shared cache could then hand a response made for one origin (or for a
    request without any) to another, whose browser refuses it.
    """
    if request.path in BROWSER_PATHS:
        response.vary.add("Origin")
    return response


def _allow_browsers(app: Flask, settings: Settings) -> None:
    """CORS for the configured shop origins on the public routes only."""
    if not settings.CORS_ORIGINS:
        return
    origins = "*" if "*" in settings.CORS_ORIGINS else list(settings.CORS_ORIGINS)
    CORS(
        app,
        resources={route: {"origins": origins} for route in BROWSER_ROUTES},
        methods=["GET", "POST"],
        allow_headers=["Content-Type"],
        expose_headers=["Retry-After", "ETag", "X-Splitwerk-Recorded"],
        max_age=86_400,  # seconds browsers may cache a preflight answer
        supports_credentials=False,  # the visitor cookie is first-party; never sent here
    )
    app.after_request(_vary_by_origin)
