"""``paramwise_cfg['no_weight_decay']``: the model's no_weight_decay(), its keywords and _no_weight_decay tags."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from paramwise import ConfigError, plan_params
from paramwise.errors import Problem
from paramwise.plan.no_decay import NO_DECAY_SOURCES, NoDecayTag, NoWeightDecayRule, find_no_decay_tags
from paramwise.plan.rules import Factor, fold

pytestmark = pytest.mark.filterwarnings("ignore::paramwise.ParamwiseWarning")

ADAMW = dict(type="AdamW", lr=1e-3, weight_decay=0.05)


class Attention(nn.Module):
    """Swin-style window attention: a relative position bias table beside the projections."""

    def __init__(self, dim: int = 4) -> None:
        super().__init__()
        self.qkv = nn.Linear(dim, dim * 3)
        self.relative_position_bias_table = nn.Parameter(torch.zeros(9, 2))


class TimmViT(nn.Module):
    """timm's protocol: ``no_weight_decay()`` names parameters relative to the model."""

    def __init__(self, dim: int = 4) -> None:
        super().__init__()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 5, dim))
        self.blocks = nn.ModuleList([Attention(dim), Attention(dim)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, 2)

    def no_weight_decay(self) -> set[str]:
        return {"pos_embed", "cls_token"}


class SwinStyle(TimmViT):
    """Microsoft's Swin: substrings in ``no_weight_decay_keywords()``, beside the names."""

    def no_weight_decay(self) -> set[str]:
        return {"pos_embed"}

    def no_weight_decay_keywords(self) -> set[str]:
        return {"relative_position_bias_table"}


class Mixer(nn.Module):
    """mamba's protocol: the tensors carry ``_no_weight_decay = True``."""

    def __init__(self, dim: int = 4) -> None:
        super().__init__()
        self.in_proj = nn.Linear(dim, dim)
        self.A_log = nn.Parameter(torch.zeros(dim, 2))
        self.A_log._no_weight_decay = True  # type: ignore[attr-defined]
        self.D = nn.Parameter(torch.ones(dim))
        self.D._no_weight_decay = True  # type: ignore[attr-defined]


class Detector(nn.Module):
    """An mm-style model: the declaring ViT is its ``backbone``; a mamba mixer in the neck."""

    def __init__(self, backbone: nn.Module | None = None) -> None:
        super().__init__()
        self.backbone = backbone if backbone is not None else TimmViT()
        self.neck = Mixer()
        self.head = nn.Linear(4, 2)


def wd_factors(plan, name: str) -> tuple[Factor, ...]:
    return plan[name].factors["weight_decay"]


def test_off_by_default() -> None:
    plan = plan_params(TimmViT(), ADAMW)
    assert {e.hyperparams["weight_decay"] for e in plan} == {0.05}


def test_timm_names_of_the_model() -> None:
    plan = plan_params(TimmViT(), dict(ADAMW, paramwise_cfg=dict(no_weight_decay="auto")))
    assert wd_factors(plan, "pos_embed") == (
        Factor("weight_decay", "base", 0.05, "default"),
        Factor("weight_decay", "mult", 0.0, "no_weight_decay() of the model", "names 'pos_embed'"),
    )
    assert plan["cls_token"].rules["weight_decay"] == "no_weight_decay() of the model"
    assert plan["cls_token"].hyperparams == {"lr": 1e-3, "weight_decay": 0.0}
    decayed = {e.name for e in plan if e.hyperparams["weight_decay"] == 0.05}
    assert decayed == {e.name for e in plan} - {"pos_embed", "cls_token"}  # norms and biases: other rules' job


def test_names_of_a_submodule_are_relative_to_it() -> None:
    plan = plan_params(Detector(), dict(ADAMW, paramwise_cfg=dict(no_weight_decay="auto")))
    assert wd_factors(plan, "backbone.pos_embed")[-1] == Factor(
        "weight_decay", "mult", 0.0, "no_weight_decay() of backbone", "names 'pos_embed'")
    assert plan["neck.A_log"].rules["weight_decay"] == "_no_weight_decay tag"
    assert plan["neck.D"].hyperparams["weight_decay"] == 0.0
    assert plan["neck.in_proj.weight"].hyperparams["weight_decay"] == 0.05


def test_swin_keywords() -> None:
    plan = plan_params(SwinStyle(), dict(ADAMW, paramwise_cfg=dict(no_weight_decay="auto")))
    for i in (0, 1):
        assert wd_factors(plan, f"blocks.{i}.relative_position_bias_table")[-1] == Factor(
            "weight_decay", "mult", 0.0, "no_weight_decay_keywords() of the model",
            "keyword 'relative_position_bias_table'")
    assert plan["pos_embed"].hyperparams["weight_decay"] == 0.0
    assert plan["cls_token"].hyperparams["weight_decay"] == 0.05  # Swin's names do not list it


def test_timm_patterns() -> None:
    class Patterned(TimmViT):
        def no_weight_decay(self) -> set[str]:
            return {"blocks.*.relative_position_bias_table"}

    plan = plan_params(Patterned(), dict(ADAMW, paramwise_cfg=dict(no_weight_decay="auto")))
    assert {e.name for e in plan if e.hyperparams["weight_decay"] == 0.0} == {
        "blocks.0.relative_position_bias_table", "blocks.1.relative_position_bias_table"}


def test_a_list_picks_the_sources() -> None:
    cfg = dict(ADAMW, paramwise_cfg=dict(no_weight_decay=["_no_weight_decay"]))
    plan = plan_params(Detector(SwinStyle()), cfg)
    assert {e.name for e in plan if e.hyperparams["weight_decay"] == 0.0} == {"neck.A_log", "neck.D"}
    keywords = plan_params(Detector(SwinStyle()), dict(ADAMW, paramwise_cfg=dict(
        no_weight_decay=["no_weight_decay_keywords"])))
    assert {e.name for e in keywords if e.hyperparams["weight_decay"] == 0.0} == {
        "backbone.blocks.0.relative_position_bias_table", "backbone.blocks.1.relative_position_bias_table"}
    off = plan_params(Detector(), dict(ADAMW, paramwise_cfg=dict(no_weight_decay=False)))
    assert {e.hyperparams["weight_decay"] for e in off} == {0.05}


def test_composes_with_custom_keys_and_norm_decay_mult() -> None:
    cfg = dict(ADAMW, paramwise_cfg=dict(
        custom_keys={"backbone": dict(lr_mult=0.1, decay_mult=0.5)}, norm_decay_mult=0.0, compose=True,
        no_weight_decay="auto"))
    plan = plan_params(Detector(), cfg)
    assert wd_factors(plan, "backbone.pos_embed") == (
        Factor("weight_decay", "base", 0.05, "default"),
        Factor("weight_decay", "mult", 0.5, "custom_keys['backbone']"),
        Factor("weight_decay", "mult", 0.0, "no_weight_decay() of backbone", "names 'pos_embed'"),
    )
    assert plan["backbone.pos_embed"].hyperparams == {"lr": pytest.approx(1e-4), "weight_decay": 0.0}
    assert plan["backbone.pos_embed"].rules["weight_decay"] == (
        "custom_keys['backbone'] x no_weight_decay() of backbone")
    # the norm keeps its own rule, composed with the custom key; untagged weights keep the custom key's decay
    assert [f.rule for f in wd_factors(plan, "backbone.norm.weight")] == [
        "default", "custom_keys['backbone']", "norm_decay_mult"]
    assert plan["backbone.norm.weight"].hyperparams["weight_decay"] == 0.0
    assert plan["backbone.head.weight"].hyperparams["weight_decay"] == pytest.approx(0.025)
    assert plan["neck.A_log"].rules["weight_decay"] == "_no_weight_decay tag"  # outside the custom key too


def test_mmengine_semantics_keep_the_tag() -> None:
    """A custom key switches the built-in multipliers off for its parameters, not the param stage."""
    cfg = dict(ADAMW, paramwise_cfg=dict(custom_keys={"backbone": dict(lr_mult=0.1)}, no_weight_decay="auto"))
    plan = plan_params(Detector(), cfg)
    assert plan["backbone.cls_token"].hyperparams["weight_decay"] == 0.0
    assert plan["backbone.norm.weight"].hyperparams["weight_decay"] == 0.05


def test_without_a_base_weight_decay() -> None:
    # AdamW decays by 0.01 by default: the tag sets 0 outright
    adamw = plan_params(TimmViT(), dict(type="AdamW", lr=1e-3, paramwise_cfg=dict(no_weight_decay="auto")))
    assert wd_factors(adamw, "pos_embed") == (
        Factor("weight_decay", "set", 0.0, "no_weight_decay() of the model", "names 'pos_embed'"),)
    assert "weight_decay" not in adamw["head.weight"].hyperparams  # the optimizer's default
    assert len(adamw.groups) == 2
    # SGD does not decay by default: nothing to remove, one group
    sgd = plan_params(TimmViT(), dict(type="SGD", lr=0.1, paramwise_cfg=dict(no_weight_decay="auto")))
    assert all("weight_decay" not in e.hyperparams for e in sgd) and len(sgd.groups) == 1


def test_the_optimizer_gets_zero_decay() -> None:
    from paramwise import build_optimizer

    model = Detector()
    optimizer = build_optimizer(model, dict(ADAMW, paramwise_cfg=dict(no_weight_decay="auto")))
    zero = {id(p) for g in optimizer.param_groups if g["weight_decay"] == 0.0 for p in g["params"]}
    assert zero == {id(model.backbone.pos_embed), id(model.backbone.cls_token), id(model.neck.A_log),
                    id(model.neck.D)}


@pytest.mark.parametrize(("value", "expected"), [
    ("yes", "must be 'auto' (the model's no_weight_decay(), no_weight_decay_keywords() and _no_weight_decay tags)"),
    ("Auto", "Did you mean 'auto'?"),
    (["pos_embed"], "To exclude parameters by name, use custom_keys, e.g. custom_keys={'pos_embed': "),
    (["no_weight_decay()"], "Did you mean 'no_weight_decay'?"),
    (3, "a list of those sources, or False, got 3"),
])
def test_bad_values(value: object, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        plan_params(TimmViT(), dict(ADAMW, paramwise_cfg=dict(no_weight_decay=value)))
    assert info.value.problems[0].path[:3] == ("optimizer", "paramwise_cfg", "no_weight_decay")
    assert expected in str(info.value)


def test_names_that_match_nothing_are_problems() -> None:
    class Typo(TimmViT):
        def no_weight_decay(self) -> set[str]:
            return {"pos_embd", "blocks.0", "cls_token"}

    model = Detector(Typo())
    tags = find_no_decay_tags(model)
    assert tags.tagged["backbone.cls_token"] == NoDecayTag("no_weight_decay", "backbone", "cls_token")
    assert [name for name, _ in tags.unmatched] == ["backbone.blocks.0", "backbone.pos_embd"]
    module_message, typo_message = (message for _, message in tags.unmatched)
    assert "names 'blocks.0', a module, not a parameter" in module_message
    assert typo_message == ("no_weight_decay() of backbone gives the name 'pos_embd', which matches no parameter "
                            "of it; its weight decay is unchanged. Did you mean 'pos_embed'?")
    rule = NoWeightDecayRule()
    assert rule.problems(model)[1] == Problem(("optimizer", "paramwise_cfg", "no_weight_decay"), typo_message)
    assert repr(rule) == "no_weight_decay='auto'"


def test_a_failing_method_is_reported_not_raised() -> None:
    class Broken(TimmViT):
        def no_weight_decay(self) -> set[str]:
            raise RuntimeError("boom")

    tags = find_no_decay_tags(Broken())
    assert tags.unmatched == (("no_weight_decay()", "no_weight_decay() of the model: calling no_weight_decay() "
                                                    "raised RuntimeError: boom"),)


def test_wrappers_and_frozen_parameters() -> None:
    model = Detector()
    model.backbone.cls_token.requires_grad_(False)
    wrapped = nn.DataParallel(model)
    tags = find_no_decay_tags(wrapped)
    assert list(tags.tagged) == ["backbone.cls_token", "backbone.pos_embed", "neck.A_log", "neck.D"]
    assert tags.unmatched == ()  # a frozen parameter is still a parameter
    plan = plan_params(wrapped, dict(ADAMW, paramwise_cfg=dict(no_weight_decay="auto")))
    assert plan["backbone.pos_embed"].hyperparams["weight_decay"] == 0.0


MODELS: dict[str, Callable[[], nn.Module]] = {
    "detector": Detector, "swin": lambda: Detector(SwinStyle()), "vit": TimmViT}


@given(
    model=st.sampled_from(sorted(MODELS)),
    base=st.sampled_from([ADAMW, dict(type="AdamW", lr=1e-3), dict(type="SGD", lr=0.1, weight_decay=1e-4)]),
    mode=st.sampled_from(["mmengine", "compose", "force_default_settings"]),
    decay_mult=st.sampled_from([None, 0.0, 0.5, 2.0]),
    norm_decay_mult=st.sampled_from([None, 0.0, 0.1]),
    bias_decay_mult=st.sampled_from([None, 0.0]),
    sources=st.sampled_from(["auto", False, *([s] for s in NO_DECAY_SOURCES)]),
)
def test_factors_fold_to_the_values(model: str, base: dict, mode: str, decay_mult: float | None,
                                    norm_decay_mult: float | None, bias_decay_mult: float | None,
                                    sources: Any) -> None:
    has_wd = "weight_decay" in base
    key = {"lr_mult": 0.1} if decay_mult is None or not has_wd else {"lr_mult": 0.1, "decay_mult": decay_mult}
    pw: dict = dict(custom_keys={"blocks": key}, no_weight_decay=sources)
    if has_wd:
        pw.update(norm_decay_mult=norm_decay_mult, bias_decay_mult=bias_decay_mult)
    if mode != "mmengine":
        pw[mode] = True
    built = MODELS[model]()
    plan = plan_params(built, dict(base, paramwise_cfg=pw))
    tagged = find_no_decay_tags(built, NO_DECAY_SOURCES if sources == "auto" else sources or ()).tagged
    for entry in plan:
        for k, value in entry.hyperparams.items():
            assert fold(entry.factors[k]) == value, (entry.name, k)
        if entry.name in tagged and (has_wd or base["type"] == "AdamW"):
            assert entry.hyperparams["weight_decay"] == 0.0, entry.name
