"""Hardening of the model walk: no trainable parameter is ever lost, whatever the model's names.

Wrapper components (``_orig_mod``, ``_fsdp_wrapped_module``, ``_checkpoint_wrapped_module``) are
removed only where a wrapper put them; a user's module of that name, or of the empty name, keeps
its parameters. The property builds random module trees twice, with real wrappers around some
modules and without, and checks every trainable parameter is in exactly one group, under torch's
name, in a deterministic layout. ``PARAMWISE_FUZZ_EXAMPLES`` sets the number of trees (see
tests/conftest.py and docs/errors.md).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn
from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import checkpoint_wrapper

import paramwise
import paramwise.plan.plan as plan_module
from expect import expect_warnings
from paramwise.errors import ConfigError, InternalError, ParamwiseError
from paramwise.plan.rules import RuleOutcome
from paramwise.walk import Sites, iter_module_sites, named_parameters, unwrap_model, wrapped_child_name

WRAPPER_NAMES = ("_orig_mod", "_fsdp_wrapped_module", "_checkpoint_wrapped_module")
SGD: dict[str, Any] = dict(type="SGD", lr=0.1)
compile_warning = pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")


def cfg(frozen: str = "exclude", **pw: Any) -> dict[str, Any]:
    return dict(SGD, paramwise_cfg=dict(bypass_duplicate=True, frozen=frozen, **pw))


def trainable_ids(model: nn.Module) -> list[int]:
    return [id(p) for p in model.parameters() if p.requires_grad]


def optimized_ids(optimizer: torch.optim.Optimizer) -> list[int]:
    return [id(p) for g in optimizer.param_groups for p in g["params"]]


def assert_every_trainable_parameter_once(model: nn.Module, frozen: str = "exclude") -> torch.optim.Optimizer:
    optimizer = paramwise.build_optimizer(model, cfg(frozen))
    got = optimized_ids(optimizer)
    assert len(got) == len(set(got)), "a parameter is in two groups"
    wanted = [id(p) for p in model.parameters() if p.requires_grad or frozen == "include"]
    assert sorted(got) == sorted(wanted)
    return optimizer


# ---------------------------------------------------------------------------- user names like wrappers'


@pytest.mark.parametrize("name", WRAPPER_NAMES)
def test_a_submodule_named_like_a_wrapper_component_keeps_its_parameters(name: str) -> None:
    model = nn.Module()
    model.lin = nn.Linear(2, 2)
    model.add_module(name, nn.Linear(2, 3))
    optimizer = assert_every_trainable_parameter_once(model)
    names = [n for g in optimizer.param_groups for n in g["param_names"]]
    assert names == [n for n, _ in model.named_parameters()]  # the user's names, component kept


@pytest.mark.parametrize("name", WRAPPER_NAMES)
def test_a_nested_submodule_named_like_a_wrapper_component_keeps_its_name(name: str) -> None:
    model = nn.Sequential(nn.Linear(2, 2))
    model[0].add_module(name, nn.Linear(2, 2))
    plan = paramwise.plan_params(model, cfg())
    assert [e.name for e in plan] == [n for n, _ in model.named_parameters()]
    assert f"0.{name}.weight" in [e.name for e in plan]


def test_the_root_named_orig_mod_child_is_not_taken_for_torch_compile() -> None:
    """Before: any root with an `_orig_mod` child was unwrapped to it, losing the root's other parameters."""
    model = nn.Module()
    model.scale = nn.Parameter(torch.ones(2))
    model._orig_mod = nn.Linear(2, 2)
    assert unwrap_model(model) is model
    assert_every_trainable_parameter_once(model)


def test_an_empty_module_name_keeps_its_parameters() -> None:
    model = nn.Module()
    model.head = nn.Linear(2, 2)
    model._modules[""] = nn.Linear(2, 3)  # add_module refuses '', but _modules takes it
    model.head._modules[""] = nn.LayerNorm(2)
    optimizer = assert_every_trainable_parameter_once(model)
    names = [n for g in optimizer.param_groups for n in g["param_names"]]
    assert sorted(names) == sorted(n for n, _ in model.named_parameters())


def test_real_wrappers_are_still_seen_through() -> None:
    inner = nn.Sequential(nn.Linear(2, 2), nn.LayerNorm(2))
    model = nn.Sequential(checkpoint_wrapper(inner), nn.Linear(2, 2))
    assert wrapped_child_name(model[0]) == "_checkpoint_wrapped_module"
    assert [n for n, _ in named_parameters(model)] == ["0.0.weight", "0.0.bias", "0.1.weight", "0.1.bias",
                                                       "1.weight", "1.bias"]
    assert_every_trainable_parameter_once(model)


def test_a_wrapper_named_fully_sharded_data_parallel_is_seen_through_by_class_name() -> None:
    class FullyShardedDataParallel(nn.Module):  # the FSDP1 layout, without a process group
        def __init__(self, module: nn.Module) -> None:
            super().__init__()
            self._fsdp_wrapped_module = module

    model = nn.Sequential(FullyShardedDataParallel(nn.Linear(2, 2)))
    assert [n for n, _ in named_parameters(model)] == ["0.weight", "0.bias"]
    assert unwrap_model(FullyShardedDataParallel(model)) is model


def test_modules_holding_each_other_in_module_do_not_hang_the_unwrapping() -> None:
    a, b = nn.Module(), nn.Module()
    a.module = b
    b._modules["module"] = a  # a cycle through `.module`: unwrapping it looped forever before
    b.w = nn.Parameter(torch.ones(2))
    assert unwrap_model(a) in (a, b)
    with expect_warnings(r"has shared parameters, .*: 'module.module.module.w \(= module.w\)'"):
        assert_every_trainable_parameter_once(a)


def test_a_module_that_contains_itself_keeps_torchs_first_names() -> None:
    model = nn.Module()
    model.a = nn.Module()
    model.a._modules["again"] = model.a  # before 'x': the cycle is met before the rest of 'a'
    model.a.x = nn.Linear(2, 2)
    plan = paramwise.plan_params(model, cfg())
    assert [e.name for e in plan] == [n for n, _ in model.named_parameters()] == ["a.x.weight", "a.x.bias"]


# ---------------------------------------------------------------------------- the plan's invariant


def _outcome_editing(edit: Callable[[tuple], tuple]) -> Callable[..., RuleOutcome]:
    real = plan_module.apply_rules

    def broken(*args: Any, **kwargs: Any) -> RuleOutcome:
        outcome = real(*args, **kwargs)
        return dataclasses.replace(outcome, entries=edit(outcome.entries))

    return broken


@pytest.mark.parametrize(
    ("edit", "message"),
    [(lambda entries: entries[1:], "lost parameter '0.weight'"),
     (lambda entries: (*entries, entries[0]), "duplicated parameter '0.weight'")],
    ids=["lost", "duplicated"],
)
def test_a_plan_that_lost_or_doubled_a_parameter_is_an_internal_error(
    monkeypatch: pytest.MonkeyPatch, edit: Callable[[tuple], tuple], message: str
) -> None:
    monkeypatch.setattr(plan_module, "apply_rules", _outcome_editing(edit))
    with pytest.raises(InternalError, match="please report it") as caught:
        paramwise.build_optimizer(nn.Sequential(nn.Linear(2, 2)), cfg())
    assert message in str(caught.value)
    assert isinstance(caught.value, RuntimeError) and isinstance(caught.value, ParamwiseError)


def test_a_parameter_the_walk_missed_is_an_internal_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # the coverage check must not trust the plan's own walk: it finds the model's parameters by other means
    real = plan_module.model_sites

    def blind(*args: Any, **kwargs: Any) -> Sites:
        sites = real(*args, **kwargs)
        return dataclasses.replace(sites, params=sites.params[1:])

    monkeypatch.setattr(plan_module, "model_sites", blind)
    with pytest.raises(InternalError, match="lost parameter '0.weight'"):
        paramwise.plan_params(nn.Sequential(nn.Linear(2, 2)), cfg())


def test_the_plan_keeps_its_walk_for_the_audit() -> None:
    model = nn.Sequential(nn.Linear(2, 2), nn.LayerNorm(2))
    plan = paramwise.plan_params(model, cfg())
    assert plan.sites is not None and plan.sites.root is model
    assert [name for name, *_ in plan.sites.params] == [e.name for e in plan]


def test_a_plan_with_a_tensor_from_outside_the_model_is_an_internal_error(monkeypatch: pytest.MonkeyPatch) -> None:
    stranger = nn.Parameter(torch.ones(2))
    monkeypatch.setattr(plan_module, "apply_rules", _outcome_editing(
        lambda entries: (entries[0]._replace(param=stranger), *entries[1:])))
    with pytest.raises(InternalError, match="not a parameter of the model"):
        paramwise.plan_params(nn.Sequential(nn.Linear(2, 2)), cfg())


def test_frozen_and_shared_parameters_satisfy_the_invariant() -> None:
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
    model[1].weight = model[0].weight  # tied
    model[0].bias.requires_grad_(False)
    with expect_warnings(r"1 parameter with requires_grad=False", r"shared parameters, .*'1.weight \(= 0.weight\)'"):
        plan = paramwise.plan_params(model, cfg())
    assert [e.name for e in plan] == ["0.weight", "1.bias"]
    assert plan.frozen == ("0.bias",) and plan.duplicates == (("1.weight", "0.weight"),)


# ---------------------------------------------------------------------------- random module trees

NAMES = st.one_of(
    st.sampled_from([*WRAPPER_NAMES, "", "module", "0", "7", "10", "weight", "bias", "é", "层", "ß_2", "block"]),
    st.text(alphabet="ab_09éΩ", min_size=1, max_size=4),
)
LEAF_KINDS = ("linear", "linear_nobias", "norm", "scale", "conv", "empty")
leaves = st.tuples(st.just("leaf"), st.sampled_from(LEAF_KINDS), st.tuples(st.booleans(), st.booleans()))
shares = st.tuples(st.just("share"), st.integers(0, 63))  # reuse a module made before (or an ancestor: a cycle)
WRAPS = st.sampled_from([None, None, None, "checkpoint", "compile"])


def trees(children: st.SearchStrategy) -> st.SearchStrategy:
    return st.tuples(st.just("tree"), st.lists(st.tuples(NAMES, children), max_size=4), WRAPS)


nodes = st.recursive(st.one_of(leaves, shares), trees, max_leaves=14)
models = st.tuples(
    trees(nodes),
    st.sampled_from([None, "data_parallel", "compile", "checkpoint"]),  # the root's own wrapper
    st.lists(st.tuples(st.integers(0, 99), st.integers(0, 99)), max_size=3),  # tied parameters
)


def _leaf(kind: str, frozen: tuple[bool, bool]) -> nn.Module:
    module: nn.Module
    if kind == "linear":
        module = nn.Linear(2, 2)
    elif kind == "linear_nobias":
        module = nn.Linear(2, 2, bias=False)
    elif kind == "norm":
        module = nn.LayerNorm(2)
    elif kind == "conv":
        module = nn.Conv1d(2, 2, 1)
    elif kind == "scale":
        module = nn.Module()
        module.scale = nn.Parameter(torch.ones(2))
    else:
        module = nn.Module()
    for param, off in zip(module.parameters(), frozen):
        param.requires_grad_(not off)
    return module


def _wrap(module: nn.Module, how: str | None) -> nn.Module:
    if how == "checkpoint":
        return checkpoint_wrapper(module)
    if how == "compile":
        return torch.compile(module)  # an OptimizedModule; nothing is compiled until it is called
    if how == "data_parallel":
        return nn.DataParallel(module)  # on CPU: holds the module in `.module`, nothing more
    return module


def realize(case: tuple, wrapped: bool) -> tuple[nn.Module, bool]:
    """Build the model a case describes, and whether it has a cycle; ``wrapped=False``: its twin without wrappers."""
    spec, root_wrap, ties = case
    made: list[nn.Module] = []  # modules as the user made them (wrappers' insides), for sharing
    building: set[int] = set()  # the modules whose children are being made: a share of one is a cycle
    cyclic = False

    def build(node: tuple) -> nn.Module:
        nonlocal cyclic
        if node[0] == "leaf":
            made.append(_leaf(node[1], node[2]))
            return made[-1]
        if node[0] == "share":
            if not made:
                return build(("leaf", "linear", (False, False)))
            shared = made[node[1] % len(made)]
            cyclic = cyclic or id(shared) in building
            return shared
        module = nn.Module()
        made.append(module)  # before its children: a share among them may close a cycle
        building.add(id(module))
        for name, child in node[1]:
            module._modules[name] = build(child)
        building.discard(id(module))
        return _wrap(module, node[2]) if wrapped else module

    root = build(spec)
    slots = [(m, leaf) for m in made for leaf, p in m._parameters.items() if p is not None]
    for source, target in ties:
        if slots:
            (m_from, leaf_from), (m_to, leaf_to) = slots[source % len(slots)], slots[target % len(slots)]
            param = m_from._parameters[leaf_from]
            if param is not None and param.shape == m_to._parameters[leaf_to].shape:  # type: ignore[union-attr]
                m_to._parameters[leaf_to] = param
    if root_wrap == "compile" and spec[2] == "compile":
        root_wrap = None  # torch.compile of an OptimizedModule gives a function, not a module
    return (_wrap(root, root_wrap) if wrapped else root), cyclic


def layout(optimizer: torch.optim.Optimizer) -> list[tuple[list[str], dict[str, Any]]]:
    return [(list(g["param_names"]), {k: v for k, v in g.items() if k not in ("params", "param_names")})
            for g in optimizer.param_groups]


def _names_in_plan(plan: Any) -> list[str]:
    return [e.name for e in plan]


def _torch_names(model: nn.Module, frozen: str) -> Iterator[str]:
    for name, param in model.named_parameters():
        if param.requires_grad or frozen == "include":
            yield name


@pytest.mark.slow
@compile_warning
@pytest.mark.filterwarnings("ignore::paramwise.errors.ParamwiseWarning")  # notes on frozen and shared parameters
@given(case=models, frozen=st.sampled_from(["exclude", "include"]), bias_decay=st.sampled_from([None, 0.0]))
def test_hardening_every_trainable_parameter_is_in_exactly_one_group(
    case: tuple, frozen: str, bias_decay: float | None
) -> None:
    pw = {} if bias_decay is None else {"bias_decay_mult": bias_decay, "norm_decay_mult": 0.0}
    config = dict(cfg(frozen, **pw), weight_decay=0.01)
    plain, cyclic = realize(case, wrapped=False)
    model, _ = realize(case, wrapped=True)
    if not any(p.requires_grad or frozen == "include" for p in plain.parameters()):
        with pytest.raises(ConfigError, match="nothing to optimize"):
            paramwise.build_optimizer(model, config)
        return
    for subject in (plain, model):
        first = paramwise.build_optimizer(subject, config)
        got = optimized_ids(first)
        assert len(got) == len(set(got)), "a parameter is in two groups"
        wanted = [id(p) for p in subject.parameters() if p.requires_grad or frozen == "include"]
        assert sorted(got) == sorted(wanted), "a parameter is missing from the optimizer, or is not the model's"
        second = paramwise.build_optimizer(subject, config)
        assert layout(second) == layout(first) and optimized_ids(second) == got  # deterministic
        plan = paramwise.plan_params(subject, config)
        assert [id(e.param) for e in plan] == [id(p) for p in unwrap_model(subject).parameters()
                                               if p.requires_grad or frozen == "include"]  # in torch's order
    # wrappers change nothing: the user's names (torch's, without wrappers' components) and groups
    plain_plan, plan = paramwise.plan_params(plain, config), paramwise.plan_params(model, config)
    assert _names_in_plan(plan) == _names_in_plan(plain_plan)
    if unwrap_model(plain) is plain:  # not taken for a pseudo wrapper (a child `module` holding every parameter)
        assert _names_in_plan(plain_plan) == list(_torch_names(plain, frozen))
    assert [e.name for e in plan] == [n for n, p in named_parameters(model) if p.requires_grad or frozen == "include"]
    assert layout(paramwise.build_optimizer(model, config)) == layout(paramwise.build_optimizer(plain, config))
    assert [g.members for g in plan.groups] == [g.members for g in plain_plan.groups]
    # every module is walked, under the plain twin's names (a cycle through a wrapper may add a repeat)
    if not cyclic:
        assert {p for p, _, _ in iter_module_sites(model)} == {p for p, _, _ in iter_module_sites(plain)}
