"""Wording shared by every message: did-you-mean suggestions for misspelt names, counted nouns."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = [
    "LIST_AT_MOST",
    "did_you_mean",
    "format_suggestions",
    "format_value",
    "plural",
    "safe_repr",
    "safe_str",
    "short_list",
    "suggest",
]

#: Longest repr a message shows of a value; a config can hold a 400-digit number or a huge list.
REPR_LIMIT = 200


def safe_repr(value: Any, limit: int = REPR_LIMIT) -> str:
    """``repr(value)`` for a message, shortened to ``limit`` characters; never raises.

    A config can hold anything: an object whose ``__repr__`` raises, or an integer too long for
    Python to print (``ValueError`` past 4300 digits). A message about a bad value must not fail in turn.
    """
    try:
        text = repr(value)
    except Exception as e:  # the value's own repr failed: describe it by its type
        if isinstance(value, int):
            text = f"<an integer of about {_digits(value)} digits>"
        else:
            text = f"<{_type_name(value)} object (its repr raised {_type_name(e)})>"
    if not isinstance(text, str):
        text = f"<{_type_name(value)} object>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def safe_str(value: Any, limit: int = REPR_LIMIT) -> str:
    """``str(value)`` for a message, shortened to ``limit`` characters; never raises (then :func:`safe_repr`).

    For names, keys and exception texts; a value whose type matters in the message wants :func:`safe_repr`.
    """
    text = _plain_str(value)
    if text is None:
        return safe_repr(value, limit)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _type_name(value: Any) -> str:
    name = getattr(type(value), "__name__", None)
    return name if isinstance(name, str) else "?"


def _plain_str(value: Any) -> str | None:
    """``str(value)``, or None when that raises or gives no string."""
    if isinstance(value, str):
        return value
    try:
        text = str(value)
    except Exception:
        return None
    return text if isinstance(text, str) else None


def _digits(value: int) -> int:
    return int(value.bit_length() * 0.30103) + 1


def suggest(word: Any, candidates: Iterable[Any], n: int = 3) -> list[str]:
    """Return up to ``n`` candidates close to ``word``, case-insensitive matches first.

    Candidates and ``word`` may be anything (a config's keys need not be strings): each is compared
    as its ``str()``, and one whose ``str()`` fails is skipped (a ``word`` like that gets no suggestions).
    """
    word = _plain_str(word)
    if word is None:
        return []
    pool = sorted({text for text in map(_plain_str, candidates) if text is not None})
    exact_case = [c for c in pool if c.lower() == word.lower() and c != word]
    lowered = {c.lower(): c for c in pool}
    close = difflib.get_close_matches(word.lower(), list(lowered), n=n, cutoff=0.6)
    out = exact_case + [lowered[c] for c in close if lowered[c] not in exact_case and lowered[c] != word]
    return out[:n]


def did_you_mean(word: Any, candidates: Iterable[Any], n: int = 3) -> str:
    """Return `` Did you mean 'x'?`` (with a leading space) or an empty string."""
    return format_suggestions(suggest(word, candidates, n))


def format_suggestions(found: list[str]) -> str:
    """`` Did you mean 'a' or 'b'?`` for suggestions already found; empty when there are none."""
    if not found:
        return ""
    if len(found) == 1:
        return f" Did you mean {found[0]!r}?"
    return " Did you mean " + ", ".join(repr(f) for f in found[:-1]) + f" or {found[-1]!r}?"


def plural(count: int, word: str, many: str | None = None) -> str:
    """``count`` and ``word``, in the plural unless ``count`` is one: ``plural(1, 'group')`` is ``'1 group'``.

    ``many`` is the plural form where adding an ``s`` is wrong; counts get thousands separators.
    """
    return f"{count:,} {word if count == 1 else many or word + 's'}"


def format_value(value: Any) -> str:
    """A short, stable text form for a hyperparameter value (floats as ``%g``)."""
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (list, tuple)):
        return "(" + ", ".join(format_value(v) for v in value) + ")"
    if isinstance(value, int) and not isinstance(value, bool):
        return safe_repr(value)  # past 4300 digits str() raises
    try:
        return str(value)
    except Exception:
        return safe_repr(value)


#: names a message lists before it says how many more there are
LIST_AT_MOST = 8


def short_list(names: Sequence[str]) -> str:
    """Up to eight quoted names, then how many more."""
    shown = ", ".join(repr(n) for n in names[:LIST_AT_MOST])
    more = len(names) - LIST_AT_MOST
    return shown + (f" and {more} more" if more > 0 else "")
