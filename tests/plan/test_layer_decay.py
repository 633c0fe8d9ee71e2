"""Layer-wise lr decay: paramwise's ``layer_decay`` option and the peers' constructors.

Expected values are written from the peers' formulas (and the numbers their own tests assert),
never computed with paramwise's code: mmsegmentation's ``decay_rate ** (num_layers + 1 - id)``,
mmpretrain's ``layer_decay_rate ** (num_layers - 1 - depth)``, timm's
``max(min_scale, layer_decay ** (L - 1 - i))`` with the ids timm's ``group_with_matcher`` gives.
"""

from __future__ import annotations

import math
import re
import warnings

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

import paramwise
import paramwise.build.openmmlab  # registers the peers' constructors
from paramwise.errors import ConfigError, ParamwiseWarning
from paramwise.plan.layer_decay import matcher_layer_keys, rank_layer_keys
from paramwise.plan.rules import fold

LR, WD = 0.01, 0.05

# the mmseg toys have a frozen parameter, as in mmsegmentation's test, and paramwise says so
pytestmark = pytest.mark.filterwarnings("ignore:.*requires_grad=False:paramwise.errors.ParamwiseWarning",
                                        "ignore:LayerDecayOptimizerConstructor is deprecated")


def plan(model: nn.Module, **cfg: object) -> paramwise.Plan:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ParamwiseWarning)
        return paramwise.plan_params(model, {"type": "AdamW", "lr": LR, "weight_decay": WD, **cfg})


def values(p: paramwise.Plan) -> dict[str, tuple[float, float]]:
    return {e.name: (e.hyperparams["lr"], e.hyperparams.get("weight_decay")) for e in p}


def problem_paths(error: pytest.ExceptionInfo[ConfigError]) -> set[tuple[str, ...]]:
    return {p.path for p in error.value.problems}


# ------------------------------------------------------------------------------------ models
class ConvModule(nn.Module):
    """mmcv's ConvModule as far as names go: a conv under ``.conv``."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)


class ToyConvNeXt(nn.Module):
    """The toy of mmsegmentation's own test (its names, shapes and the frozen ``lin``)."""

    def __init__(self) -> None:
        super().__init__()
        self.stages = nn.ModuleList(nn.Sequential(ConvModule()) for _ in range(4))
        self.norm0 = nn.BatchNorm2d(2)
        self.cls_token = nn.Parameter(torch.ones(1))
        self.mask_token = nn.Parameter(torch.ones(1))
        self.pos_embed = nn.Parameter(torch.ones(1))
        self.stem_norm = nn.Parameter(torch.ones(1))
        self.downsample_norm0 = nn.BatchNorm2d(2)
        self.downsample_norm1 = nn.BatchNorm2d(2)
        self.downsample_norm2 = nn.BatchNorm2d(2)
        self.lin = nn.Parameter(torch.ones(1), requires_grad=False)
        self.downsample_layers = nn.ModuleList(nn.Sequential(nn.Conv2d(3, 4, 1)) for _ in range(4))


class ToyBEiT(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.cls_token = nn.Parameter(torch.ones(1))
        self.patch_embed = nn.Parameter(torch.ones(1))
        self.layers = nn.ModuleList(nn.Conv2d(3, 3, 1) for _ in range(3))


class ToyMAE(ToyBEiT):
    pass


class ToyViT(nn.Module):
    pass


class ToySegmentor(nn.Module):
    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.decode_head = nn.Conv2d(2, 2, kernel_size=1, groups=2)


class PseudoDataParallel(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.module = model


class Block(nn.Module):
    """A ViT block as mmpretrain/mmseg name it: ln1, attn.qkv, ffn.layers, and a layer-scale gamma."""

    def __init__(self, dim: int = 4) -> None:
        super().__init__()
        self.gamma_1 = nn.Parameter(torch.ones(dim))
        self.ln1 = nn.LayerNorm(dim)
        self.attn = nn.Module()
        self.attn.qkv = nn.Linear(dim, 3 * dim)
        self.ffn = nn.Module()
        self.ffn.layers = nn.Sequential(nn.Sequential(nn.Linear(dim, dim)), nn.Linear(dim, dim))


class PatchEmbed(nn.Module):
    def __init__(self, dim: int = 4) -> None:
        super().__init__()
        self.projection = nn.Conv2d(3, dim, 2)


class BEiTBackbone(nn.Module):
    """An mm ViT/BEiT backbone: 3-D cls_token and pos_embed, patch_embed.projection, layers.N, ln1."""

    def __init__(self, depth: int = 3, dim: int = 4, pre_norm: bool = False) -> None:
        super().__init__()
        self.num_layers = depth
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 5, dim))
        self.patch_embed = PatchEmbed(dim)
        if pre_norm:
            self.pre_norm = nn.LayerNorm(dim)
        self.layers = nn.ModuleList(Block(dim) for _ in range(depth))
        self.ln1 = nn.LayerNorm(dim)

    def get_layer_depth(self, param_name: str, prefix: str = "") -> tuple[int, int]:
        """mmpretrain's VisionTransformer.get_layer_depth, written from its documented rule."""
        total = self.num_layers + 2
        if not param_name.startswith(prefix):
            return total - 1, total
        name = param_name[len(prefix):]
        if name in ("cls_token", "pos_embed") or name.startswith("patch_embed"):
            return 0, total
        if name.startswith("layers"):
            return int(name.split(".")[1]) + 1, total
        return total - 1, total


class BEiT(BEiTBackbone):
    pass


class Classifier(nn.Module):
    """mmpretrain's ImageClassifier as far as layer depth goes: it asks its backbone with 'backbone.'."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = nn.Module()
        self.head.fc = nn.Linear(4, 3)

    def get_layer_depth(self, param_name: str) -> tuple[int, int]:
        return self.backbone.get_layer_depth(param_name, "backbone.")  # type: ignore[operator,no-any-return]


# ================================================================ mmsegmentation / mmdetection
def mmseg_cfg(**pw: object) -> dict[str, object]:
    return {"type": "AdamW", "lr": 1, "betas": (0.9, 0.999), "weight_decay": 0.05,
            "constructor": "LearningRateDecayOptimizerConstructor", "paramwise_cfg": pw}


# (weight_decay, lr) of each group in mmsegmentation's own test (decay_rate=2, lr=1, num_layers=6 / 3)
MMSEG_STAGE_WISE = {(0.0, 128), (0.0, 1), (0.05, 64), (0.0, 64), (0.05, 32), (0.0, 32), (0.05, 16), (0.0, 16),
                    (0.05, 8), (0.0, 8), (0.05, 128), (0.05, 1)}
MMSEG_LAYER_WISE = {(0.0, 128), (0.0, 1), (0.05, 64), (0.0, 64), (0.05, 32), (0.0, 32), (0.05, 16), (0.0, 16),
                    (0.05, 2), (0.0, 2), (0.05, 128), (0.05, 1)}
MMSEG_BEIT = {(0.0, 16), (0.05, 8), (0.0, 8), (0.05, 4), (0.0, 4), (0.05, 2), (0.0, 2), (0.05, 1), (0.0, 1)}


def convnext_expected(decay_type: str, n: int = 6, rate: int = 2) -> dict[str, tuple[float, float]]:
    """mmseg's ids for the toy ConvNeXt, by hand: scale = rate ** (n + 1 - id)."""
    ids: dict[str, int] = {}
    for s in range(4):
        stage = {0: 1, 1: 2, 2: 3, 3: n}[s] if decay_type == "layer_wise" else s + 1
        ids[f"backbone.stages.{s}.0.conv.weight"] = ids[f"backbone.stages.{s}.0.conv.bias"] = stage
        down = {0: 0, 1: 2, 2: 3, 3: n}[s] if decay_type == "layer_wise" else 0
        ids[f"backbone.downsample_layers.{s}.0.weight"] = ids[f"backbone.downsample_layers.{s}.0.bias"] = down
    for token in ("cls_token", "mask_token", "pos_embed"):
        ids[f"backbone.{token}"] = 0
    for other in ("norm0.weight", "norm0.bias", "stem_norm", "downsample_norm0.weight", "downsample_norm0.bias",
                  "downsample_norm1.weight", "downsample_norm1.bias", "downsample_norm2.weight",
                  "downsample_norm2.bias"):
        ids[f"backbone.{other}"] = n + 1
    ids["decode_head.weight"] = ids["decode_head.bias"] = n + 1
    out = {}
    for name, layer in ids.items():
        no_decay = name.endswith(".bias") or name.rpartition(".")[2] in (
            "cls_token", "mask_token", "pos_embed", "stem_norm") or "norm" in name
        out[name] = (rate ** (n + 1 - layer), 0.0 if no_decay else 0.05)
    return out


@pytest.mark.parametrize("decay_type, groups", [("stage_wise", MMSEG_STAGE_WISE), ("layer_wise", MMSEG_LAYER_WISE)])
def test_mmseg_convnext_matches_its_own_test(decay_type: str, groups: set[tuple[float, float]]) -> None:
    model = PseudoDataParallel(ToySegmentor(ToyConvNeXt()))
    p = paramwise.plan_params(model, mmseg_cfg(decay_rate=2, decay_type=decay_type, num_layers=6))
    assert values(p) == convnext_expected(decay_type)
    assert {(wd, lr) for lr, wd in values(p).values()} == groups
    assert "backbone.lin" in p.frozen


@pytest.mark.parametrize("backbone", [ToyBEiT, ToyMAE])
def test_mmseg_beit_and_mae_match_its_own_test(backbone: type[nn.Module]) -> None:
    p = paramwise.plan_params(PseudoDataParallel(ToySegmentor(backbone())),
                              mmseg_cfg(decay_rate=2, decay_type="layer_wise", num_layers=3))
    assert {(wd, lr) for lr, wd in values(p).values()} == MMSEG_BEIT
    assert values(p)["backbone.layers.0.weight"] == (2 ** 3, 0.05)  # id 1 of N = 5: 2 ** (5 - 1 - 1)
    assert values(p)["backbone.cls_token"] == (2 ** 4, 0.0)


def test_mmseg_beit_with_real_names_decays_prefixed_tokens() -> None:
    """The no-decay test compares full names with bare 'pos_embed'/'cls_token': backbone.* is decayed."""
    model = ToySegmentor(BEiT(depth=2))
    p = plan(model, constructor="LearningRateDecayOptimizerConstructor",
             paramwise_cfg={"num_layers": 2, "decay_rate": 0.9, "decay_type": "layer_wise"})
    got = values(p)
    for name in ("backbone.cls_token", "backbone.pos_embed", "backbone.patch_embed.projection.weight"):
        assert got[name] == (0.9 ** 3 * LR, WD)
    assert got["backbone.patch_embed.projection.bias"] == (0.9 ** 3 * LR, 0.0)
    assert got["backbone.layers.1.attn.qkv.weight"] == (0.9 ** 1 * LR, WD)
    assert got["backbone.layers.0.gamma_1"] == (0.9 ** 2 * LR, 0.0)
    assert got["backbone.ln1.weight"] == (LR, 0.0)
    assert got["decode_head.weight"] == (LR, WD)
    note = p["backbone.pos_embed"].factors["weight_decay"][-1].note
    assert "bare 'pos_embed'" in note
    assert [f.rule for f in p["backbone.layers.0.gamma_1"].factors["weight_decay"]] == ["default", "no_decay"]


def test_mmseg_layer_wise_vit_is_layer_wise_also_for_convnext() -> None:
    model = ToySegmentor(ToyConvNeXt())
    a = plan(model, constructor="LearningRateDecayOptimizerConstructor",
             paramwise_cfg={"num_layers": 6, "decay_rate": 0.5, "decay_type": "layer_wise_vit"})
    b = plan(model, constructor="LearningRateDecayOptimizerConstructor",
             paramwise_cfg={"num_layers": 6, "decay_rate": 0.5, "decay_type": "layer_wise"})
    assert values(a) == values(b)
    assert "acts as 'layer_wise'" in a["backbone.stages.0.0.conv.weight"].factors["lr"][-1].note


def test_mmseg_convnext_stage_two_blocks_share_ids_in_threes() -> None:
    backbone = ToyConvNeXt()
    backbone.stages[2] = nn.Sequential(*(ConvModule() for _ in range(9)))
    p = plan(ToySegmentor(backbone), constructor="LearningRateDecayOptimizerConstructor",
             paramwise_cfg={"num_layers": 5, "decay_rate": 0.5})
    got = values(p)
    for block in range(9):  # id 3 + block // 3, scale 0.5 ** (num_layers + 1 - id)
        assert got[f"backbone.stages.2.{block}.conv.weight"][0] == 0.5 ** (6 - (3 + block // 3)) * LR
    assert got["backbone.stages.3.0.conv.weight"][0] == 0.5 ** 1 * LR  # id num_layers, as blocks 6-8 of stage 2
    assert "beside stage 3" in p["backbone.stages.2.8.conv.weight"].factors["lr"][-1].note
    assert "beside stage 3" not in p["backbone.stages.3.0.conv.weight"].factors["lr"][-1].note


@pytest.mark.parametrize("pw", [{"decay_type": "layer_wise"}, {"decay_type": "stage_wise"}])
def test_mmseg_other_backbones_are_config_errors(pw: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="ToyViT"):
        plan(ToySegmentor(ToyViT()), constructor="LearningRateDecayOptimizerConstructor",
             paramwise_cfg={"num_layers": 3, "decay_rate": 2, **pw})
    with pytest.raises(ConfigError, match="backbone"):
        plan(nn.Linear(2, 2), constructor="LearningRateDecayOptimizerConstructor",
             paramwise_cfg={"num_layers": 3, "decay_rate": 2, **pw})


def test_mmseg_ignores_custom_keys_and_multipliers_with_a_warning() -> None:
    model = ToySegmentor(BEiT(depth=2))
    pw = {"num_layers": 2, "decay_rate": 0.9}
    base = plan(model, constructor="LearningRateDecayOptimizerConstructor", paramwise_cfg=pw)
    with pytest.warns(ParamwiseWarning, match="ignores 'custom_keys', 'norm_decay_mult'"):
        other = paramwise.plan_params(model, {
            "type": "AdamW", "lr": LR, "weight_decay": WD, "constructor": "LearningRateDecayOptimizerConstructor",
            "paramwise_cfg": {**pw, "custom_keys": {"head": {"lr_mult": 10}}, "norm_decay_mult": 0.5}})
    assert values(base) == values(other)


def test_mmseg_bad_keys_are_reported_together() -> None:
    with pytest.raises(ConfigError) as error:
        paramwise.optimizer_constructor({"type": "AdamW", "lr": 1,
                                         "constructor": "LearningRateDecayOptimizerConstructor",
                                         "paramwise_cfg": {"num_layers": "12", "decay_type": "layerwise"}})
    assert problem_paths(error) == {
        ("optimizer", "paramwise_cfg", "num_layers"), ("optimizer", "paramwise_cfg", "decay_rate"),
        ("optimizer", "paramwise_cfg", "decay_type"), ("optimizer", "weight_decay")}


def test_deprecated_layer_decay_constructor_maps_its_keys() -> None:
    model = PseudoDataParallel(ToySegmentor(ToyBEiT()))
    pw = {"layer_decay_rate": 2, "num_layers": 3}
    with pytest.warns(ParamwiseWarning, match="deprecated"):
        p = paramwise.plan_params(model, {"type": "AdamW", "lr": 1, "betas": (0.9, 0.999), "weight_decay": 0.05,
                                          "constructor": "LayerDecayOptimizerConstructor", "paramwise_cfg": pw})
    assert {(wd, lr) for lr, wd in values(p).values()} == MMSEG_BEIT
    assert pw == {"layer_decay_rate": 2, "num_layers": 3}  # unlike the peer, the caller's dict is not changed
    with pytest.warns(ParamwiseWarning, match="replaced"):
        convnext = paramwise.plan_params(ToySegmentor(ToyConvNeXt()), {
            "type": "AdamW", "lr": 1, "weight_decay": 0.05, "constructor": "LayerDecayOptimizerConstructor",
            "paramwise_cfg": {"layer_decay_rate": 2, "num_layers": 6, "decay_type": "stage_wise", "decay_rate": 9}})
    assert values(convnext) == convnext_expected("layer_wise")
    with pytest.raises(ConfigError) as error, warnings.catch_warnings():
        warnings.simplefilter("ignore", ParamwiseWarning)
        paramwise.optimizer_constructor({"type": "AdamW", "lr": 1, "weight_decay": 0.05,
                                         "constructor": "LayerDecayOptimizerConstructor",
                                         "paramwise_cfg": {"num_layers": 3}})
    assert problem_paths(error) == {("optimizer", "paramwise_cfg", "layer_decay_rate")}


def test_mmseg_constructor_takes_an_optim_wrapper_config() -> None:
    from paramwise.build.openmmlab import LearningRateDecayOptimizerConstructor

    constructor = LearningRateDecayOptimizerConstructor(
        {"type": "OptimWrapper", "optimizer": {"type": "AdamW", "lr": 1, "weight_decay": 0.05}},
        {"decay_rate": 2, "num_layers": 3})
    optimizer = constructor(PseudoDataParallel(ToySegmentor(ToyBEiT())))
    assert isinstance(optimizer, torch.optim.AdamW)
    assert {(g["weight_decay"], g["lr"]) for g in optimizer.param_groups} == MMSEG_BEIT
    assert len(optimizer.param_groups) == len(MMSEG_BEIT)  # one group per distinct set of values


# ============================================================================== mmpretrain
class MmpretrainToyBackbone(nn.Module):
    """The toy of mmpretrain's own test, with VisionTransformer.get_layer_depth's rule."""

    get_layer_depth = BEiTBackbone.get_layer_depth

    def __init__(self, num_layers: int = 2) -> None:
        super().__init__()
        self.cls_token = nn.Parameter(torch.ones(1))
        self.pos_embed = nn.Parameter(torch.ones(1))
        self.num_layers = num_layers
        self.layers = nn.ModuleList(nn.Conv2d(3, 3, 1) for _ in range(num_layers))


class MmpretrainToyViT(nn.Module):
    get_layer_depth = Classifier.get_layer_depth

    def __init__(self) -> None:
        super().__init__()
        self.backbone = MmpretrainToyBackbone()
        self.head = nn.Linear(1, 1)


def test_mmpretrain_matches_its_own_test() -> None:
    from paramwise.build.openmmlab import LearningRateDecayOptimWrapperConstructor

    constructor = LearningRateDecayOptimWrapperConstructor(
        optim_wrapper_cfg={"type": "OptimWrapper",
                           "optimizer": {"type": "AdamW", "lr": 1.0, "betas": (0.9, 0.999), "weight_decay": 0.05}},
        paramwise_cfg={"layer_decay_rate": 2.0, "bias_decay_mult": 0.0,
                       "custom_keys": {".cls_token": {"decay_mult": 0.0}, ".pos_embed": {"decay_mult": 0.0}}})
    expected = {"backbone.cls_token": (8.0, 0.0), "backbone.pos_embed": (8.0, 0.0),
                "backbone.layers.0.weight": (4.0, 0.05), "backbone.layers.0.bias": (4.0, 0.0),
                "backbone.layers.1.weight": (2.0, 0.05), "backbone.layers.1.bias": (2.0, 0.0),
                "head.weight": (1.0, 0.05), "head.bias": (1.0, 0.0)}
    model = MmpretrainToyViT()
    assert values(constructor.plan(model)) == expected
    optimizer = constructor(model)
    assert optimizer.defaults["lr"] == 1.0 and optimizer.defaults["weight_decay"] == 0.05
    assert {(g["lr"], g["weight_decay"]) for g in optimizer.param_groups} == set(expected.values())


def test_mmpretrain_weight_decay_chain_and_dropped_lr_mult() -> None:
    model = Classifier(BEiTBackbone(depth=2, pre_norm=True))
    pw = {"layer_decay_rate": 0.5, "norm_decay_mult": 0.0, "bias_decay_mult": 0.5, "flat_decay_mult": 0.25,
          "custom_keys": {".cls_token": {"decay_mult": 0.0}, "head": {"lr_mult": 10.0, "decay_mult": 2.0}}}
    p = plan(model, constructor="LearningRateDecayOptimWrapperConstructor", paramwise_cfg=pw)
    got = values(p)
    s = {depth: 0.5 ** (3 - depth) for depth in range(4)}  # 4 depths: scale 0.5 ** (4 - 1 - depth)
    assert got["backbone.cls_token"] == (s[0] * LR, 0.0)
    assert got["backbone.pos_embed"] == (s[0] * LR, WD)  # 3-D, no custom key: plain weight decay
    assert got["backbone.patch_embed.projection.weight"] == (s[0] * LR, WD)
    assert got["backbone.patch_embed.projection.bias"] == (s[0] * LR, WD * 0.5)
    assert got["backbone.pre_norm.weight"] == (s[3] * LR, 0.0)  # mmpretrain's depth for pre_norm: the top
    assert got["backbone.layers.0.gamma_1"] == (s[1] * LR, WD * 0.25)
    assert got["backbone.layers.0.ln1.bias"] == (s[1] * LR, 0.0)  # norm beats bias
    assert got["backbone.layers.1.attn.qkv.bias"] == (s[2] * LR, WD * 0.5)
    assert got["head.fc.weight"] == (LR, WD * 2.0)  # lr_mult 10 dropped
    assert got["head.fc.bias"] == (LR, WD * 2.0)  # the custom key beats the bias rule
    notes = [f.note for f in p["head.fc.weight"].factors["lr"]]
    assert any("lr_mult=10 dropped" in n for n in notes)


def test_mmpretrain_without_layer_decay_rate_keeps_lr_and_drops_lr_mult() -> None:
    p = plan(Classifier(BEiTBackbone(depth=2)), constructor="LearningRateDecayOptimWrapperConstructor",
             paramwise_cfg={"custom_keys": {"qkv": {"lr_mult": 3.0}}})
    assert set(values(p).values()) == {(LR, WD)}


def test_mmpretrain_needs_get_layer_depth_unless_paramwise_cfg_is_empty() -> None:
    model = ToySegmentor(ToyBEiT())
    with pytest.raises(ConfigError, match="get_layer_depth"):
        plan(model, constructor="LearningRateDecayOptimWrapperConstructor", paramwise_cfg={"layer_decay_rate": 0.5})
    assert set(values(plan(model, constructor="LearningRateDecayOptimWrapperConstructor")).values()) == {(LR, WD)}


def test_peer_constructor_with_layer_decay_option_is_an_error() -> None:
    with pytest.raises(ConfigError) as error:
        paramwise.optimizer_constructor({"type": "AdamW", "lr": LR, "weight_decay": WD,
                                         "constructor": "LearningRateDecayOptimWrapperConstructor",
                                         "paramwise_cfg": {"layer_decay_rate": 0.5, "layer_decay": 0.5}})
    assert problem_paths(error) == {("optimizer", "paramwise_cfg", "layer_decay")}


# ========================================================================= timm and the option
class TimmBlock(nn.Module):
    def __init__(self, dim: int = 4) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = nn.Module()
        self.attn.qkv = nn.Linear(dim, 3 * dim)


class TimmViT(nn.Module):
    """timm's VisionTransformer as far as names and ``group_matcher`` go."""

    def __init__(self, depth: int = 3, dim: int = 4) -> None:
        super().__init__()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 5, dim))
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(3, dim, 2)
        self.blocks = nn.Sequential(*(TimmBlock(dim) for _ in range(depth)))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, 2)

    def group_matcher(self, coarse: bool = False) -> dict[str, object]:
        return {"stem": r"^cls_token|pos_embed|patch_embed",
                "blocks": [(r"^blocks\.(\d+)", None), (r"^norm", (99999,))]}


class TimmConvNeXt(nn.Module):
    """timm's ConvNeXt names: stem, stages.N.downsample, stages.N.blocks.M, norm_pre, head."""

    def __init__(self, depths: tuple[int, ...] = (1, 2)) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 2)
        self.stages = nn.ModuleList()
        for i, depth in enumerate(depths):
            stage = nn.Module()
            if i:
                stage.downsample = nn.Conv2d(4, 4, 1)
            stage.blocks = nn.Sequential(*(nn.Linear(4, 4) for _ in range(depth)))
            self.stages.append(stage)
        self.norm_pre = nn.LayerNorm(4)
        self.head = nn.Linear(4, 2)

    def group_matcher(self, coarse: bool = False) -> dict[str, object]:
        return {"stem": r"^stem",
                "blocks": [(r"^stages\.(\d+)\.downsample", (0,)), (r"^stages\.(\d+)\.blocks\.(\d+)", None),
                           (r"^norm_pre", (99999,))]}


def timm_scale(layer: int, num_layers: int, decay: float, min_scale: float = 0.0) -> float:
    return max(min_scale, decay ** (num_layers - 1 - layer))


@pytest.mark.parametrize("min_scale", [0.0, 0.2])
def test_timm_vit_scales(min_scale: float) -> None:
    model = TimmViT(depth=3)
    p = plan(model, paramwise_cfg={"layer_decay": {"rate": 0.5, "min_scale": min_scale}})
    # timm's ids: stem 0, blocks.i at i + 1, norm joins the last block (99999), head unmatched: last
    ids = {"cls_token": 0, "pos_embed": 0, "patch_embed.proj.weight": 0, "patch_embed.proj.bias": 0,
           "norm.weight": 3, "norm.bias": 3, "head.weight": 4, "head.bias": 4}
    ids.update({f"blocks.{i}.{leaf}": i + 1 for i in range(3)
                for leaf in ("norm1.weight", "norm1.bias", "attn.qkv.weight", "attn.qkv.bias")})
    assert {e.name: e.hyperparams["lr"] for e in p} == {
        name: LR * timm_scale(layer, 5, 0.5, min_scale) for name, layer in ids.items()}
    assert p["blocks.0.attn.qkv.weight"].factors["lr"][-1].note == (
        "min_scale 0.2 (> 0.5^3), layer 1 of 4" if min_scale else "0.5^3, layer 1 of 4")


def test_timm_convnext_downsample_joins_the_first_block() -> None:
    p = plan(TimmConvNeXt(depths=(1, 2)), paramwise_cfg={"layer_decay": 0.5})
    ids = {"stem": 0, "stages.0.blocks.0": 1, "stages.1.downsample": 2, "stages.1.blocks.0": 2,
           "stages.1.blocks.1": 3, "norm_pre": 3, "head": 4}
    got = {e.name.rpartition(".")[0]: e.hyperparams["lr"] for e in p}
    assert got == {name: LR * 0.5 ** (4 - layer) for name, layer in ids.items()}


def test_group_with_matcher_ordering() -> None:
    names = ["a", "blocks.10.x", "blocks.2.x", "norm", "stem", "head"]
    keys = matcher_layer_keys(names, {"stem": r"^stem|^a$", "skipped": None,
                                      "blocks": [(r"^blocks\.(\d+)", None), (r"^norm", (99999,))]})
    assert keys["blocks.10.x"] == (2.0, 10.0) and keys["head"] == (math.inf,)
    ranks = rank_layer_keys(keys.values())
    assert [ranks[keys[n]] for n in names] == [0, 2, 1, 2, 0, 3]


# --------------------------------------------------------------------------- built-in families
class HFLlama(nn.Module):
    def __init__(self, depth: int = 2) -> None:
        super().__init__()
        self.model = nn.Module()
        self.model.embed_tokens = nn.Embedding(10, 4)
        self.model.layers = nn.ModuleList(nn.Linear(4, 4) for _ in range(depth))
        self.model.norm = nn.LayerNorm(4)
        self.lm_head = nn.Linear(4, 10, bias=False)


class HFBert(nn.Module):
    def __init__(self, depth: int = 2) -> None:
        super().__init__()
        self.bert = nn.Module()
        self.bert.embeddings = nn.Module()
        self.bert.embeddings.word_embeddings = nn.Embedding(10, 4)
        self.bert.embeddings.LayerNorm = nn.LayerNorm(4)
        self.bert.encoder = nn.Module()
        self.bert.encoder.layer = nn.ModuleList(nn.Linear(4, 4) for _ in range(depth))
        self.bert.pooler = nn.Linear(4, 4)
        self.classifier = nn.Linear(4, 2)


class GPT2(nn.Module):
    def __init__(self, depth: int = 2) -> None:
        super().__init__()
        self.transformer = nn.Module()
        self.transformer.wte = nn.Embedding(10, 4)
        self.transformer.wpe = nn.Embedding(8, 4)
        self.transformer.h = nn.ModuleList(nn.Linear(4, 4) for _ in range(depth))
        self.transformer.ln_f = nn.LayerNorm(4)


class MMSwin(nn.Module):
    """mmpretrain's Swin: stages.N.blocks.M, then stages.N.downsample after the blocks."""

    def __init__(self) -> None:
        super().__init__()
        self.patch_embed = nn.Conv2d(3, 4, 2)
        self.stages = nn.ModuleList()
        for i, depth in enumerate((2, 1)):
            stage = nn.Module()
            stage.blocks = nn.ModuleList(nn.Linear(4, 4) for _ in range(depth))
            if i == 0:
                stage.downsample = nn.Linear(4, 4)
            self.stages.append(stage)
        self.norm3 = nn.LayerNorm(4)


class MMConvNeXt(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.downsample_layers = nn.ModuleList(nn.Conv2d(4, 4, 1) for _ in range(2))
        self.stages = nn.ModuleList(nn.Sequential(*(nn.Linear(4, 4) for _ in range(2))) for _ in range(2))
        self.norm3 = nn.LayerNorm(4)


FAMILY_CASES = {
    # model, {name prefix: expected layer}, number of layers
    "mm ViT": (lambda: Classifier(BEiTBackbone(depth=2)),
               {"backbone.cls_token": 0, "backbone.pos_embed": 0, "backbone.patch_embed": 0, "backbone.layers.0": 1,
                "backbone.layers.1": 2, "backbone.ln1": 3, "head.fc": 3}, 4),
    "timm ViT": (lambda: TimmViT(depth=2), {"cls_token": 0, "pos_embed": 0, "patch_embed": 0, "blocks.0": 1,
                                            "blocks.1": 2, "norm": 3, "head": 3}, 4),
    "Llama": (HFLlama, {"model.embed_tokens": 0, "model.layers.0": 1, "model.layers.1": 2, "model.norm": 3,
                        "lm_head": 3}, 4),
    "BERT": (HFBert, {"bert.embeddings": 0, "bert.encoder.layer.0": 1, "bert.encoder.layer.1": 2, "bert.pooler": 3,
                      "classifier": 3}, 4),
    "GPT-2": (GPT2, {"transformer.wte": 0, "transformer.wpe": 0, "transformer.h.0": 1, "transformer.h.1": 2,
                     "transformer.ln_f": 3}, 4),
    "Swin": (MMSwin, {"patch_embed": 0, "stages.0.blocks.0": 1, "stages.0.blocks.1": 2, "stages.0.downsample": 2,
                      "stages.1.blocks.0": 3, "norm3": 4}, 5),
    "mm ConvNeXt": (MMConvNeXt, {"downsample_layers.0": 0, "stages.0.0": 1, "stages.0.1": 2,
                                 "downsample_layers.1": 3, "stages.1.0": 3, "stages.1.1": 4, "norm3": 5}, 6),
}


@pytest.mark.parametrize("case", list(FAMILY_CASES))
def test_families_place_every_parameter(case: str) -> None:
    factory, layers, count = FAMILY_CASES[case]
    model = factory()
    p = plan(model, paramwise_cfg={"layer_decay": {"rate": 0.5, "source": "families"}})
    for entry in p:
        prefix = next(k for k in layers if entry.name == k or entry.name.startswith(k + "."))
        assert entry.hyperparams["lr"] == LR * 0.5 ** (count - 1 - layers[prefix]), entry.name


def test_families_refuse_two_stacks_of_blocks() -> None:
    model = nn.Module()
    model.encoder = GPT2()
    model.decoder = GPT2()
    with pytest.raises(ConfigError, match="more than one module"):
        plan(model, paramwise_cfg={"layer_decay": 0.5})
    with pytest.raises(ConfigError, match="no built-in family"):
        plan(nn.Sequential(nn.Linear(2, 2)), paramwise_cfg={"layer_decay": 0.5})


def test_get_layer_depth_is_preferred_and_beit_keeps_the_models_count() -> None:
    class Gappy(Classifier):
        def get_layer_depth(self, param_name: str) -> tuple[int, int]:
            layer, total = super().get_layer_depth(param_name)
            return layer, total + 2  # two ids that no parameter has

    model = Gappy(BEiTBackbone(depth=2))
    timm = values(plan(model, paramwise_cfg={"layer_decay": 0.5}))
    beit = values(plan(model, paramwise_cfg={"layer_decay": {"rate": 0.5, "formula": "beit"}}))
    assert timm["backbone.cls_token"][0] == LR * 0.5 ** 3  # 4 ids in use: 0 .. 3
    assert beit["backbone.cls_token"][0] == LR * 0.5 ** 5  # the model says 6: 0 .. 5
    assert beit["head.fc.weight"][0] == LR * 0.5 ** 2


# -------------------------------------------------------------------------------- layer_rules
RULES = [r"^(?:cls_token|pos_embed|patch_embed)", r"^blocks\.(\d+)\."]


def test_layer_rules_and_unplaced_parameters() -> None:
    model = TimmViT(depth=2)
    with pytest.raises(ConfigError) as error:
        plan(model, paramwise_cfg={"layer_decay": {"rate": 0.5, "layer_rules": RULES}})
    assert problem_paths(error) == {("optimizer", "paramwise_cfg", "layer_decay", "layer_rules")}
    assert "'norm.weight'" in str(error.value) and "'head.bias'" in str(error.value)
    with pytest.warns(ParamwiseWarning, match="last layer"):
        p = paramwise.plan_params(model, {"type": "AdamW", "lr": LR, "paramwise_cfg": {
            "layer_decay": {"rate": 0.5, "layer_rules": RULES, "unplaced": "last"}}})
    assert p["head.weight"].hyperparams["lr"] == LR * 0.5 ** 0
    assert p["blocks.1.norm1.weight"].hyperparams["lr"] == LR * 0.5 ** 1
    assert p["cls_token"].hyperparams["lr"] == LR * 0.5 ** 3
    assert "unplaced='last'" in p["norm.bias"].factors["lr"][-1].note
    placed = plan(model, paramwise_cfg={"layer_decay": {"rate": 0.5, "layer_rules": [*RULES, r"."]}})
    assert {e.name: e.hyperparams["lr"] for e in placed} == {e.name: e.hyperparams["lr"] for e in p}


# -------------------------------------------------------------------------------- composition
def test_option_composes_with_custom_keys_and_norm_bias_rules() -> None:
    model = TimmViT(depth=2)
    pw = {"custom_keys": {"blocks.1.attn": {"lr_mult": 0.1}}, "norm_decay_mult": 0.0, "bias_lr_mult": 2.0,
          "layer_decay": {"rate": 0.5}, "compose": True}
    p = plan(model, paramwise_cfg=pw)
    entry = p["blocks.1.attn.qkv.bias"]
    assert [f.rule for f in entry.factors["lr"]] == ["default", "custom_keys['blocks.1.attn']", "bias_lr_mult",
                                                     "layer_decay"]
    assert entry.hyperparams["lr"] == LR * 0.1 * 2.0 * 0.5 ** 1
    norm = p["blocks.0.norm1.weight"]
    assert norm.hyperparams == {"lr": LR * 0.5 ** 2, "weight_decay": 0.0}
    assert [f.rule for f in norm.factors["weight_decay"]] == ["default", "norm_decay_mult"]
    # mmengine's default semantics: the custom key switches the bias rule off, layer decay still multiplies
    default = plan(model, paramwise_cfg={k: v for k, v in pw.items() if k != "compose"})
    assert default["blocks.1.attn.qkv.bias"].hyperparams["lr"] == LR * 0.1 * 0.5 ** 1
    assert default["head.bias"].hyperparams["lr"] == LR * 2.0


def test_optimizer_groups_merge_and_carry_the_decayed_lr() -> None:
    model = TimmViT(depth=2)
    cfg = {"type": "AdamW", "lr": LR, "weight_decay": WD,
           "paramwise_cfg": {"layer_decay": 0.5, "norm_decay_mult": 0.0}}
    p = paramwise.plan_params(model, cfg)
    optimizer = paramwise.build_optimizer(model, cfg)
    distinct = {(e.hyperparams["lr"], e.hyperparams["weight_decay"]) for e in p}
    assert len(optimizer.param_groups) == len(distinct)
    by_param = {id(t): (g["lr"], g["weight_decay"]) for g in optimizer.param_groups for t in g["params"]}
    assert all(by_param[id(e.param)] == (e.hyperparams["lr"], e.hyperparams["weight_decay"]) for e in p)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.1)
    optimizer.step()
    scheduler.step()
    lrs = sorted({g["lr"] for g in optimizer.param_groups})
    assert lrs == pytest.approx(sorted({lr * 0.1 for lr, _ in distinct}))


@given(rate=st.floats(0.05, 1.0), min_scale=st.floats(0.0, 1.0), depth=st.integers(1, 4),
       lr_mult=st.floats(0.0, 10.0), norm_mult=st.floats(0.0, 2.0), compose=st.booleans(),
       wd=st.one_of(st.none(), st.floats(0.0, 1.0)))
def test_factors_fold_to_every_value(rate: float, min_scale: float, depth: int, lr_mult: float, norm_mult: float,
                                     compose: bool, wd: float | None) -> None:
    cfg: dict[str, object] = {"type": "AdamW", "lr": 1e-3, "paramwise_cfg": {
        "layer_decay": {"rate": rate, "min_scale": min_scale}, "custom_keys": {"blocks.0": {"lr_mult": lr_mult}},
        "bias_lr_mult": 2.0, "compose": compose, **({"norm_decay_mult": norm_mult} if wd is not None else {})}}
    if wd is not None:
        cfg["weight_decay"] = wd
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ParamwiseWarning)
        p = paramwise.plan_params(TimmViT(depth=depth), cfg)
    for entry in p:
        for key, value in entry.hyperparams.items():
            assert fold(entry.factors[key]) == value, (entry.name, key)


@given(rate=st.floats(0.05, 1.0), depth=st.integers(1, 3), constructor=st.sampled_from(["mmseg", "mmpretrain"]))
def test_peer_factors_fold_to_every_value(rate: float, depth: int, constructor: str) -> None:
    if constructor == "mmseg":
        model: nn.Module = ToySegmentor(BEiT(depth=depth))
        cfg = {"constructor": "LearningRateDecayOptimizerConstructor",
               "paramwise_cfg": {"num_layers": depth, "decay_rate": rate}}
    else:
        model = Classifier(BEiTBackbone(depth=depth))
        cfg = {"constructor": "LearningRateDecayOptimWrapperConstructor",
               "paramwise_cfg": {"layer_decay_rate": rate, "norm_decay_mult": 0.0,
                                 "custom_keys": {"head": {"lr_mult": 2.0, "decay_mult": 0.5}}}}
    for entry in plan(model, **cfg):
        for key, value in entry.hyperparams.items():
            assert fold(entry.factors[key]) == value, (entry.name, key)


# ----------------------------------------------------------------------------- bad values
LD = ("optimizer", "paramwise_cfg", "layer_decay")


@pytest.mark.parametrize("value, paths, text", [
    ("0.65", {LD}, "must be a rate"),
    ({"rate": 1.5}, {(*LD, "rate")}, "(0, 1]"),
    ({}, {(*LD, "rate")}, "missing"),
    ({"decay_rate": 0.65}, {(*LD, "decay_rate"), (*LD, "rate")}, "called 'rate' here"),
    ({"rate": 0.5, "min_scal": 0.1}, {(*LD, "min_scal")}, "Did you mean 'min_scale'?"),
    ({"rate": 0.5, "min_scale": -1}, {(*LD, "min_scale")}, "[0, 1]"),
    ({"rate": 0.5, "source": "family"}, {(*LD, "source")}, "Did you mean 'families'?"),
    ({"rate": 0.5, "formula": "mmseg"}, {(*LD, "formula")}, "'timm', 'beit'"),
    ({"rate": 0.5, "unplaced": "first"}, {(*LD, "unplaced")}, "'error', 'last'"),
    ({"rate": 0.5, "layer_rules": ["blocks.(\\d+", 3]}, {(*LD, "layer_rules", "0"), (*LD, "layer_rules", "1")},
     "not a valid regex"),
    ({"rate": 0.5, "source": "rules"}, {(*LD, "layer_rules")}, "is needed"),
    ({"rate": 0.5, "source": "families", "layer_rules": ["x"]}, {(*LD, "layer_rules")}, "only read"),
])
def test_bad_option_values_name_their_paths(value: object, paths: set[tuple[str, ...]], text: str) -> None:
    with pytest.raises(ConfigError) as error:
        paramwise.optimizer_constructor({"type": "AdamW", "lr": LR, "paramwise_cfg": {"layer_decay": value}})
    assert problem_paths(error) == paths
    assert text in str(error.value)


def test_layer_rule_captures_must_be_numbers_and_sources_must_exist() -> None:
    with pytest.raises(ConfigError, match=re.escape("layer_rules[0]")):
        plan(TimmViT(), paramwise_cfg={"layer_decay": {"rate": 0.5, "layer_rules": [r"^(\w+)\."]}})
    with pytest.raises(ConfigError, match="has no get_layer_depth"):
        plan(TimmViT(), paramwise_cfg={"layer_decay": {"rate": 0.5, "source": "get_layer_depth"}})
    with pytest.raises(ConfigError, match="has no group_matcher"):
        plan(HFLlama(), paramwise_cfg={"layer_decay": {"rate": 0.5, "source": "group_matcher"}})
