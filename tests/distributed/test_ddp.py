"""DDP: the plan after wrapping is the plan before (the model's own names), the same on every rank, and 2 ranks
train exactly as one process on the whole batch, through ``build_optimizer`` and the wrapper (no_sync on
accumulation steps).

One spawn of 2 gloo ranks runs every check and returns plain values; the test process computes the
single-process reference and asserts.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.distributed as dist
from torch import nn

from distributed.harness import run_ranks
from paramwise import build_optim_wrapper, build_optimizer, plan_params

CFG = dict(type="AdamW", lr=1e-2, weight_decay=0.05,
           paramwise_cfg=dict(norm_decay_mult=0.0, bias_lr_mult=2.0, custom_keys={"head": dict(lr_mult=0.5)}))
WRAPPER = dict(type="OptimWrapper", optimizer=dict(type="SGD", lr=0.1, momentum=0.9), accumulative_counts=2,
               paramwise_cfg=dict(bias_lr_mult=2.0))
STEPS = 3
MICRO = 4  # wrapper iterations: two windows of accumulative_counts=2


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Linear(6, 12), nn.LayerNorm(12), nn.ReLU(), nn.Linear(12, 3))
        self.head = nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def _batches(count: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(1)
    return [(torch.randn(8, 6, generator=g), torch.randn(8, 2, generator=g)) for _ in range(count)]


def _share(t: torch.Tensor, rank: int, world_size: int) -> torch.Tensor:
    return t[rank * len(t) // world_size:(rank + 1) * len(t) // world_size]


def _summary(plan: Any) -> list[tuple[Any, ...]]:
    """Each group in order: its hyperparameters and its parameters' names."""
    return [(sorted((k, repr(v)) for k, v in g.hyperparams.items()), [plan.entries[i].name for i in g.members])
            for g in plan.groups]


def _optimizer_summary(optimizer: torch.optim.Optimizer) -> list[tuple[float, float, list[str]]]:
    return [(g["lr"], g["weight_decay"], list(g["param_names"])) for g in optimizer.param_groups]


def _state(optimizer: torch.optim.Optimizer) -> dict[str, dict[str, torch.Tensor]]:
    return {n: {k: v.clone() for k, v in optimizer.state[p].items()}
            for g in optimizer.param_groups for p, n in zip(g["params"], g["param_names"])}


def _train(model: nn.Module, optimizer: torch.optim.Optimizer, rank: int, world_size: int) -> None:
    for x, y in _batches(STEPS):
        optimizer.zero_grad()
        nn.functional.mse_loss(model(_share(x, rank, world_size)), _share(y, rank, world_size)).backward()
        optimizer.step()


def _train_wrapper(model: nn.Module, wrapper: Any, rank: int, world_size: int) -> list[bool]:
    """Train through the wrapper; per iteration, whether the ranks' gradients were equal after backward."""
    synced = []
    for x, y in _batches(MICRO):
        with wrapper.optim_context(model):
            loss = nn.functional.mse_loss(model(_share(x, rank, world_size)), _share(y, rank, world_size))
        wrapper.backward(wrapper.scale_loss(loss))
        synced.append(_grads_equal(model) if world_size > 1 else True)
        if wrapper.should_update():
            wrapper.step()
            wrapper.zero_grad()
    return synced


def _grads_equal(model: nn.Module) -> bool:
    flat = torch.cat([p.grad.flatten() for p in model.parameters()])
    gathered = [torch.empty_like(flat) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, flat)
    return all(torch.equal(gathered[0], t) for t in gathered[1:])


def _ddp_ranks(rank: int, world_size: int) -> dict[str, Any]:
    model = _Net()
    before = _summary(plan_params(model, CFG))
    ddp = nn.parallel.DistributedDataParallel(model)
    after = _summary(plan_params(ddp, CFG))
    every_rank: list[Any] = [None] * world_size
    dist.all_gather_object(every_rank, after)
    optimizer = build_optimizer(ddp, CFG)
    groups = _optimizer_summary(optimizer)
    _train(ddp, optimizer, rank, world_size)
    params = {n: p.detach().clone() for n, p in model.named_parameters()}
    # the wrapper: accumulation windows of 2, DDP's all-reduce skipped (no_sync) on the first of each
    wrapped = _Net()
    wrapped_ddp = nn.parallel.DistributedDataParallel(wrapped)
    entered = []
    no_sync = wrapped_ddp.no_sync
    wrapped_ddp.no_sync = lambda: (entered.append(True), no_sync())[1]  # type: ignore[method-assign]
    wrapper = build_optim_wrapper(wrapped_ddp, WRAPPER)
    synced = _train_wrapper(wrapped_ddp, wrapper, rank, world_size)
    return {
        "before": before, "after": after, "every_rank": every_rank, "groups": groups,
        "params": params, "state": _state(optimizer),
        "wrapper_params": {n: p.detach().clone() for n, p in wrapped.named_parameters()},
        "wrapper_state": _state(wrapper.optimizer), "no_sync": len(entered), "synced": synced,
    }


@pytest.fixture(scope="module")
def ranks() -> list[dict[str, Any]]:
    return run_ranks(_ddp_ranks, 2)


def _close(got: dict[str, Any], expected: dict[str, Any]) -> None:
    assert got.keys() == expected.keys()
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


def test_plan_after_wrapping_is_the_plan_before_on_every_rank(ranks: list[dict[str, Any]]) -> None:
    single = _summary(plan_params(_Net(), CFG))
    assert len(single) > 2
    for result in ranks:
        assert result["before"] == result["after"] == single  # no 'module.' in any name
        assert result["every_rank"] == [single] * len(ranks)
        assert result["groups"] == [(lr, wd, names) for lr, wd, names in _optimizer_summary(
            build_optimizer(_Net(), CFG))]


def test_two_ranks_equal_one_process_on_the_whole_batch(ranks: list[dict[str, Any]]) -> None:
    model = _Net()
    optimizer = build_optimizer(model, CFG)
    _train(model, optimizer, 0, 1)
    expected = {n: p.detach() for n, p in model.named_parameters()}
    for result in ranks:
        _close(result["params"], expected)
        _close(result["state"], _state(optimizer))
    _close(ranks[1]["params"], ranks[0]["params"])


def test_wrapper_accumulates_without_all_reduce_and_equals_one_process(ranks: list[dict[str, Any]]) -> None:
    model = _Net()
    wrapper = build_optim_wrapper(model, WRAPPER)
    _train_wrapper(model, wrapper, 0, 1)
    for result in ranks:
        assert result["no_sync"] == MICRO // 2  # the first iteration of each window of 2
        # after a no_sync backward each rank holds its own half's gradient; after the last of a window, the mean
        assert result["synced"] == [False, True, False, True]
        _close(result["wrapper_params"], {n: p.detach() for n, p in model.named_parameters()})
        _close(result["wrapper_state"], _state(wrapper.optimizer))
