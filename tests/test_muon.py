"""BatchedMuon against torch.optim.Muon: same arguments, checks, state format and results.

On CPU the batched bf16 matmuls run the kernels torch's per-matrix ones run, so results are compared
bit for bit (``torch.equal``), the strictest form of "equal within bf16 tolerance".
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Sequence
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import paramwise.muon as muon_module
from paramwise import OPTIMIZERS, ConfigError, build_optimizer
from paramwise.muon import BatchedMuon

pytestmark = pytest.mark.skipif(not hasattr(torch.optim, "Muon"), reason="torch without Muon")

Shapes = Sequence[tuple[int, ...]]

SHAPE_SETS: dict[str, Shapes] = {
    "square": [(12, 12)],
    "tall": [(24, 8)],
    "wide": [(8, 24)],
    "same-shape": [(16, 16)] * 4,
    "mixed": [(16, 16), (24, 8), (8, 24), (16, 16), (24, 8), (8, 24), (20, 12), (5, 7)],
}


def _params(shapes: Shapes, seed: int = 0, dtype: torch.dtype = torch.float32) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=g).to(dtype).requires_grad_() for s in shapes]


def _twin(params: list[torch.Tensor]) -> list[torch.Tensor]:
    return [p.detach().clone().requires_grad_() for p in params]


def _set_grads(groups: Sequence[Sequence[torch.Tensor]], seed: int) -> None:
    """The same random grads for the parameters at each position of every list in ``groups``."""
    g = torch.Generator().manual_seed(seed)
    for i, p in enumerate(groups[0]):
        grad = torch.randn(p.shape, generator=g).to(p.dtype)
        for params in groups:
            params[i].grad = grad.clone()


def _run(optimizers: Sequence[torch.optim.Optimizer], params: Sequence[list[torch.Tensor]], steps: int,
         first_seed: int = 1) -> None:
    for step in range(steps):
        _set_grads(params, first_seed + step)
        for optimizer in optimizers:
            optimizer.step()


def _assert_same(a: Sequence[torch.Tensor], b: Sequence[torch.Tensor]) -> None:
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x, y), f"shape {tuple(x.shape)}: max difference {(x - y).abs().max().item()}"


def _assert_same_state(a: torch.optim.Optimizer, pa: list[torch.Tensor],
                       b: torch.optim.Optimizer, pb: list[torch.Tensor]) -> None:
    for x, y in zip(pa, pb, strict=True):
        assert a.state[x].keys() == b.state[y].keys()
        for key in a.state[x]:
            assert torch.equal(a.state[x][key], b.state[y][key])


@pytest.mark.parametrize("shapes", SHAPE_SETS.values(), ids=SHAPE_SETS.keys())
@pytest.mark.parametrize("adjust_lr_fn", [None, "original", "match_rms_adamw"])
@pytest.mark.parametrize("nesterov", [True, False])
@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_five_steps_equal_torch_muon(shapes: Shapes, adjust_lr_fn: str | None, nesterov: bool,
                                     weight_decay: float) -> None:
    ref = _params(shapes)
    ours = _twin(ref)
    kwargs: dict[str, Any] = dict(lr=0.02, weight_decay=weight_decay, nesterov=nesterov, adjust_lr_fn=adjust_lr_fn)
    torch_muon, batched = torch.optim.Muon(ref, **kwargs), BatchedMuon(ours, **kwargs)
    _run([torch_muon, batched], [ref, ours], steps=5)
    _assert_same(ref, ours)
    _assert_same_state(torch_muon, ref, batched, ours)


def test_groups_with_their_own_values_batch_together_and_match_torch() -> None:
    # one batch per shape across groups: each group's lr, weight decay and momentum must still apply
    ref = _params([(16, 16)] * 6 + [(24, 8)] * 2)
    ours = _twin(ref)

    def groups(ps: list[torch.Tensor]) -> list[dict[str, Any]]:
        return [dict(params=ps[:3], lr=0.05), dict(params=ps[3:5], weight_decay=0.0, momentum=0.9),
                dict(params=ps[5:], lr=0.01, nesterov=False, adjust_lr_fn="match_rms_adamw")]

    torch_muon, batched = torch.optim.Muon(groups(ref), lr=0.02), BatchedMuon(groups(ours), lr=0.02)
    _run([torch_muon, batched], [ref, ours], steps=5)
    _assert_same(ref, ours)


def test_tensor_lr_and_bf16_parameters_match_torch() -> None:
    ref = _params([(16, 16), (24, 8)], dtype=torch.bfloat16)
    ours = _twin(ref)
    torch_muon = torch.optim.Muon(ref, lr=torch.tensor([0.02]), weight_decay=0.1)  # type: ignore[arg-type]
    batched = BatchedMuon(ours, lr=torch.tensor([0.02]), weight_decay=0.1)
    _run([torch_muon, batched], [ref, ours], steps=3)
    _assert_same(ref, ours)


def test_chunked_batches_give_the_same_result(monkeypatch: pytest.MonkeyPatch) -> None:
    ref = _params([(16, 16)] * 5)
    ours = _twin(ref)
    monkeypatch.setattr(muon_module, "MAX_BATCH_ELEMENTS", 2 * 16 * 16)  # batches of 2, 2 and 1
    torch_muon, batched = torch.optim.Muon(ref, lr=0.02), BatchedMuon(ours, lr=0.02)
    _run([torch_muon, batched], [ref, ours], steps=2)
    _assert_same(ref, ours)


@settings(max_examples=15)
@given(shapes=st.lists(st.tuples(st.integers(1, 20), st.integers(1, 20)), min_size=1, max_size=6),
       repeats=st.integers(1, 3), nesterov=st.booleans(),
       adjust_lr_fn=st.sampled_from([None, "original", "match_rms_adamw"]), seed=st.integers(0, 2**16))
def test_any_shapes_equal_torch_muon(shapes: list[tuple[int, int]], repeats: int, nesterov: bool,
                                     adjust_lr_fn: str | None, seed: int) -> None:
    ref = _params(shapes * repeats, seed=seed)
    ours = _twin(ref)
    kwargs: dict[str, Any] = dict(lr=0.03, nesterov=nesterov, adjust_lr_fn=adjust_lr_fn)
    _run([torch.optim.Muon(ref, **kwargs), BatchedMuon(ours, **kwargs)], [ref, ours], steps=2, first_seed=seed)
    _assert_same(ref, ours)


def test_state_dict_round_trip_continues_exactly() -> None:
    shapes = SHAPE_SETS["mixed"]
    straight = _params(shapes)
    resumed = _twin(straight)
    uninterrupted = BatchedMuon(straight, lr=0.02)
    first = BatchedMuon(resumed, lr=0.02)
    _run([uninterrupted, first], [straight, resumed], steps=2)
    saved = copy.deepcopy(first.state_dict())
    second = BatchedMuon(resumed, lr=0.02)
    second.load_state_dict(saved)
    _run([uninterrupted, second], [straight, resumed], steps=3, first_seed=10)
    _assert_same(straight, resumed)
    _assert_same_state(uninterrupted, straight, second, resumed)


def test_state_dict_is_torch_muons_both_ways() -> None:
    """Same keys and buffers as torch's Muon, plus 'flatten'; a torch Muon checkpoint resumes in BatchedMuon."""
    ref = _params(SHAPE_SETS["mixed"])
    ours = _twin(ref)
    torch_muon, batched = torch.optim.Muon(ref, lr=0.02), BatchedMuon(ours, lr=0.02)
    _run([torch_muon, batched], [ref, ours], steps=2)
    theirs, mine = torch_muon.state_dict(), batched.state_dict()
    assert set(mine["param_groups"][0]) == set(theirs["param_groups"][0]) | {"flatten"}
    assert mine["state"].keys() == theirs["state"].keys()
    for key in theirs["state"]:
        assert torch.equal(mine["state"][key]["momentum_buffer"], theirs["state"][key]["momentum_buffer"])
    switched = _twin(ref)
    from_torch = BatchedMuon(switched, lr=0.02)
    from_torch.load_state_dict(copy.deepcopy(theirs))
    assert from_torch.param_groups[0]["flatten"] is False
    _run([torch_muon, from_torch], [ref, switched], steps=2, first_seed=20)
    _assert_same(ref, switched)


def test_a_parameter_without_grad_is_skipped() -> None:
    ref = _params([(16, 16), (16, 16), (24, 8)])
    ours = _twin(ref)
    torch_muon, batched = torch.optim.Muon(ref, lr=0.02), BatchedMuon(ours, lr=0.02)
    before = ours[1].detach().clone()
    for step in range(3):
        _set_grads([ref, ours], step)
        ref[1].grad = ours[1].grad = None
        torch_muon.step()
        batched.step()
    _assert_same(ref, ours)
    assert torch.equal(ours[1], before) and ours[1] not in batched.state
    batched.zero_grad()
    assert batched.step() is None  # no grad at all: nothing changes
    _assert_same(ref, ours)


def test_sparse_grad_and_complex_parameter_fail_as_in_torch() -> None:
    for make in (torch.optim.Muon, BatchedMuon):
        p = torch.zeros(4, 4, requires_grad=True)
        p.grad = torch.eye(4).to_sparse()
        with pytest.raises(RuntimeError, match="Muon does not support sparse gradients"):
            make([p]).step()
        c = torch.zeros(4, 4, dtype=torch.complex64, requires_grad=True)
        c.grad = torch.ones_like(c)
        with pytest.raises(RuntimeError, match="Muon does not support complex parameters"):
            make([c]).step()


def test_signature_is_torch_muons_plus_flatten() -> None:
    theirs = inspect.signature(torch.optim.Muon).parameters
    mine = inspect.signature(BatchedMuon).parameters
    assert list(mine) == [*theirs, "flatten"]
    for name, parameter in theirs.items():
        assert mine[name].default == parameter.default, name
    assert mine["flatten"].default is False


@pytest.mark.parametrize("kwargs", [
    dict(lr=-1.0), dict(lr=torch.tensor([0.1, 0.2])), dict(momentum=-0.1), dict(weight_decay=-0.1),
    dict(adjust_lr_fn="rms"),
], ids=["lr", "tensor-lr", "momentum", "weight_decay", "adjust_lr_fn"])
def test_bad_arguments_are_value_errors_as_in_torch(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        torch.optim.Muon(_params([(4, 4)]), **kwargs)
    with pytest.raises(ConfigError, match=next(iter(kwargs))) as info:
        BatchedMuon(_params([(4, 4)]), **kwargs)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("kwargs", [dict(ns_steps=100), dict(ns_coefficients=(1.0, 2.0))],
                         ids=["ns_steps", "ns_coefficients"])
def test_values_torch_refuses_at_the_first_step_are_refused_at_construction(kwargs: dict[str, Any]) -> None:
    p = _params([(4, 4)])
    p[0].grad = torch.ones(4, 4)
    with pytest.raises(ValueError):
        torch.optim.Muon(p, **kwargs).step()
    with pytest.raises(ConfigError, match=next(iter(kwargs))):
        BatchedMuon(p, **kwargs)


def test_a_parameter_that_is_not_a_matrix_is_an_error_naming_its_shape_and_the_fix() -> None:
    conv = torch.zeros(8, 3, 3, 3, requires_grad=True)
    with pytest.raises(ValueError):
        torch.optim.Muon([conv])
    with pytest.raises(ConfigError, match=r"params\[1\].*shape \(8, 3, 3, 3\).*flatten=True .* 8 x 27 matrix"):
        BatchedMuon([torch.zeros(2, 2, requires_grad=True), conv])
    with pytest.raises(ConfigError, match=r"shape \(8,\).*another optimizer"):
        BatchedMuon([torch.zeros(8, requires_grad=True)], flatten=True)


def test_add_param_group_checks_and_leaves_the_optimizer_as_it_was() -> None:
    optimizer = BatchedMuon(_params([(4, 4)]), lr=0.02)
    with pytest.raises(ConfigError, match=r"param_groups\[1\] -> params\[0\]"):
        optimizer.add_param_group(dict(params=[torch.zeros(4, 4, 4, requires_grad=True)]))
    with pytest.raises(ConfigError, match=r"param_groups\[1\] -> lr"):
        optimizer.add_param_group(dict(params=_params([(4, 4)]), lr=-1.0))
    assert len(optimizer.param_groups) == 1
    group = dict(params=[torch.zeros(4, 4, 4, requires_grad=True)], flatten=True)
    optimizer.add_param_group(group)
    # the group is the caller's dict, filled with the defaults, as torch's add_param_group does (a composite
    # optimizer relies on it: its param_groups are its children's group dicts)
    assert len(optimizer.param_groups) == 2 and optimizer.param_groups[-1] is group and group["lr"] == 0.02


def _flat_reference(params: list[torch.Tensor], steps: int, **kwargs: Any) -> list[torch.Tensor]:
    """torch's Muon on the 2-D views p.view(p.shape[0], -1), by hand: the flatten path's definition."""
    flat = [p.detach().clone().reshape(p.shape[0], -1).requires_grad_() for p in params]
    optimizer = torch.optim.Muon(flat, **kwargs)
    for step in range(steps):
        g = torch.Generator().manual_seed(1 + step)
        for p in flat:
            p.grad = torch.randn(p.shape, generator=g)
        optimizer.step()
    return [f.detach().reshape(p.shape) for f, p in zip(flat, params, strict=True)]


@pytest.mark.parametrize("adjust_lr_fn", [None, "match_rms_adamw"])
def test_flatten_updates_conv_kernels_as_their_2d_views(adjust_lr_fn: str | None) -> None:
    # conv kernels (wide and tall once flattened), a 2-D matrix beside them and two of one shape
    shapes = [(8, 3, 3, 3), (64, 4, 1, 1), (8, 3, 3, 3), (16, 16), (4, 2, 3)]
    ours = _params(shapes)
    expected = _flat_reference(ours, steps=5, lr=0.02, adjust_lr_fn=adjust_lr_fn)
    batched = BatchedMuon(ours, lr=0.02, adjust_lr_fn=adjust_lr_fn, flatten=True)
    for step in range(5):
        g = torch.Generator().manual_seed(1 + step)
        for p in ours:
            p.grad = torch.randn(p.shape[0], p[0].numel(), generator=g).reshape(p.shape)
        batched.step()
    _assert_same([p.detach() for p in ours], expected)
    assert batched.state[ours[0]]["momentum_buffer"].shape == (8, 3, 3, 3)


def test_flatten_takes_channels_last_kernels() -> None:
    p = torch.randn(8, 3, 3, 3).to(memory_format=torch.channels_last).requires_grad_()
    expected = _flat_reference([p], steps=2, lr=0.02)
    batched = BatchedMuon([p], lr=0.02, flatten=True)
    for step in range(2):
        g = torch.Generator().manual_seed(1 + step)
        p.grad = torch.randn(8, 27, generator=g).reshape(p.shape).to(memory_format=torch.channels_last)
        batched.step()
    _assert_same([p.detach()], expected)


def test_registered_and_built_from_a_config() -> None:
    assert OPTIMIZERS.get("BatchedMuon") is BatchedMuon
    model = nn.Sequential(nn.Linear(8, 16, bias=False), nn.Linear(16, 8, bias=False))
    optimizer = build_optimizer(model, dict(type="BatchedMuon", lr=0.02, adjust_lr_fn="match_rms_adamw"))
    assert isinstance(optimizer, BatchedMuon)
    assert optimizer.param_groups[0]["param_names"] == ["0.weight", "1.weight"]
    with pytest.raises(ConfigError, match=r"adjust_lr_fn.*'original'"):
        build_optimizer(model, dict(type="BatchedMuon", lr=0.02, adjust_lr_fn="orignal"))


def test_a_deep_copy_steps_as_the_original() -> None:
    # torch's __getstate__ keeps defaults, state and groups only: the copy makes its own workspace
    ref = _params(SHAPE_SETS["mixed"])
    ours = _twin(ref)
    torch_muon, batched = torch.optim.Muon(ref, lr=0.02), BatchedMuon(ours, lr=0.02)
    _run([torch_muon, batched], [ref, ours], steps=1)
    copied = copy.deepcopy(batched)
    theirs = [p for group in copied.param_groups for p in group["params"]]
    _run([torch_muon, copied], [ref, theirs], steps=2, first_seed=5)
    _assert_same(ref, theirs)


def test_bf16_without_nesterov_keeps_the_momentum_buffer_torch_overwrites() -> None:
    # torch's Muon orthogonalizes `buf.bfloat16()`, which for a bf16 buffer is the buffer itself, and divides
    # it by its norm in place; BatchedMuon copies the update into its stack and leaves the buffer as momentum
    ours = _params([(16, 16)], dtype=torch.bfloat16)
    ref = _twin(ours)
    batched = BatchedMuon(ours, lr=0.02, nesterov=False)
    torch_muon = torch.optim.Muon(ref, lr=0.02, nesterov=False)
    grad = torch.full((16, 16), 3.0, dtype=torch.bfloat16)
    ours[0].grad, ref[0].grad = grad.clone(), grad.clone()
    batched.step()
    torch_muon.step()
    expected = torch.zeros_like(grad).lerp_(grad, 1 - 0.95)  # one step of the momentum recurrence
    assert torch.equal(batched.state[ours[0]]["momentum_buffer"], expected)
    assert not torch.equal(torch_muon.state[ref[0]]["momentum_buffer"], expected)
