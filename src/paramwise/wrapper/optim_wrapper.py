"""The optimizer wrapper: clipping, gradient accumulation and mixed precision from an ``optim_wrapper`` config.

``build_optim_wrapper(model, cfg)`` reads mmengine's ``optim_wrapper`` shape: the optimizer part goes
to the constructor it names (so layer decay and user constructors work), the rest configures the
wrapper. The wrappers keep mmengine's interface (``update_params``, ``optim_context``,
``initialize_count_status``, ...) so a training loop written for mmengine runs unchanged, and add what
logs need: the learning rate of every group by a readable key, the gradient norm(s) of the last
clipped step and the number of steps the loss scaler skipped.
"""

from __future__ import annotations

import functools
import inspect
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

import torch
from torch import nn

from paramwise import checks
from paramwise.config.sections import optimizer_config
from paramwise.errors import ConfigError, ParamwiseWarning, Problem, UsageTypeError
from paramwise.registry import Registry, call_target, copy_config
from paramwise.suggestions import did_you_mean, safe_repr, safe_str
from paramwise.walk import unwrap_model
from paramwise.wrapper.clipping import ClipPolicy, ClipUnit, check_clip_config, clip_gradients, clip_units

__all__ = [
    "wrap_optimizer",
    "OPTIM_WRAPPERS",
    "AmpOptimWrapper",
    "OptimWrapper",
    "OptimWrapperDict",
    "build_optim_wrapper",
    "check_wrapper_config",
    "group_labels",
]

OPTIM_WRAPPERS = Registry("optimizer wrapper")

_ROOT = ("optim_wrapper",)
_OPTIMIZER_KEYS = ("optimizer", "paramwise_cfg", "constructor")
_AMP_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16}
#: torch's GradScaler arguments, each with its check (torch itself checks none of them)
_SCALER_CHECKS: dict[str, Callable[[Any, checks.Path], list[Problem]]] = {
    "init_scale": functools.partial(checks.real, low=0, low_open=True),
    "growth_factor": functools.partial(checks.real, low=1, low_open=True),
    "backoff_factor": functools.partial(checks.real, low=0, high=1, low_open=True, high_open=True),
    # torch's update kernel takes it as a 64-bit integer
    "growth_interval": functools.partial(checks.integer, low=1, high=2**63 - 1, meaning="steps between growths"),
    "enabled": checks.boolean,
}
_SCALER_ARGS = tuple(_SCALER_CHECKS)
# keys people put beside the optimizer instead of inside it
_OPTIMIZER_ARGS = ("lr", "weight_decay", "momentum", "betas", "eps", "nesterov", "amsgrad")
_STATE_KEY = "paramwise_wrapper"  # the wrapper's own entry in its state dict, beside the optimizer's


# --------------------------------------------------------------------------------------------- checks
def _accepted_keys(cls: Any) -> tuple[list[str], bool]:
    """The keyword arguments ``cls`` takes besides ``optimizer``, following ``**kwargs`` up the bases;
    and whether it takes any keyword at all (an open signature ends the walk)."""
    keys: list[str] = []
    for klass in getattr(cls, "__mro__", (cls,)):
        init = klass.__dict__.get("__init__") if isinstance(klass, type) else klass
        if init is None:
            continue
        try:
            params = inspect.signature(init).parameters
        except (TypeError, ValueError):
            return keys, True
        keys += [n for n, p in params.items() if n not in ("self", "optimizer") and n not in keys
                 and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
            return keys, False
        if klass is OptimWrapper:
            break
    return keys, not issubclass(cls, OptimWrapper) if isinstance(cls, type) else True


def check_wrapper_config(wrapper: Mapping[str, Any], path: tuple[str, ...] = _ROOT) -> list[Problem]:
    """Every problem of an optimizer wrapper's own keys, each at ``optim_wrapper -> key``; nothing is built.

    ``wrapper`` is ``optimizer_config(cfg).wrapper`` (the ``optim_wrapper`` keys other than the
    optimizer's); ``optimizer``, ``paramwise_cfg`` and ``constructor``, if present, are skipped. The CLI's
    ``show`` and ``check`` call this; ``build_optim_wrapper`` raises a ``ConfigError`` with the same list.
    """
    if not isinstance(wrapper, Mapping):
        return [Problem(path, f"must be a dict, got {type(wrapper).__name__}", kind="type")]
    problems: list[Problem] = []
    type_name = wrapper.get("type", "OptimWrapper")
    cls: Any = None
    if isinstance(type_name, str):
        cls = OPTIM_WRAPPERS.get(type_name, None)
        if cls is None:
            problems.append(Problem((*path, "type"), f"{safe_repr(type_name)} is not a registered optimizer wrapper."
                                    f"{did_you_mean(type_name, OPTIM_WRAPPERS.names())} Registered: "
                                    f"{', '.join(OPTIM_WRAPPERS.names())}"))
    elif callable(type_name):
        cls = type_name
    else:
        problems.append(Problem((*path, "type"), f"must be the name of an optimizer wrapper, e.g. 'OptimWrapper', "
                                                 f"got {safe_repr(type_name)}", kind="type"))
    if cls is OptimWrapperDict:
        problems.append(Problem((*path, "type"), (
            "OptimWrapperDict holds one wrapper per submodule: write optim_wrapper=dict(generator=dict(optimizer=...), "
            "discriminator=dict(optimizer=...)) with the submodules' names, without a type")))
        return problems
    if cls is None:  # still check the other keys, against every key the built-in wrappers take
        name, accepted, open_signature = "the optimizer wrappers", list(AmpOptimWrapper.config_keys), False
    else:
        name = getattr(cls, "__name__", safe_str(type_name))
        accepted, open_signature = _accepted_keys(cls)
    amp_keys = AmpOptimWrapper.config_keys
    for key in wrapper:
        if key == "type" or key in _OPTIMIZER_KEYS or key in accepted or open_signature:
            continue
        if key in amp_keys:
            message = f"is an option of mixed precision, which {name} does not do: set type='AmpOptimWrapper'"
        elif key in _OPTIMIZER_ARGS:
            message = "is an optimizer argument, not the wrapper's: move it into optim_wrapper['optimizer']"
        else:
            message = (f"is not an option of {name}.{did_you_mean(safe_str(key), [*accepted, *amp_keys])} "
                       f"It accepts: {', '.join(accepted) or 'nothing'}")
        problems.append(Problem((*path, safe_str(key)), message))
    if "accumulative_counts" in wrapper:
        problems += checks.integer(wrapper["accumulative_counts"], (*path, "accumulative_counts"), low=1,
                                   high=_MAX_COUNTS, meaning="iterations per update; 1: no accumulation")
    if "clip_grad" in wrapper:
        problems += check_clip_config(wrapper["clip_grad"], (*path, "clip_grad"))
    if "dtype" in wrapper:
        problems += _check_dtype(wrapper["dtype"], (*path, "dtype"))
    if "loss_scale" in wrapper:
        problems += _check_loss_scale(wrapper["loss_scale"], (*path, "loss_scale"))
    if "use_fsdp" in wrapper:
        problems += checks.boolean(wrapper["use_fsdp"], (*path, "use_fsdp"))
    return problems


def _dtype_name(dtype: Any) -> str | None:
    if isinstance(dtype, torch.dtype):
        return str(dtype).removeprefix("torch.")
    return dtype if isinstance(dtype, str) else None


def _check_dtype(dtype: Any, path: tuple[str, ...]) -> list[Problem]:
    if dtype is None:
        return []
    name = _dtype_name(dtype)
    if name in _AMP_DTYPES:
        return []
    if name in ("float32", "float64"):
        return [Problem(path, f"{safe_repr(name)} is full precision, where there is nothing to autocast: use "
                              "type='OptimWrapper', or dtype='float16' / 'bfloat16'")]
    if name is None:
        return [Problem(path, f"must be 'float16', 'bfloat16' or None, got {safe_repr(dtype)}", kind="type")]
    return [Problem(path, f"must be 'float16', 'bfloat16' or None (the device's default), got {safe_repr(dtype)}."
                          f"{did_you_mean(name, _AMP_DTYPES)}")]


#: the most iterations one update may accumulate (far beyond any run; the loss is divided by it)
_MAX_COUNTS = 2**31 - 1


def _check_loss_scale(scale: Any, path: tuple[str, ...]) -> list[Problem]:
    if scale is None or (isinstance(scale, str) and scale == "dynamic"):
        return []
    if isinstance(scale, (int, float)) and not isinstance(scale, bool):
        return checks.real(scale, path, low=0, low_open=True, meaning="a static loss scale")
    if isinstance(scale, Mapping):
        problems = checks.known_keys(scale, path, _SCALER_ARGS, what="torch's GradScaler")
        for key, value in scale.items():
            if key in _SCALER_ARGS:
                problems += _SCALER_CHECKS[key](value, (*path, key))
        return problems
    if isinstance(scale, str):
        return [Problem(path, f"must be 'dynamic', a positive number or a dict of GradScaler arguments, got "
                              f"{safe_repr(scale)}.{did_you_mean(scale, ['dynamic'])}")]
    return [Problem(path, f"must be 'dynamic', a positive number or a dict of GradScaler arguments, got "
                          f"{safe_repr(scale)}",
                    kind="type")]


# ------------------------------------------------------------------------------------- group labels
def group_labels(param_groups: Sequence[Mapping[str, Any]]) -> list[str]:
    """A readable, unique label per parameter group, for log keys such as ``lr/backbone``.

    One parameter: its name. Several: the module path all of them share (``backbone.layers.3``);
    none shared: the top-level modules they come from joined by ``+`` (``backbone+neck``), if three or
    fewer; else ``group<i>``, as for groups without ``param_names``. A lone group is ``all``. Labels that
    would repeat get ``#<i>``, the group's index, appended.
    """
    if len(param_groups) == 1:
        return ["all"]
    labels = []
    for index, group in enumerate(param_groups):
        names = group.get("param_names")
        if not names:
            labels.append(f"group{index}")
            continue
        if len(names) == 1:
            labels.append(str(names[0]))
            continue
        split = [str(n).split(".")[:-1] for n in names]
        common = split[0]
        for parts in split[1:]:
            size = 0
            while size < min(len(common), len(parts)) and common[size] == parts[size]:
                size += 1
            common = common[:size]
            if not common:
                break
        if common:
            labels.append(".".join(common))
            continue
        tops = list(dict.fromkeys(str(n).split(".")[0] for n in names))
        labels.append("+".join(tops) if len(tops) <= 3 else f"group{index}")
    repeated = {label for label in labels if labels.count(label) > 1}
    return [f"{label}#{i}" if label in repeated else label for i, label in enumerate(labels)]


# ------------------------------------------------------------------------------------------ wrappers
@OPTIM_WRAPPERS.register_module()
class OptimWrapper:
    """An optimizer with gradient accumulation and clipping, with mmengine's ``OptimWrapper`` interface.

    Args:
        optimizer: a torch optimizer (the wrapper drives it; a schedule may drive its lr too).
        accumulative_counts: step once every this many ``update_params`` calls, each loss divided by it
            (the last window of a run divides by its real size, once ``initialize_count_status`` says
            how long the run is).
        clip_grad: ``dict(type='norm', max_norm=..., norm_type=2)`` or ``dict(type='value', clip_value=...)``
            as in mmengine, plus ``per_group=True`` (each parameter group by its own norm) and
            ``groups=[...]`` (only parameters whose names contain one of the strings, or groups by index).

    Attributes read by logs: ``last_grad_norm``, ``step_count``, ``skipped_steps``, ``get_lr()``.
    """

    #: the config keys this wrapper takes besides ``type`` and the optimizer's
    config_keys: ClassVar[tuple[str, ...]] = ("accumulative_counts", "clip_grad")

    def __init__(self, optimizer: torch.optim.Optimizer, accumulative_counts: int = 1,
                 clip_grad: Mapping[str, Any] | None = None) -> None:
        if not hasattr(optimizer, "param_groups") or not hasattr(optimizer, "step"):
            raise UsageTypeError(f"{type(self).__name__} wraps a torch optimizer, got {type(optimizer).__name__}")
        problems = check_wrapper_config({"type": type(self), "accumulative_counts": accumulative_counts,
                                         "clip_grad": clip_grad})
        if problems:
            raise ConfigError(problems, title=f"invalid {type(self).__name__} config")
        self.optimizer = optimizer
        self._accumulative_counts = accumulative_counts
        self.clip_policy = ClipPolicy.from_config(clip_grad)
        self._clip_units: tuple[ClipUnit, ...] = ()
        self._clip_layout: tuple[int, ...] = ()
        if self.clip_policy is not None:
            self._resolve_clip_units()  # a groups entry that selects nothing is reported now, not at the first step
        self._inner_count = 0
        self._max_counts = -1  # unknown until initialize_count_status: every window is full
        self._remainder_counts = -1
        self._step_count = 0
        self._last_norms: list[tuple[str, torch.Tensor]] = []

    # ------------------------------------------------------------------ mmengine's interface
    def update_params(self, loss: torch.Tensor, step_kwargs: dict[str, Any] | None = None,
                      zero_kwargs: dict[str, Any] | None = None) -> None:
        """Backward the (scaled) loss, and step and zero the gradients when a window is complete."""
        self.backward(self.scale_loss(loss))
        if self.should_update():
            self.step(**(step_kwargs or {}))
            self.zero_grad(**(zero_kwargs or {}))

    def backward(self, loss: torch.Tensor, **kwargs: Any) -> None:
        """``loss.backward(**kwargs)``, counting the iteration (subclasses must count too)."""
        loss.backward(**kwargs)
        self._inner_count += 1

    def step(self, **kwargs: Any) -> None:
        """Clip the gradients (if configured), then ``optimizer.step(**kwargs)``."""
        if self.clip_policy is not None:
            self._clip()
        self.optimizer.step(**kwargs)
        self._step_count += 1

    def zero_grad(self, **kwargs: Any) -> None:
        """``optimizer.zero_grad(**kwargs)``."""
        self.optimizer.zero_grad(**kwargs)

    @contextmanager
    def optim_context(self, model: nn.Module) -> Iterator[None]:
        """Run the forward pass in here: on iterations that do not step, DDP's gradient sync is skipped
        (``model.no_sync()``, when the model has it), since only the last backward of a window needs it."""
        no_sync: Any = getattr(model, "no_sync", None)
        if no_sync is not None and not self.should_sync():
            with no_sync():
                yield
        else:
            yield

    def initialize_count_status(self, model: nn.Module, init_counts: int, max_counts: int) -> None:
        """Tell the wrapper where the run starts and how long it is, so the last window, if shorter,
        divides the loss by its real size and steps at the run's end."""
        for name, value in (("init_counts", init_counts), ("max_counts", max_counts)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise UsageTypeError(f"initialize_count_status({name}=...) takes a whole number >= 0, got "
                                     f"{safe_repr(value)}")
        if max_counts < init_counts:
            raise UsageTypeError(f"initialize_count_status: the run ends (max_counts={max_counts}) before it starts "
                                 f"(init_counts={init_counts})")
        restored = getattr(self, "_restored_window", None) == init_counts
        self._inner_count = init_counts
        self._max_counts = max_counts
        self._remainder_counts = max_counts % self._accumulative_counts
        if init_counts % self._accumulative_counts and not restored:
            warnings.warn(
                f"the run resumes at iteration {init_counts}, inside an accumulation window of "
                f"{self._accumulative_counts}: the gradients of its first {init_counts % self._accumulative_counts} "
                "iterations are lost (load the wrapper's state_dict saved there to keep them)",
                ParamwiseWarning, stacklevel=2)
        if self._accumulative_counts > 1 and any(
                isinstance(m, nn.modules.batchnorm._BatchNorm) for m in unwrap_model(model).modules()):
            warnings.warn("gradient accumulation with BatchNorm layers: their statistics see the small batches, "
                          "so results differ slightly from one large batch", ParamwiseWarning, stacklevel=2)

    def should_update(self) -> bool:
        """Whether the iteration just backwarded completes a window (or the run)."""
        return self._inner_count % self._accumulative_counts == 0 or self._inner_count == self._max_counts

    def should_sync(self) -> bool:
        """Whether the coming iteration (not yet backwarded) completes a window, so DDP must sync."""
        coming = self._inner_count + 1
        return coming % self._accumulative_counts == 0 or coming == self._max_counts

    def scale_loss(self, loss: torch.Tensor) -> torch.Tensor:
        """``loss`` divided by the size of the window the coming iteration belongs to."""
        factor = self.window_size()
        return loss if factor == 1 else loss / factor

    def window_size(self) -> int:
        """How many iterations the current accumulation window holds (the last one may hold fewer)."""
        counts = self._accumulative_counts
        if counts == 1 or self._max_counts == -1:
            return counts
        if self._inner_count < self._max_counts - self._remainder_counts or self._remainder_counts == 0:
            return counts
        return self._remainder_counts

    @property
    def inner_count(self) -> int:
        """How many iterations (backward passes) the wrapper has counted."""
        return self._inner_count

    @property
    def accumulative_counts(self) -> int:
        return self._accumulative_counts

    @property
    def step_count(self) -> int:
        """How many optimizer steps were taken (the loss scaler's skipped ones included)."""
        return self._step_count

    @property
    def skipped_steps(self) -> int:
        """How many steps the loss scaler skipped for inf/nan gradients (always 0 without one)."""
        return 0

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        """The optimizer's ``param_groups`` (no extra group for the base lr, unlike mmengine)."""
        return self.optimizer.param_groups

    @property
    def defaults(self) -> dict[str, Any]:
        return self.optimizer.defaults

    @property
    def group_names(self) -> list[str]:
        """The label of each parameter group, as used in ``get_lr()`` keys (see ``group_labels``)."""
        return group_labels(self.optimizer.param_groups)

    def get_lr(self) -> dict[str, Any]:
        """``{'lr': [lr of each group]}`` as mmengine, plus ``'lr/<group label>': [lr]`` for every group.

        Each value is a list, as mmengine's ``RuntimeInfoHook`` logs ``value[0]`` of every key: under
        mmengine's runner the logs then show ``train/lr/<label>`` for each group, not the first group only.
        """
        groups = self.optimizer.param_groups
        out: dict[str, Any] = {"lr": [g["lr"] for g in groups]}
        out.update((f"lr/{label}", [g["lr"]]) for label, g in zip(group_labels(groups), groups))
        return out

    def get_momentum(self) -> dict[str, Any]:
        """``{'momentum': [...]}`` as mmengine (``betas[0]`` for Adam-like optimizers, else 0), plus
        ``'momentum/<group label>': [value]`` for every group."""
        groups = self.optimizer.param_groups
        values = [g["momentum"] if "momentum" in g else g["betas"][0] if "betas" in g else 0 for g in groups]
        out: dict[str, Any] = {"momentum": values}
        out.update((f"momentum/{label}", [v]) for label, v in zip(group_labels(groups), values))
        return out

    @property
    def last_grad_norm(self) -> float | dict[str, float] | None:
        """The total gradient norm before the last clipping (norm clipping only; None before it).

        With ``per_group=True``, a dict of group label -> norm. Read it when you log: it waits for the
        device, the step itself does not.
        """
        if not self._last_norms:
            return None
        if self.clip_policy is not None and self.clip_policy.per_group:
            return {label: float(norm) for label, norm in self._last_norms}
        return float(self._last_norms[0][1])

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """The optimizer's state dict plus the wrapper's counters (and the gradients of an unfinished
        window, so a resumed run continues identically). Loads into mmengine's wrapper too."""
        state = self.optimizer.state_dict()
        own: dict[str, Any] = {"inner_count": self._inner_count, "max_counts": self._max_counts,
                               "step_count": self._step_count}
        own.update(self._extra_state())
        if self._inner_count % self._accumulative_counts:
            own["window_grads"] = {
                name: p.grad.detach().clone()
                for group in self.optimizer.param_groups
                for name, p in zip(group.get("param_names", ()), group["params"]) if p.grad is not None
            }
        state[_STATE_KEY] = own
        return state

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Load a state dict of ``state_dict()`` (or of mmengine's wrapper); the caller's dict is not changed.

        The optimizer part loads by parameter name when the optimizer was built by paramwise.
        """
        state = dict(state_dict)
        own = state.pop(_STATE_KEY, None)
        scaler = state.pop("loss_scaler", None)
        state.pop("base_param_settings", None)  # mmengine's extra group for the base lr; not used here
        self.optimizer.load_state_dict(state)
        self._load_scaler(scaler)
        if own is None:
            return
        self._inner_count = int(own.get("inner_count", 0))
        self._max_counts = int(own.get("max_counts", -1))
        self._remainder_counts = self._max_counts % self._accumulative_counts if self._max_counts >= 0 else -1
        self._step_count = int(own.get("step_count", 0))
        self._load_extra_state(own)
        grads = own.get("window_grads")
        if grads:
            for group in self.optimizer.param_groups:
                for name, p in zip(group.get("param_names", ()), group["params"]):
                    if name in grads and grads[name].shape == p.shape:
                        p.grad = grads[name].to(device=p.device, dtype=p.dtype).clone()
            self._restored_window = self._inner_count

    def _extra_state(self) -> dict[str, Any]:
        return {}

    def _load_extra_state(self, own: Mapping[str, Any]) -> None:
        return None

    def _load_scaler(self, scaler: Any) -> None:
        return None

    # ------------------------------------------------------------------ clipping
    def _resolve_clip_units(self) -> None:
        groups = self.optimizer.param_groups
        assert self.clip_policy is not None
        self._clip_units = clip_units(self.clip_policy, groups, group_labels(groups))
        self._clip_layout = tuple(len(g["params"]) for g in groups)

    def _clip(self) -> None:
        if tuple(len(g["params"]) for g in self.optimizer.param_groups) != self._clip_layout:
            self._resolve_clip_units()  # add_param_group since the last step
        assert self.clip_policy is not None
        norms = clip_gradients(self.clip_policy, self._clip_units)
        if norms:
            self._last_norms = norms

    def __repr__(self) -> str:
        clip = f", {safe_repr(self.clip_policy)}" if self.clip_policy is not None else ""
        return (f"{type(self).__name__}(accumulative_counts={self._accumulative_counts}{clip})\n"
                f"optimizer: {safe_repr(self.optimizer)}")


@OPTIM_WRAPPERS.register_module()
class AmpOptimWrapper(OptimWrapper):
    """``OptimWrapper`` with mixed precision: autocast in ``optim_context`` and, for float16, a loss scaler.

    Args:
        optimizer, accumulative_counts, clip_grad: as ``OptimWrapper``.
        loss_scale: ``'dynamic'`` (torch's GradScaler defaults), a number (a static scale) or a dict of
            GradScaler arguments. Used for float16 only: bfloat16 has float32's range, nothing to scale.
        dtype: ``'float16'``, ``'bfloat16'`` or None (float16 on CUDA, bfloat16 on CPU, as mmengine).
        use_fsdp: use FSDP's ``ShardedGradScaler``.

    The device type comes from the parameters (for autocast, from the model given to ``optim_context``).
    Gradients are unscaled before clipping, so ``max_norm`` means the real norm; a step with inf/nan
    gradients is skipped by the scaler and counted in ``skipped_steps``.
    """

    config_keys: ClassVar[tuple[str, ...]] = (*OptimWrapper.config_keys, "loss_scale", "dtype", "use_fsdp")

    def __init__(self, optimizer: torch.optim.Optimizer, accumulative_counts: int = 1,
                 clip_grad: Mapping[str, Any] | None = None, loss_scale: str | float | Mapping[str, Any] = "dynamic",
                 dtype: str | torch.dtype | None = None, use_fsdp: bool = False) -> None:
        super().__init__(optimizer, accumulative_counts, clip_grad)
        problems = check_wrapper_config({"type": "AmpOptimWrapper", "dtype": dtype, "loss_scale": loss_scale,
                                         "use_fsdp": use_fsdp})
        if problems:
            raise ConfigError(problems, title="invalid AmpOptimWrapper config")
        self.device_type = _params_device_type(p for g in optimizer.param_groups for p in g["params"])
        name = _dtype_name(dtype)
        self.cast_dtype = _AMP_DTYPES[name] if name is not None else (
            torch.float16 if self.device_type == "cuda" else torch.bfloat16)
        self.loss_scaler: Any = None
        self._static_scale: float | None = None
        self._skipped: torch.Tensor | None = None
        if self.cast_dtype is torch.bfloat16:
            if loss_scale != "dynamic":
                warnings.warn(f"loss_scale={safe_repr(loss_scale)} is not used: bfloat16 has float32's range, "
                              f"so the loss is "
                              "not scaled", ParamwiseWarning, stacklevel=2)
            return
        if self.device_type != "cuda":
            raise ConfigError([Problem((*_ROOT, "dtype"), (
                f"float16 mixed precision needs a CUDA model, but the parameters are on {self.device_type}: move "
                "the model to the GPU before building the wrapper, or use dtype='bfloat16' on the CPU"))],
                title="invalid AmpOptimWrapper config")
        if use_fsdp:
            from torch.distributed.fsdp.sharded_grad_scaler import ShardedGradScaler
            scaler_cls: Any = ShardedGradScaler
        else:
            scaler_cls = torch.amp.GradScaler
        if isinstance(loss_scale, Mapping):
            self.loss_scaler = scaler_cls(self.device_type, **loss_scale)
        elif isinstance(loss_scale, (int, float)):
            self._static_scale = float(loss_scale)
            self.loss_scaler = scaler_cls(self.device_type, init_scale=self._static_scale)
        else:
            self.loss_scaler = scaler_cls(self.device_type)

    def backward(self, loss: torch.Tensor, **kwargs: Any) -> None:
        """Backward the loss, multiplied by the scaler's scale under float16."""
        if self.loss_scaler is not None:
            loss = self.loss_scaler.scale(loss)
        loss.backward(**kwargs)
        self._inner_count += 1

    def step(self, **kwargs: Any) -> None:
        """Unscale the gradients, clip them, then step through the scaler (which skips inf/nan steps)."""
        scaler = self.loss_scaler
        if scaler is None or not scaler.is_enabled():
            super().step(**kwargs)
            return
        scaler.unscale_(self.optimizer)  # clip the real gradients, and learn whether any is inf/nan
        if self.clip_policy is not None:
            self._clip()
        found = sum(scaler._found_inf_per_device(self.optimizer).values())  # torch's record of unscale_
        scaler.step(self.optimizer, **kwargs)
        scaler.update(self._static_scale)
        self._step_count += 1
        if isinstance(found, torch.Tensor):  # summed on the device: no sync until skipped_steps is read
            found = (found > 0).to(torch.int64)
            self._skipped = found if self._skipped is None else self._skipped + found

    @property
    def skipped_steps(self) -> int:
        return 0 if self._skipped is None else int(self._skipped)

    @contextmanager
    def optim_context(self, model: nn.Module) -> Iterator[None]:
        """Skip DDP's sync on iterations that do not step, and autocast to ``cast_dtype`` on the model's device."""
        device_type = _params_device_type(model.parameters()) if isinstance(model, nn.Module) else self.device_type
        with super().optim_context(model), torch.autocast(device_type, dtype=self.cast_dtype):
            yield

    def _extra_state(self) -> dict[str, Any]:
        return {"skipped_steps": self.skipped_steps}

    def _load_extra_state(self, own: Mapping[str, Any]) -> None:
        skipped = int(own.get("skipped_steps", 0))
        self._skipped = torch.tensor(skipped) if skipped else None

    def state_dict(self) -> dict[str, Any]:
        """As ``OptimWrapper.state_dict``, plus the loss scaler's state under ``'loss_scaler'`` (mmengine's key)."""
        state = super().state_dict()
        if self.loss_scaler is not None:
            state["loss_scaler"] = self.loss_scaler.state_dict()
        return state

    def _load_scaler(self, scaler: Any) -> None:
        if scaler is not None and self.loss_scaler is not None and scaler:
            self.loss_scaler.load_state_dict(scaler)

    def __repr__(self) -> str:
        dtype = str(self.cast_dtype).removeprefix("torch.")
        return super().__repr__().replace("(", f"(dtype={dtype}, scaler={self.loss_scaler is not None}, ", 1)


def _params_device_type(params: Any) -> str:
    for p in params:
        return str(p.device.type)
    return "cpu"


@OPTIM_WRAPPERS.register_module()
class OptimWrapperDict:
    """Several named optimizer wrappers (a GAN's generator and discriminator), as mmengine's class.

    Each wrapper is stepped on its own (``wrappers['generator'].update_params(loss)``); the dict
    gathers their learning rates, momenta and state for logs and checkpoints.
    """

    def __init__(self, **optim_wrappers: OptimWrapper) -> None:
        for key, value in optim_wrappers.items():
            if not isinstance(value, OptimWrapper):
                raise UsageTypeError(f"OptimWrapperDict holds optimizer wrappers, got {key}={type(value).__name__}")
        self.optim_wrappers = dict(optim_wrappers)

    def update_params(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError("OptimWrapperDict cannot tell which wrapper a loss is for: call "
                                  "wrappers[name].update_params(loss)")

    backward = step = update_params

    def zero_grad(self, **kwargs: Any) -> None:
        for wrapper in self.optim_wrappers.values():
            wrapper.zero_grad(**kwargs)

    def optim_context(self, model: nn.Module) -> Any:
        raise NotImplementedError("use the optim_context of one wrapper: wrappers[name].optim_context(model)")

    def initialize_count_status(self, model: nn.Module, init_counts: int, max_counts: int) -> None:
        """Does nothing, as in mmengine: each wrapper's run length is set on that wrapper."""

    @property
    def param_groups(self) -> dict[str, list[dict[str, Any]]]:
        return {name: w.param_groups for name, w in self.optim_wrappers.items()}

    def get_lr(self) -> dict[str, Any]:
        """``'<name>.lr'`` per wrapper as mmengine, and ``'<name>.lr/<group label>'`` for every group."""
        return {f"{name}.{key}": value for name, w in self.optim_wrappers.items() for key, value in w.get_lr().items()}

    def get_momentum(self) -> dict[str, Any]:
        return {f"{name}.{key}": value for name, w in self.optim_wrappers.items()
                for key, value in w.get_momentum().items()}

    def state_dict(self) -> dict[str, Any]:
        return {name: w.state_dict() for name, w in self.optim_wrappers.items()}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        unknown = [k for k in state_dict if k not in self.optim_wrappers]
        if unknown:
            raise ConfigError([Problem(("state_dict", str(k)), f"names no wrapper "
                                                               f"here.{did_you_mean(safe_str(k), self)}")
                               for k in unknown], title="state dict does not fit this OptimWrapperDict")
        for name, state in state_dict.items():
            self.optim_wrappers[name].load_state_dict(state)

    def items(self) -> Iterator[tuple[str, OptimWrapper]]:
        yield from self.optim_wrappers.items()

    def values(self) -> Iterator[OptimWrapper]:
        yield from self.optim_wrappers.values()

    def keys(self) -> Iterator[str]:
        yield from self.optim_wrappers.keys()

    def __getitem__(self, key: str) -> OptimWrapper:
        if key not in self.optim_wrappers:
            raise KeyError(f"no wrapper named {safe_repr(key)}.{did_you_mean(key, self.optim_wrappers)}")
        return self.optim_wrappers[key]

    def __contains__(self, key: object) -> bool:
        return key in self.optim_wrappers

    def __iter__(self) -> Iterator[str]:
        return iter(self.optim_wrappers)

    def __len__(self) -> int:
        return len(self.optim_wrappers)

    def __repr__(self) -> str:
        return "\n".join(f"{name}: {safe_repr(w)}" for name, w in self.optim_wrappers.items())


# ------------------------------------------------------------------------------------------ building
def _is_multi(cfg: Mapping[str, Any]) -> bool:
    return (bool(cfg) and not any(k in cfg for k in ("optimizer", "constructor", "type"))
            and all(isinstance(v, Mapping) and "optimizer" in v for v in cfg.values()))


def build_optim_wrapper(model: nn.Module, cfg: Mapping[str, Any]) -> OptimWrapper | OptimWrapperDict:
    """Build the optimizer wrapper of an ``optim_wrapper`` config for ``model``; ``cfg`` is not modified.

    ``cfg`` is ``dict(type='OptimWrapper' | 'AmpOptimWrapper', optimizer=..., paramwise_cfg=...,
    constructor=..., clip_grad=..., accumulative_counts=..., dtype=..., loss_scale=...)``. The optimizer
    is built by the constructor the config names (any registered one). A dict of such configs keyed by
    submodule names (``dict(generator=dict(optimizer=...), discriminator=dict(optimizer=...))``) gives an
    ``OptimWrapperDict``, each wrapper built for its submodule.

    Raises:
        ConfigError: every problem of the wrapper keys at once, each at ``optim_wrapper -> key``.
    """
    if not isinstance(model, nn.Module):
        raise UsageTypeError(f"build_optim_wrapper needs a torch.nn.Module, got {type(model).__name__}")
    if isinstance(cfg, Mapping) and "optim_wrapper" in cfg:
        raise ConfigError([Problem(_ROOT, "this is a whole config: pass cfg['optim_wrapper'] to build_optim_wrapper")],
                          title="wrong config passed")
    if isinstance(cfg, Mapping) and _is_multi(cfg):
        root = unwrap_model(model)
        children = dict(root.named_modules())
        missing = [k for k in cfg if k not in children or not k]
        if missing:
            raise ConfigError([Problem((*_ROOT, safe_str(k)), (
                f"names no submodule of the model, so there is nothing for this optimizer to optimize."
                f"{did_you_mean(safe_str(k), [n for n in children if n and '.' not in n])}")) for k in missing],
                title="invalid optim_wrapper")
        return OptimWrapperDict(**{str(k): _build_one(children[k], v, (*_ROOT, str(k))) for k, v in cfg.items()})
    return _build_one(model, cfg, _ROOT)


def _build_one(model: nn.Module, cfg: Any, path: tuple[str, ...]) -> OptimWrapper:
    if not isinstance(cfg, Mapping):
        raise ConfigError([Problem(path, f"must be a dict like dict(type='OptimWrapper', optimizer=dict(type='SGD', "
                                         f"lr=0.01)), got {type(cfg).__name__}", kind="type")])
    try:
        found = optimizer_config({"optim_wrapper": cfg})
    except ConfigError as e:
        raise ConfigError([_moved(p, path) for p in e.problems], title=e.title) from None
    problems = check_wrapper_config(found.wrapper, path)
    if problems:
        raise ConfigError(problems, title="invalid optim_wrapper")
    from paramwise.build.constructors import construct, optimizer_constructor

    try:
        constructor = optimizer_constructor(found.optimizer)
        with warnings.catch_warnings():  # the plan's warnings are repeated below, at their optim_wrapper paths
            warnings.simplefilter("ignore", ParamwiseWarning)
            plan = constructor.plan(model) if hasattr(constructor, "plan") else None
        if plan is None:
            optimizer = construct(constructor, model)
        else:
            for problem in (*plan.notes, *plan.warnings):
                located = _moved(Problem(found.locate(problem.path), problem.message, problem.kind), path)
                warnings.warn(str(located), ParamwiseWarning, stacklevel=3)
            optimizer = constructor.build(plan)
    except ConfigError as e:
        raise ConfigError([_moved(Problem(found.locate(p.path), p.message, p.kind), path) for p in e.problems],
                          title=e.title) from None
    try:
        return wrap_optimizer(optimizer, found.wrapper)
    except ConfigError as e:
        raise ConfigError([_moved(p, path) for p in e.problems], title=e.title) from None


def wrap_optimizer(optimizer: torch.optim.Optimizer, wrapper_cfg: Mapping[str, Any]) -> OptimWrapper:
    """Wrap an optimizer already built (e.g. from a plan) with the ``optim_wrapper`` keys of a config.

    ``wrapper_cfg`` is ``OptimizerConfig.wrapper``: ``type``, ``clip_grad``, ``accumulative_counts``, ...
    """
    problems = check_wrapper_config(wrapper_cfg)
    if problems:
        raise ConfigError(problems, title="invalid optim_wrapper")
    kwargs = {k: copy_config(v) for k, v in wrapper_cfg.items() if k != "type"}
    type_name = wrapper_cfg.get("type", "OptimWrapper")
    cls = OPTIM_WRAPPERS.get(type_name) if isinstance(type_name, str) else type_name
    wrapper = call_target(cls, {"optimizer": optimizer, **kwargs}, OPTIM_WRAPPERS.name, getattr(cls, "__name__", "?"))
    return wrapper  # type: ignore[no-any-return]


def _moved(problem: Problem, path: tuple[str, ...]) -> Problem:
    """``problem``, reported under ``path`` instead of ``optim_wrapper`` (a wrapper of an OptimWrapperDict)."""
    if path == _ROOT or problem.path[:1] != _ROOT:
        return problem
    return Problem((*path, *problem.path[1:]), problem.message, problem.kind)

