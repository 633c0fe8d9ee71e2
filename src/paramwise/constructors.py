"""Optimizer constructors: turn (model, optimizer config, paramwise_cfg) into an optimizer.

``DefaultOptimizerConstructor`` runs the one-way flow: config checks -> rules per parameter ->
plan -> groups -> ``torch.optim`` optimizer. Users register their own constructors in
``OPTIMIZER_BUILDERS`` and select them with ``constructor=`` in the config.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Mapping
from types import FrameType
from typing import Any

import torch
from torch import nn

from .errors import ConfigError, ParamwiseError, ParamwiseWarning, Problem
from .groups import group_entries, torch_param_groups
from .optimizers import OPTIMIZERS
from .paramwise_cfg import resolve_config
from .plan import Plan
from .registry import Registry, build_from_cfg, call_target, copy_config
from .rules import RuleOutcome, apply_rules
from .suggestions import suggest

__all__ = [
    "CONSTRUCTORS",
    "OPTIMIZER_BUILDERS",
    "DefaultOptimizerConstructor",
    "build_optimizer",
    "optimizer_constructor",
    "plan_params",
]

OPTIMIZER_BUILDERS = Registry("optimizer constructor")
CONSTRUCTORS = OPTIMIZER_BUILDERS  # mmcv's other name for the same registry

_LIST_AT_MOST = 8
_PACKAGE_DIR = os.path.dirname(__file__)


def _warn(message: str) -> None:
    """Warn with the location of the first caller outside paramwise, whatever the call path."""
    level = 2
    frame: FrameType | None = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        level, frame = level + 1, frame.f_back
    warnings.warn(message, ParamwiseWarning, stacklevel=level)


def _short_list(names: list[str]) -> str:
    shown = ", ".join(repr(n) for n in names[:_LIST_AT_MOST])
    more = len(names) - _LIST_AT_MOST
    return shown + (f" and {more} more" if more > 0 else "")


def _match_name(name: str) -> str:
    """The text custom keys are matched against: root parameters as '.name', as in mmengine."""
    return name if "." in name else f".{name}"


def _name_candidates(outcome: RuleOutcome) -> set[str]:
    """Module prefixes and parameter names: what a misspelt custom key was probably meant to be."""
    names = {e.name for e in outcome.entries} | set(outcome.frozen)
    out: set[str] = set()
    for name in names:
        parts = name.split(".")
        out.update(".".join(parts[: i + 1]) for i in range(len(parts)))
        out.update(parts)
    return out


# also under mmengine's name, so configs written for mmengine's optim_wrapper select it unchanged
@OPTIMIZER_BUILDERS.register_module(name=["DefaultOptimizerConstructor", "DefaultOptimWrapperConstructor"])
class DefaultOptimizerConstructor:
    """Builds an optimizer with mmengine's ``paramwise_cfg`` semantics and merged parameter groups.

    Args:
        optimizer_cfg: ``dict(type='AdamW', lr=..., ...)``, the optimizer and its arguments.
        paramwise_cfg: per-parameter rules (custom_keys, *_mult, bypass_duplicate, norm_types,
            frozen, strict, group_by); see the README for each.
    """

    def __init__(self, optimizer_cfg: Mapping[str, Any], paramwise_cfg: Mapping[str, Any] | None = None) -> None:
        self.optimizer_cfg = copy_config(optimizer_cfg)
        self.paramwise_cfg = copy_config(paramwise_cfg) if paramwise_cfg is not None else None
        self.spec, self.options = resolve_config(self.optimizer_cfg, self.paramwise_cfg)

    def _warnings(self, outcome: RuleOutcome) -> list[str]:
        notes = []
        if outcome.frozen:
            notes.append(
                f"{len(outcome.frozen)} parameters have requires_grad=False and are left out of the optimizer "
                f"({_short_list(list(outcome.frozen))}); set paramwise_cfg['frozen']='include' to keep them "
                "for later unfreezing"
            )
        if outcome.duplicates:
            pairs = [f"{skipped} (= {kept})" for skipped, kept in outcome.duplicates]
            notes.append(f"shared parameters optimized once, under their first name: {_short_list(pairs)}")
        return notes

    def _unmatched(self, outcome: RuleOutcome) -> tuple[list[Problem], list[Problem]]:
        """Config entries that match nothing (errors under strict), and keys that only look unused."""
        nothing: list[Problem] = []
        notes: list[Problem] = []
        idle = [k for k, n in outcome.key_matches.items() if n == 0]
        candidates = _name_candidates(outcome) if idle else set()
        for key in idle:
            path = ("optimizer", "paramwise_cfg", "custom_keys", key)
            shadowed = [e for e in outcome.entries if key in _match_name(e.name)]
            frozen = [n for n in outcome.frozen if key in _match_name(n)]
            if shadowed:
                winners = sorted({r for e in shadowed for r in e.rules.values() if r.startswith("custom_keys")})
                notes.append(Problem(path, f"decides no parameter: the {len(shadowed)} it matches (e.g. "
                                           f"{shadowed[0].name!r}) are decided first by {', '.join(winners)}; "
                                           "keys are tried longest first, then alphabetically"))
            elif frozen:
                notes.append(Problem(path, f"matches only frozen parameters ({_short_list(frozen)}), which are "
                                           "left out of the optimizer"))
            else:
                close = suggest(key, candidates)
                near = f"; closest names: {', '.join(map(repr, close))}" if close else ""
                nothing.append(Problem(path, f"matches no parameter of the model{near}"))
        for name in outcome.unmatched_norm_types:
            nothing.append(Problem(
                ("optimizer", "paramwise_cfg", "norm_types"),
                f"{name!r} matches no module of the model (by class or class name)",
            ))
        return nothing, notes

    def plan(self, model: nn.Module) -> Plan:
        """Resolve every parameter's hyperparameters and group them, without building anything."""
        outcome = apply_rules(model, self.spec, self.options)
        unmatched, idle = self._unmatched(outcome)
        if unmatched and self.options.strict:
            title = "config entries that match nothing in the model (paramwise_cfg['strict']=True)"
            raise ConfigError(unmatched, title=title)
        notes = self._warnings(outcome) + [str(p) for p in (*unmatched, *idle)]
        for note in notes:
            _warn(note)
        groups = group_entries(outcome.entries, self.spec.kwargs, self.options.group_by)
        return Plan(
            optimizer=self.spec.type_name,
            base=dict(self.spec.kwargs),
            entries=outcome.entries,
            groups=groups,
            warnings=tuple(notes),
            frozen=outcome.frozen,
            duplicates=outcome.duplicates,
        )

    def build(self, plan: Plan) -> torch.optim.Optimizer:
        """Construct the optimizer that ``plan`` describes."""
        if not plan.entries:
            fix = (f"{len(plan.frozen)} are frozen: unfreeze some, or set paramwise_cfg['frozen']='include'"
                   if plan.frozen else "the model has none at all")
            raise ParamwiseError(f"the model has no parameters to optimize; {fix}")
        # the groups are new and hold 100k tensors at most: passed on without build_from_cfg's copy
        kwargs = {self.spec.params_arg: torch_param_groups(plan.entries, plan.groups), **copy_config(self.spec.kwargs)}
        return call_target(self.spec.cls, kwargs, OPTIMIZERS.name, self.spec.type_name)

    def __call__(self, model: nn.Module) -> torch.optim.Optimizer:
        return self.build(self.plan(model))


def _split(cfg: Mapping[str, Any]) -> tuple[Any, dict[str, Any], Any]:
    if not isinstance(cfg, Mapping):
        raise TypeError(f"an optimizer config must be a dict like dict(type='AdamW', lr=1e-3), got {cfg!r}")
    optimizer_cfg: dict[str, Any] = copy_config(cfg)
    constructor = optimizer_cfg.pop("constructor", None) or "DefaultOptimizerConstructor"
    paramwise_cfg = optimizer_cfg.pop("paramwise_cfg", None)
    return constructor, optimizer_cfg, paramwise_cfg


def optimizer_constructor(cfg: Mapping[str, Any]) -> Any:
    """The constructor ``cfg`` selects, built and validated: ``.plan(model)`` then ``.build(plan)``.

    For callers that want both the plan and the optimizer without checking the config twice.
    """
    constructor, optimizer_cfg, paramwise_cfg = _split(cfg)
    return build_from_cfg(
        {"type": constructor, "optimizer_cfg": optimizer_cfg, "paramwise_cfg": paramwise_cfg}, OPTIMIZER_BUILDERS
    )


def build_optimizer(model: nn.Module, cfg: Mapping[str, Any]) -> torch.optim.Optimizer:
    """Build the optimizer that ``cfg`` describes for ``model``; ``cfg`` is not modified.

    ``constructor`` (default ``DefaultOptimizerConstructor``) and ``paramwise_cfg`` are taken
    out of a copy of ``cfg``; the rest is the optimizer's config.
    """
    return optimizer_constructor(cfg)(model)


def plan_params(model: nn.Module, cfg: Mapping[str, Any]) -> Plan:
    """Return the plan of ``build_optimizer(model, cfg)``: every parameter's values and rules."""
    constructor = optimizer_constructor(cfg)
    if not hasattr(constructor, "plan"):
        raise TypeError(
            f"{type(constructor).__name__} has no plan(model) method, so its plan cannot be shown; "
            "derive it from DefaultOptimizerConstructor or add one"
        )
    return constructor.plan(model)
