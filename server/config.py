"""Every setting of the server with its default and unit; the only reader of os.environ.

Settings are resolved in the order defaults → ``SPLITWERK_<NAME>`` environment variables →
explicit overrides (the CLI's flags, a test's arguments), then checked once, at start-up.
A setting that is wrong stops the start with a message that names it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from server.core.models import Role

ENV_PREFIX = "SPLITWERK_"  # every setting NAME can be set as SPLITWERK_NAME
# The development editor token `splitwerk serve --dev` keeps under DATA_DIR; the CLI reads it
# when no token is given, and the dashboard's login page names it in development.
DEV_TOKEN_FILE = "dev-token"
# redis+sentinel://[:password@]host:port[,host:port…]/service[/db]
SENTINEL_URL = re.compile(
    r"^redis\+sentinel://([^@/]*@)?[^@/,:]+:\d+(,[^@/,:]+:\d+)*/[^/]+(/\d+)?$"
)
# A webhook secret as long as SECRET_KEY's minimum: 32 random characters cannot be guessed.
WEBHOOK_SECRET_LENGTH = 32
# what a REDIS_URL may start with
REDIS_SCHEMES = (
    "redis://",
    "rediss://",
    "unix://",
    "redis+sentinel://",
    "redis+cluster://",
    "rediss+cluster://",
)
# redis+cluster://[user:password@]host:port[,host:port…][/0] (rediss+cluster:// for TLS)
CLUSTER_URL = re.compile(
    r"^rediss?\+cluster://([^@/]*@)?[^@/,:]+:\d{1,5}(,[^@/,:]+:\d{1,5})*(/0?)?(\?[^/]*)?$"
)
TOKEN_PATTERN = re.compile(
    r"^(viewer|editor|preview|ingest):([A-Za-z0-9_.@-]{1,64}):([0-9a-f]{64})$"
)


class ConfigError(ValueError):
    """A setting is missing or invalid; the message names it."""


@dataclass(frozen=True)
class Token:
    """A configured API token: its role, a name for the audit trail, and its SHA-256."""

    role: Role
    name: str
    sha256: str


@dataclass(frozen=True)
class DefaultConfig:
    """All settings with their defaults. Units are in the comments."""

    # Redis URL (redis://, rediss://, unix://, redis+sentinel://host:port[,…]/service[/db], or
    # redis+cluster://host:port[,host:port…] and rediss+cluster:// for a Redis Cluster, where
    # any one reachable node suffices to find the others). Empty: `splitwerk serve` starts an
    # embedded one.
    REDIS_URL: str = ""
    # Seconds a Redis command may take before the request degrades to a 503 or an unrecorded
    # answer; well under gunicorn's timeout so that a stuck Redis never kills a worker.
    REDIS_SOCKET_TIMEOUT: float = 0.25
    # Seconds to wait for a new Redis connection.
    REDIS_CONNECT_TIMEOUT: float = 0.25
    # Seconds all Redis work of one public request (/v1/assign, /v1/events, /v1/config, /readyz)
    # may take, retries and reconnects included; then it degrades or answers 503. Admin and
    # dashboard requests are bounded by the socket timeouts per command instead.
    REDIS_REQUEST_TIMEOUT: float = 0.3
    # Retries of a failed Redis command; one retry rides over a reconnect, more would stack delays.
    # Event and refund scripts are retried only when they never left the server (a failed
    # connect): a re-sent batch would answer "duplicate" for its own first send.
    REDIS_RETRIES: int = 1
    # Connections per worker process (per node of a cluster); gunicorn threads share them, and
    # with a single Redis up to half stay pinned to the threads that run the hot paths' scripts
    # (see storage.store.PinnedClients).
    REDIS_MAX_CONNECTIONS: int = 32
    # Secret for pseudonymising visitor ids and signing dashboard sessions (≥ 32 characters).
    SECRET_KEY: str = ""
    # Comma-separated tokens "role:name:sha256hex" (roles viewer, editor, preview, ingest).
    # Create the hash with `splitwerk hash-token`.
    TOKENS: tuple[Token, ...] = ()
    # Development mode: allows running without tokens and honours force parameters without one.
    DEV: bool = False
    # Seconds between checks for changed experiment configuration in each worker.
    CONFIG_REFRESH_INTERVAL: float = 1.0
    # Days per-visitor records are kept after an experiment stops (GDPR retention limit).
    RETENTION_DAYS: int = 90
    # Days an event id is remembered, so that a retried batch is never counted twice.
    IDEMPOTENCY_DAYS: int = 7
    # ISO 4217 code of the shop's currency; orders in another currency are refused.
    CURRENCY: str = "EUR"
    # Experiments one /v1/assign request may name; bounds the work of one request.
    MAX_EXPERIMENTS_PER_REQUEST: int = 20
    # Enrolments each worker remembers so that returning visitors skip Redis (about 150 bytes
    # each: 100,000 take some 15 MB per worker).
    ENROLMENT_CACHE_SIZE: int = 100_000
    # Distinct values per segment attribute per experiment; later values count as "other".
    SEGMENT_VALUE_LIMIT: int = 50
    # New conversion ids one visitor id may add per experiment phase and UTC day. A conversion
    # is a goal reached (sign-up, add to cart), not a page view: 200 a day is beyond any
    # person, and it bounds the Redis memory one visitor id can take (README "Limits and
    # security": at most 200 × 7 days × 265 bytes of idempotency entries).
    CONVERSIONS_PER_VISITOR_DAY: int = 200
    # Browser origins allowed to call the public endpoints (comma-separated, "*" for any).
    CORS_ORIGINS: tuple[str, ...] = ()
    # Seconds results of an experiment are cached per worker.
    RESULTS_CACHE_TTL: float = 5.0
    # Largest total per visitor and value goal, in the shop's currency, that the statistics
    # count: larger totals count as this much (winsorised when recorded), so that one huge order
    # cannot decide an experiment; revenue totals stay uncapped. About ten times a typical order.
    VALUE_CAP: float = 1000.0
    # Address `splitwerk serve` binds to.
    HOST: str = "127.0.0.1"
    # TCP port `splitwerk serve` listens on.
    PORT: int = 8000
    # gunicorn worker processes for `splitwerk serve`; 2 matches a 2-core machine.
    WORKERS: int = 2
    # Threads per gunicorn worker; Redis round trips release the GIL while they wait.
    THREADS: int = 4
    # Seconds gunicorn keeps an idle client connection open. Longer than the idle time of
    # client pools and proxies (nginx's upstream keepalive_timeout is 60 s), so that the
    # client, never the server, closes an idle connection: a server closing first races the
    # client's next request on that connection, which then fails with a reset.
    KEEPALIVE: int = 75
    # Folder for the embedded Redis's data and the development secrets.
    DATA_DIR: str = ".splitwerk"
    # Logging level of the server's loggers.
    LOG_LEVEL: str = "INFO"
    # File served at /sdk.js; empty: sdk/js/splitwerk.min.js (the committed build) of this checkout.
    SNIPPET_PATH: str = ""
    # Seconds between evaluations of the live experiments (guardrails, sample ratio, conclusive
    # results; one worker of all servers per interval); 0 turns the evaluator off. A minute
    # notices a harm long before a day's traffic has gone to a harmful variant.
    EVALUATION_INTERVAL: float = 60.0
    # http(s) URL that receives signed announcements (README "Webhooks"); empty: none.
    WEBHOOK_URL: str = ""
    # Secret for the webhook's HMAC-SHA256 signature (at least 32 characters); never shown.
    WEBHOOK_SECRET: str = ""
    # Seconds one delivery attempt may take (connect, send and answer), well under gunicorn's
    # graceful timeout, so that a stopping worker is never held up by a slow receiver.
    WEBHOOK_TIMEOUT: float = 5.0
    # Attempts per announcement before it is given up: with the retry interval doubling from
    # 30 s up to an hour, 12 attempts span about seven hours of a receiver's outage.
    WEBHOOK_MAX_ATTEMPTS: int = 12
    # Seconds before the first retry of a failed delivery; each further retry waits twice as long.
    WEBHOOK_RETRY_INTERVAL: float = 30.0


@dataclass(frozen=True)
class Settings(DefaultConfig):
    """The resolved and validated settings of one server instance."""

    extra: Mapping[str, Any] = field(default_factory=dict)

    def tokens_for(self, role: Role) -> tuple[Token, ...]:
        """Tokens that grant ``role``; editors may also do what viewers may."""
        granted = {role, Role.EDITOR} if role == Role.VIEWER else {role}
        return tuple(token for token in self.TOKENS if token.role in granted)


def hash_token(token: str) -> str:
    """The SHA-256 hex digest under which a token is configured; tokens are never stored."""
    return hashlib.sha256(token.encode()).hexdigest()


def _parse_bool(name: str, raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ConfigError(f"{ENV_PREFIX}{name}: expected true or false, got {raw!r}")


def _parse_tokens(raw: str) -> tuple[Token, ...]:
    tokens: list[Token] = []
    for item in filter(None, (part.strip() for part in raw.split(","))):
        match = TOKEN_PATTERN.match(item)
        if match is None:
            # The value may hold secrets; name the position, not the content.
            raise ConfigError(
                f"{ENV_PREFIX}TOKENS: entry {len(tokens) + 1} is not 'role:name:sha256hex' "
                "(roles viewer, editor, preview, ingest; hash with `splitwerk hash-token`)"
            )
        tokens.append(Token(Role(match.group(1)), match.group(2), match.group(3)))
    return tuple(tokens)


def _coerce(name: str, raw: Any, default: Any) -> Any:
    """Turn an environment string (or an override) into the default's type."""
    if not isinstance(raw, str):
        return raw
    try:
        if isinstance(default, bool):
            return _parse_bool(name, raw)
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
    except ValueError:
        kind = type(default).__name__
        raise ConfigError(f"{ENV_PREFIX}{name}: expected a number ({kind}), got {raw!r}") from None
    if name == "TOKENS":
        return _parse_tokens(raw)
    if name == "CORS_ORIGINS":
        return tuple(filter(None, (part.strip() for part in raw.split(","))))
    return raw


def _check(settings: Settings) -> None:
    """Raise ConfigError for the first setting that is out of range."""
    positive = (
        "REDIS_SOCKET_TIMEOUT",
        "REDIS_CONNECT_TIMEOUT",
        "REDIS_REQUEST_TIMEOUT",
        "REDIS_MAX_CONNECTIONS",
        "CONFIG_REFRESH_INTERVAL",
        "RETENTION_DAYS",
        "MAX_EXPERIMENTS_PER_REQUEST",
        "SEGMENT_VALUE_LIMIT",
        "CONVERSIONS_PER_VISITOR_DAY",
        "ENROLMENT_CACHE_SIZE",
        "WORKERS",
        "THREADS",
        "KEEPALIVE",
        "WEBHOOK_TIMEOUT",
        "WEBHOOK_MAX_ATTEMPTS",
        "WEBHOOK_RETRY_INTERVAL",
    )
    for name in positive:
        if getattr(settings, name) <= 0:
            raise ConfigError(f"{ENV_PREFIX}{name}: must be greater than 0")
    if settings.REDIS_RETRIES < 0:
        raise ConfigError(f"{ENV_PREFIX}REDIS_RETRIES: must be 0 or more")
    if settings.EVALUATION_INTERVAL < 0:
        raise ConfigError(f"{ENV_PREFIX}EVALUATION_INTERVAL: must be 0 (off) or more")
    _check_webhook(settings)
    if settings.RESULTS_CACHE_TTL < 0:
        raise ConfigError(f"{ENV_PREFIX}RESULTS_CACHE_TTL: must be 0 or more")
    if not 0.01 <= settings.VALUE_CAP <= 1e9:
        raise ConfigError(f"{ENV_PREFIX}VALUE_CAP: must be between 0.01 and 1000000000")
    if not 0 < settings.PORT < 65536:
        raise ConfigError(f"{ENV_PREFIX}PORT: must be between 1 and 65535")
    if settings.REDIS_URL and not settings.REDIS_URL.startswith(REDIS_SCHEMES):
        raise ConfigError(
            f"{ENV_PREFIX}REDIS_URL: must start with redis://, rediss://, unix://, "
            "redis+sentinel://, redis+cluster:// or rediss+cluster://"
        )
    if settings.REDIS_URL.startswith(("redis+cluster://", "rediss+cluster://")) and not (
        CLUSTER_URL.match(settings.REDIS_URL)
        and all(
            0 < int(port) < 65_536
            for port in re.findall(r":(\d+)(?=,|/|\?|$)", settings.REDIS_URL.split("@")[-1])
        )
    ):
        raise ConfigError(
            f"{ENV_PREFIX}REDIS_URL: a cluster URL is "
            "redis+cluster://[user:password@]host:port[,host:port…] (or rediss+cluster:// "
            "for TLS); a cluster has only database 0"
        )
    if settings.REDIS_URL.startswith("redis+sentinel://") and not SENTINEL_URL.match(
        settings.REDIS_URL
    ):
        raise ConfigError(
            f"{ENV_PREFIX}REDIS_URL: a sentinel URL is "
            "redis+sentinel://[:password@]host:port[,host:port…]/service[/db]"
        )
    # The secret and the tokens are what a first production start lacks: name both at once.
    missing = []
    if len(settings.SECRET_KEY) < 32:
        missing.append(
            f"{ENV_PREFIX}SECRET_KEY: must be at least 32 characters "
            "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
        )
    if not settings.TOKENS and not settings.DEV:
        missing.append(
            f"{ENV_PREFIX}TOKENS: no token configured; `splitwerk hash-token` prints a new "
            f"token and its SHA-256, then set {ENV_PREFIX}TOKENS=editor:<name>:<sha256> "
            "(comma-separated; roles viewer, editor, preview, ingest)"
        )
    if missing:
        if not settings.DEV:
            missing.append("or start with --dev for development (generated secret and token)")
        raise ConfigError("\n".join(missing))
    if settings.IDEMPOTENCY_DAYS < 7:
        raise ConfigError(f"{ENV_PREFIX}IDEMPOTENCY_DAYS: must be at least 7 (retries of a week)")
    if not re.fullmatch(r"[A-Z]{3}", settings.CURRENCY):
        raise ConfigError(f"{ENV_PREFIX}CURRENCY: must be an ISO 4217 code like EUR")
    if settings.LOG_LEVEL.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ConfigError(f"{ENV_PREFIX}LOG_LEVEL: must be DEBUG, INFO, WARNING or ERROR")


def _is_http_url(url: str) -> bool:
    """Whether ``url`` is http(s) with a host (and a numeric port, if any), without spaces."""
    if any(character.isspace() for character in url):
        return False
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018  # raises ValueError for a port that is not a number
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _check_webhook(settings: Settings) -> None:
    """An http(s) URL with a host and a long secret, or neither; never echoes either value
    (a URL's path or query may hold a token)."""
    if not settings.WEBHOOK_URL:
        if settings.WEBHOOK_SECRET:
            raise ConfigError(f"{ENV_PREFIX}WEBHOOK_SECRET: set, but no WEBHOOK_URL")
        return
    if not _is_http_url(settings.WEBHOOK_URL):
        raise ConfigError(
            f"{ENV_PREFIX}WEBHOOK_URL: must be an http:// or https:// URL with a host"
        )
    if len(settings.WEBHOOK_SECRET) < WEBHOOK_SECRET_LENGTH:
        raise ConfigError(
            f"{ENV_PREFIX}WEBHOOK_SECRET: must be at least {WEBHOOK_SECRET_LENGTH} characters "
            "when WEBHOOK_URL is set"
        )


def load_config(
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    validate: bool = True,
) -> Settings:
    """Resolve defaults, then ``SPLITWERK_*`` variables, then ``overrides``; validate the result.

    ``validate=False`` only resolves (the CLI needs DATA_DIR before it can create dev secrets).

    Raises:
        ConfigError: a setting is of the wrong type or out of range.
    """
    environ = os.environ if environ is None else environ
    names = {item.name: item.default for item in dataclasses.fields(DefaultConfig)}
    values: dict[str, Any] = {}
    for name, default in names.items():
        if ENV_PREFIX + name in environ:
            values[name] = _coerce(name, environ[ENV_PREFIX + name], default)
    extra: dict[str, Any] = {}
    for name, value in (overrides or {}).items():
        if name in names:
            values[name] = _coerce(name, value, names[name])
        else:
            extra[name] = value
    settings = Settings(**values, extra=extra)
    if validate:
        _check(settings)
    return settings


def client_settings(environ: Mapping[str, str] | None = None) -> tuple[str, str | None]:
    """URL and token the ``splitwerk experiments`` commands use by default.

    From ``SPLITWERK_URL`` (default http://127.0.0.1:8000) and ``SPLITWERK_TOKEN``.
    """
    environ = os.environ if environ is None else environ
    url = environ.get(ENV_PREFIX + "URL", "http://127.0.0.1:8000")
    return url, environ.get(ENV_PREFIX + "TOKEN") or None
