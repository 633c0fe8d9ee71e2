"""A ``constructor`` that is not one is a ConfigError at its path (issue 17, 6b); keys that would show as
nothing, or be misread, are quoted in problem paths (issue 17, 6c)."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

import paramwise
from paramwise import ConfigError, DefaultOptimizerConstructor, build_optimizer, plan_params
from paramwise.build.constructors import OPTIMIZER_BUILDERS
from paramwise.errors import Problem, format_path

SGD = dict(type="SGD", lr=0.1)


def _model() -> nn.Module:
    return nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))


# ------------------------------------------------------------------------------- 6b: constructors
class NoCall:
    """A class with the constructor arguments whose instances cannot be called with a model."""

    def __init__(self, optimizer_cfg: Any, paramwise_cfg: Any = None) -> None:
        self.cfg = optimizer_cfg


class ModelOnly:
    """Callable instances, but built from the model rather than from the configs."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model

    def __call__(self, model: nn.Module) -> torch.optim.Optimizer:
        return torch.optim.SGD(model.parameters(), lr=0.1)


class ReturnsAList:
    """The constructor interface, but calling it with a model gives a list of parameters."""

    def __init__(self, optimizer_cfg: Any, paramwise_cfg: Any = None) -> None:
        pass

    def __call__(self, model: nn.Module) -> Any:
        return list(model.parameters())


class Minimal:
    """A constructor that does not derive from paramwise's: the interface is all it needs."""

    def __init__(self, optimizer_cfg: Any, paramwise_cfg: Any = None) -> None:
        self.lr = optimizer_cfg["lr"]

    def __call__(self, model: nn.Module) -> torch.optim.Optimizer:
        return torch.optim.SGD(model.parameters(), lr=self.lr)


OPTIMIZER_BUILDERS.register_module(name="NoCallConstructorForSpecTest", module=NoCall)


@pytest.mark.parametrize("constructor, message", [
    (dict, r"is <class 'dict'>, whose instances cannot be called with a model"),
    (int, r"is <class 'int'>, whose instances cannot be called with a model"),
    (NoCall, r"NoCall'>, whose instances cannot be called with a model"),
    ("NoCallConstructorForSpecTest", r"NoCall'>, whose instances cannot be called with a model"),
    (ModelOnly, r"ModelOnly'>, which cannot be called with \(optimizer_cfg, paramwise_cfg\)"),
    (len, r"which cannot be called with \(optimizer_cfg, paramwise_cfg\)"),
    (lambda optimizer_cfg, paramwise_cfg: 5, r"built 5, which cannot be called with a model"),
    (ReturnsAList, r"ReturnsAList returned a list for the model, not a torch.optim.Optimizer"),
])
def test_a_constructor_that_is_not_one_is_a_config_error_at_constructor(constructor: Any, message: str) -> None:
    cfg = dict(SGD, constructor=constructor)
    with pytest.raises(ConfigError, match=f"optimizer -> constructor: .*{message}") as info:
        build_optimizer(_model(), cfg)
    assert isinstance(info.value, TypeError)  # the type is wrong, as the optimizer's own 'type' would be
    assert "DefaultOptimizerConstructor" in str(info.value)  # the fix names one that works
    assert cfg["constructor"] is constructor


def test_the_issue_example() -> None:
    with pytest.raises(ConfigError, match=r"optimizer -> constructor: is <class 'dict'>"):
        build_optimizer(_model(), dict(type="Adadelta", constructor=dict))


def test_an_unknown_constructor_name_is_a_config_error_with_a_suggestion() -> None:
    with pytest.raises(ConfigError, match=r"optimizer -> constructor: 'DefaultOptimizerConstructer' is not in "
                                          r"the optimizer constructor registry.*'DefaultOptimizerConstructor'") as info:
        build_optimizer(_model(), dict(SGD, constructor="DefaultOptimizerConstructer"))
    assert isinstance(info.value, KeyError)


def test_the_wrapper_names_the_constructor_in_optim_wrapper() -> None:
    with pytest.raises(ConfigError, match=r"optim_wrapper -> constructor: is <class 'dict'>"):
        paramwise.build_optim_wrapper(_model(), dict(optimizer=SGD, constructor=dict))
    with pytest.raises(ConfigError, match=r"optimizer -> constructor: is <class 'dict'>"):
        plan_params(_model(), dict(SGD, constructor=dict))


@pytest.mark.parametrize("constructor", [Minimal, DefaultOptimizerConstructor, "DefaultOptimWrapperConstructor",
                                         lambda optimizer_cfg, paramwise_cfg: Minimal(optimizer_cfg)])
def test_real_constructors_still_build(constructor: Any) -> None:
    optimizer = build_optimizer(_model(), dict(SGD, constructor=constructor))
    assert isinstance(optimizer, torch.optim.SGD)
    assert optimizer.param_groups[0]["lr"] == 0.1


# ---------------------------------------------------------------------------------- 6c: paths
@pytest.mark.parametrize("path, shown", [
    (("optimizer", "paramwise_cfg", ""), "optimizer -> paramwise_cfg -> ''"),
    (("optimizer", " "), "optimizer -> ' '"),
    (("optimizer", " lr"), "optimizer -> ' lr'"),
    (("optimizer", "lr\t"), r"optimizer -> 'lr\t'"),
    (("custom_keys", "a -> b"), "custom_keys -> 'a -> b'"),
    (("custom_keys", "a->b"), "custom_keys -> 'a->b'"),
    (("custom_keys", "x: y"), "custom_keys -> 'x: y'"),
    (("custom_keys", "a\nb"), r"custom_keys -> 'a\nb'"),
    (("custom_keys", "backbone.layer norm", "[0]"), "custom_keys -> backbone.layer norm -> [0]"),
    ((), "(top level)"),
])
def test_keys_that_would_be_invisible_or_misread_are_quoted(path: tuple[str, ...], shown: str) -> None:
    assert format_path(path) == shown
    assert str(Problem(path, "is wrong")) == f"{shown}: is wrong"


def test_an_empty_paramwise_cfg_key_is_shown_quoted() -> None:
    with pytest.raises(ConfigError) as info:
        build_optimizer(_model(), dict(SGD, paramwise_cfg={"": 1, " norm_decay_mult": 0.0}))
    text = str(info.value)
    assert "optimizer -> paramwise_cfg -> '': is not a paramwise_cfg option" in text
    assert "optimizer -> paramwise_cfg -> ' norm_decay_mult': is not a paramwise_cfg option" in text
    assert "-> :" not in text


def test_the_wrapper_names_a_constructor_that_returns_no_optimizer() -> None:
    """Was a UsageTypeError from OptimWrapper ("wraps a torch optimizer, got list") with no config path."""
    with pytest.raises(ConfigError, match=r"optim_wrapper -> constructor: ReturnsAList returned a list"):
        paramwise.build_optim_wrapper(_model(), dict(optimizer=SGD, constructor=ReturnsAList))


def test_a_dict_under_a_custom_key_option_is_read_as_a_split_dotted_key() -> None:
    """``custom_keys.backbone.stages={...}`` unquoted is the key 'backbone' holding 'stages': say how to quote it."""
    cfg = dict(SGD, paramwise_cfg=dict(custom_keys={"backbone": {"stages": {"lr_mult": 0.1}}}))
    with pytest.raises(ConfigError, match=r"custom_keys -> backbone -> stages: SGD does not take 'stages'.*For the "
                                          r"custom key 'backbone.stages' \(a name with a dot\), quote it.*"
                                          r'custom_keys\."backbone\.stages"='):
        build_optimizer(_model(), cfg)
    with pytest.raises(ConfigError) as info:  # a plain wrong value gets no such hint
        build_optimizer(_model(), dict(SGD, paramwise_cfg=dict(custom_keys={"backbone": {"stages": 1}})))
    assert "quote it" not in str(info.value)


def test_a_dict_argument_with_keys_of_mixed_types_groups_without_a_foreign_error() -> None:
    """Found by the optimizer fuzz: grouping sorted a dict's keys, and 1 < 'a' is a TypeError."""
    cfg = dict(SGD, paramwise_cfg=dict(custom_keys={"0": dict(lr_mult=0.5)}))
    plan = plan_params(_model(), cfg)
    from paramwise.plan.groups import group_entries
    entries = tuple(e._replace(hyperparams={**e.hyperparams, "extra": {1: "x", "a": 2}}) for e in plan.entries)
    groups = group_entries(entries, {}, "hyperparams")
    assert sum(len(g.members) for g in groups) == len(entries)
