"""Compiled optimizer steps under a paramwise schedule: recompiles, and the compiled step's time.

Usage::

    python benchmarks/compiled_schedule.py            # 1,000 scheduled steps per variant (~1.5 min on 2 cores)
    python benchmarks/compiled_schedule.py --quick    # 200 steps (past the warmup into the cosine), ~1 min
    python benchmarks/compiled_schedule.py --steps 3000 --threads 1

A small MLP (Linear 256-512-256-10, ~265k parameters, two groups: the last layer at ``lr_mult=10``)
gets AdamW from ``paramwise.build_optimizer`` and the schedule from ``paramwise.build_scheduler``::

    [dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=100),
     dict(type='CosineAnnealingLR', by_epoch=False, begin=100, end=1000, T_max=900)]

The optimizer step is compiled as torch's docs do it (``@torch.compile(fullgraph=False) def step():
optimizer.step()``, inductor) and ``schedule.step()`` runs eagerly after it. Grads are random
tensors set once. Each variant runs the scheduled steps from a fresh dynamo cache
(``torch._dynamo.reset()``), with an uncompiled twin (same parameters, grads and options) stepped
in the same loop, in alternating order, as the timing baseline and the correctness reference:

(a) tensor lr: every group's lr a 0-dim tensor, which the schedule ``fill_()``s in place;
(b) float lr: the schedule replaces each group's float lr every step (torch's default config);
(c) float lr with ``torch._dynamo.config.automatic_dynamic_shapes=False``: what every float lr
    costs when dynamo may not turn the changed float into a graph input (torch's older behaviour).

Recompiles are counted with ``torch._dynamo.testing.CompileCounterWithBackend('inductor')``: the
backend dynamo calls once per graph it compiles, so its ``frame_count`` grows on every recompile
(and every graph-break graph). "Recompiles" are the graphs compiled after the first scheduled step;
``torch._dynamo.utils.counters['stats']['unique_graphs']`` is printed beside it as a cross-check and
``torch._dynamo.utils.guard_failures`` gives the reason of each recompile. (torch 2.13 has no
``counters['recompiles']``.)

Timings on shared machines are noisy; compare the compiled/eager ratio from one run, not numbers
across runs.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import os
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import optimizer_build as common  # the shared table and machine helpers (benchmarks/ is on sys.path when run)
import torch
from torch import nn

import paramwise

LR = 1e-3
WD = 0.05
SCHEDULE: list[dict[str, Any]] = [
    dict(type="LinearLR", start_factor=0.1, by_epoch=False, begin=0, end=100),
    dict(type="CosineAnnealingLR", by_epoch=False, begin=100, end=1000, T_max=900),
]
# AdamW's options for a tensor lr on CPU. foreach=False is torch's default for CPU tensors and the
# only single-device path that takes a tensor lr without capturable=True: foreach=True raises "lr as
# a Tensor is not supported for capturable=False and foreach=True", and fused=True is never traced
# (torch.compiler.disable'd: "don't trace into fused optimizer"), so nothing would be compiled.
OPTIONS: dict[str, Any] = dict(foreach=False)
SKIP_TIMING = 10  # the first steps compile (and, for float lr, recompile): not timed into the medians


# --------------------------------------------------------------------------- model, optimizer, schedule


def make_model() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(256, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, 10),
    )
    generator = torch.Generator().manual_seed(1)
    for p in model.parameters():
        p.grad = torch.randn(p.shape, generator=generator)
    return model


def make_optimizer(model: nn.Module, tensor_lr: bool) -> torch.optim.Optimizer:
    """paramwise's AdamW (two groups); with ``tensor_lr`` each group's lr becomes its own 0-dim tensor.

    paramwise's config check takes numbers only (``lr=torch.tensor(...)`` is a ConfigError, and a
    tensor times ``lr_mult`` would make a new tensor per group anyway), so the tensors are put in
    after the build and before ``build_scheduler``, which records them as ``initial_lr``.
    """
    pw = dict(custom_keys={"4": dict(lr_mult=10.0)})  # "4": the last Linear of the Sequential
    cfg = dict(type="AdamW", lr=LR, weight_decay=WD, **OPTIONS, paramwise_cfg=pw)
    optimizer = paramwise.build_optimizer(model, cfg)
    if tensor_lr:
        for group in optimizer.param_groups:
            group["lr"] = torch.tensor(float(group["lr"]))
    return optimizer


# --------------------------------------------------------------------------- one variant


@dataclass
class Variant:
    name: str
    tensor_lr: bool
    automatic_dynamic: bool = True


@dataclass
class Result:
    variant: Variant
    first_graphs: int = 0
    graphs: int = 0
    unique_graphs: int = 0
    first_step_s: float = 0.0
    compiled: list[float] = field(default_factory=list)
    eager: list[float] = field(default_factory=list)
    schedule: list[float] = field(default_factory=list)
    max_diff: float = 0.0
    moved: float = 0.0
    lr_ok: bool = True
    lr_same_objects: bool = True
    reasons: list[str] = field(default_factory=list)
    error: str = ""

    @property
    def recompiles(self) -> int:
        return self.graphs - self.first_graphs


def run_variant(variant: Variant, steps: int) -> Result:
    """``steps`` scheduled steps of a compiled optimizer and its eager twin, from a fresh dynamo cache."""
    import torch._dynamo
    from torch._dynamo.testing import CompileCounterWithBackend
    from torch._dynamo.utils import counters, guard_failures

    result = Result(variant)
    torch._dynamo.reset()
    counters.clear()
    guard_failures.clear()
    counter = CompileCounterWithBackend("inductor")
    compiled_model, eager_model = make_model(), make_model()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no ParamwiseWarning is expected; keep torch's chatter out of the table
        opt_c, opt_e = make_optimizer(compiled_model, variant.tensor_lr), make_optimizer(eager_model, variant.tensor_lr)
        sched_c, sched_e = paramwise.build_scheduler(opt_c, SCHEDULE), paramwise.build_scheduler(opt_e, SCHEDULE)
    lr_objects = [g["lr"] for g in opt_c.param_groups]

    @torch.compile(backend=counter, fullgraph=False)
    def step() -> None:
        opt_c.step()

    old_dynamic = torch._dynamo.config.automatic_dynamic_shapes
    torch._dynamo.config.automatic_dynamic_shapes = variant.automatic_dynamic
    gc.collect()
    try:
        for i in range(steps):
            order = ("compiled", "eager") if i % 2 == 0 else ("eager", "compiled")
            for which in order:
                start = time.perf_counter()
                if which == "compiled":
                    step()
                else:
                    opt_e.step()
                elapsed = time.perf_counter() - start
                if i == 0 and which == "compiled":
                    result.first_step_s = elapsed
                    result.first_graphs = counter.frame_count
                elif i >= SKIP_TIMING:
                    (result.compiled if which == "compiled" else result.eager).append(elapsed)
            start = time.perf_counter()
            sched_c.step()
            if i >= SKIP_TIMING:
                result.schedule.append(time.perf_counter() - start)
            sched_e.step()
            if variant.tensor_lr:
                result.lr_same_objects &= all(g["lr"] is t for g, t in zip(opt_c.param_groups, lr_objects))
            expected = sched_c.values_at(sched_c.last_epoch)["lr"]
            got = [float(g["lr"]) for g in opt_c.param_groups]
            result.lr_ok &= all(abs(g - e) <= 1e-6 * e for g, e in zip(got, expected))
    except Exception as e:  # a variant that breaks is reported in the table, not a traceback
        result.error = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
    finally:
        torch._dynamo.config.automatic_dynamic_shapes = old_dynamic
    result.graphs = counter.frame_count
    result.unique_graphs = int(counters["stats"]["unique_graphs"])
    result.reasons = [str(r) for reasons in guard_failures.values() for r in reasons]
    with torch.no_grad():
        result.max_diff = max(
            float((a - b).abs().max()) for a, b in zip(compiled_model.parameters(), eager_model.parameters())
        )
        result.moved = max(float((a - b).abs().max()) for a, b in zip(eager_model.parameters(),
                                                                       make_model().parameters()))
    torch._dynamo.reset()
    return result


# --------------------------------------------------------------------------- output


fmt_s = common.fmt_s  # one time formatter for every benchmark


def lr_cell(r: Result) -> str:
    cell = "ok" if r.lr_ok else "WRONG"
    if r.variant.tensor_lr:
        cell += ", same object" if r.lr_same_objects else ", REPLACED"
    return cell


def median(xs: Sequence[float]) -> float | None:
    return statistics.median(xs) if xs else None


def paired_ratio(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Median of the per-step ratios a/b (the two steps of one loop iteration, taken moments apart)."""
    ratios = [x / y for x, y in zip(a, b) if y > 0]
    return statistics.median(ratios) if ratios else None





def load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def compile_available() -> str | None:
    """None when torch.compile with inductor runs here, else the reason it does not."""
    try:
        from torch._dynamo.testing import CompileCounterWithBackend  # noqa: F401  (run_variant needs it)

        fn = torch.compile(lambda x: x * 2 + 1, backend="inductor")
        fn(torch.ones(2))
    except Exception as e:
        return f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    return None


# --------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="200 scheduled steps instead of 1,000")
    parser.add_argument("--steps", type=int, default=None, help="scheduled steps per variant (default 1000)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads(N) first")
    parser.add_argument("--keep-cache", action="store_true",
                        help="use inductor's usual on-disk cache (default: a fresh temporary one, so the first "
                             "step's time is a cold compile)")
    parser.add_argument("--skip-static", action="store_true",
                        help="skip variant (c), float lr with automatic_dynamic_shapes=False (its 8 compiles)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    steps = args.steps or (200 if args.quick else 1000)
    if steps <= SKIP_TIMING:
        parser.error(f"--steps must be larger than {SKIP_TIMING} (the untimed compile steps)")

    common.MACHINE = common.machine_line()  # print_table prints it under each title
    cache = None if args.keep_cache else tempfile.TemporaryDirectory(prefix="paramwise-inductor-")
    if cache is not None:  # read by inductor whenever it looks for its cache, so setting it here is enough
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache.name
    try:
        return run(args, steps)
    finally:
        if cache is not None:
            cache.cleanup()


def run(args: argparse.Namespace, steps: int) -> int:
    started = time.perf_counter()
    print(f"paramwise compiled-schedule benchmark, {datetime.datetime.now().isoformat(timespec='seconds')}")
    print(f"command: python {' '.join(sys.argv)}")
    print(common.MACHINE)
    print(f"load average at start (1/5/15 min): {load()}")
    print(f"inductor cache: {'the usual one' if args.keep_cache else 'fresh temporary directory (cold compiles)'}")
    reason = compile_available()
    if reason is not None:
        print(f"SKIP  torch.compile (inductor) does not run here: {reason}")
        return 0
    params = sum(p.numel() for p in make_model().parameters())
    print(f"model: MLP 256-512-256-10, {params} parameters in 6 tensors; AdamW(lr={LR}, weight_decay={WD}, "
          f"{', '.join(f'{k}={v}' for k, v in OPTIONS.items())}), 2 groups (last layer lr_mult=10); {steps} steps")

    variants = [Variant("(a) tensor lr, fill_", True), Variant("(b) float lr, replaced", False)]
    if not args.skip_static:
        variants.append(Variant("(c) float lr, no auto-dynamic", False, automatic_dynamic=False))
    results = []
    for variant in variants:
        phase = time.perf_counter()
        results.append(run_variant(variant, steps))
        print(f"   {variant.name}: {time.perf_counter() - phase:.0f} s")

    rows = []
    for r in results:
        c, e = median(r.compiled), median(r.eager)
        ratio = paired_ratio(r.compiled, r.eager)
        rows.append([
            r.variant.name, f"{r.first_graphs}", f"{r.recompiles}", f"{r.unique_graphs}", fmt_s(r.first_step_s),
            fmt_s(c), fmt_s(e), "-" if ratio is None else f"{ratio:.2f}x", fmt_s(median(r.schedule)),
            f"{r.max_diff:.1e} / {r.moved:.1e}", lr_cell(r),
        ])
    common.print_table(
        f"compiled AdamW step under a paramwise schedule, {steps} scheduled steps per variant "
        "(fresh dynamo cache each)",
        ["variant", "graphs @1st step", "recompiles", "unique_graphs", "1st step", "compiled step", "eager step",
         "compiled/eager", "schedule.step", "max |p_c - p_e| / moved", "lr"],
        rows,
        [
            "graphs @1st step: graphs inductor compiled during the first step; recompiles: graphs compiled after it "
            "(CompileCounterWithBackend frame_count);",
            "unique_graphs: torch._dynamo.utils.counters['stats']['unique_graphs'] over the whole run (cross-check).",
            f"step times are medians over steps {SKIP_TIMING + 1}..{steps}; compiled/eager is the median of per-step "
            "ratios (the twin eager step of the same iteration, order alternating).",
            "max |p_c - p_e|: largest parameter difference between the compiled optimizer and its eager twin after "
            "the run; moved: largest change of a parameter over the run",
            "(a graph that kept one lr would be off by a sizable part of it).",
            "lr: each group's lr equals schedule.values_at(step) after every step (rel 1e-6: the tensor lr is "
            "float32); same object: the lr tensors were never replaced.",
        ],
    )
    for r in results:
        if r.error:
            print(f"   {r.variant.name} stopped early: {r.error}")
        if r.reasons:
            shown = sorted(set(r.reasons))
            print(f"   {r.variant.name} recompile reasons ({len(r.reasons)} guard failures, {len(shown)} distinct):")
            for text in shown[:4]:
                print("      " + text.split("\n")[0].split("#")[0].strip())

    print()
    print("== target (from issue 11)")
    a = results[0]
    ok = not a.error and a.recompiles == 0 and a.lr_ok and a.lr_same_objects
    print(f"{'PASS' if ok else 'FAIL'}  recompiles over {steps:,} scheduled steps == 0 (tensor lr written in place): "
          f"{a.recompiles} (lr values {'ok' if a.lr_ok else 'WRONG'}, tensor objects "
          f"{'kept' if a.lr_same_objects else 'REPLACED'}{', ' + a.error if a.error else ''})")
    ratio = paired_ratio(a.compiled, a.eager)
    if ratio is not None:
        print(f"info  compiled step / uncompiled step (tensor lr, median of paired ratios): {ratio:.2f}x "
              f"({fmt_s(median(a.compiled))} vs {fmt_s(median(a.eager))})")
    if steps < 1000:
        print(f"note: {steps} steps (--quick or --steps); the target is stated for 1,000")
    print(f"load average at end (1/5/15 min): {load()}; total time: {time.perf_counter() - started:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
