"""Differential tests: paramwise gives every trainable parameter mmengine's lr, weight_decay and options.

mmengine's ``DefaultOptimWrapperConstructor`` is the reference. Deliberate differences, and how
the comparison accounts for them:

- paramwise treats ``nn.RMSNorm`` as a norm layer; mmengine 0.10 does not. mmengine's module
  global ``LayerNorm`` is patched to ``(nn.LayerNorm, nn.RMSNorm)`` so both agree.
- paramwise always leaves frozen parameters out (unless ``frozen='include'``); mmengine keeps
  them when ``paramwise_cfg`` is empty. Only trainable parameters are compared.
- paramwise rejects a decay multiplier without a base weight_decay, an lr multiplier without a
  base lr, and negative multipliers; such configs are not generated here.
- paramwise raises on a shared parameter without ``bypass_duplicate`` even with an empty
  ``paramwise_cfg`` (mmengine then uses ``model.parameters()``, which de-duplicates), so models
  with shared parameters always get ``bypass_duplicate=True``.
- paramwise does not copy ``lr_mult``/``decay_mult`` into the groups and adds ``param_names``;
  those keys are not compared. Everything else in a group (torch fills in the optimizer's
  defaults on both sides) must be equal.
- mmengine recognises deformable convs only through mmcv's classes when mmcv is installed. A
  fake ``mmcv.ops`` whose ``DeformConv2d``/``ModulatedDeformConv2d`` are the zoo's stand-ins is
  put in ``sys.modules`` (and ``mmcv_full_available`` patched), so DCN semantics are compared too.
"""

from __future__ import annotations

import contextlib
import sys
import types
from collections.abc import Iterator, Mapping
from typing import Any
from unittest import mock

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import paramwise
from expect import expect_warnings
from model_zoo import SHARED, ZOO, DeformConv2d, ModulatedDeformConv2d, build
from strategies import DECAY_MULT_KEYS, LR_MULT_KEYS, MULTS, SUBSTRINGS, custom_key_entry

mmengine_dc = pytest.importorskip("mmengine.optim.optimizer.default_constructor")
from mmengine.optim import DefaultOptimWrapperConstructor  # noqa: E402  (registers the optimizers)

# keys of a param group that are not hyperparameters or that only one side writes
NOT_COMPARED = frozenset({"params", "param_names", "lr_mult", "decay_mult"})
# paramwise-only options: mmengine does not know them (and reads none of them)
PARAMWISE_ONLY = frozenset({"frozen", "strict", "group_by", "norm_types"})

ADAMW = dict(type="AdamW", lr=1e-3, weight_decay=0.05)
SGD = dict(type="SGD", lr=0.1, momentum=0.9, weight_decay=1e-4)
SGD_NO_WD = dict(type="SGD", lr=0.1, momentum=0.9)  # no base weight_decay: lr rules only


@contextlib.contextmanager
def mmengine_patched() -> Iterator[None]:
    """RMSNorm as a norm, the zoo's fake DCN classes as mmcv's, and mmengine's logging silenced."""
    mmcv = types.ModuleType("mmcv")
    ops = types.ModuleType("mmcv.ops")
    ops.DeformConv2d = DeformConv2d  # type: ignore[attr-defined]
    ops.ModulatedDeformConv2d = ModulatedDeformConv2d  # type: ignore[attr-defined]
    mmcv.ops = ops  # type: ignore[attr-defined]
    with contextlib.ExitStack() as stack:
        stack.enter_context(mock.patch.object(mmengine_dc, "LayerNorm", (nn.LayerNorm, nn.RMSNorm)))
        stack.enter_context(mock.patch.object(mmengine_dc, "mmcv_full_available", lambda: True))
        stack.enter_context(mock.patch.object(mmengine_dc, "print_log", lambda *a, **k: None))
        stack.enter_context(mock.patch.dict(sys.modules, {"mmcv": mmcv, "mmcv.ops": ops}))
        yield


def mmengine_optimizer(model: nn.Module, optimizer_cfg: Mapping[str, Any], pw: Mapping[str, Any] | None):
    mm_pw = None if pw is None else {k: v for k, v in pw.items() if k not in PARAMWISE_ONLY}
    with mmengine_patched():
        wrapper_cfg = dict(type="OptimWrapper", optimizer=dict(optimizer_cfg))
        return DefaultOptimWrapperConstructor(wrapper_cfg, mm_pw)(model).optimizer


def paramwise_optimizer(model: nn.Module, optimizer_cfg: Mapping[str, Any], pw: Mapping[str, Any] | None):
    cfg = dict(optimizer_cfg)
    if pw is not None:
        cfg["paramwise_cfg"] = pw
    return paramwise.build_optimizer(model, cfg)


def values_by_param(optimizer: torch.optim.Optimizer) -> dict[int, dict[str, Any]]:
    """id(parameter) -> its group's hyperparameters; a parameter in two groups is a failure."""
    out: dict[int, dict[str, Any]] = {}
    for group in optimizer.param_groups:
        values = {k: v for k, v in group.items() if k not in NOT_COMPARED}
        for p in group["params"]:
            assert id(p) not in out, "a parameter is in two groups"
            out[id(p)] = values
    return out


def assert_same_as_mmengine(model: nn.Module, optimizer_cfg: Mapping[str, Any], pw: Mapping[str, Any] | None) -> None:
    ours = values_by_param(paramwise_optimizer(model, optimizer_cfg, pw))
    theirs = values_by_param(mmengine_optimizer(model, optimizer_cfg, pw))
    trainable = {id(p): n for n, p in model.named_parameters() if p.requires_grad}
    frozen = {id(p) for p in model.parameters() if not p.requires_grad}
    include_frozen = pw is not None and pw.get("frozen") == "include"
    expected_ids = set(trainable) | (frozen if include_frozen else set())
    assert set(ours) == expected_ids, "paramwise lost a parameter or included one it should not"
    assert set(trainable) <= set(theirs)
    got = {name: ours[i] for i, name in trainable.items()}
    want = {name: theirs[i] for i, name in trainable.items()}
    assert got == want


def _with_dup(name: str, pw: dict[str, Any] | None) -> dict[str, Any] | None:
    if name not in SHARED:
        return pw
    return {**(pw or {}), "bypass_duplicate": True}


ALL_MULTS = dict(
    bias_lr_mult=2.0,
    bias_decay_mult=0.5,
    norm_decay_mult=0.0,
    dwconv_decay_mult=0.1,
    flat_decay_mult=0.25,
    dcn_offset_lr_mult=0.01,
)

# (id, optimizer config, paramwise_cfg)
CASES: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = [
    ("none", ADAMW, None),
    ("empty", ADAMW, {}),
    ("bias_lr", ADAMW, dict(bias_lr_mult=2.0)),
    ("bias_decay", ADAMW, dict(bias_decay_mult=0.0)),
    ("norm_decay", ADAMW, dict(norm_decay_mult=0.0)),
    ("dwconv_decay", ADAMW, dict(dwconv_decay_mult=0.5)),
    ("flat_decay", ADAMW, dict(flat_decay_mult=0.0)),
    ("dcn_offset", ADAMW, dict(dcn_offset_lr_mult=0.1)),
    ("dcn_and_bias_lr", SGD, dict(dcn_offset_lr_mult=0.1, bias_lr_mult=2)),
    ("all_mults_adamw", ADAMW, ALL_MULTS),
    ("all_mults_sgd", SGD, ALL_MULTS),
    ("lr_rules_without_base_wd", SGD_NO_WD,
     dict(bias_lr_mult=3, dcn_offset_lr_mult=0.5, custom_keys={"head": dict(lr_mult=0.1), "norm": dict()})),
    ("custom_basic", ADAMW, dict(custom_keys={"head": dict(lr_mult=10.0), "norm": dict(decay_mult=0.0)})),
    ("custom_overlapping", ADAMW, dict(custom_keys={
        "layer": dict(lr_mult=0.5),
        "layers.0": dict(lr_mult=2.0),
        "layers.3": dict(decay_mult=0.0),
        "blocks": dict(lr_mult=0.1),
        "blocks.0": dict(lr_mult=0.2, decay_mult=0.5),
        "blocks.1.attn": dict(decay_mult=2.0),
        "encoder.layers.1": dict(lr_mult=0.3),
        "conv_offset": dict(lr_mult=0.7),
        "dcn.conv_offset": dict(lr_mult=0.9),
    })),
    ("custom_root_keys", ADAMW, dict(custom_keys={
        ".pos_embed": dict(decay_mult=0.0),
        "cls_token": dict(decay_mult=0.0, lr_mult=0.5),
        ".bias": dict(lr_mult=3.0),  # the root 'bias' and every child bias ('fc.bias' contains '.bias')
        ".scale": dict(decay_mult=0.1),
        "temperature": dict(lr_mult=0.0),
    }, norm_decay_mult=0.0, bias_lr_mult=2.0)),
    ("custom_equal_length_ties", ADAMW, dict(custom_keys={"norm": dict(lr_mult=2.0), "bias": dict(lr_mult=3.0),
                                                          "head": dict(lr_mult=4.0), "fc": dict(lr_mult=5.0),
                                                          "bn": dict(lr_mult=6.0), "ln": dict(lr_mult=7.0)})),
    ("custom_options_adamw", ADAMW, dict(custom_keys={
        "head": dict(lr_mult=0.1, betas=(0.8, 0.9), eps=1e-6),
        "embed": dict(decay_mult=0.0, amsgrad=True),
        "norm": dict(eps=1e-5),
    }, bias_decay_mult=0.0)),
    ("custom_options_sgd", SGD, dict(custom_keys={
        "head": dict(momentum=0.5, lr_mult=2.0),
        "bn": dict(dampening=0.1, decay_mult=0.0),
        "stem": dict(momentum=0.0),
    }, norm_decay_mult=0.0, dwconv_decay_mult=0.0)),
    ("custom_explicit_lr_and_wd", ADAMW, dict(custom_keys={
        "head": dict(lr=0.5, lr_mult=2.0),
        "norm": dict(weight_decay=0.3, decay_mult=0.0),
    })),
    ("custom_explicit_wd_without_base", SGD_NO_WD, dict(custom_keys={"head": dict(weight_decay=1e-3)})),
    ("custom_and_builtin", ADAMW, dict(custom_keys={"head": dict(lr_mult=0.1), "stem": dict(decay_mult=3.0)},
                                       **ALL_MULTS)),
    ("custom_zero_mults", SGD, dict(custom_keys={"fc": dict(lr_mult=0.0, decay_mult=0.0)}, bias_lr_mult=0.0)),
    ("custom_unmatched", ADAMW, dict(custom_keys={"no_such_layer": dict(lr_mult=0.1)}, norm_decay_mult=0.0)),
    ("paramwise_only_keys", ADAMW, dict(group_by="param", strict=False, norm_types=[nn.LayerNorm],
                                        flat_decay_mult=0.0)),
    ("frozen_include", SGD, dict(frozen="include", bias_lr_mult=2.0)),
]


@pytest.mark.filterwarnings("ignore::paramwise.ParamwiseWarning")  # unmatched keys, frozen, duplicates
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("model_name", sorted(ZOO))
def test_same_as_mmengine(model_name: str, case: tuple[str, dict[str, Any], dict[str, Any] | None]) -> None:
    _, optimizer_cfg, pw = case
    assert_same_as_mmengine(build(model_name), optimizer_cfg, _with_dup(model_name, pw))


@pytest.mark.filterwarnings("ignore::paramwise.ParamwiseWarning")
def test_comparison_can_fail() -> None:
    """The harness sees a difference: mmengine without the RMSNorm patch disagrees on RMSNorm."""
    model = build("norms")
    pw = dict(norm_decay_mult=0.0)
    with mock.patch.object(mmengine_dc, "print_log", lambda *a, **k: None):
        theirs = values_by_param(
            DefaultOptimWrapperConstructor(dict(type="OptimWrapper", optimizer=dict(ADAMW)), pw)(model).optimizer
        )
    ours = values_by_param(paramwise_optimizer(model, ADAMW, pw))
    assert ours[id(model.rms.weight)]["weight_decay"] == 0.0
    assert theirs[id(model.rms.weight)]["weight_decay"] == ADAMW["weight_decay"]


def test_aliased_parameter_in_one_module_is_one_parameter() -> None:
    """A Parameter registered twice on one module is one parameter to torch and mmengine (no error)."""
    model = build("aliased_param")
    pw = dict(norm_decay_mult=0.0, bias_lr_mult=2.0)
    assert_same_as_mmengine(model, ADAMW, pw)
    names = [n for g in paramwise_optimizer(model, ADAMW, pw).param_groups for n in g["param_names"]]
    assert sorted(names) == sorted(n for n, _ in model.named_parameters())


# --- DCN, checked against mmengine's documented rule rather than against mmengine itself -------------


def test_dcn_offset_rule() -> None:
    """The conv_offset child (a Conv2d) of a DCN gets lr * dcn_offset_lr_mult, and neither bias_lr_mult
    nor the bias/flat decay multipliers; other children of a DCN get no bias/flat multipliers; a
    'conv_offset' whose parent is not a DCN is an ordinary conv; a DCN's own bias is an ordinary bias."""
    model = build("dcn")
    lr, wd = SGD["lr"], SGD["weight_decay"]
    pw = dict(dcn_offset_lr_mult=0.1, bias_lr_mult=2.0, bias_decay_mult=0.5, flat_decay_mult=0.25,
              norm_decay_mult=0.0)
    with expect_warnings(r"flat_decay_mult: decides no parameter: .* is set by bias_decay_mult"):
        plan = paramwise.plan_params(model, {**SGD, "paramwise_cfg": pw})
    got = {e.name: (e.hyperparams["lr"], e.hyperparams["weight_decay"]) for e in plan.entries}
    want: dict[str, tuple[float, float]] = {
        "stem.weight": (lr, wd),
        "stem.bias": (lr * 2.0, wd * 0.5),
        "conv_offset.weight": (lr, wd),  # not inside a DCN
        "conv_offset.bias": (lr * 2.0, wd * 0.5),
        "head.weight": (lr, wd),
        "head.bias": (lr * 2.0, wd * 0.5),
    }
    for dcn in ("dcn", "mdcn", "neck.0"):
        want.update({
            f"{dcn}.weight": (lr, wd),
            f"{dcn}.bias": (lr * 2.0, wd * 0.5),  # the DCN's parent is not a DCN
            f"{dcn}.conv_offset.weight": (lr * 0.1, wd),
            f"{dcn}.conv_offset.bias": (lr * 0.1, wd),  # no bias_lr_mult, no bias/flat decay
            f"{dcn}.mask_fc.weight": (lr, wd),
            f"{dcn}.mask_fc.bias": (lr, wd),  # a DCN child: no bias_lr_mult, no bias/flat decay
            f"{dcn}.mask_conv.weight": (lr, wd),  # a DCN's Conv2d child not named conv_offset
            f"{dcn}.mask_conv.bias": (lr, wd),
            f"{dcn}.conv_offset_seq.0.weight": (lr, wd),  # grandchild: parent is a Sequential
            f"{dcn}.conv_offset_seq.0.bias": (lr * 2.0, wd * 0.5),
            f"{dcn}.conv_offset_norm.weight": (lr, 0.0),  # a norm, not a Conv2d: norm decay only
            f"{dcn}.conv_offset_norm.bias": (lr, 0.0),
        })
    assert got.keys() == want.keys()
    for i in (0, 1):  # lr, weight_decay
        assert {n: v[i] for n, v in got.items()} == pytest.approx({n: v[i] for n, v in want.items()})
    assert plan["dcn.conv_offset.weight"].rules["lr"] == "dcn_offset_lr_mult"

    # without dcn_offset_lr_mult the offset conv keeps the base lr, and still no bias multipliers
    plan = paramwise.plan_params(model, {**SGD, "paramwise_cfg": dict(bias_lr_mult=2.0, bias_decay_mult=0.5)})
    assert plan["dcn.conv_offset.bias"].hyperparams == {"lr": lr, "weight_decay": wd}
    # a custom key beats the DCN rule
    pw = dict(dcn_offset_lr_mult=0.1, custom_keys={"dcn.conv_offset": dict(lr_mult=5.0)})
    plan = paramwise.plan_params(model, {**SGD, "paramwise_cfg": pw})
    assert plan["dcn.conv_offset.weight"].hyperparams["lr"] == pytest.approx(lr * 5.0)
    assert plan["mdcn.conv_offset.weight"].hyperparams["lr"] == pytest.approx(lr * 5.0)  # "mdcn.conv_offset"
    assert plan["neck.0.conv_offset.weight"].hyperparams["lr"] == pytest.approx(lr * 0.1)


@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")  # torch.compile
def test_compiled_children_of_a_dcn_keep_the_dcn_rules() -> None:
    """torch.compile around a DCN's child (or the DCN) changes neither names nor rules."""
    cfg = {**SGD, "paramwise_cfg": dict(dcn_offset_lr_mult=0.1, bias_lr_mult=2.0, bias_decay_mult=0.5)}
    want = {e.name: dict(e.hyperparams) for e in paramwise.plan_params(build("dcn"), cfg).entries}
    model = build("dcn")
    model.dcn.conv_offset = torch.compile(model.dcn.conv_offset)
    model.dcn.mask_fc = torch.compile(model.dcn.mask_fc)
    model.mdcn = torch.compile(model.mdcn)
    assert "dcn.conv_offset._orig_mod.bias" in dict(model.named_parameters())
    got = {e.name: dict(e.hyperparams) for e in paramwise.plan_params(model, cfg).entries}
    assert got == want
    assert got["dcn.conv_offset.bias"]["lr"] == pytest.approx(SGD["lr"] * 0.1)


# --- generated configs -------------------------------------------------------------------------------

OPTIMIZERS = {
    "AdamW": ADAMW,
    "AdamW_no_wd": dict(type="AdamW", lr=1e-3),  # AdamW's own default weight_decay is not a base one
    "SGD": SGD,
    "SGD_no_wd": SGD_NO_WD,
}
# substrings of every zoo model's names, computed once


@st.composite
def custom_key_names(draw: st.DrawFn, model_name: str) -> str:
    """A real name substring, or an overlapping variant of one (a shorter prefix, a dotted form)."""
    name = draw(st.sampled_from(SUBSTRINGS[model_name]))
    variant = draw(st.sampled_from(("as_is", "as_is", "prefix", "suffix", "dot_before", "dot_after")))
    if variant == "prefix" and len(name) > 1:
        return name[: draw(st.integers(1, len(name) - 1))]
    if variant == "suffix" and len(name) > 1:
        return name[draw(st.integers(1, len(name) - 1)):]
    if variant == "dot_before":
        return f".{name}"
    if variant == "dot_after":
        return f"{name}."
    return name


@st.composite
def configs(draw: st.DrawFn) -> tuple[str, dict, dict]:
    model_name = draw(st.sampled_from(sorted(ZOO)))
    opt_name = draw(st.sampled_from(sorted(OPTIMIZERS)))
    optimizer_cfg = OPTIMIZERS[opt_name]
    has_wd = "weight_decay" in optimizer_cfg
    family = opt_name.split("_")[0]
    pw: dict[str, Any] = {}
    allowed = LR_MULT_KEYS + (DECAY_MULT_KEYS if has_wd else ())
    for key in draw(st.lists(st.sampled_from(allowed), unique=True, max_size=len(allowed))):
        pw[key] = draw(st.sampled_from(MULTS))
    keys = draw(st.lists(custom_key_names(model_name), unique=True, max_size=5))
    if keys:
        custom = {}
        for key in keys:
            custom[key] = draw(custom_key_entry(family, has_wd))
        pw["custom_keys"] = custom
    if draw(st.booleans()):
        pw["group_by"] = draw(st.sampled_from(("hyperparams", "param")))
    if draw(st.booleans()):
        pw["frozen"] = draw(st.sampled_from(("exclude", "include")))
    if model_name in SHARED or draw(st.booleans()):
        pw["bypass_duplicate"] = True
    return model_name, optimizer_cfg, pw


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::paramwise.ParamwiseWarning")  # generated keys often match nothing
@settings(max_examples=400)
@given(configs())
def test_generated_configs_same_as_mmengine(case: tuple[str, dict, dict]) -> None:
    model_name, optimizer_cfg, pw = case
    assert_same_as_mmengine(build(model_name), optimizer_cfg, pw)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::paramwise.ParamwiseWarning")
@settings(max_examples=150)
@given(configs(), st.data())
def test_generated_configs_with_random_freezing(case: tuple[str, dict, dict], data: st.DataObject) -> None:
    model_name, optimizer_cfg, pw = case
    model = build(model_name)
    params = list(model.parameters())
    mask = data.draw(st.lists(st.booleans(), min_size=len(params), max_size=len(params)))
    if not any(m and p.requires_grad for m, p in zip(mask, params)):
        mask[0] = True
        params[0].requires_grad_(True)
    for keep, p in zip(mask, params):
        if not keep:
            p.requires_grad_(False)
    assert_same_as_mmengine(model, optimizer_cfg, pw)
