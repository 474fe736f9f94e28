"""The experiment page with the demo traffic: goal tables, plain words, charts, segments,
progress, German formatting."""

from __future__ import annotations

import html
import json
import re

from flask.testing import FlaskClient


def page_of(client: FlaskClient, key: str) -> str:
    response = client.get(f"/dashboard/experiments/{key}")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_every_goal_has_a_labelled_table(editor: FlaskClient, demo: str) -> None:
    page = page_of(editor, demo)
    for goal in ("purchase", "revenue", "margin", "add_to_cart"):
        assert f'id="goal-{goal}-caption"' in page
    assert "sequential, always valid" in page  # the demo runs open-ended (server/demo.py)
    assert "Chance to beat control" in page
    assert '<th scope="col"' in page and '<th scope="row"' in page


def test_value_goals_are_said_in_plain_words(editor: FlaskClient, demo: str) -> None:
    page = html.unescape(page_of(editor, demo))
    assert re.search(r"green-note earns about [+−]€\d+\.\d\d margin per visitor", page)
    assert re.search(r"\d+% likely (better|worse)", page)


def test_charts_carry_data_and_a_text_alternative(editor: FlaskClient, demo: str) -> None:
    page = page_of(editor, demo)
    charts = re.findall(r"data-chart='([^']+)'", page)
    assert len(charts) == 5  # visitors, then one per goal
    visitors = json.loads(html.unescape(charts[0]))
    assert visitors["unit"] == "count"
    assert [series["label"] for series in visitors["series"]] == ["control", "green-note"]
    assert len(visitors["labels"]) >= 14
    assert sum(series["values"][-1] for series in visitors["series"]) == 1500
    rate = json.loads(html.unescape(charts[2]))  # the goals in order: margin, purchase, …
    assert rate["unit"] == "percent" and "lower" in rate["series"][0]
    assert 'role="img"' in page
    assert "Chart data as a table" in page


def test_who_responds_marks_small_segments_and_the_adjustment(
    editor: FlaskClient, demo: str
) -> None:
    page = page_of(editor, demo)
    assert "Who responds?" in page
    assert "By source" in page and "By device" in page
    assert "Benjamini–Hochberg" in page
    assert "too small" in page  # youtube and the like have fewer than 100 visitors per variant


def test_progress_and_the_split_check_are_explained(editor: FlaskClient, demo: str) -> None:
    page = page_of(editor, demo)
    # the demo's minimum effect is 20 % (server/demo.py)
    assert "more visitors are needed to detect a change of 20.0% in margin" in page
    assert "sample ratio check passed" in page


def test_german_pages_use_german_words_and_numbers(app, demo: str) -> None:  # type: ignore[no-untyped-def]
    from tests.dashboard.conftest import sign_in
    from tests.helpers import EDITOR_TOKEN

    client = app.test_client()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "de-DE,de;q=0.9,en;q=0.5"
    sign_in(client, EDITOR_TOKEN)
    page = html.unescape(page_of(client, demo))
    assert '<html lang="de-DE">' in page
    assert "Wer reagiert?" in page
    claim = r"green-note bringt etwa [+−]\d+,\d\d\u00a0€ Deckungsbeitrag pro Besucher"
    assert re.search(claim, page)
    assert re.search(r"\d+,\d\d\u00a0%", page)


def test_the_language_switch_sets_a_cookie_and_stays_on_the_page(
    editor: FlaskClient, demo: str
) -> None:
    response = editor.get(f"/dashboard/language/de?next=/dashboard/experiments/{demo}")
    assert response.status_code == 302
    assert response.headers["Location"] == f"/dashboard/experiments/{demo}"
    assert "splitwerk_locale=de" in response.headers["Set-Cookie"]
    assert "Wer reagiert?" in page_of(editor, demo)
    assert editor.get("/dashboard/language/fr").status_code == 404
    off_site = editor.get("/dashboard/language/en?next=https://evil.example/")
    assert off_site.headers["Location"] == "/dashboard/"
