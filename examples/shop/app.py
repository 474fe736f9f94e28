"""Composition root of the example shop: create_app() wires Flask, the SDK and the CSP."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from urllib.parse import urlsplit

from flask import Flask, Response, g

from examples.shop import consent, views
from examples.shop.catalog import euros
from examples.shop.settings import (
    CLIENT_EXTENSION,
    CONSENT_MODES,
    SETTINGS_EXTENSION,
    ConsentMode,
    ShopSettings,
    shop_settings,
)
from splitwerk import Client
from splitwerk.adapters import init_flask

# Seconds a page waits for the server's variant; the SDK's default. Past it the page shows
# the control: a slower page costs more than a missed variant.
ASSIGN_TIMEOUT = 0.1
SNIPPET_TIMEOUT_MS = 800  # the snippet's default wait for a variant in the browser
# The inline elements of Splitwerk's embed code (they carry no attributes), whose contents the
# Content-Security-Policy allows by their hashes.
_INLINE = re.compile(r"<(script|style)>(.*?)</\1>", re.DOTALL)


def create_app(
    splitwerk_url: str,
    *,
    ingest_key: str | None,
    consent_mode: ConsentMode = "required",
    assign_timeout: float = ASSIGN_TIMEOUT,
    snippet_timeout_ms: int = SNIPPET_TIMEOUT_MS,
    snippet_embed: str = "",
    secret_key: str | None = None,
) -> Flask:
    """Build the shop against the Splitwerk server at ``splitwerk_url``.

    Args:
        splitwerk_url: the server's base URL, reached by this process and by browsers.
        ingest_key: Splitwerk's ingest token; without it orders are not recorded.
        consent_mode: ``"required"`` asks for consent in a banner before anything is stored
            or enrolled; ``"none"`` treats every visitor as having agreed.
        assign_timeout: seconds a page waits for a variant before it shows the control.
        snippet_timeout_ms: the same in the browser (the snippet's ``timeoutMs``).
        snippet_embed: Splitwerk's embed code, exactly as ``GET /v1/snippet/embed`` (or the
            dashboard's install page) gives it; it goes into every page's ``<head>``. Empty:
            pages without the snippet (no browser-assigned variants, no add-to-cart events).
        secret_key: signs the cart's session cookie; default: random per process.

    Raises:
        ValueError: ``splitwerk_url`` is not an http(s) URL or ``consent_mode`` is unknown.
    """
    parts = urlsplit(splitwerk_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"splitwerk_url must be an http(s) URL, not {splitwerk_url!r}")
    if consent_mode not in CONSENT_MODES:
        raise ValueError(f"consent_mode must be one of {CONSENT_MODES}, not {consent_mode!r}")
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=secret_key or secrets.token_hex(32),
        SESSION_COOKIE_NAME="shop_session",  # the cart: a functional cookie, no consent needed
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
    )
    app.extensions[SETTINGS_EXTENSION] = ShopSettings(
        splitwerk_url=splitwerk_url.rstrip("/"),
        splitwerk_origin=f"{parts.scheme}://{parts.netloc}",
        consent_mode=consent_mode,
        snippet_timeout_ms=snippet_timeout_ms,
        snippet_embed=snippet_embed,
        embed_script_hashes=inline_hashes(snippet_embed, "script"),
        embed_style_hashes=inline_hashes(snippet_embed, "style"),
    )
    app.extensions[CLIENT_EXTENSION] = Client(
        splitwerk_url, ingest_key=ingest_key, timeout=assign_timeout
    )
    # http_only=False: the snippet must read the backend's cookie, so that the browser's
    # conversions and the server's orders belong to the same visitor.
    init_flask(
        app,
        consent=consent.has_consent if consent_mode == "required" else consent.always,
        http_only=False,
    )
    app.register_blueprint(views.bp)
    app.before_request(_new_nonce)
    app.after_request(_secure_headers)
    app.jinja_env.filters["euros"] = euros
    return app


def inline_hashes(html: str, tag: str) -> tuple[str, ...]:
    """CSP sources (``'sha256-…'``) of the inline ``tag`` elements of ``html``."""
    return tuple(
        f"'sha256-{base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()}'"
        for name, text in _INLINE.findall(html)
        if name == tag
    )


def _new_nonce() -> None:
    # One nonce per response, for the inline <style> that carries a variant's colour and the
    # inline <script> that gives the snippet its options.
    g.csp_nonce = secrets.token_urlsafe(16)


def _secure_headers(response: Response) -> Response:
    """A strict Content-Security-Policy: scripts from files of this shop and Splitwerk, and
    inline only the embed code (by its hashes) and what carries this response's nonce."""
    settings = shop_settings()
    splitwerk = settings.splitwerk_origin
    nonce = f"'nonce-{g.get('csp_nonce', '')}'"
    scripts = " ".join(("'self'", splitwerk, nonce, *settings.embed_script_hashes))
    styles = " ".join(("'self'", nonce, *settings.embed_style_hashes))
    response.headers["Content-Security-Policy"] = "; ".join(
        [
            "default-src 'none'",
            f"script-src {scripts}",
            f"connect-src 'self' {splitwerk}",  # /v1/assign, beacons to /v1/events, /consent
            f"style-src {styles}",
            "img-src 'self'",
            "form-action 'self'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        ]
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "strict-origin-when-cross-origin"
    return response
