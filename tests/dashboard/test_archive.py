"""Archived experiments are read only in the dashboard and can be deleted after a confirmation."""

from __future__ import annotations

import time

from flask import Flask
from flask.testing import FlaskClient

from server.context import services_of
from server.services import experiments as services
from tests.dashboard.conftest import csrf_token
from tests.dashboard.test_views import create


def archive(app: Flask, key: str) -> None:
    store = services_of(app).store
    for action in ("stop", "archive"):
        services.act_on_experiment(store, key, action, "test", time.time(), retention_days=90)


def test_an_archived_experiment_has_no_edit_but_a_delete_button(
    app: Flask, editor: FlaskClient
) -> None:
    key = create(app, start=True)
    running = editor.get(f"/dashboard/experiments/{key}").get_data(as_text=True)
    assert f"/dashboard/experiments/{key}/edit" in running
    assert f"/dashboard/experiments/{key}/delete" not in running
    archive(app, key)
    page = editor.get(f"/dashboard/experiments/{key}").get_data(as_text=True)
    assert f"/dashboard/experiments/{key}/edit" not in page
    assert f"/dashboard/experiments/{key}/delete" in page
    # the edit form is not offered, and a posted change is not applied either
    form = editor.get(f"/dashboard/experiments/{key}/edit", follow_redirects=True)
    assert "Archived experiments are read only." in form.get_data(as_text=True)
    token = csrf_token(editor, "/dashboard/")
    editor.post(f"/dashboard/experiments/{key}/edit", data={"csrf_token": token, "name": "Renamed"})
    store = services_of(app).store
    assert services.get_experiment(store, key).name != "Renamed"


def test_deleting_asks_first_and_leaves_an_audit_entry(app: Flask, editor: FlaskClient) -> None:
    key = create(app, start=True)
    archive(app, key)
    confirm = editor.get(f"/dashboard/experiments/{key}/delete")
    assert confirm.status_code == 200
    assert "removed for good" in confirm.get_data(as_text=True)
    token = csrf_token(editor, f"/dashboard/experiments/{key}/delete")
    done = editor.post(f"/dashboard/experiments/{key}/delete", data={"csrf_token": token})
    assert done.status_code == 302 and done.headers["Location"] == "/dashboard/"
    listing = editor.get("/dashboard/").get_data(as_text=True)
    assert f"Experiment {key} deleted." in listing
    assert editor.get(f"/dashboard/experiments/{key}").status_code == 404
    (entry,) = services.deletion_log(services_of(app).store, 5)
    assert (entry.actor, entry.action, entry.details["experiment"]) == ("erika", "delete", key)


def test_a_running_experiment_cannot_be_deleted(app: Flask, editor: FlaskClient) -> None:
    key = create(app, start=True)
    token = csrf_token(editor, "/dashboard/")
    refused = editor.post(f"/dashboard/experiments/{key}/delete", data={"csrf_token": token})
    assert refused.status_code == 409
    assert "Only drafts and archived experiments can be deleted." in refused.get_data(True)
    assert services.get_experiment(services_of(app).store, key)


def test_a_viewer_cannot_delete(app: Flask, viewer: FlaskClient) -> None:
    key = create(app)
    assert viewer.get(f"/dashboard/experiments/{key}/delete").status_code == 403
