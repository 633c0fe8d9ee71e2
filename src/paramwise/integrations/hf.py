"""Hugging Face's ``Trainer`` driven by one paramwise config: groups, schedule, clipping, accumulation, logs.

``ParamwiseTrainer(model, args, ..., paramwise_config=cfg)`` builds the optimizer from the config's
``optim_wrapper`` (``create_optimizer``) and the schedule from its ``param_scheduler`` once the Trainer
knows the number of optimizer steps (``create_scheduler``); the config's ``clip_grad`` and
``accumulative_counts`` replace ``max_grad_norm`` and ``gradient_accumulation_steps``; every group's lr
is logged as ``lr/<label>``. The same pieces serve a Trainer subclass of your own:
``ParamwiseTrainerMixin``, or the functions ``paramwise_optimizer``, ``paramwise_scheduler``,
``paramwise_training_args`` and ``group_lr_logs``.

Decisions (docs/huggingface.md says why):
- The schedule steps once per optimizer step (the Trainer's ``global_step``); ``max_iters`` is the
  Trainer's number of optimizer steps and an epoch is ``num_update_steps_per_epoch`` of them.
- Plain clipping (one L2 norm over every gradient) becomes ``args.max_grad_norm``, so the Trainer clips
  as usual (and DeepSpeed/FSDP clip their way); any other ``clip_grad`` (``per_group``, ``groups``,
  value clipping, another norm, ``error_if_nonfinite``) sets ``max_grad_norm=0`` and ``ParamwiseCallback``
  clips by the policy just before each optimizer step. No ``clip_grad`` means no clipping, as in mmengine,
  although the Trainer's default ``max_grad_norm`` is 1.0.
- ``accumulative_counts`` sets ``gradient_accumulation_steps``; both given and different is an error.

This module imports transformers: import it only where transformers is installed.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from transformers import Trainer, TrainerCallback, TrainingArguments
from transformers.trainer_utils import has_length

from paramwise.config.sections import OptimizerConfig, optimizer_config
from paramwise.errors import ConfigError, Problem, UsageTypeError, warn_user
from paramwise.integrations.configs import load_config
from paramwise.schedule.schedule import Schedule, build_scheduler
from paramwise.suggestions import safe_repr
from paramwise.wrapper.clipping import ClipPolicy, clip_gradients, clip_units
from paramwise.wrapper.optim_wrapper import OptimWrapper, build_optim_wrapper, check_wrapper_config, group_labels

__all__ = [
    "ParamwiseCallback",
    "ParamwiseTrainer",
    "ParamwiseTrainerMixin",
    "group_lr_logs",
    "paramwise_optimizer",
    "paramwise_scheduler",
    "paramwise_training_args",
]

_HF_DEFAULT_MAX_GRAD_NORM = 1.0  # TrainingArguments' default: a value the user did not choose
# wrapper keys the Trainer takes over: mixed precision is TrainingArguments(fp16=/bf16=)
_AMP_KEYS = ("type", "dtype", "loss_scale")
_AMP_DTYPES = {"float16": "fp16", "bfloat16": "bf16"}


# ------------------------------------------------------------------------------------------- config
def _sections(cfg: Any) -> tuple[Mapping[str, Any], OptimizerConfig]:
    whole = load_config(cfg)
    found = optimizer_config(whole)
    for problem in found.warnings:
        warn_user(str(problem))
    problems = check_wrapper_config(found.wrapper)
    if problems:
        raise ConfigError(problems, title="invalid optim_wrapper")
    return whole, found


def _clip_policy(found: OptimizerConfig) -> ClipPolicy | None:
    return ClipPolicy.from_config(found.wrapper.get("clip_grad"))


def _trainer_clips(policy: ClipPolicy | None) -> bool:
    """Whether ``max_grad_norm`` says all of ``policy``: one L2 norm over every gradient (or no clipping)."""
    return policy is None or (policy.kind == "norm" and not policy.per_group and policy.groups is None
                              and policy.norm_type == 2 and not policy.error_if_nonfinite)


def paramwise_optimizer(model: nn.Module, cfg: Any) -> torch.optim.Optimizer:
    """The optimizer of a whole config for ``model`` (its ``optim_wrapper``, or mmcv's top-level
    ``optimizer``), built by paramwise: groups with ``param_names`` and the load-by-name hook.

    ``clip_grad`` and ``accumulative_counts`` are checked here (a ``groups`` entry that names no parameter
    is reported now) and take effect through ``paramwise_training_args`` and ``ParamwiseCallback``.
    """
    _, found = _sections(cfg)
    kept = {k: v for k, v in found.wrapper.items() if k not in _AMP_KEYS}  # the Trainer's AMP, checked with args
    wrapper = build_optim_wrapper(model, {"optimizer": found.optimizer, **kept})
    assert isinstance(wrapper, OptimWrapper)  # one optimizer config gives one wrapper, never a dict of them
    return wrapper.optimizer


def paramwise_scheduler(optimizer: Any, cfg: Any, num_training_steps: int, *,
                        epoch_length: int | None = None) -> Schedule:
    """The config's ``param_scheduler`` for ``optimizer``, stepped once per optimizer step.

    Args:
        optimizer: the Trainer's optimizer (built by ``paramwise_optimizer``; accelerate's wrapper is fine).
        cfg: the whole config; without ``param_scheduler`` every group keeps its lr.
        num_training_steps: the run's optimizer steps (an entry without ``end`` ends there).
        epoch_length: optimizer steps per epoch, for epoch-based entries (mmengine's default
            ``by_epoch=True``); None where the data has no length (then write ``by_epoch=False``).
    """
    whole = load_config(cfg)
    entries = whole.get("param_scheduler")
    return build_scheduler(optimizer, [] if entries is None else entries, epoch_length=epoch_length,
                           max_iters=num_training_steps)


def paramwise_training_args(args: TrainingArguments, cfg: Any) -> TrainingArguments:
    """A copy of ``args`` where the config's ``clip_grad`` and ``accumulative_counts`` are in force.

    ``max_grad_norm`` becomes the config's ``max_norm`` where the Trainer can clip as configured, else 0
    (``ParamwiseCallback`` clips); ``gradient_accumulation_steps`` becomes ``accumulative_counts``. A
    ``max_grad_norm`` you set that the config overrides is a warning; accumulation given both ways and
    different, or an ``AmpOptimWrapper`` without ``fp16``/``bf16`` in ``args``, is a ``ConfigError``.
    """
    if not isinstance(args, TrainingArguments):
        raise UsageTypeError(f"paramwise_training_args takes transformers.TrainingArguments, got {type(args).__name__}")
    _, found = _sections(cfg)
    problems = _amp_problems(found.wrapper, args)
    counts = found.wrapper.get("accumulative_counts")
    if counts is not None and args.gradient_accumulation_steps not in (1, counts):
        problems.append(Problem(("optim_wrapper", "accumulative_counts"), (
            f"is {counts}, but TrainingArguments(gradient_accumulation_steps={args.gradient_accumulation_steps}) "
            "asks for another number of batches per optimizer step: keep one of them (the config's wins where "
            "gradient_accumulation_steps is left at 1)")))
    if problems:
        raise ConfigError(problems, title="optim_wrapper disagrees with the Trainer's arguments")
    policy = _clip_policy(found)
    max_grad_norm = 0.0 if policy is None or not _trainer_clips(policy) else policy.bound
    if args.max_grad_norm not in (_HF_DEFAULT_MAX_GRAD_NORM, max_grad_norm):
        warn_user(f"TrainingArguments(max_grad_norm={args.max_grad_norm}) is replaced by the config's "
                  f"optim_wrapper.clip_grad ({safe_repr(policy) if policy else 'none: no clipping'}); set clipping "
                  "in the config only")
    out = copy.copy(args)  # the caller's arguments stay as they were
    out.max_grad_norm = max_grad_norm
    if counts is not None:
        out.gradient_accumulation_steps = int(counts)
    return out


def _amp_problems(wrapper: Mapping[str, Any], args: TrainingArguments) -> list[Problem]:
    """The Trainer does mixed precision itself: an ``AmpOptimWrapper`` must agree with ``fp16``/``bf16``."""
    if wrapper.get("type", "OptimWrapper") == "OptimWrapper":
        return []
    if not (args.fp16 or args.bf16):
        return [Problem(("optim_wrapper", "type"), (
            f"is {safe_repr(wrapper.get('type'))}, but the Trainer does mixed precision itself: set "
            "TrainingArguments(bf16=True) (or fp16=True), or write type='OptimWrapper'"))]
    dtype = wrapper.get("dtype")
    flag = _AMP_DTYPES.get(str(dtype).replace("torch.", "")) if dtype is not None else None
    if flag is not None and not getattr(args, flag):
        return [Problem(("optim_wrapper", "dtype"), (
            f"is {safe_repr(dtype)}, but TrainingArguments sets {'bf16' if args.bf16 else 'fp16'}: make them agree "
            f"(TrainingArguments({flag}=True), or drop dtype from the config)"))]
    return []


# ---------------------------------------------------------------------------------------------- logs
def group_lr_logs(optimizer: Any) -> dict[str, float]:
    """Every group's lr under ``lr/<label>`` (labels as the wrapper's ``get_lr``: the groups' common
    module prefix, ``all`` for a lone group), for ``Trainer.log``."""
    groups = optimizer.param_groups
    return {f"lr/{label}": float(group["lr"]) for label, group in zip(group_labels(groups), groups)}


class ParamwiseCallback(TrainerCallback):  # type: ignore[misc]
    """Clips by the config's policy where ``max_grad_norm`` cannot say it, and records each group's lr
    as the optimizer step used it (the Trainer logs its ``learning_rate`` the same way, before the
    schedule steps).

    Gradients are already unscaled here under ``fp16``: the Trainer measures their norm before this.
    The Trainer hands callbacks the optimizer it had when it was made (None when it builds one later),
    so the callback reads ``trainer.optimizer``: ``trainer.add_callback(ParamwiseCallback(cfg, trainer))``.
    """

    def __init__(self, cfg: Any, trainer: Any) -> None:
        self.trainer = trainer
        policy = _clip_policy(_sections(cfg)[1])
        self.policy = None if _trainer_clips(policy) else policy
        self.step_lrs: dict[str, float] = {}
        self.grad_norms: dict[str, float] = {}
        self._units: Any = None
        self._layout: tuple[int, ...] = ()

    def on_pre_optimizer_step(self, args: TrainingArguments, state: Any, control: Any, **kwargs: Any) -> None:
        optimizer = self.trainer.optimizer
        if self.policy is None or optimizer is None:
            return
        groups = optimizer.param_groups
        layout = tuple(len(g["params"]) for g in groups)
        if layout != self._layout:  # resolved once per optimizer (again after add_param_group)
            self._units, self._layout = clip_units(self.policy, groups, group_labels(groups)), layout
        norms = clip_gradients(self.policy, self._units)
        if self.policy.per_group:
            self.grad_norms = {f"grad_norm/{label}": float(norm) for label, norm in norms}

    def on_optimizer_step(self, args: TrainingArguments, state: Any, control: Any, **kwargs: Any) -> None:
        optimizer = self.trainer.optimizer
        if optimizer is not None:
            self.step_lrs = group_lr_logs(optimizer)


# ------------------------------------------------------------------------------------------- trainer
class ParamwiseTrainerMixin:
    """Put before ``Trainer`` in your own subclass (``class MyTrainer(ParamwiseTrainerMixin, Trainer)``)
    to drive it by ``paramwise_config=``: optimizer, schedule, clipping, accumulation and per-group lr logs.

    The Trainer's own optimizer arguments (``learning_rate``, ``weight_decay``, ``optim``,
    ``lr_scheduler_type``, warmup) are not read; the config says all of it.
    """

    def __init__(self, model: Any = None, args: TrainingArguments | None = None, *rest: Any,
                 paramwise_config: Any, **kwargs: Any) -> None:
        optimizers = kwargs.get("optimizers", (None, None))
        if any(o is not None for o in optimizers) or kwargs.get("optimizer_cls_and_kwargs") is not None:
            raise UsageTypeError("pass either paramwise_config= or optimizers=/optimizer_cls_and_kwargs= to the "
                                 "Trainer, not both: paramwise builds the optimizer and schedule from the config")
        self._paramwise_cfg = load_config(paramwise_config)
        self._paramwise_callback = ParamwiseCallback(self._paramwise_cfg, self)
        self._paramwise_epoch_length: int | None = None
        if args is None:
            args = TrainingArguments(output_dir="tmp_trainer")  # the Trainer's own default
        args = paramwise_training_args(args, self._paramwise_cfg)
        callbacks = [*(kwargs.pop("callbacks", None) or []), self._paramwise_callback]
        super().__init__(model, args, *rest, callbacks=callbacks, **kwargs)  # type: ignore[call-arg]

    def create_optimizer(self, model: nn.Module | None = None) -> torch.optim.Optimizer:
        """The config's optimizer for the model (built once; the Trainer then wraps it for accelerate)."""
        this: Any = self
        if this.optimizer is None:
            this.optimizer = paramwise_optimizer(this.model if model is None else model, self._paramwise_cfg)
        return this.optimizer  # type: ignore[no-any-return]

    def create_scheduler(self, num_training_steps: int, optimizer: Any = None) -> Schedule:
        """The config's schedule over ``num_training_steps`` optimizer steps (built once per ``train()``)."""
        this: Any = self
        if this.lr_scheduler is None:
            this.lr_scheduler = paramwise_scheduler(this.optimizer if optimizer is None else optimizer,
                                                    self._paramwise_cfg, num_training_steps,
                                                    epoch_length=self._paramwise_epoch_length)
            this._created_lr_scheduler = True  # as the Trainer's own: a later train() builds it again
        return this.lr_scheduler  # type: ignore[no-any-return]

    def set_initial_training_values(self, args: TrainingArguments, dataloader: Any) -> Any:
        """The Trainer's values; remembers the optimizer steps per epoch, for epoch-based schedule entries."""
        values = super().set_initial_training_values(args, dataloader)  # type: ignore[misc]
        self._paramwise_epoch_length = int(values[1]) if has_length(dataloader) else None
        return values

    def log(self, logs: dict[str, float], *rest: Any, **kwargs: Any) -> None:
        """The Trainer's log, plus ``lr/<label>`` for every group beside its ``learning_rate`` (and
        ``grad_norm/<label>`` with per-group clipping)."""
        this: Any = self
        if "learning_rate" in logs and this.optimizer is not None:
            extra = self._paramwise_callback.step_lrs or group_lr_logs(this.optimizer)
            logs = {**logs, **extra, **self._paramwise_callback.grad_norms}
        super().log(logs, *rest, **kwargs)  # type: ignore[misc]


class ParamwiseTrainer(ParamwiseTrainerMixin, Trainer):  # type: ignore[misc]
    """A ``transformers.Trainer`` whose optimizer, schedule, clipping, accumulation and lr logs come from
    ``paramwise_config=`` (a whole config, or its file's path); resumes load optimizer state by name."""
