"""Pseudonymous visitor ids: keyed, stable, short, and URL-safe."""

import base64
import hashlib
import hmac
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.core.privacy import PSEUDONYM_BYTES, REMEMBERED, Pseudonymiser, pseudonymise

SECRET = b"0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize("visitor", ["visitor-1", "grüße-中-😀"])
def test_pseudonym_is_truncated_hmac_sha256_of_utf8_in_base64url(visitor):
    digest = hmac.new(SECRET, visitor.encode("utf-8"), hashlib.sha256).digest()
    expected = base64.urlsafe_b64encode(digest[:PSEUDONYM_BYTES]).decode().rstrip("=")
    assert pseudonymise(visitor, SECRET) == expected


@given(st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=128))
def test_pseudonym_has_16_url_safe_characters(visitor):
    pseudonym = pseudonymise(visitor, SECRET)
    assert re.fullmatch(r"[A-Za-z0-9_-]{16}", pseudonym)


def test_pseudonym_is_stable_and_the_prepared_form_agrees():
    prepared = Pseudonymiser(SECRET)
    assert prepared.pseudonymise("v") == prepared.pseudonymise("v") == pseudonymise("v", SECRET)


def test_pseudonym_depends_on_the_secret_and_the_visitor():
    assert pseudonymise("v", SECRET) != pseudonymise("v", SECRET + b"x")
    assert pseudonymise("v", SECRET) != pseudonymise("w", SECRET)


def test_distinct_visitors_get_distinct_pseudonyms():
    pseudonyms = {pseudonymise(f"visitor-{index}", SECRET) for index in range(20_000)}
    assert len(pseudonyms) == 20_000


def test_empty_secret_is_refused():
    with pytest.raises(ValueError, match="must not be empty"):
        Pseudonymiser(b"")


def test_lone_surrogate_raises_a_value_error():
    with pytest.raises(UnicodeEncodeError):
        pseudonymise("\ud800", SECRET)


def test_remembered_pseudonyms_are_the_computed_ones_and_their_number_is_bounded():
    prepared = Pseudonymiser(SECRET)
    visitors = [f"visitor-{index}" for index in range(REMEMBERED + 100)]
    for visitor in visitors + visitors[:50]:
        assert prepared.pseudonymise(visitor) == pseudonymise(visitor, SECRET)
    info = prepared.pseudonymise.cache_info()
    assert info.currsize == REMEMBERED
    assert info.hits == 0  # the first 50 had been pushed out by the 100 after the limit
    assert prepared.pseudonymise(visitors[-1]) == pseudonymise(visitors[-1], SECRET)
    assert prepared.pseudonymise.cache_info().hits == 1


def test_a_refused_visitor_id_is_refused_every_time():
    prepared = Pseudonymiser(SECRET)
    for _ in range(2):
        with pytest.raises(UnicodeEncodeError):
            prepared.pseudonymise("\ud800")
