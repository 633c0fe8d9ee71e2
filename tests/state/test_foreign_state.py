"""Optimizer state of another model, or under another name prefix, is refused with the counts and the fix.

torch refuses a state that does not fit the optimizer (its positional load raises ``ValueError``); a
load by name in which (almost) nothing matches is the same mistake, and is a ``ForeignStateError``
(also a ``ValueError``) naming the counts, the closest names and the prefix map that fixes it.
"""

from __future__ import annotations

import copy
import warnings
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import paramwise
from paramwise import ParamwiseWarning, StateLoadError, build_optimizer, load_optimizer_state
from paramwise.errors import ForeignStateError, UsageTypeError
from paramwise.state.by_name import FOREIGN_BELOW, enable_state_by_name, map_state_by_name
from state_checks import assert_same_state, state_by_name

ADAMW = dict(type="AdamW", lr=1e-2, weight_decay=0.1)


class Encoder(nn.Module):
    """A small model; ``width`` and ``depth`` change its parameter names and shapes."""

    def __init__(self, depth: int = 3, width: int = 4) -> None:
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(width, width) for _ in range(depth))
        self.norm = nn.LayerNorm(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = torch.relu(layer(x))
        return self.norm(x)


class Wrapped(nn.Module):
    """A model held under an attribute, so every name gains ``<attr>.`` (as timm's/HF's ``vit.``)."""

    def __init__(self, attr: str, inner: nn.Module) -> None:
        super().__init__()
        self.add_module(attr, inner)


def trained_torch_optimizer(model: nn.Module, prefix: str = "", steps: int = 2) -> torch.optim.Optimizer:
    """torch's own AdamW over ``model``'s named parameters, each name with ``prefix`` (DDP saves ``module.``)."""
    torch.manual_seed(0)
    optimizer = torch.optim.AdamW([(prefix + n, p) for n, p in model.named_parameters()], lr=1e-2, weight_decay=0.1)
    for _ in range(steps):
        optimizer.zero_grad()
        model(torch.randn(8, 4)).pow(2).mean().backward()
        optimizer.step()
    return optimizer


# ------------------------------------------------------------------------------------- another model


def test_state_of_another_model_is_refused_with_the_counts_and_the_closest_names() -> None:
    saved = copy.deepcopy(trained_torch_optimizer(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 4)))
                          .state_dict())
    model = Encoder()
    optimizer = build_optimizer(model, ADAMW)
    before = copy.deepcopy(optimizer.state_dict())
    for load in (optimizer.load_state_dict, lambda sd: load_optimizer_state(optimizer, sd)):
        with pytest.raises(ForeignStateError) as caught:
            load(saved)
        error = caught.value
        assert (error.matched, error.saved, error.current) == (0, 4, 8)
        assert error.prefix_map is None
        text = str(error)
        assert "0 of 4 saved parameters match a parameter of this model by name (the model has 8)" in text
        assert "'0.weight', '0.bias', '2.weight' and 1 more" in text  # the checkpoint's names
        assert "'layers.0.weight', 'layers.0.bias', 'layers.1.weight' and 5 more" in text  # the model's
        assert "closest names: '0.weight' (saved) ~ 'layers.0.weight' (model)" in text
        assert "allow_unrelated=True" in text and "prefix_map" in text
    assert optimizer.state_dict() == before  # nothing was loaded
    assert isinstance(error, StateLoadError) and isinstance(error, ValueError)


@pytest.mark.filterwarnings("ignore:`torch.jit.*` is deprecated:DeprecationWarning")  # mmengine imports torch.jit
def test_torch_and_mmengine_refuse_it_with_a_value_error_and_so_does_paramwise() -> None:
    """mmengine's OptimWrapper loads torch's way (by position): the foreign state is a ValueError there."""
    from mmengine.optim import OptimWrapper as MMOptimWrapper

    saved = trained_torch_optimizer(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 4))).state_dict()
    model = Encoder()
    with pytest.raises(ValueError):
        MMOptimWrapper(torch.optim.AdamW(model.parameters())).load_state_dict(copy.deepcopy(saved))
    with pytest.raises(ValueError, match="0 of 4 saved parameters match"):
        paramwise.build_optim_wrapper(model, dict(optimizer=ADAMW)).load_state_dict(copy.deepcopy(saved))


def test_allow_unrelated_loads_the_names_that_match() -> None:
    source = Encoder(depth=3)
    saved = trained_torch_optimizer(source).state_dict()
    saved["param_groups"][0]["param_names"][2:] = [f"other.{i}" for i in range(6)]  # 2 of 8 keep their names
    optimizer = build_optimizer(Encoder(depth=3), ADAMW)
    with pytest.raises(ForeignStateError, match="2 of 8 saved parameters match"):
        load_optimizer_state(optimizer, saved)
    report = load_optimizer_state(optimizer, saved, allow_unrelated=True)
    assert report.unexpected == tuple(f"other.{i}" for i in range(6))
    assert len(report.missing) == 6
    assert set(state_by_name(optimizer)) == {"layers.0.weight", "layers.0.bias"}
    enable_state_by_name(optimizer, allow_unrelated=True)  # the same through torch's own call
    with pytest.warns(ParamwiseWarning, match="in the checkpoint but not in the optimizer"):
        optimizer.load_state_dict(saved)


# ------------------------------------------------------------------------------------- a name prefix


PREFIXED = [  # (prefix on the saved names, wrapper attribute of the current model, the map that fixes it)
    pytest.param("module.", None, {"module.": ""}, "carry the prefix 'module.', which this model's lack",
                 id="saved-by-ddp"),
    pytest.param("", "vit", {"": "vit."}, "this model's names carry the prefix 'vit.', which the saved names lack",
                 id="model-wrapped"),
    pytest.param("model.", "backbone", {"model.": "backbone."},
                 "the saved names start with 'model.' where this model's start with 'backbone.'", id="renamed"),
]


@pytest.mark.parametrize(("saved_prefix", "attr", "fix", "how"), PREFIXED)
def test_names_under_another_prefix_name_the_prefix_and_the_map_that_loads_them(
    saved_prefix: str, attr: str | None, fix: dict[str, str], how: str
) -> None:
    source = Encoder()
    trained = trained_torch_optimizer(source, prefix=saved_prefix)
    saved = copy.deepcopy(trained.state_dict())
    model = Encoder() if attr is None else Wrapped(attr, Encoder())
    optimizer = build_optimizer(model, ADAMW)
    with pytest.raises(ForeignStateError) as caught:
        optimizer.load_state_dict(saved)
    text = str(caught.value)
    assert caught.value.prefix_map == fix
    assert "0 of 8 saved parameters match" in text and how in text
    assert f"prefix_map={fix!r}" in text
    old, new = next(iter(fix.items()))
    assert f"--map-prefix '{old}={new}'" in text and "then 8 of 8 match" in text

    # the fix works, by either path: the state lands on the parameter of the mapped name, values equal
    expected = {(new + n[len(old):]): s for n, s in state_by_name(trained).items()}
    report = load_optimizer_state(optimizer, saved, prefix_map=fix)
    assert not report.missing and not report.unexpected
    assert_same_state(state_by_name(optimizer), expected)
    again = enable_state_by_name(build_optimizer(model, ADAMW), prefix_map=fix)
    again.load_state_dict(saved)
    assert_same_state(state_by_name(again), expected)
    original = trained.state_dict()  # the input is not changed
    assert saved["param_groups"] == original["param_groups"]
    assert saved["state"].keys() == original["state"].keys()
    assert all(torch.equal(saved["state"][i][k], v) for i, s in original["state"].items() for k, v in s.items())


def test_prefix_map_longest_old_prefix_wins_and_names_as_saved_are_reported() -> None:
    trained = trained_torch_optimizer(Encoder(), prefix="module.")
    saved = trained.state_dict()
    saved["param_groups"][0]["param_names"][-1] = "module.extra.bias"
    optimizer = build_optimizer(Encoder(), ADAMW)
    report = load_optimizer_state(optimizer, saved, prefix_map={"": "unused.", "module.": ""})
    assert report.missing == ("norm.bias",)
    assert report.unexpected == ("module.extra.bias",)  # as the checkpoint names it


def test_prefix_map_is_checked() -> None:
    saved = trained_torch_optimizer(Encoder(), prefix="module.").state_dict()
    optimizer = build_optimizer(Encoder(), ADAMW)
    with pytest.raises(UsageTypeError, match="prefix_map maps saved name prefixes"):
        load_optimizer_state(optimizer, saved, prefix_map=["module."])  # type: ignore[arg-type]
    with pytest.raises(UsageTypeError, match="strings to strings"):
        enable_state_by_name(optimizer, prefix_map={"module.": None})  # type: ignore[dict-item]
    saved["param_groups"][0]["param_names"][1] = "layers.0.weight"  # 'module.layers.0.weight' maps onto it
    with pytest.raises(StateLoadError, match="'module.layers.0.weight' and 'layers.0.weight' after prefix_map"):
        load_optimizer_state(optimizer, saved, prefix_map={"module.": ""})


# ------------------------------------------------------------------------------------- partial resumes


@pytest.mark.parametrize(("saved_depth", "depth"), [(3, 4), (4, 3), (1, 3), (3, 1), (3, 12)])
def test_a_resume_after_adding_or_removing_modules_still_loads_with_the_report(saved_depth: int, depth: int) -> None:
    trained = trained_torch_optimizer(Encoder(depth=saved_depth))
    optimizer = build_optimizer(Encoder(depth=depth), ADAMW)
    with pytest.warns(ParamwiseWarning, match="optimizer state loaded by parameter name") as caught:
        optimizer.load_state_dict(copy.deepcopy(trained.state_dict()))
    report = paramwise.last_load_report(optimizer)
    assert report is not None
    kept = min(saved_depth, depth)
    assert report.missing == tuple(f"layers.{i}.{k}" for i in range(kept, depth) for k in ("weight", "bias"))
    assert report.unexpected == tuple(f"layers.{i}.{k}" for i in range(kept, saved_depth) for k in ("weight", "bias"))
    assert_same_state(state_by_name(optimizer),
                      {n: s for n, s in state_by_name(trained).items() if n not in report.unexpected})
    assert {w.filename for w in caught} == {__file__}


@settings(max_examples=60, deadline=None)
@given(shared=st.integers(0, 12), saved_only=st.integers(0, 12), current_only=st.integers(0, 12))
def test_refused_exactly_when_matches_are_a_minority_of_both_sides(shared: int, saved_only: int,
                                                                   current_only: int) -> None:
    """The rule: refused iff both sides have parameters and matches < half of the saved AND < half of the model's."""
    def named_sgd(names: list[str]) -> torch.optim.Optimizer:
        return torch.optim.SGD([(n, nn.Parameter(torch.zeros(1))) for n in names] or [], lr=0.1)

    common = [f"p{i}" for i in range(shared)]
    saved_names = common + [f"old{i}" for i in range(saved_only)]
    current_names = common + [f"new{i}" for i in range(current_only)]
    if not saved_names or not current_names:
        return  # torch cannot build an optimizer without parameters
    saved, current = named_sgd(saved_names).state_dict(), named_sgd(current_names)
    refused = shared < FOREIGN_BELOW * len(saved_names) and shared < FOREIGN_BELOW * len(current_names)
    if refused:
        with pytest.raises(ForeignStateError) as caught:
            map_state_by_name(current, saved)
        assert (caught.value.matched, caught.value.saved, caught.value.current) == (
            shared, len(saved_names), len(current_names))
        assert f"{shared} of {len(saved_names)} saved parameters match" in str(caught.value)
    else:
        _, report = map_state_by_name(current, saved)
        assert len(report.missing) == current_only and len(report.unexpected) == saved_only
    _, report = map_state_by_name(current, saved, allow_unrelated=True)  # the opt-out always loads
    assert len(report.missing) == current_only


# ------------------------------------------------------------------------------------- warnings' place


def test_the_load_warning_points_at_the_users_line_not_at_torch() -> None:
    trained = trained_torch_optimizer(Encoder())
    optimizer = build_optimizer(Encoder(), dict(ADAMW, lr=3e-3))  # the lr differs: the load warns
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        optimizer.load_state_dict(trained.state_dict())
    (warning,) = [w for w in caught if issubclass(w.category, ParamwiseWarning)]
    assert "config kept over the checkpoint: lr" in str(warning.message)
    assert warning.filename == __file__

    wrapper = paramwise.build_optim_wrapper(Encoder(), dict(optimizer=dict(ADAMW, lr=3e-3)))
    with pytest.warns(ParamwiseWarning, match="config kept over the checkpoint") as caught_wrapper:
        wrapper.load_state_dict(trained.state_dict())  # paramwise's wrapper, then torch, then the hook
    assert [w.filename for w in caught_wrapper] == [__file__]


_ANY = st.one_of(st.none(), st.integers(), st.text(max_size=8), st.lists(st.text(max_size=4), max_size=3),
                 st.dictionaries(st.one_of(st.text(max_size=8), st.integers()),
                                 st.one_of(st.text(max_size=8), st.none()), max_size=3))
_PREFIXES = st.sampled_from(["", "module.", "layers.", "layers.0.", "model.", "vit.", ".", "x"])


_FUZZ_MODEL = Encoder()
_FUZZ_SAVED = trained_torch_optimizer(Encoder(), prefix="module.", steps=1).state_dict()


@settings(max_examples=50, deadline=None)
@given(prefix_map=st.one_of(_ANY, st.dictionaries(_PREFIXES, _PREFIXES, max_size=3)), allow=st.booleans())
def test_any_prefix_map_loads_or_is_a_paramwise_error_and_changes_no_input(prefix_map: Any, allow: bool) -> None:
    saved = _FUZZ_SAVED
    names = list(saved["param_groups"][0]["param_names"])
    given_map = copy.deepcopy(prefix_map)
    optimizer = torch.optim.AdamW(list(_FUZZ_MODEL.named_parameters()), lr=1e-2)  # any optimizer with names
    try:
        report = load_optimizer_state(optimizer, saved, prefix_map=prefix_map, allow_unrelated=allow)
    except paramwise.ParamwiseError:
        pass
    else:
        loaded = len(names) - len(report.unexpected)
        assert set(state_by_name(optimizer)) == {n for n, _ in _FUZZ_MODEL.named_parameters()} - set(report.missing)
        assert allow or loaded >= FOREIGN_BELOW * len(names)
    assert saved["param_groups"][0]["param_names"] == names and prefix_map == given_map
