"""Width scaling (muP) and scale_rules: the same per-parameter values as the ``mup`` package's
MuAdam/MuSGD on the same models, from every form of base shapes, composing with the other rules."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import paramwise
from paramwise import ConfigError
from paramwise.plan.rules import fold

mup = pytest.importorskip("mup")
MuReadout = mup.MuReadout


# ------------------------------------------------------------------ models
class MLP(nn.Module):
    """Input layer, hidden layer, a norm, and a MuReadout head (or a plain Linear one)."""

    def __init__(self, width: int, readout: type[nn.Linear] = MuReadout, classes: int = 5) -> None:
        super().__init__()
        self.fc1 = nn.Linear(12, width)
        self.norm = nn.LayerNorm(width)
        self.fc2 = nn.Linear(width, width * 2)
        self.fc3 = nn.Linear(width * 2, width)
        self.head = readout(width, classes)


class Block(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))


class TinyLM(nn.Module):
    """A transformer-ish language model: embedding, positional embedding, blocks, MuReadout over the vocab."""

    def __init__(self, dim: int, depth: int = 2, vocab: int = 17, context: int = 8) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.pos_embed = nn.Parameter(torch.zeros(context, dim))
        self.blocks = nn.ModuleList(Block(dim) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.lm_head = MuReadout(dim, vocab)


MODELS = {"mlp": MLP, "lm": TinyLM}
OPTIMIZERS = {"adam": (mup.MuAdam, "Adam"), "adamw": (mup.MuAdamW, "AdamW"), "sgd": (mup.MuSGD, "SGD")}
LR, WD = 1e-2, 1e-3


def with_infshape(model: nn.Module, base: Any, do_assert: bool = True) -> nn.Module:
    return mup.set_base_shapes(model, base, rescale_params=False, do_assert=do_assert)


def mup_values(model: nn.Module, optimizer: str, **kwargs: Any) -> dict[str, tuple[float, float]]:
    """name -> (lr, weight_decay) in the optimizer mup builds (its model must carry infshape)."""
    cls, _ = OPTIMIZERS[optimizer]
    opt = cls(model.parameters(), lr=LR, weight_decay=WD, **kwargs)
    by_id = {id(p): (g["lr"], g["weight_decay"]) for g in opt.param_groups for p in g["params"]}
    return {n: by_id[id(p)] for n, p in model.named_parameters()}


def plan_values(model: nn.Module, optimizer: str, width_scaling: Any, **pw: Any) -> dict[str, tuple[float, float]]:
    cfg = dict(type=OPTIMIZERS[optimizer][1], lr=LR, weight_decay=WD,
               paramwise_cfg=dict(width_scaling=width_scaling, **pw))
    plan = paramwise.plan_params(model, cfg)
    return {e.name: (e.hyperparams["lr"], e.hyperparams["weight_decay"]) for e in plan.entries}


def assert_same(ours: dict[str, tuple[float, float]], theirs: dict[str, tuple[float, float]]) -> None:
    assert ours.keys() == theirs.keys()
    for name in theirs:
        assert ours[name] == pytest.approx(theirs[name], rel=1e-12), name


@pytest.fixture
def registered() -> Iterator[str]:
    """The test models in paramwise.MODELS (base_model names them), removed afterwards."""
    names = {"test_width_mlp": MLP, "test_width_lm": TinyLM}
    for name, cls in names.items():
        paramwise.MODELS.register_module(name=name, module=cls, force=True)
    yield "test_width_"
    for name in names:
        paramwise.MODELS._modules.pop(name, None)


# ------------------------------------------------------------------ parity with mup
@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
@pytest.mark.parametrize("kind", sorted(MODELS))
def test_infshape_parity(kind: str, optimizer: str) -> None:
    cls = MODELS[kind]
    model = with_infshape(cls(64), cls(16))
    assert_same(plan_values(model, optimizer, True), mup_values(model, optimizer))


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
@pytest.mark.parametrize("kind", sorted(MODELS))
def test_base_shapes_dict_parity(kind: str, optimizer: str) -> None:
    cls = MODELS[kind]
    base, model = cls(16), cls(48)
    ours = plan_values(model, optimizer, dict(base_shapes={k: list(v) for k, v in mup.get_shapes(base).items()}))
    assert_same(ours, mup_values(with_infshape(model, base), optimizer))


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
@pytest.mark.parametrize("kind", sorted(MODELS))
def test_base_shapes_file_parity(kind: str, optimizer: str, tmp_path: Any) -> None:
    cls = MODELS[kind]
    path = str(tmp_path / f"{kind}.bsh")
    mup.make_base_shapes(cls(16), cls(32), savefile=path)  # base and delta: mup's recommended file
    model = cls(80)
    ours = plan_values(model, optimizer, dict(base_shapes=path))
    assert_same(ours, mup_values(with_infshape(model, path), optimizer))


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
@pytest.mark.parametrize("kind", sorted(MODELS))
def test_base_model_parity(kind: str, optimizer: str, registered: str) -> None:
    cls = MODELS[kind]
    model = cls(64)
    ours = plan_values(model, optimizer, dict(base_model=dict(type=registered + kind, width=16)
                                              if kind == "mlp" else dict(type=registered + kind, dim=16)))
    assert_same(ours, mup_values(with_infshape(model, cls(16)), optimizer))


def test_base_model_with_delta_parity(registered: str) -> None:
    model = TinyLM(48)
    ws = dict(base_model=dict(type=registered + "lm", dim=16), delta_model=dict(type=registered + "lm", dim=24))
    reference = with_infshape(model, mup.make_base_shapes(TinyLM(16), TinyLM(24)))
    for optimizer in OPTIMIZERS:
        assert_same(plan_values(model, optimizer, ws), mup_values(reference, optimizer))


def test_uneven_width_multipliers_and_a_moved_main_dimension() -> None:
    shapes = {k: list(v) for k, v in mup.get_shapes(MLP(16)).items()}
    shapes["fc2.weight"] = [32, 8]  # fc2 is 128 x 64: fan_out 4x, fan_in 8x
    for optimizer in OPTIMIZERS:
        model = MLP(64)
        ours = plan_values(model, optimizer, dict(base_shapes=shapes))
        assert_same(ours, mup_values(with_infshape(model, shapes), optimizer))
    assert ours["fc2.weight"] == pytest.approx((LR / 2, WD * 2))  # SGD: lr / (fan_in mult 8 / fan_out mult 4)
    model = with_infshape(MLP(64), shapes)
    infshape: Any = getattr(model.get_parameter("fc2.weight"), "infshape")  # noqa: B009
    infshape.main_idx, infshape.main = 0, infshape[0]  # mup: "user can set this manually if necessary"
    ours = plan_values(model, "adam", True)
    assert ours["fc2.weight"] == pytest.approx((LR / 4, WD * 4))  # not / 8: the main dimension is fan_out
    assert_same(ours, mup_values(model, "adam"))


@settings(max_examples=25)
@given(
    kind=st.sampled_from(sorted(MODELS)),
    optimizer=st.sampled_from(sorted(OPTIMIZERS)),
    base=st.integers(1, 6).map(lambda k: 8 * k),
    width=st.integers(1, 12).map(lambda k: 8 * k),
    head_mult=st.sampled_from([None, 0.1, 3.0]),
    scale_wd=st.booleans(),
)
def test_random_widths(kind: str, optimizer: str, base: int, width: int, head_mult: float | None,
                       scale_wd: bool) -> None:
    """For every parameter and key the recorded factors give the value; the values are mup's
    (times a custom key's lr_mult, and with weight decay unscaled when asked)."""
    cls = MODELS[kind]
    model = with_infshape(cls(width), cls(base))
    head = "head" if kind == "mlp" else "lm_head"
    custom = {} if head_mult is None else dict(custom_keys={head: dict(lr_mult=head_mult)})
    cfg = dict(type=OPTIMIZERS[optimizer][1], lr=LR, weight_decay=WD,
               paramwise_cfg=dict(width_scaling=dict(scale_weight_decay=scale_wd), **custom))
    plan = paramwise.plan_params(model, cfg)
    for entry in plan.entries:
        for key, value in entry.hyperparams.items():
            assert fold(entry.factors[key]) == value, (entry.name, key)
    reference = mup_values(model, optimizer)
    for entry in plan.entries:
        lr, wd = reference[entry.name]
        if head_mult is not None and entry.name.startswith(head):
            lr *= head_mult
        assert entry.hyperparams["lr"] == pytest.approx(lr, rel=1e-12)
        assert entry.hyperparams["weight_decay"] == pytest.approx(wd if scale_wd else WD, rel=1e-12)


# ------------------------------------------------------------------ the plan, composition, the optimizer
def test_factors_say_why() -> None:
    model = with_infshape(MLP(64), MLP(16))
    cfg = dict(type="AdamW", lr=LR, weight_decay=WD, paramwise_cfg=dict(width_scaling=True))
    plan = paramwise.plan_params(model, cfg)
    assert [str(f) for f in plan["fc3.weight"].factors["lr"]] == [
        "0.01", "x 0.25 width_scaling (width_mult 4, matrix-like)"]
    assert plan["fc3.weight"].rules["lr"] == "width_scaling"
    assert [str(f) for f in plan["fc3.weight"].factors["weight_decay"]] == [
        "0.001", "x 4 width_scaling (width_mult 4, matrix-like)"]
    assert plan["norm.weight"].rules["lr"] == "default"  # Adam: vectors keep the base lr
    sgd = paramwise.plan_params(model, dict(cfg, type="SGD"))
    assert str(sgd["norm.weight"].factors["lr"][-1]) == "x 4 width_scaling (width_mult 4, vector-like)"
    assert len(sgd["fc2.weight"].factors["lr"]) == 1  # fan_in and fan_out both 4x: ratio 1, nothing to show


def test_custom_key_and_width_scaling_multiply() -> None:
    model = with_infshape(MLP(64), MLP(16))
    pw = dict(width_scaling=True, custom_keys={"fc1": dict(lr_mult=0.1), "head": dict(lr_mult=0.5)},
              norm_decay_mult=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", paramwise.ParamwiseWarning)  # see test_composed_multiplier_is_not_idle
        plan = paramwise.plan_params(model, dict(type="SGD", lr=LR, weight_decay=WD, paramwise_cfg=pw))
    reference = mup_values(model, "sgd")
    fc1 = plan["fc1.weight"]
    assert fc1.hyperparams["lr"] == pytest.approx(reference["fc1.weight"][0] * 0.1)
    assert [f.rule for f in fc1.factors["lr"]] == ["default", "custom_keys['fc1']", "width_scaling"]
    head = plan["head.weight"]  # a MuReadout weight: vector-like, x width_mult with SGD
    assert head.hyperparams["lr"] == pytest.approx(LR * 0.5 * 4)
    assert head.rules["lr"] == "custom_keys['head'] x width_scaling"
    norm = plan["norm.weight"]
    assert norm.hyperparams["weight_decay"] == 0.0 and norm.hyperparams["lr"] == pytest.approx(LR * 4)


def test_composed_multiplier_is_not_idle() -> None:
    model = with_infshape(MLP(64), MLP(16))
    cfg = dict(type="SGD", lr=LR, weight_decay=WD, paramwise_cfg=dict(width_scaling=True, norm_decay_mult=0.0))
    with warnings.catch_warnings():
        warnings.simplefilter("error", paramwise.ParamwiseWarning)  # norm_decay_mult is not reported as idle
        plan = paramwise.plan_params(model, cfg)
    for name in ("norm.weight", "norm.bias"):  # because it does decide: it composes with width_scaling
        assert plan[name].rules["weight_decay"] == "norm_decay_mult x width_scaling"
        assert plan[name].hyperparams == {"lr": pytest.approx(LR * 4), "weight_decay": 0.0}


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_build_optimizer_merges_groups(optimizer: str) -> None:
    model = with_infshape(TinyLM(64, depth=3), TinyLM(16, depth=3))
    cfg = dict(type=OPTIMIZERS[optimizer][1], lr=LR, weight_decay=WD, paramwise_cfg=dict(width_scaling=True))
    opt = paramwise.build_optimizer(model, cfg)
    names = {id(p): n for n, p in model.named_parameters()}
    ours = {names[id(p)]: (g["lr"], g["weight_decay"]) for g in opt.param_groups for p in g["params"]}
    assert_same(ours, mup_values(model, optimizer))
    distinct = {(g["lr"], g["weight_decay"]) for g in opt.param_groups}
    assert len(distinct) == len(opt.param_groups)  # one group per distinct set of values
    assert len(opt.param_groups) <= 3  # mup's own layout has more (one per width_mult and kind)
    assert all(len(g["param_names"]) == len(g["params"]) for g in opt.param_groups)


def test_without_weight_decay_only_lr_scales() -> None:
    model = with_infshape(MLP(64), MLP(16))
    plan = paramwise.plan_params(model, dict(type="Adam", lr=LR, paramwise_cfg=dict(width_scaling=True)))
    assert "weight_decay" not in plan["fc3.weight"].hyperparams
    assert plan["fc3.weight"].hyperparams["lr"] == pytest.approx(LR / 4)


def test_scale_eps() -> None:
    model = with_infshape(MLP(64), MLP(16))
    cfg = dict(type="AdamW", lr=LR, eps=1e-8, paramwise_cfg=dict(width_scaling=dict(scale_eps=True)))
    plan = paramwise.plan_params(model, cfg)
    assert plan["fc3.weight"].hyperparams["eps"] == pytest.approx(1e-8 / 4)
    assert fold(plan["fc3.weight"].factors["eps"]) == plan["fc3.weight"].hyperparams["eps"]
    assert "eps" not in plan["norm.weight"].hyperparams  # the optimizer's own eps
    opt = paramwise.build_optimizer(model, cfg)
    assert sorted(g["eps"] for g in opt.param_groups) == pytest.approx(sorted({1e-8, 1e-8 / 4}))


# ------------------------------------------------------------------ readouts
def test_plain_linear_readout_warns() -> None:
    model = MLP(64, readout=nn.Linear)
    base = {k: list(v) for k, v in mup.get_shapes(MLP(16, readout=nn.Linear)).items()}
    with pytest.warns(paramwise.ParamwiseWarning, match=r"'head\.weight' maps a width to a fixed size"):
        plan_values(model, "adam", dict(base_shapes=base))


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_named_readout_gets_mup_lr_without_output_multiplier(optimizer: str) -> None:
    model = MLP(64, readout=nn.Linear)
    base = {k: list(v) for k, v in mup.get_shapes(MLP(16, readout=nn.Linear)).items()}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        values = plan_values(model, optimizer, dict(base_shapes=base, readout=[r"^head\."]))
    assert values["head.weight"] == pytest.approx((LR / 4, WD * 4))  # TP5 table 3: output weights lr 1/fan_in
    reference = mup_values(with_infshape(model, MLP(16, readout=nn.Linear), do_assert=False), optimizer)
    assert values["head.bias"] == pytest.approx(reference["head.bias"])  # the bias is not a readout weight


def test_readout_pattern_that_names_no_readout_warns() -> None:
    model = with_infshape(MLP(64), MLP(16))
    with pytest.warns(paramwise.ParamwiseWarning, match="'fc2' names no readout weight"):
        plan_values(model, "adam", dict(readout=["fc2"]))


# ------------------------------------------------------------------ config problems
PATH = "optimizer -> paramwise_cfg -> width_scaling"


def check(width_scaling: Any, optimizer: str = "AdamW", **extra: Any) -> ConfigError:
    cfg = dict(type=optimizer, lr=LR, weight_decay=WD, **extra, paramwise_cfg=dict(width_scaling=width_scaling))
    with pytest.raises(ConfigError) as info:
        paramwise.plan_params(MLP(32), cfg)
    return info.value


@pytest.mark.parametrize(
    ("value", "where", "message"),
    [
        ("yes", "", "must be a dict of options"),
        (dict(base_shape="x.bsh"), " -> base_shape", "Did you mean 'base_shapes'"),
        (dict(optimizer="adagrad"), " -> optimizer", "must be 'auto', 'adam' or 'sgd'"),
        (dict(base_shapes="/no/such/file.bsh"), " -> base_shapes", "cannot be read"),
        (dict(base_shapes=3), " -> base_shapes", "must be the path of a base-shapes file"),
        (dict(base_shapes={"fc1.weight": [0, "x"]}), " -> base_shapes", "not lists of positive sizes"),
        (dict(base_model=dict(type="no_such_model")), " -> base_model", "cannot be built"),
        (dict(base_model="tiny_mlp", base_shapes={}), " -> base_model", "keep one"),
        (dict(delta_model=dict(type="tiny_mlp")), " -> delta_model", "needs base_model"),
        (dict(readout="head("), " -> readout", "not a valid regular expression"),
        (dict(scale_weight_decay="no"), " -> scale_weight_decay", "must be True or False"),
        (dict(scale_eps=True), " -> scale_eps", "SGD has no eps"),
    ],
)
def test_config_problems(value: Any, where: str, message: str) -> None:
    error = check(value, optimizer="SGD" if value == dict(scale_eps=True) else "AdamW")
    assert any(str(p).startswith(PATH + where + ":") and message in str(p) for p in error.problems), error


def test_unknown_optimizer_kind_asks() -> None:
    error = check(True, optimizer="Adadelta")
    assert "cannot tell whether Adadelta scales like Adam or like SGD" in str(error)
    plan_values_ok = paramwise.plan_params(with_infshape(MLP(64), MLP(16)), dict(
        type="Adadelta", lr=1.0, paramwise_cfg=dict(width_scaling=dict(optimizer="adam"))))
    assert plan_values_ok["fc3.weight"].hyperparams["lr"] == pytest.approx(0.25)


def test_scale_eps_with_a_custom_eps_is_refused() -> None:
    cfg = dict(type="AdamW", lr=LR, paramwise_cfg=dict(width_scaling=dict(scale_eps=True),
                                                       custom_keys={"head": dict(eps=1e-6)}))
    with pytest.raises(ConfigError, match="custom keys that set eps"):
        paramwise.plan_params(MLP(32), cfg)


def test_no_base_and_no_infshape() -> None:
    error = check(True)
    assert str(error.problems[0]).startswith(PATH + ": names no base shapes")
    assert "mup.set_base_shapes" in str(error)


def test_base_shapes_that_do_not_fit_the_model() -> None:
    base = {k: list(v) for k, v in mup.get_shapes(MLP(16)).items()}
    base["fc4.weight"] = base.pop("fc3.weight")
    del base["norm.bias"]
    error = check(dict(base_shapes=base))
    text = str(error)
    assert "has no shape for 'norm.bias', 'fc3.weight'." in text and "Did you mean 'fc4.weight'" in text
    assert "parameters the model lacks: 'fc4.weight'" in text


def test_module_prefix_of_a_ddp_checkpoint_is_dropped() -> None:
    base = {"module." + k: list(v) for k, v in mup.get_shapes(MLP(16)).items()}
    model = MLP(64)
    assert_same(plan_values(model, "adam", dict(base_shapes=base)),
                mup_values(with_infshape(model, MLP(16)), "adam"))


def test_three_width_dimensions_are_an_error_naming_the_parameter() -> None:
    class Cube(nn.Module):
        def __init__(self, w: int) -> None:
            super().__init__()
            self.cube = nn.Parameter(torch.zeros(w, w, w))

    base = {"cube": [8, 8, 8]}
    with pytest.raises(ConfigError, match="'cube' has 3 width dimensions"):
        paramwise.plan_params(Cube(16), dict(type="Adam", lr=LR, paramwise_cfg=dict(
            width_scaling=dict(base_shapes=base))))


# ------------------------------------------------------------------ scale_rules
def lm_plan(rules: Any, model: nn.Module | None = None, **opt: Any) -> paramwise.Plan:
    cfg = dict(type="AdamW", lr=LR, weight_decay=WD, **opt, paramwise_cfg=dict(scale_rules=rules))
    return paramwise.plan_params(model if model is not None else TinyLM(32, depth=3), cfg)


def test_an_expression_reproduces_mup_adam_for_hidden_matrices() -> None:
    model = with_infshape(TinyLM(64), TinyLM(16))
    plan = lm_plan([dict(match=r"^blocks\..*(qkv|proj|mlp\.\d)\.weight$", lr_mult="base_fan_in / fan_in",
                         decay_mult="fan_in / base_fan_in")], model)
    ours = {e.name: (e.hyperparams["lr"], e.hyperparams["weight_decay"]) for e in plan.entries}
    assert_same(ours, mup_values(model, "adamw"))
    factor = plan["blocks.0.qkv.weight"].factors["lr"][-1]
    assert str(factor) == "x 0.25 scale_rules[0] (base_fan_in / fan_in with base_fan_in=16, fan_in=64)"


def test_layer_rules_infer_num_layers_and_compose() -> None:
    plan = lm_plan([dict(match=r"^blocks\.(\d+)\.", lr_mult="0.5 ** (num_layers - 1 - layer)"),
                    dict(match=r"norm", decay_mult=0)])
    assert plan["blocks.2.qkv.weight"].hyperparams["lr"] == pytest.approx(LR)
    assert plan["blocks.0.qkv.weight"].hyperparams["lr"] == pytest.approx(LR * 0.25)
    assert plan["embed.weight"].hyperparams["lr"] == LR
    norm = plan["blocks.0.norm1.weight"]
    assert norm.hyperparams == pytest.approx({"lr": LR * 0.25, "weight_decay": 0.0})
    assert norm.rules["lr"] == "scale_rules[0]" and norm.rules["weight_decay"] == "scale_rules[1]"
    explicit = lm_plan([dict(match=r"^blocks\.(\d+)\.", lr_mult="0.5 ** (num_layers - 1 - layer)", num_layers=5)])
    assert explicit["blocks.2.qkv.weight"].hyperparams["lr"] == pytest.approx(LR * 0.25)
    for entry in plan.entries:
        for key, value in entry.hyperparams.items():
            assert fold(entry.factors[key]) == value


def test_scale_rules_with_base_shapes_in_the_dict_form(tmp_path: Any) -> None:
    path = str(tmp_path / "lm.bsh")
    mup.make_base_shapes(TinyLM(16), TinyLM(32), savefile=path)
    plan = lm_plan(dict(base_shapes=path, rules=[dict(match=r"mlp\.0\.weight", lr_mult="1 / width_mult")]),
                   TinyLM(64))
    assert plan["blocks.1.mlp.0.weight"].hyperparams["lr"] == pytest.approx(LR / 4)


def test_division_by_zero_names_the_parameter() -> None:
    with pytest.raises(ConfigError) as info:
        lm_plan([dict(match=r"^blocks\.(\d+)\.", lr_mult="1 / (layer - 1) ** 2")])
    problem = info.value.problems[0]
    assert problem.path == ("optimizer", "paramwise_cfg", "scale_rules", "0", "lr_mult")
    assert "divides by zero with layer=1 for parameter 'blocks.1.norm1.weight'" in problem.message


def test_a_negative_multiplier_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"gives -1 for parameter 'pos_embed'; a multiplier must be >= 0"):
        lm_plan([dict(lr_mult="ndim - 3")])


@pytest.mark.parametrize("text", ["__import__('os')", "().__class__", "10**10**10", "lambda: 1",
                                  "[x for x in (1,)]", "fan_in.real", "open('x')", "fan_inn"])
def test_hostile_expressions_in_a_config(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        lm_plan([dict(match="qkv", lr_mult=1), dict(match="proj", decay_mult=text)])
    assert [p.path for p in info.value.problems] == [
        ("optimizer", "paramwise_cfg", "scale_rules", "1", "decay_mult")]


@pytest.mark.parametrize(
    ("rules", "where", "message"),
    [
        ([dict(match="qkv", lr_mult="layer")], "0 -> match", "must capture the layer index"),
        ([dict(match="qkv(", lr_mult=1)], "0 -> match", "not a valid regular expression"),
        ([dict(match="qkv")], "0", "sets neither lr_mult nor decay_mult"),
        ([dict(match="qkv", lr_mul=2)], "0 -> lr_mul", "Did you mean 'lr_mult'"),
        ([dict(match="qkv", lr_mult=1, num_layers=0)], "0 -> num_layers", "whole number in [1, 1000000]"),
        ([], "", "non-empty list"),
        ("qkv", "", "non-empty list"),
        (dict(base_shapes={}, rules=[dict(lr_mult=1)]), "base_shapes", "no expression reads the base shape"),
    ],
)
def test_scale_rule_problems(rules: Any, where: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        lm_plan(rules)
    text = "optimizer -> paramwise_cfg -> scale_rules" + (" -> " + where if where else "")
    if isinstance(rules, dict) and where != "base_shapes":
        text += " -> rules"
    assert any(str(p).startswith(text + ":") and message in p.message for p in info.value.problems), info.value


def test_decay_mult_needs_a_base_weight_decay() -> None:
    cfg = dict(type="AdamW", lr=LR, paramwise_cfg=dict(scale_rules=[dict(decay_mult="2")]))
    with pytest.raises(ConfigError, match="needs a base weight_decay"):
        paramwise.plan_params(TinyLM(16), cfg)
