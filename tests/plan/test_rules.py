"""The rule engine: rules are values, every value is a product of recorded factors, stages compose."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

import paramwise
from expect import expect_warnings
from model_zoo import ZOO, build
from paramwise import Factor, ParamwiseWarning, build_optimizer, plan_params
from paramwise.plan.rules import CustomKeyRule, MultiplierRule, build_rules, fold
from paramwise.render import explain_text
from strategies import DECAY_MULT_KEYS, LR_MULT_KEYS, MULTS, SUBSTRINGS, custom_key_entry

SGD = dict(type="SGD", lr=0.01, momentum=0.9, weight_decay=1e-4)


class Seg(nn.Module):
    """mmsegmentation's ForceDefault example, in its own words."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(4))
        self.backbone = nn.Module()
        self.backbone.conv = nn.Conv2d(3, 4, 3)
        self.backbone.bn = nn.BatchNorm2d(4)
        self.backbone.dw = nn.Conv2d(4, 4, 3, groups=4)
        self.backbone.frozen = nn.Linear(4, 4)
        self.backbone.frozen.requires_grad_(False)
        self.head = nn.Linear(4, 2)


SEG_PW = dict(bias_lr_mult=2.0, bias_decay_mult=0.5, norm_decay_mult=0.0, dwconv_decay_mult=0.25,
              flat_decay_mult=0.125,
              custom_keys={"backbone": dict(lr_mult=0.1, decay_mult=4.0), "head": dict(lr_mult=10.0)})


def values(cfg: dict[str, Any], model: nn.Module | None = None) -> dict[str, tuple[float, float]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ParamwiseWarning)
        optimizer = build_optimizer(model or Seg(), cfg)
    return {n: (g["lr"], g["weight_decay"]) for g in optimizer.param_groups for n in g["param_names"]}


def test_rules_are_values_with_readable_reprs_in_one_ordered_list() -> None:
    _, options = paramwise.plan.spec.resolve_config(SGD, SEG_PW)
    rules = build_rules(options)
    assert [repr(r) for r in rules] == ["custom_keys['backbone']", "custom_keys['head']", "bias_lr_mult",
                                        "norm_decay_mult", "bias_decay_mult", "dwconv_decay_mult", "flat_decay_mult"]
    assert [r.stage for r in rules] == ["custom", "custom", "lr", "decay", "decay", "decay", "decay"]
    assert isinstance(rules[0], CustomKeyRule) and isinstance(rules[2], MultiplierRule)
    with pytest.raises(AttributeError):
        rules[2].mult = 3.0  # frozen


def test_mmengine_semantics_by_default_with_factors() -> None:
    got = values(dict(SGD, paramwise_cfg=SEG_PW))
    assert got["backbone.conv.bias"] == pytest.approx((0.001, 0.0004))  # the custom key wins, rules off
    assert got["scale"] == pytest.approx((0.01, 1.25e-05))
    assert "backbone.frozen.weight" not in got
    with expect_warnings(r"2 parameters with requires_grad=False", r"bias_lr_mult: decides no parameter",
                         r"norm_decay_mult: decides no parameter: every parameter it applies to "
                         r"\('backbone.bn.weight', 'backbone.bn.bias'\) is decided by custom_keys\['backbone'\]",
                         r"bias_decay_mult: decides no parameter", r"dwconv_decay_mult: decides no parameter"):
        plan = plan_params(Seg(), dict(SGD, paramwise_cfg=SEG_PW))
    lr = plan["backbone.conv.bias"].factors["lr"]
    assert lr == (Factor("lr", "base", 0.01, "default"), Factor("lr", "mult", 0.1, "custom_keys['backbone']"))
    assert explain_text(plan["backbone.conv.bias"]) == (
        "lr = 0.01 x 0.1 custom_keys['backbone']; weight_decay = 0.0001 x 4 custom_keys['backbone']")


# mmsegmentation's worked example: (lr, weight_decay) with force_default_settings=True
FORCED = {
    "scale": (0.01, 1.25e-05),
    "backbone.conv.weight": (0.001, 0.0004),
    "backbone.conv.bias": (0.02, 5e-05),
    "backbone.bn.weight": (0.001, 0.0),
    "backbone.bn.bias": (0.001, 0.0),
    "backbone.dw.weight": (0.001, 2.5e-05),
    "backbone.dw.bias": (0.02, 5e-05),
    "head.weight": (0.1, 0.0001),
    "head.bias": (0.02, 5e-05),
    "backbone.frozen.weight": (0.01, 0.0001),
    "backbone.frozen.bias": (0.01, 0.0001),
}


def test_force_default_constructor_reproduces_mmsegmentation_exactly() -> None:
    cfg = dict(SGD, constructor="ForceDefaultOptimWrapperConstructor",
               paramwise_cfg=dict(SEG_PW, force_default_settings=True))
    assert values(cfg) == FORCED  # exact floats: base x multiplier, replacing the custom value
    with pytest.warns(ParamwiseWarning, match=r"2 parameters with requires_grad=False"):
        plan = plan_params(Seg(), cfg)
    (_, _, forced) = plan["head.bias"].factors["lr"]
    assert forced.op == "set" and forced.rule == "bias_lr_mult" and "replacing custom_keys['head']" in forced.note
    # without force_default_settings it is mmengine, except that frozen parameters stay at the defaults
    plain = values(dict(SGD, constructor="ForceDefaultOptimWrapperConstructor", paramwise_cfg=SEG_PW))
    assert plain["backbone.conv.bias"] == pytest.approx((0.001, 0.0004))
    assert plain["backbone.frozen.weight"] == (0.01, 0.0001)


def test_force_default_settings_in_the_default_constructor_and_compose() -> None:
    forced = values(dict(SGD, paramwise_cfg=dict(SEG_PW, force_default_settings=True)))
    assert {k: v for k, v in FORCED.items() if "frozen" not in k} == forced
    composed = values(dict(SGD, paramwise_cfg=dict(SEG_PW, compose=True)))
    assert composed["head.bias"] == pytest.approx((0.01 * 10.0 * 2.0, 1e-4 * 1.0 * 0.5))  # multiplied, not replaced
    assert composed["backbone.bn.weight"] == pytest.approx((0.001, 0.0))
    with pytest.raises(paramwise.ConfigError, match="compose: and force_default_settings both"):
        values(dict(SGD, paramwise_cfg=dict(SEG_PW, compose=True, force_default_settings=True)))


class HalveMatrices:
    """A param-stage rule for the test: halves the lr of 2-D parameters."""

    stage = "param"

    def bind(self, model: nn.Module) -> Any:
        def factors(name: str, param: torch.Tensor, module: nn.Module) -> tuple[Factor, ...]:
            return (Factor("lr", "mult", 0.5, "halve", "2-D"),) if param.ndim == 2 else ()
        return factors


def test_param_stage_rules_multiply_whatever_the_others_gave() -> None:
    class WithHalving(paramwise.DefaultOptimizerConstructor):
        def extra_rules(self, model: nn.Module) -> tuple[Any, ...]:
            return (HalveMatrices(),)

    model = nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4), nn.Linear(4, 2))
    cfg = dict(SGD, constructor=WithHalving, paramwise_cfg=dict(custom_keys={"2": dict(lr_mult=0.1)},
                                                                 norm_decay_mult=0.0))
    plan = plan_params(model, cfg)
    assert plan["0.weight"].hyperparams["lr"] == pytest.approx(0.005)
    assert plan["2.weight"].hyperparams["lr"] == pytest.approx(0.0005)
    assert plan["2.weight"].rules["lr"] == "custom_keys['2'] x halve"
    assert explain_text(plan["2.weight"]).startswith("lr = 0.01 x 0.1 custom_keys['2'] x 0.5 halve (2-D)")
    assert plan["1.weight"].hyperparams == {"lr": 0.01, "weight_decay": 0.0}
    assert len(plan.groups) == 5  # one per distinct set of values
    records = plan.to_records()
    assert records[0]["lr_factors"] == "0.01 x 0.5 halve (2-D)"


@st.composite
def configs(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    model_name = draw(st.sampled_from(sorted(ZOO)))
    substrings = SUBSTRINGS[model_name]
    keys = draw(st.dictionaries(st.sampled_from(substrings), custom_key_entry("SGD", True), max_size=3)) \
        if substrings else {}
    mults = draw(st.fixed_dictionaries({}, optional={k: st.sampled_from(MULTS)
                                                     for k in (*LR_MULT_KEYS, *DECAY_MULT_KEYS)}))
    mode = draw(st.sampled_from([{}, {"compose": True}, {"force_default_settings": True}]))
    return model_name, dict(custom_keys=keys, bypass_duplicate=True, **mults, **mode)


@given(case=configs())
def test_every_value_is_the_product_of_its_factors(case: tuple[str, dict[str, Any]]) -> None:
    model_name, pw = case
    model = build(model_name)
    cfg = dict(SGD, paramwise_cfg=pw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ParamwiseWarning)
        plan = plan_params(model, cfg)
    for entry in plan.entries:
        for key, value in entry.hyperparams.items():
            assert fold(entry.factors[key]) == value, (entry.name, key)
            assert entry.factors[key][0].op == "base"


@pytest.mark.parametrize("pw", [
    dict(custom_keys={"weight": dict(lr_mult=1e300)}),
    dict(bias_lr_mult=1e300),
    dict(custom_keys={"weight": dict(decay_mult=1e300)}, bias_decay_mult=1e300),
])
def test_a_product_that_overflows_is_an_error_not_an_inf_value(pw: dict) -> None:
    """Each factor is finite and valid; the product past the largest float must not reach the optimizer."""
    cfg = dict(type="SGD", lr=1e10, weight_decay=1e10, paramwise_cfg=pw)
    with pytest.raises(paramwise.ConfigError) as info:
        paramwise.build_optimizer(nn.Linear(2, 2), cfg)
    problem = info.value.problems[0]
    assert problem.path[0] == "optimizer" and problem.path[1] in ("lr", "weight_decay")
    assert "is inf" in problem.message and "1e+300" in problem.message
