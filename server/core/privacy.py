"""Pseudonymous visitor ids: a keyed hash that stores can keep without holding the real id."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac

# 12 bytes = 96 bits. By the birthday bound, n ids collide with probability about n² / 2^97:
# for a billion visitors (far beyond one shop's experiment) that is 6e-12, so merging two
# visitors' counts is not a practical risk, while the id stays 16 characters in Redis keys
# instead of 43 for the full digest.
PSEUDONYM_BYTES = 12
REMEMBERED = 8192  # pseudonyms of recent visitors each Pseudonymiser keeps (Pseudonymiser)


class Pseudonymiser:
    """Turn visitor ids into pseudonyms with one secret, keying the HMAC only once."""

    def __init__(self, secret: bytes) -> None:
        """Prepare the keyed HMAC-SHA256 state; an empty secret is refused."""
        if not secret:
            # Without a key this would be a plain hash, which guessable ids (emails, order
            # numbers) turn back into the original by trying candidates.
            raise ValueError("the pseudonymisation secret must not be empty")
        self._keyed = hmac.new(secret, digestmod=hashlib.sha256)
        # The recent visitors' pseudonyms, kept in this process's memory only: a visitor's
        # assigns and events come in runs (a page view, its events, the next page), and the
        # HMAC with its base64 costs about as much as the rest of counting a conversion. At
        # most REMEMBERED entries (some 300 bytes each with an id of 128 characters).
        self.pseudonymise = functools.lru_cache(maxsize=REMEMBERED)(self._pseudonymise)

    def _pseudonymise(self, visitor: str) -> str:
        """Return the 16-character base64url pseudonym of ``visitor`` (``pseudonymise``, which
        remembers the recent ones).

        Raises:
            UnicodeEncodeError: ``visitor`` holds a lone surrogate, which has no UTF-8 form.
        """
        # Copying the keyed state skips hashing the padded key twice per call.
        digest = self._keyed.copy()
        digest.update(visitor.encode())
        return base64.urlsafe_b64encode(digest.digest()[:PSEUDONYM_BYTES]).decode("ascii")


def pseudonymise(visitor: str, secret: bytes) -> str:
    """Return the keyed pseudonym of ``visitor``: HMAC-SHA256, 12 bytes, base64url, 16 chars."""
    return Pseudonymiser(secret).pseudonymise(visitor)
