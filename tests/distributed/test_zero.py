"""ZeRO from mmengine's spelling: paramwise's groups intact, 2 ranks equal one process, state saved and loaded by name.

One spawn of 2 gloo ranks does the distributed checks and returns plain values; the test process
computes the single-process reference and asserts. Errors without a process group need no spawn.
"""

from __future__ import annotations

import io
import warnings
from typing import Any

import pytest
import torch
import torch.distributed as dist
from torch import nn

from distributed.harness import run_ranks
from paramwise import build_optimizer, last_load_report
from paramwise.errors import ConfigError, ParamwiseError

PARAMWISE_CFG = dict(norm_decay_mult=0.0, bias_lr_mult=2.0, custom_keys={"head": dict(lr_mult=0.5)})
ZERO = dict(type="ZeroRedundancyOptimizer", optimizer_type="AdamW", lr=1e-2, weight_decay=0.05,
            paramwise_cfg=PARAMWISE_CFG)
PLAIN = dict(type="AdamW", lr=1e-2, weight_decay=0.05, paramwise_cfg=PARAMWISE_CFG)
# at load: other groups (no bias rule) and another lr, so the saved state must move by name
CHANGED = dict(ZERO, lr=3e-3, paramwise_cfg=dict(norm_decay_mult=0.0, custom_keys={"head": dict(lr_mult=0.5)}))
STEPS = 3


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 12), nn.LayerNorm(12), nn.ReLU(), nn.Sequential(nn.Linear(12, 12)),
                         nn.Linear(12, 3)).requires_grad_(True)


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = _model()
        self.head = nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def _batches() -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(1)
    return [(torch.randn(8, 6, generator=g), torch.randn(8, 2, generator=g)) for _ in range(STEPS)]


def _groups(optimizer: torch.optim.Optimizer) -> list[tuple[float, float, list[str]]]:
    return [(g["lr"], g["weight_decay"], list(g["param_names"])) for g in optimizer.param_groups]


def _train(model: nn.Module, optimizer: torch.optim.Optimizer, rank: int, world_size: int) -> None:
    for x, y in _batches():
        share = slice(rank * len(x) // world_size, (rank + 1) * len(x) // world_size)
        optimizer.zero_grad()
        nn.functional.mse_loss(model(x[share]), y[share]).backward()
        optimizer.step()


def _state_by_name(state_dict: dict[str, Any]) -> dict[str, dict[str, torch.Tensor]]:
    names = [n for g in state_dict["param_groups"] for n in g["param_names"]]
    ids = [i for g in state_dict["param_groups"] for i in g["params"]]
    return {n: {k: v.clone() for k, v in state_dict["state"][i].items()} for n, i in zip(names, ids)
            if i in state_dict["state"]}


def _owned(zero: torch.optim.Optimizer) -> dict[str, dict[str, torch.Tensor]]:
    """The state this rank's share holds, by name."""
    names = {id(p): n for g in zero.param_groups for p, n in zip(g["params"], g["param_names"])}
    return {names[id(p)]: {k: v.clone() for k, v in zero.optim.state[p].items()}  # type: ignore[attr-defined]
            for g in zero.optim.param_groups for p in g["params"]}  # type: ignore[attr-defined]


def _zero_ranks(rank: int, world_size: int) -> dict[str, Any]:
    """Build, train, save (consolidated on rank 0) and load (regrouped, into ZeRO again) on every rank."""
    model = _Net()
    ddp = nn.parallel.DistributedDataParallel(model)
    zero = build_optimizer(ddp, ZERO)
    groups = _groups(zero)
    local = [list(g["param_names"]) for g in zero.optim.param_groups]
    local_ok = all(len(g["param_names"]) == len(g["params"]) for g in zero.optim.param_groups)
    _train(ddp, zero, rank, world_size)
    saved = zero.state_dict()  # every rank calls it: it gathers the shards to rank 0
    buffer = io.BytesIO()
    torch.save(saved, buffer)
    blob = [buffer.getvalue() if rank == 0 else None]
    dist.broadcast_object_list(blob, src=0)
    loaded_sd = torch.load(io.BytesIO(blob[0]), weights_only=True)
    # load by name into a ZeRO built from a changed config (other groups, another lr)
    fresh = build_optimizer(nn.parallel.DistributedDataParallel(_Net()), CHANGED)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fresh.load_state_dict(loaded_sd)
    report = last_load_report(fresh)
    owned = _owned(fresh)
    # a plain optimizer's checkpoint (one process) loads into ZeRO by name too
    plain = _reference()[1]
    from_plain = build_optimizer(nn.parallel.DistributedDataParallel(_Net()), ZERO)
    from_plain.load_state_dict(plain.state_dict())
    return {
        "from_plain": _owned(from_plain),
        "groups": groups,
        "local": local,
        "local_ok": local_ok,
        "params": {n: p.detach().clone() for n, p in model.named_parameters()},
        "saved": blob[0] if rank == 0 else saved,
        "fresh_groups": _groups(fresh),
        "owned": owned,
        "report_changes": None if report is None else len(report.lines()),
        "warned": [str(w.message) for w in caught],
    }


@pytest.fixture(scope="module")
def ranks() -> list[dict[str, Any]]:
    return run_ranks(_zero_ranks, 2)


def _reference() -> tuple[nn.Module, torch.optim.Optimizer]:
    model = _Net()
    optimizer = build_optimizer(model, PLAIN)
    _train(model, optimizer, 0, 1)
    return model, optimizer


def test_zero_keeps_paramwise_groups(ranks: list[dict[str, Any]]) -> None:
    plain = _groups(build_optimizer(_Net(), PLAIN))
    assert len(plain) > 2  # the config makes several groups, with several lrs and decays
    for result in ranks:
        assert result["groups"] == plain
    # each rank holds a share; together every parameter once, each local group named by its own tensors
    assert all(r["local_ok"] for r in ranks)
    held = [n for r in ranks for g in r["local"] for n in g]
    assert sorted(held) == sorted(n for _, _, names in plain for n in names)
    assert all(any(g for g in r["local"]) for r in ranks)


def test_two_ranks_equal_the_unsharded_run(ranks: list[dict[str, Any]]) -> None:
    model, optimizer = _reference()
    for result in ranks:
        for name, param in model.named_parameters():
            torch.testing.assert_close(result["params"][name], param.detach(), rtol=1e-5, atol=1e-6)
    saved = torch.load(io.BytesIO(ranks[0]["saved"]), weights_only=True)
    expected = _state_by_name(optimizer.state_dict())
    got = _state_by_name(saved)
    assert got.keys() == expected.keys()
    for name, state in expected.items():
        for key, value in state.items():
            torch.testing.assert_close(got[name][key], value, rtol=1e-5, atol=1e-6)
    assert ranks[1]["saved"] == {}  # mmengine's: the whole state on rank 0 only


def test_saved_state_loads_by_name_into_zero_and_into_a_plain_optimizer(ranks: list[dict[str, Any]]) -> None:
    saved = torch.load(io.BytesIO(ranks[0]["saved"]), weights_only=True)
    by_name = _state_by_name(saved)
    # into ZeRO again (regrouped, another lr): each rank holds its share, by name, at the config's lr
    for result in ranks:
        assert {lr for lr, _, _ in result["fresh_groups"]} <= {3e-3, 1.5e-3}
        assert result["owned"]
        for name, state in result["owned"].items():
            for key, value in state.items():
                torch.testing.assert_close(value, by_name[name][key])
        assert result["report_changes"] and result["warned"]  # the changed lr and groups are reported
    assert sorted(n for r in ranks for n in r["owned"]) == sorted(by_name)
    # a plain optimizer's state into ZeRO: each rank's share holds it, by name
    reference = _state_by_name(_reference()[1].state_dict())
    assert sorted(n for r in ranks for n in r["from_plain"]) == sorted(reference)
    for result in ranks:
        for name, state in result["from_plain"].items():
            for key, value in state.items():
                torch.testing.assert_close(value, reference[name][key])
    # into a plain optimizer built from the plain config: the same state by name
    plain = build_optimizer(_Net(), PLAIN)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain.load_state_dict(saved)
    loaded = _state_by_name(plain.state_dict())
    for name, state in by_name.items():
        for key, value in state.items():
            torch.testing.assert_close(loaded[name][key], value)


def test_zero_without_a_process_group_names_init_process_group() -> None:
    assert not dist.is_initialized()
    with pytest.raises(ParamwiseError, match=r"torch\.distributed\.init_process_group"):
        build_optimizer(_Net(), ZERO)


def test_local_optimizer_arguments_are_checked_at_their_paths() -> None:
    with pytest.raises(ConfigError, match="momentum") as info:
        build_optimizer(_Net(), dict(ZERO, momentum=0.9))
    assert any(p.path[-1] == "momentum" for p in info.value.problems)
    with pytest.raises(ConfigError, match="optimizer_type") as info:
        build_optimizer(_Net(), dict(ZERO, optimizer_type="AdamWW"))
    assert "AdamW" in str(info.value)  # did you mean
