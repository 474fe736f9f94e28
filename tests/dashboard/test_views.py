"""The dashboard's pages through the Flask test client: sign-in, roles, CSRF, CSP, escaping,
lifecycle actions, the list's filters and the sample ratio warning."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from dashboard.views import CONTENT_SECURITY_POLICY
from server import schemas
from server.context import services_of
from server.demo import DEMO_DAYS
from server.services import experiments as services
from server.storage import keys
from tests.dashboard.conftest import csrf_token, sign_in
from tests.helpers import EDITOR_TOKEN, PREVIEW_TOKEN, VIEWER_TOKEN

EXPERIMENT = {
    "key": "banner",
    "name": "Free shipping banner",
    "variants": [{"key": "control"}, {"key": "banner"}],
    "goals": [{"key": "purchase", "primary": True}],
}


def create(app: Flask, **fields: object) -> str:
    """Create (and optionally start) an experiment through the services; returns its key."""
    start = bool(fields.pop("start", False))
    data = schemas.ExperimentCreateSchema().load({**EXPERIMENT, **fields})
    store = services_of(app).store
    services.create_experiment(store, data, "test", time.time())
    if start:
        services.act_on_experiment(
            store, data["key"], "start", "test", time.time(), retention_days=90
        )
    return str(data["key"])


def status_of(app: Flask, key: str) -> str:
    store = services_of(app).store
    return services.get_experiment(store, key).status.value


# --- sign-in ---------------------------------------------------------------------------------


def test_pages_send_visitors_without_a_session_to_the_login(client: FlaskClient) -> None:
    response = client.get("/dashboard/?status=running")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/dashboard/login?next=")


def test_a_wrong_token_is_refused(client: FlaskClient) -> None:
    response = client.post(
        "/dashboard/login", data={"token": "wrong", "csrf_token": csrf_token(client)}
    )
    assert response.status_code == 401
    assert "not valid for the dashboard" in response.get_data(as_text=True)
    assert client.get("/dashboard/").status_code == 302


def test_a_preview_token_cannot_sign_in(client: FlaskClient) -> None:
    response = client.post(
        "/dashboard/login", data={"token": PREVIEW_TOKEN, "csrf_token": csrf_token(client)}
    )
    assert response.status_code == 401


def test_the_viewer_token_signs_in_as_viewer(app: Flask, viewer: FlaskClient) -> None:
    key = create(app, start=True)
    page = viewer.get(f"/dashboard/experiments/{key}").get_data(as_text=True)
    assert "viktor" in page
    assert "signed in as a viewer" in page
    assert f"/dashboard/experiments/{key}/actions/pause" not in page


def test_the_editor_token_signs_in_as_editor(app: Flask, editor: FlaskClient) -> None:
    key = create(app, start=True)
    page = editor.get(f"/dashboard/experiments/{key}").get_data(as_text=True)
    assert "erika" in page
    assert f"/dashboard/experiments/{key}/actions/pause" in page


def test_login_returns_to_the_page_asked_for_but_never_off_site(client: FlaskClient) -> None:
    token = csrf_token(client)
    inside = client.post(
        "/dashboard/login",
        data={"token": EDITOR_TOKEN, "csrf_token": token, "next": "/dashboard/?q=x"},
    )
    assert inside.headers["Location"] == "/dashboard/?q=x"
    outside = client.post(
        "/dashboard/login",
        data={
            "token": EDITOR_TOKEN,
            "csrf_token": csrf_token(client),
            "next": "//evil.example/",
        },
    )
    assert outside.headers["Location"] == "/dashboard/"


def test_sign_out_ends_the_session(editor: FlaskClient) -> None:
    token = csrf_token(editor, "/dashboard/")
    assert editor.post("/dashboard/logout", data={"csrf_token": token}).status_code == 302
    assert editor.get("/dashboard/").status_code == 302


def test_sign_out_revokes_every_copy_of_the_session_cookie(
    app: Flask, editor: FlaskClient, redis_client: redis.Redis
) -> None:
    key = create(app, start=True)
    token = csrf_token(editor, "/dashboard/")
    cookie = editor.get_cookie("session")  # with the CSRF token: a full copy of the session
    assert cookie is not None
    thief = app.test_client()
    thief.set_cookie("session", cookie.value, domain="localhost")
    assert thief.get("/dashboard/").status_code == 200  # the copy works while signed in
    assert editor.post("/dashboard/logout", data={"csrf_token": token}).status_code == 302

    assert thief.get("/dashboard/").status_code == 302
    post = thief.post(f"/dashboard/experiments/{key}/actions/pause", data={"csrf_token": token})
    assert post.status_code == 302
    assert post.headers["Location"].startswith("/dashboard/login")
    assert status_of(app, key) == "running"


def test_server_side_sessions_hold_only_a_digest_and_expire(
    editor: FlaskClient, redis_client: redis.Redis
) -> None:
    from dashboard.auth import SESSION_LIFETIME

    stored = list(redis_client.scan_iter(keys.DASHBOARD_SESSION_PREFIX + "*"))
    assert len(stored) == 1
    assert 0 < redis_client.ttl(stored[0]) <= SESSION_LIFETIME
    cookie = editor.get_cookie("session")
    assert cookie is not None
    assert stored[0].decode().rsplit(":", 1)[1] not in cookie.value


def test_a_session_ends_when_its_token_is_removed(app: Flask, redis_server) -> None:  # type: ignore[no-untyped-def]
    from server.app import create_app
    from tests.helpers import app_settings

    client = app.test_client()
    sign_in(client, VIEWER_TOKEN)
    cookie = client.get_cookie("session")
    assert cookie is not None
    without_viewer = create_app(
        app_settings(redis_server.url, TOKENS=services_of(app).settings.TOKENS[0:1])
    )
    other = without_viewer.test_client()
    other.set_cookie("session", cookie.value, domain="localhost")
    assert other.get("/dashboard/").status_code == 302


def test_tokenless_development_mode_signs_in_as_dev(redis_server) -> None:  # type: ignore[no-untyped-def]
    from server.app import create_app
    from tests.helpers import app_settings

    app = create_app(app_settings(redis_server.url, TOKENS="", DEV=True))
    client = app.test_client()
    page = client.get("/dashboard/login").get_data(as_text=True)
    assert "leave the field empty" in page
    sign_in(client, "")
    assert "dev" in client.get("/dashboard/").get_data(as_text=True)


# --- CSRF, roles, headers ----------------------------------------------------------------------


def test_a_post_without_the_csrf_token_is_refused(app: Flask, editor: FlaskClient) -> None:
    key = create(app, start=True)
    response = editor.post(f"/dashboard/experiments/{key}/actions/pause")
    assert response.status_code == 400
    assert status_of(app, key) == "running"


def test_a_post_with_a_foreign_csrf_token_is_refused(app: Flask, editor: FlaskClient) -> None:
    key = create(app, start=True)
    response = editor.post(
        f"/dashboard/experiments/{key}/actions/pause", data={"csrf_token": "x" * 43}
    )
    assert response.status_code == 400
    assert status_of(app, key) == "running"


def test_a_token_of_another_session_is_refused(app: Flask, editor: FlaskClient) -> None:
    key = create(app, start=True)
    other = sign_in(app.test_client(), EDITOR_TOKEN)
    response = editor.post(
        f"/dashboard/experiments/{key}/actions/pause",
        data={"csrf_token": csrf_token(other, "/dashboard/")},
    )
    assert response.status_code == 400
    assert status_of(app, key) == "running"


@pytest.mark.parametrize(
    "path",
    [
        "/dashboard/logout",
        "/dashboard/experiments/new",
        "/dashboard/experiments/banner/edit",
        "/dashboard/experiments/banner/actions/start",
        "/dashboard/experiments/banner/delete",
    ],
)
@pytest.mark.parametrize("presented", [None, "wrong"])
def test_every_dashboard_post_needs_the_token(
    app: Flask, editor: FlaskClient, path: str, presented: str | None
) -> None:
    create(app)
    data = {"name": "Changed", "key": "other"}
    if presented is not None:
        data["csrf_token"] = presented
    response = editor.post(path, data=data)
    assert response.status_code == 400
    assert status_of(app, "banner") == "draft"
    assert editor.get("/dashboard/").status_code == 200  # still signed in


@pytest.mark.parametrize("presented", ["é", "\u00e9" * 43, "\u20ac" * 43, "x" * 43])
def test_a_post_with_a_non_ascii_csrf_token_is_a_400_page(
    app: Flask, editor: FlaskClient, presented: str
) -> None:
    key = create(app, start=True)
    response = editor.post(
        f"/dashboard/experiments/{key}/actions/pause", data={"csrf_token": presented}
    )
    assert response.status_code == 400
    assert response.mimetype == "text/html"
    assert status_of(app, key) == "running"


def test_login_itself_needs_the_csrf_token(client: FlaskClient) -> None:
    client.get("/dashboard/login")
    assert client.post("/dashboard/login", data={"token": EDITOR_TOKEN}).status_code == 400


def test_a_viewer_cannot_act(app: Flask, viewer: FlaskClient) -> None:
    key = create(app, start=True)
    token = csrf_token(viewer, "/dashboard/")
    response = viewer.post(
        f"/dashboard/experiments/{key}/actions/pause", data={"csrf_token": token}
    )
    assert response.status_code == 403
    assert status_of(app, key) == "running"
    assert viewer.get("/dashboard/experiments/new").status_code == 403


def test_every_dashboard_page_has_the_strict_csp(app: Flask, editor: FlaskClient) -> None:
    key = create(app, start=True)
    for path in (
        "/dashboard/login",
        "/dashboard/",
        f"/dashboard/experiments/{key}",
        f"/dashboard/experiments/{key}/edit",
        f"/dashboard/experiments/{key}/actions/stop",
        "/dashboard/experiments/new",
        "/dashboard/experiments/nothing-here",
    ):
        response = editor.get(path)
        assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY, path
        assert response.headers["Cache-Control"] == "no-store", path
        html = response.get_data(as_text=True)
        assert "<script>" not in html and " style=" not in html, path  # nothing inline


def test_the_session_cookie_is_http_only_and_same_site(client: FlaskClient) -> None:
    response = client.post(
        "/dashboard/login", data={"token": VIEWER_TOKEN, "csrf_token": csrf_token(client)}
    )
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie


def test_the_session_cookie_is_secure_over_https(app: Flask) -> None:
    client = app.test_client()
    token = csrf_token(client)
    response = client.post(
        "/dashboard/login",
        data={"token": VIEWER_TOKEN, "csrf_token": token},
        base_url="https://localhost",
        # over https Flask-WTF also wants the form to come from this site (pages send
        # Referrer-Policy: same-origin, so browsers send it)
        headers={"Referer": "https://localhost/dashboard/login"},
    )
    assert "Secure" in response.headers["Set-Cookie"]


def test_over_https_a_post_from_another_site_is_refused(app: Flask) -> None:
    client = app.test_client()
    token = csrf_token(client)
    for referrer in ({}, {"Referer": "https://shop.example/dashboard/login"}):
        response = client.post(
            "/dashboard/login",
            data={"token": VIEWER_TOKEN, "csrf_token": token},
            base_url="https://localhost",
            headers=referrer,
        )
        assert response.status_code == 400, referrer
        assert "the form expired or came from another site" in response.get_data(as_text=True)


def test_the_api_stays_without_session_cookies(client: FlaskClient) -> None:
    assert "Set-Cookie" not in client.get("/healthz").headers


def test_the_chart_library_is_served_from_this_origin(client: FlaskClient) -> None:
    response = client.get("/dashboard/vendor/chart.umd.js")
    assert response.status_code == 200, "run `npm ci` in dashboard/"
    assert response.mimetype == "text/javascript"
    assert b"Chart" in response.data[:2000]
    assert client.get("/dashboard/vendor/other.js").status_code == 404


# --- escaping ----------------------------------------------------------------------------------


def test_an_experiment_name_with_a_script_stays_text(app: Flask, editor: FlaskClient) -> None:
    name = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    key = create(app, name=name, hypothesis="</textarea><b>bold</b>", start=True)
    pages = ("/dashboard/", f"/dashboard/experiments/{key}", f"/dashboard/experiments/{key}/edit")
    for path in pages:
        html = editor.get(path).get_data(as_text=True)
        assert "<script>alert" not in html, path
        assert "<img src=x" not in html, path
        assert "&lt;script&gt;alert(" in html, path
    edit = editor.get(f"/dashboard/experiments/{key}/edit").get_data(as_text=True)
    assert "</textarea><b>" not in edit


# --- lifecycle ---------------------------------------------------------------------------------


def test_pausing_asks_first_and_then_pauses(app: Flask, editor: FlaskClient) -> None:
    key = create(app, start=True)
    confirm = editor.get(f"/dashboard/experiments/{key}/actions/pause")
    assert confirm.status_code == 200
    assert "Yes, pause" in confirm.get_data(as_text=True)
    assert status_of(app, key) == "running"

    token = csrf_token(editor, f"/dashboard/experiments/{key}/actions/pause")
    done = editor.post(f"/dashboard/experiments/{key}/actions/pause", data={"csrf_token": token})
    assert done.status_code == 302
    assert status_of(app, key) == "paused"
    page = editor.get(f"/dashboard/experiments/{key}").get_data(as_text=True)
    assert "Experiment paused." in page
    assert "erika" in page  # the audit trail names who paused


def test_a_refused_transition_is_explained(app: Flask, editor: FlaskClient) -> None:
    key = create(app, start=True)
    token = csrf_token(editor, "/dashboard/")
    response = editor.post(
        f"/dashboard/experiments/{key}/actions/archive", data={"csrf_token": token}
    )
    assert response.status_code == 409
    assert "cannot archive an experiment that is running" in response.get_data(as_text=True)


def test_stopping_with_a_winner(app: Flask, editor: FlaskClient) -> None:
    key = create(app, start=True)
    token = csrf_token(editor, "/dashboard/")
    editor.post(
        f"/dashboard/experiments/{key}/actions/stop",
        data={"csrf_token": token, "winner": "banner"},
    )
    stopped = services.get_experiment(services_of(app).store, key)
    assert (stopped.status.value, stopped.winner) == ("stopped", "banner")


def test_a_new_phase_needs_the_confirmation_box(app: Flask, editor: FlaskClient) -> None:
    key = create(app, start=True)
    token = csrf_token(editor, "/dashboard/")
    path = f"/dashboard/experiments/{key}/actions/new-phase"
    form = {"csrf_token": token, "coverage": "100", "weight-0": "1", "weight-1": "1"}
    refused = editor.post(path, data=form)
    assert refused.status_code == 422
    assert "Tick the box to confirm" in refused.get_data(as_text=True)
    editor.post(path, data={**form, "confirm": "yes", "weight-1": "3"})
    renewed = services.get_experiment(services_of(app).store, key)
    assert renewed.phase == 2
    assert [variant.allocation for variant in renewed.variants] == [2500, 7500]


def test_a_new_phase_refuses_what_is_no_weight_or_percentage(
    app: Flask, editor: FlaskClient
) -> None:
    key = create(app, start=True)
    path = f"/dashboard/experiments/{key}/actions/new-phase"
    form = {"csrf_token": csrf_token(editor, "/dashboard/"), "confirm": "yes", "weight-0": "1"}
    for wrong, message in (
        ({"coverage": "120", "weight-1": "1"}, "Enter a percentage from 0 to 100."),
        ({"coverage": "100", "weight-1": "0"}, "Enter a weight greater than 0."),
        ({"coverage": "100", "weight-1": "much"}, "Enter a number, such as 1 or 2.5."),
    ):
        refused = editor.post(path, data={**form, **wrong})
        assert refused.status_code == 422, wrong
        assert message in refused.get_data(as_text=True)
    assert services.get_experiment(services_of(app).store, key).phase == 1


def test_unknown_experiments_and_actions_are_404_pages(app: Flask, editor: FlaskClient) -> None:
    key = create(app)
    missing = editor.get("/dashboard/experiments/nothing-here")
    assert missing.status_code == 404
    assert missing.mimetype == "text/html"
    assert editor.get(f"/dashboard/experiments/{key}/actions/explode").status_code == 404


def test_a_draft_shows_no_results(app: Flask, editor: FlaskClient) -> None:
    key = create(app)
    page = editor.get(f"/dashboard/experiments/{key}").get_data(as_text=True)
    assert "is a draft" in page
    assert f"/dashboard/experiments/{key}/actions/start" in page


# --- list --------------------------------------------------------------------------------------


def test_the_list_filters_by_status_and_searches(app: Flask, editor: FlaskClient) -> None:
    create(app, key="running-one", name="Green button", start=True)
    create(app, key="draft-one", name="Banner text")
    running = editor.get("/dashboard/?status=running").get_data(as_text=True)
    assert "Green button" in running and "Banner text" not in running
    found = editor.get("/dashboard/?q=BANNER").get_data(as_text=True)
    assert "Banner text" in found and "Green button" not in found
    assert editor.get("/dashboard/?status=exploded").status_code == 400


def test_the_list_shows_the_demo_leader_and_days(editor: FlaskClient, demo: str) -> None:
    html = editor.get("/dashboard/").get_data(as_text=True)
    assert "Checkout button" in html
    assert "1,500" in html  # enrolled visitors
    assert f">{DEMO_DAYS}<" in html  # days running
    assert "green-note" in html


def test_a_sample_ratio_mismatch_is_flagged(
    app: Flask, editor: FlaskClient, redis_client: redis.Redis
) -> None:
    key = create(app, start=True)
    # a 50/50 experiment whose counters say 1000 against 500: far beyond chance
    redis_client.hset(keys.counts(key, 1), mapping={"e:0": 1000, "e:1": 500})
    listing = editor.get("/dashboard/").get_data(as_text=True)
    assert "Sample ratio mismatch" in listing
    page = editor.get(f"/dashboard/experiments/{key}").get_data(as_text=True)
    assert 'role="alert"' in page
    assert "Do not trust these results" in page


def test_a_dashboard_page_says_so_when_redis_is_down(app: Flask, tmp_path: Path) -> None:
    from server.app import create_app
    from tests.dashboard.conftest import sign_in
    from tests.helpers import EDITOR_TOKEN, app_settings

    cookie = sign_in(app.test_client(), EDITOR_TOKEN).get_cookie("session")
    assert cookie is not None  # signed in while Redis answered
    down = create_app(app_settings(f"unix://{tmp_path}/gone.sock"))
    client = down.test_client()
    client.set_cookie("session", cookie.value, domain="localhost")
    response = client.get("/dashboard/", headers={"Accept-Language": "de"})
    assert response.status_code == 503
    assert response.mimetype == "text/html"
    assert int(response.headers["Retry-After"]) > 0
    assert "Der Datenspeicher antwortet gerade nicht" in response.get_data(as_text=True)
