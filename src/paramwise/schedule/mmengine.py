"""``SCHEDULERS``: mmengine's parameter schedulers by their config names, each as a closed-form curve.

Every mmengine scheduler (``LinearLR``, ``CosineAnnealingMomentum``, ``PolyParamScheduler``, ...) is
registered under its config name. An entry is a :class:`SchedulerType`: called with the config's
keyword arguments (checked against mmengine's signature) it returns a :class:`PartConfig`, a value
that says which hyperparameter it changes, over which window, and by which :class:`Curve`.

A curve gives the value at a part's local step ``t`` in closed form, so a schedule's whole state is
its step count. mmengine's schedulers are written recursively (each step multiplies the current
value); the closed forms here are what those recursions telescope to, and the differential tests
check them against mmengine step by step. :mod:`paramwise.schedules` composes parts into one schedule.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from dataclasses import MISSING, dataclass, field, fields, replace
from typing import Any, ClassVar

from paramwise.registry import Registry

__all__ = [
    "INF",
    "SCHEDULERS",
    "ConstantCurve",
    "CosineAnnealingCurve",
    "CosineRestartCurve",
    "Curve",
    "ExponentialCurve",
    "LinearCurve",
    "MultiStepCurve",
    "OneCycleCurve",
    "PartConfig",
    "PlateauCurve",
    "PolyCurve",
    "SchedulerType",
    "StepCurve",
]

#: mmengine's "no end": a part without ``end`` (and no ``max_iters``) runs to step 10**9.
INF = int(1e9)

SCHEDULERS = Registry("scheduler")

# A curve's argument problems: (config key, message), turned into Problems at the config path.
Complaints = list[tuple[str, str]]


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class Curve:
    """How one scheduler changes a value, as a function of its local step ``t`` (0 at its ``begin``).

    ``span`` is the part's window length (``end - begin``, in the part's own units). A curve is
    *homogeneous* when its value is ``v_in * factor(t)``, where ``v_in`` is the value the part
    started from: such parts chain with overlapping ones by multiplication, exactly as mmengine's
    recursive updates compose. Other curves are *anchored* (they set a value that depends on the
    group's base or on absolute numbers), and may not overlap another part on the same value.
    """

    #: arguments counted in steps, multiplied by the epoch length by ``convert_to_iter_based``
    step_fields: ClassVar[tuple[str, ...]] = ()

    def complaints(self, param: str) -> Complaints:
        """What is wrong with this curve's arguments, as (key, message) pairs."""
        return []

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
        return replace(self, **changes)

    def homogeneous(self, span: int) -> bool:
        return True

    def factor(self, t: int, span: int) -> float:
        """The multiplier of the starting value at step ``t`` (homogeneous curves only)."""
        raise NotImplementedError

    def value(self, t: int, v_in: float, base: float, span: int, group: int) -> float:
        """The value at step ``t``: ``v_in`` is the value the part started from, ``base`` the group's initial one."""
        return v_in * self.factor(t, span)

    def absolute(self) -> str | None:
        """The argument that sets one absolute value for every group (it flattens lr_mult ratios), if any."""
        return None


@dataclass(frozen=True)
class ConstantCurve(Curve):
    """``ConstantLR``: ``factor`` until the last step of the window, then 1."""

    factor_: float = 1.0 / 3

    def complaints(self, param: str) -> Complaints:
        if not _is_number(self.factor_) or not 0 <= self.factor_ <= 1:
            return [("factor", f"must be a number between 0 and 1, got {self.factor_!r}")]
        return []

    def factor(self, t: int, span: int) -> float:
        last = span - 1  # mmengine's total_iters: it restores the value at the window's last step
        return self.factor_ if t == 0 or t < last else 1.0


@dataclass(frozen=True)
class LinearCurve(Curve):
    """``LinearLR``: the factor moves linearly from ``start_factor`` to ``end_factor`` over the window."""

    start_factor: float = 1.0 / 3
    end_factor: float = 1.0

    def complaints(self, param: str) -> Complaints:
        found = []
        for key in ("start_factor", "end_factor"):
            value = getattr(self, key)
            if not _is_number(value) or not 0 <= value <= 1:
                found.append((key, f"must be a number between 0 and 1, got {value!r}"))
        return found

    def factor(self, t: int, span: int) -> float:
        last = span - 1
        if t == 0 or last <= 0:
            return self.start_factor
        return self.start_factor + (self.end_factor - self.start_factor) * min(t, last) / last


@dataclass(frozen=True)
class ExponentialCurve(Curve):
    """``ExponentialLR``: ``gamma ** t``."""

    gamma: float

    def complaints(self, param: str) -> Complaints:
        return [] if _is_number(self.gamma) else [("gamma", f"must be a number, got {self.gamma!r}")]

    def factor(self, t: int, span: int) -> float:
        return float(self.gamma**t)


@dataclass(frozen=True)
class StepCurve(Curve):
    """``StepLR``: ``gamma ** (t // step_size)``."""

    step_fields: ClassVar[tuple[str, ...]] = ("step_size",)
    step_size: int
    gamma: float = 0.1

    def complaints(self, param: str) -> Complaints:
        if not isinstance(self.step_size, int) or isinstance(self.step_size, bool) or self.step_size <= 0:
            return [("step_size", f"must be a positive integer, got {self.step_size!r}")]
        return []

    def factor(self, t: int, span: int) -> float:
        return float(self.gamma ** (t // self.step_size))


@dataclass(frozen=True)
class MultiStepCurve(Curve):
    """``MultiStepLR``: times ``gamma`` at each milestone (counted from the part's ``begin``, as in mmengine)."""

    step_fields: ClassVar[tuple[str, ...]] = ("milestones",)
    milestones: tuple[int, ...]
    gamma: float = 0.1

    def complaints(self, param: str) -> Complaints:
        if not all(_is_number(m) for m in self.milestones):
            return [("milestones", f"must be a list of step numbers, got {list(self.milestones)!r}")]
        return []

    def factor(self, t: int, span: int) -> float:
        return float(self.gamma ** sum(1 for m in self.milestones if m <= t))


def _cosine(t: float, period: float) -> float:
    return (1 + math.cos(math.pi * t / period)) / 2


def _eta_min_complaints(eta_min: float | None, eta_min_ratio: float | None, *, required: bool) -> Complaints:
    if eta_min is not None and eta_min_ratio is not None:
        return [("eta_min_ratio", "give eta_min (one value for every group) or eta_min_ratio (a fraction of "
                                  "each group's initial value), not both")]
    if required and eta_min is None and eta_min_ratio is None:
        return [("eta_min", "give eta_min or eta_min_ratio (mmengine requires one of them here)")]
    for key, value in (("eta_min", eta_min), ("eta_min_ratio", eta_min_ratio)):
        if value is not None and not _is_number(value):
            return [(key, f"must be a number, got {value!r}")]
    return []


@dataclass(frozen=True)
class CosineAnnealingCurve(Curve):
    """``CosineAnnealingLR``: half a cosine from the starting value to ``eta_min`` over ``T_max`` steps.

    Past ``T_max`` the cosine continues periodically with the group's base value as its top, as
    mmengine's recursion does.
    """

    step_fields: ClassVar[tuple[str, ...]] = ("T_max",)
    T_max: int | None = None
    eta_min: float | None = None
    eta_min_ratio: float | None = None

    def complaints(self, param: str) -> Complaints:
        found = _eta_min_complaints(self.eta_min, self.eta_min_ratio, required=False)
        if self.T_max is not None and (not _is_number(self.T_max) or self.T_max < 0):
            found.append(("T_max", f"must be a positive number of steps, got {self.T_max!r}"))
        return found

    def period(self, span: int) -> float:
        return self.T_max or span  # mmengine: `T_max or (end - begin)`

    def _zero_floor(self) -> bool:
        return not self.eta_min and not self.eta_min_ratio

    def homogeneous(self, span: int) -> bool:
        return self._zero_floor() and span <= self.period(span) + 1

    def factor(self, t: int, span: int) -> float:
        return _cosine(t, self.period(span))

    def value(self, t: int, v_in: float, base: float, span: int, group: int) -> float:
        if t == 0:
            return v_in
        floor = base * self.eta_min_ratio if self.eta_min_ratio is not None else self.eta_min or 0.0
        period = self.period(span)
        top = v_in if t <= period else base  # past T_max mmengine restarts from the base value
        return floor + (top - floor) * _cosine(t, period)

    def absolute(self) -> str | None:
        return "eta_min" if self.eta_min else None


@dataclass(frozen=True)
class PolyCurve(Curve):
    """``PolyLR``: ``eta_min + (start - eta_min) * (1 - t / (span - 1)) ** power``.

    ``eta_min_ratio`` is a paramwise extension (mmengine's PolyLR has only the absolute ``eta_min``).
    """

    eta_min: float = 0.0
    power: float = 1.0
    eta_min_ratio: float | None = None

    def complaints(self, param: str) -> Complaints:
        found = _eta_min_complaints(self.eta_min or None, self.eta_min_ratio, required=False)
        if not _is_number(self.power):
            found.append(("power", f"must be a number, got {self.power!r}"))
        return found

    def homogeneous(self, span: int) -> bool:
        return not self.eta_min and not self.eta_min_ratio

    def factor(self, t: int, span: int) -> float:
        last = span - 1
        return 1.0 if t == 0 else float(((last - t) / last) ** self.power)

    def value(self, t: int, v_in: float, base: float, span: int, group: int) -> float:
        if t == 0:
            return v_in
        floor = base * self.eta_min_ratio if self.eta_min_ratio is not None else self.eta_min
        return floor + (v_in - floor) * self.factor(t, span)

    def absolute(self) -> str | None:
        return "eta_min" if self.eta_min else None


@dataclass(frozen=True)
class CosineRestartCurve(Curve):
    """``CosineRestartLR``: cosine cycles of the given ``periods``; cycle i starts at base x ``restart_weights[i]``."""

    step_fields: ClassVar[tuple[str, ...]] = ("periods",)
    periods: tuple[int, ...]
    restart_weights: tuple[float, ...] = (1,)
    eta_min: float | None = None
    eta_min_ratio: float | None = None

    def complaints(self, param: str) -> Complaints:
        found = _eta_min_complaints(self.eta_min, self.eta_min_ratio, required=True)
        if not self.periods or not all(_is_number(p) and p > 0 for p in self.periods):
            found.append(("periods", f"must be a non-empty list of positive step counts, got {list(self.periods)!r}"))
        elif len(self.periods) != len(self.restart_weights):
            found.append(("restart_weights", f"needs one weight per period: {len(self.periods)} periods, "
                                             f"{len(self.restart_weights)} weights"))
        return found

    def homogeneous(self, span: int) -> bool:
        return False

    def value(self, t: int, v_in: float, base: float, span: int, group: int) -> float:
        t = min(t, sum(self.periods) - 1)  # past the last cycle mmengine leaves the value as it is
        start, cycle = 0, 0
        while t >= start + self.periods[cycle]:
            start += self.periods[cycle]
            cycle += 1
        period, weight = self.periods[cycle], self.restart_weights[cycle]
        floor = base * self.eta_min_ratio if self.eta_min_ratio is not None else self.eta_min or 0.0
        top = base * weight
        s = t - start
        return top if s == 0 else floor + (top - floor) * _cosine(s, period)

    def absolute(self) -> str | None:
        return "eta_min" if self.eta_min else None


@dataclass(frozen=True)
class OneCycleCurve(Curve):
    """``OneCycleLR``: up from ``eta_max / div_factor`` to ``eta_max``, then down to ``initial / final_div_factor``.

    mmengine's values are absolute: a scalar ``eta_max`` gives every group the same peak (a list
    gives one per group). ``eta_max_ratio`` (a paramwise extension) makes the peak each group's
    initial value times the ratio, so lr_mult ratios hold.
    """

    step_fields: ClassVar[tuple[str, ...]] = ("total_steps",)
    eta_max: float | tuple[float, ...] = 0.0
    total_steps: int | None = None
    pct_start: float = 0.3
    anneal_strategy: str = "cos"
    div_factor: float = 25.0
    final_div_factor: float = 1e4
    three_phase: bool = False
    eta_max_ratio: float | None = None

    def complaints(self, param: str) -> Complaints:
        found: Complaints = []
        if param != "lr":
            found.append(("type", f"OneCycle schedules only the learning rate (as in mmengine), not {param!r}"))
        if self.total_steps is not None and (not isinstance(self.total_steps, int) or self.total_steps <= 0):
            found.append(("total_steps", f"must be a positive integer, got {self.total_steps!r}"))
        if not _is_number(self.pct_start) or not 0 <= self.pct_start <= 1:
            found.append(("pct_start", f"must be a number between 0 and 1, got {self.pct_start!r}"))
        if self.anneal_strategy not in ("cos", "linear"):
            found.append(("anneal_strategy", f"must be 'cos' or 'linear', got {self.anneal_strategy!r}"))
        if self.eta_max_ratio is not None and self.eta_max:
            found.append(("eta_max_ratio", "give eta_max (absolute) or eta_max_ratio (of each group's initial "
                                           "value), not both"))
        return found

    def total(self, span: int) -> int:
        return self.total_steps if self.total_steps is not None else span

    def phases(self, span: int) -> list[tuple[float, str, str]]:
        total = self.total(span)
        if self.three_phase:
            return [(float(self.pct_start * total) - 1, "initial", "max"),
                    (float(2 * self.pct_start * total) - 2, "max", "initial"),
                    (total - 1, "initial", "min")]
        return [(float(self.pct_start * total) - 1, "initial", "max"), (total - 1, "max", "min")]

    def homogeneous(self, span: int) -> bool:
        return False

    def peak(self, base: float, group: int) -> float:
        if self.eta_max_ratio is not None:
            return base * self.eta_max_ratio
        if isinstance(self.eta_max, tuple):
            return float(self.eta_max[group])
        return float(self.eta_max)

    def value(self, t: int, v_in: float, base: float, span: int, group: int) -> float:
        top = self.peak(base, group)
        levels = {"max": top, "initial": top / self.div_factor}
        levels["min"] = levels["initial"] / self.final_div_factor
        start = 0.0
        phases = self.phases(span)
        for i, (end, first, last) in enumerate(phases):
            if t <= end or i == len(phases) - 1:
                pct = (t - start) / (end - start)
                a, b = levels[first], levels[last]
                if self.anneal_strategy == "cos":
                    return b + (a - b) / 2.0 * (math.cos(math.pi * pct) + 1)
                return (b - a) * pct + a
            start = end
        raise AssertionError("unreachable: the last phase always answers")

    def absolute(self) -> str | None:
        return "eta_max" if self.eta_max_ratio is None else None


@dataclass(frozen=True)
class PlateauCurve(Curve):
    """``ReduceOnPlateauLR``: times ``factor`` (not below ``min_value``) whenever ``monitor`` stops improving.

    Its state (best value, bad epochs, cooldown, reductions) lives in the schedule; the value is the
    starting value reduced once per recorded reduction.
    """

    monitor: str = "loss"
    rule: str = "less"
    factor_: float = 0.1
    patience: int = 10
    threshold: float = 1e-4
    threshold_rule: str = "rel"
    cooldown: int = 0
    min_value: float | tuple[float, ...] = 0.0
    eps: float = 1e-8

    def complaints(self, param: str) -> Complaints:
        found: Complaints = []
        if not _is_number(self.factor_) or self.factor_ >= 1.0:
            found.append(("factor", f"must be a number below 1.0, got {self.factor_!r}"))
        if self.rule not in ("less", "greater"):
            found.append(("rule", f"must be 'less' or 'greater', got {self.rule!r}"))
        if self.threshold_rule not in ("rel", "abs"):
            found.append(("threshold_rule", f"must be 'rel' or 'abs', got {self.threshold_rule!r}"))
        if not _is_number(self.threshold) or self.threshold < 0:
            found.append(("threshold", f"must be a number >= 0, got {self.threshold!r}"))
        return found

    def floor(self, group: int) -> float:
        return float(self.min_value[group] if isinstance(self.min_value, tuple) else self.min_value)

    def reduce(self, v_in: float, group: int, reductions: int) -> float:
        """``v_in`` after ``reductions`` reductions, each skipped as in mmengine when it changes less than ``eps``."""
        value = v_in
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
    complaints: tuple[tuple[str, str], ...] = field(default=(), compare=False)


# mmengine's arguments common to every scheduler, in its order; `verbose` is accepted and ignored
_COMMON = (("begin", 0), ("end", INF), ("by_epoch", True), ("convert_to_iter_based", False), ("verbose", False))
# curve field -> config key, where the config key would shadow a method name
_RENAMED = {"factor_": "factor"}
# config values that arrive as lists and are kept as tuples (curves are frozen)
_TUPLES = {"milestones", "periods", "restart_weights", "eta_max", "min_value"}


class SchedulerType:
    """A registry entry: mmengine's scheduler ``name``, building a :class:`PartConfig` from config keywords.

    Its ``__signature__`` is mmengine's (without ``optimizer``), so the registry's argument checks and
    did-you-mean work on it as on any class.
    """

    def __init__(self, name: str, curve: type[Curve], param: str | None, doc: str) -> None:
        self.__name__ = self.__qualname__ = name
        self.__module__ = __name__
        self.__doc__ = doc
        self.curve = curve
        self.param = param  # None: the generic ...ParamScheduler form, which takes param_name
        params = []
        if param is None:
            params.append(inspect.Parameter("param_name", inspect.Parameter.KEYWORD_ONLY))
        for f in fields(curve):
            if f.init:
                default = inspect.Parameter.empty if f.default is MISSING else f.default
                params.append(inspect.Parameter(_RENAMED.get(f.name, f.name), inspect.Parameter.KEYWORD_ONLY,
                                                default=default))
        params += [inspect.Parameter(k, inspect.Parameter.KEYWORD_ONLY, default=d) for k, d in _COMMON]
        self.__signature__ = inspect.Signature(params)

    def accepted(self) -> list[str]:
        return list(self.__signature__.parameters)

    def __call__(self, **kwargs: Any) -> PartConfig:
        param = kwargs.pop("param_name", None) if self.param is None else self.param
        common = {k: kwargs.pop(k, d) for k, d in _COMMON}
        curve_args = {}
        inverse = {v: k for k, v in _RENAMED.items()}
        for key, value in kwargs.items():
            if key in _TUPLES and isinstance(value, Sequence) and not isinstance(value, str):
                value = tuple(value)
            curve_args[inverse.get(key, key)] = value
        curve = self.curve(**curve_args)
        end = common["end"]
        return PartConfig(
            type_name=self.__name__,
            param=str(param),
            curve=curve,
            begin=common["begin"],
            end=None if end == INF else end,
            by_epoch=common["by_epoch"],
            convert_to_iter_based=common["convert_to_iter_based"],
            complaints=tuple(curve.complaints(str(param))),
        )

    def __repr__(self) -> str:
        return f"<scheduler {self.__name__}>"


_STEMS: dict[str, type[Curve]] = {
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


def _register(register: Callable[..., Any]) -> None:
    for stem, curve in _STEMS.items():
        what = (curve.__doc__ or stem).split(":", 1)[-1].strip().splitlines()[0]
        register(name=f"{stem}LR", module=SchedulerType(f"{stem}LR", curve, "lr", f"learning rate: {what}"))
        if stem != "OneCycle":  # mmengine has no OneCycleMomentum
            register(name=f"{stem}Momentum",
                     module=SchedulerType(f"{stem}Momentum", curve, "momentum", f"momentum (Adam's betas[0]): {what}"))
        register(name=f"{stem}ParamScheduler",
                 module=SchedulerType(f"{stem}ParamScheduler", curve, None, f"any value (param_name): {what}"))


_register(SCHEDULERS.register_module)
