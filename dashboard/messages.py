"""Form errors in plain words: the API's validation messages and field ids, said for people.

The form applies the API's own validation (``dashboard.forms``), whose messages are written for
developers ("must match ^[a-z0-9]…$", "less than or equal to 10000" for a field the form shows
in percent). ``humanise`` rewrites the ones a shop owner can meet into catalogue texts, by the
field they belong to, and translates every message; ``field_label`` names a field id
(``variants-1-key``) the way its label on the form does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from dashboard import formatting
from dashboard.i18n import Translator
from server.core.models import BASIS_POINTS

ROW_FIELD = re.compile(r"^(variants|goals)-(\d+)-(\w+)$")  # a field of a repeated row
KEY_FIELD = re.compile(r"^(key|variants-\d+-key|goals-\d+-key|goals-\d+-event|layer-name)$")
PERCENT_FIELDS = {  # form fields in percent whose API value has another unit, and their range
    "coverage": "Enter a percentage from 0 to 100.",
    "layer-size": "Enter a percentage from 0.01 to 100.",
    "minimum_effect": "Enter a percentage from 0.1 to 1000.",
}
# API messages (start of the text) → the plain text shown instead, wherever they occur.
PLAIN = (
    ("must match", "Use lowercase letters, digits, - and _ only, starting with a letter or digit "
                   "(at most 64 characters)."),
    ("Missing data for required field", "Please fill in this field."),
    ("Field may not be null", "Please fill in this field."),
    ("must be a number", "Enter a number, such as 1 or 2.5."),
    ("Not a valid number", "Enter a number, such as 1 or 2.5."),
    ("must be > 0", "Enter a weight greater than 0."),
    ("must be greater than 0", "Enter a weight greater than 0."),
    ("duplicate key", "Another row already uses this key; each needs its own."),
    ("mark exactly one goal as primary", "Mark exactly one goal as primary."),
    ("segments must be unique", "Name each segment only once."),
    ("must be a JSON object", "Enter a JSON object in braces, such as {\"country\": \"DE\"}."),
    ("not valid JSON", "This is not valid JSON, e.g. {\"color\": \"#1b7f3a\"}."),
    ("already taken", "Another experiment already uses this key."),
    ("too small relative to the others", "This weight is too small next to the others to get "
                                         "even 0.01 % of the traffic."),
    ("only payloads may change", "While the experiment is live only payloads can change; a new "
                                 "phase changes keys and weights."),
    ("not editable while", "This cannot change in the experiment's current status."),
    ("add a goal and mark it primary", "Add a goal and mark it as primary."),
    ("must be true", "Tick the box to confirm that every count starts again at zero."),
)  # fmt: skip
# A live experiment's coverage may only grow; the domain says so in basis points.
COVERAGE_FLOOR = re.compile(r"^must be at least (\d+)$")
LENGTH_BY_FIELD = {  # marshmallow's "Length must be between …" by field
    "name": "Enter a name of at most 200 characters.",
    "hypothesis": "Keep the hypothesis to at most 2,000 characters.",
    "variants": "An experiment needs from 2 to 10 variants.",
    "goals": "An experiment can have at most 10 goals.",
    "segments": "Choose at most 5 segments.",
}
COLUMN_LABELS = {  # the column of a repeated row, as its label reads
    "key": "key",
    "weight": "weight",
    "payload": "payload",
    "kind": "measures",
    "event": "event",
}
FIELD_LABELS = {
    "key": "Key",
    "name": "Name",
    "hypothesis": "Hypothesis",
    "variants": "Variants",
    "coverage": "Coverage",
    "conditions": "Targeting conditions",
    "layer": "Layer",
    "layer-name": "Layer",
    "layer-size": "Share of the layer",
    "goals": "Goals",
    "segments": "Segments",
    "analysis": "Test",
    "minimum_effect": "Smallest effect worth finding",
}


def plain(field: str, message: str, t: Translator) -> str:
    """One API message for one field in plain words of the page (unknown ones as they are)."""
    floor = COVERAGE_FLOOR.match(message) if field == "coverage" else None
    if floor is not None:
        points = int(floor.group(1))
        return t(
            "While the experiment is live, coverage can only grow: at least {percent}. "
            "A new phase can lower it.",
            percent=formatting.percent(points / BASIS_POINTS, t.locale, 2 if points % 100 else 0),
        )
    return t(_plain_english(field, message))


def _plain_english(field: str, message: str) -> str:
    if field in PERCENT_FIELDS and message.startswith(("Must be greater", "Must be less")):
        return PERCENT_FIELDS[field]
    if message.startswith("Length must be") and field in LENGTH_BY_FIELD:
        return LENGTH_BY_FIELD[field]
    if message.startswith("Shorter than minimum length 1") and field == "name":
        return "Please fill in this field."
    for start, plain in PLAIN:
        if message.startswith(start):
            if start == "must match" and not KEY_FIELD.match(field):
                return "Use letters, digits, - and _ only."
            return plain
    return message


def humanise(errors: Mapping[str, list[str]], t: Translator) -> dict[str, list[str]]:
    """Every message in plain words of the page's language, by form field id."""
    return {
        field: list(dict.fromkeys(plain(field, message, t) for message in messages))
        for field, messages in errors.items()
    }


def field_label(field: str, t: Translator) -> str:
    """A field id as the form labels it: ``variants-1-key`` → "Variant 2: key"."""
    row = ROW_FIELD.match(field)
    if row is not None:
        group, number, column = row.groups()
        column_label = t(COLUMN_LABELS.get(column, column))
        if group == "variants":
            return t("Variant {number}: {column}", number=int(number) + 1, column=column_label)
        return t("Goal {number}: {column}", number=int(number) + 1, column=column_label)
    return t(FIELD_LABELS.get(field, field))
