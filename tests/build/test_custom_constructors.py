"""Constructors written for mmcv/mmengine (subclasses overriding ``add_params``) work unchanged.

The same subclass body is mixed into mmengine's ``DefaultOptimWrapperConstructor`` and into
paramwise's: every trainable parameter must get the same lr and weight decay, in fewer groups.
"""

from __future__ import annotations

import warnings
from typing import Any
from unittest import mock

import pytest
import torch
from torch import nn

import paramwise
from paramwise import (
    OPTIMIZER_BUILDERS,
    ConfigError,
    DefaultOptimizerConstructor,
    DefaultOptimWrapperConstructor,
    ParamwiseWarning,
    build_optimizer,
    plan_params,
)


class Video(nn.Module):
    """A small TSM-shaped model: a first conv, conv blocks with norms, and a classifier head."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3)
        self.blocks = nn.Sequential(nn.Conv2d(8, 8, 3), nn.BatchNorm2d(8), nn.ReLU(),
                                    nn.Conv2d(8, 8, 1, bias=False), nn.GroupNorm(2, 8))
        self.fc = nn.Linear(8, 5)


class HeadBoostMixin:
    """mmaction2's TSM constructor in shape: its own paramwise_cfg key, groups made by hand.

    Written here in our own words; it only reads what mmengine's constructors expose.
    """

    base_lr: float
    base_wd: float
    paramwise_cfg: dict[str, Any]

    def add_params(self, params: list[dict[str, Any]], module: nn.Module, **kwargs: Any) -> None:
        boost = self.paramwise_cfg.get("head_boost", False)
        convs = [m for m in module.modules() if isinstance(m, nn.Conv2d)]
        norms = [m for m in module.modules() if isinstance(m, (nn.BatchNorm2d, nn.GroupNorm))]
        heads = [m for m in module.modules() if isinstance(m, nn.Linear)]
        first, rest = convs[0], convs[1:]
        params.append({"params": [first.weight], "lr": self.base_lr, "weight_decay": self.base_wd})
        params.append({"params": [first.bias], "lr": self.base_lr * 2, "weight_decay": 0})
        params.append({"params": [c.weight for c in rest], "lr": self.base_lr, "weight_decay": self.base_wd})
        params.append({"params": [c.bias for c in rest if c.bias is not None], "lr": self.base_lr * 2,
                       "weight_decay": 0})
        params.append({"params": [p for n in norms for p in n.parameters()], "lr": self.base_lr, "weight_decay": 0})
        factor = 5 if boost else 1
        params.append({"params": [h.weight for h in heads], "lr": self.base_lr * factor,
                       "weight_decay": self.base_wd})
        params.append({"params": [h.bias for h in heads], "lr": self.base_lr * 2 * factor, "weight_decay": 0})


class PartlyDefaultMixin:
    """A constructor that sets two modules itself and hands every other module to the default rules.

    mmengine's ``add_params`` recurses through ``self.add_params``, so this sees every module.
    """

    base_lr: float

    def add_params(self, params: list[dict[str, Any]], module: nn.Module, prefix: str = "",
                   is_dcn_module: Any = None) -> None:
        if prefix in ("stem", "fc"):
            params.append({"params": list(module.parameters()), "lr": self.base_lr * (0.1 if prefix == "stem" else 10)})
            return
        super().add_params(params, module, prefix, is_dcn_module)  # type: ignore[misc]


@OPTIMIZER_BUILDERS.register_module(force=True)
class HeadBoostConstructor(HeadBoostMixin, DefaultOptimWrapperConstructor):
    """paramwise's side of the comparison."""


@OPTIMIZER_BUILDERS.register_module(force=True)
class PartlyDefaultConstructor(PartlyDefaultMixin, DefaultOptimizerConstructor):
    """paramwise's side, built on the mmcv-style base."""


SGD = dict(type="SGD", lr=0.01, momentum=0.9, weight_decay=1e-4)


def values(optimizer: torch.optim.Optimizer, model: nn.Module) -> dict[str, tuple[float, float]]:
    """name -> (lr, weight_decay), rounded so that equal products compare equal."""
    names = {id(p): n for n, p in model.named_parameters()}
    return {names[id(p)]: (round(g["lr"], 12), round(g["weight_decay"], 12))
            for g in optimizer.param_groups for p in g["params"]}


def mmengine_build(mixin: type, model: nn.Module, pw: dict[str, Any]) -> torch.optim.Optimizer:
    dc = pytest.importorskip("mmengine.optim.optimizer.default_constructor")
    cls = type("MM" + mixin.__name__, (mixin, dc.DefaultOptimWrapperConstructor), {})
    with mock.patch.object(dc, "print_log", lambda *a, **k: None):
        return cls(dict(type="OptimWrapper", optimizer=dict(SGD)), pw)(model).optimizer


@pytest.mark.parametrize("boost", [True, False])
def test_handmade_groups_match_mmengine_in_fewer_groups(boost: bool) -> None:
    model = Video()
    pw = dict(head_boost=boost)
    ours = build_optimizer(model, dict(SGD, constructor="HeadBoostConstructor", paramwise_cfg=pw))
    theirs = mmengine_build(HeadBoostMixin, model, pw)
    assert values(ours, model) == values(theirs, model)
    assert values(ours, model)["fc.weight"][0] == pytest.approx(0.01 * (5 if boost else 1))
    assert len(ours.param_groups) < len([g for g in theirs.param_groups if g["params"]])
    assert sorted(n for g in ours.param_groups for n in g["param_names"]) == sorted(dict(model.named_parameters()))


def test_super_add_params_on_part_of_the_model_matches_mmengine() -> None:
    model = Video()
    pw = dict(norm_decay_mult=0.0, bias_lr_mult=2.0)
    ours = build_optimizer(model, dict(SGD, constructor="PartlyDefaultConstructor", paramwise_cfg=pw))
    theirs = mmengine_build(PartlyDefaultMixin, model, pw)
    assert values(ours, model) == values(theirs, model)
    plan = plan_params(model, dict(SGD, constructor="PartlyDefaultConstructor", paramwise_cfg=pw))
    # values from the default rules keep their reasons; values the subclass set name it
    assert plan["blocks.1.weight"].rules["weight_decay"] == "norm_decay_mult"
    assert plan["blocks.0.bias"].rules["lr"] == "bias_lr_mult"
    assert plan["fc.weight"].rules["lr"] == "PartlyDefaultConstructor.add_params"
    assert plan["fc.weight"].rules["weight_decay"] == "default"


def test_constructor_reads_base_values_and_a_dict_paramwise_cfg() -> None:
    seen: dict[str, Any] = {}

    class Peek(DefaultOptimizerConstructor):
        def add_params(self, params: list[dict[str, Any]], module: nn.Module, **kwargs: Any) -> None:
            seen.update(base_lr=self.base_lr, base_wd=self.base_wd, pw=self.paramwise_cfg, cfg=self.optimizer_cfg)
            params.append({"params": list(module.parameters())})

    build_optimizer(Video(), dict(SGD, constructor=Peek))
    assert seen["base_lr"] == 0.01 and seen["base_wd"] == 1e-4
    assert isinstance(seen["pw"], dict) and seen["pw"] == {}  # never None, as in mmengine
    assert seen["cfg"]["type"] == "SGD"


def test_unread_own_key_is_reported_with_the_key_the_constructor_asked_for() -> None:
    with pytest.warns(ParamwiseWarning, match=r"paramwise_cfg -> head_bost: is not a paramwise_cfg option and "
                                              r"HeadBoostConstructor.add_params did not read it.*'head_boost'"):
        build_optimizer(Video(), dict(SGD, constructor="HeadBoostConstructor", paramwise_cfg=dict(head_bost=True)))


def test_a_parameter_left_out_by_add_params_is_reported() -> None:
    class DropsHead(DefaultOptimizerConstructor):
        def add_params(self, params: list[dict[str, Any]], module: nn.Module, **kwargs: Any) -> None:
            params.append({"params": [p for n, p in module.named_parameters() if not n.startswith("fc")]})

    with pytest.warns(ParamwiseWarning, match=r"2 trainable parameters are in no group of DropsHead.add_params "
                                              r"and will not be trained: 'fc.weight', 'fc.bias'"):
        build_optimizer(Video(), dict(SGD, constructor=DropsHead))


@pytest.mark.parametrize("bad, message", [
    (lambda m: [{"params": [torch.zeros(2, requires_grad=True)]}], "not a parameter of the model"),
    (lambda m: [{"params": [m.fc.weight]}, {"params": [m.fc.weight]}], "'fc.weight', which an earlier group holds"),
    (lambda m: [[m.fc.weight]], "must be a dict with a 'params' list"),
])
def test_unusable_groups_are_config_errors(bad: Any, message: str) -> None:
    class Bad(DefaultOptimizerConstructor):
        def add_params(self, params: list[Any], module: nn.Module, **kwargs: Any) -> None:
            params.extend(bad(module))

    with pytest.raises(ConfigError, match=message):
        build_optimizer(Video(), dict(SGD, constructor=Bad))


def test_default_wrapper_constructor_takes_mmengines_arguments() -> None:
    model = Video()
    cfg = dict(type="OptimWrapper", optimizer=dict(SGD), clip_grad=dict(max_norm=1.0))
    constructor = DefaultOptimWrapperConstructor(cfg, dict(norm_decay_mult=0.0))
    optimizer = constructor(model)
    assert values(optimizer, model)["blocks.1.weight"] == (0.01, 0.0)
    assert constructor.optim_wrapper_cfg == dict(type="OptimWrapper", clip_grad=dict(max_norm=1.0))
    inside = DefaultOptimWrapperConstructor(dict(optimizer=dict(SGD), paramwise_cfg=dict(norm_decay_mult=0.0)))
    assert values(inside(model), model) == values(optimizer, model)
    with pytest.raises(KeyError, match="optim_wrapper -> optimizer: is missing"):
        DefaultOptimWrapperConstructor(dict(type="OptimWrapper"))
    with pytest.raises(TypeError):
        DefaultOptimWrapperConstructor([SGD])  # type: ignore[arg-type]


def test_group_flags_reach_the_groups_and_the_plan() -> None:
    model = Video()
    pw = dict(custom_keys={"fc": dict(fix_lr=True), "blocks.1": dict(decay_mult=0.0, lars_exclude=True),
                           "stem": dict(my_flag=3)}, group_flags=["my_flag"])
    optimizer = build_optimizer(model, dict(SGD, paramwise_cfg=pw))
    flags = {n: (g.get("fix_lr"), g.get("lars_exclude"), g.get("my_flag"))
             for g in optimizer.param_groups for n in g["param_names"]}
    assert flags["fc.weight"] == (True, None, None)
    assert flags["blocks.1.bias"] == (None, True, None)
    assert flags["stem.weight"] == (None, None, 3)
    assert flags["blocks.0.weight"] == (None, None, None)
    plan = plan_params(model, dict(SGD, paramwise_cfg=pw))
    assert "fix_lr" in plan.option_keys() and plan["fc.bias"].rules["fix_lr"] == "custom_keys['fc']"


def test_registered_group_flag_and_typos_still_caught() -> None:
    with pytest.raises(ConfigError, match=r"does not take 'fix_lrr'. Did you mean 'fix_lr'"):
        build_optimizer(Video(), dict(SGD, paramwise_cfg=dict(custom_keys={"fc": dict(fix_lrr=True)})))
    with pytest.raises(ConfigError, match=r"does not take 'wd_mult'. Did you mean .*'decay_mult'"):
        build_optimizer(Video(), dict(SGD, paramwise_cfg=dict(custom_keys={"fc": dict(wd_mult=0.0)})))
    with pytest.raises(ConfigError, match=r"'_delete'"):
        build_optimizer(Video(), dict(SGD, paramwise_cfg=dict(custom_keys={"fc": dict(_delete=True)})))
    paramwise.register_group_flag("ema_skip", "my EMA hook skips this group")
    try:
        optimizer = build_optimizer(Video(), dict(SGD, paramwise_cfg=dict(custom_keys={"fc": dict(ema_skip=1)})))
        assert any(g.get("ema_skip") == 1 for g in optimizer.param_groups)
    finally:
        paramwise.GROUP_FLAGS.pop("ema_skip")


def test_pseudo_wrapper_is_unwrapped_but_a_model_with_its_own_parameters_is_not() -> None:
    class Pseudo:  # any object holding the model in .module, as in mmengine's tests
        def __init__(self, module: nn.Module) -> None:
            self.module = module

    class PseudoModule(nn.Module):
        def __init__(self, module: nn.Module) -> None:
            super().__init__()
            self.module = module

    class HasOwn(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.module = nn.Linear(2, 2)
            self.scale = nn.Parameter(torch.ones(1))

    cfg = dict(SGD, paramwise_cfg=dict(custom_keys={"fc": dict(lr_mult=0.1)}))
    for wrapper in (Pseudo(Video()), PseudoModule(Video())):
        plan = plan_params(wrapper, cfg)  # type: ignore[arg-type]
        assert plan["fc.weight"].hyperparams["lr"] == pytest.approx(0.001)
    names = [e.name for e in plan_params(HasOwn(), SGD).entries]
    assert names == ["scale", "module.weight", "module.bias"]


def test_muon_names_the_parameters_it_cannot_take() -> None:
    if not hasattr(torch.optim, "Muon"):
        pytest.skip("torch without Muon")
    with pytest.raises(ConfigError, match=r"Muon only optimizes 2-D matrices, but 10 parameters are not 2-D: "
                                          r"'stem.weight \(8, 3, 3, 3\)', 'stem.bias \(8,\)'"):
        build_optimizer(Video(), dict(type="Muon", lr=0.02))
    linear = nn.Linear(4, 4, bias=False)
    assert isinstance(build_optimizer(linear, dict(type="Muon", lr=0.02)), torch.optim.Muon)


def test_passing_a_whole_config_says_what_to_pass() -> None:
    whole = dict(model=dict(type="X"), optim_wrapper=dict(optimizer=dict(SGD)))
    with pytest.raises(ConfigError, match=r"this is a whole config.*optimizer_config\(cfg\).optimizer"):
        build_optimizer(Video(), whole)
    with pytest.raises(ConfigError, match="this is an optim_wrapper config"):
        build_optimizer(Video(), dict(type="OptimWrapper", optimizer=dict(SGD)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        build_optimizer(Video(), paramwise.optimizer_config(whole).optimizer)
