"""A torch.compile'd optimizer step under build_scheduler: a tensor lr is written in place, so nothing recompiles.

The benchmark (benchmarks/compiled_schedule.py) measures the same with inductor over 1,000 steps; here
dynamo's CompileCounter backend counts the graphs without inductor's C++ builds, so the test takes seconds.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest
import torch
from torch import nn

import paramwise

STEPS = 20
SCHEDULE = [
    dict(type="LinearLR", start_factor=0.1, by_epoch=False, begin=0, end=5),
    dict(type="CosineAnnealingLR", by_epoch=False, begin=5, end=STEPS, T_max=STEPS - 5),
]


def _dynamo() -> Any:
    """torch._dynamo, or a pytest.skip that says why torch.compile cannot run here."""
    try:
        import torch._dynamo
        from torch._dynamo.testing import CompileCounter  # noqa: F401  (the test's backend)
    except Exception as e:  # pragma: no cover - depends on the platform
        pytest.skip(f"torch.compile is unavailable here: importing torch._dynamo failed ({type(e).__name__}: {e})")
    if not torch._dynamo.is_dynamo_supported():  # pragma: no cover - e.g. a Python version dynamo does not support
        pytest.skip(f"torch.compile is unavailable here: dynamo does not support this platform (torch "
                    f"{torch.__version__})")
    return torch._dynamo


@pytest.fixture
def dynamo() -> Iterator[Any]:
    module = _dynamo()
    module.reset()  # a fresh cache: graphs of other tests' optimizers would count as recompiles
    yield module
    module.reset()


def _model() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
    generator = torch.Generator().manual_seed(1)
    for p in model.parameters():
        p.grad = torch.randn(p.shape, generator=generator)
    return model


def _optimizer(model: nn.Module) -> torch.optim.Optimizer:
    """paramwise's AdamW in two groups (last layer lr_mult=10), each lr then made its own 0-dim tensor.

    foreach=False is the CPU path that takes a tensor lr without capturable=True.
    """
    cfg = dict(type="AdamW", lr=1e-3, weight_decay=0.05, foreach=False,
               paramwise_cfg=dict(custom_keys={"2": dict(lr_mult=10.0)}))
    optimizer = paramwise.build_optimizer(model, cfg)
    for group in optimizer.param_groups:
        group["lr"] = torch.tensor(float(group["lr"]))
    return optimizer


@pytest.mark.slow
def test_tensor_lr_schedule_does_not_recompile_a_compiled_step(dynamo: Any) -> None:
    from torch._dynamo.testing import CompileCounter

    model, twin = _model(), _model()
    optimizer, twin_optimizer = _optimizer(model), _optimizer(twin)
    assert len(optimizer.param_groups) == 2
    schedule = paramwise.build_scheduler(optimizer, SCHEDULE)
    twin_schedule = paramwise.build_scheduler(twin_optimizer, SCHEDULE)
    lr_tensors = [g["lr"] for g in optimizer.param_groups]
    counter = CompileCounter()

    @torch.compile(backend=counter, fullgraph=False)
    def step() -> None:
        optimizer.step()

    frames, held, scheduled = [], [], []
    for _ in range(STEPS):
        step()
        twin_optimizer.step()
        schedule.step()
        twin_schedule.step()
        frames.append(counter.frame_count)
        held.append([float(t) for t in lr_tensors])
        scheduled.append(schedule.values_at(schedule.last_epoch)["lr"])

    assert frames[0] >= 1, "dynamo compiled nothing: the step was not traced, so the count would prove nothing"
    assert frames == [frames[0]] * STEPS, f"recompiled after the first step: graphs per step {frames}"
    assert all(g["lr"] is t for g, t in zip(optimizer.param_groups, lr_tensors)), "the lr tensors were replaced"
    # every value the schedule set went into the same tensors (float32: rel 1e-6)
    for k, (got, want) in enumerate(zip(held, scheduled), start=1):
        assert got == pytest.approx(want, rel=1e-6), f"step {k}"
    assert held[4][0] == pytest.approx(1e-3, rel=1e-6)  # the warmup's end
    cosine = 1e-3 * 0.5 * (1 + math.cos(math.pi * 5 / (STEPS - 5)))  # 5 steps into the cosine
    assert held[9] == pytest.approx([cosine, 10 * cosine], rel=1e-6)  # lr_mult's ratio holds
    # the compiled graph read each step's lr (a graph that kept the first value would drift from the twin)
    with torch.no_grad():
        for p, q in zip(model.parameters(), twin.parameters()):
            torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
