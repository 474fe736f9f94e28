"""Strict JSON: parsing with a bounded nesting depth and without NaN or Infinity, in and out.

Python's ``json`` module recurses once per nesting level, so a body of a few thousand ``[``
exhausts the interpreter's stack (a RecursionError, i.e. a 500) before any schema sees it; the
depth is therefore counted on the raw text first, without recursion. Python also reads and
writes ``NaN``, ``Infinity`` and ``-Infinity`` (and turns ``1e999`` into infinity), which are
not JSON: ``JSON.parse`` in a browser refuses a whole document that contains one. Both ways
refuse them here.
"""

from __future__ import annotations

import json
import math
from typing import Any

# Nesting levels of arrays and objects together. Bodies of this API need at most about ten
# (targeting conditions are the deepest); 64 leaves room for nested payloads and stays far below
# the recursion limit of the parser and of everything that walks the parsed value afterwards.
MAX_DEPTH = 64

_NOT_BRACKETS = bytes(byte for byte in range(256) if byte not in b"[]{}")


class JsonRefused(ValueError):
    """The text is not JSON this server accepts; the message says why, for the client."""


def is_too_deep(text: bytes) -> bool:
    """Whether arrays and objects in a JSON text nest deeper than MAX_DEPTH, without recursion."""
    if text.count(b"[") + text.count(b"{") <= MAX_DEPTH:
        return False  # the common case, decided in C: fewer brackets than levels allowed
    # Escapes pair up from the left, so dropping every escaped backslash and then every escaped
    # quote leaves only the quotes that open and close strings; splitting there puts the text
    # outside strings at the even places. All of it runs in C (a regular expression that skipped
    # strings took longer than parsing the JSON).
    unescaped = text.replace(b"\\\\", b"").replace(b'\\"', b"")
    outside = b"".join(unescaped.split(b'"')[::2])
    brackets = outside.translate(None, _NOT_BRACKETS)
    depth = 0
    for byte in brackets:
        depth += 1 if byte in b"[{" else -1
        if depth > MAX_DEPTH:
            return True
    return False


def _refuse_constant(name: str) -> Any:
    raise JsonRefused(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JsonRefused(f"the number {text[:20]} is too large for a float")
    return value


def loads(text: bytes | str) -> Any:
    """Parse a JSON document the way every request body of the API is parsed.

    Raises:
        JsonRefused: nested deeper than MAX_DEPTH, or NaN, Infinity or a number beyond a float.
        ValueError: not JSON at all (json.JSONDecodeError), or not UTF-8 (UnicodeDecodeError).
    """
    raw = text.encode() if isinstance(text, str) else text
    if is_too_deep(raw):
        raise JsonRefused(f"nested deeper than {MAX_DEPTH} levels")
    return json.loads(raw, parse_constant=_refuse_constant, parse_float=_finite_float)


def dumps(value: Any, **options: Any) -> str:
    """Serialise compactly; a NaN or an infinity raises ValueError instead of being written."""
    options.setdefault("separators", (",", ":"))
    return json.dumps(value, allow_nan=False, **options)


def without_nonfinite(value: Any) -> Any:
    """A copy of a JSON-ready value with every NaN or infinite float replaced by None.

    For computed outputs (statistics) where "no number" is the honest answer; input is refused
    instead, never repaired.
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: without_nonfinite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [without_nonfinite(item) for item in value]
    return value
