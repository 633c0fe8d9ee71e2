"""Optimizer state follows parameter names: save, change the config (and the grouping), rebuild, load, go on."""

from __future__ import annotations

import copy
import io
import warnings
from typing import Any
from unittest import mock

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

import paramwise
from expect import TINY_MLP_DEMO_WARNINGS, expect_warnings
from paramwise import (
    ParamwiseWarning,
    StateLoadError,
    build_optimizer,
    last_load_report,
    load_optimizer_state,
    name_optimizer_state,
)
from state_checks import assert_same_state, state_by_name


class Net(nn.Module):
    """Two blocks whose weights and biases have equal shapes, so a positional mix-up is silent."""

    def __init__(self, order: tuple[str, ...] = ("a", "b", "head")) -> None:
        super().__init__()
        make = {"a": lambda: nn.Linear(4, 4), "b": lambda: nn.Linear(4, 4), "head": lambda: nn.Linear(4, 2)}
        for name in order:  # registration order decides the parameter order
            setattr(self, name, make[name]())
        self.norm = nn.LayerNorm(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.norm(torch.relu(self.b(torch.relu(self.a(x))))))


ADAMW = dict(type="AdamW", lr=1e-2, weight_decay=0.1)


def train(model: nn.Module, optimizer: torch.optim.Optimizer, steps: int, seed: int = 0) -> None:
    generator = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        x = torch.randn(8, 4, generator=generator)
        loss = model(x).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def saved_after(cfg: dict[str, Any], steps: int = 3, model: nn.Module | None = None) -> tuple[nn.Module, Any, Any]:
    torch.manual_seed(0)
    model = model or Net()
    optimizer = build_optimizer(model, cfg)
    train(model, optimizer, steps)
    return model, optimizer, copy.deepcopy(optimizer.state_dict())


# a grouping that makes 2 groups of 4 by module, and one that makes 2 groups of 4 by kind
BY_MODULE = dict(ADAMW, paramwise_cfg=dict(custom_keys={"a.": dict(weight_decay=0.1001),
                                                        "b.": dict(weight_decay=0.1001)}))
BY_KIND = dict(ADAMW, paramwise_cfg=dict(custom_keys={"weight": dict(weight_decay=0.1001)}))


def test_same_group_sizes_different_members_follow_names_where_torch_mixes_them_up() -> None:
    model, before, saved = saved_after(BY_MODULE)
    after = build_optimizer(model, BY_KIND)
    sizes = lambda opt: [len(g["params"]) for g in opt.param_groups]  # noqa: E731
    assert sizes(before) == sizes(after) == [4, 4]  # torch's positional load would accept it silently
    with pytest.warns(ParamwiseWarning, match="config kept over the checkpoint: weight_decay"):
        after.load_state_dict(saved)  # torch's own call: by name through the hook
    assert_same_state(state_by_name(after), state_by_name(before))

    # the same load by position (a plain torch optimizer with the same groups) puts state on the wrong tensors
    plain = torch.optim.AdamW([{k: v for k, v in g.items() if k != "param_names"} for g in after.param_groups])
    plain.load_state_dict({"state": saved["state"],
                           "param_groups": [{k: v for k, v in g.items() if k != "param_names"}
                                            for g in saved["param_groups"]]})
    names = {id(p): n for n, p in model.named_parameters()}
    wrong = {names[id(p)]: s for p, s in plain.state.items()}
    right = state_by_name(before)
    mixed = [n for n in right if not torch.equal(wrong[n]["exp_avg"], right[n]["exp_avg"])]
    assert len(mixed) == 6  # all but a.weight and norm.bias got another parameter's moments


def test_group_count_differs_merged_and_one_group_per_parameter() -> None:
    for first, second in ((ADAMW, dict(ADAMW, paramwise_cfg=dict(group_by="param"))),
                          (dict(ADAMW, paramwise_cfg=dict(group_by="param")), ADAMW)):
        model, before, saved = saved_after(first)
        after = build_optimizer(model, second)
        assert len(after.param_groups) != len(before.param_groups)
        with warnings.catch_warnings():
            warnings.simplefilter("error", ParamwiseWarning)  # nothing differs: no warning
            report = load_optimizer_state(after, saved)
        assert report.clean
        assert_same_state(state_by_name(after), state_by_name(before))


def test_continuing_after_regrouping_equals_an_uninterrupted_run() -> None:
    torch.manual_seed(0)
    reference = Net()
    resumed = copy.deepcopy(reference)
    ref_opt = build_optimizer(reference, ADAMW)
    train(reference, ref_opt, 3)
    saved = copy.deepcopy(ref_opt.state_dict())
    resumed.load_state_dict(reference.state_dict())
    train(reference, ref_opt, 4, seed=1)

    regrouped = build_optimizer(resumed, dict(ADAMW, paramwise_cfg=dict(group_by="param")))
    regrouped.load_state_dict(saved)
    train(resumed, regrouped, 4, seed=1)
    for (name, a), (_, b) in zip(reference.named_parameters(), resumed.named_parameters()):
        assert torch.equal(a, b), name


def test_reordered_modules_load_by_name() -> None:
    model, before, saved = saved_after(ADAMW, model=Net(("a", "b", "head")))
    reordered = Net(("head", "b", "a"))
    reordered.load_state_dict(model.state_dict())
    after = build_optimizer(reordered, dict(ADAMW, paramwise_cfg=dict(group_by="param")))
    assert after.param_groups[0]["param_names"] == ["head.weight"]
    assert load_optimizer_state(after, saved).clean
    assert_same_state(state_by_name(after), state_by_name(before))


def test_unfrozen_parameters_start_fresh_and_frozen_ones_are_unexpected() -> None:
    torch.manual_seed(0)
    model = Net()
    model.a.requires_grad_(False)
    with pytest.warns(ParamwiseWarning, match="requires_grad=False"):
        before = build_optimizer(model, ADAMW)
    train(model, before, 2)
    saved = copy.deepcopy(before.state_dict())
    model.a.requires_grad_(True)
    model.head.requires_grad_(False)
    with pytest.warns(ParamwiseWarning):
        after = build_optimizer(model, ADAMW)
    report = load_optimizer_state(after, saved)
    assert report.missing == ("a.weight", "a.bias")
    assert report.unexpected == ("head.weight", "head.bias")
    assert "a.weight" not in state_by_name(after)
    assert_same_state({n: s for n, s in state_by_name(after).items()},
                      {n: s for n, s in state_by_name(before).items() if not n.startswith("head")})
    with pytest.warns(ParamwiseWarning, match="requires_grad=False"):
        optimizer = build_optimizer(model, ADAMW)
    with pytest.raises(StateLoadError, match="strict loading"):
        load_optimizer_state(optimizer, saved, strict=True)


def test_the_config_wins_and_the_report_lists_exactly_the_changed_values() -> None:
    model, _, saved = saved_after(ADAMW)
    cfg = dict(ADAMW, betas=(0.8, 0.99), paramwise_cfg=dict(custom_keys={"head": dict(lr_mult=0.5)}))
    after = build_optimizer(model, cfg)
    report = load_optimizer_state(after, saved)
    changes = {(c.key, repr(c.saved), repr(c.current)): set(c.params) for c in report.changed}
    everyone = {n for n, _ in model.named_parameters()}
    assert changes == {
        ("lr", "0.01", "0.005"): {"head.weight", "head.bias"},
        ("betas", "(0.9, 0.999)", "(0.8, 0.99)"): everyone,
    }
    lrs = {n: g["lr"] for g in after.param_groups for n in g["param_names"]}
    assert lrs["head.weight"] == 0.005 and lrs["a.weight"] == 0.01
    assert all(g["betas"] == (0.8, 0.99) for g in after.param_groups)
    assert last_load_report(after) == report


def test_scheduled_lr_carries_over_and_is_rescaled_when_the_base_changed() -> None:
    torch.manual_seed(0)
    model = Net()
    optimizer = build_optimizer(model, ADAMW)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    for _ in range(3):
        train(model, optimizer, 1)
        scheduler.step()
    saved, saved_sched = copy.deepcopy(optimizer.state_dict()), scheduler.state_dict()
    lr_now = optimizer.param_groups[0]["lr"]
    assert lr_now == pytest.approx(0.01 / 8)

    same = build_optimizer(model, dict(ADAMW, paramwise_cfg=dict(group_by="param")))
    assert load_optimizer_state(same, saved).clean  # schedule progress is state, not a config change
    resumed = torch.optim.lr_scheduler.StepLR(same, step_size=1, gamma=0.5)
    resumed.load_state_dict(saved_sched)
    assert all(g["lr"] == lr_now for g in same.param_groups)
    resumed.step()
    scheduler.step()
    assert all(g["lr"] == optimizer.param_groups[0]["lr"] for g in same.param_groups)

    halved = build_optimizer(model, dict(ADAMW, lr=5e-3))
    report = load_optimizer_state(halved, saved)
    (change,) = report.changed
    assert (change.key, change.saved, change.current) == ("lr", 0.01, 5e-3)
    assert halved.param_groups[0]["lr"] == pytest.approx(lr_now / 2)  # same progress under the new base
    assert halved.param_groups[0]["initial_lr"] == 5e-3


def test_a_checkpoint_without_names_is_refused_with_the_fix() -> None:
    model, _before, saved = saved_after(ADAMW)
    for group in saved["param_groups"]:
        del group["param_names"]
    with pytest.raises(StateLoadError, match=r"no parameter names .* paramwise.name_optimizer_state"):
        build_optimizer(model, ADAMW).load_state_dict(saved)


def test_plain_torch_checkpoint_is_named_in_model_order() -> None:
    torch.manual_seed(0)
    model = Net()
    plain = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)
    train(model, plain, 2)
    saved = copy.deepcopy(plain.state_dict())
    named = name_optimizer_state(saved, model)
    assert named["param_groups"][0]["param_names"] == [n for n, _ in model.named_parameters()]
    after = build_optimizer(model, dict(ADAMW, paramwise_cfg=dict(norm_decay_mult=0.0)))
    load_optimizer_state(after, named)
    ids = {id(p): n for n, p in model.named_parameters()}
    assert_same_state(state_by_name(after), {ids[id(p)]: s for p, s in plain.state.items()})


def test_counts_and_shapes_that_do_not_fit_name_the_first_mismatch() -> None:
    torch.manual_seed(0)
    model = Net()
    plain = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    train(model, plain, 1)
    saved = copy.deepcopy(plain.state_dict())
    with pytest.raises(StateLoadError, match=r"holds 8 parameters, but the model under this config has 7"):
        name_optimizer_state(saved, model, names=[n for n, _ in model.named_parameters()][:7])
    order = [n for n, _ in model.named_parameters()]
    order[0], order[1] = order[1], order[0]  # a.bias where a.weight was saved
    with pytest.raises(StateLoadError, match=r"saved parameter #0 .* would be 'a.bias' of shape \(4,\): the first"):
        name_optimizer_state(saved, model, names=order)
    # a parameter that changed shape since: an error, or a fresh start when asked
    named = name_optimizer_state(saved, model)
    wider = Net()
    wider.head = nn.Linear(4, 3)
    with pytest.raises(StateLoadError, match=r"'head.weight' does not fit .* \(3, 4\) now"):
        load_optimizer_state(build_optimizer(wider, dict(type="SGD", lr=0.1, momentum=0.9)), named)
    report = load_optimizer_state(build_optimizer(wider, dict(type="SGD", lr=0.1, momentum=0.9)), named,
                                  skip_mismatched=True)
    assert report.mismatched == ("head.weight", "head.bias")


@pytest.mark.parametrize("cfg", [dict(type="Adafactor", lr=1e-2), dict(type="Muon", lr=2e-2)])
def test_factored_and_matrix_state_moves_whole(cfg: dict[str, Any]) -> None:
    if not hasattr(torch.optim, cfg["type"]):
        pytest.skip(f"torch without {cfg['type']}")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5, bias=False), nn.Linear(5, 3, bias=False))
    optimizer = build_optimizer(model, cfg)
    generator = torch.Generator().manual_seed(0)
    for _ in range(2):
        optimizer.zero_grad()
        model(torch.randn(4, 6, generator=generator)).pow(2).mean().backward()
        optimizer.step()
    saved = copy.deepcopy(optimizer.state_dict())
    after = build_optimizer(model, dict(cfg, paramwise_cfg=dict(custom_keys={"1": dict(lr_mult=1.0)},
                                                                 group_by="param")))
    load_optimizer_state(after, saved)
    assert_same_state(state_by_name(after), state_by_name(optimizer))


def test_state_survives_torch_save_and_load() -> None:
    model, before, _saved = saved_after(ADAMW)
    buffer = io.BytesIO()
    torch.save(before.state_dict(), buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=True)
    after = build_optimizer(model, BY_KIND)
    with pytest.warns(ParamwiseWarning):
        after.load_state_dict(loaded)
    assert_same_state(state_by_name(after), state_by_name(before))


def test_mmengine_checkpoint_converted_continues_as_mmengine_does() -> None:
    dc = pytest.importorskip("mmengine.optim.optimizer.default_constructor")
    cfg = dict(type="SGD", lr=0.05, momentum=0.9, weight_decay=1e-3)
    pw = dict(norm_decay_mult=0.0, bias_lr_mult=2.0, custom_keys={"head": dict(lr_mult=0.1)})
    torch.manual_seed(0)
    theirs = Net()
    with mock.patch.object(dc, "print_log", lambda *a, **k: None):
        mm_opt = dc.DefaultOptimWrapperConstructor(dict(type="OptimWrapper", optimizer=dict(cfg)), pw)(theirs).optimizer
    train(theirs, mm_opt, 3)
    checkpoint = {"optimizer": copy.deepcopy(mm_opt.state_dict()), "model": copy.deepcopy(theirs.state_dict())}
    train(theirs, mm_opt, 4, seed=1)  # mmengine's own continuation

    ours = Net()
    ours.load_state_dict(checkpoint["model"])
    named = name_optimizer_state(checkpoint["optimizer"], ours, dict(cfg, paramwise_cfg=pw))
    optimizer = build_optimizer(ours, dict(cfg, paramwise_cfg=pw))
    assert len(optimizer.param_groups) < len(mm_opt.param_groups)
    assert load_optimizer_state(optimizer, named).clean
    train(ours, optimizer, 4, seed=1)
    for (name, a), (_, b) in zip(theirs.named_parameters(), ours.named_parameters()):
        assert torch.equal(a, b), name


@pytest.mark.slow
@given(
    first=st.sampled_from(["a", "b", "head", "norm", ".bias", "weight"]),
    second=st.sampled_from(["a", "b", "head", "norm", ".bias", "weight"]),
    group_by=st.sampled_from(["hyperparams", "param"]),
    steps=st.integers(1, 3),
)
def test_state_follows_names_for_any_regrouping(first: str, second: str, group_by: str, steps: int) -> None:
    """Property: whatever the two configs' groupings, each parameter gets exactly its own saved state."""
    cfg_a = dict(ADAMW, paramwise_cfg=dict(custom_keys={first: dict(weight_decay=0.3)}))
    cfg_b = dict(ADAMW, paramwise_cfg=dict(custom_keys={second: dict(weight_decay=0.2)}, group_by=group_by))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ParamwiseWarning)
        model, before, saved = saved_after(cfg_a, steps)
        after = build_optimizer(model, cfg_b)
        report = load_optimizer_state(after, saved)
    assert not report.missing and not report.unexpected
    assert_same_state(state_by_name(after), state_by_name(before))
    assert sorted(n for g in after.param_groups for n in g["param_names"]) == sorted(dict(model.named_parameters()))


def test_public_surface() -> None:
    assert paramwise.load_optimizer_state is load_optimizer_state
    assert issubclass(StateLoadError, ValueError) and issubclass(StateLoadError, paramwise.ParamwiseError)


def test_cli_state_shows_groups_and_what_loading_under_a_config_changes(tmp_path, capsys) -> None:
    import json

    from paramwise.cli import main

    torch.manual_seed(0)
    model = paramwise.load_model("tiny_convnet", {})
    plain = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(2, 3, 32, 32)).sum().backward()
    plain.step()
    path = tmp_path / "epoch_3.pth"
    torch.save({"optimizer": plain.state_dict(), "meta": {"epoch": 3}}, path)
    config = tmp_path / "sgd.py"
    config.write_text("optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.05, momentum=0.9))\n")

    assert main(["state", str(path)]) == 0
    captured = capsys.readouterr()
    assert "[optimizer]: 1 group, 13 parameters, 13 with state" in captured.out
    assert "unnamed" in captured.out and "give --config and --model" in captured.err

    assert main(["state", str(path), "--config", str(config), "-m", "tiny_convnet", "-f", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["key"] == "optimizer" and data["groups"][0]["names"] is None
    load = data["load"]
    assert load["missing"] == [] and load["unexpected"] == [] and load["mismatched"] == []
    (change,) = load["changed"]
    assert (change["key"], change["saved"], change["current"]) == ("lr", 0.1, 0.05)
    assert len(change["params"]) == 13

    assert main(["state", str(path), "--config", str(config)]) == 2  # --model missing: a usage error
    assert main(["state", str(tmp_path / "nope.pth")]) == 1
    assert "not found" in capsys.readouterr().err


def test_demo_resumes_by_name_across_groupings() -> None:
    from paramwise.cli import main

    out = io.StringIO()
    with mock.patch("sys.stdout", out), mock.patch.dict("sys.modules", {"rich": None, "rich.console": None}):
        with expect_warnings(*TINY_MLP_DEMO_WARNINGS):  # a convnet's config
            assert main(["demo", "--steps", "3", "--model", "tiny_mlp"]) == 0
    assert "rebuilt it with one group per parameter" in out.getvalue()
    assert "got their own state back; no hyperparameter differs" in out.getvalue()
