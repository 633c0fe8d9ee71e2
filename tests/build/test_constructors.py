"""DefaultOptimizerConstructor and build_optimizer: behaviour, wrappers, and every validation error."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
from torch import nn

import paramwise
from expect import expect_warnings
from paramwise import (
    OPTIMIZER_BUILDERS,
    ConfigError,
    DefaultOptimizerConstructor,
    ParamwiseError,
    ParamwiseWarning,
    SharedParameterError,
    build_optimizer,
    plan_params,
)


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Conv2d(4, 4, 3, groups=4))
        self.head = nn.Linear(4, 2)
        self.scale = nn.Parameter(torch.ones(1))


def groups_by_name(opt: torch.optim.Optimizer) -> dict[str, dict]:
    return {name: g for g in opt.param_groups for name in g["param_names"]}


def build(cfg: dict, model: nn.Module | None = None) -> torch.optim.Optimizer:
    with warnings.catch_warnings():
        warnings.simplefilter("error", ParamwiseWarning)
        return build_optimizer(model if model is not None else Net(), cfg)


def problems_of(cfg: dict, model: nn.Module | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        build_optimizer(model if model is not None else Net(), cfg)
    assert isinstance(info.value, ValueError)
    return [str(p) for p in info.value.problems]


def test_example_config_from_the_issue() -> None:
    cfg = dict(
        type="AdamW", lr=1e-3, weight_decay=0.05,
        paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0, custom_keys={"head": dict(lr_mult=0.1)}),
    )
    before = copy.deepcopy(cfg)
    opt = build(cfg)
    assert cfg == before  # not mutated
    assert isinstance(opt, torch.optim.AdamW)
    g = groups_by_name(opt)
    assert g["backbone.0.weight"]["lr"] == 1e-3 and g["backbone.0.weight"]["weight_decay"] == 0.05
    assert g["backbone.0.bias"]["weight_decay"] == 0.0
    assert g["backbone.1.weight"]["weight_decay"] == 0.0  # norm
    assert g["head.weight"]["lr"] == pytest.approx(1e-4) and g["head.weight"]["weight_decay"] == 0.05
    assert g["head.bias"]["weight_decay"] == 0.05  # custom key won: bias_decay_mult not applied
    # merged: {conv weights + scale}, {biases + norm}, {head}
    assert len(opt.param_groups) == 3
    assert opt.param_groups[0]["param_names"] == ["scale", "backbone.0.weight", "backbone.2.weight"]


def test_plan_records_rules() -> None:
    plan = plan_params(Net(), dict(type="SGD", lr=0.1, weight_decay=1e-4,
                                   paramwise_cfg=dict(norm_decay_mult=0.0, custom_keys={"head": dict(lr_mult=2)})))
    assert plan["backbone.1.weight"].rules == {"lr": "default", "weight_decay": "norm_decay_mult"}
    assert plan["head.weight"].rules["lr"] == "custom_keys['head']"
    assert plan["head.weight"].hyperparams["lr"] == pytest.approx(0.2)
    records = plan.to_records()
    assert records[0]["name"] == "scale" and records[0]["lr_rule"] == "default"
    assert "custom_keys['head']" in str(plan)
    assert "<table>" in plan._repr_html_()


def test_custom_key_sorting_and_first_match() -> None:
    # 'backbone.0' (longer) wins over 'backbone' for backbone.0.*; ties by length are alphabetical
    cfg = dict(type="SGD", lr=1.0, paramwise_cfg=dict(custom_keys={
        "backbone": dict(lr_mult=0.5), "backbone.0": dict(lr_mult=0.1), "weight": dict(lr_mult=3.0),
    }))
    g = groups_by_name(build(cfg))
    assert g["backbone.0.weight"]["lr"] == pytest.approx(0.1)
    assert g["backbone.2.weight"]["lr"] == pytest.approx(0.5)  # 'backbone' is longer than 'weight'
    assert g["head.weight"]["lr"] == pytest.approx(3.0)
    assert g["scale"]["lr"] == 1.0


def test_root_parameter_matched_as_dot_name() -> None:
    g = groups_by_name(build(dict(type="SGD", lr=1.0, paramwise_cfg=dict(custom_keys={".scale": dict(lr_mult=0)}))))
    assert g["scale"]["lr"] == 0.0


def test_custom_options_set_as_given_and_checked() -> None:
    g = groups_by_name(build(dict(type="SGD", lr=1.0, momentum=0.9,
                                  paramwise_cfg=dict(custom_keys={"head": dict(momentum=0.5)}))))
    assert g["head.weight"]["momentum"] == 0.5 and g["scale"]["momentum"] == 0.9
    (msg,) = problems_of(dict(type="AdamW", lr=1.0, paramwise_cfg=dict(custom_keys={"head": dict(momentum=0.5)})))
    assert "custom_keys -> head -> momentum: AdamW does not take 'momentum'" in msg


def test_bias_lr_mult_and_flat_and_dwconv() -> None:
    cfg = dict(type="SGD", lr=1.0, weight_decay=1.0,
               paramwise_cfg=dict(bias_lr_mult=2.0, flat_decay_mult=0.3, dwconv_decay_mult=0.7))
    g = groups_by_name(build(cfg))
    assert g["head.bias"]["lr"] == 2.0 and g["backbone.1.bias"]["lr"] == 1.0  # norm bias excluded
    assert g["backbone.2.weight"]["weight_decay"] == pytest.approx(0.7)
    assert g["backbone.1.weight"]["weight_decay"] == pytest.approx(0.3)  # 1-D norm weight: flat
    assert g["scale"]["weight_decay"] == pytest.approx(0.3)


def test_frozen_left_out_with_one_warning_or_included() -> None:
    model = Net()
    model.backbone.requires_grad_(False)
    with pytest.warns(ParamwiseWarning, match="model: has 6 parameters with requires_grad=False, left out") as rec:
        opt = build_optimizer(model, dict(type="SGD", lr=0.1))
    assert len([w for w in rec if "requires_grad" in str(w.message)]) == 1
    assert sorted(groups_by_name(opt)) == ["head.bias", "head.weight", "scale"]
    opt = build(dict(type="SGD", lr=0.1, paramwise_cfg=dict(frozen="include")), model)
    assert len(groups_by_name(opt)) == 9


def test_all_frozen_is_an_error() -> None:
    model = Net().requires_grad_(False)
    with pytest.warns(ParamwiseWarning), pytest.raises(ParamwiseError, match="no parameters to optimize"):
        build_optimizer(model, dict(type="SGD", lr=0.1))


class Tied(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(5, 3)
        self.out = nn.Linear(3, 5, bias=False)
        self.out.weight = self.embed.weight


def test_shared_parameter_error_names_both_places() -> None:
    with pytest.raises(SharedParameterError) as info:
        build_optimizer(Tied(), dict(type="SGD", lr=0.1))
    assert "'out.weight' is the same tensor as 'embed.weight'" in str(info.value)
    assert "bypass_duplicate" in str(info.value)
    assert (info.value.first, info.value.second) == ("embed.weight", "out.weight")


def test_bypass_duplicate_keeps_first_with_warning() -> None:
    with pytest.warns(ParamwiseWarning, match=r"out.weight \(= embed.weight\)"):
        opt = build_optimizer(Tied(), dict(type="SGD", lr=0.1, paramwise_cfg=dict(bypass_duplicate=True)))
    assert sum(len(g["params"]) for g in opt.param_groups) == 1
    assert opt.param_groups[0]["param_names"] == ["embed.weight"]


def test_shared_module_also_detected() -> None:
    shared = nn.Linear(2, 2)
    model = nn.Sequential(nn.Sequential(shared), nn.Sequential(shared))
    with pytest.raises(SharedParameterError, match="'1.0.weight' is the same tensor as '0.0.weight'"):
        build_optimizer(model, dict(type="SGD", lr=0.1))


@pytest.mark.slow
def test_wrappers_are_seen_through() -> None:
    model = Net()
    cfg = dict(type="SGD", lr=1.0, paramwise_cfg=dict(custom_keys={"head": dict(lr_mult=0.5)}))
    bare = [g["param_names"] for g in build(cfg, model).param_groups]
    compiled = torch.compile(model)
    assert [g["param_names"] for g in build(cfg, compiled).param_groups] == bare
    assert [g["param_names"] for g in build(cfg, nn.DataParallel(model)).param_groups] == bare

    class Outer(nn.Module):  # a compiled submodule puts '_orig_mod' in the middle of names
        def __init__(self) -> None:
            super().__init__()
            self.inner = torch.compile(nn.Linear(2, 2))

    names = [n for g in build(dict(type="SGD", lr=1.0), Outer()).param_groups for n in g["param_names"]]
    assert names == ["inner.weight", "inner.bias"]


def test_activation_checkpoint_wrapper_is_seen_through() -> None:
    from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import checkpoint_wrapper

    model = nn.Sequential(checkpoint_wrapper(nn.Linear(2, 2)), nn.Linear(2, 2))
    assert next(model.named_parameters())[0] == "0._checkpoint_wrapped_module.weight"
    opt = build(dict(type="SGD", lr=1.0, paramwise_cfg=dict(custom_keys={"0.weight": dict(lr_mult=0.5)})), model)
    assert [(g["param_names"], g["lr"]) for g in opt.param_groups] == [
        (["0.weight"], 0.5), (["0.bias", "1.weight", "1.bias"], 1.0)
    ]


def test_group_by_param_reproduces_mmengine_layout() -> None:
    opt = build(dict(type="SGD", lr=1.0, paramwise_cfg=dict(group_by="param")))
    assert [g["param_names"] for g in opt.param_groups] == [[n] for n, _ in Net().named_parameters()]


def test_norm_types_by_name_and_class() -> None:
    class MyRMSNorm(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.weight = nn.Parameter(torch.ones(4))

    model = nn.Sequential(nn.Linear(4, 4), MyRMSNorm())
    cfg = dict(type="SGD", lr=1.0, weight_decay=1.0, paramwise_cfg=dict(norm_decay_mult=0.0))
    with pytest.warns(ParamwiseWarning, match=r"norm_decay_mult: decides no parameter: the model has no parameters "
                                              r"of norm layers; these classes look like norms .*: MyRMSNorm"):
        assert groups_by_name(build_optimizer(model, cfg))["1.weight"]["weight_decay"] == 1.0
    for spec in ("MyRMSNorm", MyRMSNorm):
        cfg["paramwise_cfg"]["norm_types"] = [spec]
        assert groups_by_name(build(cfg, model))["1.weight"]["weight_decay"] == 0.0
    cfg["paramwise_cfg"]["norm_types"] = ["MyRMSNrom"]
    with expect_warnings("'MyRMSNrom' matches no module of the model", "norm_decay_mult: decides no parameter"):
        build_optimizer(model, cfg)


def test_rmsnorm_is_a_norm() -> None:
    model = nn.Sequential(nn.Linear(4, 4), nn.RMSNorm(4))
    cfg = dict(type="SGD", lr=1.0, weight_decay=1.0, paramwise_cfg=dict(norm_decay_mult=0.0))
    assert groups_by_name(build(cfg, model))["1.weight"]["weight_decay"] == 0.0


def test_unmatched_custom_key_warns_with_closest_names_or_fails_when_strict() -> None:
    cfg = dict(type="SGD", lr=1.0, paramwise_cfg=dict(custom_keys={"backbon.0": dict(lr_mult=0.1)}))
    with pytest.warns(ParamwiseWarning, match=r"custom_keys -> backbon.0: matches no parameter.*'backbone.0'"):
        build_optimizer(Net(), cfg)
    cfg["paramwise_cfg"]["strict"] = True
    with pytest.raises(ConfigError, match="matches no parameter"):
        build_optimizer(Net(), cfg)


def test_custom_constructor_by_registration() -> None:
    @OPTIMIZER_BUILDERS.register_module(name="TestHeadOnlyConstructor", force=True)
    class HeadOnly(DefaultOptimizerConstructor):  # registered under a name no other test uses
        def __call__(self, model):
            return torch.optim.SGD(model.head.parameters(), lr=self.spec.base_lr)

    opt = build_optimizer(Net(), dict(type="SGD", lr=0.3, constructor="TestHeadOnlyConstructor"))
    assert len(opt.param_groups[0]["params"]) == 2 and opt.param_groups[0]["lr"] == 0.3


# ------------------------------------------------------------------ validation errors


def test_unknown_paramwise_key_suggests() -> None:
    (msg,) = problems_of(dict(type="SGD", lr=1.0, weight_decay=1.0, paramwise_cfg=dict(norm_decay_mul=0.0)))
    assert msg == (
        "optimizer -> paramwise_cfg -> norm_decay_mul: is not a paramwise_cfg option. "
        "Did you mean 'norm_decay_mult', 'dwconv_decay_mult' or 'flat_decay_mult'?"
    )


def test_optimizer_option_in_paramwise_cfg_points_to_the_right_place() -> None:
    (msg,) = problems_of(dict(type="SGD", lr=1.0, paramwise_cfg=dict(momentum=0.9)))
    assert "momentum: is not a paramwise_cfg option; it is an argument of SGD: put it in the optimizer config" in msg


def test_misplaced_paramwise_cfg_and_old_spelling() -> None:
    with pytest.raises(ConfigError, match="paramwise_cfg: is not an optimizer argument"):
        DefaultOptimizerConstructor(dict(type="SGD", lr=1.0, paramwise_cfg=dict(norm_decay_mult=0.0)))
    (msg,) = problems_of(dict(type="SGD", lr=1.0, paramwise_options=dict(bias_lr_mult=2.0)))
    assert "paramwise_options: is the old mmcv spelling; rename it to 'paramwise_cfg'" in msg
    (msg,) = problems_of(dict(type="SGD", lr=1.0, weight_decay=1.0, norm_decay_mult=0.0))
    assert "optimizer -> norm_decay_mult: is a paramwise_cfg option; move it into paramwise_cfg" in msg


def test_optimizer_argument_typo() -> None:
    (msg,) = problems_of(dict(type="AdamW", lr=1.0, weight_decy=0.1))
    assert "optimizer -> weight_decy: AdamW does not take 'weight_decy'. Did you mean 'weight_decay'?" in msg


def test_unknown_optimizer_type() -> None:
    (msg,) = problems_of(dict(type="AdamWW", lr=1.0))
    assert "optimizer -> type: 'AdamWW' is not in the optimizer registry. Did you mean 'AdamW'" in msg


def test_decay_mult_without_base_weight_decay() -> None:
    problems = problems_of(dict(type="SGD", lr=1.0, paramwise_cfg=dict(
        bias_decay_mult=0.0, custom_keys={"head": dict(decay_mult=0.5)})))
    assert "paramwise_cfg -> bias_decay_mult: needs a base weight_decay: set weight_decay" in problems[0]
    assert "custom_keys -> head -> decay_mult: needs a base weight_decay" in problems[1]


def test_missing_lr_for_optimizer_without_default() -> None:
    class NoDefault(torch.optim.SGD):
        def __init__(self, params, lr, momentum=0.0):
            super().__init__(params, lr=lr, momentum=momentum)

    (msg,) = problems_of(dict(type=NoDefault, momentum=0.9))
    assert msg == "optimizer -> lr: is missing and NoDefault has no default lr; set lr"


@pytest.mark.parametrize("value", [-0.1, float("inf"), float("nan"), "0.1", True])
def test_bad_multiplier_values(value) -> None:
    (msg,) = problems_of(dict(type="SGD", lr=1.0, paramwise_cfg=dict(bias_lr_mult=value)))
    assert msg.startswith("optimizer -> paramwise_cfg -> bias_lr_mult: must be a")
    assert repr(value) in msg


def test_quoted_numbers_say_to_drop_the_quotes_with_the_users_value() -> None:
    problems = problems_of(dict(type="AdamW", lr="1e-3", weight_decay=-1.0,
                                paramwise_cfg=dict(custom_keys={"head": dict(lr_mult=" 0.1")})))
    assert problems[0] == ("optimizer -> lr: must be a finite number >= 0, got the text '1e-3': "
                           "write 1e-3 without quotes")
    assert "YAML" not in " ".join(problems)  # the YAML reader takes 1e-3 as a float: no YAML hint anywhere
    assert "weight_decay: must be a number >= 0, got -1.0" in problems[1]
    assert "head -> lr_mult: must be a finite number >= 0, got the text ' 0.1': write 0.1 without quotes" in problems[2]
    assert len(problems) == 3  # no "needs a base lr": lr is set, only invalid


def test_non_numeric_text_gets_no_quote_hint() -> None:
    (msg,) = problems_of(dict(type="SGD", lr="fast"))
    assert msg == "optimizer -> lr: must be a finite number >= 0, got the text 'fast'"


def test_empty_lr_from_yaml_is_named() -> None:
    (msg,) = problems_of(dict(type="SGD", lr=None))
    assert msg == "optimizer -> lr: is empty (None); write a number, or remove the key to use SGD's default 0.001"


def test_empty_lr_is_fine_where_the_optimizer_default_is_none() -> None:
    class RelativeStep(torch.optim.SGD):
        def __init__(self, params, lr=None, momentum=0.0):
            super().__init__(params, lr=0.01 if lr is None else lr, momentum=momentum)

    opt = build(dict(type=RelativeStep, lr=None))
    assert opt.param_groups[0]["lr"] == 0.01  # the optimizer chose its lr; paramwise passed none


def test_wrong_types_are_type_errors_and_missing_type_is_a_key_error() -> None:
    """As in mmcv's and mmengine's own tests: a list config is a TypeError, no 'type' a KeyError."""
    for cfg in (dict(type="SGD", lr=0.1, paramwise_cfg=["x"]),
                dict(type="SGD", lr=0.1, paramwise_cfg=dict(custom_keys=["head"]))):
        with pytest.raises(TypeError):
            build_optimizer(Net(), cfg)
    with pytest.raises(TypeError):
        DefaultOptimizerConstructor([dict(type="SGD")])
    with pytest.raises(KeyError) as info:
        build_optimizer(Net(), dict(lr=0.1))
    assert isinstance(info.value, ConfigError) and "type" in str(info.value)


def test_custom_keys_must_be_dicts() -> None:
    (msg,) = problems_of(dict(type="SGD", lr=1.0, paramwise_cfg=dict(custom_keys=["head"])))
    assert "custom_keys: must be a dict of name substring -> options, got list" in msg
    (msg,) = problems_of(dict(type="SGD", lr=1.0, paramwise_cfg=dict(custom_keys={"head": 0.1})))
    assert "custom_keys -> head: must be a dict of options" in msg


def test_choices_and_flags_are_checked() -> None:
    problems = problems_of(dict(type="SGD", lr=1.0, paramwise_cfg=dict(
        frozen="keep", group_by="none", bypass_duplicate="yes", norm_types=[3])))
    text = "\n".join(problems)
    assert "frozen: must be one of 'exclude', 'include', got 'keep'" in text
    assert "group_by: must be one of 'hyperparams', 'param', got 'none'" in text
    assert "bypass_duplicate: must be True or False, got 'yes'" in text
    assert "norm_types: must be a list of norm classes or class names" in text


def test_all_problems_reported_at_once() -> None:
    with pytest.raises(ConfigError) as info:
        build_optimizer(Net(), dict(type="SGD", lr=1.0, weight_decy=1.0, paramwise_cfg=dict(
            bias_decay_mult=0.0, custom_keys={"head": dict(lr_mult=-1)})))
    assert len(info.value.problems) == 3
    assert str(info.value).startswith("invalid optimizer config: 3 problems")


def test_not_a_dict() -> None:
    with pytest.raises(TypeError, match="optimizer: must be a dict like dict"):
        build_optimizer(Net(), "AdamW")  # type: ignore[arg-type]
    (msg,) = problems_of(dict(type="SGD", lr=1.0, paramwise_cfg=[1]))
    assert "paramwise_cfg: must be a dict or None, got list" in msg


def test_module_that_contains_itself_terminates() -> None:
    model = nn.Sequential(nn.Linear(2, 2))
    model.add_module("again", model)
    with pytest.warns(ParamwiseWarning, match=r"again.0.weight \(= 0.weight\)"):
        opt = build_optimizer(model, dict(type="SGD", lr=0.1, paramwise_cfg=dict(bypass_duplicate=True)))
    assert opt.param_groups[0]["param_names"] == ["0.weight", "0.bias"]
    with pytest.raises(SharedParameterError, match="'again.0.weight' is the same tensor as '0.weight'"):
        build_optimizer(model, dict(type="SGD", lr=0.1))


def test_frozen_tied_parameter_is_left_out_not_an_error() -> None:
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
    model[1].weight = model[0].weight
    model[0].weight.requires_grad_(False)
    with pytest.warns(ParamwiseWarning) as rec:
        opt = build_optimizer(model, dict(type="SGD", lr=0.1))
    assert [str(w.message) for w in rec if "shared" in str(w.message)] == []
    message = str(rec[0].message)
    assert "has 1 parameter with requires_grad=False, left out" in message and "'0.weight'" in message
    assert sorted(groups_by_name(opt)) == ["0.bias", "1.bias"]


def test_non_string_custom_keys_are_reported() -> None:
    (msg,) = problems_of(dict(type="SGD", lr=1.0, paramwise_cfg=dict(custom_keys={0: dict(lr_mult=0.1), "head": {}})))
    assert msg == "optimizer -> paramwise_cfg -> custom_keys -> 0: keys must be non-empty strings (substrings of " \
                  "parameter names)"


class TakesAnything(torch.optim.SGD):
    def __init__(self, params, lr=0.1, **kwargs):
        super().__init__(params, lr=lr)


def test_kwargs_optimizer_still_catches_misspelt_multipliers_and_paramwise_keys() -> None:
    problems = problems_of(dict(type=TakesAnything, lr=1.0, paramwise_cfg=dict(
        norm_decay_mul=0.0, custom_keys={"head": dict(lr_mul=0.1, anything=1)})))
    text = "\n".join(problems)
    assert "norm_decay_mul: is not a paramwise_cfg option. Did you mean 'norm_decay_mult'" in text
    assert "custom_keys -> head -> lr_mul: TakesAnything does not take 'lr_mul'. Did you mean 'lr_mult'?" in text
    assert "anything" not in text  # **kwargs: an unknown option may be meant for it
    (msg,) = problems_of(dict(type=TakesAnything, paramwise_cfg=dict(lr=0.1)))
    assert "lr: is not a paramwise_cfg option; it is an argument of TakesAnything" in msg


def test_strict_reports_norm_type_classes_that_match_nothing() -> None:
    cfg = dict(type="SGD", lr=1.0, weight_decay=1.0,
               paramwise_cfg=dict(norm_decay_mult=0.0, norm_types=[nn.BatchNorm1d], strict=True))
    with pytest.raises(ConfigError, match="norm_types: 'BatchNorm1d' matches no module of the model"):
        build_optimizer(nn.Sequential(nn.Linear(2, 2)), cfg)


def test_shadowed_and_frozen_only_keys_are_explained_not_called_unmatched() -> None:
    model = Net()
    model.backbone[0].requires_grad_(False)
    cfg = dict(type="SGD", lr=1.0, paramwise_cfg=dict(strict=True, custom_keys={
        "head": dict(lr_mult=0.5), "head.weight": {}, "head.bias": {}, "backbone.0": dict(lr_mult=0.1)}))
    with pytest.warns(ParamwiseWarning) as rec:
        build_optimizer(model, cfg)  # strict: neither is an error
    text = "\n".join(str(w.message) for w in rec)
    assert ("custom_keys -> head: decides no parameter: the 2 it matches (e.g. 'head.weight') are decided first by "
            "custom_keys['head.bias'], custom_keys['head.weight']") in text
    assert "custom_keys -> backbone.0: matches only frozen parameters ('backbone.0.weight', 'backbone.0.bias')" in text


def test_constructor_none_means_the_default() -> None:
    cfg = dict(type="SGD", lr=0.1, weight_decay=1e-4, paramwise_cfg=dict(norm_decay_mult=0.0))
    opt, default = build(dict(cfg, constructor=None)), build(cfg)
    assert type(opt) is torch.optim.SGD
    assert str(opt.state_dict()["param_groups"]) == str(default.state_dict()["param_groups"])


def test_optimizer_whose_default_lr_is_none() -> None:
    class RelativeStep(torch.optim.SGD):
        def __init__(self, params, lr=None, momentum=0.0):
            super().__init__(params, lr=0.01 if lr is None else lr, momentum=momentum)

    assert isinstance(build(dict(type=RelativeStep)), RelativeStep)
    (msg,) = problems_of(dict(type=RelativeStep, paramwise_cfg=dict(bias_lr_mult=2.0)))
    assert msg == "optimizer -> paramwise_cfg -> bias_lr_mult: needs a base lr: set lr in the optimizer config"


def test_none_paramwise_values_mean_unset() -> None:
    opt = build(dict(type="SGD", lr=0.1, paramwise_cfg=dict(frozen=None, group_by=None, bias_lr_mult=None)))
    assert len(opt.param_groups) == 1


def test_model_without_parameters() -> None:
    with pytest.raises(ParamwiseError, match="no parameters to optimize; the model has none at all"):
        build_optimizer(nn.ReLU(), dict(type="SGD", lr=0.1))


def test_custom_key_matching_only_a_tied_second_name_says_so() -> None:
    class Tied(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(10, 4)
            self.lm_head = nn.Linear(4, 10, bias=False)
            self.lm_head.weight = self.embed.weight

    cfg = dict(type="SGD", lr=1.0, paramwise_cfg=dict(bypass_duplicate=True, strict=True,
                                                      custom_keys={"lm_head": dict(lr_mult=0.5)}))
    with expect_warnings(r"custom_keys -> lm_head: matches only shared parameters, which are "
                         r"optimized once under their first name \('lm_head.weight' \(= 'embed.weight'\)",
                         r"has shared parameters, optimized once under their first name"):
        plan = plan_params(Tied(), cfg)  # strict: not an error, it did match something
    assert plan["embed.weight"].hyperparams["lr"] == 1.0


def test_bias_lr_mult_on_a_model_without_biases_is_unmatched_and_fails_under_strict() -> None:
    model = nn.Sequential(nn.Linear(4, 4, bias=False))
    cfg = dict(type="SGD", lr=1.0, paramwise_cfg=dict(bias_lr_mult=2.0))
    with pytest.warns(ParamwiseWarning, match="bias_lr_mult: decides no parameter: the model has no bias parameters"):
        build_optimizer(model, cfg)
    cfg["paramwise_cfg"]["strict"] = True
    with pytest.raises(ConfigError, match="bias_lr_mult: decides no parameter"):
        build_optimizer(model, cfg)


def test_a_plan_is_built_only_by_the_config_it_was_made_from() -> None:
    model = Net()
    sgd = paramwise.optimizer_constructor(dict(type="SGD", lr=0.1))
    adamw = paramwise.optimizer_constructor(dict(type="AdamW", lr=1e-3))
    plan = sgd.plan(model)
    assert isinstance(sgd.build(plan), torch.optim.SGD)
    with pytest.raises(ConfigError, match=r"this plan was made from another optimizer config \(SGD"):
        adamw.build(plan)


@pytest.mark.slow
def test_render_and_plan_import_no_cycle() -> None:
    import subprocess
    import sys

    code = "import paramwise.render, paramwise.plan.plan, sys; print('ok')"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "ok"
    code = "import sys, paramwise.plan.plan; print('paramwise.render' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


def test_gc_is_paused_during_a_build_and_restored_as_it_was() -> None:
    import gc

    from paramwise.build.constructors import gc_paused

    assert gc.isenabled()
    paramwise.build_optimizer(nn.Linear(2, 2), dict(type="SGD", lr=0.1))
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()  # a collector the caller turned off stays off
    finally:
        gc.enable()
    with pytest.raises(RuntimeError), gc_paused():
        assert not gc.isenabled()
        raise RuntimeError("boom")
    assert gc.isenabled()  # restored after an error too
