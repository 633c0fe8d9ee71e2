"""HybridOptimizer (issue 18): one torch optimizer over a Muon child and an AdamW child, built by hand here.

Every check compares the composite with the same two optimizers stepped by hand (or with torch's own
behaviour for one optimizer): the composite must add nothing and lose nothing.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import paramwise
from gpt_like import GPT as GPTLike
from paramwise.build import HybridOptimizer
from paramwise.errors import ConfigError, UsageTypeError
from paramwise.wrapper.optim_wrapper import wrap_optimizer

MUON = dict(lr=0.02, momentum=0.95, weight_decay=0.1, adjust_lr_fn="match_rms_adamw")
ADAMW = dict(lr=3e-3, betas=(0.9, 0.95), weight_decay=0.1)


def GPT(tied: bool = False) -> GPTLike:
    """The shared GPT-like model, small: 2 blocks, 50 tokens."""
    return GPTLike(vocab=50, layers=2, tied=tied)


def is_hidden(name: str, p: torch.Tensor) -> bool:
    return p.ndim == 2 and name.startswith("blocks.")


def children(model: nn.Module, hidden: Any = is_hidden) -> dict[str, torch.optim.Optimizer]:
    """The hand-built pair: AdamW ("main", decay off for 1-D) and torch's Muon over the hidden matrices."""
    named = list(model.named_parameters())
    muon = [(n, p) for n, p in named if hidden(n, p)]
    rest = [(n, p) for n, p in named if not hidden(n, p)]
    groups: list[dict[str, Any]] = []
    for decay, members in ((0.1, [m for m in rest if m[1].ndim >= 2]), (0.0, [m for m in rest if m[1].ndim < 2])):
        if members:
            groups.append(dict(params=[p for _, p in members], param_names=[n for n, _ in members],
                               weight_decay=decay, route="main"))
    out: dict[str, torch.optim.Optimizer] = {"main": torch.optim.AdamW(groups, **ADAMW)}
    if muon:
        out["Muon"] = torch.optim.Muon([dict(params=[p for _, p in muon], param_names=[n for n, _ in muon],
                                             route="Muon")], **MUON)
    return out


def batch(seed: int, vocab: int = 50) -> torch.Tensor:
    return torch.randint(0, vocab, (4, 12), generator=torch.Generator().manual_seed(seed))


def loss_of(model: nn.Module, seed: int) -> torch.Tensor:
    idx = batch(seed)
    return F.cross_entropy(model(idx[:, :-1]).flatten(0, 1), idx[:, 1:].flatten())


def train(model: nn.Module, step: Any, zero: Any, steps: range) -> None:
    for i in steps:
        loss_of(model, i).backward()
        step()
        zero()


def params_of(model: nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def assert_same_params(a: nn.Module, b: nn.Module) -> None:
    pa, pb = params_of(a), params_of(b)
    assert pa.keys() == pb.keys()
    for name in pa:
        assert torch.equal(pa[name], pb[name]), name


def twin_models(tied: bool = False) -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    model = GPT(tied=tied)
    return model, copy.deepcopy(model)


# --------------------------------------------------------------------------- the object


def test_it_is_a_torch_optimizer_whose_groups_are_the_childrens_dicts() -> None:
    kids = children(GPT())
    opt = HybridOptimizer(kids)
    assert isinstance(opt, torch.optim.Optimizer)
    assert opt.children == kids and list(opt.children) == ["main", "Muon"]
    expected = [*kids["main"].param_groups, *kids["Muon"].param_groups]
    assert len(opt.param_groups) == len(expected)
    assert all(a is b for a, b in zip(opt.param_groups, expected))
    opt.param_groups[-1]["lr"] = 0.5  # a scheduler writes here: the child's own group changes
    assert kids["Muon"].param_groups[0]["lr"] == 0.5
    assert [g["route"] for g in opt.param_groups] == ["main", "main", "Muon"]
    assert opt.defaults == kids["main"].defaults and opt.defaults is not kids["main"].defaults


def test_groups_without_a_route_get_their_childs_name() -> None:
    model = GPT()
    adamw = torch.optim.AdamW([p for n, p in model.named_parameters() if not is_hidden(n, p)])
    muon = torch.optim.Muon([p for n, p in model.named_parameters() if is_hidden(n, p)])
    opt = HybridOptimizer({"main": adamw, "Muon": muon})
    assert [g["route"] for g in opt.param_groups] == ["main", "Muon"]


def test_bad_children_are_config_errors_naming_them() -> None:
    model = GPT()
    kids = children(model)
    with pytest.raises(UsageTypeError, match="dict of route name"):
        HybridOptimizer({})
    with pytest.raises(ConfigError, match=r"children -> Muon: must be a torch.optim.Optimizer"):
        HybridOptimizer({"main": kids["main"], "Muon": object()})  # type: ignore[dict-item]
    with pytest.raises(ConfigError, match="same optimizer object as 'main'"):
        HybridOptimizer({"main": kids["main"], "again": kids["main"]})
    with pytest.raises(ConfigError, match="main optimizer's route comes first"):
        HybridOptimizer({"Muon": kids["Muon"], "main": kids["main"]})
    both = torch.optim.SGD([model.lm_head.weight], lr=0.1)
    with pytest.raises(ConfigError, match="'lm_head.weight'.*'main' optimizes too|optimizes a parameter"):
        HybridOptimizer({"main": kids["main"], "extra": both})
    kids["Muon"].param_groups[0]["route"] = "AdamW"
    with pytest.raises(ConfigError, match="belongs to the child 'Muon'"):
        HybridOptimizer(kids)


def test_state_reads_through_to_the_children() -> None:
    model = GPT()
    opt = HybridOptimizer(children(model))
    assert len(opt.state) == 0 and model.tok.weight not in opt.state
    train(model, opt.step, opt.zero_grad, range(1))
    kids = opt.children
    assert len(opt.state) == len(list(model.parameters()))
    assert opt.state[model.tok.weight] is kids["main"].state[model.tok.weight]
    assert opt.state[model.blocks[0].qkv.weight] is kids["Muon"].state[model.blocks[0].qkv.weight]
    assert set(opt.state) == set(kids["main"].state) | set(kids["Muon"].state)
    with pytest.raises(KeyError):
        opt.state[torch.zeros(1)]


# --------------------------------------------------------------------------- stepping


@pytest.mark.parametrize("tied", [False, True])
def test_five_steps_equal_the_hand_built_pair_stepped_by_hand(tied: bool) -> None:
    a, b = twin_models(tied)
    opt = HybridOptimizer(children(a))
    pair = children(b)
    train(a, opt.step, opt.zero_grad, range(5))
    train(b, lambda: [o.step() for o in pair.values()], lambda: [o.zero_grad() for o in pair.values()], range(5))
    assert_same_params(a, b)


def test_a_closure_is_evaluated_once_and_its_loss_returned() -> None:
    a, b = twin_models()
    opt = HybridOptimizer(children(a))
    pair = children(b)
    calls = []

    def closure() -> torch.Tensor:
        calls.append(1)
        opt.zero_grad()
        loss = loss_of(a, 0)
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert len(calls) == 1 and torch.equal(loss, loss_of(b, 0))
    train(b, lambda: [o.step() for o in pair.values()], lambda: None, range(1))
    assert_same_params(a, b)


@pytest.mark.parametrize("set_to_none", [True, False])
def test_zero_grad_reaches_every_child(set_to_none: bool) -> None:
    """KempnerForge #183: a composite that forgot one child kept its gradients, which then accumulated."""
    model = GPT()
    opt = HybridOptimizer(children(model))
    loss_of(model, 0).backward()
    opt.zero_grad(set_to_none=set_to_none)
    for name, p in model.named_parameters():
        assert (p.grad is None) if set_to_none else (p.grad is not None and not p.grad.any()), name


def test_add_param_group_is_routed() -> None:
    model = GPT()
    extra_matrix, extra_bias = nn.Parameter(torch.randn(8, 8)), nn.Parameter(torch.zeros(8))
    router_calls = []

    def router(group: dict[str, Any]) -> str:
        router_calls.append(group)
        return "Muon" if all(p.ndim == 2 for p in group["params"]) else "main"

    opt = HybridOptimizer(children(model), router=router)
    opt.add_param_group(dict(params=[extra_matrix], param_names=["extra.w"]))
    opt.add_param_group(dict(params=[extra_bias], param_names=["extra.b"], lr=1e-4))
    assert opt.children["Muon"].param_groups[-1]["params"] == [extra_matrix]
    assert opt.children["main"].param_groups[-1]["params"] == [extra_bias]
    assert [g["route"] for g in opt.param_groups] == ["main"] * 3 + ["Muon"] * 2  # in child order
    assert opt.children["main"].param_groups[-1]["lr"] == 1e-4
    assert opt.children["Muon"].param_groups[-1]["momentum"] == MUON["momentum"]  # the child's defaults
    assert len(router_calls) == 2
    with pytest.raises(ConfigError, match="the group says 'main' but the router sends it to 'Muon'"):
        opt.add_param_group(dict(params=[nn.Parameter(torch.ones(2, 2))], param_names=["x"], route="main"))
    with pytest.raises(ConfigError, match="already optimizes"):
        opt.add_param_group(dict(params=[model.tok.weight], param_names=["tok.weight"]))


def test_add_param_group_without_a_router_needs_a_known_route() -> None:
    opt = HybridOptimizer(children(GPT()))
    with pytest.raises(ConfigError, match=r"add_param_group -> route: the group's 'route' is None.*main, Muon"):
        opt.add_param_group(dict(params=[nn.Parameter(torch.ones(2, 2))], param_names=["x"]))
    with pytest.raises(ConfigError, match="Did you mean 'Muon'"):
        opt.add_param_group(dict(params=[nn.Parameter(torch.ones(2, 2))], param_names=["x"], route="muon"))
    extra = nn.Parameter(torch.ones(2, 2))
    opt.add_param_group(dict(params=[extra], param_names=["x"], route="Muon"))
    assert opt.param_groups[-1]["params"] == [extra]


# --------------------------------------------------------------------------- hooks


def test_the_composites_step_hooks_run_once_per_step_and_childrens_hooks_per_child() -> None:
    model = GPT()
    opt = HybridOptimizer(children(model))
    seen: list[str] = []
    opt.register_step_pre_hook(lambda o, args, kwargs: seen.append(f"pre {type(o).__name__}"))
    opt.register_step_post_hook(lambda o, args, kwargs: seen.append(f"post {type(o).__name__}"))
    opt.children["Muon"].register_step_post_hook(lambda o, args, kwargs: seen.append("post Muon"))
    train(model, opt.step, opt.zero_grad, range(2))
    assert seen == ["pre HybridOptimizer", "post Muon", "post HybridOptimizer"] * 2


# --------------------------------------------------------------------------- what drives an optimizer


def test_torch_cosine_annealing_changes_every_childs_lr_and_counts_steps() -> None:
    a, b = twin_models()
    opt = HybridOptimizer(children(a))
    pair = children(b)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=4)
    hand = [torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=4) for o in pair.values()]
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch warns when it thinks the optimizer's step was not called
        for i in range(3):
            train(a, opt.step, opt.zero_grad, range(i, i + 1))
            sched.step()
            train(b, lambda: [o.step() for o in pair.values()], lambda: [o.zero_grad() for o in pair.values()],
                  range(i, i + 1))
            for s in hand:
                s.step()
    assert getattr(opt, "_opt_called", False)
    expected = [g["lr"] for o in pair.values() for g in o.param_groups]
    assert [g["lr"] for g in opt.param_groups] == expected
    factor = (1 + math.cos(math.pi * 3 / 4)) / 2
    assert opt.children["Muon"].param_groups[0]["lr"] == pytest.approx(MUON["lr"] * factor)
    assert opt.children["main"].param_groups[0]["lr"] == pytest.approx(ADAMW["lr"] * factor)
    assert_same_params(a, b)


def test_build_scheduler_keeps_each_groups_ratio_to_its_route() -> None:
    model = GPT()
    opt = HybridOptimizer(children(model))
    opt.children["main"].param_groups[1]["lr"] = ADAMW["lr"] * 0.5  # a multiplier inside the main route
    bases = [g["lr"] for g in opt.param_groups]
    schedule = paramwise.build_scheduler(opt, [dict(type="LinearLR", start_factor=0.1, by_epoch=False, begin=0,
                                                    end=10),
                                               dict(type="CosineAnnealingLR", by_epoch=False, begin=10, end=50)])
    for _ in range(20):
        opt.step()
        schedule.step()
    ratios = [g["lr"] / base for g, base in zip(opt.param_groups, bases)]
    assert ratios[0] < 1 and all(r == pytest.approx(ratios[0], rel=1e-12) for r in ratios)


def test_the_wrapper_clips_over_all_children_and_accumulates() -> None:
    a, b = twin_models()
    opt = HybridOptimizer(children(a))
    pair = children(b)
    wrapper = wrap_optimizer(opt, dict(clip_grad=dict(max_norm=0.5), accumulative_counts=2))
    norms = []
    for i in range(4):
        with wrapper.optim_context(a):
            wrapper.update_params(loss_of(a, i))
        (loss_of(b, i) / 2).backward()
        if i % 2:
            norms.append(float(torch.nn.utils.clip_grad_norm_(list(b.parameters()), 0.5)))
            for o in pair.values():
                o.step()
                o.zero_grad()
        else:
            assert all(p.grad is not None for p in a.parameters())  # accumulating: no step, no zero_grad
            assert_same_params(a, b)
    assert wrapper.last_grad_norm == pytest.approx(norms[-1], rel=1e-6)
    for (name, pa), pb in zip(a.named_parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb, rtol=1e-6, atol=1e-7, msg=name)


def test_the_amp_wrapper_autocasts_bf16_and_steps_every_child() -> None:
    model = GPT()
    before = params_of(model)
    opt = HybridOptimizer(children(model))
    wrapper = wrap_optimizer(opt, dict(type="AmpOptimWrapper", dtype="bfloat16"))
    with wrapper.optim_context(model):
        logits = model(batch(0)[:, :-1])
        assert logits.dtype == torch.bfloat16
        wrapper.update_params(F.cross_entropy(logits.float().flatten(0, 1), batch(0)[:, 1:].flatten()))
    after = params_of(model)
    assert not torch.equal(before["blocks.0.qkv.weight"], after["blocks.0.qkv.weight"])  # Muon's child stepped
    assert not torch.equal(before["tok.weight"], after["tok.weight"])  # AdamW's too
    assert all(p.grad is None for p in model.parameters())


def test_deepcopy_gives_an_independent_composite() -> None:
    model = GPT()
    opt = HybridOptimizer(children(model))
    train(model, opt.step, opt.zero_grad, range(1))
    clone = copy.deepcopy(opt)
    assert list(clone.children) == ["main", "Muon"] and len(clone.state) == len(opt.state)
    assert clone.param_groups[0]["params"][0] is not opt.param_groups[0]["params"][0]
    assert "HybridOptimizer(main=AdamW, Muon=Muon; 3 groups)" == repr(clone)
