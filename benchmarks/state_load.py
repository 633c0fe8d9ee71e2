"""Optimizer state loading benchmark: paramwise's load by name against torch's positional load, in one run.

Usage::

    python benchmarks/state_load.py            # sizes 1000 9600 96000 (~15 min on 2 cores: see below)
    python benchmarks/state_load.py --quick    # sizes 1000 4800, fewer repeats (~30 s)
    python benchmarks/state_load.py --sizes 1000 9600 --repeats 5

A model of many small tensors (the one ``optimizer_build.py`` builds: Linear(8, 8) + LayerNorm(8)
blocks and a ``head``) gets an AdamW from ``paramwise.build_optimizer`` (3 merged groups), a grad
on every parameter and one step, so that every parameter has state; ``sd`` is a deep copy of that
optimizer's ``state_dict()``. Timed, interleaved round-robin, gc disabled, best of the repeats:

(a) torch: ``torch.optim.Optimizer.load_state_dict`` of ``sd`` (``param_names`` removed) into a
    plain ``torch.optim.AdamW`` with the same groups: the baseline, positional;
(b) ``paramwise.load_optimizer_state(optimizer, sd)`` into a paramwise optimizer, same grouping;
(d) ``optimizer.load_state_dict(sd)``, torch's own call, through paramwise's pre-hook;
    ``paramwise.map_state_by_name`` alone (the remapping, without torch's load);
(c) ``paramwise.load_optimizer_state`` of the same ``sd`` into an optimizer grouped otherwise (an
    extra custom key splits the groups, ``bias_decay_mult`` removed: 4 groups), against torch's
    positional load of that layout's own state_dict into a plain AdamW with those groups.

Every paramwise load goes into an optimizer without state, and is checked after timing: the names
all matched, and each parameter's ``exp_avg``, ``exp_avg_sq`` and ``step`` equal the saved ones by
name. A broken path exits with BROKEN instead of printing times.

torch's load costs O(tensors^2) in torch 2.13 (see benchmarks/README.md), about 100 s per load at
96k tensors on a 2-core VM; at that size each variant is timed once by default.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import gc
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import optimizer_build as common  # the shared models and helpers (benchmarks/ is on sys.path when run)
import torch
from optimizer_build import fmt_exp, fmt_s, fmt_x, many_small, rotated, slope, timed
from torch import nn

import paramwise

TARGET_RATIO = 2.0
TARGET_SIZE = 96_000

SAVED_PW = dict(norm_decay_mult=0.0, bias_decay_mult=0.0, custom_keys={"head": dict(lr_mult=10)})
# another grouping of the same parameters: biases of Linear layers decay again, and blocks.1, blocks.1x, ...
# get their own lr, which splits the decay and no-decay groups (4 groups, members interleaved differently)
REGROUPED_PW = dict(norm_decay_mult=0.0, custom_keys={"head": dict(lr_mult=10), "blocks.1": dict(lr_mult=0.5)})


def build(model: nn.Module, pw: dict[str, Any]) -> torch.optim.Optimizer:
    return paramwise.build_optimizer(model, dict(type="AdamW", lr=1e-3, weight_decay=0.05, paramwise_cfg=pw))


def without_names(groups: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [{k: (list(v) if k == "params" else v) for k, v in g.items() if k != "param_names"} for g in groups]


def plain_torch(optimizer: torch.optim.Optimizer) -> torch.optim.AdamW:
    """A torch AdamW with ``optimizer``'s groups and hyperparameters, no names and no hook."""
    return torch.optim.AdamW(without_names(optimizer.param_groups))


def positional(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """``state_dict`` as plain torch saves it: the same state, groups without ``param_names``."""
    return {"state": state_dict["state"], "param_groups": without_names(state_dict["param_groups"])}


def stepped_state(optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """One step (every parameter has a grad), then a deep copy of the state_dict."""
    optimizer.step()
    return copy.deepcopy(optimizer.state_dict())


def check_loaded(optimizer: torch.optim.Optimizer, sd: Mapping[str, Any], what: str) -> None:
    """Each parameter's state in ``optimizer`` is the one ``sd`` saved under its name; exits otherwise."""
    saved = {n: sd["state"][pid] for g in sd["param_groups"] for n, pid in zip(g["param_names"], g["params"])}
    for group in optimizer.param_groups:
        for name, param in zip(group["param_names"], group["params"]):
            state, want = optimizer.state.get(param), saved[name]
            if not state or any(not torch.equal(state[k], want[k]) for k in ("exp_avg", "exp_avg_sq", "step")):
                sys.exit(f"BROKEN: {what}: the state of {name!r} is not the saved one; not timing a broken path")


def check_report(report: paramwise.StateLoadReport | None, what: str) -> None:
    if report is None or report.missing or report.unexpected or report.mismatched:
        sys.exit(f"BROKEN: {what}: names did not match: {report}")


def bench_size(n: int, reps: int) -> dict[str, Any]:
    model = many_small(n)
    generator = torch.Generator().manual_seed(0)
    for p in model.parameters():  # distinct values per parameter: a misplaced state cannot compare equal
        p.grad = torch.randn(p.shape, generator=generator)
    source = build(model, SAVED_PW)
    sd = stepped_state(source)
    # the regrouped target layout, and its own state_dict (positions of that layout) for torch's baseline
    regrouped = build(model, REGROUPED_PW)
    sd_regrouped = stepped_state(regrouped)

    # every paramwise optimizer loaded into starts without state, so a load that did nothing cannot pass the
    # checks after timing (torch's load replaces the whole state, so later rounds cost what the first does)
    torch_same, torch_regrouped = plain_torch(source), plain_torch(regrouped)
    sd_plain, sd_regrouped_plain = positional(sd), positional(sd_regrouped)
    pw_same, pw_hook, pw_regrouped = build(model, SAVED_PW), build(model, SAVED_PW), build(model, REGROUPED_PW)
    reports: dict[str, Any] = {}

    def by_hook() -> None:
        pw_hook.load_state_dict(sd)
        reports["hook"] = paramwise.last_load_report(pw_hook)

    variants: dict[str, Callable[[], Any]] = {
        "torch": lambda: torch_same.load_state_dict(sd_plain),
        "pw": lambda: reports.__setitem__("pw", paramwise.load_optimizer_state(pw_same, sd)),
        "hook": by_hook,
        "map": lambda: paramwise.map_state_by_name(pw_same, sd),
        "torch_re": lambda: torch_regrouped.load_state_dict(sd_regrouped_plain),
        "pw_re": lambda: reports.__setitem__("pw_re", paramwise.load_optimizer_state(pw_regrouped, sd)),
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    for r in range(reps):
        for name in rotated(list(variants), r):
            elapsed, out = timed(variants[name])
            times[name].append(elapsed)
            del out
    for key, optimizer, what in (("pw", pw_same, "load_optimizer_state, same grouping"),
                                 ("hook", pw_hook, "optimizer.load_state_dict through the hook"),
                                 ("pw_re", pw_regrouped, "load_optimizer_state into another grouping")):
        check_report(reports.get(key), what)
        check_loaded(optimizer, sd, what)
    return {
        "tensors": sum(1 for _ in model.parameters()),
        "groups": len(source.param_groups),
        "groups_re": len(regrouped.param_groups),
        "reps": reps,
        "best": {name: min(ts) for name, ts in times.items()},
    }


def repeats(n: int, quick: bool) -> int:
    reps = 9 if n <= 2000 else 5 if n <= 10_000 else 1
    return max(1, reps // 2 + 1) if quick else reps


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="sizes 1000 4800, fewer repeats (~30 s)")
    parser.add_argument("--sizes", nargs="+", type=lambda s: int(float(s)), default=None,
                        help="numbers of parameter tensors (default 1000 9600 96000; quick 1000 4800)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="rounds per size (default 9 up to 2k tensors, 5 up to 10k, 1 above: torch's load "
                             "takes ~100 s at 96k)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads(N) first")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    sizes = sorted(set(args.sizes or ([1000, 4800] if args.quick else [1000, 9600, 96_000])))

    common.MACHINE = common.machine_line()  # print_table prints it under each title
    started = time.perf_counter()
    print(f"paramwise state loading benchmark, {datetime.datetime.now().isoformat(timespec='seconds')}")
    print(f"command: python {' '.join(sys.argv)}")
    print(common.MACHINE)
    print(f"paramwise source: {os.path.dirname(paramwise.__file__)} at commit {common.source_version()} "
          "(uncommitted changes are not seen by the commit id)")
    print(f"load average at start (1/5/15 min): {common.load()}")
    bench_size(10, 1)  # first loads import torch._dynamo pieces: before anything is timed

    results = []
    for n in sizes:
        phase = time.perf_counter()
        res = bench_size(n, args.repeats or repeats(n, args.quick))
        results.append(res)
        print(f"   ({res['tensors']} tensors: checked and timed in {time.perf_counter() - phase:.0f} s, "
              f"load average {common.load()})", flush=True)
        gc.collect()

    rows, rows_re = [], []
    for res in results:
        b = res["best"]
        rows.append([
            f"{res['tensors']}", f"{res['groups']}", f"{res['reps']}", fmt_s(b["torch"]),
            f"{b['torch'] / res['tensors'] * 1e6:.1f} us", fmt_s(b["pw"]), fmt_x(b["pw"] / b["torch"]),
            fmt_s(b["hook"]), fmt_x(b["hook"] / b["torch"]), fmt_s(b["map"]), fmt_x(b["map"] / b["torch"], 3),
        ])
        rows_re.append([
            f"{res['tensors']}", f"{res['groups']} -> {res['groups_re']}", f"{res['reps']}", fmt_s(b["torch_re"]),
            fmt_s(b["pw_re"]), fmt_x(b["pw_re"] / b["torch_re"]),
        ])
    common.print_table(
        "load, same grouping (best of repeats, gc off; variants interleaved)",
        ["tensors", "groups", "reps", "torch load", "per tensor", "pw load", "pw/torch", "via hook", "hook/torch",
         "pw map only", "map/torch"],
        rows,
        [
            "torch load: torch.optim.Optimizer.load_state_dict into a plain AdamW with the same groups, positional "
            "(the baseline);",
            "pw load: paramwise.load_optimizer_state (map by name + torch's load); via hook: optimizer.load_state_dict "
            "on a paramwise optimizer;",
            "pw map only: paramwise.map_state_by_name, the remapping without torch's load.",
        ],
    )
    common.print_table(
        "load into another grouping (best of repeats, gc off; interleaved with the table above)",
        ["tensors", "groups", "reps", "torch load (target layout)", "pw load (regrouped)", "pw/torch"],
        rows_re,
        [
            "target: norm_decay_mult=0 (no bias_decay_mult), custom_keys head lr_mult 10 and blocks.1 lr_mult 0.5; "
            "the saved state has the 3-group layout;",
            "torch load: torch's positional load of the target layout's own state_dict into a plain AdamW with its "
            "groups (the baseline).",
        ],
    )
    if len(results) >= 2:
        xs = [r["tensors"] for r in results]
        erows = [[label, fmt_exp(slope(xs, [r["best"][key] for r in results]))]
                 for key, label in (("torch", "torch load"), ("pw", "pw load"), ("hook", "via hook"),
                                    ("map", "pw map only"), ("pw_re", "pw load (regrouped)"))]
        common.print_table("growth exponent (log-log slope of time against tensors; 1 = linear, 2 = quadratic)",
                           ["variant", f"{xs[0]}..{xs[-1]}"], erows)

    print()
    print("== target")
    big = [r for r in results if r["tensors"] >= TARGET_SIZE * 0.95]
    if big:
        b = big[-1]["best"]
        worst = max(b["pw"] / b["torch"], b["hook"] / b["torch"], b["pw_re"] / b["torch_re"])
        print(f"{'PASS' if worst <= TARGET_RATIO else 'MISS'}  load by name at {big[-1]['tensors']} tensors within "
              f"{TARGET_RATIO:g}x torch's own load_state_dict: worst {worst:.2f}x (same grouping "
              f"{b['pw'] / b['torch']:.2f}x, via hook {b['hook'] / b['torch']:.2f}x, regrouped "
              f"{b['pw_re'] / b['torch_re']:.2f}x)")
    else:
        print(f"SKIP  load by name within {TARGET_RATIO:g}x torch at ~{TARGET_SIZE} tensors: size not run")
    print(f"load average at end (1/5/15 min): {common.load()}; total time: {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
