"""The one curve interface, the ``SCHEDULERS`` registry, and the registry entry that reads a config entry.

Owns: :class:`Curve` (a value as a function of the step within its part), :class:`SchedulerType`
(a registered name: it checks a ``param_scheduler`` entry's keys and values and returns a
:class:`PartConfig`), ``SCHEDULERS`` (mmengine's schedulers and the modern shapes under one set of
names) and ``INF``, mmengine's "no end".

A curve answers: what is the value at step ``t`` of its part (``t = 0`` where the part begins), given
the part's length (None when open-ended), the value the part started from, the group's base value and
the group's index? Curves are frozen dataclasses; their arguments are checked on construction (with
:mod:`paramwise.checks`), and every problem is a ``Problem`` at the argument's config key, which the
caller prefixes with ``param_scheduler[i]``.

May import: the base (errors, suggestions, checks, registry). The curves themselves live in
:mod:`paramwise.schedule.mmengine` and :mod:`paramwise.schedule.shapes`, which register into
``SCHEDULERS``.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, dataclass, fields, replace
from typing import Any, ClassVar

from paramwise.checks import boolean, integer, known_keys, real
from paramwise.errors import ConfigError, Problem
from paramwise.registry import Registry
from paramwise.suggestions import safe_repr

__all__ = ["INF", "MAX_STEPS", "SCHEDULERS", "Curve", "PartConfig", "SchedulerType"]

#: mmengine's "no end": a part without ``end`` (and no ``max_iters``) runs to step 10**9.
INF = int(1e9)

#: every curve by its config names: mmengine's schedulers and the modern shapes (with their aliases)
SCHEDULERS = Registry("scheduler", locations=("paramwise.schedule.mmengine", "paramwise.schedule.shapes"))

#: the most steps a step-count argument may hold: any more would not survive float arithmetic
MAX_STEPS = 2**53

#: open-ended lists (cycles) stop here when ``boundaries()`` is asked for them
MAX_BOUNDARIES = 1_000


@dataclass(frozen=True)
class Curve:
    """A scheduled value as a function of the step ``t`` within its part (0 where the part begins).

    To add a curve: subclass (a frozen dataclass whose fields are its config arguments), check the
    arguments in ``problems`` with :mod:`paramwise.checks`, implement ``value`` (or ``factor``, for
    the two families below), and register a :class:`SchedulerType` for it in ``SCHEDULERS``.

    A *homogeneous* curve's value is ``start * factor(t, length)``: such parts chain by multiplication
    where their windows overlap, as mmengine's recursive updates do. Every other curve is *anchored*
    (its value depends on the group's base or on absolute numbers): where an mmengine curve of that
    kind overlaps another part, the schedule replays mmengine's updates (``MMEngineCurve.chain``).
    """

    #: arguments counted in steps, multiplied by the epoch length by ``convert_to_iter_based``
    step_fields: ClassVar[tuple[str, ...]] = ()
    #: the entry's keys besides the curve's own arguments, with their defaults
    entry_keys: ClassVar[tuple[tuple[str, Any], ...]] = (("begin", 0), ("end", None), ("by_epoch", False))
    #: ``param_name``'s default in the generic entry (None: required)
    default_param: ClassVar[str | None] = "lr"
    #: the values this curve can schedule (None: any)
    params: ClassVar[tuple[str, ...] | None] = None
    #: whether a part without ``end`` is open-ended (its length None); mmengine's end at ``INF`` instead
    open_end: ClassVar[bool] = True
    #: dataclass field -> config key, where the key would shadow a method (``factor``)
    renamed: ClassVar[Mapping[str, str]] = {}
    #: after the part's end: True holds the formula's value at the end (``t = length``, a shape's floor);
    #: False holds the last value inside the part (``t = length - 1``), as mmengine's schedulers stop there
    settles_at_end: ClassVar[bool] = False
    #: why the curve needs its part's length, and what else would do (the missing-length message)
    total_reason: ClassVar[str] = ""
    total_alternative: ClassVar[str] = ""

    def __post_init__(self) -> None:
        found = self.problems()
        if found:
            raise ConfigError(found, title=f"invalid {type(self).__name__} schedule")

    def problems(self) -> list[Problem]:
        """Everything wrong with the arguments, each at its config key; empty when they are valid."""
        return []

    # -------------------------------------------------------------------- the part's length
    def needs_total(self) -> bool:
        """Whether the value needs the part's length, given these arguments."""
        return False

    def default_length(self) -> int | None:
        """The part's length when the entry gives no ``end`` (OneCycle's ``total_steps``), if the curve fixes one."""
        return None

    def total_problems(self, total: int | None) -> list[Problem]:
        """What is wrong with running this curve over a part of ``total`` steps (None: open-ended).

        A missing length is reported at ``end`` (kind ``'missing'``), the key that gives a part its length.
        """
        if total is None:
            if not self.needs_total():
                return []
            return [Problem(("end",), f"{type(self).__name__} needs the length of its part {self.total_reason}: "
                                      f"set 'end' on this entry, or pass max_iters to build_scheduler"
                                      f"{self.total_alternative}", kind="missing")]
        return integer(total, ("end",), low=0, meaning="the part's length in steps")

    # ------------------------------------------------------------------------- the value
    def homogeneous(self, length: int | None) -> bool:
        """Whether the value is ``start * factor(t, length)`` over a part of this length (see the class doc)."""
        return False

    def factor(self, t: int, length: int | None) -> float:
        """The multiplier at step ``t``: of the starting value (homogeneous curves) or of the base (shapes)."""
        raise NotImplementedError(f"{type(self).__name__} has no factor")

    def value(self, t: int, length: int | None, start: float, base: float, group: int) -> float:
        """The value at step ``t >= 0`` of a part of ``length`` steps (None: open-ended).

        ``start`` is the value the part started from, ``base`` the group's initial value, ``group``
        the group's index (for arguments given one per group).
        """
        raise NotImplementedError

    # -------------------------------------------------------------------- for the schedule
    def scaled(self, epoch_length: int) -> Curve:
        """The curve with its step-valued arguments in iterations (mmengine's ``build_iter_from_epoch``)."""
        changes: dict[str, Any] = {}
        for name in self.step_fields:
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, tuple):
                changes[name] = tuple(v * epoch_length for v in value)
            else:
                changes[name] = value * epoch_length
        return replace(self, **changes) if changes else self

    def spans_length(self, length: int | None) -> bool:
        """Whether the values move toward the part's end (so an end at ``INF`` means they never get there)."""
        return False

    def absolute(self) -> str | None:
        """The argument that sets one absolute value for every group (it flattens lr_mult ratios), if any."""
        return None

    def boundaries(self, total: int | None) -> list[int]:
        """The steps at which a phase begins (warmup end, decay start, a new cycle...), ascending.

        For tables of milestones. Within ``[0, total]`` when the length is known; an open-ended part
        lists what its formula fixes (at most a thousand steps).
        """
        if self.total_problems(total):
            return [0]
        steps = {0, *self._boundaries(total)}
        if total is not None:
            steps = {s for s in steps if s <= total} | {total}
        return sorted(steps)[: MAX_BOUNDARIES + 1]

    def _boundaries(self, total: int | None) -> list[int]:
        return []


@dataclass(frozen=True)
class PartConfig:
    """One checked ``param_scheduler`` entry: which value, which window, which curve.

    ``begin``/``end`` are in the part's own units (epochs when ``by_epoch`` and not converted);
    ``end`` is None when the config gave none.
    """

    type_name: str
    param: str
    curve: Curve
    begin: float = 0
    end: float | None = None
    by_epoch: bool = True
    convert_to_iter_based: bool = False


# config values that arrive as lists and are kept as tuples (curves are frozen values)
_TUPLES = frozenset({"milestones", "periods", "restart_weights", "eta_max", "min_value"})


class SchedulerType:
    """A registry entry: a config ``name`` for a :class:`Curve` on one value (``param``), or any (``param_name``).

    Its ``__signature__`` lists every key the entry takes, so the registry's argument checks and
    did-you-mean work on it as on any class. Called with an entry's keys it returns a
    :class:`PartConfig`, or raises one ``ConfigError`` with every problem.
    """

    def __init__(self, name: str, curve: type[Curve], param: str | None, doc: str) -> None:
        self.__name__ = self.__qualname__ = name
        self.__module__ = curve.__module__
        self.__doc__ = doc
        self.curve = curve
        self.param = param  # None: the generic form, which takes param_name
        keyword = inspect.Parameter.KEYWORD_ONLY
        params = []
        if param is None:
            default = inspect.Parameter.empty if curve.default_param is None else curve.default_param
            params.append(inspect.Parameter("param_name", keyword, default=default, annotation="str"))
        for f in fields(curve):
            if f.init:
                default = inspect.Parameter.empty if f.default is MISSING else f.default
                params.append(inspect.Parameter(curve.renamed.get(f.name, f.name), keyword, default=default,
                                                annotation=f.type))
        annotations = {"begin": "float", "end": "float | None", "by_epoch": "bool", "convert_to_iter_based": "bool",
                       "verbose": "bool"}
        params += [inspect.Parameter(k, keyword, default=d, annotation=annotations[k]) for k, d in curve.entry_keys]
        self.__signature__ = inspect.Signature(params)

    def accepted(self) -> list[str]:
        return list(self.__signature__.parameters)

    def read(self, kwargs: Mapping[str, Any], type_name: str | None = None) -> tuple[PartConfig | None, list[Problem]]:
        """The entry's keys (without ``type``) as a :class:`PartConfig`, and every problem at its key."""
        name = type_name or self.__name__
        common = dict(self.curve.entry_keys)
        found: list[Problem] = []
        rest = dict(kwargs)
        if "convert_to_iter_based" in rest and "convert_to_iter_based" not in common:
            rest.pop("convert_to_iter_based")
            found.append(Problem(("convert_to_iter_based",), f"{name} counts its own arguments in steps; give them "
                                 "in iterations with by_epoch=False (the default for shapes) instead of converting"))
        found += known_keys(rest, (), self.accepted(), what=name)
        for key, p in self.__signature__.parameters.items():
            if p.default is p.empty and key not in rest:
                found.append(Problem((key,), f"{name} needs {key!r}", kind="missing"))
        if found:
            return None, found
        values = {k: rest.pop(k, d) for k, d in common.items()}
        found += real(values["begin"], ("begin",), low=0, meaning="a step number")
        found += real(values["end"], ("end",), low=0, optional=True, meaning="a step number")
        for key in ("by_epoch", "convert_to_iter_based", "verbose"):
            if key in values:
                found += boolean(values[key], (key,))
        param = rest.pop("param_name", self.curve.default_param) if self.param is None else self.param
        if not isinstance(param, str) or not param:
            found.append(Problem(("param_name",), f"must name a value of the param groups, got {safe_repr(param)}",
                                 kind="type"))
        elif self.curve.params is not None and param not in self.curve.params:
            where = "param_name" if self.param is None else "type"
            allowed = " or ".join(repr(p) for p in self.curve.params)
            found.append(Problem((where,), f"{name} schedules only {allowed} (as in mmengine), not {param!r}"))
        inverse = {v: k for k, v in self.curve.renamed.items()}
        arguments = {}
        for key, value in rest.items():
            if key in _TUPLES and isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
                value = tuple(value)
            arguments[inverse.get(key, key)] = value
        try:
            curve = self.curve(**arguments)
        except ConfigError as e:
            return None, found + list(e.problems)
        if found:
            return None, found
        end = values["end"]
        return PartConfig(
            type_name=name,
            param=str(param),
            curve=curve,
            begin=values["begin"],
            end=None if end is None or end == INF else end,
            by_epoch=values["by_epoch"],
            convert_to_iter_based=values.get("convert_to_iter_based", False),
        ), []

    def __call__(self, **kwargs: Any) -> PartConfig:
        config, found = self.read(kwargs)
        if config is None:
            raise ConfigError(found, title=f"invalid {self.__name__} entry")
        return config

    def __repr__(self) -> str:
        return f"<scheduler {self.__name__}>"
