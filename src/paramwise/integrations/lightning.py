"""PyTorch Lightning driven by one paramwise config: ``configure_optimizers`` and ``ParamwiseCallback``.

``configure_optimizers(self, cfg)`` (inside a ``LightningModule``'s own ``configure_optimizers``) builds
the optimizer from the config's ``optim_wrapper`` (or mmcv's top-level ``optimizer``) and the schedule
from its ``param_scheduler``, stepped once per optimizer step (Lightning's ``interval='step'``), its
length from the trainer. ``ParamwiseCallback(cfg)`` makes the rest of the config take effect without
Trainer flags: ``clip_grad`` (per group too), ``accumulative_counts``, ``lr/<label>`` of every group in
the logs, and the wrapper's counters in Lightning's checkpoints. The optimizer carries paramwise's
load hook, so resuming from a Lightning checkpoint loads its state by parameter name.

Importing this module imports Lightning (``lightning.pytorch`` where installed, else
``pytorch_lightning``); ``import paramwise`` and ``import paramwise.integrations`` never do.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from paramwise.build.constructors import build_optimizer
from paramwise.config.sections import optimizer_config
from paramwise.errors import ConfigDependencyError, ConfigError, InternalError, Problem, UsageTypeError, warn_user
from paramwise.integrations.configs import load_config
from paramwise.schedule.mmengine import PlateauCurve
from paramwise.schedule.schedule import build_scheduler
from paramwise.suggestions import safe_repr
from paramwise.wrapper.clipping import ClipPolicy, ClipUnit, clip_gradients, clip_units
from paramwise.wrapper.optim_wrapper import OptimWrapper, build_optim_wrapper, check_wrapper_config, group_labels

if TYPE_CHECKING:
    import pytorch_lightning as pl
    from pytorch_lightning import Callback
else:
    try:  # the unified package first, as Lightning's docs import it; the standalone one otherwise
        import lightning.pytorch as pl
        from lightning.pytorch import Callback
    except ImportError:
        try:
            import pytorch_lightning as pl
            from pytorch_lightning import Callback
        except ImportError as e:
            raise ConfigDependencyError(
                "paramwise.integrations.lightning needs PyTorch Lightning: pip install lightning "
                "(or pytorch-lightning)") from e

__all__ = ["ParamwiseCallback", "configure_optimizers", "load_config"]

#: what Lightning's ``configure_optimizers`` may return
OptimizerReturn = torch.optim.Optimizer | dict[str, Any]
_WRAPPER_TYPES = ("OptimWrapper", "AmpOptimWrapper")


def configure_optimizers(module: nn.Module, cfg: Mapping[str, Any] | str | os.PathLike[str]) -> OptimizerReturn:
    """What a ``LightningModule.configure_optimizers`` returns, built from a whole paramwise config.

    The optimizer comes from ``optim_wrapper`` (its ``paramwise_cfg`` and ``constructor``; routes give a
    ``HybridOptimizer``) or an mmcv-style ``optimizer``; without ``param_scheduler`` it is returned alone.
    With one, the schedule is stepped per optimizer step (``interval='step'``); an entry without ``end``
    runs to ``trainer.estimated_stepping_batches``, and an epoch is the trainer's optimizer steps per
    epoch (``ceil(num_training_batches / accumulate_grad_batches)``).

    Raises:
        ConfigError: every problem of the optimizer, wrapper or schedule config, at its config path.
    """
    whole = load_config(cfg)
    found = optimizer_config(whole)
    for problem in found.warnings:
        warn_user(str(problem))
    if found.source == "optim_wrapper":  # checks the wrapper keys too, reported at optim_wrapper -> key
        wrapper = build_optim_wrapper(module, whole["optim_wrapper"])
        if not isinstance(wrapper, OptimWrapper):  # optimizer_config refused an OptimWrapperDict already
            raise InternalError(f"build_optim_wrapper returned {type(wrapper).__name__} for one optimizer")
        optimizer = wrapper.optimizer
    else:
        optimizer = build_optimizer(module, found.optimizer)
    scheduler_cfg = whole.get("param_scheduler")
    if not scheduler_cfg:
        return optimizer
    max_iters, epoch_length, smoke_test = _run_length(module)
    with warnings.catch_warnings():
        if smoke_test:  # fast_dev_run: a few steps of a run whose length is not known; entries without end
            warnings.filterwarnings("ignore", message=".*has no end and build_scheduler got no max_iters")
        schedule = build_scheduler(optimizer, scheduler_cfg, epoch_length=epoch_length, max_iters=max_iters)
    plateaus = [p for p in schedule.parts if isinstance(p.curve, PlateauCurve)]
    if plateaus:
        raise ConfigError([Problem((f"param_scheduler[{p.index}]",), (
            "ReduceOnPlateau is not supported under Lightning yet: Lightning steps a schedule without the "
            "metric. Use a schedule of fixed shape, or step a paramwise schedule yourself (Schedule.observe)"))
            for p in plateaus], title="invalid param_scheduler")
    return {"optimizer": optimizer,
            "lr_scheduler": {"scheduler": schedule, "interval": "step", "frequency": 1, "name": "paramwise"}}


def _run_length(module: nn.Module) -> tuple[int | None, int | None, bool]:
    """``(max_iters, epoch_length, fast_dev_run)`` in optimizer steps, from the module's trainer (None where
    unknown). Under ``fast_dev_run`` the run's real length is unknown: no ``max_iters``, so a schedule
    sized to the real run still builds (an entry without ``end`` runs to mmengine's INF, as without a trainer)."""
    trainer: Any
    try:
        trainer = module.trainer  # a LightningModule's; raises when the module is not attached
    except (AttributeError, RuntimeError):
        return None, None, False
    if trainer is None:
        return None, None, False
    total = trainer.estimated_stepping_batches  # sets up the train dataloader when needed
    smoke_test = bool(getattr(trainer, "fast_dev_run", False))
    max_iters = None
    if not smoke_test and isinstance(total, (int, float)) and math.isfinite(total) and total > 0:
        max_iters = int(total)
    batches = trainer.num_training_batches
    epoch_length = None
    if isinstance(batches, (int, float)) and math.isfinite(batches) and batches > 0:
        epoch_length = math.ceil(int(batches) / trainer.accumulate_grad_batches)
    return max_iters, epoch_length, smoke_test


class ParamwiseCallback(Callback):
    """The wrapper part of a paramwise config, in force under a Lightning ``Trainer``.

    - ``clip_grad``: clipped in ``on_before_optimizer_step`` (after AMP's unscale), by norm or value,
      per group or for some groups only, as paramwise's ``OptimWrapper``; the norms before clipping are
      logged as ``grad_norm`` (or ``grad_norm/<label>`` per group). The Trainer's ``gradient_clip_val``
      must then be unset (clipping twice is an error).
    - ``accumulative_counts``: sets the Trainer's ``accumulate_grad_batches`` when that is the default
      (1); a Trainer set to another value than the config is an error.
    - every group's lr is logged under ``lr/<label>`` (``group_labels``) at every optimizer step: the lr
      the step uses.
    - the counters (``inner_count``: batches trained, ``step_count``: optimizer steps, ``max_counts``)
      are the callback's state, saved in Lightning's checkpoints and restored from them.

    Args:
        cfg: the whole config (a dict or a config file's path), as given to ``configure_optimizers``.
        log_lr: log ``lr/<label>`` of every group (default True).
    """

    def __init__(self, cfg: Mapping[str, Any] | str | os.PathLike[str], *, log_lr: bool = True) -> None:
        found = optimizer_config(load_config(cfg))
        path = ("optim_wrapper",) if found.source == "optim_wrapper" else ("optimizer",)
        problems = check_wrapper_config(found.wrapper, path)
        kind = found.wrapper.get("type", "OptimWrapper")
        if not problems and getattr(kind, "__name__", kind) not in _WRAPPER_TYPES:
            problems.append(Problem((*path, "type"), (
                f"{safe_repr(kind)} is a wrapper Lightning cannot run: Lightning itself steps the optimizer, and "
                f"this callback applies the keys of {' and '.join(_WRAPPER_TYPES)} (clip_grad, "
                "accumulative_counts). Use one of those")))
        if problems:
            raise ConfigError(problems, title="invalid optim_wrapper for Lightning")
        self.clip_policy: ClipPolicy | None = ClipPolicy.from_config(found.wrapper.get("clip_grad"),
                                                                     (*path, "clip_grad"))
        self.accumulative_counts: int | None = found.wrapper.get("accumulative_counts")
        self.amp = getattr(kind, "__name__", kind) == "AmpOptimWrapper"
        self.log_lr = log_lr
        self._path = path
        self.inner_count = 0
        self.step_count = 0
        self.max_counts = -1
        self._units: tuple[ClipUnit, ...] = ()
        self._layout: tuple[int, ...] = ()
        self.last_grad_norm: float | dict[str, float] | None = None

    # ------------------------------------------------------------------ Trainer flags
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """Before ``configure_optimizers``: set or check the Trainer's accumulation and clipping flags."""
        if stage != "fit":
            return
        problems: list[Problem] = []
        if self.clip_policy is not None and trainer.gradient_clip_val is not None:
            problems.append(Problem((*self._path, "clip_grad"), (
                f"clips the gradients, and so does the Trainer (gradient_clip_val={trainer.gradient_clip_val}): "
                "they would clip twice. Remove gradient_clip_val from the Trainer (the config's clip_grad is "
                "applied by ParamwiseCallback), or remove clip_grad from the config")))
        counts = self.accumulative_counts
        if counts is not None and counts != trainer.accumulate_grad_batches:
            if trainer.accumulate_grad_batches == 1:
                trainer.accumulate_grad_batches = counts
            else:
                problems.append(Problem((*self._path, "accumulative_counts"), (
                    f"is {counts}, but the Trainer has accumulate_grad_batches={trainer.accumulate_grad_batches}. "
                    "Keep one: leave the Trainer at its default (ParamwiseCallback sets it from the config), or "
                    "remove accumulative_counts from the config")))
        if problems:
            raise ConfigError(problems, title="the config and the Trainer disagree")
        if self.amp and str(trainer.precision) in ("32-true", "64-true", "32", "64"):
            warn_user(f"{'/'.join(self._path)} is an AmpOptimWrapper, but the Trainer runs in full precision "
                      f"({trainer.precision}): under Lightning, mixed precision is the Trainer's precision flag "
                      "(precision='bf16-mixed' or '16-mixed')")

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Check the optimizer and resolve the parameters to clip (a wrong ``groups`` entry fails here)."""
        if len(trainer.optimizers) != 1:
            raise UsageTypeError(f"ParamwiseCallback drives one optimizer; the module's configure_optimizers "
                                 f"returned {len(trainer.optimizers)}")
        groups = trainer.optimizers[0].param_groups
        if not all("param_names" in g for g in groups):
            warn_user("the optimizer was not built by paramwise (its groups have no param_names): build it with "
                      "paramwise.integrations.lightning.configure_optimizers(self, cfg), so its groups, labels "
                      "and resume by name follow the config")
        self._resolve(groups)
        if self.max_counts < 0:
            total = trainer.estimated_stepping_batches
            if isinstance(total, (int, float)) and math.isfinite(total):
                self.max_counts = int(total) * trainer.accumulate_grad_batches

    def _resolve(self, groups: list[dict[str, Any]]) -> None:
        self._layout = tuple(len(g["params"]) for g in groups)
        if self.clip_policy is not None:
            self._units = clip_units(self.clip_policy, groups, group_labels(groups), (*self._path, "clip_grad"))

    # ------------------------------------------------------------------ each step
    def on_before_optimizer_step(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                                 optimizer: torch.optim.Optimizer) -> None:
        """Log every group's lr, then clip the gradients as the config says (they are unscaled here)."""
        groups = optimizer.param_groups
        if tuple(len(g["params"]) for g in groups) != self._layout:
            self._resolve(groups)  # add_param_group since the last step
        metrics: dict[str, float] = {}
        if self.log_lr:
            metrics.update((f"lr/{label}", float(g["lr"])) for label, g in zip(group_labels(groups), groups))
        if self.clip_policy is not None:
            norms = clip_gradients(self.clip_policy, self._units)
            if norms and self.clip_policy.per_group:
                self.last_grad_norm = {label: float(norm) for label, norm in norms}
                metrics.update((f"grad_norm/{label}", value) for label, value in self.last_grad_norm.items())
            elif norms:
                self.last_grad_norm = float(norms[0][1])
                metrics["grad_norm"] = self.last_grad_norm
        if metrics:
            pl_module.log_dict(metrics, on_step=True, on_epoch=False)
        self.step_count += 1

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        self.inner_count += 1

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """The wrapper's counters, saved by Lightning in every checkpoint (``checkpoint['callbacks']``)."""
        return {"inner_count": self.inner_count, "max_counts": self.max_counts, "step_count": self.step_count}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the counters of :meth:`state_dict` when Lightning resumes from a checkpoint."""
        self.inner_count = int(state_dict.get("inner_count", 0))
        self.max_counts = int(state_dict.get("max_counts", -1))
        self.step_count = int(state_dict.get("step_count", 0))

