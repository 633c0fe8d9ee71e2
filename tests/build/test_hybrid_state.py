"""A HybridOptimizer's state: saved in torch's format with names and routes, loaded by name across regroupings
and route changes (a parameter that moved between Muon and AdamW starts fresh, and the report says so).

(Here beside ``test_hybrid.py``, whose GPT-like model and hand-built children it shares.)
"""

from __future__ import annotations

import copy
import io
import warnings
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from test_hybrid import ADAMW, GPT, MUON, children, is_hidden, train
from torch import nn

import paramwise
from paramwise.build import HybridOptimizer
from paramwise.errors import ParamwiseWarning, StateLoadError
from paramwise.state import last_load_report, load_optimizer_state
from paramwise.wrapper.optim_wrapper import wrap_optimizer
from state_checks import assert_same_state, state_by_name


def roundtrip(state_dict: dict[str, Any]) -> dict[str, Any]:
    """Through torch.save / torch.load(weights_only=True), as a checkpoint file goes."""
    buffer = io.BytesIO()
    torch.save(state_dict, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def trained(steps: int, seed: int = 0, hidden: Any = is_hidden) -> tuple[nn.Module, HybridOptimizer]:
    torch.manual_seed(seed)
    model = GPT()
    opt = HybridOptimizer(children(model, hidden))
    train(model, opt.step, opt.zero_grad, range(steps))
    return model, opt


def fresh_like(model: nn.Module, hidden: Any = is_hidden) -> tuple[nn.Module, HybridOptimizer]:
    """A new model with ``model``'s weights and a new composite over it (as a resumed run builds them)."""
    new = GPT()
    new.load_state_dict(model.state_dict())
    return new, HybridOptimizer(children(new, hidden))


def test_state_dict_is_torchs_format_over_all_groups_with_names_and_routes() -> None:
    model, opt = trained(1)
    sd = opt.state_dict()
    groups = sd["param_groups"]
    assert [g["route"] for g in groups] == ["main", "main", "Muon"]
    ids = [i for g in groups for i in g["params"]]
    assert ids == list(range(len(list(model.parameters()))))
    names = [n for g in groups for n in g["param_names"]]
    assert sorted(names) == sorted(n for n, _ in model.named_parameters())
    assert sorted(sd["state"]) == ids
    muon_id = groups[2]["params"][0]
    assert set(sd["state"][muon_id]) == {"momentum_buffer"}
    assert set(sd["state"][groups[0]["params"][0]]) == {"step", "exp_avg", "exp_avg_sq"}
    assert groups[2]["momentum"] == MUON["momentum"] and groups[0]["betas"] == ADAMW["betas"]


def test_save_load_continue_equals_an_uninterrupted_run() -> None:
    straight, straight_opt = trained(7)
    model, opt = trained(3)
    saved = roundtrip(opt.state_dict())
    resumed, resumed_opt = fresh_like(model)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ParamwiseWarning)  # a clean load warns nothing
        resumed_opt.load_state_dict(saved)
    report = last_load_report(resumed_opt)
    assert report is not None and report.clean and len(report.fresh) == 0
    train(resumed, resumed_opt.step, resumed_opt.zero_grad, range(3, 7))
    for (name, a), b in zip(straight.named_parameters(), resumed.parameters()):
        assert torch.equal(a, b), name
    assert_same_state(state_by_name(straight_opt), state_by_name(resumed_opt))
    assert resumed_opt.param_groups[2] is resumed_opt.children["Muon"].param_groups[0]


def test_a_regrouped_load_carries_state_by_name_and_the_config_wins() -> None:
    model, opt = trained(2)
    saved = opt.state_dict()
    new = GPT()
    new.load_state_dict(model.state_dict())
    kids = children(new)
    head = kids["main"].param_groups[0]  # split lm_head off into a group of its own, with another lr
    at = head["param_names"].index("lm_head.weight")
    head_param = head["params"].pop(at)
    head["param_names"].pop(at)
    kids["main"].add_param_group(dict(params=[head_param], param_names=["lm_head.weight"], lr=1e-4,
                                      weight_decay=0.1, route="main"))
    kids["Muon"].param_groups[0]["lr"] = 0.01
    composite = HybridOptimizer(kids)
    report = load_optimizer_state(composite, saved)
    assert report.rerouted == () and not report.missing and not report.unexpected
    changed = {(c.key, c.saved, c.current, c.params) for c in report.changed}
    assert ("lr", ADAMW["lr"], 1e-4, ("lm_head.weight",)) in changed
    assert ("lr", MUON["lr"], 0.01, tuple(kids["Muon"].param_groups[0]["param_names"])) in changed
    assert composite.param_groups[-1]["lr"] == 0.01 and composite.param_groups[2]["lr"] == 1e-4
    assert_same_state(state_by_name(opt), state_by_name(composite))


def test_a_rerouted_parameter_starts_fresh_and_the_report_lists_it() -> None:
    model, opt = trained(2)
    saved = roundtrip(opt.state_dict())

    def now_hidden(name: str, p: torch.Tensor) -> bool:  # out weights go back to AdamW, lm_head to Muon
        return (is_hidden(name, p) and not name.endswith("out.weight")) or name == "lm_head.weight"

    resumed_model, resumed = fresh_like(model, now_hidden)
    with pytest.warns(ParamwiseWarning, match=r"moved to another optimizer .*blocks.0.out.weight \(Muon -> main\)"):
        resumed.load_state_dict(saved)
    report = last_load_report(resumed)
    assert report is not None
    assert sorted(report.rerouted) == [("blocks.0.out.weight", "Muon", "main"), ("blocks.1.out.weight", "Muon", "main"),
                                       ("lm_head.weight", "main", "Muon")]
    assert not report.changed and not report.unmapped and not report.carried  # no route's values leaked
    before, after = state_by_name(opt), state_by_name(resumed)
    moved = {name for name, _, _ in report.rerouted}
    assert moved.isdisjoint(after)
    assert_same_state({n: s for n, s in before.items() if n not in moved}, after)
    train(resumed_model, resumed.step, resumed.zero_grad, range(2, 3))  # and it steps on
    assert set(state_by_name(resumed)["lm_head.weight"]) == {"momentum_buffer"}


def test_a_plain_optimizers_checkpoint_loads_into_a_composite_and_back() -> None:
    torch.manual_seed(0)
    model = GPT()
    plain = paramwise.build_optimizer(model, dict(type="AdamW", lr=3e-3, betas=(0.9, 0.95), weight_decay=0.1))
    train(model, plain.step, plain.zero_grad, range(2))
    _, composite = fresh_like(model)
    report = load_optimizer_state(composite, plain.state_dict())
    hidden = sorted(n for n, p in model.named_parameters() if is_hidden(n, p))
    assert sorted(report.rerouted) == [(n, "main", "Muon") for n in hidden]
    assert set(state_by_name(composite)) == {n for n, _ in model.named_parameters()} - set(hidden)
    train(model, composite.step, composite.zero_grad, range(2, 3))
    back = paramwise.build_optimizer(model, dict(type="AdamW", lr=3e-3, betas=(0.9, 0.95), weight_decay=0.1))
    report = load_optimizer_state(back, composite.state_dict())
    assert sorted(report.rerouted) == [(n, "Muon", "main") for n in hidden]
    assert all("route" not in g for g in back.param_groups)  # the composite's route key is not carried over


def test_load_optimizer_state_and_a_prefix_map_work_on_the_composite() -> None:
    model, opt = trained(1)
    saved = opt.state_dict()
    for group in saved["param_groups"]:
        group["param_names"] = [f"module.{n}" for n in group["param_names"]]
    _, resumed = fresh_like(model)
    with pytest.raises(StateLoadError, match="prefix_map"):
        resumed.load_state_dict(saved)
    report = load_optimizer_state(resumed, saved, prefix_map={"module.": ""})
    assert report.clean
    assert_same_state(state_by_name(opt), state_by_name(resumed))
    paramwise.enable_state_by_name(resumed, prefix_map={"module.": ""})
    resumed.load_state_dict(saved)
    assert_same_state(state_by_name(opt), state_by_name(resumed))


def test_a_composite_without_names_loads_by_position() -> None:
    torch.manual_seed(0)
    model = GPT()

    def unnamed(m: nn.Module) -> HybridOptimizer:
        return HybridOptimizer({
            "main": torch.optim.AdamW([p for n, p in m.named_parameters() if not is_hidden(n, p)], **ADAMW),
            "Muon": torch.optim.Muon([p for n, p in m.named_parameters() if is_hidden(n, p)], **MUON)})

    opt = unnamed(model)
    train(model, opt.step, opt.zero_grad, range(2))
    other = unnamed(copy.deepcopy(model))
    other.load_state_dict(opt.state_dict())
    assert [len(o.state) for o in other.children.values()] == [len(o.state) for o in opt.children.values()]
    for p, q in zip(opt.state, other.state):
        for key in opt.state[p]:
            assert torch.equal(torch.as_tensor(opt.state[p][key]), torch.as_tensor(other.state[q][key]))
    bad = opt.state_dict()
    bad["param_groups"] = bad["param_groups"][::-1]
    with pytest.raises(StateLoadError, match="not this optimizer's layout"):
        other.load_state_dict(bad)


def test_the_wrappers_state_round_trips_through_the_composite() -> None:
    model, opt = trained(2)
    wrapper = wrap_optimizer(opt, dict(accumulative_counts=2))
    saved = roundtrip(wrapper.state_dict())
    _, resumed = fresh_like(model)
    resumed_wrapper = wrap_optimizer(resumed, dict(accumulative_counts=2))
    resumed_wrapper.load_state_dict(saved)
    assert_same_state(state_by_name(opt), state_by_name(resumed))


def test_the_composites_load_hooks_run() -> None:
    model, opt = trained(1)
    _, resumed = fresh_like(model)
    seen = []
    resumed.register_load_state_dict_post_hook(lambda o: seen.append(type(o).__name__))
    resumed.load_state_dict(opt.state_dict())
    assert seen == ["HybridOptimizer"]


_NAMES = [n for n, _ in GPT().named_parameters()]


@settings(max_examples=15)  # each example trains a step and loads: ~0.1 s
@given(before=st.sets(st.sampled_from(_NAMES)), after=st.sets(st.sampled_from(_NAMES)))
def test_the_report_lists_exactly_the_parameters_whose_route_changed(before: set[str], after: set[str]) -> None:
    """Any split into Muon (2-D names chosen) and AdamW, before and after: the rerouted are the symmetric
    difference, every other parameter keeps its state bit for bit."""
    def route(chosen: set[str]) -> Any:
        return lambda name, p: name in chosen and p.ndim == 2

    model, opt = trained(1, hidden=route(before))
    _, resumed = fresh_like(model, route(after))
    report = load_optimizer_state(resumed, opt.state_dict())
    shapes = dict(model.named_parameters())
    old = {n for n in before if shapes[n].ndim == 2}
    new = {n for n in after if shapes[n].ndim == 2}
    assert {n for n, _, _ in report.rerouted} == old ^ new
    assert all((src, dst) == (("Muon", "main") if n in old else ("main", "Muon")) for n, src, dst in report.rerouted)
    kept = {n: s for n, s in state_by_name(opt).items() if n not in old ^ new}
    assert_same_state(kept, state_by_name(resumed))
