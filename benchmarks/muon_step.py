"""Muon step benchmark: paramwise's ``BatchedMuon`` against ``torch.optim.Muon``, ratio in one run.

Usage::

    python benchmarks/muon_step.py                    # CPU (or --device cuda), ~1 min on 2 cores
    python benchmarks/muon_step.py --quick            # fewer rounds (~20 s)
    python benchmarks/muon_step.py --layout qkv --rounds 20 --threads 2 --device auto

The matrices are the hidden weights of a 12-layer GPT-like model (d_model 512), as ``nn.Linear``
stores them (out x in): per layer either q, k, v, o (512x512 each) or one fused qkv (1536x512) and o
(512x512) (``--layout``), and the MLP's up (2048x512) and down (512x2048) projections. Embeddings, norms
and the head are not Muon's and are left out. Both optimizers get the same parameters and the same
random grads (set once, kept across steps); one untimed step creates the momentum buffers. Each round
times ``--steps`` steps of one optimizer, then of the other (the order alternates between rounds), so
both see the same machine; the ratio is the median of the per-round ratios (torch / batched), with the
ratio of the best rounds beside it. On CUDA every timed block ends with a synchronize.

After timing, both parameter sets have taken the same number of steps and must be equal: bit for bit
where the kernels agree (CPU), else within bf16 tolerance (``--rtol``); a mismatch exits with BROKEN
instead of printing times.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable

import optimizer_build as common  # shared helpers (benchmarks/ is on sys.path when run)
import torch

from paramwise.muon import BatchedMuon

TARGET_SPEEDUP = 1.5
LR = 0.02


def gpt_hidden_shapes(layers: int = 12, d_model: int = 512, layout: str = "separate") -> list[tuple[int, int]]:
    """The hidden matrices of a GPT-like model, as ``nn.Linear`` weights (out, in)."""
    attention = [(3 * d_model, d_model), (d_model, d_model)] if layout == "qkv" else [(d_model, d_model)] * 4
    mlp = [(4 * d_model, d_model), (d_model, 4 * d_model)]
    return [shape for _ in range(layers) for shape in [*attention, *mlp]]


def make_params(shapes: list[tuple[int, int]], device: torch.device) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Two equal copies of the parameters, each with the same random grads."""
    g = torch.Generator().manual_seed(0)
    first: list[torch.Tensor] = []
    second: list[torch.Tensor] = []
    for shape in shapes:
        value = torch.randn(shape, generator=g) * 0.02
        grad = torch.randn(shape, generator=g)
        for group in (first, second):
            p = value.clone().to(device).requires_grad_()
            p.grad = grad.clone().to(device)
            group.append(p)
    return first, second


def timed_steps(optimizer: torch.optim.Optimizer, steps: int, device: torch.device) -> float:
    """Seconds per step over ``steps`` steps."""
    sync: Callable[[], None] = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    for _ in range(steps):
        optimizer.step()
    sync()
    return (time.perf_counter() - start) / steps


def machine_line(device: torch.device) -> str:
    """The shared machine line (CPU, cores, threads, versions), with the GPU's name when on CUDA."""
    gpu = f", device {torch.cuda.get_device_name(device)}" if device.type == "cuda" else ""
    return common.machine_line() + gpu


def compare(a: list[torch.Tensor], b: list[torch.Tensor], rtol: float) -> tuple[bool, float]:
    """Whether every pair is equal within ``rtol`` (relative to the parameter's largest value); the worst error."""
    worst = 0.0
    for x, y in zip(a, b, strict=True):
        scale = max(x.abs().max().item(), 1e-30)
        worst = max(worst, (x - y).abs().max().item() / scale)
    return worst <= rtol, worst


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (cuda when available)")
    parser.add_argument("--layout", choices=("separate", "qkv", "both"), default="both")
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--steps", type=int, default=2, help="steps per timed block")
    parser.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: torch's default)")
    parser.add_argument("--adjust-lr-fn", default="match_rms_adamw", choices=("original", "match_rms_adamw"))
    parser.add_argument("--rtol", type=float, default=1e-2, help="allowed relative difference (bf16 iteration)")
    parser.add_argument("--quick", action="store_true", help="4 rounds")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          "cpu" if args.device == "auto" else args.device)
    rounds = 4 if args.quick else args.rounds
    print(machine_line(device))
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    failed = False
    layouts = ("separate", "qkv") if args.layout == "both" else (args.layout,)
    rows = []
    for layout in layouts:
        shapes = gpt_hidden_shapes(layout=layout)
        reference, batched = make_params(shapes, device)
        kwargs = dict(lr=LR, momentum=0.95, weight_decay=0.1, adjust_lr_fn=args.adjust_lr_fn)
        variants = [("torch", torch.optim.Muon(reference, **kwargs)), ("batched", BatchedMuon(batched, **kwargs))]
        for _, optimizer in variants:
            optimizer.step()  # momentum buffers, kernels' first-call costs
        times: dict[str, list[float]] = {"torch": [], "batched": []}
        for r in range(rounds):
            for name, optimizer in (variants if r % 2 == 0 else variants[::-1]):
                times[name].append(timed_steps(optimizer, args.steps, device))
        equal, worst = compare(reference, batched, args.rtol)
        bit_equal = all(torch.equal(x, y) for x, y in zip(reference, batched, strict=True))
        if not equal:
            print(f"BROKEN: {layout}: BatchedMuon differs from torch.optim.Muon by {worst:.3g} (relative) "
                  f"after {1 + rounds * args.steps} steps")
            return 2
        ratios = [t / b for t, b in zip(times["torch"], times["batched"], strict=True)]
        ratio = statistics.median(ratios)
        failed |= ratio < TARGET_SPEEDUP
        rows.append((layout, len(shapes), statistics.median(times["torch"]), statistics.median(times["batched"]),
                     ratio, min(times["torch"]) / min(times["batched"]), "bit-equal" if bit_equal else f"{worst:.2g}"))
    print(f"\n== Muon step, 12-layer GPT-like hidden matrices (d_model 512), {rounds} rounds x {args.steps} steps, "
          f"adjust_lr_fn={args.adjust_lr_fn}")
    header = ("layout", "matrices", "torch Muon", "BatchedMuon", "speedup (median)", "speedup (best)", "difference")
    print(" | ".join(header))
    for layout, n, t, b, ratio, best, diff in rows:
        print(f"{layout} | {n} | {t * 1e3:.1f} ms | {b * 1e3:.1f} ms | {ratio:.2f}x | {best:.2f}x | {diff}")
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    print(f"target: speedup >= {TARGET_SPEEDUP}x: {'FAIL' if failed else 'PASS'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
