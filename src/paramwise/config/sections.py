"""Which part of a whole config is the optimizer: mmengine's ``optim_wrapper`` or mmcv's ``optimizer``.

mmengine's runner reads ``optim_wrapper`` only; mmcv-era configs have a top-level ``optimizer``
with ``paramwise_cfg`` and ``constructor`` inside it. Many real configs (mmsegmentation's
schedules) have both. The CLI and the Python API take the answer from here, so they agree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from paramwise.errors import ConfigError, Problem
from paramwise.registry import copy_config
from paramwise.suggestions import did_you_mean

__all__ = ["OptimizerConfig", "optimizer_config"]

# keys of an optim_wrapper that configure the optimizer; the others belong to the wrapper itself
_OPTIMIZER_KEYS = ("optimizer", "paramwise_cfg", "constructor")


@dataclass(frozen=True)
class OptimizerConfig:
    """The optimizer a whole config means, ready for ``build_optimizer``.

    Attributes:
        optimizer: the optimizer config with its ``paramwise_cfg`` and ``constructor`` inside.
        wrapper: the other ``optim_wrapper`` keys (``type``, ``clip_grad``, ``accumulative_counts``,
            ...), for the optimizer wrapper; empty for a top-level ``optimizer``.
        source: ``'optim_wrapper'`` or ``'optimizer'``: where the optimizer was found.
        warnings: what in the config is probably not meant (an unused top-level optimizer).
    """

    optimizer: dict[str, Any]
    wrapper: dict[str, Any] = field(default_factory=dict)
    source: str = "optimizer"
    warnings: tuple[Problem, ...] = ()

    def locate(self, path: tuple[str, ...]) -> tuple[str, ...]:
        """Where a problem reported at ``path`` of ``optimizer`` is in the whole config."""
        if self.source != "optim_wrapper" or path[:1] != ("optimizer",):
            return path
        if path[1:2] in (("paramwise_cfg",), ("constructor",)):
            return ("optim_wrapper", *path[1:])  # these sit beside the optimizer in an optim_wrapper
        return ("optim_wrapper", *path)


def optimizer_config(cfg: Mapping[str, Any]) -> OptimizerConfig:
    """The optimizer config of a whole config, as mmengine's runner reads it (``optim_wrapper`` wins).

    Raises ``ConfigError`` when there is none, or when ``paramwise_cfg`` stands where it is never read.
    """
    if not isinstance(cfg, Mapping):
        raise ConfigError([Problem((), f"a whole config must be a dict, got {type(cfg).__name__}", kind="type")])
    problems: list[Problem] = []
    if "paramwise_cfg" in cfg:
        problems.append(Problem(("paramwise_cfg",), (
            "is at the top level of the config, where nothing reads it: move it into optim_wrapper "
            "(optim_wrapper=dict(optimizer=..., paramwise_cfg=...)) or, for mmcv-style configs, into optimizer")))
    wrapper = cfg.get("optim_wrapper")
    top = cfg.get("optimizer")
    if wrapper is not None and not isinstance(wrapper, Mapping):
        problems.append(Problem(("optim_wrapper",), f"must be a dict, got {type(wrapper).__name__}", kind="type"))
        wrapper = None
    if isinstance(wrapper, Mapping) and "optimizer" in wrapper:
        return _from_wrapper(wrapper, top, problems)
    if isinstance(wrapper, Mapping):
        several = [k for k, v in wrapper.items() if isinstance(v, Mapping) and "optimizer" in v]
        if several:
            problems.append(Problem(("optim_wrapper",), (
                f"holds several optimizers ({', '.join(several)}; mmengine's OptimWrapperDict); paramwise builds one "
                f"at a time: pass optimizer_config(dict(optim_wrapper=cfg['optim_wrapper'][{several[0]!r}]))")))
        elif top is None:
            problems.append(Problem(("optim_wrapper", "optimizer"), (
                "is missing: put the optimizer config here, e.g. "
                "optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01))"),
                kind="missing"))
        else:
            misplaced = [k for k in ("paramwise_cfg", "constructor") if k in wrapper]
            problems += [Problem(("optim_wrapper", k), (
                f"is not used: the optimizer is the top-level 'optimizer', and optim_wrapper has none. Put the "
                f"optimizer into optim_wrapper (optim_wrapper=dict(optimizer=..., {k}=...)), or move {k} into "
                "the top-level optimizer")) for k in misplaced]
    if top is None and not problems:
        keys = ", ".join(sorted(map(str, cfg))) or "(none)"
        problems.append(Problem(("optim_wrapper",), (
            "is missing, and so is a top-level 'optimizer': write optim_wrapper=dict(optimizer=dict(type='AdamW', "
            f"lr=1e-3)).{did_you_mean('optim_wrapper', map(str, cfg)) or did_you_mean('optimizer', map(str, cfg))} "
            f"Top-level keys: {keys}"), kind="missing"))
    if top is not None and not isinstance(top, Mapping):
        problems.append(Problem(("optimizer",), f"must be a dict with a 'type' key, got {type(top).__name__}",
                                kind="type"))
    if problems:
        raise ConfigError(problems, title="no optimizer config")
    rest = {k: copy_config(v) for k, v in (wrapper or {}).items() if k not in _OPTIMIZER_KEYS}
    return OptimizerConfig(copy_config(top), rest, source="optimizer")


def _from_wrapper(wrapper: Mapping[str, Any], top: Any, problems: list[Problem]) -> OptimizerConfig:
    inner = wrapper["optimizer"]
    if not isinstance(inner, Mapping):
        problems.append(Problem(("optim_wrapper", "optimizer"), f"must be a dict with a 'type' key, got "
                                                                 f"{type(inner).__name__}", kind="type"))
        raise ConfigError(problems, title="no optimizer config")
    optimizer = copy_config(inner)
    for key in ("paramwise_cfg", "constructor"):
        if key in wrapper and key in optimizer:
            problems.append(Problem(("optim_wrapper", "optimizer", key), (
                f"is given twice, here and in optim_wrapper['{key}']; mmengine reads only optim_wrapper['{key}']: "
                "keep that one")))
        elif key in wrapper:
            optimizer[key] = copy_config(wrapper[key])
    if problems:
        raise ConfigError(problems, title="no optimizer config")
    warnings: list[Problem] = []
    if top is not None and copy_config(top) != copy_config(inner):
        warnings.append(Problem(("optimizer",), (
            "is not used: mmengine's runner builds optim_wrapper['optimizer'], and so does paramwise; this "
            "top-level optimizer differs from it. Remove it, or write optim_wrapper=dict(optimizer=optimizer, ...)")))
    rest = {k: copy_config(v) for k, v in wrapper.items() if k not in _OPTIMIZER_KEYS}
    return OptimizerConfig(optimizer, rest, "optim_wrapper", tuple(warnings))
