"""Wording shared by every message: did-you-mean suggestions for misspelt names, counted nouns."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

__all__ = ["did_you_mean", "format_suggestions", "format_value", "plural", "suggest"]


def suggest(word: str, candidates: Iterable[str], n: int = 3) -> list[str]:
    """Return up to ``n`` candidates close to ``word``, case-insensitive matches first."""
    pool = sorted({str(c) for c in candidates})
    exact_case = [c for c in pool if c.lower() == word.lower() and c != word]
    lowered = {c.lower(): c for c in pool}
    close = difflib.get_close_matches(word.lower(), list(lowered), n=n, cutoff=0.6)
    out = exact_case + [lowered[c] for c in close if lowered[c] not in exact_case and lowered[c] != word]
    return out[:n]


def did_you_mean(word: str, candidates: Iterable[str], n: int = 3) -> str:
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
    return str(value)
