"""Property tests of the optimizer layout paramwise builds, over the zoo and generated configs.

Every trainable parameter is in exactly one group; frozen ones only with ``frozen='include'``;
builds are deterministic; groups are maximal (no two with equal hyperparameters) and ordered by
their first parameter; names are the user's; wrappers change nothing; merging parameters into
groups does not change what ``step()`` computes.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import paramwise
from model_zoo import SHARED, ZOO, build
from paramwise import ParamwiseError
from strategies import DECAY_MULT_KEYS, LR_MULT_KEYS, MULTS, SUBSTRINGS, custom_key_entry

pytestmark = pytest.mark.filterwarnings("ignore::paramwise.ParamwiseWarning")  # frozen, duplicates, unmatched

OPTIMIZERS = {
    "AdamW": dict(type="AdamW", lr=1e-2, weight_decay=0.05),
    "AdamW_no_wd": dict(type="AdamW", lr=1e-2),
    "SGD": dict(type="SGD", lr=0.1, momentum=0.9, weight_decay=1e-2),
    "SGD_no_wd": dict(type="SGD", lr=0.1, momentum=0.9),
}
NOT_HYPERPARAMS = frozenset({"params", "param_names"})


@st.composite
def configs(draw: st.DrawFn, optimizers: tuple[str, ...] = tuple(sorted(OPTIMIZERS))) -> tuple[str, dict, dict]:
    """(model name, optimizer config, paramwise_cfg) with every paramwise option in play."""
    model_name = draw(st.sampled_from(sorted(ZOO)))
    opt_name = draw(st.sampled_from(optimizers))
    optimizer_cfg = dict(OPTIMIZERS[opt_name])
    has_wd = "weight_decay" in optimizer_cfg
    pw: dict[str, Any] = {}
    allowed = LR_MULT_KEYS + (DECAY_MULT_KEYS if has_wd else ())
    for key in draw(st.lists(st.sampled_from(allowed), unique=True)):
        pw[key] = draw(st.sampled_from(MULTS))
    names = SUBSTRINGS[model_name]
    keys = draw(st.lists(st.sampled_from(names) | st.sampled_from(names).map(lambda s: s[: max(1, len(s) // 2)]),
                         unique=True, max_size=4))
    if keys:
        custom = {}
        for key in keys:
            custom[key] = draw(custom_key_entry(opt_name.split("_")[0], has_wd))
        pw["custom_keys"] = custom
    if model_name in SHARED or draw(st.booleans()):
        pw["bypass_duplicate"] = True
    for key, choices in (
        ("group_by", ("hyperparams", "param")),
        ("frozen", ("exclude", "include")),
        ("norm_types", (["LlamaRMSNorm"], [nn.Linear], ["NoSuchNorm"])),
    ):
        if draw(st.booleans()):
            pw[key] = draw(st.sampled_from(choices))
    return model_name, optimizer_cfg, pw


def freeze_randomly(model: nn.Module, data: st.DataObject) -> None:
    params = list(model.parameters())
    mask = data.draw(st.lists(st.booleans(), min_size=len(params), max_size=len(params)), label="requires_grad")
    for trainable, p in zip(mask, params):
        p.requires_grad_(trainable)


def build_or_none(model: nn.Module, optimizer_cfg: dict, pw: dict) -> torch.optim.Optimizer | None:
    """The optimizer, or None (checked) when nothing would be optimized."""
    include = pw.get("frozen") == "include"
    if not include and not any(p.requires_grad for p in model.parameters()):
        with pytest.raises(ParamwiseError, match="no parameters to optimize"):
            paramwise.build_optimizer(model, {**optimizer_cfg, "paramwise_cfg": pw})
        return None
    return paramwise.build_optimizer(model, {**optimizer_cfg, "paramwise_cfg": pw})


def hyperparams(group: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in group.items() if k not in NOT_HYPERPARAMS}


def layout(optimizer: torch.optim.Optimizer) -> list[tuple[list[str], dict[str, Any]]]:
    return [(list(g["param_names"]), hyperparams(g)) for g in optimizer.param_groups]


@pytest.mark.slow
@settings(max_examples=300)
@given(configs(), st.data())
def test_layout_invariants(case: tuple[str, dict, dict], data: st.DataObject) -> None:
    model_name, optimizer_cfg, pw = case
    model = build(model_name)
    if data.draw(st.booleans(), label="random freezing"):
        freeze_randomly(model, data)
    optimizer = build_or_none(model, optimizer_cfg, pw)
    if optimizer is None:
        return
    groups = optimizer.param_groups
    named = list(model.named_parameters())  # the user's names, shared parameters under their first name
    position = {id(p): i for i, (_, p) in enumerate(named)}
    by_name = dict(named)

    # every parameter it should hold, exactly once; no frozen one unless frozen='include'
    held = [id(p) for g in groups for p in g["params"]]
    assert len(held) == len(set(held))
    include = pw.get("frozen") == "include"
    assert set(held) == {id(p) for _, p in named if p.requires_grad or include}
    if not include:
        assert all(p.requires_grad for g in groups for p in g["params"])

    # names are the user's names of those very tensors, in model order inside a group
    for g in groups:
        assert len(g["param_names"]) == len(g["params"])
        assert all(by_name[n] is p for n, p in zip(g["param_names"], g["params"]))
        order = [position[id(p)] for p in g["params"]]
        assert order == sorted(order)
    # groups in order of their first parameter
    firsts = [position[id(g["params"][0])] for g in groups]
    assert firsts == sorted(firsts)

    # as many groups as distinct hyperparameter sets (compared as dicts, not via paramwise's hashing)
    if pw.get("group_by") == "param":
        assert [len(g["params"]) for g in groups] == [1] * len(held)
    else:
        for i, a in enumerate(groups):
            for b in groups[i + 1:]:
                assert hyperparams(a) != hyperparams(b), "two groups with equal hyperparameters"

    # the plan agrees with the optimizer, entry by entry
    plan = paramwise.plan_params(model, {**optimizer_cfg, "paramwise_cfg": pw})
    assert [[plan.entries[i].name for i in spec.members] for spec in plan.groups] == [
        g["param_names"] for g in groups
    ]
    for spec, g in zip(plan.groups, groups):
        for i in spec.members:
            entry = plan.entries[i]
            assert entry.trainable == entry.param.requires_grad
            for key, value in entry.hyperparams.items():
                assert g[key] == value, (entry.name, key)

    # deterministic: the same model again, and a fresh copy of it, give the same layout
    again = build_or_none(model, optimizer_cfg, pw)
    assert again is not None and layout(again) == layout(optimizer)
    fresh = build(model_name)
    fresh.load_state_dict(model.state_dict())
    for p_fresh, p in zip(fresh.parameters(), model.parameters()):
        p_fresh.requires_grad_(p.requires_grad)
    fresh_opt = build_or_none(fresh, optimizer_cfg, pw)
    assert fresh_opt is not None and layout(fresh_opt) == layout(optimizer)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")  # torch.compile
@settings(max_examples=60)
@given(configs())
def test_wrappers_give_the_same_layout(case: tuple[str, dict, dict]) -> None:
    model_name, optimizer_cfg, pw = case
    model = build(model_name)
    bare = build_or_none(model, optimizer_cfg, pw)
    assert bare is not None
    expected = layout(bare)
    expected_params = [[id(p) for p in g["params"]] for g in bare.param_groups]
    compiled = torch.compile(model)  # an OptimizedModule; nothing is compiled until it is called
    assert "_orig_mod" in next(iter(dict(compiled.named_parameters())))
    for wrapped in (compiled, nn.DataParallel(model), nn.DataParallel(compiled)):
        optimizer = build_or_none(wrapped, optimizer_cfg, pw)
        assert optimizer is not None
        assert layout(optimizer) == expected
        assert [[id(p) for p in g["params"]] for g in optimizer.param_groups] == expected_params

    # compiled submodules put '_orig_mod' in the middle of names; it is not part of the user's names
    inner = build(model_name)
    for name, child in list(inner.named_children()):
        inner._modules[name] = torch.compile(child)
    if any(True for _ in inner.children()):
        assert any("._orig_mod." in n for n, _ in inner.named_parameters())
    optimizer = build_or_none(inner, optimizer_cfg, pw)
    assert optimizer is not None
    assert layout(optimizer) == expected


def _fill_grads(model: nn.Module, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    for p in model.parameters():
        p.grad = torch.randn(p.shape, generator=gen) if p.requires_grad else None


@pytest.mark.slow
@pytest.mark.parametrize(
    ("optimizers", "foreach"),
    [(("SGD", "SGD_no_wd"), False), (("SGD", "SGD_no_wd"), True),
     (("AdamW", "AdamW_no_wd"), False), (("AdamW", "AdamW_no_wd"), True)],
    ids=["sgd", "sgd-foreach", "adamw", "adamw-foreach"],
)
@settings(max_examples=40)
@given(data=st.data())
def test_merged_groups_step_like_one_group_per_parameter(
    optimizers: tuple[str, ...], foreach: bool, data: st.DataObject
) -> None:
    """Merging changes no update: the reference takes its values from paramwise's own plan, so this
    checks the merge, while the values themselves are checked against mmengine in test_differential."""
    model_name, optimizer_cfg, pw = data.draw(configs(optimizers))
    pw.pop("group_by", None)  # merged groups (the default)
    model = build(model_name)
    if data.draw(st.booleans(), label="random freezing"):
        freeze_randomly(model, data)
    optimizer_cfg = {**optimizer_cfg, "foreach": foreach}
    optimizer = build_or_none(model, optimizer_cfg, pw)
    if optimizer is None:
        return
    # the reference: the same values, one group per parameter, built by hand on a copy of the model
    reference_model = copy.deepcopy(model)
    twin = {id(p): q for p, q in zip(model.parameters(), reference_model.parameters())}
    reference_groups = [
        {"params": [twin[id(p)]], **{k: v for k, v in hyperparams(g).items() if k != "foreach"}}
        for g in optimizer.param_groups for p in g["params"]
    ]
    cls = type(optimizer)
    reference = cls(reference_groups, lr=optimizer_cfg["lr"], foreach=foreach)
    assert len(reference.param_groups) == sum(len(g["params"]) for g in optimizer.param_groups)
    if len(reference.param_groups) > 1 and len(optimizer.param_groups) == 1:
        assert len(optimizer.param_groups[0]["params"]) > 1  # merging happened
    before = [p.detach().clone() for p in model.parameters()]
    for step in range(2):
        _fill_grads(model, step)
        _fill_grads(reference_model, step)
        optimizer.step()
        reference.step()
    for (name, p), q in zip(model.named_parameters(), reference_model.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0, msg=lambda m, name=name: f"{name}: {m}")
    # the steps did something wherever they should have (the comparison is not between two no-ops)
    moving = {id(p) for g in optimizer.param_groups if g["lr"] > 0 for p in g["params"] if p.requires_grad}
    moved = {id(p) for a, p in zip(before, model.parameters()) if not torch.equal(a, p)}
    assert moved == moving


def test_step_comparison_detects_a_different_lr() -> None:
    """The step comparison fails when the reference gets different values (the check has teeth)."""
    model = build("vit")
    optimizer = paramwise.build_optimizer(model, dict(type="SGD", lr=0.1, momentum=0.9))
    reference_model = copy.deepcopy(model)
    reference = torch.optim.SGD(
        [{"params": [p], "lr": 0.1 if i else 0.2} for i, p in enumerate(reference_model.parameters())],
        lr=0.1, momentum=0.9,
    )
    _fill_grads(model, 0)
    _fill_grads(reference_model, 0)
    optimizer.step()
    reference.step()
    first = next(model.parameters())
    assert not torch.equal(first, next(reference_model.parameters()))


@pytest.mark.parametrize(
    ("optimizer_cfg", "option"),
    [(dict(type="AdamW", lr=0.1), dict(amsgrad=False)),  # AdamW's own default
     (dict(type="AdamW", lr=0.1), dict(weight_decay=0.01)),  # AdamW's default weight_decay, no base one
     (dict(type="SGD", lr=0.1, momentum=0.9), dict(momentum=0.9)),  # the config's value
     (dict(type="SGD", lr=0.1), dict(foreach=None))],  # a None default is a value too
)
def test_custom_option_equal_to_the_effective_value_does_not_split_a_group(
    optimizer_cfg: dict[str, Any], option: dict[str, Any]
) -> None:
    model = build("sequential")
    pw = dict(custom_keys={"bias": option})
    optimizer = paramwise.build_optimizer(model, {**optimizer_cfg, "paramwise_cfg": pw})
    assert len(optimizer.param_groups) == 1
    plan = paramwise.plan_params(model, {**optimizer_cfg, "paramwise_cfg": pw})
    key, value = next(iter(option.items()))
    assert all(e.hyperparams[key] == value for e in plan.entries)
    assert {e.rules[key] for e in plan.entries} == {"default", "custom_keys['bias']"}
    # a different value still gets its own group
    pw = dict(custom_keys={"bias": dict(eps=1e-3) if optimizer_cfg["type"] == "AdamW" else dict(dampening=0.5)})
    assert len(paramwise.build_optimizer(model, {**optimizer_cfg, "paramwise_cfg": pw}).param_groups) == 2
