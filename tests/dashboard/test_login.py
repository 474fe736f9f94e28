"""The login page's help: where a development token is, and no developer commands in production."""

from __future__ import annotations

from pathlib import Path

from flask.testing import FlaskClient

from server.app import create_app
from tests.conftest import RedisServer
from tests.helpers import app_settings


def login_page(redis_server: RedisServer, language: str = "en", **settings: object) -> str:
    client: FlaskClient = create_app(app_settings(redis_server.url, **settings)).test_client()
    client.set_cookie("splitwerk_locale", language, domain="localhost")
    response = client.get("/dashboard/login")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_production_login_never_tells_people_to_run_make_run(
    redis_server: RedisServer, redis_client: object
) -> None:
    for language in ("en", "de"):
        page = login_page(redis_server, language)
        assert "make run" not in page
        assert "dev-token" not in page
        assert "`" not in page
        assert "SPLITWERK_TOKENS" in page


def test_development_login_names_the_token_file_as_code(
    redis_server: RedisServer, redis_client: object, tmp_path: Path
) -> None:
    for language in ("en", "de"):
        page = login_page(redis_server, language, DEV=True, DATA_DIR=str(tmp_path))
        assert f"<code>{tmp_path / 'dev-token'}</code>" in page
        assert "`" not in page
