"""Hardening of the later entry points: schedules, the optimizer wrapper, state loading, and the plan options
``layer_decay``, ``width_scaling``, ``scale_rules`` (expressions) and ``no_weight_decay``.

Every call ends in a result or a paramwise error that is also a built-in (ValueError, TypeError, KeyError,
LookupError or OSError) with a non-empty message naming where the problem is; no input is ever changed.
The fuzz tests run the shared hypothesis profile (tests/conftest.py: 60 examples), or a smaller budget
(``QUICK``) where one example is slow; each of those has a ``slow``-marked twin at the full budget.
``PARAMWISE_FUZZ_EXAMPLES=10000`` makes a long run. Every example runs under ``no_hang``.

Also here: ``build_optimizer`` with every registered optimizer's own arguments and with constructors that
are not constructors, and the command line (``paramwise.cli.main`` in-process) with random arguments and
random config files: it returns an exit code (an argparse usage error is ``SystemExit(2)``), and never
reports an unexpected (non-paramwise) exception.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import io
import json
import math
import os
import signal
import tempfile
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st
from torch import nn

import paramwise
from paramwise import (
    ParamwiseError,
    build_optim_wrapper,
    build_scheduler,
    load_optimizer_state,
    name_optimizer_state,
    plan_params,
)
from paramwise.cli import main as cli_main
from strategies import check_outcome, same

BUILTINS = (ValueError, TypeError, KeyError, LookupError, OSError)
#: the examples of a fuzz test whose single example takes a tenth of a second or more, in the normal test run
QUICK = max(1, min(15, int(os.environ.get("PARAMWISE_FUZZ_EXAMPLES", "15") or 15)))
#: seconds one call may take before it counts as a hang (a whole example takes well under one)
HANG_SECONDS = 60


@contextlib.contextmanager
def no_hang(seconds: int = HANG_SECONDS) -> Iterator[None]:
    """Fail (instead of waiting forever) when the body runs longer than ``seconds``; a no-op off the main thread
    or where there is no SIGALRM."""
    usable = hasattr(signal, "SIGALRM") and signal.getsignal(signal.SIGALRM) in (signal.SIG_DFL, None)
    if not usable:
        yield
        return

    def _raise(signum: int, frame: Any) -> None:
        raise AssertionError(f"no result after {seconds} s: a hang")

    try:
        previous = signal.signal(signal.SIGALRM, _raise)
    except ValueError:  # not the main thread
        yield
        return
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


# ---------------------------------------------------------------------------------------- helpers
def check(call: Callable[[], Any], inputs: Any, needles: tuple[str, ...] = (), must_fail: bool = False) -> Any:
    """``strategies.check_outcome`` with a hang guard and warnings (a valid outcome here) silenced."""
    def guarded() -> Any:
        with no_hang(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return call()

    return check_outcome(guarded, inputs, needles, must_fail, builtins=BUILTINS)


leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 40),
    st.integers(),
    st.sampled_from([10**400, -(10**400), 2**63, -1, 0]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(0, 1),
    st.text(max_size=6),
    st.sampled_from(["a\x00b", "\x00", "linear", "cosine", "loss", "lr", "momentum", "weight_decay"]),
    st.sampled_from([torch.tensor(0.1), torch.tensor([1.0, 2.0])]),
)
keys = st.one_of(st.text(max_size=6), st.integers(), st.none(), st.tuples(st.integers()), st.just("a\x00"))
values = st.recursive(
    leaves,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.tuples(inner, inner),
                            st.dictionaries(keys, inner, max_size=3)),
    max_leaves=6,
)


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4), nn.Linear(4, 2))


def _sgd(model: nn.Module | None = None) -> torch.optim.Optimizer:
    opt = paramwise.build_optimizer(model if model is not None else _model(),
                                    dict(type="SGD", lr=0.1, momentum=0.9, weight_decay=1e-4))
    assert isinstance(opt, torch.optim.Optimizer)
    return opt


# ------------------------------------------------------------------------------- build_scheduler
SCHEDULER_TYPES = sorted(paramwise.SCHEDULERS.names())  # mmengine's schedulers and the shapes
# every argument some scheduler or shape takes, and a plausible value for it
PLAUSIBLE: dict[str, st.SearchStrategy[Any]] = {
    "begin": st.integers(0, 5), "end": st.integers(1, 30), "by_epoch": st.booleans(),
    "convert_to_iter_based": st.booleans(), "start_factor": st.floats(0.001, 1), "end_factor": st.floats(0, 1),
    "factor": st.floats(0.01, 1), "gamma": st.floats(0.1, 1), "step_size": st.integers(1, 5),
    "milestones": st.lists(st.integers(0, 20), max_size=3), "T_max": st.integers(1, 20),
    "eta_min": st.floats(0, 0.1), "eta_min_ratio": st.floats(0, 1), "power": st.floats(0.5, 3),
    "eta_max": st.floats(0.01, 1), "total_steps": st.integers(1, 50), "pct_start": st.floats(0, 1),
    "three_phase": st.booleans(), "periods": st.lists(st.integers(1, 10), min_size=1, max_size=3),
    "restart_weights": st.lists(st.floats(0, 1), min_size=1, max_size=3),
    "param_name": st.sampled_from(["lr", "momentum", "weight_decay", "betas"]), "monitor": st.just("loss"),
    "patience": st.integers(0, 3), "cooldown": st.integers(0, 2), "threshold_rule": st.sampled_from(["rel", "abs"]),
    "warmup_steps": st.integers(0, 10), "decay_steps": st.integers(0, 10), "decay_ratio": st.floats(0, 1),
    "stable_steps": st.integers(0, 10), "warmup_type": st.sampled_from(["linear", "cosine", "1-sqrt"]),
    "decay_type": st.sampled_from(["linear", "cosine", "sqrt"]), "min_ratio": st.floats(0, 1),
    "num_cycles": st.floats(0, 2), "warmup_start_ratio": st.floats(0, 1),
    "convention": st.sampled_from(["huggingface", "torchtitan"]), "cycle_steps": st.integers(1, 20),
}


@st.composite
def scheduler_entries(draw: st.DrawFn) -> Any:
    kind = draw(st.integers(0, 19))
    if kind == 0:
        return draw(values)  # not a dict at all, or a dict of noise
    entry: dict[Any, Any] = {}
    if kind == 1:
        entry["type"] = draw(st.one_of(leaves, st.sampled_from(["NoSuchLR", "linearlr", "", "a\x00"])))
    elif kind != 2:  # kind 2: no type
        entry["type"] = draw(st.sampled_from(SCHEDULER_TYPES))
    for key in draw(st.lists(st.sampled_from(sorted(PLAUSIBLE)), unique=True, max_size=4)):
        entry[key] = draw(PLAUSIBLE[key]) if draw(st.integers(0, 3)) else draw(values)
    if draw(st.integers(0, 6)) == 0:
        entry[draw(keys)] = draw(values)
    return entry


scheduler_cfgs = st.one_of(scheduler_entries(), st.lists(scheduler_entries(), max_size=3), leaves)
lengths = st.one_of(st.none(), st.integers(1, 20), st.sampled_from([0, -1, 10**400, 2.5, "10", True]))


@given(cfg=scheduler_cfgs, epoch_length=lengths, max_iters=lengths, state=values)
@example(cfg=[dict(type="LinearLR", start_factor=0.1, end=5, by_epoch=False)], epoch_length=None, max_iters=None,
         state={"step": 1, 3: 1})
@example(cfg=[dict(type="LinearLR", start_factor=0.1, end=5, by_epoch=False)], epoch_length=None, max_iters=None,
         state={"step": 1, "plateau": [1]})
@example(cfg=[dict(type="LinearLR", start_factor=0.1, end=5, by_epoch=False)], epoch_length=None, max_iters=None,
         state={"step": 10**400})
@example(cfg=[dict(type="ReduceOnPlateauLR", monitor="loss", by_epoch=False)], epoch_length=None, max_iters=10,
         state={"step": 1, "plateau": {"0": 5}})
@example(cfg=[dict(type="ReduceOnPlateauLR", monitor="loss", by_epoch=False)], epoch_length=None, max_iters=10,
         state={"step": 1, "plateau": {"0": {"type": "ReduceOnPlateauLR", "nope": 1}}})
@example(cfg=[dict(type="ReduceOnPlateauLR", monitor="loss", by_epoch=False)], epoch_length=None, max_iters=10,
         state={"step": 1, "plateau": {"x": {"type": "ReduceOnPlateauLR"}}})
def test_build_scheduler_fuzz(cfg: Any, epoch_length: Any, max_iters: Any, state: Any) -> None:
    optimizer = _sgd()
    inputs = (cfg, epoch_length, max_iters)
    schedule = check(lambda: build_scheduler(optimizer, cfg, epoch_length=epoch_length, max_iters=max_iters),
                     inputs, ("param_scheduler", "build_scheduler"))
    if isinstance(schedule, ParamwiseError):
        return
    for _ in range(3):
        check(lambda: (schedule.step(), schedule.observe({"loss": 1.0})), inputs)
    saved = schedule.state_dict()
    again = check(lambda: build_scheduler(_sgd(), cfg, epoch_length=epoch_length, max_iters=max_iters), inputs)
    assert not isinstance(again, ParamwiseError)
    check(lambda: again.load_state_dict(saved), saved)
    assert again.state_dict() == saved
    assert [g["lr"] for g in again.optimizer.param_groups] == [g["lr"] for g in optimizer.param_groups]
    # a damaged or foreign state: loaded, or a paramwise error; a failed load leaves the schedule as it was
    for bad in (state, {"step": state}, {"step": 1, "plateau": state}, {**saved, "plateau": {"0": state}}):
        before = again.state_dict()
        outcome = check(lambda bad=bad: again.load_state_dict(bad), bad, ("schedule", "step", "param_scheduler",
                                                                          "plateau", "ReduceOnPlateau"))
        if isinstance(outcome, ParamwiseError):
            assert again.state_dict() == before


# --------------------------------------------------------------------------- build_optim_wrapper
WRAPPER_PLAUSIBLE: dict[str, st.SearchStrategy[Any]] = {
    "type": st.sampled_from(["OptimWrapper", "AmpOptimWrapper"]),
    "accumulative_counts": st.integers(1, 3),
    "clip_grad": st.one_of(st.none(), st.fixed_dictionaries({"max_norm": st.floats(0.1, 10)}, optional={
        "norm_type": st.sampled_from([1, 2, 2.0, math.inf, "inf"]), "type": st.sampled_from(["norm", "value"]),
        "clip_value": st.floats(0.1, 1)})),
    "dtype": st.sampled_from(["float16", "bfloat16", None, torch.bfloat16]),
    "loss_scale": st.sampled_from(["dynamic", 512.0, 1, {"init_scale": 2.0**8}]),
}


@st.composite
def wrapper_cfgs(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 9)) == 0:
        return draw(values)
    cfg: dict[Any, Any] = {}
    if draw(st.integers(0, 9)):
        cfg["optimizer"] = draw(st.sampled_from([dict(type="SGD", lr=0.1), dict(type="AdamW", lr=1e-3)])) \
            if draw(st.integers(0, 5)) else draw(values)
    for key in draw(st.lists(st.sampled_from(sorted(WRAPPER_PLAUSIBLE)), unique=True, max_size=4)):
        cfg[key] = draw(WRAPPER_PLAUSIBLE[key]) if draw(st.integers(0, 2)) else draw(values)
    if draw(st.integers(0, 6)) == 0:
        cfg[draw(st.one_of(keys, st.sampled_from(["lr", "use_fsdp", "loss_scal", "constructor"])))] = draw(values)
    return cfg


@given(cfg=wrapper_cfgs())
@example(cfg={"optimizer": dict(type="SGD", lr=0.1), "clip_grad": {"max_norm": 1.0, "norm_type": "a\x00"}})
@example(cfg={"optimizer": dict(type="SGD", lr=0.1), "clip_grad": {"max_norm": 10**400}})
@example(cfg={"optimizer": dict(type="SGD", lr=0.1), "accumulative_counts": 10**400})
@example(cfg={"optimizer": dict(type="SGD", lr=0.1), "type": "AmpOptimWrapper", "loss_scale": 10**400})
@example(cfg={"optimizer": dict(type="SGD", lr=0.1), "type": "AmpOptimWrapper", "loss_scale": {3: 1}})
@example(cfg={"optimizer": dict(type="SGD", lr=0.1), "type": "AmpOptimWrapper", "dtype": "a\x00"})
def test_build_optim_wrapper_fuzz(cfg: Any) -> None:
    model = _model()
    wrapper = check(lambda: build_optim_wrapper(model, cfg), cfg, ("optim_wrapper", "build_optim_wrapper"))
    if isinstance(wrapper, ParamwiseError):
        return
    loss = model(torch.ones(2, 3)).sum()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wrapper.update_params(loss)
    assert all(torch.isfinite(p).all() for p in model.parameters())


# ------------------------------------------------------------------ load / name optimizer state
def _trained_state(model: nn.Module) -> dict[str, Any]:
    opt = _sgd(model)
    model(torch.ones(2, 3)).sum().backward()
    opt.step()
    return copy.deepcopy(opt.state_dict())


def _damage(draw: st.DrawFn, sd: dict[str, Any], named: bool) -> Any:
    """A copy of a real state dict with one part replaced by noise (or the whole thing, sometimes)."""
    sd = copy.deepcopy(sd)
    if not named:
        for g in sd["param_groups"]:
            g.pop("param_names", None)
    how = draw(st.integers(0, 11))
    groups = sd["param_groups"]
    if how == 0:
        return draw(values)
    if how == 1:
        del sd[draw(st.sampled_from(["state", "param_groups"]))]
    elif how == 2:
        sd[draw(st.sampled_from(["state", "param_groups"]))] = draw(values)
    elif how == 3:
        groups[0]["params"] = draw(values)
    elif how == 4 and named:
        groups[0]["param_names"] = draw(st.one_of(values, st.lists(st.one_of(st.integers(), st.none()), max_size=4)))
    elif how == 5:
        groups[0]["params"] = groups[0]["params"][: draw(st.integers(0, 2))]
    elif how == 6:
        sd["state"][draw(keys)] = draw(values)
    elif how == 7:
        groups[0][draw(st.one_of(keys, st.sampled_from(["lr", "momentum"])))] = draw(values)
    elif how == 8:
        groups.append(draw(values))
    elif how == 9 and sd["state"]:
        first = next(iter(sd["state"]))
        sd["state"][first] = draw(st.one_of(values, st.just({"momentum_buffer": torch.zeros(7)})))
    elif how == 10:
        sd[draw(keys)] = draw(values)
    return sd


@st.composite
def state_dicts(draw: st.DrawFn, named: bool) -> Any:
    return _damage(draw, _trained_state(_model()), named)


def _load_state_case(sd: Any, strict: bool, skip: bool) -> None:
    optimizer = _sgd()
    before = copy.deepcopy(optimizer.state_dict())
    outcome = check(lambda: load_optimizer_state(optimizer, sd, strict=strict, skip_mismatched=skip), sd,
                    ("state", "param", "checkpoint", "saved"))
    if isinstance(outcome, ParamwiseError):  # a refused load leaves the optimizer as it was
        assert same(optimizer.state_dict(), before)


@settings(max_examples=QUICK)
@given(sd=state_dicts(named=True), strict=st.booleans(), skip=st.booleans())
@example(sd={"state": {}, "param_groups": [{"params": [0], "param_names": [3]}]}, strict=False, skip=False)
@example(sd={"state": {}, "param_groups": [{"params": 5, "param_names": ["0.weight"]}]}, strict=False, skip=False)
@example(sd={"state": {0: 3}, "param_groups": [{"params": [0], "param_names": ["0.weight"]}]}, strict=False,
         skip=False)
def test_load_optimizer_state_fuzz_quick(sd: Any, strict: bool, skip: bool) -> None:
    _load_state_case(sd, strict, skip)


@pytest.mark.slow
@given(sd=state_dicts(named=True), strict=st.booleans(), skip=st.booleans())
def test_load_optimizer_state_fuzz(sd: Any, strict: bool, skip: bool) -> None:
    _load_state_case(sd, strict, skip)


@pytest.mark.slow
@given(sd=state_dicts(named=False), cfg=st.one_of(st.none(), st.just(dict(type="SGD", lr=0.1)), values),
       names=st.one_of(st.none(), st.lists(st.sampled_from(["0.weight", "0.bias", "1.weight", "1.bias", "2.weight",
                                                           "2.bias", "nope"]), max_size=7), values))
@example(sd={"state": {}, "param_groups": [{"params": [0, 1]}]}, cfg=None, names=[1, 2])
@example(sd={"state": {}, "param_groups": [{"params": [0, 1]}]}, cfg=None, names="ab")
@example(sd={"state": {}, "param_groups": [{"params": [[0], 1]}]}, cfg=None, names=None)
def test_name_optimizer_state_fuzz(sd: Any, cfg: Any, names: Any) -> None:
    model = _model()
    check(lambda: name_optimizer_state(sd, model, cfg, names=names), (sd, cfg, names),
          ("state", "param", "checkpoint", "saved", "names", "optimizer", "name_optimizer_state"))


def test_named_state_round_trip() -> None:
    model = _model()
    sd = _trained_state(model)
    unnamed = copy.deepcopy(sd)
    for g in unnamed["param_groups"]:
        g.pop("param_names", None)
    named = check(lambda: name_optimizer_state(unnamed, model, dict(type="SGD", lr=0.1)), unnamed)
    assert not isinstance(named, ParamwiseError)
    report = check(lambda: load_optimizer_state(_sgd(), named, strict=True), named)
    assert not isinstance(report, ParamwiseError)


# ------------------------------------------------------------------------ plan_params options
class Blocks(nn.Module):
    """A tiny model with numbered blocks, so layer rules and layer decay have layers to find."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(4, 8)
        self.blocks = nn.ModuleList(nn.Sequential(nn.LayerNorm(8), nn.Linear(8, 8)) for _ in range(3))
        self.head = nn.Linear(8, 2)

    def no_weight_decay(self) -> list[str]:
        return ["embed.bias"]


EXPRESSIONS = st.one_of(
    st.sampled_from(["1", "0.5 ** (num_layers - 1 - layer)", "base_fan_in / fan_in", "fan_in / 8", "2 * 3",
                     "1 / (layer - 1)", "ndim - 3", "__import__('os')", "10**10**10", "fan_inn", "(", "a\x00",
                     "-1", "nan", "1e400", "fan_in.real", "lambda: 1"]),
    st.text(alphabet="0123456789+-*/(). _abcdefghijklmnopqrstuvwxyz", max_size=20),
    leaves,
)
rule_entries = st.one_of(
    st.fixed_dictionaries({}, optional={
        "match": st.sampled_from([r"^blocks\.(\d+)\.", "norm", "head", "(", "a\x00", ""]),
        "lr_mult": EXPRESSIONS, "decay_mult": EXPRESSIONS, "num_layers": st.one_of(st.integers(0, 5), leaves)}),
    values,
)
PW_OPTIONS: dict[str, st.SearchStrategy[Any]] = {
    "layer_decay": st.one_of(
        st.floats(0, 1), leaves,
        st.fixed_dictionaries({"rate": st.one_of(st.floats(0, 1), leaves)}, optional={
            "min_scale": st.one_of(st.floats(0, 1), leaves),
            "source": st.one_of(st.sampled_from(["rules", "families", "get_layer_depth", "group_matcher", "auto"]),
                                leaves),
            "layer_rules": st.one_of(st.lists(st.sampled_from([r"^blocks\.(\d+)\.", r"^(\w+)\.", "(", "."]),
                                              max_size=3), values),
            "formula": st.one_of(st.sampled_from(["timm", "beit"]), leaves),
            "unplaced": st.one_of(st.sampled_from(["first", "last", "error"]), leaves)}),
        st.dictionaries(keys, values, max_size=3)),
    "width_scaling": st.one_of(
        st.booleans(), leaves,
        st.fixed_dictionaries({}, optional={"scale_weight_decay": leaves, "scale_eps": leaves,
                                            "optimizer": st.one_of(st.sampled_from(["adam", "sgd"]), leaves),
                                            "readout": values,
                                            "base_shapes": st.one_of(leaves, st.just("/nonexistent")),
                                            "base_model": values}),
        st.dictionaries(keys, values, max_size=3)),
    "scale_rules": st.one_of(st.lists(rule_entries, max_size=3), values,
                             st.fixed_dictionaries({"rules": st.lists(rule_entries, max_size=2)},
                                                   optional={"base_shapes": leaves})),
    "no_weight_decay": st.one_of(st.sampled_from(["auto", None, True, False]),
                                 st.lists(st.sampled_from(["method", "keywords", "attribute", "tag", "x"]), max_size=3),
                                 values),
}


@st.composite
def plan_cfgs(draw: st.DrawFn) -> dict[str, Any]:
    pw: dict[Any, Any] = {}
    for key in draw(st.lists(st.sampled_from(sorted(PW_OPTIONS)), unique=True, min_size=1, max_size=3)):
        pw[key] = draw(PW_OPTIONS[key])
    return dict(type=draw(st.sampled_from(["AdamW", "SGD"])), lr=0.1, weight_decay=0.01, paramwise_cfg=pw)


@given(cfg=plan_cfgs())
@example(cfg=dict(type="AdamW", lr=0.1, weight_decay=0.01, paramwise_cfg={"layer_decay": {"rate": 10**400}}))
@example(cfg=dict(type="AdamW", lr=0.1, weight_decay=0.01, paramwise_cfg={"layer_decay": {"rate": 0.5, 3: 1}}))
@example(cfg=dict(type="AdamW", lr=0.1, weight_decay=0.01, paramwise_cfg={"scale_rules": [{"match": "a\x00"}]}))
@example(cfg=dict(type="AdamW", lr=0.1, weight_decay=0.01, paramwise_cfg={"scale_rules": [{"lr_mult": "a\x00"}]}))
@example(cfg=dict(type="AdamW", lr=0.1, weight_decay=0.01, paramwise_cfg={"scale_rules": [{"num_layers": 10**400,
                                                                                            "lr_mult": "layer"}]}))
@example(cfg=dict(type="AdamW", lr=0.1, weight_decay=0.01, paramwise_cfg={"width_scaling": {"base_shapes": "a\x00"}}))
@example(cfg=dict(type="AdamW", lr=0.1, weight_decay=0.01, paramwise_cfg={"scale_rules": [{"decay_mult": 10**400}]}))
@example(cfg=dict(type="AdamW", lr=0.1, weight_decay=0.01, paramwise_cfg={"width_scaling": {3: 1}}))
@example(cfg=dict(type="AdamW", lr=0.1, weight_decay=0.01, paramwise_cfg={"no_weight_decay": [3]}))
def test_plan_params_options_fuzz(cfg: dict[str, Any]) -> None:
    model = Blocks()
    outcome = check(lambda: plan_params(model, cfg), cfg, ("paramwise_cfg",))
    if not isinstance(outcome, ParamwiseError):
        names = {e.name for e in outcome.entries}
        assert names == {n for n, p in model.named_parameters() if p.requires_grad}
        for entry in outcome.entries:
            for value in entry.hyperparams.values():
                if isinstance(value, float):
                    assert math.isfinite(value) and value >= 0, (entry.name, entry.hyperparams)


@pytest.mark.parametrize("pw", [
    {"layer_decay": 0.5},
    {"layer_decay": {"rate": 0.5, "layer_rules": [r"^blocks\.(\d+)\."], "unplaced": "last"}},
    {"scale_rules": [{"match": r"^blocks\.(\d+)\.", "lr_mult": "0.5 ** (num_layers - 1 - layer)"}]},
    {"no_weight_decay": "auto"},
])
def test_valid_options_still_plan(pw: dict[str, Any]) -> None:
    cfg = dict(type="AdamW", lr=0.1, weight_decay=0.01, paramwise_cfg=pw)
    assert not isinstance(check(lambda: plan_params(Blocks(), cfg), cfg), ParamwiseError)


# ----------------------------------------------------------- build_optimizer: every optimizer's arguments
# torch's and paramwise's: an installed library's constructor fails in its own ways (pytorch_optimizer.PCGrad
# wraps an optimizer); tests/test_third_party_optimizers.py builds those
OPTIMIZER_NAMES = sorted(n for n in paramwise.OPTIMIZERS.names()
                         if paramwise.OPTIMIZERS.get(n).__module__.split(".")[0] in ("torch", "paramwise"))
NOT_CONSTRUCTORS = st.sampled_from([dict, int, list, len, str, "NoSuchConstructor", "", "DefaultOptimizerConstructer",
                                    lambda optimizer_cfg, paramwise_cfg: None, print])


def _arguments(name: str) -> list[str]:
    return list(inspect.signature(paramwise.OPTIMIZERS.get(name)).parameters)[1:]


@st.composite
def optimizer_cfgs(draw: st.DrawFn) -> Any:
    """An optimizer config: a registered optimizer (the base class too) with some of its own arguments,
    each a plausible or a random value, sometimes a constructor that is not one."""
    name = draw(st.sampled_from(OPTIMIZER_NAMES))
    cfg: dict[Any, Any] = {"type": name}
    for key in draw(st.lists(st.sampled_from(_arguments(name) or ["lr"]), unique=True, max_size=3)):
        cfg[key] = draw(st.one_of(values, st.floats(0, 1), st.booleans(), st.tuples(st.floats(0, 1), st.floats(0, 1))))
    if draw(st.integers(0, 4)) == 0:
        cfg["constructor"] = draw(st.one_of(NOT_CONSTRUCTORS, values))
    if draw(st.integers(0, 4)) == 0:
        cfg["paramwise_cfg"] = {"custom_keys": {draw(st.sampled_from(["0", "bias", "", " "])): {
            draw(st.sampled_from(_arguments(name) or ["lr"])): draw(values)}}}
    return cfg


@given(cfg=optimizer_cfgs())
@example(cfg=dict(type="Adagrad", lr=0.01, lr_decay=[0.1]))
@example(cfg=dict(type="Adadelta", constructor=dict))
@example(cfg=dict(type="Optimizer", lr=0.1))
@example(cfg=dict(type="LBFGS", line_search_fn="wolfe"))
@example(cfg=dict(type="SGD", lr=0.1, paramwise_cfg={"custom_keys": {" ": {"lr": "x"}}}))
def test_build_optimizer_arguments_fuzz(cfg: Any) -> None:
    model = nn.Sequential(nn.Linear(3, 4, bias=False), nn.Linear(4, 2, bias=False))  # 2-D: Muon takes them
    outcome = check(lambda: paramwise.build_optimizer(model, cfg), cfg, ("optimizer",))
    if isinstance(outcome, ParamwiseError):
        assert isinstance(outcome, paramwise.ConfigError), f"{type(outcome).__name__}: {outcome}"
        assert "-> :" not in str(outcome)  # an empty key is quoted, never shown as nothing
    else:
        assert isinstance(outcome, torch.optim.Optimizer)


# --------------------------------------------------------------------------------------- the CLI
#: what a config file holds: values JSON can write (NaN and Infinity included, as Python's json writes them)
json_leaves = st.one_of(st.none(), st.booleans(), st.integers(-3, 40), st.floats(allow_nan=True),
                        st.text(max_size=5), st.sampled_from(["SGD", "AdamW", "LinearLR", "norm", "", " "]))
json_values = st.recursive(
    json_leaves,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)),
    max_leaves=6,
)


@st.composite
def cli_configs(draw: st.DrawFn) -> dict[str, Any]:
    """A whole config: an optimizer (alone or in an optim_wrapper) and maybe a schedule, parts of it noise."""
    optimizer: dict[str, Any] = {"type": draw(st.sampled_from(["SGD", "AdamW", "Adagrad", "LBFGS", "Nope"])),
                                 "lr": draw(st.one_of(st.sampled_from([0.1, 1e-3]), json_leaves))}
    if draw(st.booleans()):
        optimizer["weight_decay"] = draw(st.one_of(st.just(1e-4), json_leaves))
    if draw(st.booleans()):
        optimizer["paramwise_cfg"] = draw(st.one_of(
            st.fixed_dictionaries({}, optional={"norm_decay_mult": st.one_of(st.just(0.0), json_leaves),
                                                "custom_keys": st.dictionaries(st.sampled_from(["0", "head", "", " "]),
                                                                               json_values, max_size=2),
                                                "layer_decay": json_values, "width_scaling": json_values}),
            json_values))
    cfg: dict[str, Any] = {}
    if draw(st.booleans()):
        cfg["optim_wrapper"] = {"optimizer": optimizer, **draw(st.fixed_dictionaries({}, optional={
            "clip_grad": st.one_of(st.just({"max_norm": 1.0}), json_values),
            "accumulative_counts": st.one_of(st.just(2), json_leaves)}))}
    else:
        cfg["optimizer"] = optimizer
    if draw(st.booleans()):
        cfg["param_scheduler"] = draw(st.one_of(
            st.lists(st.fixed_dictionaries({"type": st.sampled_from(["LinearLR", "CosineAnnealingLR", "MultiStepLR",
                                                                     "WarmupStableDecayLR", "NoSuchLR"])},
                                           optional={"begin": json_leaves, "end": json_leaves, "by_epoch": json_leaves,
                                                     "start_factor": json_leaves, "milestones": json_values,
                                                     "warmup_steps": json_leaves}), max_size=2),
            json_values))
    if draw(st.integers(0, 5)) == 0:
        cfg[draw(st.text(max_size=4))] = draw(json_values)
    return cfg


FLAGS: dict[str, list[st.SearchStrategy[list[str]]]] = {
    "show": [st.sampled_from([["--format", "json"], ["--format", "csv"], ["--format", "table"], ["--explain"],
                              ["--group-by", "rule"], ["--group-by", "group"], ["--filter", "0."], ["--format", "x"]])],
    "check": [st.sampled_from([["--allow-warnings"], ["--fail-on-frozen"]])],
    "audit": [st.sampled_from([["--strict"], ["--format", "json"]])],
    "schedule": [st.sampled_from([["--param", "lr"], ["--param", "momentum"], ["--param", "nope"]]),
                 st.builds(lambda n: ["--epoch-length", n], st.sampled_from(["1", "5", "0", "-1", "x"]))],
}
OVERRIDES = st.lists(st.one_of(
    st.sampled_from(["optimizer.lr=0.5", "optim_wrapper.optimizer.lr=0.5", "optimizer.lr", "=1", "optimizer..lr=1",
                     "optimizer.paramwise_cfg.custom_keys.0.lr_mult=2", "param_scheduler.0.end=3", "a.b=[1,",
                     "x={'y':1}"]),
    st.builds(lambda k, v: f"{k}={v}", st.text(max_size=6), st.text(max_size=6))), max_size=2)


@st.composite
def cli_runs(draw: st.DrawFn) -> tuple[str, dict[str, Any], list[str]]:
    """A command, the config it reads, and its arguments (with the config file's place as ``{config}``)."""
    command = draw(st.sampled_from(["show", "check", "audit", "schedule", "list", "noise"]))
    cfg = draw(cli_configs())
    if command == "noise":
        return command, cfg, draw(st.lists(st.one_of(st.text(max_size=6), st.sampled_from(
            ["show", "--model", "tiny_mlp", "{config}", "--cfg-options", "-f", "--iters", "--traceback"])),
            max_size=5))
    if command == "list":
        return command, cfg, ["list", draw(st.sampled_from(["optimizers", "schedulers", "constructors", "nope"]))]
    args = [command, "{config}"]
    if command == "schedule":
        args += ["--iters", draw(st.sampled_from(["1", "10", "10", "0", "-5", "ten"]))]
    args += ["--model", draw(st.sampled_from(["tiny_mlp", "tiny_mlp", "tiny_convnet", "no_such_model"]))]
    for flag in FLAGS.get(command, []):
        if draw(st.booleans()):
            args += draw(flag)
    overrides = draw(OVERRIDES)
    if overrides:
        args += ["--cfg-options", *overrides]
    return command, cfg, args


def _cli_case(run: tuple[str, dict[str, Any], list[str]]) -> tuple[Any, str]:
    """Run the CLI in-process: exit 0/1/2, a message with every failure, no foreign exception; (code, stdout)."""
    _, cfg, args = run
    snapshot = copy.deepcopy(cfg)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "config.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(cfg, f)
        argv = [path if a == "{config}" else a for a in args]
        out, err = io.StringIO(), io.StringIO()
        try:
            with no_hang(), warnings.catch_warnings(), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                warnings.simplefilter("ignore")
                code: Any = cli_main(argv)
        except SystemExit as e:  # argparse: a usage error (2), or --help / --version (0)
            assert e.code in (0, 2), f"SystemExit({e.code!r}) from {argv}"
            return e.code, out.getvalue()
    assert code in (0, 1, 2), f"exit code {code!r} from {argv}"
    text = err.getvalue()
    assert "unexpected" not in text, f"{argv}: {text}"  # a foreign exception, caught by main
    assert code == 0 or err.getvalue().strip(), f"exit code {code} without a message from {argv}"
    assert same(cfg, snapshot)
    return code, out.getvalue()


@settings(max_examples=QUICK)
@given(run=cli_runs())
@example(run=("show", {"optimizer": {"type": "SGD", "lr": 0.1, "paramwise_cfg": {"": 1}}},
              ["show", "{config}", "--model", "tiny_mlp"]))
@example(run=("check", {"optimizer": {"type": "Adadelta", "lr": 0.1, "lr_decay": [0.1]}},
              ["check", "{config}", "--model", "tiny_mlp"]))
@example(run=("schedule", {"optimizer": {"type": "SGD", "lr": 0.1},
                           "param_scheduler": [{"type": "LinearLR", "begin": 500, "end": 0}]},
              ["schedule", "{config}", "--iters", "10"]))
def test_cli_fuzz_quick(run: tuple[str, dict[str, Any], list[str]]) -> None:
    _cli_case(run)


@pytest.mark.slow
@settings(max_examples=max(QUICK, 200))
@given(run=cli_runs())
def test_cli_fuzz(run: tuple[str, dict[str, Any], list[str]]) -> None:
    _cli_case(run)


def test_a_schedule_that_sets_nothing_shows_the_held_values() -> None:
    """Found by the CLI fuzz: an empty param_scheduler ended in a bare ValueError from the report."""
    cfg = {"optimizer": {"type": "SGD", "lr": 0.1, "momentum": 0.9}, "param_scheduler": []}
    args = ["schedule", "{config}", "--iters", "3", "--model", "tiny_mlp", "--format", "json"]
    for param, held in (("lr", 0.1), ("momentum", 0.9)):
        code, out = _cli_case(("schedule", cfg, [*args, "--param", param]))
        assert code == 0 and [m["values"] for m in json.loads(out)["milestones"]] == [[held], [held]]
    assert _cli_case(("schedule", cfg, [*args, "--param", "nesterov"]))[0] == 2  # not a number: --param is wrong
