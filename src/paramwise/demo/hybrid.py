"""The demo's hybrid part: one config routes a language model's hidden matrices to Muon, the rest to AdamW.

It shows what the plan decided (each route, its optimizer and why parameters went there), trains a
tiny GPT on a synthetic next-token task with one schedule and the wrapper's clipping driving both
optimizers, and resumes by name twice: into the same routes (every state back, bit for bit) and into
a config without routes (the matrices that move from Muon to AdamW start fresh, and the report says so).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.nn import functional as F

from paramwise.suggestions import plural

__all__ = ["HYBRID_CONFIG", "HybridDemo", "run_hybrid_demo"]

#: The hybrid config the demo runs; it ships inside the package.
HYBRID_CONFIG = Path(__file__).parent / "configs" / "hybrid.py"


@dataclass(frozen=True)
class HybridDemo:
    """What the hybrid part did, as lines to print."""

    routes: tuple[str, ...]  # one line per route: optimizer, parameters, elements, why
    training: str
    resumes: tuple[str, ...]

    def lines(self) -> list[str]:
        return [f"hybrid: {HYBRID_CONFIG.name}, Muon for the hidden matrices of tiny_gpt, AdamW for the rest",
                *self.routes, self.training, *self.resumes]


def _route_lines(plan: Any, optimizer: Any) -> tuple[str, ...]:
    kinds = {name: type(child).__name__ for name, child in optimizer.children.items()}
    lines = []
    for route in dict.fromkeys(e.route for e in plan.entries):
        entries = [e for e in plan.entries if e.route == route]
        reasons = Counter(e.route_reason or "rest" for e in entries)
        why = ", ".join(f"{reason} ({count})" for reason, count in reasons.items())
        lines.append(f"  route {route!r} -> {kinds.get(route, '?')}: {plural(len(entries), 'parameter')}, "
                     f"{sum(e.numel for e in entries):,} elements: {why}")
    return tuple(lines)


def _with_state(optimizer: Any) -> int:
    """How many parameters hold optimizer state (after a load: how many got theirs back)."""
    return sum(1 for g in optimizer.param_groups for p in g["params"] if optimizer.state.get(p))


def _batch(perm: torch.Tensor, batch: int, length: int, generator: torch.Generator) -> torch.Tensor:
    """Sequences that follow a fixed random permutation: token t+1 = perm[token t], a learnable bigram."""
    tokens = torch.empty(batch, length, dtype=torch.long)
    tokens[:, 0] = torch.randint(0, len(perm), (batch,), generator=generator)
    for i in range(1, length):
        tokens[:, i] = perm[tokens[:, i - 1]]
    return tokens


def run_hybrid_demo(steps: int = 60, seed: int = 0, batch: int = 16) -> HybridDemo:
    """Plan, train and resume the hybrid config on ``tiny_gpt``; deterministic for a seed."""
    import warnings

    from paramwise.build.constructors import build_optimizer, plan_params
    from paramwise.config import Config, optimizer_config
    from paramwise.models import TinyGPT
    from paramwise.schedule.schedule import build_scheduler
    from paramwise.state.by_name import load_optimizer_state
    from paramwise.wrapper.optim_wrapper import wrap_optimizer

    torch.manual_seed(seed)
    section = optimizer_config(Config.fromfile(HYBRID_CONFIG))
    cfg = section.optimizer
    model = TinyGPT()  # tiny_gpt, the built-in model
    vocab, length = model.num_classes, model.input_shape[0]
    plan = plan_params(model, cfg)
    optimizer = build_optimizer(model, cfg)
    wrapper = wrap_optimizer(optimizer, section.wrapper)
    schedule = build_scheduler(optimizer, Config.fromfile(HYBRID_CONFIG).param_scheduler, max_iters=steps)
    generator = torch.Generator().manual_seed(seed)
    perm = torch.randperm(vocab, generator=generator)
    losses = []
    for _ in range(steps):
        tokens = _batch(perm, batch, length, generator)
        logits = model(tokens[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1))
        wrapper.update_params(loss)
        schedule.step()
        losses.append(loss.item())
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    lrs = {g["route"]: g["lr"] for g in optimizer.param_groups}
    training = (f"  trained {plural(steps, 'step')}: loss {first:.3f} -> {last:.3f}; one schedule drives both, "
                f"lr now {', '.join(f'{route} {lr:.3g}' for route, lr in lrs.items())}")
    saved = optimizer.state_dict()
    same = build_optimizer(model, cfg)
    report = load_optimizer_state(same, saved)
    exact = all(torch.equal(optimizer.state[p][k], same.state[q][k])
                for p, q in zip((p for g in optimizer.param_groups for p in g["params"]),
                                (q for g in same.param_groups for q in g["params"]))
                for k in optimizer.state[p])
    resumes = [f"  resume into the same routes: {plural(_with_state(same), 'parameter')} got their state back"
               f"{', bit for bit' if exact and report.clean else ''}"]
    plain = {**cfg, "paramwise_cfg": {k: v for k, v in cfg["paramwise_cfg"].items() if k != "routes"}}
    all_adamw = build_optimizer(model, plain)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the report below says what the warning would
        moved = load_optimizer_state(all_adamw, saved)
    resumes.append(f"  resume without routes (all AdamW): {plural(len(moved.rerouted), 'parameter')} moved from Muon "
                   f"and start fresh in AdamW; {plural(_with_state(all_adamw), 'other')} "
                   "got their state back")
    return HybridDemo(_route_lines(plan, optimizer), training, tuple(resumes))
