"""The experiment form: the API's validation, errors next to the fields, create and edit."""

from __future__ import annotations

import re

from flask import Flask
from flask.testing import FlaskClient

from dashboard import forms
from server.context import services_of
from server.core.models import Experiment
from server.services import experiments as services
from tests.dashboard.conftest import csrf_token
from tests.dashboard.test_views import create

VALID = {
    "key": "banner",
    "name": "Free shipping banner",
    "hypothesis": "A banner sells more",
    "variants-0-key": "control",
    "variants-0-weight": "1",
    "variants-1-key": "banner",
    "variants-1-weight": "3",
    "variants-1-payload": '{"text": "Kostenloser Versand"}',
    "coverage": "50",
    "conditions": '{"country": "DE"}',
    "goals-0-key": "purchase",
    "goals-0-kind": "conversion",
    "goals-1-key": "margin",
    "goals-1-kind": "margin",
    "goals-1-event": "purchase",
    "goals-primary": "0",
    "segments": "source, device",
    "analysis": "sequential",
    "minimum_effect": "5",
}


def submit(client: FlaskClient, path: str, **changes: str) -> tuple[int, str]:
    data = {**VALID, **changes, "csrf_token": csrf_token(client, path)}
    response = client.post(path, data={name: value for name, value in data.items() if value})
    return response.status_code, response.get_data(as_text=True)


def created_with(app: Flask, editor: FlaskClient, **changes: str) -> Experiment:
    """The experiment the new-experiment form created from VALID with ``changes``."""
    status, _ = submit(editor, "/dashboard/experiments/new", **changes)
    assert status == 302
    return services.get_experiment(services_of(app).store, "banner")


def error_of(page: str, field: str) -> str:
    """The text of a field's error list."""
    found = re.search(rf'<ul class="field-error" id="{field}-error">(.*?)</ul>', page, re.S)
    assert found is not None, f"no error shown for {field}"
    return re.sub(r"<[^>]+>", " ", found.group(1))


def test_a_valid_form_creates_a_draft(app: Flask, editor: FlaskClient) -> None:
    status, _ = submit(editor, "/dashboard/experiments/new")
    assert status == 302
    created = services.get_experiment(services_of(app).store, "banner")
    assert [v.allocation for v in created.variants] == [2500, 7500]
    assert created.variants[1].payload == {"text": "Kostenloser Versand"}
    assert created.coverage == 5000
    assert created.conditions == {"country": "DE"}
    assert [g.key for g in created.goals] == ["purchase", "margin"]
    assert created.goals[0].is_primary and created.goals[1].event == "purchase"
    assert created.segments == ("source", "device")
    assert created.minimum_effect == 0.05


def test_schema_errors_appear_next_to_their_fields(editor: FlaskClient) -> None:
    status, page = submit(
        editor, "/dashboard/experiments/new", key="Bad Key", **{"variants-1-key": "B!"}
    )
    assert status == 422
    assert "Use lowercase letters, digits, - and _ only" in error_of(page, "key")
    assert "Use lowercase letters, digits, - and _ only" in error_of(page, "variants-1-key")
    assert "must match" not in page and "^[a-z0-9]" not in page  # no regex for people
    assert 'id="key" name="key" value="Bad Key"' in page  # what was typed stays
    assert 'aria-invalid="true" aria-describedby="key-error key-hint"' in page
    assert 'class="error-summary"' in page


def test_json_that_does_not_parse_is_an_error_of_its_field(editor: FlaskClient) -> None:
    status, page = submit(
        editor,
        "/dashboard/experiments/new",
        conditions="{country: DE}",
        **{"variants-1-payload": "{oops"},
    )
    assert status == 422
    assert "This is not valid JSON" in error_of(page, "conditions")
    assert "This is not valid JSON" in error_of(page, "variants-1-payload")


def test_domain_refusals_are_shown_at_their_fields(editor: FlaskClient) -> None:
    status, page = submit(
        editor, "/dashboard/experiments/new", conditions='{"country": {"$bogus": 1}}'
    )
    assert status == 422
    assert error_of(page, "conditions").strip()
    status, page = submit(editor, "/dashboard/experiments/new", **{"variants-1-weight": "0"})
    assert status == 422
    assert "Enter a weight greater than 0." in error_of(page, "variants-1-weight")


def test_goal_rules_are_the_api_s(editor: FlaskClient) -> None:
    status, page = submit(editor, "/dashboard/experiments/new", **{"goals-primary": ""})
    assert status == 422
    assert "Mark exactly one goal as primary." in error_of(page, "goals")


def test_errors_follow_the_form_rows_when_rows_are_left_empty(editor: FlaskClient) -> None:
    # row 1 left blank: the schema's list position 1 is the form's row 2
    status, page = submit(
        editor,
        "/dashboard/experiments/new",
        **{"variants-1-key": "", "variants-1-weight": "", "variants-1-payload": ""},
        **{"variants-2-key": "NOPE", "variants-2-weight": "1"},
    )
    assert status == 422
    assert "Use lowercase letters" in error_of(page, "variants-2-key")


def test_a_taken_key_is_a_conflict_at_the_key(app: Flask, editor: FlaskClient) -> None:
    create(app)
    status, page = submit(editor, "/dashboard/experiments/new")
    assert status == 409
    assert "Another experiment already uses this key." in error_of(page, "key")


def test_editing_a_running_experiment_sends_only_what_changed(
    app: Flask, editor: FlaskClient
) -> None:
    key = create(app, start=True)
    path = f"/dashboard/experiments/{key}/edit"
    page = editor.get(path).get_data(as_text=True)
    assert re.search(r'id="segments"[^>]* disabled', page)  # segments are locked while live
    values = forms.values_of(services.get_experiment(services_of(app).store, key))
    values.update({"name": "Renamed", "csrf_token": csrf_token(editor, path)})
    assert editor.post(path, data=values).status_code == 302
    store = services_of(app).store
    assert services.get_experiment(store, key).name == "Renamed"
    entry = services.audit_trail(store, key, 1)[0]
    assert entry.details == {"fields": ["name"]}


def test_shrinking_coverage_of_a_live_experiment_is_refused(
    app: Flask, editor: FlaskClient
) -> None:
    key = create(app, start=True)
    path = f"/dashboard/experiments/{key}/edit"
    values = forms.values_of(services.get_experiment(services_of(app).store, key))
    values.update({"coverage": "40", "csrf_token": csrf_token(editor, path)})
    response = editor.post(path, data=values)
    assert response.status_code == 409
    page = response.get_data(as_text=True)
    assert "coverage can only grow: at least 100%" in error_of(page, "coverage")
    assert "10000" not in page and "5000" not in page  # no basis points for people


def test_a_form_without_changes_changes_nothing(app: Flask, editor: FlaskClient) -> None:
    key = create(app)
    path = f"/dashboard/experiments/{key}/edit"
    store = services_of(app).store
    values = forms.values_of(services.get_experiment(store, key))
    values["csrf_token"] = csrf_token(editor, path)
    assert editor.post(path, data=values).status_code == 302
    assert services.get_experiment(store, key).revision == 0


def test_field_errors_map_nested_paths_to_field_ids() -> None:
    errors = {
        "variants": {0: {"key": ["bad"]}, "1": {"weight": ["must be > 0"]}},
        "layer": {"name": ["nope"]},
        "segments": {2: ["bad name"]},
        "_schema": ["whole form"],
    }
    flat = forms.field_errors(errors, {"variants": [0, 3], "goals": []})
    assert flat == {
        "variants-0-key": ["bad"],
        "variants-3-weight": ["must be > 0"],
        "layer-name": ["nope"],
        "segments": ["bad name"],
        "_form": ["whole form"],
    }


def test_a_value_goal_opts_in_to_browser_values_and_keeps_it_when_edited(
    app: Flask, editor: FlaskClient
) -> None:
    status, _ = submit(editor, "/dashboard/experiments/new", **{"goals-1-browser": "on"})
    assert status == 302
    store = services_of(app).store
    created = services.get_experiment(store, "banner")
    assert [g.accepts_browser_value for g in created.goals] == [False, True]
    page = editor.get("/dashboard/experiments/banner/edit").get_data(as_text=True)
    assert re.search(r'id="goals-1-browser" name="goals-1-browser" checked', page)
    status, _ = submit(
        editor, "/dashboard/experiments/banner/edit", name="Renamed", **{"goals-1-browser": "on"}
    )
    assert status == 302
    edited = services.get_experiment(store, "banner")
    assert edited.name == "Renamed" and edited.goals[1].accepts_browser_value


def test_an_open_ended_experiment_keeps_the_always_valid_test(
    app: Flask, editor: FlaskClient
) -> None:
    page = editor.get("/dashboard/experiments/new").get_data(as_text=True)
    assert '<option value="always_valid"' in page
    status, _ = submit(editor, "/dashboard/experiments/new", analysis="always_valid")
    assert status == 302
    created = services.get_experiment(services_of(app).store, "banner")
    assert created.analysis.value == "always_valid"


def test_every_error_is_reported_at_once_in_plain_words(editor: FlaskClient) -> None:
    status, page = submit(
        editor,
        "/dashboard/experiments/new",
        key="Bad Key",
        coverage="150",
        conditions='{"country": {"$bogus": 1}}',
        **{"variants-1-weight": "0"},
    )
    assert status == 422
    assert "Use lowercase letters" in error_of(page, "key")
    # coverage is typed in percent, and the message speaks percent (not basis points)
    assert "Enter a percentage from 0 to 100." in error_of(page, "coverage")
    assert "10000" not in page
    # the weight and the conditions are domain rules: reported together with the schema's
    assert "Enter a weight greater than 0." in error_of(page, "variants-1-weight")
    assert error_of(page, "conditions").strip()
    # the summary names fields as their labels do, not by their ids
    assert '<a href="#variants-1-weight">Variant 2: weight</a>' in page
    assert ">variants-1-weight</a>" not in page


def test_a_goal_is_required_when_the_experiment_is_created(editor: FlaskClient) -> None:
    status, page = submit(
        editor,
        "/dashboard/experiments/new",
        **{name: "" for name in VALID if name.startswith("goals-")},
    )
    assert status == 422
    assert "Add at least one goal" in error_of(page, "goals")


def test_errors_speak_german_in_the_german_form(app: Flask) -> None:
    from tests.dashboard.conftest import sign_in
    from tests.helpers import EDITOR_TOKEN

    client = app.test_client()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "de"
    sign_in(client, EDITOR_TOKEN)
    status, page = submit(
        client, "/dashboard/experiments/new", key="Bad Key", coverage="150",
        **{"variants-1-weight": "0"},
    )  # fmt: skip
    assert status == 422
    assert "Nur Kleinbuchstaben, Ziffern" in error_of(page, "key")
    assert "Prozentwert von 0 bis 100" in error_of(page, "coverage")
    assert "Gewicht größer als 0" in error_of(page, "variants-1-weight")
    assert ">Variante 2: Gewicht</a>" in page


def test_rows_added_in_the_page_become_variants_and_goals_in_order(
    app: Flask, editor: FlaskClient
) -> None:
    # "Add a variant" shows rows 2, 3 …; a row left empty between filled ones is skipped
    rows = {
        "variants-2-key": "",
        "variants-3-key": "banner-b",
        "variants-3-weight": "2",
        "variants-4-key": "banner-c",
        "goals-3-key": "add_to_cart",
        "goals-primary": "3",
    }
    status, page = submit(editor, "/dashboard/experiments/new", **rows)
    assert status == 302, page
    created = services.get_experiment(services_of(app).store, "banner")
    assert [v.key for v in created.variants] == ["control", "banner", "banner-b", "banner-c"]
    assert [v.weight for v in created.variants] == [1, 3, 2, 1]
    assert [(g.key, g.is_primary) for g in created.goals] == [
        ("purchase", False),
        ("margin", False),
        ("add_to_cart", True),
    ]


def test_an_error_in_an_added_row_is_shown_at_that_row(editor: FlaskClient) -> None:
    status, page = submit(
        editor, "/dashboard/experiments/new", **{"variants-5-key": "late", "variants-5-weight": "0"}
    )
    assert status == 422
    assert "Enter a weight greater than 0." in error_of(page, "variants-5-weight")
    assert '<a href="#variants-5-weight">Variant 6: weight</a>' in page


def test_wtforms_own_messages_speak_the_page_language(app: Flask, editor: FlaskClient) -> None:
    from tests.dashboard.conftest import sign_in
    from tests.helpers import EDITOR_TOKEN

    german = app.test_client()
    german.set_cookie("splitwerk_locale", "de", domain="localhost")
    sign_in(german, EDITOR_TOKEN)
    wrong = {"name": "", "goals-0-kind": "profit", "variants-1-weight": "heavy"}
    status, page = submit(editor, "/dashboard/experiments/new", **wrong)
    assert status == 422
    assert "This field is required." in error_of(page, "name")
    assert "Not a valid choice." in error_of(page, "goals-0-kind")
    assert "Enter a number, such as 1 or 2.5." in error_of(page, "variants-1-weight")
    status, page = submit(german, "/dashboard/experiments/new", **wrong)
    assert status == 422
    assert "Dieses Feld wird benötigt." in error_of(page, "name")  # WTForms' German
    assert "Keine gültige Auswahl." in error_of(page, "goals-0-kind")
    assert "Geben Sie eine Zahl ein" in error_of(page, "variants-1-weight")  # the project's


def test_nan_and_infinity_are_no_numbers(editor: FlaskClient) -> None:
    status, page = submit(
        editor, "/dashboard/experiments/new", coverage="nan", **{"variants-1-weight": "inf"}
    )
    assert status == 422
    assert "Enter a number, such as 1 or 2.5." in error_of(page, "coverage")
    assert "Enter a number, such as 1 or 2.5." in error_of(page, "variants-1-weight")


def test_a_field_refused_by_the_form_is_not_refused_again_by_the_api(
    editor: FlaskClient,
) -> None:
    status, page = submit(editor, "/dashboard/experiments/new", coverage="150")
    assert status == 422
    assert error_of(page, "coverage").strip() == "Enter a percentage from 0 to 100."


def test_the_form_previews_the_traffic_split(editor: FlaskClient) -> None:
    status, page = submit(editor, "/dashboard/experiments/new", key="Bad Key")
    assert status == 422
    preview = page[page.index('id="split-preview"') :]
    preview = re.sub(r"<[^>]+>", " ", preview[: preview.index("</div>")])
    assert re.sub(r"\s+", " ", preview).split("Traffic split")[1].strip() == (
        "control 25.0% banner 75.0%"
    )


def test_money_comes_first_when_the_shop_sends_orders(editor: FlaskClient) -> None:
    values = forms.new_values(sends_orders=True)
    assert (values["goals-0-key"], values["goals-0-kind"], values["goals-0-event"]) == (
        "margin",
        "margin",
        "purchase",
    )
    assert values["goals-primary"] == "0" and values["goals-1-key"] == "purchase"
    assert "goals-0-key" not in forms.new_values(sends_orders=False)
    # the test server has an ingest key, so its new-experiment form starts with the margin
    page = editor.get("/dashboard/experiments/new").get_data(as_text=True)
    assert 'id="goals-0-key" name="goals-0-key" value="margin"' in page


def test_a_goal_becomes_a_guardrail_with_its_harm_and_pausing_is_chosen_in_the_form(
    app: Flask, editor: FlaskClient
) -> None:
    created = created_with(app, editor, **{"goals-1-guardrail": "decrease", "pause_on_harm": "on"})
    store = services_of(app).store
    assert [(g.is_guardrail, g.harm.value) for g in created.goals] == [
        (False, "decrease"),
        (True, "decrease"),
    ]
    assert created.pause_on_harm
    page = editor.get("/dashboard/experiments/banner/edit").get_data(as_text=True)
    assert re.search(r'<option value="decrease" selected>', page)
    assert re.search(r'id="pause_on_harm" name="pause_on_harm" checked', page)
    # switching to "harm when it goes up" and pausing off, through the edit form
    status, _ = submit(
        editor, "/dashboard/experiments/banner/edit", **{"goals-1-guardrail": "increase"}
    )
    assert status == 302
    edited = services.get_experiment(store, "banner")
    assert edited.goals[1].harm.value == "increase" and not edited.pause_on_harm


def test_an_unknown_harm_is_an_error_at_the_goal(editor: FlaskClient) -> None:
    status, page = submit(editor, "/dashboard/experiments/new", **{"goals-1-guardrail": "up"})
    assert status == 422
    assert "Must be one of" in error_of(page, "goals-1-harm")


def test_a_goal_gets_an_attribution_window_in_the_form_and_keeps_it_when_edited(
    app: Flask, editor: FlaskClient
) -> None:
    created = created_with(
        app, editor, **{"goals-1-window_days": "30", "goals-1-return_days": "21"}
    )
    store = services_of(app).store
    assert [(g.window_days, g.return_days) for g in created.goals] == [(None, None), (30, 21)]
    path = "/dashboard/experiments/banner/edit"
    page = editor.get(path).get_data(as_text=True)
    assert re.search(r'id="goals-1-window_days"[^>]* value="30"', page)
    assert re.search(r'id="goals-1-return_days"[^>]* value="21"', page)
    # a draft's window can change; an empty return period falls back to the default
    status, _ = submit(editor, path, **{"goals-1-window_days": "14"})
    assert status == 302
    edited = services.get_experiment(store, "banner").goals[1]
    assert (edited.window_days, edited.return_days, edited.settle_days) == (14, None, 28)


def test_a_running_experiment_shows_its_windows_read_only_and_keeps_them(
    app: Flask, editor: FlaskClient
) -> None:
    created_with(app, editor, **{"goals-1-window_days": "30"})
    store = services_of(app).store
    services.act_on_experiment(store, "banner", "start", "test", 1.0, retention_days=90)
    path = "/dashboard/experiments/banner/edit"
    page = editor.get(path).get_data(as_text=True)
    assert re.search(r'id="goals-1-window_days"[^>]* value="30"[^>]* readonly', page)
    # the form sends the window back unchanged with another change: accepted
    values = forms.values_of(services.get_experiment(store, "banner"))
    values.update({"name": "Renamed", "csrf_token": csrf_token(editor, path)})
    assert editor.post(path, data=values).status_code == 302
    assert services.get_experiment(store, "banner").goals[1].window_days == 30
    # a changed window (the read-only input edited anyway) is refused at its field
    values.update({"goals-1-window_days": "60", "csrf_token": csrf_token(editor, path)})
    response = editor.post(path, data=values)
    assert response.status_code == 409
    said = error_of(response.get_data(as_text=True), "goals-1-window_days")
    assert "fixed once the experiment has started" in said


def test_window_days_out_of_range_or_without_a_window_are_errors_at_their_fields(
    editor: FlaskClient,
) -> None:
    status, page = submit(
        editor,
        "/dashboard/experiments/new",
        **{"goals-0-window_days": "400", "goals-1-return_days": "7", "goals-1-window_days": ""},
    )
    assert status == 422
    assert "Enter whole days from 1 to 180." in error_of(page, "goals-0-window_days")
    assert "give the goal a window first" in error_of(page, "goals-1-return_days")
    status, page = submit(editor, "/dashboard/experiments/new", **{"goals-0-window_days": "2.5"})
    assert status == 422
    assert "Enter whole days from 1 to 180." in error_of(page, "goals-0-window_days")
