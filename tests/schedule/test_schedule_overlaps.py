"""Overlapping schedule parts with an anchored one: mmengine's values step by step, resume, what is refused."""

from __future__ import annotations

import copy
import warnings
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from test_schedules import OptimizerFactory, _params, adamw, assert_matches_mmengine, sgd

from paramwise.errors import ConfigError, ParamwiseWarning
from paramwise.schedule import schedule as schedule_module
from paramwise.schedule.schedule import _Overlap, build_scheduler

# Real shapes, scaled down (epoch_length, iterations run): each overlaps an anchored part with another part.
OVERLAPS: dict[str, tuple[list[dict[str, Any]], int, int]] = {
    # mmdetection3d _base_/schedules/cosine.py: iteration warmup over an epoch cosine with an absolute floor
    "mmdet3d cosine": ([
        dict(type="LinearLR", start_factor=0.1, by_epoch=False, begin=0, end=35),
        dict(type="CosineAnnealingLR", begin=0, T_max=12, end=12, by_epoch=True, eta_min=1e-5),
    ], 10, 125),
    "mmdet3d cosine, eta_min_ratio": ([
        dict(type="LinearLR", start_factor=0.1, by_epoch=False, begin=0, end=35),
        dict(type="CosineAnnealingLR", begin=0, T_max=12, end=12, by_epoch=True, eta_min_ratio=1e-2),
    ], 10, 125),
    # BEVFusion: iteration warmup + converted cosine with eta_min_ratio + two momentum cosines
    "bevfusion": ([
        dict(type="LinearLR", start_factor=0.33333333, by_epoch=False, begin=0, end=30),
        dict(type="CosineAnnealingLR", begin=0, T_max=6, end=6, by_epoch=True, eta_min_ratio=1e-4,
             convert_to_iter_based=True),
        dict(type="CosineAnnealingMomentum", eta_min=0.85 / 0.95, begin=0, end=2.4, by_epoch=True,
             convert_to_iter_based=True),
        dict(type="CosineAnnealingMomentum", eta_min=1, begin=2.4, end=6, by_epoch=True,
             convert_to_iter_based=True),
    ], 10, 65),
    "bevfusion, cosine by epoch": ([
        dict(type="LinearLR", start_factor=0.33333333, by_epoch=False, begin=0, end=30),
        dict(type="CosineAnnealingLR", begin=0, T_max=6, end=6, by_epoch=True, eta_min_ratio=1e-4),
        dict(type="LinearMomentum", start_factor=0.9, by_epoch=False, begin=0, end=25),
        dict(type="CosineAnnealingMomentum", eta_min=0.8, begin=0, end=6, by_epoch=True),
    ], 10, 65),
    # three parts in one overlap, a later part after it, the warmup listed after the cosine
    "three parts and a tail": ([
        dict(type="CosineAnnealingLR", eta_min_ratio=0.05, by_epoch=False, begin=0, end=60),
        dict(type="LinearLR", start_factor=0.2, by_epoch=False, begin=0, end=20),
        dict(type="StepLR", step_size=2, gamma=0.5, by_epoch=True, begin=1, end=4),
        dict(type="ConstantLR", factor=0.5, by_epoch=False, begin=60, end=70),
    ], 10, 80),
    "poly floor": ([
        dict(type="PolyLR", eta_min=1e-4, power=0.9, by_epoch=False, begin=0, end=70),
        dict(type="ExponentialLR", gamma=0.95, by_epoch=False, begin=10, end=25),
        dict(type="MultiStepLR", milestones=[1, 1, 3], gamma=0.7, by_epoch=True, begin=0, end=5),
    ], 10, 80),
    "restarts": ([
        dict(type="LinearLR", start_factor=0.1, by_epoch=False, begin=0, end=12),
        dict(type="CosineRestartLR", periods=[10, 20, 15], restart_weights=[1, 0.5, 0.25], eta_min_ratio=0.05,
             by_epoch=False, begin=0, end=60),
    ], 10, 70),
    # an open end: the cosine runs past T_max (mmengine's trough steps), the tail in closed form
    "open cosine past T_max": ([
        dict(type="LinearLR", start_factor=0.5, by_epoch=False, begin=0, end=8),
        dict(type="CosineAnnealingLR", T_max=7, eta_min_ratio=0.1, by_epoch=False),
    ], 10, 60),
    "overlap ends on a trough": ([
        dict(type="CosineAnnealingLR", T_max=6, eta_min=1e-4, by_epoch=False, begin=0, end=40),
        dict(type="ConstantLR", factor=0.5, by_epoch=False, begin=3, end=8),
    ], 10, 45),
    "one cycle and a warmup": ([
        dict(type="OneCycleLR", eta_max=0.2, total_steps=50, by_epoch=False),
        dict(type="LinearLR", start_factor=0.5, by_epoch=False, begin=5, end=15),
    ], 10, 50),
    "weight decay": ([
        dict(type="CosineAnnealingParamScheduler", param_name="weight_decay", eta_min_ratio=0.1, by_epoch=True,
             begin=0, end=5),
        dict(type="LinearParamScheduler", param_name="weight_decay", start_factor=0.5, by_epoch=False,
             begin=5, end=25),
    ], 10, 55),
}


@pytest.mark.parametrize("make", [sgd, adamw], ids=["SGD", "AdamW"])
@pytest.mark.parametrize("name", sorted(OVERLAPS))
def test_overlaps_match_mmengine_step_by_step(name: str, make: OptimizerFactory) -> None:
    assert_matches_mmengine(make, *OVERLAPS[name])


def test_the_overlap_is_replayed_and_the_rest_stays_closed_form() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ParamwiseWarning)
        schedule = build_scheduler(sgd(), OVERLAPS["three parts and a tail"][0], epoch_length=10)
    units = schedule._by_param["lr"]
    assert [type(u).__name__ for u in units] == ["_Overlap", "Part"]
    overlap = units[0]
    assert isinstance(overlap, _Overlap)
    assert [p.index for p in overlap.parts] == [0, 1, 2]
    assert overlap.shared_until == 39 and overlap.survivor is not None and overlap.survivor.index == 0


_PART = st.sampled_from(["linear", "constant", "step", "cosine", "poly", "restart"])


def _entry(kind: str, begin: int, length: int, by_epoch: bool, ratio: float) -> dict[str, Any]:
    window = dict(begin=begin, end=begin + length, by_epoch=by_epoch)
    return {
        "linear": dict(type="LinearLR", start_factor=ratio, **window),
        "constant": dict(type="ConstantLR", factor=ratio, **window),
        "step": dict(type="StepLR", step_size=2, gamma=ratio, **window),
        "cosine": dict(type="CosineAnnealingLR", eta_min_ratio=ratio / 10, **window),
        "poly": dict(type="PolyLR", eta_min=1e-4, power=1.5, **window),
        "restart": dict(type="CosineRestartLR", periods=[3, length], restart_weights=[1, ratio],
                        eta_min_ratio=ratio / 10, **window),
    }[kind]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(_PART, st.integers(0, 8), st.integers(2, 12), st.booleans(),
                          st.floats(0.05, 0.95)), min_size=2, max_size=4))
def test_any_list_of_mmengine_parts_matches_mmengine(spec: list[tuple[str, int, int, bool, float]]) -> None:
    """Whatever overlaps (iterations and epochs of 3 iterations mixed), every value equals mmengine's."""
    assert_matches_mmengine(sgd, [_entry(*s) for s in spec], 3, 50)


# ----------------------------------------------------------------------------------- resume
def _rows(cfg: list[dict[str, Any]], stop_at: int | None, iters: int, epoch_length: int = 10) -> list[list[float]]:
    optimizer = sgd()
    schedule = build_scheduler(optimizer, cfg, epoch_length=epoch_length)
    rows = []
    for n in range(iters):
        if n == stop_at:
            state = copy.deepcopy(schedule.state_dict())
            optimizer = sgd()
            schedule = build_scheduler(optimizer, cfg, epoch_length=epoch_length)
            schedule.load_state_dict(state)
        rows.append([float(g["lr"]) for g in optimizer.param_groups] + [g["momentum"] for g in optimizer.param_groups])
        schedule.step()
    return rows


@pytest.mark.filterwarnings("ignore::paramwise.errors.ParamwiseWarning")
@pytest.mark.parametrize("name", ["bevfusion", "three parts and a tail", "open cosine past T_max"])
def test_resume_inside_and_after_an_overlap_is_exact(name: str) -> None:
    cfg, epoch_length, iters = OVERLAPS[name]
    whole = _rows(cfg, None, iters, epoch_length)
    for k in (1, 7, 24, 31, iters - 3):
        assert _rows(cfg, k, iters, epoch_length) == whole  # exactly: the state is the step count


@pytest.mark.filterwarnings("ignore::paramwise.errors.ParamwiseWarning")
def test_resume_after_regrouping_replays_each_groups_own_value() -> None:
    def grouped(order: str) -> torch.optim.Optimizer:
        params = dict(zip("abc", _params()))
        lr = {"a": 0.1, "b": 0.01, "c": 0.02}
        return torch.optim.SGD([{"params": [params[n]], "lr": lr[n], "param_names": [n]} for n in order],
                               lr=0.1, momentum=0.9)

    cfg = OVERLAPS["mmdet3d cosine, eta_min_ratio"][0]
    first = build_scheduler(grouped("abc"), cfg, epoch_length=10)
    for _ in range(23):
        first.step()
    regrouped = grouped("cab")
    second = build_scheduler(regrouped, cfg, epoch_length=10)
    second.load_state_dict(first.state_dict())
    assert {g["param_names"][0]: g["lr"] for g in regrouped.param_groups} == dict(zip("abc", first.get_last_lr()))


@pytest.mark.filterwarnings("ignore::paramwise.errors.ParamwiseWarning")
def test_values_at_any_step_equal_the_stepped_values(monkeypatch: pytest.MonkeyPatch) -> None:
    """Random access (backwards too) goes through the checkpoints and gives the stepped values exactly."""
    monkeypatch.setattr(schedule_module, "_CHECKPOINT", 7)
    cfg = [dict(type="LinearLR", start_factor=0.1, by_epoch=False, end=90),
           dict(type="CosineAnnealingLR", eta_min_ratio=0.01, by_epoch=False, end=100)]
    schedule = build_scheduler(sgd(), cfg)
    stepped = []
    for _ in range(100):
        stepped.append(schedule.get_last_lr())
        schedule.step()
    for n in (99, 3, 50, 0, 89, 14, 77):
        assert schedule.values_at(n)["lr"] == stepped[n]
    replay = next(iter(schedule._replays.values()))
    assert replay.marks[:3] == [0, 7, 14]


# ----------------------------------------------------------------------------- still refused
def test_a_shape_over_an_anchored_part_names_both_entries() -> None:
    with pytest.raises(ConfigError) as info:
        build_scheduler(sgd(), [
            dict(type="CosineAnnealingLR", eta_min_ratio=0.1, by_epoch=False, end=100),
            dict(type="WarmupStableDecayLR", warmup_steps=10, stable_steps=10, decay_steps=10, begin=50, end=100),
        ])
    text = str(info.value)
    assert "param_scheduler[1] -> begin: overlaps param_scheduler[0] (CosineAnnealingLR" in text
    assert "from iteration 50 to iteration 99" in text and "warmup_steps" in text


def test_a_plateau_over_an_anchored_part_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"param_scheduler\[1\] -> begin: .*ReduceOnPlateauLR reduces"):
        build_scheduler(sgd(), [dict(type="CosineAnnealingLR", eta_min_ratio=0.1, by_epoch=True, end=10),
                                dict(type="ReduceOnPlateauLR", patience=1)], epoch_length=5)


def test_a_zero_start_factor_over_an_anchored_part_is_refused() -> None:
    with pytest.raises(ConfigError) as info:
        build_scheduler(sgd(), [dict(type="LinearLR", start_factor=0.0, by_epoch=False, end=10),
                                dict(type="PolyLR", eta_min_ratio=0.1, by_epoch=False, end=50)])
    assert [p.path for p in info.value.problems] == [("param_scheduler[0]", "start_factor")]
    assert "divides by it" in str(info.value)
