"""``BatchedMuon``: torch's Muon with Newton-Schulz batched over same-shape matrices, and conv kernels.

``torch.optim.Muon`` orthogonalizes one matrix at a time (two small matmuls per iteration, five
iterations, per parameter). A transformer holds dozens of matrices of a few shapes, so this module
stacks the updates of equal shape (after transposing tall ones, as torch does) and runs the iteration
with batched matmuls (``bmm`` / ``baddbmm``) in bf16, torch's numerics otherwise unchanged: the same
coefficients, ``eps``, lr adjustments (``original``, ``match_rms_adamw``), nesterov momentum and
decoupled weight decay with the unadjusted lr. Matrices are batched across param groups too (groups
differ in lr or weight decay, which the iteration does not read), so a plan with a group per layer
still batches. ``flatten=True`` also takes conv kernels and other >2-D weights, updated as
``p.view(p.shape[0], -1)``, as Keller Jordan's Muon does.

Sharded matrices (DTensors: FSDP2's ``fully_shard``, tensor parallel) get the update of the full
matrix: momentum stays sharded, each matrix's bf16 update is gathered (one all-gather per matrix per
step, ``numel x 2`` bytes), Newton-Schulz runs on the full matrix, and each rank keeps its own shard.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from paramwise.errors import ConfigError, InternalError, Problem

__all__ = [
    "ADJUST_LR_FNS",
    "DEFAULT_NS_COEFFICIENTS",
    "DEFAULT_NS_STEPS",
    "EPS",
    "MAX_BATCH_ELEMENTS",
    "BatchedMuon",
    "adjusted_lr",
    "newton_schulz",
]

# torch.optim.Muon's constants (torch/optim/_muon.py, from Keller Jordan's Muon post)
EPS = 1e-7
DEFAULT_NS_COEFFICIENTS: tuple[float, float, float] = (3.4445, -4.7750, 2.0315)
DEFAULT_NS_STEPS = 5
ADJUST_LR_FNS = ("original", "match_rms_adamw")

#: at most this many elements in one stacked batch (128 MiB of bf16): a bucket of many large matrices is
#: split, so the iteration's buffers stay bounded (torch's Muon holds one matrix at a time)
MAX_BATCH_ELEMENTS = 1 << 26


def adjusted_lr(lr: Any, adjust_lr_fn: str | None, shape: Sequence[int]) -> Any:
    """The lr of a matrix of ``shape`` (rows, columns) under ``adjust_lr_fn``, as torch's Muon computes it."""
    rows, cols = shape[0], shape[1]
    if adjust_lr_fn is None or adjust_lr_fn == "original":
        ratio = math.sqrt(max(1, rows / cols))
    elif adjust_lr_fn == "match_rms_adamw":
        ratio = 0.2 * math.sqrt(max(rows, cols))
    else:
        ratio = 1.0
    return lr * ratio


#: On CPU, torch runs a bf16 matmul of m*k*n <= 16**3 with its own gemm, and a larger one (counting the batch,
#: for bmm) with oneDNN; the two round differently. A stack of matrices whose short side is at most 16 has
#: products this small, which torch's Muon computes with its own gemm: they are iterated one by one with
#: torch's 2-D calls, so the result stays bit for bit (they are cheap either way).
_CPU_SMALL_GEMM = 16**3


def newton_schulz(
    stacked: Tensor,
    ns_coefficients: tuple[float, float, float],
    ns_steps: int,
    eps: float,
    buffers: Sequence[Tensor] = (),
) -> Tensor:
    """Orthogonalize each matrix of ``stacked`` (n, rows, cols) with rows <= cols, in bf16, as torch does.

    torch's ``_zeropower_via_newtonschulz`` per matrix, with the matmuls batched. ``stacked`` (bf16) is
    overwritten. Tall matrices come as a transposed view (``.mT`` of their stack), as torch transposes
    them: the first matmuls then read the same memory layout as torch's and pick the same kernels, which
    keeps the result bit for bit on CPU. ``buffers``: the gram (n, rows, rows), its update (same shape)
    and two (n, rows, cols) tensors to reuse (contiguous, not overlapping ``stacked``); allocated here
    when not given.
    """
    a, b, c = ns_coefficients
    x = stacked if stacked.dtype == torch.bfloat16 else stacked.bfloat16()
    # torch divides each matrix by its own norm (a bf16 reduction); per-matrix norms keep that bit for bit
    norms = torch.stack(torch._foreach_norm(list(x.unbind(0)))).clamp_(min=eps)
    x.div_(norms.view(-1, 1, 1))
    if ns_steps == 0:
        return x
    n, rows, _ = x.shape
    if buffers:
        gram, gram_update, out, spare = buffers
    else:
        gram, gram_update = x.new_empty((n, rows, rows)), x.new_empty((n, rows, rows))
        out, spare = x.new_empty(x.shape), x.new_empty(x.shape)  # contiguous, as torch's addmm results are
    batched = x.device.type != "cpu" or rows**3 > _CPU_SMALL_GEMM
    for step in range(ns_steps):
        if batched:
            torch.bmm(x, x.mT, out=gram)
            torch.baddbmm(gram, gram, gram, beta=b, alpha=c, out=gram_update)
            torch.baddbmm(x, gram_update, x, beta=a, out=out)
        else:  # torch's own 2-D calls, matrix by matrix: see _CPU_SMALL_GEMM
            for m, g, u, o in zip(x, gram, gram_update, out, strict=True):
                torch.mm(m, m.T, out=g)
                torch.addmm(g, g, g, beta=b, alpha=c, out=u)
                torch.addmm(m, u, m, beta=a, out=o)
        if step == 0:  # the input is read in this step only: from now on, two contiguous buffers take turns
            x = spare
        x, out = out, x
    return x


def _argument_problems(values: Mapping[str, Any], where: tuple[str, ...]) -> list[Problem]:
    """torch's Muon argument checks (plus its step-time ones, done here, early) as Problems at ``where``."""
    problems = []

    def bad(key: str, message: str) -> None:
        problems.append(Problem((*where, key), message))

    lr = values.get("lr", 0.0)
    if isinstance(lr, Tensor) and lr.numel() != 1:
        bad("lr", f"a tensor lr must hold 1 element, not {lr.numel()}")
    elif not 0.0 <= lr:
        bad("lr", f"the learning rate must be >= 0, not {lr}")
    for key in ("momentum", "weight_decay"):
        if key in values and not 0.0 <= values[key]:
            bad(key, f"must be >= 0, not {values[key]}")
    fn = values.get("adjust_lr_fn")
    if fn is not None and fn not in ADJUST_LR_FNS:
        bad("adjust_lr_fn", f"{fn!r} is not supported: use one of {ADJUST_LR_FNS} or None ('original')")
    steps = values.get("ns_steps", DEFAULT_NS_STEPS)
    if not isinstance(steps, int) or isinstance(steps, bool) or not 0 <= steps < 100:
        bad("ns_steps", f"must be a whole number from 0 to 99 (torch's limit), not {steps!r}")
    coefficients = values.get("ns_coefficients", DEFAULT_NS_COEFFICIENTS)
    if not isinstance(coefficients, Sequence) or len(coefficients) != 3:
        bad("ns_coefficients", f"must be 3 numbers (a, b, c), not {coefficients!r}")
    return problems


def _matrix_problem(param: Tensor, index: int, flatten: bool, where: tuple[str, ...]) -> Problem | None:
    """Why BatchedMuon cannot take ``param`` (as a matrix, or flattened to one), or None."""
    if param.ndim == 2 or (flatten and param.ndim > 2):
        return None
    shape = tuple(param.shape)
    if param.ndim > 2:
        fix = (f"pass flatten=True to update it as a {shape[0]} x {math.prod(shape[1:])} matrix "
               "(conv kernels, as Keller Jordan's Muon does), or give it to another optimizer")
    else:
        fix = "give it to another optimizer (AdamW: biases, norms and other vectors)"
    dims = "flattened to 2-D" if flatten else "2-D"
    return Problem((*where, f"params[{index}]"),
                   f"BatchedMuon updates {dims} matrices only, but this parameter has shape {shape}: {fix}")


class BatchedMuon(torch.optim.Optimizer):
    """``torch.optim.Muon`` with batched Newton-Schulz over same-shape matrices, and ``flatten`` for >2-D.

    Takes torch's Muon arguments with the same defaults and checks (a bad value is a ``ConfigError``,
    which is a ``ValueError`` as torch's is) and gives torch's results: bit for bit on CPU, where the
    batched bf16 matmuls use the same kernels, else within bf16 rounding. ``flatten=True`` updates a
    >2-D parameter (a conv kernel) as the matrix ``p.view(p.shape[0], -1)``, whose shape also sets
    the adjusted lr; without it such a parameter is an error naming its shape.
    """

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        lr: float | Tensor = 1e-3,
        weight_decay: float = 0.1,
        momentum: float = 0.95,
        nesterov: bool = True,
        ns_coefficients: tuple[float, float, float] = DEFAULT_NS_COEFFICIENTS,
        eps: float = EPS,
        ns_steps: int = DEFAULT_NS_STEPS,
        adjust_lr_fn: str | None = None,
        flatten: bool = False,
    ) -> None:
        defaults = {
            "lr": lr,
            "weight_decay": weight_decay,
            "momentum": momentum,
            "nesterov": nesterov,
            "ns_coefficients": ns_coefficients,
            "eps": eps,
            "ns_steps": ns_steps,
            "adjust_lr_fn": adjust_lr_fn,
            "flatten": flatten,
        }
        problems = _argument_problems(defaults, ())
        if problems:
            raise ConfigError(problems, title="BatchedMuon: invalid argument")
        self._workspace = _Workspace()
        super().__init__(params, defaults)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group after checking its values and that each parameter is a matrix (or flattens to one)."""
        index = len(self.param_groups)
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        where = (f"param_groups[{index}]",)
        problems = _argument_problems(group, where)
        problems += [p for i, param in enumerate(group["params"])
                     if (p := _matrix_problem(param, i, group["flatten"], where)) is not None]
        if problems:
            self.param_groups.pop()  # leave the optimizer as it was before the call
            raise ConfigError(problems, title="BatchedMuon: invalid parameter group")

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        if "_workspace" not in self.__dict__:  # unpickled or deep-copied: torch's __getstate__ leaves it out
            self._workspace = _Workspace()
        for group in self.param_groups:  # a state saved by torch's Muon has no 'flatten'
            group.setdefault("flatten", self.defaults.get("flatten", False))

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """One Muon step for every group; Newton-Schulz runs once per shape over all groups."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        jobs: list[_Job] = []
        for group in self.param_groups:
            jobs += self._momentum_updates(group)
        buckets: dict[tuple[Any, ...], list[_Job]] = {}
        for job in jobs:
            buckets.setdefault(job.bucket, []).append(job)
        for bucket in buckets.values():
            _orthogonalize_and_apply(bucket, self._workspace)
        return loss

    def _momentum_updates(self, group: dict[str, Any]) -> list[_Job]:
        """Update the momentum buffers of ``group``'s parameters with grads; return their matrix updates."""
        params: list[Tensor] = []
        grads: list[Tensor] = []
        bufs: list[Tensor] = []
        for p in group["params"]:
            if p.grad is None:
                continue
            if torch.is_complex(p):
                raise RuntimeError(f"Muon does not support complex parameters (shape {tuple(p.shape)})")
            if p.grad.is_sparse:
                raise RuntimeError(f"Muon does not support sparse gradients (parameter of shape {tuple(p.shape)}): "
                                   "give sparse embeddings to another optimizer (SparseAdam)")
            state = self.state[p]
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = torch.zeros_like(p.grad, memory_format=torch.preserve_format)
            params.append(p)
            grads.append(p.grad)
            bufs.append(state["momentum_buffer"])
        if not params:
            return []
        momentum = group["momentum"]
        for indices in _by_layout(params).values():  # foreach refuses plain tensors and DTensors in one list
            torch._foreach_lerp_([bufs[i] for i in indices], [grads[i] for i in indices], 1 - momentum)
        lr = group["lr"]
        if isinstance(lr, Tensor):  # torch computes with the tensor (fp32) lr: so do we, for equal factors
            lr = lr.squeeze()
        ns = (tuple(group["ns_coefficients"]), group["ns_steps"], group["eps"])
        nesterov = momentum if group["nesterov"] else None
        return [_Job(p, g, b, nesterov, lr, group, ns) for p, g, b in zip(params, grads, bufs, strict=True)]


def _dtensor_class() -> type | None:
    """torch's DTensor class where it is loaded (else no parameter can be one), or None."""
    module = sys.modules.get("torch.distributed.tensor")
    return None if module is None else module.DTensor


def _by_layout(params: Sequence[Tensor]) -> dict[Any, list[int]]:
    """Indices of ``params`` by layout (plain, or a DTensor's mesh and placements), in order."""
    dtensor = _dtensor_class()
    out: dict[Any, list[int]] = {}
    for i, p in enumerate(params):
        sharded = dtensor is not None and isinstance(p, dtensor)
        key = (p.device_mesh, tuple(p.placements)) if sharded else None  # type: ignore[attr-defined]
        out.setdefault(key, []).append(i)
    return out


class _Job:
    """One parameter's step: where its update comes from, its factors, later its orthogonalized update."""

    __slots__ = ("bucket", "buf", "decay", "grad", "lr", "nesterov", "ns", "orthogonal", "param", "sharded", "tall")

    def __init__(self, param: Tensor, grad: Tensor, buf: Tensor, nesterov: float | None, lr: float | Tensor,
                 group: Mapping[str, Any], ns: tuple[tuple[float, float, float], int, float]) -> None:
        self.param = param
        dtensor = _dtensor_class()
        self.sharded = dtensor is not None and isinstance(param, dtensor)
        if self.sharded:  # reshaped (and read) after the gather in write_update: the local shards stay as they are
            self.grad, self.buf = grad, buf
        else:
            self.grad, self.buf = (grad, buf) if grad.ndim == 2 else (_matrix(grad), _matrix(buf))
        self.nesterov = nesterov
        rows, cols = (grad.shape[0], math.prod(grad.shape[1:])) if grad.ndim != 2 else grad.shape
        self.tall = rows > cols
        self.ns = ns
        self.decay = float(1 - lr * group["weight_decay"])
        self.lr = float(-adjusted_lr(lr, group["adjust_lr_fn"], (rows, cols)))
        # same shape, device and iteration: one batch. A tall matrix is transposed as torch does it (a view),
        # so tall and wide matrices of one shape up to transposition batch apart: their layouts differ
        self.bucket = (rows, cols, grad.device, ns)
        self.orthogonal: Tensor | None = None

    def write_update(self, slot: Tensor) -> None:
        """Write the momentum update into ``slot`` (bf16): torch's ``grad.lerp(buf, momentum)`` (nesterov) or
        ``buf``, rounded to bf16 on the way as ``.bfloat16()`` rounds it, without a full-precision copy.

        A sharded parameter's update is computed on each shard, rounded to bf16, then gathered whole
        (the step's one collective for it), so Newton-Schulz reads the full matrix."""
        if self.sharded:
            update = self.buf if self.nesterov is None else self.grad.lerp(self.buf, self.nesterov)
            slot.copy_(_matrix(update.bfloat16().full_tensor()))  # type: ignore[attr-defined]
        elif self.nesterov is None:
            slot.copy_(self.buf)
        else:
            torch.lerp(self.grad, self.buf, self.nesterov, out=slot)

    def shaped_update(self) -> Tensor:
        """The orthogonalized update in the parameter's shape (for a DTensor: this rank's shard of it)."""
        if self.orthogonal is None:
            raise InternalError("BatchedMuon applied an update before computing it")
        update = self.orthogonal if self.param.ndim == 2 else self.orthogonal.reshape(self.param.shape)
        if not self.sharded:
            return update
        from torch.distributed.tensor import DTensor, Replicate  # loaded: the parameter is one

        mesh = self.param.device_mesh  # type: ignore[attr-defined]
        whole = DTensor.from_local(update, mesh, [Replicate()] * mesh.ndim, run_check=False)
        return whole.redistribute(mesh, self.param.placements)  # type: ignore[attr-defined]  # a local slice


def _matrix(t: Tensor) -> Tensor:
    """``t`` as the matrix (out, rest): a view where the layout allows, else a copy (channels-last kernels)."""
    return t.reshape(t.shape[0], -1)


class _Workspace:
    """The bf16 memory of the iteration, one buffer per device, kept across batches and steps.

    On CPU a large allocation is a fresh mapping whose pages fault in (and are zeroed) at first touch,
    which costs about as much as a pass over the memory: a batch of 12 matrices of 512x2048 spent ~20 ms
    of each step in it. The buffer grows to the largest batch (at most ~3 x MAX_BATCH_ELEMENTS elements)
    and stays: memory that a step would take anyway, held between steps.
    """

    def __init__(self) -> None:
        self._buffers: dict[torch.device, Tensor] = {}

    def take(self, device: torch.device, shapes: Sequence[tuple[int, ...]]) -> list[Tensor]:
        """Contiguous bf16 tensors of ``shapes``, side by side in the device's buffer (valid until the next call)."""
        sizes = [math.prod(shape) for shape in shapes]
        buffer = self._buffers.get(device)
        if buffer is None or buffer.numel() < sum(sizes):
            self._buffers.pop(device, None)  # free the old one first
            buffer = self._buffers[device] = torch.empty(sum(sizes), dtype=torch.bfloat16, device=device)
        views, offset = [], 0
        for shape, size in zip(shapes, sizes, strict=True):
            views.append(buffer[offset:offset + size].view(shape))
            offset += size
        return views


def _orthogonalize_and_apply(bucket: list[_Job], workspace: _Workspace) -> None:
    """Newton-Schulz over the stacked updates of ``bucket`` (one shape, all wide or all tall), in chunks of at
    most MAX_BATCH_ELEMENTS, each chunk applied before the next reuses the workspace."""
    rows, cols, device, (coefficients, steps, eps) = bucket[0].bucket
    short, long = min(rows, cols), max(rows, cols)
    per_chunk = max(1, MAX_BATCH_ELEMENTS // (rows * cols))
    for start in range(0, len(bucket), per_chunk):
        jobs = bucket[start:start + per_chunk]
        n = len(jobs)
        stacked, gram, gram_update, out, spare = workspace.take(
            device, [(n, rows, cols), (n, short, short), (n, short, short), (n, short, long), (n, short, long)])
        for slot, job in zip(stacked.unbind(0), jobs, strict=True):
            job.write_update(slot)
        result = newton_schulz(stacked.mT if jobs[0].tall else stacked, coefficients, steps, eps,
                               buffers=(gram, gram_update, out, spare))
        for slot, job in zip(result.unbind(0), jobs, strict=True):
            job.orthogonal = slot.mT if job.tall else slot
        _apply(jobs)


def _apply(jobs: list[_Job]) -> None:
    """Decoupled weight decay with the unadjusted lr, then the update at its adjusted lr: torch's two calls.

    Per parameter on purpose: the foreach forms round bf16 parameters differently on CPU, and the
    update (bf16) and parameter dtypes differ, which keeps CUDA's foreach off its fused path anyway.
    """
    for job in jobs:
        if job.decay != 1.0:  # x * 1.0 is x: torch's pass over the parameter changes nothing then
            job.param.mul_(job.decay)
        job.param.add_(job.shaped_update(), alpha=job.lr)
