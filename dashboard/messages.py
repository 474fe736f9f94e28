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
from dashboard.forms import NO_GOAL
from dashboard.i18n import N_, Translator
from server.core.models import BASIS_POINTS
from server.schemas import MAX_RETURN_DAYS, MAX_WINDOW_DAYS

ROW_FIELD = re.compile(r"^(variants|goals)-(\d+)-(\w+)$")  # a field of a repeated row
KEY_FIELD = re.compile(r"^(key|variants-\d+-key|goals-\d+-key|goals-\d+-event|layer-name)$")
PERCENT_FIELDS = {  # form fields in percent whose API value has another unit, and their range
    "coverage": N_("Enter a percentage from 0 to 100."),
    "layer-size": N_("Enter a percentage from 0.01 to 100."),
    "minimum_effect": N_("Enter a percentage from 0.1 to 1000."),
}
PLEASE_FILL_IN = N_("Please fill in this field.")
KEY_RULE = N_(
    "Use lowercase letters, digits, - and _ only, starting with a letter or digit "
    "(at most 64 characters)."
)
MISMATCH = ("String does not match expected pattern", "must match")  # the id patterns' messages
LETTERS_ONLY = N_("Use letters, digits, - and _ only.")  # a name that is no key (segments)
# API messages (start of the text) → the plain text shown instead, wherever they occur.
PLAIN = (
    ("String does not match expected pattern", KEY_RULE),
    ("must match", KEY_RULE),
    ("Missing data for required field", PLEASE_FILL_IN),
    ("Field may not be null", PLEASE_FILL_IN),
    ("must be a number", N_("Enter a number, such as 1 or 2.5.")),
    ("Not a valid number", N_("Enter a number, such as 1 or 2.5.")),
    ("must be > 0", N_("Enter a weight greater than 0.")),
    ("must be greater than 0", N_("Enter a weight greater than 0.")),
    ("duplicate key", N_("Another row already uses this key; each needs its own.")),
    ("mark exactly one goal as primary", N_("Mark exactly one goal as primary.")),
    ("segments must be unique", N_("Name each segment only once.")),
    ("must be a JSON object", N_("Enter a JSON object in braces, such as {\"country\": \"DE\"}.")),
    ("not valid JSON", N_("This is not valid JSON, e.g. {\"color\": \"#1b7f3a\"}.")),
    ("already taken", N_("Another experiment already uses this key.")),
    ("too small relative to the others", N_("This weight is too small next to the others to get "
                                         "even 0.01 %% of the traffic.")),
    ("only payloads may change", N_("While the experiment is live only payloads can change; a new "
                                 "phase changes keys and weights.")),
    ("not editable while", N_("This cannot change in the experiment's current status.")),
    ("add a goal and mark it primary", N_("Add a goal and mark it as primary.")),
    (NO_GOAL, NO_GOAL),
    ("must be true", N_("Tick the box to confirm that every count starts again at zero.")),
)  # fmt: skip
# A live experiment's coverage may only grow; the domain says so in basis points.
COVERAGE_FLOOR = re.compile(r"^must be at least (\d+)$")
COVERAGE_FLOOR_TEXT = N_(
    "While the experiment is live, coverage can only grow: at least %(percent)s. "
    "A new phase can lower it."
)
# Layers: the share asked for overlaps another experiment's, or does not fit any more.
LAYER_OVERLAP = re.compile(r"^overlaps (\S+)$")
LAYER_OVERLAP_TEXT = N_(
    "This part of the layer is taken by the experiment %(key)s; experiments in one layer "
    "never share visitors. Choose another layer or end that experiment first."
)
LAYER_FULL = re.compile(r"^no free range of (\d+) slots$")
LAYER_FULL_TEXT = N_(
    "The layer has no free share of %(percent)s left; choose a smaller share or another layer."
)
LAYER_RANGE_TEXT = N_("Give the layer's range with a start below its end, from 0 to 100 %%.")
# Targeting conditions: the core's reasons ("<path>: <reason>"), said for people.
CONDITION = re.compile(r"^(?:(?P<where>\S+): )?(?P<reason>.+)$", re.S)
CONDITION_REASONS = tuple(
    (re.compile(pattern), text)
    for pattern, text in (
        (r"^nested deeper than (?P<levels>\d+) levels$",
         N_("The conditions are nested deeper than %(levels)s levels.")),
        (r"^a condition must be an object$",
         N_('Each condition must be a JSON object, such as {"country": "DE"}.')),
        (r"^attribute names must be non-empty strings$", N_("Attribute names must not be empty.")),
        (r"^unknown operator (?P<operator>\S+);", N_("%(operator)s is not a known operator.")),
        (r"^(?P<operator>\S+) needs a non-empty list of conditions$",
         N_("%(operator)s needs a list of at least one condition.")),
        (r"^attribute paths are names joined by single dots$",
         N_("Join the names of an attribute path with single dots, such as user.country.")),
        (r"^an empty object is ambiguous; use an operator$",
         N_('An empty object says nothing; use an operator, such as {"$exists": true}.')),
        (r"^an object mixes operators and plain keys$",
         N_("An object cannot mix operators and plain keys.")),
        (r"^(?P<operator>\S+) needs a list$", N_("%(operator)s needs a list.")),
        (r"^(?P<operator>\S+) needs a non-empty list$",
         N_("%(operator)s needs a list of at least one value.")),
        (r"^(?P<operator>\S+) needs true or false$", N_("%(operator)s needs true or false.")),
        (r"^(?P<operator>\S+) needs a string$", N_("%(operator)s needs a string.")),
        (r"^(?P<operator>\S+) needs one of (?P<types>.+)$",
         N_("%(operator)s needs one of %(types)s.")),
        (r"^(?P<operator>\S+) needs a number or a string$",
         N_("%(operator)s needs a number or a string.")),
        (r"^(?P<operator>\S+) needs a non-empty object$",
         N_("%(operator)s needs an object with at least one condition.")),
        (r"^(?P<operator>\S+) needs a (count|whole number)",
         N_("%(operator)s needs a whole number of at least 0, or an operator object.")),
        (r"^numbers must be finite$", N_("Numbers must be finite.")),
    )
)  # fmt: skip
CONDITION_OTHER = N_("These conditions cannot be used: %(reason)s")  # e.g. a regex's own error
LENGTH_BY_FIELD = {  # marshmallow's "Length must be between …" by field
    "name": N_("Enter a name of at most 200 characters."),
    "hypothesis": N_("Keep the hypothesis to at most 2,000 characters."),
    "variants": N_("An experiment needs from 2 to 10 variants."),
    "goals": N_("An experiment can have at most 10 goals."),
    "segments": N_("Choose at most 5 segments."),
}
COLUMN_LABELS = {  # the column of a repeated row, as its label reads
    "key": N_("key"),
    "weight": N_("weight"),
    "payload": N_("payload"),
    "kind": N_("measures"),
    "event": N_("event"),
    "window_days": N_("window in days"),
    "return_days": N_("return days"),
}
FIELD_LABELS = {
    "key": N_("Key"),
    "name": N_("Name"),
    "hypothesis": N_("Hypothesis"),
    "variants": N_("Variants"),
    "coverage": N_("Coverage"),
    "conditions": N_("Targeting conditions"),
    "layer": N_("Layer"),
    "layer-name": N_("Layer"),
    "layer-size": N_("Share of the layer"),
    "goals": N_("Goals"),
    "segments": N_("Segments"),
    "analysis": N_("Test"),
    "minimum_effect": N_("Smallest effect worth finding"),
}


# Attribution windows of a goal row (API: whole days, fixed once the experiment started)
WINDOW_TEXTS = {  # column → (out of range, its largest value, the column's rule)
    "window_days": (
        N_("Enter whole days from 1 to %(max)s."),
        MAX_WINDOW_DAYS,
        N_("Attribution windows are fixed once the experiment has started."),
    ),
    "return_days": (
        N_("Enter whole days from 0 to %(max)s."),
        MAX_RETURN_DAYS,
        N_("Return days count after a window: give the goal a window first."),
    ),
}


def _window(field: str, message: str, t: Translator) -> str | None:
    """A refused window of a goal row in the page's words, or None for another field."""
    row = ROW_FIELD.match(field)
    if row is None or row.group(3) not in WINDOW_TEXTS:
        return None
    days, largest, other = WINDOW_TEXTS[row.group(3)]
    if message.startswith(("Must be greater", "Must be less", "Not a valid integer")):
        return t(days, max=largest)
    if message.startswith(("fixed once", "only goals with a window_days")):
        return t(other)
    return None


def plain(field: str, message: str, t: Translator) -> str:
    """One API message for one field in plain words of the page (unknown ones as they are)."""
    window = _window(field, message, t)
    if window is not None:
        return window
    floor = COVERAGE_FLOOR.match(message) if field == "coverage" else None
    if floor is not None:
        return t(COVERAGE_FLOOR_TEXT, percent=_percent_of_points(int(floor.group(1)), t))
    overlap = LAYER_OVERLAP.match(message) if field.startswith("layer") else None
    if overlap is not None:
        return t(LAYER_OVERLAP_TEXT, key=overlap.group(1))
    full = LAYER_FULL.match(message) if field.startswith("layer") else None
    if full is not None:
        return t(LAYER_FULL_TEXT, percent=_percent_of_points(int(full.group(1)), t))
    if field.startswith("layer") and message.startswith("start and end must both be given"):
        return t(LAYER_RANGE_TEXT)
    if field == "conditions" and not message.startswith(("not valid JSON", "must be a JSON")):
        return _condition(message, t)
    known = _plain_english(field, message)
    # a message without a catalogue text stays as it came: it is not a python-format string
    return message if known is None else t(known)


def _condition(message: str, t: Translator) -> str:
    """A refused targeting condition: where in the JSON, and why in the page's words."""
    parts = CONDITION.match(message)
    assert parts is not None  # the pattern matches any non-empty text
    where, reason = parts.group("where"), parts.group("reason")
    for pattern, text in CONDITION_REASONS:
        found = pattern.match(reason)
        if found is not None:
            said = t(text, **found.groupdict())
            break
    else:
        said = t(CONDITION_OTHER, reason=reason)
    return f"{where}: {said}" if where else said


def _percent_of_points(points: int, t: Translator) -> str:
    return formatting.percent(points / BASIS_POINTS, t.locale, 2 if points % 100 else 0)


def _plain_english(field: str, message: str) -> str | None:
    if field in PERCENT_FIELDS and message.startswith(("Must be greater", "Must be less")):
        return PERCENT_FIELDS[field]
    if message.startswith("Length must be") and field in LENGTH_BY_FIELD:
        return LENGTH_BY_FIELD[field]
    if message.startswith("Shorter than minimum length 1") and field == "name":
        return PLEASE_FILL_IN
    for start, plain in PLAIN:
        if message.startswith(start):
            if start in MISMATCH and not KEY_FIELD.match(field):
                return LETTERS_ONLY
            return plain
    return None


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
        column_label = t(COLUMN_LABELS[column]) if column in COLUMN_LABELS else column
        if group == "variants":
            return t("Variant %(number)s: %(column)s", number=int(number) + 1, column=column_label)
        return t("Goal %(number)s: %(column)s", number=int(number) + 1, column=column_label)
    return t(FIELD_LABELS[field]) if field in FIELD_LABELS else field
