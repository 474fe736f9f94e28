"""The visitor cookie middleware, its consent rules, and the Flask and Django adapters."""

import subprocess
import sys
from collections.abc import Mapping
from typing import Any

import pytest
from flask import Flask

from splitwerk import ConfigError, VisitorMiddleware
from splitwerk.adapters import DjangoVisitorMiddleware, django_visitor, flask_visitor, init_flask
from splitwerk.web import COOKIE_MAX_AGE, read_cookie, visitor_of


def consent_header(environ: Mapping[str, Any]) -> bool:
    return environ.get("HTTP_X_CONSENT") == "yes"


@pytest.fixture
def app() -> Flask:
    app = Flask(__name__)
    init_flask(app, consent=consent_header)

    @app.get("/")
    def index() -> dict[str, object]:
        visitor, has_consent = flask_visitor()
        return {"visitor": visitor, "consent": has_consent}

    return app


def test_adapters_do_not_import_the_frameworks() -> None:
    # In a fresh interpreter: other tests of this run import Django and Starlette.
    code = (
        "import sys, splitwerk, splitwerk.adapters, splitwerk.asgi; "
        "print(sorted({'django', 'starlette', 'flask'} & set(sys.modules)))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True)
    assert result.stdout.strip() == b"[]"


def test_new_visitor_with_consent_gets_a_year_long_lax_cookie(app: Flask) -> None:
    response = app.test_client().get("/", headers={"X-Consent": "yes"})
    cookie = response.headers["Set-Cookie"]
    visitor = response.json["visitor"]
    assert cookie.startswith(f"splitwerk_vid={visitor};")
    assert f"Max-Age={COOKIE_MAX_AGE}" in cookie and COOKIE_MAX_AGE == 31_536_000
    assert "SameSite=Lax" in cookie and "HttpOnly" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie
    assert response.json["consent"] is True


def test_cookie_is_secure_over_https(app: Flask) -> None:
    response = app.test_client().get(
        "/", headers={"X-Consent": "yes"}, base_url="https://shop.example"
    )
    assert "; Secure" in response.headers["Set-Cookie"]


def test_returning_visitor_keeps_the_id_without_a_new_cookie(app: Flask) -> None:
    client = app.test_client()
    first = client.get("/", headers={"X-Consent": "yes"}).json["visitor"]
    second = client.get("/", headers={"X-Consent": "yes"})
    assert second.json["visitor"] == first
    assert "Set-Cookie" not in second.headers


def test_without_consent_no_cookie_and_a_request_scoped_id(app: Flask) -> None:
    client = app.test_client()
    first = client.get("/")
    second = client.get("/")
    assert "Set-Cookie" not in first.headers
    assert first.json["consent"] is False
    assert first.json["visitor"] != second.json["visitor"]


def test_withdrawn_consent_deletes_the_cookie(app: Flask) -> None:
    client = app.test_client()
    visitor = client.get("/", headers={"X-Consent": "yes"}).json["visitor"]
    response = client.get("/")
    assert response.json["visitor"] != visitor
    assert response.headers["Set-Cookie"].startswith("splitwerk_vid=; Path=/; Max-Age=0")


def test_failing_consent_check_counts_as_no_consent() -> None:
    def broken(environ: Mapping[str, Any]) -> bool:
        raise RuntimeError("consent service down")

    seen: dict[str, Any] = {}

    def wsgi_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.update(environ)
        start_response("200 OK", [])
        return [b""]

    headers: list[tuple[str, str]] = []
    VisitorMiddleware(wsgi_app, consent=broken)(
        {"HTTP_COOKIE": "splitwerk_vid=abc"}, lambda status, h, exc_info=None: headers.extend(h)
    )
    assert seen["splitwerk.consent"] is False
    assert seen["splitwerk.visitor"] != "abc"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("splitwerk_vid=abc123", "abc123"),
        ("a=1; splitwerk_vid=abc_-9; b=2", "abc_-9"),
        ('splitwerk_vid="quoted"', "quoted"),
        ("splitwerk_vid=<script>", None),
        ("splitwerk_vid=" + "x" * 129, None),
        ("other=1; broken; splitwerk_vid=ok", "ok"),
        ("", None),
    ],
)
def test_cookie_values_are_read_only_when_safe(header: str, expected: str | None) -> None:
    assert read_cookie(header, "splitwerk_vid") == expected


def test_visitor_of_without_middleware_gives_a_request_scoped_id() -> None:
    environ: dict[str, Any] = {}
    visitor, has_consent = visitor_of(environ)
    assert len(visitor) == 32 and has_consent is False
    assert visitor_of(environ) == (visitor, False)


@pytest.mark.parametrize(
    "options",
    [
        {"consent": None},
        {"consent": consent_header, "cookie_name": "a b"},
        {"consent": consent_header, "domain": "bad domain"},
        {"consent": consent_header, "max_age": 0},
    ],
)
def test_bad_middleware_arguments_raise_config_error(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        VisitorMiddleware(lambda environ, start_response: [], **options)


class FakeDjangoRequest:
    def __init__(self, meta: dict[str, Any], is_secure: bool = False) -> None:
        self.META = meta
        self._is_secure = is_secure

    def is_secure(self) -> bool:
        return self._is_secure


class FakeDjangoResponse:
    def __init__(self) -> None:
        self.cookies: dict[str, dict[str, Any]] = {}
        self.deleted: list[str] = []

    def set_cookie(self, name: str, value: str, **options: Any) -> None:
        self.cookies[name] = {"value": value, **options}

    def delete_cookie(self, name: str, **options: Any) -> None:
        self.deleted.append(name)


def test_django_middleware_sets_the_cookie_with_consent() -> None:
    middleware = DjangoVisitorMiddleware(
        lambda request: FakeDjangoResponse(), consent=consent_header
    )
    request = FakeDjangoRequest({"HTTP_X_CONSENT": "yes"}, is_secure=True)
    response = middleware(request)
    visitor, has_consent = django_visitor(request)
    assert has_consent is True
    assert response.cookies["splitwerk_vid"] == {
        "value": visitor,
        "max_age": COOKIE_MAX_AGE,
        "path": "/",
        "domain": None,
        "secure": True,
        "httponly": True,
        "samesite": "Lax",
    }


def test_django_middleware_deletes_the_cookie_without_consent() -> None:
    middleware = DjangoVisitorMiddleware(
        lambda request: FakeDjangoResponse(), consent=consent_header
    )
    response = middleware(FakeDjangoRequest({"HTTP_COOKIE": "splitwerk_vid=abc"}))
    assert response.deleted == ["splitwerk_vid"] and response.cookies == {}
