"""Webhook signatures: a receiver accepts the real one and rejects tampering and replays."""

from __future__ import annotations

import hashlib
import hmac
import time
from pathlib import Path
from typing import Any

from server.core.signing import REPLAY_TOLERANCE, signature_header, verify

SECRET = "webhook-secret-for-tests-0123456789abcdef"
BODY = b'{"type":"guardrail_harm"}'
NOW = 1_800_000_000


def test_the_header_is_hmac_sha256_over_timestamp_dot_body() -> None:
    expected = hmac.new(SECRET.encode(), b"1800000000." + BODY, hashlib.sha256).hexdigest()
    assert signature_header(SECRET, NOW, BODY) == f"t=1800000000,v1={expected}"


def test_a_fresh_signature_verifies() -> None:
    assert verify(SECRET, signature_header(SECRET, NOW, BODY), BODY, NOW + 10)


def test_a_changed_body_or_another_secret_is_rejected() -> None:
    header = signature_header(SECRET, NOW, BODY)
    assert not verify(SECRET, header, BODY + b" ", NOW)
    assert not verify("another-secret-0123456789abcdef0123", header, BODY, NOW)


def test_a_replayed_request_is_rejected_after_the_tolerance() -> None:
    header = signature_header(SECRET, NOW, BODY)
    assert verify(SECRET, header, BODY, NOW + REPLAY_TOLERANCE)
    assert not verify(SECRET, header, BODY, NOW + REPLAY_TOLERANCE + 1)


def test_a_changed_timestamp_breaks_the_signature() -> None:
    header = signature_header(SECRET, NOW, BODY).replace("t=1800000000", "t=1800000100")
    assert not verify(SECRET, header, BODY, NOW + 100)


def test_malformed_headers_are_rejected() -> None:
    for header in ("", "t=abc,v1=00", "v1=00", "t=1800000000", "garbage"):
        assert not verify(SECRET, header, BODY, NOW)


def test_the_readme_receiver_example_verifies_our_signatures() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("### Guardrails and webhooks", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, Any] = {}
    exec(code, namespace)  # the README's own example, as a receiver would paste it
    example = namespace["verify"]
    now = int(time.time())
    header = signature_header(SECRET, now, BODY)
    assert example(SECRET, header, BODY)
    assert not example(SECRET, header, BODY + b"x")
    assert not example(SECRET, signature_header(SECRET, now - REPLAY_TOLERANCE - 5, BODY), BODY)
