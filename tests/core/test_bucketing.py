"""The bucket function against the spec's vectors."""

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from splitwerk.bucketing import bucket as bucket_of

VECTORS_PATH = Path(__file__).resolve().parents[2] / "spec" / "assignment-vectors.json"


def load_vectors() -> dict:
    # A missing file must fail the run, not skip: the vectors are the contract.
    assert VECTORS_PATH.is_file(), f"spec vectors missing at {VECTORS_PATH}"
    return json.loads(VECTORS_PATH.read_text(encoding="utf-8"))


BUCKET_VECTORS = load_vectors()["bucket"]


def test_vectors_cover_non_ascii_text():
    assert len(BUCKET_VECTORS) >= 100
    assert any(not (vector["visitor"] + vector["salt"]).isascii() for vector in BUCKET_VECTORS)


@pytest.mark.parametrize(
    "vector", BUCKET_VECTORS, ids=[f"{v['visitor']!r}+{v['salt']!r}" for v in BUCKET_VECTORS]
)
def test_bucket_matches_spec_vector(vector):
    assert bucket_of(vector["visitor"], vector["salt"]) == vector["bucket"]


@given(st.text(), st.text())
def test_bucket_is_in_range_for_any_text(visitor, salt):
    try:
        bucket = bucket_of(visitor, salt)
    except UnicodeEncodeError:
        # Only text with lone surrogates may fail, and it must fail catchably.
        (visitor + salt).encode("utf-8", "surrogatepass")
        return
    assert 0 <= bucket < 10_000


def test_lone_surrogate_raises_instead_of_crashing_the_process():
    # mmh3 5.3.1 segfaults when handed such a str directly.
    with pytest.raises(UnicodeEncodeError):
        bucket_of("visitor\ud800", "salt")


def test_visitor_and_salt_are_concatenated_without_separator():
    assert bucket_of("ab", "c") == bucket_of("a", "bc")
