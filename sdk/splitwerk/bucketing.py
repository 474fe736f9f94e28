"""The spec's bucket function: a visitor's slot in [0, 10000) for one salt (spec/ASSIGNMENT.md).

The server imports this module too (``server.core``), so there is one bucket function in
Python; the browser snippet is the only other one, bound to this by the spec's vectors.
"""

import mmh3

BUCKETS = 10_000  # basis points: allocations, coverage and layer slots are all in 1/10000
HASH_SEED = 1  # fixed by spec version 1; changing it would re-randomise every visitor
HASH_BITS = 32  # murmur3_x86_32 yields 32 bits; `(h * 10000) >> 32` is floor(h * 10000 / 2^32)

hash32 = mmh3.hash  # bound once: saves an attribute lookup per bucket on the hot path


def bucket(visitor: str, salt: str) -> int:
    """Return ``floor(murmur3_x86_32(utf8(visitor + salt), seed=1) * 10000 / 2^32)``.

    Raises:
        UnicodeEncodeError: the text holds a lone surrogate, which has no UTF-8 form.
    """
    # Bytes, not the str: mmh3 5.3.1 crashes the whole process (segmentation fault) on a str
    # with a lone surrogate such as "\ud800", which a JSON body can carry; the explicit encode
    # raises a catchable error instead, for ~50 ns per call. Positional arguments skip
    # keyword parsing on this per-page-view path.
    return (hash32((visitor + salt).encode(), HASH_SEED, False) * BUCKETS) >> HASH_BITS
