"""One set of value checks for every entry point: each returns the ``Problem``s of one value, at its path.

Optimizer arguments, ``paramwise_cfg``, schedules, the wrapper, clipping, layer decay, width scaling
and state loading all ask the same questions of a config value (a finite real number within bounds,
a whole number, a bool, one of some names, a mapping with known keys); they ask them here, so the
answers and the messages agree. A check never raises: it returns what is wrong, each ``Problem``
carrying the config path, and an empty list when the value is fine. ``None`` passes only where the
caller says it is optional.

What "a finite real number" means: an ``int`` or ``float`` (never a ``bool``), not nan or +-inf, and
convertible to a float (``10**400`` is not: it overflows the arithmetic that would use it). A number
written in quotes (``'1e-3'``) is reported with the fix: write it without quotes.

Imports: only :mod:`paramwise.errors` and :mod:`paramwise.suggestions`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeGuard

from paramwise.errors import Problem
from paramwise.suggestions import did_you_mean, safe_repr, safe_str

__all__ = [
    "Path",
    "boolean",
    "describe_bounds",
    "integer",
    "is_finite_real",
    "is_int",
    "known_keys",
    "not_a_number",
    "one_of",
    "real",
    "real_value",
    "reals",
]

#: where a value sits in a config: the keys from the top, e.g. ('optim_wrapper', 'clip_grad', 'max_norm')
Path = tuple[str, ...]


def is_int(value: object) -> TypeGuard[int]:
    """An ``int`` that is not a ``bool``."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_finite_real(value: object) -> TypeGuard[int | float]:
    """An ``int`` or ``float`` (not a bool) that is finite and fits in a float (``10**400`` does not)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer too large for a float
        return False


def real_value(value: object) -> float | None:
    """``value`` as a float when it is a finite real number (see :func:`is_finite_real`), else None."""
    return float(value) if is_finite_real(value) else None


def not_a_number(value: object) -> str:
    """Why ``value`` is not a finite real number, for a message: ``'got nan'``, ``"got '1e-3' (text) ..."``."""
    if isinstance(value, bool):
        return f"got {value!r} (a bool, not a number)"
    if value is None:
        return "got None (empty)"
    if isinstance(value, str):
        try:
            parsed = float(value)
        except ValueError:
            return f"got the text {safe_repr(value)}"
        if not math.isfinite(parsed):  # 'nan', 'inf', '1e999': without the quotes it would still be wrong
            return f"got the text {safe_repr(value)}"
        return f"got the text {safe_repr(value)}: write {safe_str(value.strip(), 40)} without quotes"
    if isinstance(value, int):
        return f"got {safe_repr(value, 40)}, which is too large for a float"
    if isinstance(value, float):
        return f"got {value!r}"
    return f"got {safe_repr(value)} of type {type(value).__name__}"


def _bound_text(bound: float) -> str:
    """A bound as a message shows it: a whole number exactly (``2147483647``), a float as ``%g``."""
    return str(bound) if is_int(bound) else f"{bound:g}"


def describe_bounds(
    low: float | None = None, high: float | None = None, *, low_open: bool = False, high_open: bool = False
) -> str:
    """``'in [0, 1)'``, ``'> 0'``, ``'<= 1'`` or ``''``: the range a check demands, as the message shows it."""
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{_bound_text(low)}, {_bound_text(high)}{')' if high_open else ']'}"
    if low is not None:
        return f"{'>' if low_open else '>='} {_bound_text(low)}"
    if high is not None:
        return f"{'<' if high_open else '<='} {_bound_text(high)}"
    return ""


def _expected(what: str, bounds: str, meaning: str) -> str:
    """``'a whole number >= 1 (iterations per update)'``: what a check demands, without doubled spaces."""
    return " ".join(part for part in (what, bounds, f"({meaning})" if meaning else "") if part)


def _within(
    value: float, low: float | None, high: float | None, low_open: bool, high_open: bool
) -> bool:
    if low is not None and (value <= low if low_open else value < low):
        return False
    return not (high is not None and (value >= high if high_open else value > high))


def real(
    value: object,
    path: Path,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    optional: bool = False,
    meaning: str = "",
) -> list[Problem]:
    """A finite real number within the bounds (closed unless ``low_open``/``high_open``); None if ``optional``.

    ``meaning`` says what the number is for, shown in the message (``'a ratio of the initial value'``).
    """
    if value is None and optional:
        return []
    bounds = describe_bounds(low, high, low_open=low_open, high_open=high_open)
    if not is_finite_real(value):
        # nan, inf and 10**400 are numbers of a bad value; text, None and objects are of the wrong type
        kind = "value" if isinstance(value, (int, float)) and not isinstance(value, bool) else "type"
        return [Problem(path, f"must be {_expected('a finite number', bounds, meaning)}, {not_a_number(value)}",
                        kind=kind)]
    if not _within(float(value), low, high, low_open, high_open):
        return [Problem(path, f"must be {_expected('a number', bounds, meaning)}, got {safe_repr(value)}")]
    return []


def integer(
    value: object,
    path: Path,
    *,
    low: int | None = None,
    high: int | None = None,
    optional: bool = False,
    meaning: str = "",
) -> list[Problem]:
    """A whole number (an ``int``, not a bool or a float) in ``[low, high]``; None if ``optional``."""
    if value is None and optional:
        return []
    bounds = describe_bounds(low, high)
    if not is_int(value):
        shown = f"got {value!r}" if isinstance(value, float) else not_a_number(value)
        return [Problem(path, f"must be {_expected('a whole number', bounds, meaning)}, {shown}", kind="type")]
    if (low is not None and value < low) or (high is not None and value > high):
        return [Problem(path, f"must be {_expected('a whole number', bounds, meaning)}, got {safe_repr(value, 40)}")]
    return []


def reals(
    value: object,
    path: Path,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    min_length: int = 0,
    meaning: str = "",
) -> list[Problem]:
    """A list or tuple of at least ``min_length`` finite real numbers, each within the bounds at ``path -> [i]``."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        shown = f"{safe_repr(value)} of type {type(value).__name__}"
        return [Problem(path, f"must be a list of numbers{f' ({meaning})' if meaning else ''}, got {shown}",
                        kind="type")]
    if len(value) < min_length:
        return [Problem(path, f"must hold at least {min_length} number(s), got {safe_repr(value)}")]
    found = []
    for i, item in enumerate(value):
        found += real(item, (*path, f"[{i}]"), low=low, high=high, low_open=low_open, meaning=meaning)
    return found


def boolean(value: object, path: Path, *, optional: bool = False) -> list[Problem]:
    """``True`` or ``False`` (not 0/1, not a string); None if ``optional``."""
    if isinstance(value, bool) or (value is None and optional):
        return []
    return [Problem(path, f"must be True or False, got {safe_repr(value)}", kind="type")]


def one_of(value: object, path: Path, choices: Sequence[Any], *, optional: bool = False) -> list[Problem]:
    """One of ``choices`` (compared with ``==``, so only hashable-free equality), with a did-you-mean."""
    if value is None and optional:
        return []
    try:
        ok = any(type(value) is type(c) and value == c for c in choices)
    except Exception:  # a value whose == raises is not one of them
        ok = False
    if ok:
        return []
    names = ", ".join(repr(c) for c in choices)
    hint = did_you_mean(value, [str(c) for c in choices]) if isinstance(value, str) else ""
    kind = "value" if isinstance(value, str) else "type"
    return [Problem(path, f"must be one of {names}, got {safe_repr(value)}.{hint}", kind=kind)]


def known_keys(
    mapping: Mapping[Any, Any], path: Path, accepted: Iterable[str], *, what: str = ""
) -> list[Problem]:
    """Every key of ``mapping`` that is not ``accepted``, each at its own path with a did-you-mean.

    ``what`` names the owner for the message (``"ReduceOnPlateauLR"``): "ReduceOnPlateauLR takes no ...".
    """
    accepted = list(accepted)
    owner = f"{what} takes no key" if what else "is not a known key"
    problems = []
    for key in mapping:
        if key in accepted:
            continue
        text = safe_str(key)
        message = (f"{owner} {safe_repr(key)}." if what else f"{owner}.") + did_you_mean(text, accepted)
        problems.append(Problem((*path, text), f"{message} Known keys: {', '.join(accepted)}."))
    return problems
