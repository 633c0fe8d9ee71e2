"""Phase boundaries in the report, a part that never ends, and what a shape holds after its end."""

from __future__ import annotations

import warnings

import pytest
import torch

from paramwise.errors import ParamwiseWarning
from paramwise.schedule.report import schedule_curves
from paramwise.schedule.schedule import build_scheduler


def _optimizer(lr: float = 1e-3) -> torch.optim.Optimizer:
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=lr, momentum=0.9)


def test_the_report_shows_each_phase_of_warmup_stable_decay() -> None:
    schedule = build_scheduler(_optimizer(), dict(type="WarmupStableDecayLR", warmup_steps=100, decay_ratio=0.2,
                                                  min_ratio=0.1, end=1000))
    rows = dict(schedule_curves(schedule, 1200).rows())
    assert {100, 800, 1000} <= set(rows)  # warmup end (the peak), decay start, the floor
    assert rows[100] == rows[800] == (pytest.approx(1e-3),)
    assert rows[1000] == (pytest.approx(1e-4),)


def test_the_report_shows_the_peak_and_the_floor_of_cosine_with_min_lr() -> None:
    schedule = build_scheduler(_optimizer(), dict(type="CosineWithMinLR", warmup_steps=50, min_ratio=0.1, end=400))
    rows = dict(schedule_curves(schedule, 500).rows())
    assert rows[50] == (pytest.approx(1e-3),) and rows[400] == (pytest.approx(1e-4),)


@pytest.mark.parametrize("shape", [
    dict(type="WarmupStableDecayLR", warmup_steps=10, decay_steps=20, stable_steps=30, min_ratio=0.1, end=60),
    dict(type="WarmupStableDecayLR", warmup_steps=10, decay_ratio=0.3, min_ratio=0.1, end=60),
    dict(type="CosineWithMinLR", warmup_steps=10, min_ratio=0.1, end=60),
])
def test_a_shape_holds_its_floor_at_and_after_its_end(shape: dict[str, object]) -> None:
    schedule = build_scheduler(_optimizer(), shape)
    floor = 1e-3 * 0.1
    assert schedule.values_at(59)["lr"][0] > floor  # the last step inside the part is still above it
    for n in (60, 61, 10_000):
        assert schedule.values_at(n)["lr"] == [pytest.approx(floor, rel=1e-15)]


def test_mmengine_parts_hold_their_last_value_after_their_end() -> None:
    schedule = build_scheduler(_optimizer(), dict(type="CosineAnnealingLR", eta_min_ratio=0.1, end=60,
                                                  by_epoch=False))
    assert schedule.values_at(60) == schedule.values_at(59) == schedule.values_at(1000)
    assert schedule.values_at(59)["lr"][0] > 1e-4  # as mmengine: it stops stepping, the floor is not reached


def test_a_part_that_never_ends_is_a_warning_naming_the_entry() -> None:
    cfg = [dict(type="LinearLR", start_factor=0.1, by_epoch=False, end=100),
           dict(type="CosineAnnealingLR", eta_min_ratio=0.01, by_epoch=False, begin=100)]
    with pytest.warns(ParamwiseWarning, match=r"param_scheduler\[1\] \(CosineAnnealingLR.*never reaches its end"
                                              r".*Set 'end' on this entry, or pass max_iters") as record:
        build_scheduler(_optimizer(), cfg)
    assert record[0].filename == __file__  # it points at the caller's line
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        build_scheduler(_optimizer(), cfg, max_iters=1000)
        build_scheduler(_optimizer(), [dict(type="MultiStepLR", milestones=[3], by_epoch=False),  # no end needed
                                       dict(type="CosineAnnealingLR", T_max=50, by_epoch=False, begin=10)])
