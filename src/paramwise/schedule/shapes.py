"""Modern schedule shapes as pure math: warmup-stable-decay, cosine with a floor, inverse sqrt, timm's cycles.

A shape answers one question: by what factor is a parameter group's *initial* value multiplied at
step ``t`` of a schedule part (``t = 0`` where the part begins)? Every group is scaled by the same
factor, so the ratios between groups (``lr_mult``, layer decay, width scaling) hold at every step,
and a floor is a ratio (``min_ratio``), never an absolute lr that would flatten them.

The formulas are closed-form and stateless: the value at step ``t`` depends on ``t`` and the part's
length only, so a resumed schedule continues exactly. Each one reproduces a published function
(Hugging Face ``transformers.optimization``, torchtitan's ``linear_warmup_stable_decay``, timm's
``CosineLRScheduler``) value for value; ``docs/schedule_shapes.md`` says which option gives which.

Owns: :class:`ScheduleShape` (a :class:`~paramwise.schedule.curve.Curve` whose value is the group's
base value times ``factor``) and the shapes, registered in ``SCHEDULERS`` under their config names
and the libraries' names. Each checks its arguments on construction (``problems()``, with
:mod:`paramwise.checks`; one ``ConfigError`` with every problem, each at its key). Problems that
depend on the part's length (a warmup longer than the part, a length needed but unknown) come from
``total_problems(total)``, which ``factor`` also raises.

May import: the base (errors, suggestions, checks, registry) and :mod:`paramwise.schedule.curve`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from paramwise.checks import boolean, integer, one_of, real
from paramwise.errors import ConfigError, Problem
from paramwise.schedule.curve import MAX_BOUNDARIES, MAX_STEPS, SCHEDULERS, Curve, SchedulerType

__all__ = [
    "CosineCycleLR",
    "CosineWithMinLR",
    "InverseSqrtLR",
    "ScheduleShape",
    "WarmupStableDecayLR",
]

#: HF's ``get_wsd_schedule`` spellings; torchtitan's ``'sqrt'`` decay is HF's ``'1-sqrt'``.
WARMUP_TYPES = ("linear", "cosine", "1-sqrt")
DECAY_TYPES = ("linear", "cosine", "1-sqrt", "sqrt")
WSD_CONVENTIONS = ("huggingface", "torchtitan")

# HF's get_inverse_sqrt_schedule: timescale defaults to the warmup, or to this without one
_DEFAULT_TIMESCALE = 10_000


def _steps(value: object, key: str, *, minimum: int = 0, optional: bool = False) -> list[Problem]:
    """A count of steps: a whole number >= ``minimum`` (None too when ``optional``)."""
    return integer(value, (key,), low=minimum, high=MAX_STEPS, optional=optional, meaning="a number of steps")


# ------------------------------------------------------------------------------------ curves
def _warmup_curve(kind: str, progress: float) -> float:
    """Rise from 0 at progress 0 to 1 at progress 1 (HF ``get_wsd_schedule``'s warmup types)."""
    if kind == "cosine":
        return 0.5 * (1.0 - math.cos(math.pi * progress))
    if kind == "1-sqrt":
        return 1.0 - math.sqrt(1.0 - progress)
    return progress


def _decay_curve(kind: str, progress: float, num_cycles: float) -> float:
    """Fall from 1 at progress 0 to 0 at progress 1 (for cosine: with ``num_cycles=0.5``).

    The cosine is written as HF writes it, ``pi * num_cycles * 2.0 * progress``: with 0.5 cycles
    that product is exactly torchtitan's ``pi * progress`` (scaling by powers of two is exact).
    """
    if kind == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * float(num_cycles) * 2.0 * progress))
    if kind in ("1-sqrt", "sqrt"):
        return 1.0 - math.sqrt(progress)
    return 1.0 - progress


def _lift(curve: float, floor: float) -> float:
    """Map a 0..1 curve onto floor..1, in HF's order of operations (so values agree to the bit)."""
    return max(0.0, curve * (1.0 - floor) + floor)


# ------------------------------------------------------------------------------------ the base
@dataclass(frozen=True)
class ScheduleShape(Curve):
    """A curve whose value is the group's base value times ``factor(t, total)``: see the module doc.

    Subclasses are frozen dataclasses; they list their argument problems in ``problems``, implement
    ``_factor`` and, when they need the part's length, say so in ``needs_total`` and check it in
    ``total_problems``. At and after the part's end a shape holds ``factor(total, total)``, its
    formula's value at the end (the floor of a decay), not the last value inside the part.
    """

    settles_at_end: ClassVar[bool] = True

    def factor(self, t: int, total: int | None) -> float:
        """The multiplier of each group's initial value at step ``t >= 0`` of a part of ``total`` steps.

        Raises ``ConfigError`` when ``total_problems(total)`` finds any.
        """
        found = self.total_problems(total)
        if found:
            raise ConfigError(found, title=f"cannot run {type(self).__name__} over this part")
        return self._factor(t, total)

    def _factor(self, t: int, total: int | None) -> float:
        """``factor`` once ``total`` is known to fit."""
        raise NotImplementedError

    def value(self, t: int, length: int | None, start: float, base: float, group: int) -> float:
        return base * float(self.factor(t, length))


# --------------------------------------------------------------------- warmup, stable, decay
@dataclass(frozen=True)
class WarmupStableDecayLR(ScheduleShape):
    """Warmup, a stable phase at the full value, then a decay to ``min_ratio``: HF's and torchtitan's WSD.

    The decay's length is ``decay_steps``, or ``round(decay_ratio * total)`` (torchtitan's
    ``decay_ratio``: cut to what the warmup leaves, as torchtitan does), or by default everything
    after the warmup and ``stable_steps``. The decay starts ``stable_steps`` after the warmup, or,
    without ``stable_steps``, so that it ends with the part. With both ``stable_steps`` and
    ``decay_steps`` the shape needs no length (HF's ``num_stable_steps``); after the decay it holds
    ``min_ratio``.

    Args:
        warmup_steps: steps of warmup (HF ``num_warmup_steps``, torchtitan ``warmup_steps``).
        decay_steps: steps of decay (HF ``num_decay_steps``).
        decay_ratio: the decay's share of the part, in [0, 1] (torchtitan ``decay_ratio``).
        stable_steps: steps at the full value after the warmup (HF ``num_stable_steps``).
        warmup_type: ``'linear'``, ``'cosine'`` or ``'1-sqrt'`` (HF ``warmup_type``).
        decay_type: ``'linear'``, ``'cosine'`` or ``'1-sqrt'`` (``'sqrt'``, torchtitan's name, is the same).
        min_ratio: the decay's floor as a ratio of the initial value (HF ``min_lr_ratio``,
            torchtitan ``min_lr_factor``).
        num_cycles: waves of the cosine decay; 0.5 is a half cosine from 1 to the floor (HF ``num_cycles``).
        warmup_start_ratio: the factor the warmup rises from; None takes the convention's:
            ``min_ratio`` for ``'huggingface'``, 0 for ``'torchtitan'``.
        convention: how the warmup counts steps. ``'huggingface'``: step ``t`` has progress
            ``t / warmup_steps`` (the first step at the start value, the full value first reached
            after the warmup). ``'torchtitan'``: progress ``(t + 1) / warmup_steps`` (the first step
            already above zero, the last warmup step at the full value). The decay is the same in both.
    """

    warmup_steps: int = 0
    decay_steps: int | None = None
    decay_ratio: float | None = None
    stable_steps: int | None = None
    warmup_type: str = "linear"
    decay_type: str = "linear"
    min_ratio: float = 0.0
    num_cycles: float = 0.5
    warmup_start_ratio: float | None = None
    convention: str = "huggingface"

    total_reason: ClassVar[str] = "to place its decay (decay_ratio, or a decay that ends with the part)"
    total_alternative: ClassVar[str] = "; or give both stable_steps and decay_steps, which need no length"

    def problems(self) -> list[Problem]:
        found = [
            *_steps(self.warmup_steps, "warmup_steps"),
            *_steps(self.decay_steps, "decay_steps", optional=True),
            *real(self.decay_ratio, ("decay_ratio",), low=0.0, high=1.0, optional=True,
                         meaning="the decay's share of the part"),
            *_steps(self.stable_steps, "stable_steps", optional=True),
            *one_of(self.warmup_type, ("warmup_type",), WARMUP_TYPES),
            *one_of(self.decay_type, ("decay_type",), DECAY_TYPES),
            *real(self.min_ratio, ("min_ratio",), low=0.0, high=1.0, meaning="a ratio of the initial value"),
            *real(self.num_cycles, ("num_cycles",), low=0.0, low_open=True),
            *real(self.warmup_start_ratio, ("warmup_start_ratio",), low=0.0, high=1.0, optional=True,
                         meaning="a ratio of the initial value"),
            *one_of(self.convention, ("convention",), WSD_CONVENTIONS),
        ]
        if self.decay_steps is not None and self.decay_ratio is not None:
            found.append(Problem(("decay_ratio",), "give decay_steps or decay_ratio, not both "
                                 f"(got decay_steps={self.decay_steps!r} and decay_ratio={self.decay_ratio!r})"))
        return found

    def needs_total(self) -> bool:
        return self.stable_steps is None or self.decay_steps is None

    def _layout(self, total: int | None) -> tuple[int, int, list[Problem]]:
        """``(decay_start, decay_steps, problems)`` for a part of ``total`` steps (known when needed)."""
        warmup = self.warmup_steps
        found: list[Problem] = []
        if total is not None and warmup > total:
            found.append(Problem(("warmup_steps",), f"{warmup} warmup steps do not fit in the part's {total} steps"))
            return 0, 0, found
        if self.decay_steps is not None:
            decay = self.decay_steps
        elif self.decay_ratio is not None:
            assert total is not None
            # torchtitan rounds (Python's round: halves to even) and cuts the decay to what the warmup leaves
            decay = min(round(total * self.decay_ratio), total - warmup)
        elif self.stable_steps is not None:
            assert total is not None
            decay = total - warmup - self.stable_steps
            if decay < 0:
                found.append(Problem(("stable_steps",), f"warmup_steps + stable_steps = {warmup + self.stable_steps} "
                                     f"do not fit in the part's {total} steps"))
        else:
            assert total is not None
            decay = total - warmup  # torchtitan without decay_ratio; HF with num_stable_steps=0
        if self.stable_steps is not None:
            start = warmup + self.stable_steps
        else:
            assert total is not None
            start = total - decay
            if start < warmup:
                found.append(Problem(("decay_steps",), f"warmup_steps + decay_steps = {warmup + decay} do not fit in "
                                     f"the part's {total} steps; shorten one, or give decay_ratio (cut to fit)"))
        if not found and total is not None and start + decay > total:
            found.append(Problem(("stable_steps",), f"warmup_steps + stable_steps + decay_steps = {start + decay} "
                                 f"exceed the part's {total} steps: the decay would be cut off before min_ratio"))
        return start, decay, found

    def total_problems(self, total: int | None) -> list[Problem]:
        found = super().total_problems(total)
        if found:
            return found
        return self._layout(total)[2]

    def _factor(self, t: int, total: int | None) -> float:
        warmup = self.warmup_steps
        if t < warmup:
            torchtitan = self.convention == "torchtitan"
            progress = float(t + 1 if torchtitan else t) / float(warmup)
            start = self.warmup_start_ratio
            if start is None:
                start = 0.0 if torchtitan else self.min_ratio
            return _lift(_warmup_curve(self.warmup_type, progress), start)
        decay_start, decay, _ = self._layout(total)
        if t < decay_start:
            return 1.0
        if t < decay_start + decay:
            progress = float(t - decay_start) / float(decay)
            return _lift(_decay_curve(self.decay_type, progress, self.num_cycles), self.min_ratio)
        return float(self.min_ratio)

    def _boundaries(self, total: int | None) -> list[int]:
        start, decay, _ = self._layout(total)
        return [self.warmup_steps, start, start + decay]


# ---------------------------------------------------------------------- cosine with a floor
@dataclass(frozen=True)
class CosineWithMinLR(ScheduleShape):
    """Linear warmup, then a cosine from 1 to ``min_ratio`` over the rest of the part (HF's cosine_with_min_lr).

    ``get_cosine_with_min_lr_schedule_with_warmup`` with ``min_lr_rate=min_ratio``; with
    ``min_ratio=0`` it is ``get_cosine_schedule_with_warmup``. After the part's end the value holds
    what the formula reaches at the end (HF's would go on along the cosine).

    Args:
        warmup_steps: steps of linear warmup from ``warmup_start_ratio`` (HF ``num_warmup_steps``).
        num_cycles: waves of the cosine; 0.5 is a half cosine from 1 to the floor (HF ``num_cycles``).
        min_ratio: the floor as a ratio of the initial value (HF ``min_lr_rate``).
        warmup_start_ratio: the factor at step 0; HF's is 0.
    """

    warmup_steps: int = 0
    num_cycles: float = 0.5
    min_ratio: float = 0.0
    warmup_start_ratio: float = 0.0

    total_reason: ClassVar[str] = "(its cosine spans the steps after the warmup)"

    def problems(self) -> list[Problem]:
        return [
            *_steps(self.warmup_steps, "warmup_steps"),
            *real(self.num_cycles, ("num_cycles",), low=0.0, low_open=True),
            *real(self.min_ratio, ("min_ratio",), low=0.0, high=1.0, meaning="a ratio of the initial value"),
            *real(self.warmup_start_ratio, ("warmup_start_ratio",), low=0.0, high=1.0,
                         meaning="a ratio of the initial value"),
        ]

    def needs_total(self) -> bool:
        return True

    def total_problems(self, total: int | None) -> list[Problem]:
        found = super().total_problems(total)
        if not found and total is not None and self.warmup_steps > total:
            found.append(Problem(("warmup_steps",),
                                 f"{self.warmup_steps} warmup steps do not fit in the part's {total} steps"))
        return found

    def _factor(self, t: int, total: int | None) -> float:
        assert total is not None
        warmup = self.warmup_steps
        if t < warmup:
            return _lift(float(t) / float(max(1, warmup)), self.warmup_start_ratio)
        t = min(t, total)
        progress = float(t - warmup) / float(max(1, total - warmup))
        return _lift(_decay_curve("cosine", progress, self.num_cycles), self.min_ratio)

    def _boundaries(self, total: int | None) -> list[int]:
        return [self.warmup_steps]  # the peak, where the cosine starts; the floor is at ``total``


# --------------------------------------------------------------------------- inverse sqrt
@dataclass(frozen=True)
class InverseSqrtLR(ScheduleShape):
    """Linear warmup from 0, then ``1 / sqrt((t + timescale - warmup_steps) / timescale)`` (HF's inverse_sqrt).

    ``get_inverse_sqrt_schedule``: the factor is 1 when the warmup ends and falls as the inverse
    square root of the steps since, measured in ``timescale`` steps. Open-ended: needs no length.

    Args:
        warmup_steps: steps of linear warmup (HF ``num_warmup_steps``).
        timescale: the decay's time scale in steps; None: ``warmup_steps``, or 10,000 without a warmup (as HF).
    """

    warmup_steps: int = 0
    timescale: int | None = None

    def problems(self) -> list[Problem]:
        return [
            *_steps(self.warmup_steps, "warmup_steps"),
            *_steps(self.timescale, "timescale", minimum=1, optional=True),
        ]

    @property
    def resolved_timescale(self) -> int:
        """The timescale in use: the given one, else the warmup, else 10,000."""
        return self.timescale if self.timescale is not None else (self.warmup_steps or _DEFAULT_TIMESCALE)

    def _factor(self, t: int, total: int | None) -> float:
        warmup = self.warmup_steps
        if t < warmup:
            return float(t) / float(max(1, warmup))
        timescale = self.resolved_timescale
        shift = timescale - warmup  # HF's order of operations, for equal bits
        return 1.0 / math.sqrt((t + shift) / timescale)

    def _boundaries(self, total: int | None) -> list[int]:
        return [self.warmup_steps]


# ------------------------------------------------------------------ timm's cosine with cycles
@dataclass(frozen=True)
class CosineCycleLR(ScheduleShape):
    """timm's ``CosineLRScheduler``: cosine cycles that lengthen, shrink and stop, with k-decay and warmup.

    Cycle ``i`` lasts ``cycle_steps * cycle_mul**i`` steps and peaks at ``cycle_decay**i``; within it
    the factor is ``min_ratio + (peak - min_ratio) * (1 + cos(pi * tc**k / Ti**k)) / 2``. After
    ``cycle_limit`` cycles it stays at ``min_ratio``. Values are timm's for a group whose initial lr is
    1, so timm's absolute ``lr_min`` and ``warmup_lr_init`` become ratios of each group's own value:
    ``min_ratio = lr_min / lr``, ``warmup_start_ratio = warmup_lr_init / lr``.

    Args:
        cycle_steps: the first cycle's length (timm ``t_initial``); None: the part's length, less
            the warmup when ``warmup_prefix``, so one cycle ends with the part.
        min_ratio: the floor as a ratio of the initial value (timm ``lr_min``, absolute there).
        cycle_mul: each cycle's length over the previous one's (timm ``cycle_mul``).
        cycle_decay: each cycle's peak over the previous one's (timm ``cycle_decay``).
        cycle_limit: how many cycles run before the floor holds (timm ``cycle_limit``).
        warmup_steps: steps of linear warmup (timm ``warmup_t``).
        warmup_start_ratio: the factor at step 0 (timm ``warmup_lr_init``, absolute there).
        warmup_prefix: if true the cycles start after the warmup; if false (timm's default) they are
            counted from step 0, so the warmup replaces the first steps of the first cycle.
        k_decay: the k of k-decay (timm ``k_decay``); 1 is a plain cosine.
    """

    cycle_steps: int | None = None
    min_ratio: float = 0.0
    cycle_mul: float = 1.0
    cycle_decay: float = 1.0
    cycle_limit: int = 1
    warmup_steps: int = 0
    warmup_start_ratio: float = 0.0
    warmup_prefix: bool = False
    k_decay: float = 1.0

    total_reason: ClassVar[str] = "(without cycle_steps, one cycle spans the part)"
    total_alternative: ClassVar[str] = "; or set cycle_steps"

    def problems(self) -> list[Problem]:
        return [
            *_steps(self.cycle_steps, "cycle_steps", minimum=1, optional=True),
            *real(self.min_ratio, ("min_ratio",), low=0.0, high=1.0, meaning="a ratio of the initial value"),
            *real(self.cycle_mul, ("cycle_mul",), low=0.0, low_open=True),
            *real(self.cycle_decay, ("cycle_decay",), low=0.0, high=1.0, low_open=True,
                         meaning="a peak never rises above the previous one"),
            *_steps(self.cycle_limit, "cycle_limit", minimum=1),
            *_steps(self.warmup_steps, "warmup_steps"),
            *real(self.warmup_start_ratio, ("warmup_start_ratio",), low=0.0, high=1.0,
                         meaning="a ratio of the initial value"),
            *boolean(self.warmup_prefix, ("warmup_prefix",)),
            *real(self.k_decay, ("k_decay",), low=0.0, low_open=True),
        ]

    def needs_total(self) -> bool:
        return self.cycle_steps is None

    def _cycle_steps(self, total: int | None) -> int:
        if self.cycle_steps is not None:
            return self.cycle_steps
        assert total is not None
        return total - self.warmup_steps if self.warmup_prefix else total

    def total_problems(self, total: int | None) -> list[Problem]:
        found = super().total_problems(total)
        if not found and self.cycle_steps is None and self._cycle_steps(total) < 1:
            found.append(Problem(("cycle_steps",), f"is unset, and the part's {total} steps leave no room for a cycle "
                                 f"after {self.warmup_steps} warmup steps; set cycle_steps or lengthen the part"))
        return found

    def _factor(self, t: int, total: int | None) -> float:
        warmup = self.warmup_steps
        if t < warmup:
            return self.warmup_start_ratio + t * ((1.0 - self.warmup_start_ratio) / warmup)  # timm's order
        if self.warmup_prefix:
            t = t - warmup
        first = self._cycle_steps(total)
        mul = self.cycle_mul
        if mul != 1:
            # timm's closed form of "which cycle holds t" for geometric cycle lengths
            arg = 1 - t / first * (1 - mul)
            if arg <= 0:  # cycle_mul < 1: past the end of infinitely many ever shorter cycles (timm fails here)
                return float(self.min_ratio)
            i = math.floor(math.log(arg, mul))
            length = mul**i * first
            into = t - (1 - mul**i) / (1 - mul) * first
        else:
            i = t // first
            length = first
            into = t - (first * i)
        if i >= self.cycle_limit:
            return float(self.min_ratio)
        into = max(into, 0.0)  # rounding at a boundary must not make a fractional power of a negative number
        peak = self.cycle_decay**i
        k = self.k_decay
        return self.min_ratio + 0.5 * (peak - self.min_ratio) * (1 + math.cos(math.pi * into**k / length**k))

    def _boundaries(self, total: int | None) -> list[int]:
        offset = self.warmup_steps if self.warmup_prefix else 0
        steps = [self.warmup_steps]
        start, length = 0.0, float(self._cycle_steps(total))
        for _ in range(min(self.cycle_limit, MAX_BOUNDARIES)):
            start += length
            step = offset + math.ceil(start)
            if total is not None and step > total:
                break
            steps.append(step)
            length *= self.cycle_mul
            if length < 1:  # cycles shorter than a step: the rest are within a step of each other
                break
        return steps


def _register() -> None:
    shapes: list[tuple[type[ScheduleShape], str]] = [
        (WarmupStableDecayLR, "warmup_stable_decay"),
        (CosineWithMinLR, "cosine_with_min_lr"),
        (InverseSqrtLR, "inverse_sqrt"),
        (CosineCycleLR, "CosineLRScheduler"),
    ]
    for shape, alias in shapes:
        doc = (shape.__doc__ or "").strip().splitlines()[0]
        SCHEDULERS.register_module(name=[shape.__name__, alias],
                                   module=SchedulerType(shape.__name__, shape, None, f"any value (param_name): {doc}"))


_register()
