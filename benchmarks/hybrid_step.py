"""HybridOptimizer benchmark: the composite's step against its two children stepped by hand, in one run.

Usage::

    python benchmarks/hybrid_step.py            # ~30 s on a CPU
    python benchmarks/hybrid_step.py --quick    # fewer rounds (~10 s)
    python benchmarks/hybrid_step.py --device cuda --rounds 200

A GPT-like model (vocab 4096, d_model 256, 4 blocks of attention (qkv, proj) and MLP (fc1, fc2)
linears with RMSNorm, an untied ``lm_head``): ``torch.optim.Muon`` over the 16 hidden matrices and
``torch.optim.AdamW`` over the rest (embedding, head, norms, biases). Two copies of the model hold the
same weights and the same gradients (set once, random):

- hand: ``muon.step(); adamw.step()``, the pair stepped by hand;
- hybrid: ``HybridOptimizer({"main": adamw, "Muon": muon}).step()`` over another, identical pair.

Each round times ``--iters`` steps of one and then of the other (the order alternating), so both see
the same machine; the ratio is the median of the per-round ratios (hybrid / hand), with the ratio of the
fastest rounds beside it. After timing, both copies must hold bit-equal weights (else BROKEN, exit 1).
torch runs on one thread on a CPU by default (``--threads``), which makes shared machines less noisy.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from collections.abc import Callable, Sequence

import optimizer_build as common  # shared helpers (benchmarks/ is on sys.path when run)
import torch
from optimizer_build import fmt_s, fmt_x
from torch import nn

from paramwise.build import HybridOptimizer

TARGET_RATIO = 1.05


def gpt_like(vocab: int = 4096, d: int = 256, layers: int = 4) -> nn.Module:
    """The parameters of a GPT-like model (no forward is needed to time a step)."""
    model = nn.Module()
    model.tok = nn.Embedding(vocab, d)
    model.blocks = nn.ModuleList(
        nn.ModuleDict(dict(norm1=nn.RMSNorm(d), qkv=nn.Linear(d, 3 * d), proj=nn.Linear(d, d), norm2=nn.RMSNorm(d),
                           fc1=nn.Linear(d, 4 * d), fc2=nn.Linear(4 * d, d)))
        for _ in range(layers))
    model.norm = nn.RMSNorm(d)
    model.lm_head = nn.Linear(d, vocab, bias=False)
    return model


def pair(model: nn.Module) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
    """(AdamW over the rest, Muon over the hidden matrices), each group named and routed."""
    named = list(model.named_parameters())
    hidden = [(n, p) for n, p in named if p.ndim == 2 and n.startswith("blocks.")]
    rest = [(n, p) for n, p in named if not (p.ndim == 2 and n.startswith("blocks."))]
    adamw = torch.optim.AdamW([dict(params=[p for _, p in rest], param_names=[n for n, _ in rest], route="main")],
                              lr=3e-4, betas=(0.9, 0.95), weight_decay=0.1)
    muon = torch.optim.Muon([dict(params=[p for _, p in hidden], param_names=[n for n, _ in hidden], route="Muon")],
                            lr=0.02, momentum=0.95, weight_decay=0.1, adjust_lr_fn="match_rms_adamw")
    return adamw, muon


def time_steps(step: Callable[[], object], iters: int, sync: Callable[[], None]) -> float:
    sync()
    start = time.perf_counter()
    for _ in range(iters):
        step()
    sync()
    return (time.perf_counter() - start) / iters


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    rounds = max(10, args.rounds // 3) if args.quick else args.rounds
    device = torch.device(args.device)
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    common.MACHINE = common.machine_line() + (f", device {torch.cuda.get_device_name()}" if device.type == "cuda"
                                              else "")
    torch.manual_seed(0)
    hand_model = gpt_like().to(device)
    hybrid_model = copy.deepcopy(hand_model)
    for p, q in zip(hand_model.parameters(), hybrid_model.parameters()):
        p.grad = torch.randn_like(p) * 1e-2
        q.grad = p.grad.clone()
    adamw, muon = pair(hand_model)
    hybrid = HybridOptimizer(dict(zip(("main", "Muon"), pair(hybrid_model))))

    def hand_step() -> None:
        adamw.step()
        muon.step()

    for _ in range(2):  # untimed: state allocated, kernels warm
        hand_step()
        hybrid.step()
    hand_times: list[float] = []
    hybrid_times: list[float] = []
    for r in range(rounds):
        order = [(hand_times, hand_step), (hybrid_times, hybrid.step)]
        for times, step in common.rotated(order, r):
            times.append(time_steps(step, args.iters, sync))
    for (name, a), b in zip(hand_model.named_parameters(), hybrid_model.parameters()):
        if not torch.equal(a, b):
            print(f"BROKEN: {name} differs between the hand-stepped pair and the hybrid")
            return 1
    ratios = [h / b for h, b in zip(hybrid_times, hand_times)]
    ratio = statistics.median(ratios)
    best = min(hybrid_times) / min(hand_times)
    n_params = sum(p.numel() for p in hand_model.parameters())
    common.print_table(
        f"HybridOptimizer.step vs Muon + AdamW stepped by hand (GPT-like, d_model 256, 4 layers, "
        f"{n_params / 1e6:.1f}M parameters, {device.type})",
        ["variant", "median step", "best step", "hybrid / hand (median of rounds)", "best / best"],
        [["hand", fmt_s(statistics.median(hand_times)), fmt_s(min(hand_times)), "", ""],
         ["hybrid", fmt_s(statistics.median(hybrid_times)), fmt_s(min(hybrid_times)), fmt_x(ratio, 3),
          fmt_x(best, 3)]],
        [f"{rounds} rounds x {args.iters} steps; target <= {TARGET_RATIO:.2f}x: "
         f"{'met' if ratio <= TARGET_RATIO else 'MISSED'}; weights bit-equal after {2 + rounds * args.iters} steps"],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
