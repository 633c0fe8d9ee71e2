"""A small, safe arithmetic language for per-parameter values in configs: ``'base_fan_in / fan_in'``.

A config is data, and a string in it must not run code. So an expression is parsed with ``ast`` and
checked against a whitelist (numbers, the variables a rule offers, ``+ - * / **``, unary minus and
the functions ``min``, ``max``, ``sqrt``, ``abs``), then compiled into plain closures that compute in
floats. Nothing here calls ``eval`` or ``compile``: a name that is not a variable, an attribute,
indexing, a string, a lambda, a comprehension or any other call is rejected before anything runs.
Arithmetic is in floats, so ``10 ** 10 ** 10`` overflows at once instead of building a huge integer;
constant parts are computed when parsing, so such a config fails when it is read, with its path.

Pure Python, no torch: rules (see ``width_scaling.py``) bind the variables per parameter.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from paramwise import checks
from paramwise.errors import ExpressionError, Problem
from paramwise.suggestions import did_you_mean, safe_repr

__all__ = [
    "FUNCTIONS",
    "MAX_EXPONENT",
    "MAX_LENGTH",
    "Expression",
    "ExpressionError",
    "check_expression",
    "parse_expression",
]

#: Longest expression text accepted; a rule's formula fits on a line.
MAX_LENGTH = 200
#: Largest magnitude of an exponent that is a constant (``0.65 ** 24`` is fine; ``2 ** 1000`` is a typo).
MAX_EXPONENT = 100.0

Compiled = Callable[[Mapping[str, float]], float]


def _min(*args: float) -> float:
    return min(args)


def _max(*args: float) -> float:
    return max(args)


#: name -> (function, least and most arguments; None: any number)
FUNCTIONS: Mapping[str, tuple[Callable[..., float], int, int | None]] = {
    "min": (_min, 1, None),
    "max": (_max, 1, None),
    "sqrt": (math.sqrt, 1, 1),
    "abs": (abs, 1, 1),
}


def _pow(base: float, exponent: float) -> float:
    """``base ** exponent`` in floats: math.pow fails on a negative base with a fractional power
    (instead of giving a complex number); zero to a negative power is a division by zero."""
    if base == 0.0 and exponent < 0:
        raise ZeroDivisionError
    return math.pow(base, exponent)


_BINARY: Mapping[type[ast.operator], tuple[str, Callable[[float, float], float]]] = {
    ast.Add: ("+", lambda a, b: a + b),
    ast.Sub: ("-", lambda a, b: a - b),
    ast.Mult: ("*", lambda a, b: a * b),
    ast.Div: ("/", lambda a, b: a / b),
    ast.Pow: ("**", lambda a, b: _pow(a, b)),
}

# what a rejected node is, in words
_NODE_WORDS: Mapping[type[ast.AST], str] = {
    ast.Attribute: "attribute access",
    ast.Subscript: "indexing",
    ast.Lambda: "a lambda",
    ast.ListComp: "a comprehension",
    ast.SetComp: "a comprehension",
    ast.DictComp: "a comprehension",
    ast.GeneratorExp: "a comprehension",
    ast.Compare: "a comparison",
    ast.BoolOp: "'and'/'or'",
    ast.IfExp: "a conditional (x if c else y)",
    ast.NamedExpr: "an assignment (:=)",
    ast.List: "a list",
    ast.Tuple: "a tuple",
    ast.Dict: "a dict",
    ast.Set: "a set",
    ast.JoinedStr: "an f-string",
    ast.Starred: "unpacking (*)",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield",
    ast.Slice: "a slice",
}


class _Reject(Exception):
    """Raised inside the compiler; turned into an ExpressionError with the whole text."""


@dataclass(frozen=True, repr=False)
class Expression:
    """A checked expression: its text, the variables it reads, and a compiled evaluator."""

    text: str
    names: frozenset[str]  # the variables it reads
    _fn: Compiled = field(compare=False)

    def __repr__(self) -> str:
        return f"Expression({self.text!r})"

    @property
    def constant(self) -> bool:
        return not self.names

    def __call__(self, variables: Mapping[str, float] | None = None) -> float:
        """The value for ``variables``; an ``ExpressionError`` for division by zero, overflow and the like."""
        values = variables or {}
        missing = sorted(self.names - values.keys())
        if missing:
            raise ExpressionError(f"needs a value for {', '.join(missing)}", text=self.text)
        try:
            result = self._fn(values)
        except ZeroDivisionError:
            raise ExpressionError(f"divides by zero with {_show(values, self.names)}", text=self.text) from None
        except OverflowError:
            raise ExpressionError(f"overflows with {_show(values, self.names)}", text=self.text) from None
        except ValueError:  # math domain: sqrt(-1), (-8) ** 0.5
            raise ExpressionError(
                f"is undefined (a root or power of a negative number) with {_show(values, self.names)}",
                text=self.text,
            ) from None
        if not math.isfinite(result):
            raise ExpressionError(f"gives {result} with {_show(values, self.names)}", text=self.text)
        return result


def _show(values: Mapping[str, float], names: Iterable[str]) -> str:
    shown = ", ".join(f"{n}={values[n]:g}" for n in sorted(names) if n in values)
    return shown or "no variables"


def parse_expression(source: Any, variables: Iterable[str]) -> Expression:
    """Parse ``source`` (a string, or a plain number) as an expression over ``variables``.

    Raises ``ExpressionError`` saying what is not allowed and what is; never runs the text.
    """
    allowed = frozenset(variables)
    if isinstance(source, bool) or not isinstance(source, (str, int, float)):
        raise ExpressionError(
            f"must be a number or an expression string, got {type(source).__name__}", text=safe_repr(source)
        )
    if not isinstance(source, str):
        if not checks.is_finite_real(source):  # nan, inf, or an integer too large for a float
            why = "is too large for a float" if checks.is_int(source) else "must be finite"
            raise ExpressionError(why, text=safe_repr(source, 40))
        value = float(source)
        return Expression(safe_repr(source), frozenset(), lambda _v: value)
    text = source.strip()
    if not text:
        raise ExpressionError("is empty; write a number or a formula such as 'base_fan_in / fan_in'", text=source)
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"is longer than {MAX_LENGTH} characters", text=text[:40] + "...")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as e:
        where = f" at column {e.offset}" if e.offset else ""
        raise ExpressionError(f"is not a valid expression ({e.msg}{where})", text=text) from None
    except (ValueError, RecursionError, MemoryError):  # null bytes; nesting too deep for the parser
        raise ExpressionError("is not a valid expression", text=text) from None
    names: set[str] = set()
    try:
        fn = _compile(tree.body, allowed, names)
    except _Reject as e:
        raise ExpressionError(str(e), text=text) from None
    except RecursionError:
        raise ExpressionError("is nested too deeply", text=text) from None
    return Expression(text, frozenset(names), fn)


def check_expression(
    source: Any, variables: Iterable[str], path: tuple[str, ...], problems: list[Problem]
) -> Expression | None:
    """``parse_expression`` for a config value: a problem at ``path`` instead of an exception."""
    try:
        return parse_expression(source, variables)
    except ExpressionError as e:
        problems.append(Problem(path, f"{e.text} {e.message}"))
        return None


def _allowed_words(allowed: frozenset[str]) -> str:
    return (f"an expression may use numbers, the variables {', '.join(sorted(allowed)) or '(none here)'}, "
            f"+ - * / **, parentheses and {', '.join(FUNCTIONS)}")


def _compile(node: ast.AST, allowed: frozenset[str], names: set[str]) -> Compiled:
    """A closure computing ``node``, with every constant part computed now (its errors show at parse)."""
    return _build(node, allowed, names)[0]


def _build(node: ast.AST, allowed: frozenset[str], names: set[str]) -> tuple[Compiled, bool]:
    """(closure, whether it is constant) for ``node``; a constant is folded into its value here."""
    fn, constant = _node(node, allowed, names)
    if not constant:
        return fn, False
    try:
        value = fn({})
    except ZeroDivisionError:
        raise _Reject(f"{ast.unparse(node)} divides by zero") from None
    except (OverflowError, ValueError):
        raise _Reject(f"{ast.unparse(node)} cannot be computed (too large, or a root of a negative number)") from None
    if not math.isfinite(value):
        raise _Reject(f"{ast.unparse(node)} is not finite")
    return (lambda _v: value), True


def _node(node: ast.AST, allowed: frozenset[str], names: set[str]) -> tuple[Compiled, bool]:
    """(closure, whether it is constant) for one whitelisted node; anything else is rejected."""
    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _Reject(f"{'a string' if isinstance(value, str) else repr(value)} is not allowed: "
                          f"{_allowed_words(allowed)}")
        if not checks.is_finite_real(value):  # 1e999 parses as inf; a long integer does not fit a float
            raise _Reject("has a number too large for a float")
        number = float(value)
        return (lambda _v: number), True
    if isinstance(node, ast.Name):
        name = node.id
        if name not in allowed:
            hint = did_you_mean(name, [*allowed, *FUNCTIONS])
            what = "a function: call it, e.g. sqrt(x)" if name in FUNCTIONS else "not a variable here"
            raise _Reject(f"{name!r} is {what}.{hint} {_allowed_words(allowed)}")
        names.add(name)
        return (lambda v: float(v[name])), False
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        inner, constant = _build(node.operand, allowed, names)
        if isinstance(node.op, ast.USub):
            return (lambda v: -inner(v)), constant
        return inner, constant
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        symbol, op = _BINARY[type(node.op)]
        left, left_constant = _build(node.left, allowed, names)
        right, right_constant = _build(node.right, allowed, names)
        if symbol == "/" and right_constant and right({}) == 0:
            raise _Reject(f"{ast.unparse(node)} divides by zero")
        if symbol == "**" and right_constant:
            exponent = right({})
            if abs(exponent) > MAX_EXPONENT:
                raise _Reject(f"has the exponent {exponent:g}; exponents are limited to +-{MAX_EXPONENT:g}")
        return (lambda v: op(left(v), right(v))), left_constant and right_constant
    if isinstance(node, ast.Call):
        return _build_call(node, allowed, names)
    if isinstance(node, ast.BinOp):
        symbol = {ast.FloorDiv: "//", ast.Mod: "%", ast.MatMult: "@", ast.LShift: "<<", ast.RShift: ">>",
                  ast.BitAnd: "&", ast.BitOr: "|", ast.BitXor: "^"}.get(type(node.op), type(node.op).__name__)
        raise _Reject(f"the operator {symbol} is not allowed: {_allowed_words(allowed)}")
    if isinstance(node, ast.UnaryOp):
        raise _Reject(f"the operator {'not' if isinstance(node.op, ast.Not) else '~'} is not allowed: "
                      f"{_allowed_words(allowed)}")
    words = _NODE_WORDS.get(type(node), f"a {type(node).__name__} expression")
    raise _Reject(f"{words} is not allowed: {_allowed_words(allowed)}")


def _build_call(node: ast.Call, allowed: frozenset[str], names: set[str]) -> tuple[Compiled, bool]:
    func = node.func
    if not isinstance(func, ast.Name) or func.id not in FUNCTIONS:
        shown = func.id if isinstance(func, ast.Name) else ast.unparse(func)
        hint = did_you_mean(shown, FUNCTIONS) if isinstance(func, ast.Name) else ""
        raise _Reject(f"calling {shown}(...) is not allowed.{hint} The functions are {', '.join(FUNCTIONS)}")
    if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
        raise _Reject(f"{func.id}() takes plain positional arguments")
    fn, least, most = FUNCTIONS[func.id]
    count = len(node.args)
    if count < least or (most is not None and count > most):
        wanted = f"{least}" if least == most else f"at least {least}"
        raise _Reject(f"{func.id}() takes {wanted} argument{'' if least == 1 else 's'}, got {count}")
    args = [_build(a, allowed, names) for a in node.args]
    parts = [a[0] for a in args]
    return (lambda v: float(fn(*(p(v) for p in parts)))), all(a[1] for a in args)
