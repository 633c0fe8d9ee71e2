"""mmengine's parameter schedulers as closed-form curves, registered in ``SCHEDULERS`` under their config names.

Owns: :class:`MMEngineCurve` and one curve per mmengine scheduler stem (``Constant``, ``Linear``,
``CosineAnnealing``, ``ReduceOnPlateau``, ...), each registered three times: ``...LR``,
``...Momentum`` and the generic ``...ParamScheduler`` (which takes ``param_name``).

A curve gives the value at a part's local step ``t`` in closed form, so a schedule's whole state is
its step count. mmengine's schedulers are written recursively (each step multiplies the current
value); the closed forms here are what those recursions telescope to, and the differential tests
check them against mmengine step by step.

May import: the base (errors, suggestions, checks, registry) and :mod:`paramwise.schedule.curve`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from paramwise.checks import boolean, integer, one_of, real, reals
from paramwise.errors import Problem
from paramwise.schedule.curve import INF, MAX_STEPS, SCHEDULERS, Curve, PartConfig, SchedulerType
from paramwise.suggestions import safe_repr

__all__ = [
    "INF",
    "SCHEDULERS",
    "ConstantCurve",
    "CosineAnnealingCurve",
    "CosineRestartCurve",
    "Curve",
    "ExponentialCurve",
    "LinearCurve",
    "MMEngineCurve",
    "MultiStepCurve",
    "OneCycleCurve",
    "PartConfig",
    "PlateauCurve",
    "PolyCurve",
    "SchedulerType",
    "StepCurve",
]


@dataclass(frozen=True)
class MMEngineCurve(Curve):
    """mmengine's schedulers: homogeneous by default (``start * factor``), counted in epochs unless told otherwise.

    A part without ``end`` runs to mmengine's ``INF``: its length is ``INF - begin``, as mmengine's
    ``end - begin`` is, so the curves that use it (Constant, Linear, Cosine, Poly) give mmengine's values.
    """

    entry_keys: ClassVar[tuple[tuple[str, Any], ...]] = (
        ("begin", 0), ("end", INF), ("by_epoch", True), ("convert_to_iter_based", False), ("verbose", False),
    )
    default_param: ClassVar[str | None] = None
    open_end: ClassVar[bool] = False

    def homogeneous(self, length: int | None) -> bool:
        return True

    def value(self, t: int, length: int | None, start: float, base: float, group: int) -> float:
        return start * self.factor(t, length)

    # ------------------------------------------------- mmengine's recurrence, for overlapping parts
    def chain(self, t: int, current: float, length: int | None, base: float, group: int) -> float:
        """mmengine's chainable update at the part's step ``t``: the new value from the group's ``current`` one.

        Overlapping parts are replayed with these updates, in mmengine's order, so their values are
        mmengine's (see ``schedule.py``). Homogeneous curves multiply by the step's factor ratio.
        """
        if t == 0:
            return current * self.factor(0, length)
        return current * (self.factor(t, length) / self.factor(t - 1, length))

    def tail(self, s: int, at_s: float, t: int, length: int | None, base: float, group: int) -> float | None:
        """The value at step ``t > s`` when this part alone acts after step ``s``, where the value was ``at_s``.

        The closed form of ``chain`` repeated from ``s`` to ``t`` (None where there is none: the
        schedule then replays the steps).
        """
        before = self.factor(s, length)
        return None if before == 0 else at_s * (self.factor(t, length) / before)


def _span(length: int | None) -> int:
    """The part's length: mmengine's parts always have one (``INF - begin`` without an ``end``)."""
    assert length is not None, "mmengine's curves are given INF - begin for a part without an end"
    return length


def _ratio(value: object, key: str) -> list[Problem]:
    return real(value, (key,), low=0.0, high=1.0, meaning="a factor of the starting value")


@dataclass(frozen=True)
class ConstantCurve(MMEngineCurve):
    """``ConstantLR``: ``factor`` until the last step of the window, then 1."""

    renamed: ClassVar[Mapping[str, str]] = {"factor_": "factor"}
    factor_: float = 1.0 / 3

    def problems(self) -> list[Problem]:
        return _ratio(self.factor_, "factor")

    def factor(self, t: int, length: int | None) -> float:
        last = _span(length) - 1  # mmengine's total_iters: it restores the value at the window's last step
        return self.factor_ if t == 0 or t < last else 1.0

    def spans_length(self, length: int | None) -> bool:
        return self.factor_ != 1

    def chain(self, t: int, current: float, length: int | None, base: float, group: int) -> float:
        if t == 0:
            return current * self.factor_
        return current * (1.0 / self.factor_) if t == _span(length) - 1 else current


@dataclass(frozen=True)
class LinearCurve(MMEngineCurve):
    """``LinearLR``: the factor moves linearly from ``start_factor`` to ``end_factor`` over the window."""

    start_factor: float = 1.0 / 3
    end_factor: float = 1.0

    def problems(self) -> list[Problem]:
        return [*_ratio(self.start_factor, "start_factor"), *_ratio(self.end_factor, "end_factor")]

    def factor(self, t: int, length: int | None) -> float:
        last = _span(length) - 1
        if t == 0 or last <= 0:
            return self.start_factor
        return self.start_factor + (self.end_factor - self.start_factor) * min(t, last) / last

    def spans_length(self, length: int | None) -> bool:
        return self.start_factor != self.end_factor

    def chain(self, t: int, current: float, length: int | None, base: float, group: int) -> float:
        if t == 0:
            return current * self.start_factor
        change = self.end_factor - self.start_factor
        return current * (1.0 + change / ((_span(length) - 1) * self.start_factor + (t - 1) * change))


@dataclass(frozen=True)
class ExponentialCurve(MMEngineCurve):
    """``ExponentialLR``: ``gamma ** t``."""

    gamma: float

    def problems(self) -> list[Problem]:
        return real(self.gamma, ("gamma",), low=0.0, meaning="the factor of each step")

    def factor(self, t: int, length: int | None) -> float:
        return float(self.gamma**t)

    def chain(self, t: int, current: float, length: int | None, base: float, group: int) -> float:
        return current if t == 0 else current * self.gamma


@dataclass(frozen=True)
class StepCurve(MMEngineCurve):
    """``StepLR``: ``gamma ** (t // step_size)``."""

    step_fields: ClassVar[tuple[str, ...]] = ("step_size",)
    step_size: int
    gamma: float = 0.1

    def problems(self) -> list[Problem]:
        return [*integer(self.step_size, ("step_size",), low=1, high=MAX_STEPS, meaning="a number of steps"),
                *real(self.gamma, ("gamma",), low=0.0, meaning="the factor of each step")]

    def factor(self, t: int, length: int | None) -> float:
        return float(self.gamma ** (t // self.step_size))

    def chain(self, t: int, current: float, length: int | None, base: float, group: int) -> float:
        return current if t == 0 or t % self.step_size else current * self.gamma


@dataclass(frozen=True)
class MultiStepCurve(MMEngineCurve):
    """``MultiStepLR``: times ``gamma`` at each milestone (counted from the part's ``begin``, as in mmengine)."""

    step_fields: ClassVar[tuple[str, ...]] = ("milestones",)
    milestones: tuple[int, ...]
    gamma: float = 0.1

    def problems(self) -> list[Problem]:
        return [*reals(self.milestones, ("milestones",), low=0.0, meaning="step numbers"),
                *real(self.gamma, ("gamma",), low=0.0, meaning="the factor at each milestone")]

    def factor(self, t: int, length: int | None) -> float:
        return float(self.gamma ** sum(1 for m in self.milestones if m <= t))

    def chain(self, t: int, current: float, length: int | None, base: float, group: int) -> float:
        count = sum(1 for m in self.milestones if m == t)  # mmengine counts repeated milestones
        return current * self.gamma**count if count else current


def _cosine(t: float, period: float) -> float:
    return (1 + math.cos(math.pi * t / period)) / 2


def _floor_problems(eta_min: object, eta_min_ratio: object, *, required: bool) -> list[Problem]:
    """``eta_min`` (absolute) or ``eta_min_ratio`` (of each group's initial value): at most one, numbers >= 0."""
    found = [*real(eta_min, ("eta_min",), low=0.0, optional=True, meaning="the value to anneal to"),
             *real(eta_min_ratio, ("eta_min_ratio",), low=0.0, optional=True, meaning="a ratio of the initial value")]
    if eta_min is not None and eta_min_ratio is not None:
        found.append(Problem(("eta_min_ratio",), "give eta_min (one value for every group) or eta_min_ratio (a "
                                                 "fraction of each group's initial value), not both"))
    elif required and eta_min is None and eta_min_ratio is None:
        found.append(Problem(("eta_min",), "give eta_min or eta_min_ratio (mmengine requires one of them here)"))
    return found


@dataclass(frozen=True)
class CosineAnnealingCurve(MMEngineCurve):
    """``CosineAnnealingLR``: half a cosine from the starting value to ``eta_min`` over ``T_max`` steps.

    Past ``T_max`` the cosine continues periodically with the group's base value as its top, as
    mmengine's recursion does.
    """

    step_fields: ClassVar[tuple[str, ...]] = ("T_max",)
    T_max: int | None = None
    eta_min: float | None = None
    eta_min_ratio: float | None = None

    def problems(self) -> list[Problem]:
        return [*_floor_problems(self.eta_min, self.eta_min_ratio, required=False),
                *real(self.T_max, ("T_max",), low=0.0, optional=True, meaning="a number of steps")]

    def period(self, length: int | None) -> float:
        return self.T_max or _span(length)  # mmengine: `T_max or (end - begin)`

    def spans_length(self, length: int | None) -> bool:
        return not self.T_max

    def homogeneous(self, length: int | None) -> bool:
        zero_floor = not self.eta_min and not self.eta_min_ratio
        return zero_floor and _span(length) <= self.period(length) + 1

    def factor(self, t: int, length: int | None) -> float:
        return _cosine(t, self.period(length))

    def value(self, t: int, length: int | None, start: float, base: float, group: int) -> float:
        if t == 0:
            return start
        floor = base * self.eta_min_ratio if self.eta_min_ratio is not None else self.eta_min or 0.0
        period = self.period(length)
        top = start if t <= period else base  # past T_max mmengine restarts from the base value
        return floor + (top - floor) * _cosine(t, period)

    def _floor(self, base: float) -> float:
        return base * self.eta_min_ratio if self.eta_min_ratio is not None else self.eta_min or 0.0

    def chain(self, t: int, current: float, length: int | None, base: float, group: int) -> float:
        if t == 0:
            return current
        floor, period = self._floor(base), self.period(length)
        if (t - 1 - period) % (2 * period) == 0:  # mmengine's step past a trough
            return current + (base - floor) * (1 - math.cos(math.pi / period)) / 2
        return (1 + math.cos(math.pi * t / period)) / (1 + math.cos(math.pi * (t - 1) / period)) * (
            current - floor) + floor

    def tail(self, s: int, at_s: float, t: int, length: int | None, base: float, group: int) -> float | None:
        period = self.period(length)
        if period != int(period):
            return None  # mmengine's trough test never fires exactly: replay its steps
        period = int(period)
        # the first step after s at which mmengine's trough branch fires: (r - 1 - T) % 2T == 0
        r = period + 1 + 2 * period * max(0, (s - period - 1) // (2 * period) + 1)
        if r == s + 1 and t >= r:  # the trough branch adds to whatever the value is: step it, then go on
            return self.tail(r, self.chain(r, at_s, length, base, group), t, length, base, group) if t > r \
                else self.chain(r, at_s, length, base, group)
        floor = self._floor(base)
        if t < r:
            return floor + (at_s - floor) * (_cosine(t, period) / _cosine(s, period))
        return floor + (base - floor) * _cosine(t, period)  # after a trough the history is gone (top = base)

    def absolute(self) -> str | None:
        return "eta_min" if self.eta_min else None


@dataclass(frozen=True)
class PolyCurve(MMEngineCurve):
    """``PolyLR``: ``eta_min + (start - eta_min) * (1 - t / (length - 1)) ** power``.

    ``eta_min_ratio`` is a paramwise extension (mmengine's PolyLR has only the absolute ``eta_min``).
    """

    eta_min: float = 0.0
    power: float = 1.0
    eta_min_ratio: float | None = None

    def problems(self) -> list[Problem]:
        # eta_min=0 is the default, not a choice: it does not clash with eta_min_ratio
        found = _floor_problems(self.eta_min or None, self.eta_min_ratio, required=False)
        if self.eta_min is None:
            found.append(Problem(("eta_min",), "must be a finite number >= 0 (the value to anneal to), got None",
                                 kind="type"))
        return [*found, *real(self.power, ("power",), low=0.0, meaning="the exponent of the decay")]

    def homogeneous(self, length: int | None) -> bool:
        return not self.eta_min and not self.eta_min_ratio

    def spans_length(self, length: int | None) -> bool:
        return True

    def factor(self, t: int, length: int | None) -> float:
        last = _span(length) - 1
        return 1.0 if t == 0 else float(((last - t) / last) ** self.power)

    def value(self, t: int, length: int | None, start: float, base: float, group: int) -> float:
        if t == 0:
            return start
        floor = base * self.eta_min_ratio if self.eta_min_ratio is not None else self.eta_min
        return floor + (start - floor) * self.factor(t, length)

    def chain(self, t: int, current: float, length: int | None, base: float, group: int) -> float:
        if t == 0:
            return current
        floor = base * self.eta_min_ratio if self.eta_min_ratio is not None else self.eta_min
        return (current - floor) * (1 - 1 / (_span(length) - 1 - t + 1)) ** self.power + floor

    def tail(self, s: int, at_s: float, t: int, length: int | None, base: float, group: int) -> float | None:
        floor = base * self.eta_min_ratio if self.eta_min_ratio is not None else self.eta_min
        last = _span(length) - 1
        return floor + (at_s - floor) * float(((last - t) / (last - s)) ** self.power)

    def absolute(self) -> str | None:
        return "eta_min" if self.eta_min else None


@dataclass(frozen=True)
class CosineRestartCurve(MMEngineCurve):
    """``CosineRestartLR``: cosine cycles of the given ``periods``; cycle i starts at base x ``restart_weights[i]``."""

    step_fields: ClassVar[tuple[str, ...]] = ("periods",)
    periods: tuple[int, ...]
    restart_weights: tuple[float, ...] = (1,)
    eta_min: float | None = None
    eta_min_ratio: float | None = None

    def problems(self) -> list[Problem]:
        found = _floor_problems(self.eta_min, self.eta_min_ratio, required=True)
        periods = reals(self.periods, ("periods",), low=0.0, low_open=True, min_length=1,
                        meaning="the cycles' lengths in steps")
        weights = reals(self.restart_weights, ("restart_weights",), low=0.0, meaning="each cycle's peak over the base")
        found += periods + weights
        if not periods and not weights and len(self.periods) != len(self.restart_weights):
            found.append(Problem(("restart_weights",), f"needs one weight per period: {len(self.periods)} periods, "
                                                       f"{len(self.restart_weights)} weights"))
        return found

    def homogeneous(self, length: int | None) -> bool:
        return False

    def value(self, t: int, length: int | None, start: float, base: float, group: int) -> float:
        t = min(t, sum(self.periods) - 1)  # past the last cycle mmengine leaves the value as it is
        begin, cycle = 0, 0
        while t >= begin + self.periods[cycle]:
            begin += self.periods[cycle]
            cycle += 1
        period, weight = self.periods[cycle], self.restart_weights[cycle]
        floor = base * self.eta_min_ratio if self.eta_min_ratio is not None else self.eta_min or 0.0
        top = base * weight
        s = t - begin
        return top if s == 0 else floor + (top - floor) * _cosine(s, period)

    def _cycle(self, t: int) -> tuple[int, int] | None:
        """(the cycle's first step, its index) of step ``t``; None past the last cycle."""
        begin = 0
        for cycle, period in enumerate(self.periods):
            if t < begin + period:
                return begin, cycle
            begin += period
        return None

    def chain(self, t: int, current: float, length: int | None, base: float, group: int) -> float:
        found = self._cycle(t)
        if found is None:
            return current  # past the last cycle mmengine leaves the value as it is
        begin, cycle = found
        if t == begin:
            return base * self.restart_weights[cycle]
        floor = base * self.eta_min_ratio if self.eta_min_ratio is not None else self.eta_min or 0.0
        period, q = self.periods[cycle], t - begin
        return (1 + math.cos(math.pi * q / period)) / (1 + math.cos(math.pi * (q - 1) / period)) * (
            current - floor) + floor

    def tail(self, s: int, at_s: float, t: int, length: int | None, base: float, group: int) -> float | None:
        t = min(t, sum(self.periods) - 1)
        found = self._cycle(t)
        if t <= s or found is None:
            return at_s
        begin, cycle = found
        if begin > s:  # a new cycle began after s: it starts from the base, whatever came before
            return self.value(t, length, at_s, base, group)
        floor = base * self.eta_min_ratio if self.eta_min_ratio is not None else self.eta_min or 0.0
        period = self.periods[cycle]
        return floor + (at_s - floor) * (_cosine(t - begin, period) / _cosine(s - begin, period))

    def absolute(self) -> str | None:
        return "eta_min" if self.eta_min else None


@dataclass(frozen=True)
class OneCycleCurve(MMEngineCurve):
    """``OneCycleLR``: up from ``eta_max / div_factor`` to ``eta_max``, then down to ``initial / final_div_factor``.

    mmengine's values are absolute: a scalar ``eta_max`` gives every group the same peak (a list
    gives one per group). ``eta_max_ratio`` (a paramwise extension) makes the peak each group's
    initial value times the ratio, so lr_mult ratios hold.
    """

    step_fields: ClassVar[tuple[str, ...]] = ("total_steps",)
    params: ClassVar[tuple[str, ...] | None] = ("lr",)
    open_end: ClassVar[bool] = True  # it needs a real length: total_steps, end or max_iters
    total_reason: ClassVar[str] = "(its phases are shares of it)"
    total_alternative: ClassVar[str] = "; or give total_steps"
    eta_max: float | tuple[float, ...] = 0.0
    total_steps: int | None = None
    pct_start: float = 0.3
    anneal_strategy: str = "cos"
    div_factor: float = 25.0
    final_div_factor: float = 1e4
    three_phase: bool = False
    eta_max_ratio: float | None = None

    def problems(self) -> list[Problem]:
        if isinstance(self.eta_max, tuple):
            found = reals(self.eta_max, ("eta_max",), low=0.0, meaning="the peak of each group")
        else:
            found = real(self.eta_max, ("eta_max",), low=0.0, meaning="the peak, or a list of one per group")
        found += [
            *integer(self.total_steps, ("total_steps",), low=1, high=MAX_STEPS, optional=True,
                     meaning="a number of steps"),
            *real(self.pct_start, ("pct_start",), low=0.0, high=1.0, meaning="the rising phase's share"),
            *one_of(self.anneal_strategy, ("anneal_strategy",), ("cos", "linear")),
            *real(self.div_factor, ("div_factor",), low=0.0, low_open=True, meaning="eta_max over the first value"),
            *real(self.final_div_factor, ("final_div_factor",), low=0.0, low_open=True,
                  meaning="the first value over the last"),
            *boolean(self.three_phase, ("three_phase",)),
            *real(self.eta_max_ratio, ("eta_max_ratio",), low=0.0, optional=True,
                  meaning="the peak as a ratio of the initial value"),
        ]
        if self.eta_max_ratio is not None and self.eta_max:
            found.append(Problem(("eta_max_ratio",), "give eta_max (absolute) or eta_max_ratio (of each group's "
                                                     "initial value), not both"))
        return found

    def homogeneous(self, length: int | None) -> bool:
        return False

    def needs_total(self) -> bool:
        return self.total_steps is None

    def default_length(self) -> int | None:
        return self.total_steps

    def total_problems(self, total: int | None) -> list[Problem]:
        found = super().total_problems(total)
        if not found and self.total_steps is not None and total is not None and total > self.total_steps + 1:
            found.append(Problem(("total_steps",), f"the window has {total} steps but total_steps is "
                                 f"{self.total_steps}: mmengine raises once it steps past total_steps; make "
                                 "end - begin <= total_steps + 1"))
        return found

    def total(self, length: int | None) -> int:
        return self.total_steps if self.total_steps is not None else _span(length)

    def phases(self, length: int | None) -> list[tuple[float, str, str]]:
        total = self.total(length)
        if self.three_phase:
            return [(float(self.pct_start * total) - 1, "initial", "max"),
                    (float(2 * self.pct_start * total) - 2, "max", "initial"),
                    (total - 1, "initial", "min")]
        return [(float(self.pct_start * total) - 1, "initial", "max"), (total - 1, "max", "min")]

    def peak(self, base: float, group: int) -> float:
        if self.eta_max_ratio is not None:
            return base * self.eta_max_ratio
        if isinstance(self.eta_max, tuple):
            return float(self.eta_max[group])
        return float(self.eta_max)

    def value(self, t: int, length: int | None, start: float, base: float, group: int) -> float:
        top = self.peak(base, group)
        levels = {"max": top, "initial": top / self.div_factor}
        levels["min"] = levels["initial"] / self.final_div_factor
        begin = 0.0
        phases = self.phases(length)
        for i, (end, first, last) in enumerate(phases):
            if t <= end or i == len(phases) - 1:
                pct = (t - begin) / (end - begin)
                a, b = levels[first], levels[last]
                if self.anneal_strategy == "cos":
                    return b + (a - b) / 2.0 * (math.cos(math.pi * pct) + 1)
                return (b - a) * pct + a
            begin = end
        raise AssertionError("unreachable: the last phase always answers")

    def chain(self, t: int, current: float, length: int | None, base: float, group: int) -> float:
        return self.value(t, length, current, base, group)  # absolute values: mmengine ignores the current one

    def tail(self, s: int, at_s: float, t: int, length: int | None, base: float, group: int) -> float | None:
        return self.value(t, length, at_s, base, group)

    def absolute(self) -> str | None:
        return "eta_max" if self.eta_max_ratio is None else None


@dataclass(frozen=True)
class PlateauCurve(MMEngineCurve):
    """``ReduceOnPlateauLR``: times ``factor`` (not below ``min_value``) whenever ``monitor`` stops improving.

    Its state (best value, bad epochs, cooldown, reductions) lives in the schedule; the value is the
    starting value reduced once per recorded reduction.
    """

    renamed: ClassVar[Mapping[str, str]] = {"factor_": "factor"}
    monitor: str = "loss"
    rule: str = "less"
    factor_: float = 0.1
    patience: int = 10
    threshold: float = 1e-4
    threshold_rule: str = "rel"
    cooldown: int = 0
    min_value: float | tuple[float, ...] = 0.0
    eps: float = 1e-8

    def problems(self) -> list[Problem]:
        found: list[Problem] = []
        if not isinstance(self.monitor, str) or not self.monitor:
            found.append(Problem(("monitor",), f"must name a metric, got {safe_repr(self.monitor)}", kind="type"))
        if isinstance(self.min_value, tuple):
            found += reals(self.min_value, ("min_value",), low=0.0, meaning="the floor of each group")
        else:
            found += real(self.min_value, ("min_value",), low=0.0, meaning="the floor, or a list of one per group")
        return [
            *found,
            *one_of(self.rule, ("rule",), ("less", "greater")),
            *real(self.factor_, ("factor",), low=0.0, high=1.0, high_open=True, meaning="the factor of a reduction"),
            *integer(self.patience, ("patience",), low=0, high=MAX_STEPS, meaning="a number of epochs"),
            *real(self.threshold, ("threshold",), low=0.0, meaning="the least change that counts"),
            *one_of(self.threshold_rule, ("threshold_rule",), ("rel", "abs")),
            *integer(self.cooldown, ("cooldown",), low=0, high=MAX_STEPS, meaning="a number of epochs"),
            *real(self.eps, ("eps",), low=0.0, meaning="the least reduction that is made"),
        ]

    def value(self, t: int, length: int | None, start: float, base: float, group: int) -> float:
        return start  # the schedule applies the recorded reductions (see ``reduce``)

    def floor(self, group: int) -> float:
        return float(self.min_value[group] if isinstance(self.min_value, tuple) else self.min_value)

    def reduce(self, start: float, group: int, reductions: int) -> float:
        """``start`` after ``reductions`` reductions, each skipped as in mmengine when it changes less than ``eps``."""
        value = start
        for _ in range(reductions):
            new = max(value * self.factor_, self.floor(group))
            if value - new <= self.eps:
                break  # mmengine leaves the value; later reductions would find the same
            value = new
        return value

    def better(self, metric: float, best: float) -> bool:
        if self.rule == "less":
            return metric < (best * (1.0 - self.threshold) if self.threshold_rule == "rel" else best - self.threshold)
        return metric > (best * (1.0 + self.threshold) if self.threshold_rule == "rel" else best + self.threshold)

    def absolute(self) -> str | None:
        floors = self.min_value if isinstance(self.min_value, tuple) else (self.min_value,)
        return "min_value" if any(floors) else None


_STEMS: dict[str, type[MMEngineCurve]] = {
    "Constant": ConstantCurve,
    "Linear": LinearCurve,
    "Exponential": ExponentialCurve,
    "Step": StepCurve,
    "MultiStep": MultiStepCurve,
    "CosineAnnealing": CosineAnnealingCurve,
    "Poly": PolyCurve,
    "CosineRestart": CosineRestartCurve,
    "OneCycle": OneCycleCurve,
    "ReduceOnPlateau": PlateauCurve,
}


def _register() -> None:
    for stem, curve in _STEMS.items():
        what = (curve.__doc__ or stem).split(":", 1)[-1].strip().splitlines()[0]
        entries: list[tuple[str, str | None, str]] = [(f"{stem}LR", "lr", f"learning rate: {what}")]
        if stem != "OneCycle":  # mmengine has no OneCycleMomentum
            entries.append((f"{stem}Momentum", "momentum", f"momentum (Adam's betas[0]): {what}"))
        entries.append((f"{stem}ParamScheduler", None, f"any value (param_name): {what}"))
        for name, param, doc in entries:
            SCHEDULERS.register_module(name=name, module=SchedulerType(name, curve, param, doc))


_register()
