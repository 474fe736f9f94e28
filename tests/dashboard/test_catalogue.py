"""Every text the dashboard shows has a German translation with the same placeholders."""

from __future__ import annotations

import ast
import re
import string
from pathlib import Path

from dashboard import decision_card, messages, presenters, views
from dashboard.catalogue import ENGLISH, GERMAN

DASHBOARD = Path(__file__).resolve().parents[2] / "dashboard"
TEMPLATE_TEXT = re.compile(r"""\bt\(\s*(?:"([^"]*)"|'([^']*)')""")
KEYED_PREFIXES = ("action:", "confirm:", "explain:", "yes:")


def texts_in_code() -> set[str]:
    found: set[str] = set()
    for path in DASHBOARD.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            function = node.func
            called = function.func if isinstance(function, ast.Call) else function
            first = node.args[0]
            is_lookup = isinstance(called, ast.Name) and called.id in {"t", "_t"}
            if is_lookup and isinstance(first, ast.Constant) and isinstance(first.value, str):
                found.add(first.value)
    return found


def texts_in_templates() -> set[str]:
    found = set()
    for path in (DASHBOARD / "templates").rglob("*.html"):
        for match in TEMPLATE_TEXT.finditer(path.read_text()):
            text = match.group(1) if match.group(1) is not None else match.group(2)
            if text not in KEYED_PREFIXES:
                found.add(text)
    return found


def texts_in_tables() -> set[str]:
    return {
        *presenters.STATUS_LABELS.values(),
        *presenters.KIND_LABELS.values(),
        *decision_card.LABELS.values(),
        *(plain for _, plain in messages.PLAIN),
        *messages.PERCENT_FIELDS.values(),
        *messages.LENGTH_BY_FIELD.values(),
        *messages.COLUMN_LABELS.values(),
        *messages.FIELD_LABELS.values(),
        *presenters.ACTION_LABELS.values(),
        *views.ACTION_DONE.values(),
        views.DOMAIN_REFUSED,
        *(f"{prefix}{action}" for prefix in KEYED_PREFIXES for action in views.ACTIONS),
    }


def test_every_text_has_a_german_translation() -> None:
    missing = (texts_in_code() | texts_in_templates() | texts_in_tables()) - set(GERMAN)
    assert not missing, sorted(missing)


def test_keyed_texts_have_english_wording() -> None:
    keyed = {f"{prefix}{action}" for prefix in KEYED_PREFIXES for action in views.ACTIONS}
    assert keyed <= set(ENGLISH)


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_translations_keep_the_placeholders() -> None:
    for source, german in GERMAN.items():
        english = ENGLISH.get(source, source)
        assert placeholders(german) == placeholders(english), source
