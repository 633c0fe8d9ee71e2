"""Stepping a schedule whose parts overlap (replayed as mmengine steps them) against mmengine and torch.

Usage::

    python benchmarks/schedule_overlap.py            # 20,000 steps per variant, 3 param groups

The BEVFusion-style list (LinearLR warmup over iterations 0..500, a converted CosineAnnealingLR with
``eta_min_ratio`` from 0, two CosineAnnealingMomentum parts) on SGD with 3 groups, stepped once per
iteration by: paramwise's ``Schedule`` (the overlap replayed, then closed form), mmengine's own
schedulers (one ``step()`` each), torch's ``SequentialLR``-free pair ``LinearLR`` + ``CosineAnnealingLR``
(chained, both stepping), and paramwise on the same list without the overlap (closed forms). All in
one run, interleaved in rounds, medians per step; then the cost of a resume at the last step
(``load_state_dict``: the replay from each group's initial value). Timings on shared machines are
noisy: compare the ratios of one run.
"""

from __future__ import annotations

import copy
import statistics
import time
import warnings
from collections.abc import Callable
from typing import Any

import torch

import paramwise

STEPS = 20_000
EPOCH = 2_000
OVERLAP: list[dict[str, Any]] = [
    dict(type="LinearLR", start_factor=0.33333333, by_epoch=False, begin=0, end=500),
    dict(type="CosineAnnealingLR", begin=0, T_max=10, end=10, by_epoch=True, eta_min_ratio=1e-4,
         convert_to_iter_based=True),
    dict(type="CosineAnnealingMomentum", eta_min=0.85 / 0.95, begin=0, end=4, by_epoch=True,
         convert_to_iter_based=True),
    dict(type="CosineAnnealingMomentum", eta_min=1, begin=4, end=10, by_epoch=True, convert_to_iter_based=True),
]
DISJOINT = copy.deepcopy(OVERLAP)
DISJOINT[1]["begin"] = 0.25  # the cosine starts where the warmup ends: closed forms only


def optimizer() -> torch.optim.Optimizer:
    params = [torch.nn.Parameter(torch.zeros(4)) for _ in range(3)]
    return torch.optim.SGD([{"params": [p], "lr": lr} for p, lr in zip(params, (0.1, 0.01, 0.025))],
                           lr=0.1, momentum=0.95)


def ours(cfg: list[dict[str, Any]]) -> Callable[[], None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        schedule = paramwise.build_scheduler(optimizer(), copy.deepcopy(cfg), epoch_length=EPOCH)
    return schedule.step


def mmengine_steps() -> Callable[[], None]:
    import mmengine.optim  # noqa: F401  (registers the schedulers)
    from mmengine.registry import PARAM_SCHEDULERS

    opt = optimizer()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        schedulers = [PARAM_SCHEDULERS.build(copy.deepcopy(c), default_args={"optimizer": opt,
                                                                             "epoch_length": EPOCH})
                      for c in OVERLAP]

    def step() -> None:
        for s in schedulers:
            s.step()
    return step


def torch_steps() -> Callable[[], None]:
    opt = optimizer()
    warmup = torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.33333333, total_iters=500)
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10 * EPOCH, eta_min=1e-5)

    def step() -> None:
        warmup.step()
        cosine.step()
    return step


def main() -> None:
    variants = {"paramwise, overlap replayed": lambda: ours(OVERLAP), "mmengine schedulers": mmengine_steps,
                "torch LinearLR + CosineAnnealingLR": torch_steps, "paramwise, disjoint (closed form)":
                lambda: ours(DISJOINT)}
    steppers = {name: make() for name, make in variants.items()}
    times: dict[str, list[float]] = {name: [] for name in variants}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(STEPS // 100):
            for name, step in steppers.items():
                start = time.perf_counter()
                for _ in range(100):
                    step()
                times[name].append((time.perf_counter() - start) / 100)
    base = statistics.median(times["mmengine schedulers"])
    print(f"{STEPS} steps, 3 groups, interleaved rounds of 100; median per step")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"  {name:38s} {median * 1e6:8.1f} us   {median / base:5.2f}x mmengine")
    schedule = paramwise.build_scheduler(optimizer(), copy.deepcopy(OVERLAP), epoch_length=EPOCH)
    state = {"step": STEPS, "plateau": {}}
    start = time.perf_counter()
    schedule.load_state_dict(state)
    print(f"  resume at step {STEPS} (replay from the initial values): {(time.perf_counter() - start) * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
