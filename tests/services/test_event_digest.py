"""The content digest of an event is part of what Redis stores (the low bits of each
idempotency score): a retry must give the same digest whichever version of the server sent
the first try, so its definition may not change with the way it is computed."""

from __future__ import annotations

import itertools
import zlib
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from server.services import events


def _defined(event: dict[str, Any]) -> int:
    """The digest as defined (events._digest's docstring): CRC-32 of the repr of the list of
    every field's value but id and ts, by field name, keeping 24 bits."""
    values = [event[name] for name in sorted(event) if name not in ("id", "ts")]
    return zlib.crc32(repr(values).encode()) & ((1 << 24) - 1)


_VALUES = st.none() | st.integers() | st.text(max_size=12) | st.floats(allow_nan=False)
_EVENTS = st.dictionaries(
    st.sampled_from(["type", "id", "visitor", "goal", "ts", "value", "order_id", "revenue", "tax"]),
    _VALUES,
    min_size=1,
)


@given(_EVENTS, st.randoms(use_true_random=False))
def test_the_digest_is_the_defined_checksum_whatever_the_order_of_the_fields(
    event: dict[str, Any], random: Any
) -> None:
    reordered = list(event.items())
    random.shuffle(reordered)
    assert events._digest(event) == _defined(event)
    assert events._digest(dict(reordered)) == _defined(event)


def test_many_field_orders_are_served_beyond_the_remembered_ones() -> None:
    names = ["type", "visitor", "goal", "value", "ts", "id", "a", "b"]
    orders = itertools.islice(itertools.permutations(names, 4), events.CONTENT_SHAPES * 2)
    for order in orders:  # more shapes than are kept
        shaped = {name: f"x-{name}" for name in order}
        assert events._digest(shaped) == _defined(shaped)
    assert len(events._CONTENT_NAMES) == events.CONTENT_SHAPES
