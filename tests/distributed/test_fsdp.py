"""FSDP2 (``fully_shard``) and Muon on sharded matrices, on 2 gloo ranks (issue 19).

Two spawns in the normal run: one for the plan, the groups and AdamW steps (fully and partly sharded,
and a model sharded after its optimizer was built), one for Muon (paramwise's BatchedMuon, torch's
Muon and the hybrid routes) on Shard(0) matrices. Each rank computes its single-process reference
itself and returns plain values; the asserts run here.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
from torch import nn

import paramwise
from distributed.harness import run_ranks
from gpt_like import GPT, MUON_CONFIG
from paramwise.errors import ModelChangedError
from paramwise.muon import BatchedMuon

STEPS = 3
LAYERS = 2
# optimizer classes, not names: a name's first lookup imports every installed optimizer library (seconds per rank)
ADAMW = dict(type=torch.optim.AdamW, lr=1e-2, weight_decay=0.1, foreach=True,
             paramwise_cfg=dict(norm_decay_mult=0.0, bias_lr_mult=2.0, custom_keys={"lm_head": dict(lr_mult=0.5)}))


def _batch(vocab: int = 64) -> torch.Tensor:
    return torch.randint(0, vocab, (2, 6), generator=torch.Generator().manual_seed(1))


def _shard(model: GPT, mesh: Any, blocks: bool = True, root: bool = True) -> GPT:
    from torch.distributed.fsdp import fully_shard

    if blocks:
        for block in model.blocks:
            fully_shard(block, mesh=mesh)
    if root:
        fully_shard(model, mesh=mesh)
    return model


def _plan_values(model: nn.Module, cfg: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    plan = paramwise.plan_params(model, cfg)
    return [(e.name, {k: float(v) for k, v in sorted(e.hyperparams.items()) if isinstance(v, float)})
            for e in plan.entries]


def _kinds(optimizer: torch.optim.Optimizer) -> list[list[str]]:
    """Each group's tensor kinds: 'plain', or 'DTensor' with its placements."""
    return [sorted({"plain" if not hasattr(p, "placements") else f"DTensor{tuple(p.placements)}" for p in g["params"]})
            for g in optimizer.param_groups]


def _train(model: nn.Module, optimizer: torch.optim.Optimizer, steps: int = STEPS) -> None:
    for _ in range(steps):
        optimizer.zero_grad()
        model(_batch()).float().pow(2).mean().backward()
        optimizer.step()


def _full(t: torch.Tensor) -> torch.Tensor:
    return t.full_tensor() if hasattr(t, "full_tensor") else t  # type: ignore[no-any-return]


def _max_diff(model: nn.Module, reference: nn.Module) -> float:
    ref = dict(reference.named_parameters())
    return max((_full(p.detach()) - ref[n].detach()).abs().max().item() for n, p in model.named_parameters())


def _fsdp_adamw(rank: int, world_size: int) -> dict[str, Any]:
    """Plans, groups and AdamW steps on a fully and a partly sharded GPT; a model sharded after the build."""
    from torch.distributed.device_mesh import init_device_mesh

    mesh = init_device_mesh("cpu", (world_size,))
    out: dict[str, Any] = {"unsharded_plan": _plan_values(GPT(layers=LAYERS), ADAMW)}
    reference = GPT(layers=LAYERS)
    _train(reference, paramwise.build_optimizer(reference, ADAMW))
    for label, blocks, root in (("full", True, True), ("partly", True, False)):
        model = _shard(GPT(layers=LAYERS), mesh, blocks=blocks, root=root)
        out[f"{label}_plan"] = _plan_values(model, ADAMW)
        optimizer = paramwise.build_optimizer(model, ADAMW)
        out[f"{label}_kinds"] = _kinds(optimizer)
        _train(model, optimizer)  # foreach=True: a group mixing DTensors and plain tensors fails here
        out[f"{label}_diff"] = _max_diff(model, reference)
        out[f"{label}_moved"] = _max_diff(GPT(layers=LAYERS), reference)  # the reference did train
    late = GPT(layers=LAYERS)
    optimizer = paramwise.build_optimizer(late, ADAMW)
    _shard(late, mesh)
    late(_batch()).float().pow(2).mean().backward()
    try:
        optimizer.step()
        out["late"] = None
    except ModelChangedError as e:
        out["late"] = str(e)
    return out


@pytest.fixture(scope="module")
def adamw_run() -> list[dict[str, Any]]:
    return run_ranks(_fsdp_adamw, 2)


def test_the_sharded_plan_has_the_unsharded_names_and_values(adamw_run: list[dict[str, Any]]) -> None:
    for result in adamw_run:
        assert len(result["unsharded_plan"]) == len(GPT(layers=LAYERS).state_dict())
        assert result["full_plan"] == result["unsharded_plan"]
        assert result["partly_plan"] == result["unsharded_plan"]


def test_groups_never_mix_dtensors_and_plain_tensors(adamw_run: list[dict[str, Any]]) -> None:
    for result in adamw_run:
        assert all(len(kinds) == 1 for kinds in result["full_kinds"] + result["partly_kinds"])
        assert {k[0] for k in result["full_kinds"]} == {"DTensor(Shard(dim=0),)"}
        # partly sharded: the blocks are DTensors, the root's own parameters plain; same hyperparameters split
        assert {k[0] for k in result["partly_kinds"]} == {"DTensor(Shard(dim=0),)", "plain"}
        assert len(result["partly_kinds"]) > len(result["full_kinds"])


def test_adamw_steps_on_fsdp2_equal_the_unsharded_run(adamw_run: list[dict[str, Any]]) -> None:
    for result in adamw_run:
        assert result["full_moved"] > 1e-3
        assert result["full_diff"] < 1e-5
        assert result["partly_diff"] < 1e-5


def test_a_model_sharded_after_the_build_fails_at_the_first_step(adamw_run: list[dict[str, Any]]) -> None:
    for result in adamw_run:
        message = result["late"]
        assert message is not None and "sharded after the optimizer was built" in message
        assert "Shard the model first" in message and "'tok.weight'" in message


MUON_SHAPES = [(16, 16), (40, 24), (24, 40), (5, 7), (7, 5), (6, 3, 3, 3)]


def _muon(rank: int, world_size: int) -> dict[str, Any]:
    """BatchedMuon, torch's Muon and the hybrid routes on Shard(0) matrices against the full matrices."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import Shard, distribute_tensor
    from torch.distributed.tensor.debug import CommDebugMode

    mesh = init_device_mesh("cpu", (world_size,))
    out: dict[str, Any] = {}
    generator = torch.Generator().manual_seed(0)
    weights = [torch.randn(s, generator=generator) for s in MUON_SHAPES]
    for label, cls, kwargs in (("batched", BatchedMuon, {"flatten": True}), ("torch", torch.optim.Muon, {})):
        shapes = [w for w in weights if w.ndim == 2 or kwargs]
        sharded = [nn.Parameter(distribute_tensor(w, mesh, [Shard(0)])) for w in shapes]
        full = [nn.Parameter(w.clone()) for w in shapes]
        opt, ref = cls(sharded, lr=0.02, **kwargs), cls(full, lr=0.02, **kwargs)
        counts: dict[str, int] = {}
        for _ in range(STEPS):
            for p, q in zip(sharded, full, strict=True):
                grad = torch.randn(q.shape, generator=generator)
                p.grad, q.grad = distribute_tensor(grad, mesh, [Shard(0)]), grad
            with CommDebugMode() as comm:
                opt.step()
            ref.step()
            counts = {str(k).rsplit(".", 1)[-1]: v for k, v in comm.get_comm_counts().items()}
        out[label] = {
            "diff": [(p.full_tensor() - q).abs().max().item() for p, q in zip(sharded, full, strict=True)],
            "moved": [(q - w).abs().max().item() for q, w in zip(full, shapes, strict=True)],
            "local_rows": [p.to_local().shape[0] for p in sharded],
            "momentum_sharded": all(hasattr(opt.state[p]["momentum_buffer"], "placements") for p in sharded),
            "comm": counts,
        }
    for muon_type in (BatchedMuon, torch.optim.Muon):
        route = dict(params="hidden_matrices", optimizer=dict(MUON_CONFIG, type=muon_type))
        cfg = dict(type=torch.optim.AdamW, lr=3e-4, betas=(0.9, 0.95), weight_decay=0.1,
                   paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0, routes=[route]))
        reference = GPT(layers=LAYERS)
        _train(reference, paramwise.build_optimizer(reference, cfg))
        model = _shard(GPT(layers=LAYERS), mesh)
        _train(model, paramwise.build_optimizer(model, copy.deepcopy(cfg)))
        out[f"hybrid_{muon_type.__name__}"] = _max_diff(model, reference)
    return out


@pytest.fixture(scope="module")
def muon_run() -> list[dict[str, Any]]:
    return run_ranks(_muon, 2)


def test_batched_muon_on_sharded_matrices_equals_the_full_matrix_update(muon_run: list[dict[str, Any]]) -> None:
    for rank, result in enumerate(muon_run):
        batched = result["batched"]
        assert min(batched["moved"]) > 1e-3
        assert batched["diff"] == [0.0] * len(MUON_SHAPES)  # bit for bit: Newton-Schulz ran on the full matrix
        assert batched["local_rows"] == [(s[0] + 1 - rank) // 2 for s in MUON_SHAPES]  # really sharded (5 -> 3 + 2)
        assert batched["momentum_sharded"]
        # one all-gather per matrix per step, nothing else
        assert batched["comm"] == {"all_gather_into_tensor": len(MUON_SHAPES)}


def test_torch_muon_on_sharded_matrices_is_the_full_update_within_bf16(muon_run: list[dict[str, Any]]) -> None:
    for result in muon_run:
        muon = result["torch"]
        assert min(muon["moved"]) > 1e-3
        # DTensor's own ops: the same update up to bf16 rounding (partial sums reduced in another order)
        assert max(d / m for d, m in zip(muon["diff"], muon["moved"], strict=True)) < 0.1
        assert muon["momentum_sharded"]
        # DTensor's sharding propagation communicates inside Newton-Schulz: an all-reduce for the norm, then
        # two all-reduces (tall) or three all-gathers (wide, square) per iteration, per matrix
        assert sum(muon["comm"].values()) >= 11 * (len(MUON_SHAPES) - 1)


def test_hybrid_routes_on_fsdp2_equal_the_unsharded_run(muon_run: list[dict[str, Any]]) -> None:
    for result in muon_run:
        assert result["hybrid_BatchedMuon"] < 1e-5
        assert result["hybrid_Muon"] < 1e-2  # torch's Muon: bf16 rounding of a different reduction order


def test_parameters_replaced_after_the_build_fail_at_the_first_step() -> None:
    model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2))
    optimizer = paramwise.build_optimizer(model, dict(type=torch.optim.SGD, lr=0.1))
    model[0].weight = nn.Parameter(model[0].weight.detach().clone())
    model(torch.ones(1, 4)).sum().backward()
    stale = r"1 of the optimizer's parameters is no longer the model's \('0.weight'\)"
    with pytest.raises(ModelChangedError, match=stale):
        optimizer.step()
    before = model[1].weight.detach().clone()
    with pytest.raises(ModelChangedError):  # every step, until the optimizer is rebuilt
        optimizer.step()
    assert torch.equal(model[1].weight, before)


def test_the_check_runs_at_the_first_step_only() -> None:
    model = nn.Linear(4, 2)
    optimizer = paramwise.build_optimizer(model, dict(type=torch.optim.SGD, lr=0.1))
    hooks = len(optimizer._optimizer_step_pre_hooks)
    model(torch.ones(1, 4)).sum().backward()
    optimizer.step()
    assert len(optimizer._optimizer_step_pre_hooks) == hooks - 1  # gone: later steps pay nothing


def test_parameters_added_from_elsewhere_are_not_a_changed_model() -> None:
    model = nn.Linear(4, 2)
    optimizer = paramwise.build_optimizer(model, dict(type=torch.optim.SGD, lr=0.1))
    extra = nn.Parameter(torch.ones(3))
    optimizer.add_param_group({"params": [extra], "param_names": ["loss.scale"]})
    model(torch.ones(1, 4)).sum().backward()
    extra.grad = torch.ones(3)
    optimizer.step()
    assert torch.equal(extra.detach(), torch.full((3,), 0.9))
