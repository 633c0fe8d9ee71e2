"""Building a config with routes: one child optimizer per route inside a HybridOptimizer."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
import torch
from torch import nn

from gpt_like import GPT, MUON_CONFIG, Conv, issue_config
from paramwise import HybridOptimizer, build_optim_wrapper, build_optimizer, plan_params
from paramwise.errors import ConfigError


def build(model: nn.Module, cfg: dict[str, Any]) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return build_optimizer(model, cfg)


def hidden(model: GPT) -> list[nn.Parameter]:
    return [p for n, p in model.named_parameters() if n.startswith("blocks") and p.ndim == 2]


def test_issue_config_builds_children_in_order() -> None:
    model = GPT()
    optimizer = build(model, issue_config())
    assert isinstance(optimizer, HybridOptimizer) and isinstance(optimizer, torch.optim.Optimizer)
    assert list(optimizer.children) == ["main", "Muon"]
    assert type(optimizer.children["main"]) is torch.optim.AdamW
    assert type(optimizer.children["Muon"]) is torch.optim.Muon
    groups = [g for child in optimizer.children.values() for g in child.param_groups]
    assert all(a is b for a, b in zip(optimizer.param_groups, groups)) and len(groups) == len(optimizer.param_groups)
    assert all("param_names" in g and "route" in g for g in optimizer.param_groups)
    muon = optimizer.children["Muon"].param_groups
    assert [id(p) for g in muon for p in g["params"]] == [id(p) for p in hidden(model)]
    assert {g["route"] for g in muon} == {"Muon"} and muon[0]["adjust_lr_fn"] == "match_rms_adamw"
    assert muon[0]["momentum"] == 0.95 and muon[0]["lr"] == 0.02
    assert {g["route"] for g in optimizer.children["main"].param_groups} == {"main"}


@pytest.mark.parametrize("tied", [False, True])
def test_five_steps_match_a_hand_built_pair(tied: bool) -> None:
    cfg = issue_config(bypass_duplicate=True)
    model, reference = GPT(tied=tied), GPT(tied=tied)
    optimizer = build(model, cfg)
    matrices = hidden(reference)
    ids = {id(p) for p in matrices}
    rest = [(n, p) for n, p in reference.named_parameters() if id(p) not in ids]
    no_decay = [p for n, p in rest if p.ndim == 1]
    decay = [p for n, p in rest if p.ndim != 1]
    pair = [torch.optim.Muon(matrices, lr=0.02, momentum=0.95, weight_decay=0.1, adjust_lr_fn="match_rms_adamw"),
            torch.optim.AdamW([dict(params=decay), dict(params=no_decay, weight_decay=0.0)], lr=3e-4,
                              betas=(0.9, 0.95), weight_decay=0.1)]
    idx = torch.randint(0, 64, (2, 8), generator=torch.Generator().manual_seed(1))
    for _ in range(5):
        for m, opts in ((model, [optimizer]), (reference, pair)):
            for o in opts:
                o.zero_grad()
            m(idx).square().mean().backward()
            for o in opts:
                o.step()
    for (name, a), (_, b) in zip(model.named_parameters(), reference.named_parameters()):
        assert torch.equal(a, b), name


def test_plan_params_and_wrapper_work_with_routes() -> None:
    model = GPT()
    plan = plan_params(model, issue_config())
    assert [g.hyperparams["route"] for g in plan.groups][-1] == "Muon"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wrapper = build_optim_wrapper(model, dict(optimizer=issue_config(), clip_grad=dict(max_norm=1.0)))
    assert isinstance(wrapper.optimizer, HybridOptimizer)
    model(torch.zeros(1, 4, dtype=torch.long)).sum().backward()
    wrapper.step()


def test_router_sends_new_groups_by_the_plan_rules() -> None:
    model = GPT()
    optimizer = build(model, issue_config())
    router = optimizer.router
    extra = nn.Linear(16, 32)
    assert router({"params": [extra.weight], "param_names": ["blocks.9.fc.weight"]}) == "Muon"
    assert router({"params": [extra.bias], "param_names": ["blocks.9.fc.bias"]}) == "main"
    assert router({"params": [model.tok.weight], "param_names": ["tok.weight"]}) == "main"  # as the plan put it
    assert router({"params": [model.blocks[0].qkv.weight], "param_names": ["blocks.0.qkv.weight"]}) == "Muon"
    assert router({"params": [extra.weight], "route": "main"}) == "main"
    with pytest.raises(ConfigError, match="holds parameters of 2 routes"):
        router({"params": [extra.weight, extra.bias], "param_names": ["x.weight", "x.bias"]})
    with pytest.raises(ConfigError, match=r"param_group -> route: 'muon' is not a route of this optimizer\. Did "
                                          r"you mean 'Muon'\?"):
        router({"params": [extra.weight], "route": "muon"})


def test_everything_routed_leaves_no_main_child() -> None:
    model = nn.Sequential(nn.Linear(8, 8, bias=False), nn.Linear(8, 8, bias=False))
    cfg = dict(type="AdamW", lr=1e-3, paramwise_cfg=dict(routes=[dict(params="matrices",
                                                                         optimizer=dict(MUON_CONFIG))]))
    assert list(build(model, cfg).children) == ["Muon"]


def test_route_optimizer_refusal_at_its_path() -> None:
    class Picky(torch.optim.SGD):
        def __init__(self, params: Any, lr: float = 0.1, mode: str = "a") -> None:
            if mode != "a":
                raise ValueError(f"unknown mode {mode!r}")
            super().__init__(params, lr=lr)

    cfg = dict(type="AdamW", lr=1e-3, paramwise_cfg=dict(routes=[dict(params="matrices",
                                                                         optimizer=dict(type=Picky, mode="b"))]))
    with pytest.raises(ConfigError) as info:
        build(GPT(), cfg)
    assert str(info.value.problems[0]).startswith(
        "optimizer -> paramwise_cfg -> routes -> [0] -> optimizer -> mode: Picky refused its arguments: ValueError: "
        "unknown mode 'b'")


def test_main_batched_muon_constraint_names_parameters() -> None:
    class BatchedMuon(torch.optim.SGD):
        def __init__(self, params: Any, lr: float = 0.1, flatten: bool = False) -> None:
            super().__init__(params, lr=lr)

    model = Conv()
    model.requires_grad_(False)
    model.stem.weight.requires_grad_(True)
    with pytest.raises(ConfigError, match=r"optimizer -> type: BatchedMuon only optimizes 2-D matrices, but 1 "
                                          r"parameters are not 2-D: 'stem.weight \(16, 3, 3, 3\)'"):
        build(model, dict(type=BatchedMuon))
    assert build(model, dict(type=BatchedMuon, flatten=True)).param_groups[0]["param_names"] == ["stem.weight"]


def test_custom_add_params_refuses_routes() -> None:
    from paramwise.build import OPTIMIZER_BUILDERS, DefaultOptimizerConstructor

    @OPTIMIZER_BUILDERS.register_module(name="RoutesOwnAddParams", force=True)
    class Own(DefaultOptimizerConstructor):
        def add_params(self, params: list[dict[str, Any]], module: nn.Module, prefix: str = "",
                       is_dcn_module: Any = None) -> None:
            params.append({"params": list(module.parameters())})

    with pytest.raises(ConfigError, match=r"optimizer -> paramwise_cfg -> routes: Own plans with its own "
                                          r"add_params, which does not route parameters"):
        plan_params(GPT(), dict(issue_config(), constructor="RoutesOwnAddParams"))
