"""The spec's bucket function: a visitor's slot in [0, 10000) for one salt (spec/ASSIGNMENT.md)."""

from __future__ import annotations

import mmh3

from server.core.models import BASIS_POINTS

BUCKET_SEED = 1  # fixed by spec version 1; changing it re-randomises every experiment
BUCKET_SHIFT = 32  # murmur3_x86_32 yields 32 bits; `(h * 10000) >> 32` is floor(h * 10000 / 2^32)


def bucket_of(visitor: str, salt: str) -> int:
    """Return ``floor(murmur3_x86_32(utf8(visitor + salt), seed=1) * 10000 / 2^32)``.

    Raises:
        UnicodeEncodeError: the text holds a lone surrogate, which has no UTF-8 form.
    """
    # Encode here rather than hand mmh3 the str: mmh3 5.3.1 crashes the whole process
    # (segmentation fault) on a str with a lone surrogate such as "\ud800", which a JSON body
    # can carry; the explicit encode raises a catchable error instead, for ~50 ns per call.
    # Positional arguments skip keyword parsing on this per-page-view path.
    data = (visitor + salt).encode()
    return (mmh3.hash(data, BUCKET_SEED, False) * BASIS_POINTS) >> BUCKET_SHIFT
