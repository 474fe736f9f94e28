"""One vocabulary of reasons: the SDK's enum, the server's, and the documented table agree."""

import re
from pathlib import Path

from splitwerk.evaluation import UNKNOWN, parse_experiment
from splitwerk.reasons import Reason

DOC = Path(__file__).resolve().parents[2] / "docs" / "targeting.md"


def test_documented_reasons_are_exactly_the_enum():
    text = DOC.read_text(encoding="utf-8").split("## Reasons", 1)[1]
    documented = re.findall(r"^\| `([a-z_]+)` \|", text, flags=re.MULTILINE)
    assert documented == [reason.value for reason in Reason]


def test_the_server_uses_the_sdks_reasons():
    from server.core.assignment import Reason as ServerReason

    assert ServerReason is Reason


def test_local_answers_carry_reason_members():
    experiment = parse_experiment(
        {
            "key": "e",
            "status": "running",
            "coverage": 5000,
            "variants": [{"key": "control", "allocation": 5000}, {"key": "b", "allocation": 5000}],
            "conditions": {"country": "DE"},
        }
    )
    assert experiment is not None
    reasons = {
        experiment.evaluate(f"visitor-{n}", {"country": "DE"}).reason for n in range(200)
    } | {
        experiment.evaluate("v", {"country": "FR"}).reason,
        experiment.evaluate("v", {"country": "DE"}, is_bot=True).reason,
        experiment.evaluate("v", {"country": "DE"}, forced="b").reason,
        UNKNOWN.reason,
    }
    assert reasons == {
        Reason.RUNNING,
        Reason.OUTSIDE_COVERAGE,
        Reason.NOT_TARGETED,
        Reason.BOT,
        Reason.FORCED,
        Reason.UNKNOWN_EXPERIMENT,
    }
    assert all(type(reason) is Reason for reason in reasons)
