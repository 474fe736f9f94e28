"""The decision card: what to do now, in money, on the experiment page and in the list."""

from __future__ import annotations

import html
import re

import pytest
from flask.testing import FlaskClient

from dashboard.decision_card import decision_card
from dashboard.i18n import Translator
from server.context import services_of
from server.core.decision import Decision, Verdict
from server.core.models import GoalKind, Status
from server.core.stats import Interval
from tests.dashboard.conftest import sign_in
from tests.helpers import EDITOR_TOKEN


def text_of(client: FlaskClient, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", response.get_data(True))))


def test_the_experiment_page_opens_with_the_decision_in_euros(
    editor: FlaskClient, demo: str
) -> None:
    raw = editor.get(f"/dashboard/experiments/{demo}").get_data(as_text=True)
    # the card comes before the actions and every goal table
    assert raw.index('class="decision') < raw.index('class="actions-bar"')
    assert raw.index('class="decision') < raw.index('id="goal-margin-caption"')
    page = text_of(editor, f"/dashboard/experiments/{demo}")
    card = page[page.index("What to do now") :]
    # 1,500 demo visitors: the margin gap would take years to confirm, so waiting does not pay
    assert "Stop: no effect worth waiting for is left" in card
    assert re.search(
        r"Extra margin per 1,000 visitors with green-note −€[\d,]+\.\d\d "
        r"\(95 % interval −€[\d,]+\.\d\d to [+−]€[\d,]+\.\d\d\)",
        card,
    )
    assert re.search(r"Per month at the current traffic −€[\d,]+\.\d\d", card)
    assert re.search(r"Chance that green-note is better \d+%", card)
    assert re.search(
        r"Expected loss per 1,000 visitors if green-note is shipped now €[\d,]+\.\d\d", card
    )
    # the conversion rate stays visible beside the money, as the secondary figure
    assert re.search(
        r"Conversion rate \(purchase\) \d+\.\d\d% control, \d+\.\d\d% green-note", card
    )


def test_the_list_shows_the_decision_compactly(editor: FlaskClient, demo: str) -> None:
    page = text_of(editor, "/dashboard/")
    assert re.search(
        r"Stop: no effect worth waiting for is left "
        r"−€[\d,]+\.\d\d per 1,000 visitors · chance \d+%",
        page,
    )


def test_the_decision_speaks_german(app, demo: str) -> None:  # type: ignore[no-untyped-def]
    client = app.test_client()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "de"
    sign_in(client, EDITOR_TOKEN)
    page = text_of(client, f"/dashboard/experiments/{demo}")
    assert "Was jetzt zu tun ist" in page
    assert "Beenden: kein Effekt mehr zu erwarten, der das Warten lohnt" in page
    assert re.search(r"Mehr Deckungsbeitrag je 1\.000 Besucher mit green-note −[\d.]+,\d\d €", page)
    listing = text_of(client, "/dashboard/")
    assert re.search(r"−[\d.]+,\d\d € je 1\.000 Besucher · Chance \d+ %", listing)


def test_a_started_experiment_without_visitors_says_no_data_yet(
    editor: FlaskClient,
    app,
    redis_client,  # type: ignore[no-untyped-def]
) -> None:
    import time

    from server.services import experiments as services

    store = services_of(app).store
    data = {
        "key": "empty-one",
        "name": "Nobody yet",
        "variants": [{"key": "control", "weight": 1.0}, {"key": "b", "weight": 1.0}],
        "goals": [{"key": "purchase", "primary": True}],
    }
    from server import schemas

    services.create_experiment(store, schemas.ExperimentCreateSchema().load(data), "t", time.time())
    services.act_on_experiment(store, "empty-one", "start", "t", time.time(), retention_days=90)
    page = text_of(editor, "/dashboard/experiments/empty-one")
    assert "Keep running: no data yet" in page
    assert "sample ratio check passed" not in page
    listing = text_of(editor, "/dashboard/")
    assert "No data yet" in listing and " OK " not in listing


def a_decision(verdict: Verdict, **fields: object) -> Decision:
    values: dict[str, object] = {
        "verdict": verdict,
        "goal": "margin",
        "is_money": True,
        "variant": None,
        "challenger": "green",
        "per_thousand": 420.0,
        "per_thousand_interval": Interval(100.0, 740.0),
        "per_month": 12_600.0,
        "per_month_interval": Interval(3_000.0, 22_200.0),
        "chance_to_be_better": 0.993,
        "expected_loss_per_thousand": 0.5,
        "days_left": None,
        "daily_visitors": 1000.0,
    }
    values.update(fields)
    return Decision(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("decision", "english", "german"),
    [
        (a_decision(Verdict.SHIP, variant="green"), "Ship green", "green übernehmen"),
        (
            a_decision(Verdict.SHIP, variant="control", per_thousand=-420.0),
            "Keep control",
            "control beibehalten",
        ),
        (
            a_decision(Verdict.KEEP_RUNNING, days_left=12),
            "Keep running for about 12 days",
            "Noch etwa 12 Tage laufen lassen",
        ),
        (
            a_decision(Verdict.KEEP_RUNNING, days_left=1),
            "Keep running for about 1 day",
            "Noch etwa 1 Tag laufen lassen",
        ),
        (
            a_decision(Verdict.KEEP_RUNNING, challenger=None, per_thousand=None),
            "Keep running: no data yet",
            "Weiterlaufen lassen: noch keine Daten",
        ),
        (
            a_decision(Verdict.STOP),
            "Stop: no effect worth waiting for is left",
            "Beenden: kein Effekt mehr zu erwarten, der das Warten lohnt",
        ),
        (
            a_decision(Verdict.INVESTIGATE),
            "Investigate the sample ratio alarm",
            "Den Alarm zur Besucherverteilung untersuchen",
        ),
    ],
)
def test_each_verdict_reads_as_an_instruction_in_both_languages(
    decision: Decision, english: str, german: str
) -> None:
    assert decision_card(decision, GoalKind.MARGIN, None, Translator.of("en"), "EUR").headline == (
        english
    )
    assert decision_card(decision, GoalKind.MARGIN, None, Translator.of("de"), "EUR").headline == (
        german
    )


def test_the_card_states_money_per_thousand_and_month_with_intervals() -> None:
    card = decision_card(
        a_decision(Verdict.SHIP, variant="green"), GoalKind.MARGIN, None, Translator.of("en"), "EUR"
    )
    facts = {fact.label: fact.value for fact in card.facts}
    assert facts["Extra margin per 1,000 visitors with green"] == (
        "+€420.00 (95 % interval +€100.00 to +€740.00)"
    )
    assert facts["Per month at the current traffic"] == (
        "+€12,600.00 (95 % interval +€3,000.00 to +€22,200.00)"
    )
    assert facts["Chance that green is better"] == "99%"
    assert facts["Expected loss per 1,000 visitors if green is shipped now"] == "€0.50"
    assert card.brief == "+€420.00 per 1,000 visitors · chance 99%"
    assert card.tone == "ship"


def test_a_stopped_experiment_is_not_told_to_keep_running() -> None:
    decision = a_decision(Verdict.KEEP_RUNNING, days_left=12)
    card = decision_card(
        decision, GoalKind.MARGIN, None, Translator.of("en"), "EUR", Status.STOPPED
    )
    assert card.headline == "Not conclusive"
    assert "stopped before the difference on margin became conclusive" in card.reason
