"""Schedule shapes: closed-form values, the published formulas, properties, and argument problems.

Expected values come from hand arithmetic or from the reference formulas below, transcribed from
the libraries' own code (Hugging Face ``transformers/optimization.py``, torchtitan's
``components/lr_scheduler.py``, timm's ``scheduler/cosine_lr.py``), never from paramwise's code.
The references keep the libraries' order of operations, so the comparisons are exact (``==``).
When ``transformers`` or ``timm`` is installed, the libraries themselves are compared too.
"""

from __future__ import annotations

import inspect
import itertools
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paramwise.errors import BuildArgumentError, ConfigError
from paramwise.registry import build_from_cfg
from paramwise.schedule.curve import SCHEDULERS
from paramwise.schedule.shapes import (
    CosineCycleLR,
    CosineWithMinLR,
    InverseSqrtLR,
    ScheduleShape,
    WarmupStableDecayLR,
)


# ------------------------------------------------------------------------ reference formulas
def hf_wsd(step: int, warmup: int, stable: int, decay: int, warmup_type: str, decay_type: str,
           floor: float, cycles: float = 0.5) -> float:
    """HF get_wsd_schedule: rise from the floor over the warmup, hold 1, fall back to the floor, stay there."""
    if step < warmup:
        p = float(step) / float(max(1, warmup))
        rise = {"linear": p, "cosine": 0.5 * (1.0 - math.cos(math.pi * p)), "1-sqrt": 1.0 - math.sqrt(1.0 - p)}
        return max(0.0, rise[warmup_type] * (1.0 - floor) + floor)
    if step < warmup + stable:
        return 1.0
    if step < warmup + stable + decay:
        p = float(step - warmup - stable) / float(max(1, decay))
        fall = {
            "linear": 1.0 - p,
            "cosine": 0.5 * (1.0 + math.cos(math.pi * float(cycles) * 2.0 * p)),
            "1-sqrt": 1.0 - math.sqrt(p),
        }
        return max(0.0, fall[decay_type] * (1.0 - floor) + floor)
    return floor


def torchtitan_wsd(step: int, steps: int, warmup: int, decay_ratio: float | None, decay_type: str,
                   floor: float) -> float:
    """torchtitan's linear_warmup_stable_decay with the lengths build_lr_schedulers derives.

    The warmup counts the step being taken (hence ``step + 1``); one virtual step is added to the
    stable phase so that the last real step is not at the floor.
    """
    warmup = min(warmup, steps)
    if decay_ratio is None:
        decay = steps - warmup
    else:
        decay = min(round(steps * decay_ratio), steps - warmup)
    stable = steps + 1 - warmup - decay
    if step < warmup:
        return float((step + 1) / warmup)
    if step < warmup + stable:
        return 1.0
    p = float(step + 1 - (warmup + stable)) / decay
    fall = {"linear": 1 - p, "sqrt": 1 - math.sqrt(p), "cosine": 0.5 * (1.0 + math.cos(math.pi * p))}[decay_type]
    return floor + (1 - floor) * fall


def hf_cosine_min(step: int, warmup: int, steps: int, cycles: float, floor: float) -> float:
    """HF get_cosine_with_min_lr_schedule_with_warmup (min_lr_rate=floor): linear rise from 0, cosine to the floor."""
    if step < warmup:
        return float(step) / float(max(1, warmup))
    p = float(step - warmup) / float(max(1, steps - warmup))
    c = 0.5 * (1.0 + math.cos(math.pi * float(cycles) * 2.0 * p))
    return max(0, c * (1 - floor) + floor)


def hf_inverse_sqrt(step: int, warmup: int, timescale: int | None = None) -> float:
    """HF get_inverse_sqrt_schedule: linear rise, then one over the root of time in timescales since warmup."""
    if timescale is None:
        timescale = warmup or 10_000
    if step < warmup:
        return float(step) / float(max(1, warmup))
    shift = timescale - warmup
    return 1.0 / math.sqrt((step + shift) / timescale)


def timm_cosine(t: int, t_initial: int, lr_min: float = 0.0, cycle_mul: float = 1.0, cycle_decay: float = 1.0,
                cycle_limit: int = 1, warmup_t: int = 0, warmup_lr_init: float = 0.0, warmup_prefix: bool = False,
                k_decay: float = 1.0, base: float = 1.0) -> float:
    """timm CosineLRScheduler._get_lr for one group of initial lr ``base``."""
    if t < warmup_t:
        return warmup_lr_init + t * ((base - warmup_lr_init) / warmup_t)
    if warmup_prefix:
        t = t - warmup_t
    if cycle_mul != 1:
        i = math.floor(math.log(1 - t / t_initial * (1 - cycle_mul), cycle_mul))
        t_i = cycle_mul**i * t_initial
        t_curr = t - (1 - cycle_mul**i) / (1 - cycle_mul) * t_initial
    else:
        i = t // t_initial
        t_i = t_initial
        t_curr = t - (t_initial * i)
    peak = base * cycle_decay**i
    if i < cycle_limit:
        return lr_min + 0.5 * (peak - lr_min) * (1 + math.cos(math.pi * t_curr**k_decay / t_i**k_decay))
    return lr_min


def curve(shape: ScheduleShape, total: int | None, stop: int) -> list[float]:
    return [shape.factor(t, total) for t in range(stop)]


# ------------------------------------------------------------------------- registry, config
@pytest.mark.parametrize(("name", "alias", "shape"), [
    ("WarmupStableDecayLR", "warmup_stable_decay", WarmupStableDecayLR),
    ("CosineWithMinLR", "cosine_with_min_lr", CosineWithMinLR),
    ("InverseSqrtLR", "inverse_sqrt", InverseSqrtLR),
    ("CosineCycleLR", "CosineLRScheduler", CosineCycleLR),
])
def test_registered_under_config_names_and_library_aliases(name: str, alias: str, shape: type) -> None:
    """The shapes share mmengine's registry: one entry under both names, building the shape."""
    assert SCHEDULERS.get(name) is SCHEDULERS.get(alias)
    assert SCHEDULERS.get(name).curve is shape
    assert "LinearLR" in SCHEDULERS.names()


def test_built_from_config_with_argument_checks() -> None:
    part = build_from_cfg({"type": "WarmupStableDecayLR", "warmup_steps": 5, "decay_ratio": 0.2}, SCHEDULERS)
    assert part.curve == WarmupStableDecayLR(warmup_steps=5, decay_ratio=0.2) and part.param == "lr"
    assert "decay_ratio=0.2" in repr(part.curve)
    with pytest.raises(BuildArgumentError, match="Did you mean 'decay_ratio'"):
        build_from_cfg({"type": "WarmupStableDecayLR", "decay_ration": 0.2}, SCHEDULERS)
    with pytest.raises(BuildArgumentError, match="Did you mean 'min_ratio'"):
        build_from_cfg({"type": "CosineWithMinLR", "min_ratoi": 0.1}, SCHEDULERS)


def test_shapes_are_frozen_values() -> None:
    shape = InverseSqrtLR(warmup_steps=3)
    with pytest.raises(AttributeError):
        shape.warmup_steps = 4  # type: ignore[misc]
    assert shape == InverseSqrtLR(warmup_steps=3) and hash(shape) == hash(InverseSqrtLR(warmup_steps=3))


# ------------------------------------------------------------------- warmup-stable-decay
def test_wsd_huggingface_values_by_hand() -> None:
    # 10 warmup steps from the floor, decay over the last 20 of 100 steps, linear, floor 0.1
    shape = WarmupStableDecayLR(warmup_steps=10, decay_steps=20, min_ratio=0.1)
    f = lambda t: shape.factor(t, 100)  # noqa: E731
    assert f(0) == pytest.approx(0.1)  # HF's warmup starts at the floor
    assert f(5) == pytest.approx(0.55)
    assert f(10) == f(50) == f(79) == 1.0  # warmup done, stable
    assert f(80) == 1.0  # the decay's first step is still 1 (progress 0)
    assert f(90) == pytest.approx(0.55)
    assert f(99) == pytest.approx(0.1 + 0.9 / 20)
    assert f(100) == f(1000) == 0.1  # the end, and after it


def test_wsd_torchtitan_values_by_hand() -> None:
    # torchtitan: warmup 4, decay_ratio 0.25 of 20 steps -> 5 decay steps, the last at 1/5
    shape = WarmupStableDecayLR(warmup_steps=4, decay_ratio=0.25, convention="torchtitan")
    f = lambda t: shape.factor(t, 20)  # noqa: E731
    assert [f(t) for t in range(4)] == [0.25, 0.5, 0.75, 1.0]  # the last warmup step is at the full value
    assert f(15) == 1.0
    assert [f(t) for t in range(16, 21)] == pytest.approx([0.8, 0.6, 0.4, 0.2, 0.0])


@pytest.mark.parametrize(("decay_type", "half_way"), [("linear", 0.5), ("cosine", 0.5), ("1-sqrt", 1 - 0.5**0.5)])
def test_wsd_decay_curves_half_way(decay_type: str, half_way: float) -> None:
    shape = WarmupStableDecayLR(decay_steps=10, stable_steps=0, decay_type=decay_type)
    assert shape.factor(0, None) == 1.0
    assert shape.factor(5, None) == pytest.approx(half_way)
    assert shape.factor(10, None) == 0.0


def test_wsd_sqrt_is_1_sqrt() -> None:
    a = WarmupStableDecayLR(warmup_steps=3, decay_ratio=0.5, decay_type="sqrt")
    b = WarmupStableDecayLR(warmup_steps=3, decay_ratio=0.5, decay_type="1-sqrt")
    assert curve(a, 40, 42) == curve(b, 40, 42)


def test_wsd_open_ended_with_stable_and_decay_steps() -> None:
    shape = WarmupStableDecayLR(warmup_steps=2, stable_steps=3, decay_steps=4, min_ratio=0.2)
    assert not shape.needs_total() and shape.total_problems(None) == []
    values = curve(shape, None, 12)
    assert values[2:6] == [1.0, 1.0, 1.0, 1.0]
    assert values[9:] == [0.2, 0.2, 0.2]
    assert shape.boundaries(None) == [0, 2, 5, 9]


def test_wsd_shorter_decay_leaves_floor_until_part_ends() -> None:
    # HF: with num_stable_steps, steps after the decay stay at the floor
    shape = WarmupStableDecayLR(warmup_steps=2, stable_steps=3, decay_steps=4, min_ratio=0.2)
    assert curve(shape, 20, 20) == curve(shape, None, 20)


@pytest.mark.parametrize("warmup_type", ["linear", "cosine", "1-sqrt"])
@pytest.mark.parametrize("decay_type", ["linear", "cosine", "1-sqrt"])
@pytest.mark.parametrize(("warmup", "stable", "decay", "floor", "cycles"),
                         [(0, 0, 30, 0.0, 0.5), (7, 11, 13, 0.1, 0.5), (10, 0, 1, 0.25, 0.5), (5, 5, 20, 0.0, 1.25)])
def test_wsd_matches_hf_formula(warmup_type: str, decay_type: str, warmup: int, stable: int, decay: int,
                                floor: float, cycles: float) -> None:
    total = warmup + stable + decay
    by_steps = WarmupStableDecayLR(warmup_steps=warmup, stable_steps=stable, decay_steps=decay, min_ratio=floor,
                                   warmup_type=warmup_type, decay_type=decay_type, num_cycles=cycles)
    by_length = WarmupStableDecayLR(warmup_steps=warmup, decay_steps=decay, min_ratio=floor,
                                    warmup_type=warmup_type, decay_type=decay_type, num_cycles=cycles)
    expected = [hf_wsd(t, warmup, stable, decay, warmup_type, decay_type, floor, cycles) for t in range(total + 5)]
    assert curve(by_steps, None, total + 5) == expected
    assert curve(by_length, total, total + 5) == expected


@pytest.mark.parametrize("decay_type", ["linear", "sqrt", "cosine"])
@pytest.mark.parametrize(("steps", "warmup", "decay_ratio"),
                         [(100, 10, None), (100, 0, None), (100, 10, 0.2), (37, 3, 0.5), (50, 10, 0.9), (10, 10, 0.3),
                          (64, 8, 0.125), (25, 1, 0.1)])
@pytest.mark.parametrize("floor", [0.0, 0.1])
def test_wsd_matches_torchtitan_formula(decay_type: str, steps: int, warmup: int, decay_ratio: float | None,
                                        floor: float) -> None:
    shape = WarmupStableDecayLR(warmup_steps=warmup, decay_ratio=decay_ratio, decay_type=decay_type,
                                min_ratio=floor, convention="torchtitan")
    # every step that trains (0 .. steps - 1), and torchtitan's virtual last step when there is a decay
    # (without one, torchtitan's stable phase covers that step too; here the part has ended at the floor)
    decays = decay_ratio is None or min(round(steps * decay_ratio), steps - warmup) > 0
    stop = steps + 1 if decays and warmup < steps else steps
    assert curve(shape, steps, stop) == [torchtitan_wsd(t, steps, warmup, decay_ratio, decay_type, floor)
                                         for t in range(stop)]


def test_wsd_decay_ratio_is_cut_to_what_warmup_leaves() -> None:
    # torchtitan: 10 warmup + round(0.95 * 20) = 19 decay steps exceed 20; the decay becomes 10 steps
    shape = WarmupStableDecayLR(warmup_steps=10, decay_ratio=0.95, convention="torchtitan")
    assert shape.boundaries(20) == [0, 10, 20]
    assert shape.factor(10, 20) == 1.0 and shape.factor(11, 20) == pytest.approx(0.9)


def test_wsd_warmup_start_ratio_overrides_convention() -> None:
    shape = WarmupStableDecayLR(warmup_steps=4, decay_ratio=0.5, min_ratio=0.2, warmup_start_ratio=0.0)
    assert [shape.factor(t, 20) for t in range(4)] == [0.0, 0.25, 0.5, 0.75]  # HF before warmup_type existed
    titan = WarmupStableDecayLR(warmup_steps=4, decay_ratio=0.5, convention="torchtitan", warmup_start_ratio=0.2)
    assert titan.factor(0, 20) == pytest.approx(0.2 + 0.8 * 0.25)


# --------------------------------------------------------------------- cosine with min lr
def test_cosine_with_min_lr_values_by_hand() -> None:
    shape = CosineWithMinLR(warmup_steps=10, min_ratio=0.1)
    f = lambda t: shape.factor(t, 110)  # noqa: E731
    assert (f(0), f(5), f(10)) == (0.0, 0.5, 1.0)
    assert f(60) == pytest.approx(0.55)  # half way down the half cosine
    assert f(110) == pytest.approx(0.1)
    assert f(500) == f(110)  # holds after the part's end


@pytest.mark.parametrize(
    ("warmup", "steps", "cycles", "floor"),
    [(0, 50, 0.5, 0.0), (10, 110, 0.5, 0.1), (3, 40, 1.0, 0.05), (7, 7, 0.5, 0.2), (1, 30, 2.5, 0.3)],
)
def test_cosine_with_min_lr_matches_hf_formula(warmup: int, steps: int, cycles: float, floor: float) -> None:
    shape = CosineWithMinLR(warmup_steps=warmup, num_cycles=cycles, min_ratio=floor)
    assert curve(shape, steps, steps + 1) == [hf_cosine_min(t, warmup, steps, cycles, floor) for t in range(steps + 1)]


def test_cosine_with_warmup_start_ratio() -> None:
    shape = CosineWithMinLR(warmup_steps=4, warmup_start_ratio=0.2)
    assert [shape.factor(t, 20) for t in range(5)] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])


# ------------------------------------------------------------------------- inverse sqrt
def test_inverse_sqrt_values_by_hand() -> None:
    shape = InverseSqrtLR(warmup_steps=4)  # timescale = warmup
    assert [shape.factor(t, None) for t in range(5)] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert shape.factor(16, None) == pytest.approx(0.5)  # 1 / sqrt(16 / 4)
    assert InverseSqrtLR().factor(30_000, None) == pytest.approx(0.5)  # no warmup: timescale 10,000
    assert InverseSqrtLR(warmup_steps=4, timescale=1).factor(7, None) == pytest.approx(0.5)  # 1 / sqrt(4)
    assert InverseSqrtLR().resolved_timescale == 10_000 and InverseSqrtLR(warmup_steps=8).resolved_timescale == 8


@pytest.mark.parametrize(("warmup", "timescale"), [(0, None), (10, None), (10, 100), (100, 10), (3, 1)])
def test_inverse_sqrt_matches_hf_formula(warmup: int, timescale: int | None) -> None:
    shape = InverseSqrtLR(warmup_steps=warmup, timescale=timescale)
    assert curve(shape, None, 400) == [hf_inverse_sqrt(t, warmup, timescale) for t in range(400)]
    assert curve(shape, 50, 60) == curve(shape, None, 60)  # the part's length does not matter


# ------------------------------------------------------------------- timm's cosine cycles
def test_cosine_cycles_values_by_hand() -> None:
    # cycles of 10, 20, 40 steps peaking at 1, 0.5, 0.25; three of them, then the floor
    shape = CosineCycleLR(cycle_steps=10, cycle_mul=2, cycle_decay=0.5, cycle_limit=3)
    f = lambda t: shape.factor(t, None)  # noqa: E731
    assert (f(0), f(5)) == (1.0, pytest.approx(0.5))
    assert f(10) == 0.5 and f(20) == pytest.approx(0.25)  # cycle 1 starts, and is half way
    assert f(30) == 0.25 and f(50) == pytest.approx(0.125)
    assert f(70) == f(1000) == 0.0  # past the cycle limit
    assert shape.boundaries(None) == [0, 10, 30, 70]


def test_cosine_cycles_k_decay_and_warmup_by_hand() -> None:
    k = CosineCycleLR(cycle_steps=10, k_decay=2.0)
    assert k.factor(5, None) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))  # (5/10)**2 of the way
    overlap = CosineCycleLR(cycle_steps=10, warmup_steps=5, warmup_start_ratio=0.1)
    assert [overlap.factor(t, None) for t in (0, 2)] == pytest.approx([0.1, 0.46])
    assert overlap.factor(5, None) == pytest.approx(0.5)  # warmup_prefix=False: the cycle counted from step 0
    prefix = CosineCycleLR(cycle_steps=10, warmup_steps=5, warmup_prefix=True)
    assert prefix.factor(5, None) == 1.0 and prefix.factor(15, None) == 0.0


def test_cosine_cycles_default_length_is_the_part() -> None:
    shape = CosineCycleLR(min_ratio=0.1)
    assert shape.factor(0, 40) == 1.0 and shape.factor(20, 40) == pytest.approx(0.55) and shape.factor(40, 40) == 0.1
    prefix = CosineCycleLR(warmup_steps=10, warmup_prefix=True)
    assert prefix.factor(10, 40) == 1.0 and prefix.factor(25, 40) == pytest.approx(0.5) and prefix.factor(40, 40) == 0


TIMM_CASES: list[dict[str, Any]] = [
    dict(t_initial=20),
    dict(t_initial=20, lr_min=0.1, cycle_limit=4, cycle_decay=0.7),
    dict(t_initial=8, cycle_mul=2.0, cycle_decay=0.5, cycle_limit=4),
    dict(t_initial=30, cycle_mul=1.5, cycle_limit=3, k_decay=0.5, lr_min=0.01),
    dict(t_initial=40, cycle_mul=0.5, cycle_limit=3),
    dict(t_initial=25, warmup_t=5, warmup_lr_init=0.05, cycle_limit=2),
    dict(t_initial=25, warmup_t=5, warmup_lr_init=0.05, warmup_prefix=True, k_decay=2.0, cycle_limit=2),
]


def timm_to_shape(case: dict[str, Any]) -> CosineCycleLR:
    names = {"t_initial": "cycle_steps", "lr_min": "min_ratio", "warmup_t": "warmup_steps",
             "warmup_lr_init": "warmup_start_ratio"}
    return CosineCycleLR(**{names.get(k, k): v for k, v in case.items()})


def timm_defined(case: dict[str, Any], stop: int) -> int:
    """Where timm's formula is defined: cycle_mul < 1 fails once the ever shorter cycles run out."""
    mul = case.get("cycle_mul", 1.0)
    return stop if mul >= 1 else min(stop, math.ceil(case["t_initial"] / (1 - mul)))


@pytest.mark.parametrize("case", TIMM_CASES)
def test_cosine_cycles_match_timm_formula(case: dict[str, Any]) -> None:
    stop = timm_defined(case, 150)
    assert curve(timm_to_shape(case), None, stop) == [timm_cosine(t, **case) for t in range(stop)]


def test_cosine_cycles_after_shrinking_cycles_run_out() -> None:
    # cycle_mul < 1: 40 + 20 + 10 + ... never reaches 80 steps; timm's log fails past it, here the floor holds
    shape = CosineCycleLR(cycle_steps=40, cycle_mul=0.5, cycle_limit=100, min_ratio=0.05)
    assert shape.factor(80, None) == shape.factor(500, None) == 0.05
    assert 0.05 <= shape.factor(79, None) <= 1.0


# --------------------------------------------------------------------- the libraries themselves
def test_against_transformers() -> None:
    hf = pytest.importorskip("transformers.optimization")
    torch = pytest.importorskip("torch")

    def lam(make: Any, *args: Any, **kwargs: Any) -> Any:
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
        return make(opt, *args, **kwargs).lr_lambdas[0]

    for warmup, steps, cycles, floor in [(10, 110, 0.5, 0.1), (0, 40, 1.0, 0.0), (5, 30, 0.5, 0.3)]:
        ref = lam(hf.get_cosine_with_min_lr_schedule_with_warmup, warmup, steps, num_cycles=cycles, min_lr_rate=floor)
        shape = CosineWithMinLR(warmup_steps=warmup, num_cycles=cycles, min_ratio=floor)
        assert curve(shape, steps, steps + 1) == [ref(t) for t in range(steps + 1)]
    ref = lam(hf.get_cosine_schedule_with_warmup, 7, 50)
    assert curve(CosineWithMinLR(warmup_steps=7), 50, 51) == [ref(t) for t in range(51)]
    for warmup, timescale in [(10, None), (0, None), (10, 3)]:
        ref = lam(hf.get_inverse_sqrt_schedule, warmup, timescale=timescale)
        assert curve(InverseSqrtLR(warmup_steps=warmup, timescale=timescale), None, 300) == [ref(t) for t in range(300)]
    typed = "warmup_type" in inspect.signature(hf.get_wsd_schedule).parameters
    for warmup_type, decay_type in [("linear", "cosine"), ("cosine", "linear"), ("1-sqrt", "1-sqrt")]:
        if not typed and (warmup_type, decay_type) != ("linear", "cosine"):
            continue  # before warmup_type / decay_type: linear warmup from 0, cosine decay
        kinds = dict(warmup_type=warmup_type, decay_type=decay_type) if typed else {}
        # keywords only: the first versions took (num_warmup_steps, num_stable_steps, num_decay_steps) in that order
        ref = lam(hf.get_wsd_schedule, num_warmup_steps=10, num_decay_steps=20, num_stable_steps=30,
                  min_lr_ratio=0.1, **kinds)
        wsd = WarmupStableDecayLR(warmup_steps=10, stable_steps=30, decay_steps=20, min_ratio=0.1,
                                  warmup_type=warmup_type, decay_type=decay_type,
                                  warmup_start_ratio=None if typed else 0.0)
        assert curve(wsd, None, 70) == [ref(t) for t in range(70)]


def test_against_timm() -> None:
    cosine_lr = pytest.importorskip("timm.scheduler.cosine_lr")
    torch = pytest.importorskip("torch")
    for case in TIMM_CASES:
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
        sched = cosine_lr.CosineLRScheduler(opt, t_in_epochs=False, **case)
        shape = timm_to_shape(case)
        for t in range(timm_defined(case, 120)):
            sched.step_update(t)
            assert shape.factor(t, None) == opt.param_groups[0]["lr"], (case, t)


# ------------------------------------------------------------------------------ properties
@st.composite
def wsd_setups(draw: st.DrawFn) -> tuple[WarmupStableDecayLR, int]:
    total = draw(st.integers(1, 400))
    warmup = draw(st.integers(0, total))
    how = draw(st.sampled_from(["steps", "ratio", "to_end", "stable"]))
    kwargs: dict[str, Any] = {}
    if how == "steps":
        kwargs["decay_steps"] = draw(st.integers(0, total - warmup))
    elif how == "ratio":
        kwargs["decay_ratio"] = draw(st.floats(0.0, 1.0))
    elif how == "stable":
        kwargs["stable_steps"] = draw(st.integers(0, total - warmup))
    shape = WarmupStableDecayLR(
        warmup_steps=warmup,
        warmup_type=draw(st.sampled_from(["linear", "cosine", "1-sqrt"])),
        decay_type=draw(st.sampled_from(["linear", "cosine", "1-sqrt"])),
        min_ratio=draw(st.floats(0.0, 1.0)),
        convention=draw(st.sampled_from(["huggingface", "torchtitan"])),
        **kwargs,
    )
    return shape, total


def nonincreasing(values: list[float]) -> bool:
    return all(b <= a + 1e-15 for a, b in itertools.pairwise(values))


def nondecreasing(values: list[float]) -> bool:
    return nonincreasing([-v for v in values])


@given(wsd_setups())
def test_wsd_properties(setup: tuple[WarmupStableDecayLR, int]) -> None:
    shape, total = setup
    assert shape.total_problems(total) == []
    values = curve(shape, total, total + 3)
    warmup = shape.warmup_steps
    assert all(0.0 <= v <= 1.0 for v in values)
    assert all(v >= shape.min_ratio - 1e-15 for v in values[warmup:])  # the floor holds after the warmup
    assert nondecreasing(values[: min(warmup + 1, total)])  # the warmup rises to the full value
    assert nonincreasing(values[warmup:])  # then it only falls (a half cosine)
    assert values[total] == shape.min_ratio or shape.boundaries(total)[-2] < total  # at the floor by the end
    bounds = shape.boundaries(total)
    assert bounds[0] == 0 and bounds[-1] == total and bounds == sorted(bounds)


@given(wsd_setups())
def test_wsd_continuous_where_the_formula_is(setup: tuple[WarmupStableDecayLR, int]) -> None:
    """Linear and cosine phases move by at most (pi / 2) / (phase length) a step, boundaries included."""
    shape, total = setup
    start, decay, _ = shape._layout(total)
    values = curve(shape, total, total + 1)
    floor = shape.min_ratio
    warmup = shape.warmup_steps
    if shape.warmup_type != "1-sqrt" and shape.convention == "huggingface" and warmup:
        for t in range(min(warmup, total - 1)):  # ... up to and including the step after the warmup
            assert abs(values[t + 1] - values[t]) <= (1 - floor) * math.pi / 2 / warmup + 1e-12
    if shape.decay_type != "1-sqrt" and decay:
        first = start - 1 if start > warmup else start  # from the stable phase, through and out of the decay
        for t in range(first, min(start + decay, total)):
            assert abs(values[t + 1] - values[t]) <= (1 - floor) * math.pi / 2 / decay + 1e-12


@given(st.integers(1, 300), st.integers(0, 300), st.floats(0.0, 1.0), st.floats(0.0, 1.0))
def test_cosine_with_min_lr_properties(steps: int, warmup: int, floor: float, start: float) -> None:
    warmup = min(warmup, steps)
    shape = CosineWithMinLR(warmup_steps=warmup, min_ratio=floor, warmup_start_ratio=start)
    values = curve(shape, steps, steps + 3)
    assert all(0.0 <= v <= 1.0 for v in values)
    assert values[warmup] == 1.0
    if warmup < steps:
        assert values[steps] == pytest.approx(floor, abs=1e-15)
    assert nondecreasing(values[: warmup + 1]) and nonincreasing(values[warmup:])
    assert all(v >= floor - 1e-15 for v in values[warmup:])


@given(st.integers(0, 500), st.one_of(st.none(), st.integers(1, 10**5)), st.integers(0, 10**6))
def test_inverse_sqrt_properties(warmup: int, timescale: int | None, t: int) -> None:
    shape = InverseSqrtLR(warmup_steps=warmup, timescale=timescale)
    value = shape.factor(t, None)
    assert 0.0 <= value <= 1.0
    assert shape.factor(warmup, None) == 1.0
    if t >= warmup:
        assert shape.factor(t + 1, None) <= value
    else:
        assert shape.factor(t + 1, None) >= value


@given(
    st.integers(1, 60), st.floats(0.0, 1.0), st.sampled_from([0.5, 1.0, 1.5, 2.0]), st.floats(0.1, 1.0),
    st.integers(1, 5), st.integers(0, 20), st.booleans(), st.sampled_from([0.5, 1.0, 2.0]),
)
def test_cosine_cycles_properties(first: int, floor: float, mul: float, decay: float, limit: int, warmup: int,
                                  prefix: bool, k: float) -> None:
    shape = CosineCycleLR(cycle_steps=first, min_ratio=floor, cycle_mul=mul, cycle_decay=decay, cycle_limit=limit,
                          warmup_steps=warmup, warmup_prefix=prefix, k_decay=k)
    values = curve(shape, None, 400)
    assert all(0.0 <= v <= 1.0 for v in values)
    end = (warmup if prefix else 0) + sum(first * mul**i for i in range(limit))
    if end < 399:
        assert values[-1] == floor  # every cycle has run
    # within a cycle the cosine only falls toward the floor (from above, or from below for low peaks)
    starts = [b for b in shape.boundaries(None) if b >= (warmup if prefix else 0)] + [400]
    for a, b in itertools.pairwise(starts):
        part = values[max(a, warmup) : b]
        assert nonincreasing(part) or nondecreasing(part)
    if mul == 1:
        assert values == [timm_cosine(t, first, floor, mul, decay, limit, warmup, 0.0, prefix, k) for t in range(400)]


# ------------------------------------------------------------------------------- problems
@pytest.mark.parametrize(
    ("cls", "kwargs", "path", "kind"),
    [
        (WarmupStableDecayLR, dict(warmup_steps=-1), "warmup_steps", "value"),
        (WarmupStableDecayLR, dict(warmup_steps=2.5), "warmup_steps", "type"),
        (WarmupStableDecayLR, dict(warmup_steps=True), "warmup_steps", "type"),
        (WarmupStableDecayLR, dict(decay_ratio=1.5), "decay_ratio", "value"),
        (WarmupStableDecayLR, dict(decay_ratio="half"), "decay_ratio", "type"),
        (WarmupStableDecayLR, dict(decay_steps=5, decay_ratio=0.5), "decay_ratio", "value"),
        (WarmupStableDecayLR, dict(decay_type="cosin"), "decay_type", "value"),
        (WarmupStableDecayLR, dict(warmup_type="sqrt"), "warmup_type", "value"),
        (WarmupStableDecayLR, dict(min_ratio=-0.1), "min_ratio", "value"),
        (WarmupStableDecayLR, dict(min_ratio=float("nan")), "min_ratio", "value"),
        (WarmupStableDecayLR, dict(num_cycles=0), "num_cycles", "value"),
        (WarmupStableDecayLR, dict(convention="titan"), "convention", "value"),
        (CosineWithMinLR, dict(min_ratio=2), "min_ratio", "value"),
        (CosineWithMinLR, dict(warmup_start_ratio=None), "warmup_start_ratio", "type"),
        (InverseSqrtLR, dict(timescale=0), "timescale", "value"),
        (InverseSqrtLR, dict(timescale=2.5), "timescale", "type"),
        (InverseSqrtLR, dict(warmup_steps="10"), "warmup_steps", "type"),
        (CosineCycleLR, dict(cycle_steps=0), "cycle_steps", "value"),
        (CosineCycleLR, dict(cycle_mul=0), "cycle_mul", "value"),
        (CosineCycleLR, dict(cycle_decay=1.5), "cycle_decay", "value"),
        (CosineCycleLR, dict(cycle_limit=0), "cycle_limit", "value"),
        (CosineCycleLR, dict(k_decay=-1), "k_decay", "value"),
        (CosineCycleLR, dict(warmup_prefix=1), "warmup_prefix", "type"),
    ],
)
def test_argument_problems_at_their_keys(cls: type[ScheduleShape], kwargs: dict[str, Any], path: str,
                                         kind: str) -> None:
    with pytest.raises(ConfigError) as info:
        cls(**kwargs)
    assert [(p.path, p.kind) for p in info.value.problems] == [((path,), kind)]
    assert cls.__name__ in str(info.value) and path in str(info.value)
    if kind == "type":
        assert isinstance(info.value, TypeError)


def test_every_problem_reported_at_once_with_did_you_mean() -> None:
    with pytest.raises(ConfigError) as info:
        build_from_cfg({"type": "WarmupStableDecayLR", "warmup_steps": -3, "decay_type": "cosin",
                        "min_ratio": 1.5}, SCHEDULERS)
    assert [p.path for p in info.value.problems] == [("warmup_steps",), ("decay_type",), ("min_ratio",)]
    assert "Did you mean 'cosine'?" in str(info.value)


@pytest.mark.parametrize(
    ("shape", "hint"),
    [
        (WarmupStableDecayLR(decay_ratio=0.2), "stable_steps and decay_steps"),
        (WarmupStableDecayLR(decay_steps=10), "stable_steps and decay_steps"),
        (CosineWithMinLR(), "cosine spans"),
        (CosineCycleLR(), "set cycle_steps"),
    ],
)
def test_missing_length_names_end_and_max_iters(shape: ScheduleShape, hint: str) -> None:
    assert shape.needs_total()
    with pytest.raises(ConfigError) as info:
        shape.factor(3, None)
    (problem,) = info.value.problems
    assert problem.path == ("end",) and problem.kind == "missing"
    assert isinstance(info.value, KeyError)
    assert "max_iters" in problem.message and hint in problem.message


def test_open_ended_shapes_need_no_length() -> None:
    for shape in (InverseSqrtLR(), CosineCycleLR(cycle_steps=5), WarmupStableDecayLR(stable_steps=0, decay_steps=3)):
        assert not shape.needs_total() and shape.total_problems(None) == []


@pytest.mark.parametrize(
    ("shape", "total", "path"),
    [
        (WarmupStableDecayLR(warmup_steps=30, decay_ratio=0.1), 20, "warmup_steps"),
        (WarmupStableDecayLR(warmup_steps=10, decay_steps=15), 20, "decay_steps"),
        (WarmupStableDecayLR(warmup_steps=10, stable_steps=15), 20, "stable_steps"),
        (WarmupStableDecayLR(warmup_steps=5, stable_steps=10, decay_steps=10), 20, "stable_steps"),
        (CosineWithMinLR(warmup_steps=30), 20, "warmup_steps"),
        (CosineCycleLR(warmup_steps=20, warmup_prefix=True), 20, "cycle_steps"),
    ],
)
def test_lengths_that_do_not_fit_the_part(shape: ScheduleShape, total: int, path: str) -> None:
    assert [p.path for p in shape.total_problems(total)] == [(path,)]
    with pytest.raises(ConfigError, match=f"{path}: .*{total} steps"):
        shape.factor(0, total)
