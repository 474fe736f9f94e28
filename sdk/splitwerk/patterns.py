"""The ``$regex`` operator's pattern language: a documented subset, checked here, run on RE2.

Why not Python's ``re``: it backtracks, so a pattern such as ``(a+)+$`` takes time exponential
in the subject, and it has no timeout. RE2 (Google's engine, through ``google-re2``) runs in
time linear in the subject whatever the pattern. The subset is ours rather than RE2's whole
syntax so that every implementation (the server, this SDK, one day the browser snippet) can
give the same answers; a pattern outside it is refused when the experiment is saved.

The subset, which covers what URL, referrer and user-agent targeting needs:
  literals; ``.`` (any character but newline); classes ``[abc]``, ``[^a-z0-9_-]``; escapes
  ``\\d \\w \\s`` (ASCII digits, ASCII word characters, ASCII whitespace ``[\\t\\n\\v\\f\\r ]``)
  and ``\\D \\W \\S``, ``\\n \\r \\t \\f \\v``, and a backslash before any punctuation; groups
  ``(...)`` and ``(?:...)``; alternation ``|``; quantifiers ``* + ? {n} {n,} {n,m}``
  (n, m <= 100), lazy forms accepted (same yes/no answer); anchors ``^`` and ``$`` (start and
  end of the whole string). Search semantics: the pattern may match anywhere unless anchored.
  Case-sensitive. Characters are code points; a string that is not valid Unicode (a lone
  surrogate) matches no pattern.
Refused: backreferences, lookaround, ``\\b``, named groups, inline flags, unescaped ``{`` or
``}``, and empty classes (``[]`` means different things in Python and JavaScript).

The checked pattern is rewritten into RE2's syntax (``\\s`` becomes ``[[:space:]]``, groups
become non-capturing), so RE2's wider syntax is never reached by a caller.
"""

import functools
from typing import Any, NoReturn

import re2

MAX_REGEX_LENGTH = 256  # characters of a pattern; enough for any URL or user-agent rule
MAX_REGEX_REPEAT = 100  # largest n in x{n} or x{m,n}: bounds the program a pattern expands to
# RE2 instructions: bounds the work per subject character when RE2 falls back from its DFA to
# its NFA. The largest pattern the old hand-written engine accepted needs about 510.
MAX_REGEX_PROGRAM = 1024
# RE2's memory budget per pattern (bytes) for the program and its DFA cache; beyond it RE2
# falls back to its NFA, still linear. With REGEX_CACHE_SIZE patterns: at most ~128 MB.
REGEX_MEMORY = 1 << 20
REGEX_CACHE_SIZE = 128  # compiled patterns kept across config versions; shops use a handful

_ESCAPED_CHARACTERS = frozenset("nrtfv")  # \n \r \t \f \v: the same in RE2
_CLASS_ESCAPES = {  # the subset's class escapes, as RE2 writes them inside a class
    "d": r"\d",
    "D": r"\D",
    "w": r"\w",
    "W": r"\W",
    "s": "[:space:]",  # RE2's \s lacks \v; the POSIX class is exactly [\t\n\v\f\r ]
    "S": "[:^space:]",
}
_QUANTIFIERS = ("*", "+", "?", "{")


class Pattern:
    """A checked ``$regex`` pattern; ``search`` runs it on RE2 in time linear in the subject."""

    __slots__ = ("_regexp", "source")

    def __init__(self, source: str, regexp: Any) -> None:
        self.source = source
        self._regexp = regexp

    def search(self, subject: str) -> bool:
        """Tell whether the pattern matches somewhere in ``subject``."""
        try:
            return self._regexp.search(subject) is not None
        except UnicodeEncodeError:
            return False  # a lone surrogate: not text, so no pattern matches it


@functools.lru_cache(maxsize=REGEX_CACHE_SIZE)
def compile_pattern(pattern: str) -> Pattern:
    """Check a ``$regex`` pattern against the subset and compile it with RE2 (cached).

    Raises:
        ValueError: the pattern is too long, malformed, or uses an unsupported feature.
    """
    if len(pattern) > MAX_REGEX_LENGTH:
        raise ValueError(f"regex longer than {MAX_REGEX_LENGTH} characters")
    translated = _Translator(pattern).translate()
    options = re2.Options()
    options.max_mem = REGEX_MEMORY
    options.log_errors = False  # a refused pattern is the caller's error, not a log line
    try:
        regexp = re2.compile(translated, options)
    except re2.error:
        raise ValueError("regex too complex once its repeats are expanded") from None
    if regexp.programsize > MAX_REGEX_PROGRAM:
        raise ValueError("regex too complex once its repeats are expanded")
    return Pattern(pattern, regexp)


class _Translator:
    """Recursive descent over the subset, writing RE2 syntax; raises ValueError with a position."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self.position = 0

    def translate(self) -> str:
        text = self._alternation()
        if self.position < len(self.pattern):
            self._fail("unbalanced )")  # _sequence stops only at | or ) and | is consumed
        return text

    def _fail(self, message: str) -> NoReturn:
        raise ValueError(f"regex {message} at position {self.position}")

    def _peek(self) -> str:
        return self.pattern[self.position] if self.position < len(self.pattern) else ""

    def _take(self) -> str:
        character = self._peek()
        self.position += 1
        return character

    def _alternation(self) -> str:
        options = [self._sequence()]
        while self._peek() == "|":
            self.position += 1
            options.append(self._sequence())
        return "|".join(options)

    def _sequence(self) -> str:
        items: list[str] = []
        while self._peek() not in ("", "|", ")"):
            items.append(self._quantified(*self._atom()))
        return "".join(items)

    def _atom(self) -> tuple[str, bool]:
        """Return the atom in RE2 syntax and whether it is an anchor."""
        character = self._take()
        if character == "(":
            if self.pattern.startswith("?:", self.position):
                self.position += 2
            elif self._peek() == "?":
                self._fail("group syntax (?... is not supported")
            inner = self._alternation()
            if self._take() != ")":
                self.position -= 1
                self._fail("missing )")
            return f"(?:{inner})", False
        if character == "[":
            return self._character_class(), False
        if character in ".^$":
            return character, character != "."
        if character == "\\":
            return self._escape(), False
        if character in "*+?":
            self.position -= 1
            self._fail(f"{character} has nothing to repeat")
        if character in "{}":
            self.position -= 1
            self._fail("braces must be escaped as \\{ \\} outside a repeat count")
        return _literal(character), False

    def _quantified(self, atom: str, is_anchor: bool) -> str:
        marker = self._peek()
        if marker not in _QUANTIFIERS:
            return atom
        if is_anchor:
            self._fail("an anchor cannot be repeated")
        self.position += 1
        quantifier = marker if marker != "{" else self._counts()
        if self._peek() == "?":
            self.position += 1  # lazy: the same set of matches, so the same yes/no answer
        if self._peek() in _QUANTIFIERS:
            self._fail("a repeat cannot be repeated; use a group")
        return atom + quantifier

    def _counts(self) -> str:
        closing = self.pattern.find("}", self.position)
        low, comma, high = self.pattern[self.position : max(closing, 0)].partition(",")
        if closing < 0 or not _is_count(low) or not (_is_count(high) or not high):
            self._fail("repeat count must be {n}, {n,} or {n,m}")
        self.position = closing + 1
        minimum = int(low)
        maximum = (int(high) if high else None) if comma else minimum
        if max(minimum, maximum or 0) > MAX_REGEX_REPEAT:
            self._fail(f"repeat counts above {MAX_REGEX_REPEAT} are not supported")
        if maximum is not None and maximum < minimum:
            self._fail("repeat count {n,m} needs n <= m")
        if not comma:
            return f"{{{minimum}}}"
        return f"{{{minimum},{'' if maximum is None else maximum}}}"

    def _escape(self) -> str:
        character = self._take()
        if character == "":
            self.position -= 1
            self._fail("ends with a lone backslash")
        if character in _CLASS_ESCAPES:
            escape = _CLASS_ESCAPES[character]
            return f"[{escape}]" if escape.startswith("[") else escape
        if character in _ESCAPED_CHARACTERS:
            return "\\" + character
        if character.isalnum() or character == "_":
            self.position -= 1
            self._fail(f"\\{character} is not supported")
        return _literal(character)

    def _character_class(self) -> str:
        negated = self._peek() == "^"
        if negated:
            self.position += 1
        members: list[str] = []
        if self._peek() == "]":
            self._fail("empty class; escape a literal ] as \\]")
        while True:
            character = self._take()
            if character == "":
                self._fail("missing ]")
            if character == "]":
                break
            low = self._class_character(character, members)
            if low is None:
                continue
            if self._peek() == "-" and self.pattern[self.position + 1 : self.position + 2] not in (
                "]",
                "",
            ):
                self.position += 1
                high = self._class_character(self._take(), members)
                if high is None:
                    self._fail("a range cannot end in a class escape")
                if high < low:
                    self._fail(f"range {low}-{high} is reversed")
                members.append(f"{_literal(low)}-{_literal(high)}")
            else:
                members.append(_literal(low))
        return f"[{'^' if negated else ''}{''.join(members)}]"

    def _class_character(self, character: str, members: list[str]) -> str | None:
        """Return a class member's literal character, or None after adding an escape."""
        if character != "\\":
            return character
        escaped = self._peek()
        if escaped in _CLASS_ESCAPES:
            self.position += 1
            members.append(_CLASS_ESCAPES[escaped])
            return None
        if escaped in _ESCAPED_CHARACTERS:
            self.position += 1
            return {"n": "\n", "r": "\r", "t": "\t", "f": "\f", "v": "\v"}[escaped]
        if escaped == "" or escaped.isalnum() or escaped == "_":
            self._fail(f"\\{escaped} is not supported in a class")
        self.position += 1
        return escaped


def _literal(character: str) -> str:
    """One character as an RE2 literal, inside or outside a class."""
    # RE2 takes a backslash before any ASCII punctuation as that character; control
    # characters are written as hex escapes so that the pattern text stays unambiguous.
    if character.isascii() and not character.isalnum():
        if character.isprintable() and character != " ":
            return "\\" + character
        return f"\\x{{{ord(character):x}}}"
    return character


def _is_count(text: str) -> bool:
    # str.isdigit alone would accept "²", which int() refuses.
    return text.isascii() and text.isdigit()
