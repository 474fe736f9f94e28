"""The memory of recent remote answers: bounded, least recently used out, reason remembered."""

from splitwerk.evaluation import Assignment
from splitwerk.memory import REMEMBERED, RecentAssignments

GREEN = Assignment("green", {"color": "green"}, True, "running")


def test_answers_are_recalled_with_the_reason_remembered() -> None:
    memory = RecentAssignments(10)
    memory.remember("v-1", {"button": GREEN, "gone": Assignment(None, None, False, "unknown")})
    assert memory.recall("v-1", "button") == Assignment(
        "green", {"color": "green"}, True, REMEMBERED
    )
    assert memory.recall("v-1", "gone") is None
    assert memory.recall("v-2", "button") is None


def test_the_least_recently_used_answer_goes_first() -> None:
    memory = RecentAssignments(2)
    memory.remember("v-1", {"button": GREEN})
    memory.remember("v-2", {"button": GREEN})
    assert memory.recall("v-1", "button") is not None  # v-1 is now the most recent
    memory.remember("v-3", {"button": GREEN})
    assert memory.recall("v-2", "button") is None
    assert memory.recall("v-1", "button") is not None


def test_capacity_zero_remembers_nothing() -> None:
    memory = RecentAssignments(0)
    memory.remember("v-1", {"button": GREEN})
    assert memory.recall("v-1", "button") is None
