"""Optimizer wrapper benchmark: ``update_params`` against the hand-written training step, in one run.

Usage::

    python benchmarks/wrapper_step.py            # ~1 min
    python benchmarks/wrapper_step.py --quick    # fewer rounds (~15 s)
    python benchmarks/wrapper_step.py --rounds 400 --iters 4 --threads 2

One model (an MLP of 8 blocks of Linear(256, 256) + LayerNorm + GELU and a head, ~0.5M parameters,
batch 64: a step of a few milliseconds on a CPU, where per-call overhead shows most) and an AdamW with
paramwise's merged groups (``norm_decay_mult=0``, ``bias_decay_mult=0``: 2 groups). Per variant, two
copies of the model train the same batches:

- hand: ``loss.backward(); clip_grad_norm_(params, 1.0); optimizer.step(); optimizer.zero_grad()``,
  the loop people write (without clipping, or accumulating, in the variants that do not clip / that
  accumulate, with the loss divided by the window as the wrapper does);
- wrapper: ``with wrapper.optim_context(model): loss = ...; wrapper.update_params(loss)`` of
  ``paramwise.build_optim_wrapper`` with the same optimizer config and ``clip_grad``.

Forward and loss are timed too (the whole iteration), as in training. Each round times ``--iters``
iterations of hand and then of wrapper (or the other way round, alternating), so both see the same
machine; the ratio is the median of per-round ratios (wrapper / hand), with the ratio of the fastest
rounds beside it. torch runs on one thread by default: on a shared machine other processes then
disturb the timings less (``--threads`` changes it). After timing, both copies must hold equal
parameters (a broken wrapper exits with BROKEN instead of printing times).
"""

from __future__ import annotations

import argparse
import datetime
import gc
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import optimizer_build as common  # shared helpers (benchmarks/ is on sys.path when run)
import torch
from optimizer_build import fmt_s, fmt_x
from torch import nn

import paramwise
from paramwise.wrapper.optim_wrapper import build_optim_wrapper

TARGET_RATIO = 1.03
OPTIMIZER = dict(type="AdamW", lr=1e-3, weight_decay=0.05)
PARAMWISE_CFG = dict(norm_decay_mult=0.0, bias_decay_mult=0.0)


class MLP(nn.Module):
    def __init__(self, width: int = 256, depth: int = 8) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*[nn.Sequential(nn.Linear(width, width), nn.LayerNorm(width), nn.GELU())
                                      for _ in range(depth)])
        self.head = nn.Linear(width, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(x))


def model() -> MLP:
    torch.manual_seed(0)
    return MLP()


def batches(n: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(1)
    return [(torch.randn(64, 256, generator=g), torch.randint(0, 10, (64,), generator=g)) for _ in range(n)]


# (name, wrapper keys, hand step: (model, optimizer, loss, iteration) -> None)
Variant = tuple[str, dict[str, Any], Callable[[nn.Module, torch.optim.Optimizer, torch.Tensor, int], None]]


def hand_clip(m: nn.Module, opt: torch.optim.Optimizer, loss: torch.Tensor, i: int) -> None:
    loss.backward()
    nn.utils.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]], 1.0)
    opt.step()
    opt.zero_grad()


def hand_plain(m: nn.Module, opt: torch.optim.Optimizer, loss: torch.Tensor, i: int) -> None:
    loss.backward()
    opt.step()
    opt.zero_grad()


def hand_per_group(m: nn.Module, opt: torch.optim.Optimizer, loss: torch.Tensor, i: int) -> None:
    loss.backward()
    for g in opt.param_groups:
        nn.utils.clip_grad_norm_(g["params"], 1.0)
    opt.step()
    opt.zero_grad()


def hand_accumulate(m: nn.Module, opt: torch.optim.Optimizer, loss: torch.Tensor, i: int) -> None:
    (loss / 4).backward()
    if (i + 1) % 4 == 0:
        nn.utils.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]], 1.0)
        opt.step()
        opt.zero_grad()


VARIANTS: list[Variant] = [
    ("clip norm (the target)", dict(clip_grad=dict(max_norm=1.0)), hand_clip),
    ("no clipping", {}, hand_plain),
    ("clip per group", dict(clip_grad=dict(max_norm=1.0, per_group=True)), hand_per_group),
    ("accumulate 4 + clip", dict(clip_grad=dict(max_norm=1.0), accumulative_counts=4), hand_accumulate),
]


def bench_variant(variant: Variant, rounds: int, iters: int) -> dict[str, Any]:
    name, keys, hand_step = variant
    data = batches(iters)
    hand_model, wrapped_model = model(), model()
    optimizer = paramwise.build_optimizer(hand_model, dict(OPTIMIZER, paramwise_cfg=PARAMWISE_CFG))
    wrapper = paramwise_wrapper(wrapped_model, keys)

    def run_hand() -> float:
        start = time.perf_counter()
        for i, (x, y) in enumerate(data):
            loss = nn.functional.cross_entropy(hand_model(x), y)
            hand_step(hand_model, optimizer, loss, i)
        return time.perf_counter() - start

    def run_wrapper() -> float:
        start = time.perf_counter()
        for x, y in data:
            with wrapper.optim_context(wrapped_model):
                loss = nn.functional.cross_entropy(wrapped_model(x), y)
            wrapper.update_params(loss)
        return time.perf_counter() - start

    run_hand(), run_wrapper()  # warm-up: optimizer state, allocator, kernels
    hand_times, wrapper_times, ratios = [], [], []
    gc.disable()
    try:
        for r in range(rounds):
            if r % 2:
                w, h = run_wrapper(), run_hand()
            else:
                h, w = run_hand(), run_wrapper()
            hand_times.append(h / iters)
            wrapper_times.append(w / iters)
            ratios.append(w / h)
    finally:
        gc.enable()
    same = all(torch.allclose(a, b, rtol=1e-4, atol=1e-6)
               for a, b in zip(hand_model.parameters(), wrapped_model.parameters()))
    return {"name": name, "hand": statistics.median(hand_times), "wrapper": statistics.median(wrapper_times),
            "ratio": statistics.median(ratios), "best": min(wrapper_times) / min(hand_times),
            "spread": (min(ratios), max(ratios)), "same": same,
            "steps": wrapper.step_count}


def paramwise_wrapper(m: nn.Module, keys: dict[str, Any]) -> Any:
    return build_optim_wrapper(m, dict(optimizer=dict(OPTIMIZER), paramwise_cfg=PARAMWISE_CFG, **keys))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="50 rounds instead of 200")
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds per variant (default 200)")
    parser.add_argument("--iters", type=int, default=4, help="iterations per round (default 4; accumulation "
                                                                "needs a multiple of 4)")
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads(N) first (default 1)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rounds = args.rounds or (50 if args.quick else 200)
    started = time.perf_counter()
    common.MACHINE = common.machine_line()
    print(f"wrapper_step benchmark, {datetime.date.today()}")
    print(common.MACHINE)
    print(f"paramwise source: {os.path.dirname(paramwise.__file__)} at commit {common.source_version()}")
    print(f"load average at start (1/5/15 min): {common.load()}")
    results = []
    for variant in VARIANTS:
        res = bench_variant(variant, rounds, args.iters)
        if not res["same"]:
            print(f"BROKEN: {res['name']}: the wrapper's parameters differ from the hand loop's")
            return 1
        results.append(res)
    rows = [[r["name"], f"{rounds}x{args.iters}", fmt_s(r["hand"]), fmt_s(r["wrapper"]), fmt_x(r["ratio"], 3),
             fmt_x(r["best"], 3), f"{r['spread'][0]:.2f}..{r['spread'][1]:.2f}"] for r in results]
    common.print_table("update_params against the hand-written loop (per iteration, medians; interleaved)",
                       ["variant", "rounds x iters", "hand", "wrapper", "wrapper/hand", "fastest/fastest",
                        "round ratios"], rows,
                       ["hand: backward, clip_grad_norm_, step, zero_grad (as the variant needs); wrapper: "
                        "optim_context + update_params; forward and loss included in both",
                        "wrapper/hand: median of the per-round ratios; fastest/fastest: fastest wrapper round over "
                        "fastest hand round",
                        "model: 8 x (Linear(256, 256) + LayerNorm + GELU) + head, batch 64, AdamW (2 merged groups)"])
    target = results[0]["ratio"]
    verdict = "PASS" if target <= TARGET_RATIO else "MISS"
    print(f"\n== target\n{verdict}  update_params within {TARGET_RATIO - 1:.0%} of the hand loop (clip norm): "
          f"{target:.3f}x")
    print(f"load average at end (1/5/15 min): {common.load()}; total time: {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
