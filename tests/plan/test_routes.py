"""Routes in the plan: which optimizer each parameter goes to, why, and the errors at their config paths."""

from __future__ import annotations

import copy
import warnings
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from gpt_like import GPT, MUON_CONFIG, Conv, TiedFirst, Unembed, ViTHead, issue_config
from paramwise import plan_params
from paramwise.errors import ConfigError
from paramwise.plan.routes import ROUTE_SELECTORS, shape_refusal


class BatchedMuon(torch.optim.Optimizer):
    """Stands in for paramwise's BatchedMuon (the muon helper's): its arguments, with flatten."""

    def __init__(self, params: Any, lr: float = 0.02, momentum: float = 0.95, weight_decay: float = 0.1,
                 flatten: bool = False) -> None:
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay, flatten=flatten))


def plan(model: nn.Module, cfg: dict[str, Any]) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # shared-parameter warnings of the tied models
        return plan_params(model, cfg)


def routes_of(p: Any) -> dict[str, tuple[str, str]]:
    return {e.name: (e.route, e.route_reason) for e in p.entries}


def route_cfg(*routes: dict[str, Any], **paramwise: Any) -> dict[str, Any]:
    return dict(type="AdamW", lr=1e-3, weight_decay=0.1, paramwise_cfg=dict(routes=list(routes), **paramwise))


def problems(cfg: dict[str, Any], model: nn.Module | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        plan(model if model is not None else GPT(), cfg)
    return [str(p) for p in info.value.problems]


R0 = "optimizer -> paramwise_cfg -> routes -> [0]"

# ----------------------------------------------------------------------------- every parameter's route and reason


def test_gpt_untied_every_route_and_reason() -> None:
    p = plan(GPT(), issue_config())
    expected: dict[str, tuple[str, str]] = {"tok.weight": ("main", "embedding (nn.Embedding)"),
                                            "norm.weight": ("main", "not a matrix (1-D)"),
                                            "lm_head.weight": ("main", "output head ('lm_head')")}
    for i in range(4):
        for linear in ("qkv", "proj", "fc", "out"):
            expected[f"blocks.{i}.{linear}.weight"] = ("Muon", "hidden matrix")
            expected[f"blocks.{i}.{linear}.bias"] = ("main", "not a matrix (1-D)")
        for norm in ("norm1", "norm2"):
            expected[f"blocks.{i}.{norm}.weight"] = ("main", "not a matrix (1-D)")
    assert routes_of(p) == expected


@pytest.mark.parametrize("model, name, reason", [
    (GPT(tied=True), "tok.weight", "embedding (nn.Embedding)"),
    (TiedFirst(), "decoder.weight", "tied to an embedding ('tok.weight')"),
])
def test_tied_weights_stay_with_main(model: nn.Module, name: str, reason: str) -> None:
    p = plan(model, issue_config(bypass_duplicate=True))
    assert routes_of(p)[name] == ("main", reason)
    assert not any(e.name.startswith("lm_head") for e in p.entries)  # one tensor, under its first name


def test_get_input_and_output_embeddings() -> None:
    assert routes_of(plan(Unembed(), issue_config())) == {
        "wte.weight": ("main", "input embeddings (get_input_embeddings())"),
        "mix.weight": ("Muon", "hidden matrix"),
        "mix.bias": ("main", "not a matrix (1-D)"),
        "unembed.weight": ("main", "output embeddings (get_output_embeddings())"),
    }


def test_heads_named_head_and_classifier() -> None:
    assert routes_of(plan(ViTHead(), issue_config())) == {
        "patch.weight": ("Muon", "hidden matrix"), "patch.bias": ("main", "not a matrix (1-D)"),
        "norm.weight": ("main", "not a matrix (1-D)"), "norm.bias": ("main", "not a matrix (1-D)"),
        "head.weight": ("main", "output head ('head')"), "head.bias": ("main", "not a matrix (1-D)"),
        "classifier.0.weight": ("Muon", "hidden matrix"), "classifier.0.bias": ("main", "not a matrix (1-D)"),
        "classifier.2.weight": ("main", "output head ('classifier')"),
        "classifier.2.bias": ("main", "not a matrix (1-D)"),
    }


def test_conv_net_without_flatten_keeps_kernels_with_main() -> None:
    # torch's Muon takes no conv kernel: a route left empty is an error, not a silently all-AdamW run
    assert problems(issue_config(), Conv()) == [
        f"{R0} -> params: takes no parameter of the model (selector 'hidden_matrices'). It left them to main: "
        "4 parameters: not a matrix (1-D); 3 parameters: conv kernel: Muon does not flatten it (BatchedMuon with "
        "flatten=True does); 1 parameter: extreme aspect ratio (256:1 > 128:1); 1 parameter: output head "
        "('classifier'). Fix the selector, or set allow_empty=True on this route if it may be empty"]
    cfg = issue_config()
    cfg["paramwise_cfg"]["routes"][0]["allow_empty"] = True  # type: ignore[index]
    got = routes_of(plan(Conv(), cfg))
    assert got["stem.weight"] == ("main", "conv kernel (16x3x3x3): Muon does not flatten it (BatchedMuon with "
                                          "flatten=True does)")
    assert got["wide.weight"] == ("main", "extreme aspect ratio (256:1 > 128:1)")
    assert got["classifier.weight"] == ("main", "output head ('classifier')")
    assert {route for route, _ in got.values()} == {"main"}


def test_conv_net_with_flatten() -> None:
    cfg = route_cfg(dict(params="hidden_matrices", optimizer=dict(type=BatchedMuon, flatten=True)))
    assert routes_of(plan(Conv(), cfg)) == {
        "stem.weight": ("BatchedMuon", "hidden matrix (conv kernel flattened to 16x27)"),
        "stem.bias": ("main", "not a matrix (1-D)"),
        "bn.weight": ("main", "not a matrix (1-D)"), "bn.bias": ("main", "not a matrix (1-D)"),
        "dw.weight": ("main", "unit dimension (16x1x3x3)"),
        "narrow.weight": ("main", "very small side (2 < 4)"),
        "wide.weight": ("main", "extreme aspect ratio (256:1 > 128:1)"),
        "classifier.weight": ("main", "output head ('classifier')"),
        "classifier.bias": ("main", "not a matrix (1-D)"),
    }


def _timm_is_suitable_for_muon(shape: tuple[int, ...]) -> bool:
    """timm's ``_is_suitable_for_muon`` (timm/optim/muon.py) with its defaults, rewritten from its source."""
    if len(shape) < 2 or sum(1 for d in shape if d > 1) < 2 or shape[0] == 1 or shape[1] == 1:
        return False
    dims = (shape[0], int(torch.tensor(shape[1:]).prod())) if len(shape) >= 3 else shape
    return min(dims) >= 4 and max(dims) / min(dims) <= 128


@given(st.lists(st.integers(1, 600), min_size=2, max_size=4))
@settings(max_examples=200, deadline=None)
def test_shape_refusal_is_timms_rule(shape: list[int]) -> None:
    assert (shape_refusal(tuple(shape)) is None) == _timm_is_suitable_for_muon(tuple(shape))


# ----------------------------------------------------------------------------- selectors


def test_builtin_selectors_and_first_route_wins() -> None:
    cfg = route_cfg(
        dict(params="embeddings", optimizer=dict(type="SGD", lr=0.1), name="emb"),
        dict(params="output_head", optimizer=dict(type="SGD", lr=0.2), name="head"),
        dict(params="norms", optimizer=dict(type="SGD", lr=0.3), name="norm"),
        dict(params="biases", optimizer=dict(type="SGD", lr=0.4), name="bias"),
        dict(params="matrices", optimizer=dict(type="SGD", lr=0.5), name="mat"),
    )
    got = {name: route for name, (route, _) in routes_of(plan(GPT(), cfg)).items()}
    assert got["tok.weight"] == "emb" and got["lm_head.weight"] == "head"
    assert got["norm.weight"] == got["blocks.0.norm1.weight"] == "norm"
    assert got["blocks.1.qkv.bias"] == "bias" and got["blocks.1.qkv.weight"] == "mat"
    assert "main" not in got.values()


def test_patterns_match_as_custom_keys() -> None:
    cfg = route_cfg(dict(params=["attn", "qkv.weight", "proj.weight"], optimizer=dict(MUON_CONFIG)))
    got = routes_of(plan(GPT(), cfg))
    assert got["blocks.2.qkv.weight"] == ("Muon", "matches 'qkv.weight'")
    assert got["blocks.2.proj.weight"] == ("Muon", "matches 'proj.weight'")
    assert got["blocks.2.fc.weight"][0] == "main"


def test_registered_predicate() -> None:
    @ROUTE_SELECTORS.register_module(name="wide_out", force=True)
    def wide_out(name: str, param: torch.Tensor, module: nn.Module | None) -> bool:
        return isinstance(module, nn.Linear) and param.ndim == 2 and param.shape[0] > param.shape[1]

    got = routes_of(plan(GPT(), route_cfg(dict(params="wide_out", optimizer=dict(MUON_CONFIG)))))
    assert got["blocks.0.fc.weight"] == ("Muon", "selector 'wide_out'")
    assert got["blocks.0.out.weight"][0] == got["blocks.0.proj.weight"][0] == "main"
    assert got["lm_head.weight"] == ("Muon", "selector 'wide_out'")  # the user's predicate decides


def test_predicate_that_raises_is_a_config_error() -> None:
    @ROUTE_SELECTORS.register_module(name="broken_selector", force=True)
    def broken(name: str, param: torch.Tensor, module: nn.Module | None) -> bool:
        raise RuntimeError("boom")

    found = problems(route_cfg(dict(params="broken_selector", optimizer=dict(type="SGD", lr=0.1))))
    assert found[0].startswith("optimizer -> paramwise_cfg -> routes -> [0] -> params: the selector "
                               "'broken_selector' raised RuntimeError: boom")


# ----------------------------------------------------------------------------- rules inside each route


def test_rules_apply_inside_each_route_on_its_base() -> None:
    cfg = issue_config(custom_keys={"blocks.0": dict(lr_mult=0.5)})
    p = plan(GPT(), cfg)
    muon, adamw = p["blocks.0.qkv.weight"], p["blocks.0.qkv.bias"]
    assert muon.hyperparams["lr"] == 0.02 * 0.5 and muon.hyperparams["weight_decay"] == 0.1
    assert " ".join(map(str, muon.factors["lr"])) == "0.02 x 0.5 custom_keys['blocks.0']"
    assert adamw.hyperparams["lr"] == 3e-4 * 0.5
    assert p["blocks.1.qkv.bias"].hyperparams["weight_decay"] == 0.0  # bias_decay_mult on AdamW's base
    assert p["blocks.1.fc.weight"].hyperparams == {"lr": 0.02, "weight_decay": 0.1, "route": "Muon"}


def test_groups_never_mix_routes_and_come_main_first() -> None:
    p = plan(GPT(), issue_config())
    routes = [{p.entries[i].route for i in g.members} for g in p.groups]
    assert all(len(r) == 1 for r in routes)
    assert [g.hyperparams["route"] for g in p.groups] == [r.pop() for r in routes]
    order = [g.hyperparams["route"] for g in p.groups]
    assert order == sorted(order, key=lambda r: r != "main") and order[-1] == "Muon"
    assert [g.index for g in p.groups] == list(range(len(p.groups)))


def test_no_routes_is_unchanged() -> None:
    p = plan(GPT(), dict(type="AdamW", lr=1e-3, weight_decay=0.1))
    assert all("route" not in e.hyperparams and e.route == "main" and e.route_reason == "" for e in p.entries)
    assert "route" not in p.to_records()[0] and not p.routes


def test_config_is_not_mutated() -> None:
    cfg = issue_config(custom_keys={"blocks": dict(lr_mult=0.5)})
    before = copy.deepcopy(cfg)
    plan(GPT(), cfg)
    assert cfg == before


def test_route_names_and_records() -> None:
    cfg = route_cfg(dict(params=["qkv.weight"], optimizer=dict(MUON_CONFIG), name="attn"),
                    dict(params="hidden_matrices", optimizer=dict(MUON_CONFIG)))
    p = plan(GPT(), cfg)
    assert p.route_names() == {"main": "AdamW", "attn": "Muon", "Muon": "Muon"}
    record = next(r for r in p.to_records() if r["name"] == "blocks.0.qkv.weight")
    assert (record["route"], record["optimizer"], record["route_reason"]) == ("attn", "Muon", "matches 'qkv.weight'")


# ----------------------------------------------------------------------------- every parameter in one route, one group


@st.composite
def models(draw: st.DrawFn) -> nn.Module:
    layers: list[nn.Module] = []
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["linear", "embedding", "norm", "conv", "frozen"]))
        a, b = draw(st.integers(1, 40)), draw(st.integers(1, 40))
        if kind == "linear" or kind == "frozen":
            layer: nn.Module = nn.Linear(a, b, bias=draw(st.booleans()))
            layer.requires_grad_(kind != "frozen")
        elif kind == "embedding":
            layer = nn.Embedding(a, b)
        elif kind == "norm":
            layer = nn.LayerNorm(a)
        else:
            layer = nn.Conv2d(a, b, draw(st.integers(1, 3)))
        layers.append(layer)
    names = draw(st.lists(st.sampled_from(["head", "output", "blocks", "fc", "x"]), min_size=len(layers),
                          max_size=len(layers)))
    return nn.Sequential(*[nn.ModuleDict({n: layer}) for n, layer in zip(names, layers)])


SELECTORS = st.sampled_from(["hidden_matrices", "matrices", "embeddings", "output_head", "norms", "biases",
                             ("0",), ("weight", "1")])


@given(models(), st.lists(SELECTORS, min_size=1, max_size=3))
@settings(max_examples=60, deadline=None)
def test_every_trainable_parameter_in_exactly_one_route_and_group(model: nn.Module, selectors: list[Any]) -> None:
    routes = [dict(params=list(s) if isinstance(s, tuple) else s, optimizer=dict(type="SGD", lr=0.1),
                   name=f"r{i}", allow_empty=True) for i, s in enumerate(selectors)]
    p = plan(model, route_cfg(*routes))
    trainable = {id(q) for q in model.parameters() if q.requires_grad}
    assert sorted(id(e.param) for e in p.entries) == sorted(trainable)
    members = sorted(i for g in p.groups for i in g.members)
    assert members == list(range(len(p.entries)))
    for group in p.groups:
        assert {p.entries[i].route for i in group.members} == {group.hyperparams["route"]}
    assert {e.route for e in p.entries} <= {"main", *(r["name"] for r in routes)}


# ----------------------------------------------------------------------------- errors at their paths



def test_unknown_selector_suggests() -> None:
    found = problems(route_cfg(dict(params="hidden_matrix", optimizer=dict(MUON_CONFIG))))
    assert len(found) == 1 and found[0].startswith(f"{R0} -> params: 'hidden_matrix' is not a selector. Did you "
                                                   "mean 'hidden_matrices'?")
    assert "params=['hidden_matrix']" in found[0]


def test_route_optimizer_checked_like_the_main_one() -> None:
    found = problems(route_cfg(dict(params="hidden_matrices",
                                    optimizer=dict(type="Muon", lr=-1, adjust_lr_fn="match_rms", betas=(0.9, 0.9)))))
    assert any(f.startswith(f"{R0} -> optimizer -> lr: ") for f in found)
    assert any(f.startswith(f"{R0} -> optimizer -> adjust_lr_fn: ") and "match_rms_adamw" in f for f in found)
    assert any(f.startswith(f"{R0} -> optimizer -> betas: Muon does not take 'betas'") for f in found)
    assert problems(route_cfg(dict(params="matrices", optimizer=dict(type="Muonn"))))[0].startswith(
        f"{R0} -> optimizer -> type: ")


@pytest.mark.parametrize("selector, shown", [
    (["bias"], "blocks.0.qkv.bias 48 (is not 2-D)"),
    ("norms", "blocks.0.norm1.weight 16 (is not 2-D)"),
])
def test_muon_route_refuses_what_muon_cannot_take(selector: Any, shown: str) -> None:
    found = problems(route_cfg(dict(params=selector, optimizer=dict(MUON_CONFIG))))
    assert len(found) == 1 and found[0].startswith(f"{R0} -> params: selects ") and shown in found[0]


def test_batched_muon_needs_flatten_for_conv_kernels() -> None:
    found = problems(route_cfg(dict(params=["stem.weight"], optimizer=dict(type=BatchedMuon))), Conv())
    assert found == [f"{R0} -> params: selects 1 parameter that BatchedMuon cannot take: 'stem.weight 16x3x3x3 "
                     "(is 4-D and flatten is not set)'; narrow the selector (e.g. params='hidden_matrices'), or use "
                     "BatchedMuon with flatten=True for conv kernels"]
    ok = plan(Conv(), route_cfg(dict(params=["stem.weight"], optimizer=dict(type=BatchedMuon, flatten=True))))
    assert ok["stem.weight"].route == "BatchedMuon"


def test_empty_route_is_an_error_unless_allowed() -> None:
    found = problems(route_cfg(dict(params=["nothing_here"], optimizer=dict(MUON_CONFIG))))
    assert found == [f"{R0} -> params: takes no parameter of the model (selector ('nothing_here',)). Fix the "
                     "selector, or set allow_empty=True on this route if it may be empty"]
    p = plan(GPT(), route_cfg(dict(params=["nothing_here"], optimizer=dict(MUON_CONFIG), allow_empty=True)))
    assert {e.route for e in p.entries} == {"main"}


def test_route_keys_names_and_shape() -> None:
    found = problems(route_cfg(
        dict(param="matrices", optimizer=dict(MUON_CONFIG)),
        dict(params="matrices", optimizer=dict(MUON_CONFIG)),
        dict(params="biases", optimizer=dict(MUON_CONFIG), name="main"),
        dict(params="norms", optimizer=dict(type="SGD", lr=0.1), allow_empty="yes"),
        dict(params="embeddings"),
        "Muon",
    ))
    assert f"{R0} -> param: is not a route option. Did you mean 'params'?" in found[0]
    assert any(f.startswith(f"{R0} -> params: is missing") for f in found)
    assert any(f.startswith("optimizer -> paramwise_cfg -> routes -> [1]: the route name 'Muon' is taken by "
                            "routes[0]") for f in found)
    assert any(f.startswith("optimizer -> paramwise_cfg -> routes -> [2] -> name: 'main' is the main") for f in found)
    assert any(f.startswith("optimizer -> paramwise_cfg -> routes -> [3] -> allow_empty: ") for f in found)
    assert any(f.startswith("optimizer -> paramwise_cfg -> routes -> [4] -> optimizer: is missing") for f in found)
    assert any(f.startswith("optimizer -> paramwise_cfg -> routes -> [5]: must be a dict") for f in found)
    not_list = dict(type="AdamW", lr=1e-3, paramwise_cfg=dict(routes=dict(params="matrices")))
    assert problems(not_list)[0].startswith("optimizer -> paramwise_cfg -> routes: must be a list of routes")


def test_custom_key_option_the_route_optimizer_lacks() -> None:
    # betas is AdamW's: fine on a key that matches only AdamW parameters, an error where it matches Muon's
    fine = plan(GPT(), issue_config(custom_keys={"bias": dict(betas=(0.8, 0.9))}))
    assert fine["blocks.0.qkv.bias"].hyperparams["betas"] == (0.8, 0.9)
    found = problems(issue_config(custom_keys={"qkv": dict(betas=(0.8, 0.9))}))
    assert found == ["optimizer -> paramwise_cfg -> custom_keys -> qkv -> betas: Muon does not take 'betas'. "
                     + found[0].split("Muon does not take 'betas'. ", 1)[1]]
    assert found[0].endswith("(it matches parameters of the route 'Muon')")


def test_audit_says_each_route_keeps_its_own_values() -> None:
    from paramwise.plan import audit_plan

    model = GPT()
    notes = [f.message for f in audit_plan(plan(model, issue_config()), model) if f.kind == "undecided"]
    assert notes == ["2 parameters no rule decided: they keep AdamW's values (lr=0.0003, weight_decay=0.1)",
                     "16 parameters no rule decided: they keep Muon's values (lr=0.02, weight_decay=0.1)"]


def test_param_stage_rules_keep_the_route() -> None:
    p = plan(GPT(), issue_config(scale_rules=[dict(match=r"\.fc\.", lr_mult="2")]))
    muon, adamw = p["blocks.0.fc.weight"], p["blocks.0.fc.bias"]
    assert (muon.route, muon.route_reason, muon.hyperparams["route"]) == ("Muon", "hidden matrix", "Muon")
    assert muon.hyperparams["lr"] == 0.02 * 2 and adamw.hyperparams["lr"] == 3e-4 * 2
    assert adamw.route == adamw.hyperparams["route"] == "main"
