"""What the shop knows about Splitwerk, and where create_app() keeps it for the views."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from flask import current_app

from splitwerk import Client

ConsentMode = Literal["none", "required"]
CONSENT_MODES: tuple[ConsentMode, ...] = ("none", "required")
SETTINGS_EXTENSION = "shop.settings"  # app.extensions key of ShopSettings
CLIENT_EXTENSION = "shop.splitwerk"  # app.extensions key of the splitwerk.Client


@dataclass(frozen=True)
class ShopSettings:
    """What the views and templates need to know about Splitwerk."""

    splitwerk_url: str  # base URL without a trailing slash
    splitwerk_origin: str  # scheme://host:port, for the Content-Security-Policy
    consent_mode: ConsentMode
    snippet_timeout_ms: int  # the snippet's wait for /v1/assign before it shows the control
    # Splitwerk's embed code for <head> (GET /v1/snippet/embed); empty: pages without the snippet
    snippet_embed: str
    # CSP sources ('sha256-…') of the embed's inline <script> and <style> elements
    embed_script_hashes: tuple[str, ...]
    embed_style_hashes: tuple[str, ...]


def shop_settings() -> ShopSettings:
    """The settings of the current app."""
    settings: ShopSettings = current_app.extensions[SETTINGS_EXTENSION]
    return settings


def splitwerk_client() -> Client:
    """The Splitwerk client of the current app."""
    client: Client = current_app.extensions[CLIENT_EXTENSION]
    return client
