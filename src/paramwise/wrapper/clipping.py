"""Gradient clipping for the optimizer wrapper: mmengine's ``clip_grad``, plus clipping per group.

mmengine clips every gradient of the optimizer by one norm (``type='norm'``) or by value
(``type='value'``). paramwise adds two keys: ``per_group=True`` clips each parameter group by its
own norm (a head with large gradients no longer shrinks the backbone's step), and ``groups=[...]``
restricts clipping to some parameters: a string selects the parameters whose names contain it, an
integer selects a whole parameter group by its index. The policy is a frozen value checked once;
the parameters it touches are resolved once per optimizer, so a step only filters missing gradients.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from paramwise import checks
from paramwise.errors import ConfigError, Problem
from paramwise.suggestions import did_you_mean, plural, safe_repr, safe_str

__all__ = ["CLIP_TYPES", "ClipPolicy", "ClipUnit", "check_clip_config", "clip_units", "clip_gradients"]

CLIP_TYPES = ("norm", "value")
_KEYS = {
    "norm": ("type", "max_norm", "norm_type", "error_if_nonfinite", "foreach", "per_group", "groups"),
    "value": ("type", "clip_value", "foreach", "groups"),
}
_REQUIRED = {"norm": "max_norm", "value": "clip_value"}


def check_clip_config(clip_grad: Any, path: tuple[str, ...] = ("optim_wrapper", "clip_grad")) -> list[Problem]:
    """Every problem of a ``clip_grad`` config, each at ``path -> key``; an empty list when it is valid.

    ``None`` (no clipping) is valid. Parameter names in ``groups`` are checked when the wrapper is
    built, since only the optimizer knows them.
    """
    if clip_grad is None:
        return []
    if not isinstance(clip_grad, Mapping):
        return [Problem(path, f"must be a dict like dict(type='norm', max_norm=1.0) or None, got "
                              f"{type(clip_grad).__name__}: {safe_repr(clip_grad)}", kind="type")]
    kind = clip_grad.get("type", "norm")  # mmengine's default
    wrong_type = checks.one_of(kind, (*path, "type"), CLIP_TYPES)
    if wrong_type:
        return wrong_type
    problems: list[Problem] = []
    accepted = _KEYS[kind]
    for key in clip_grad:
        if key in accepted:
            continue
        other = "value" if kind == "norm" else "norm"
        if key in _KEYS[other]:
            hint = f" It belongs to type={safe_repr(other)} clipping; this one is type={safe_repr(kind)}."
        else:
            hint = did_you_mean(safe_str(key), accepted)
        problems.append(Problem((*path, safe_str(key)), f"is not an option of {kind} clipping.{hint} "
                                                   f"It accepts: {', '.join(accepted)}"))
    required = _REQUIRED[kind]
    if required not in clip_grad:
        example = "max_norm=1.0" if kind == "norm" else "clip_value=1.0"
        problems.append(Problem((*path, required), f"is missing: {kind} clipping needs it, e.g. "
                                                   f"clip_grad=dict(type={safe_repr(kind)}, "
                                                   f"{example})", kind="missing"))
    else:
        problems += checks.real(clip_grad[required], (*path, required), low=0, low_open=True)
    norm_type = clip_grad.get("norm_type", 2.0)
    if not _is_inf(norm_type):
        problems += checks.real(norm_type, (*path, "norm_type"), low=0, low_open=True,
                                meaning="2 is the usual L2 norm; inf or 'inf' the largest entry")
    for flag in ("per_group", "error_if_nonfinite"):
        if flag in clip_grad:
            problems += checks.boolean(clip_grad[flag], (*path, flag))
    if "foreach" in clip_grad:
        problems += checks.boolean(clip_grad["foreach"], (*path, "foreach"), optional=True)
    if "groups" in clip_grad:
        problems += _check_groups(clip_grad["groups"], (*path, "groups"))
    return problems


def _is_inf(norm_type: Any) -> bool:
    """``inf`` or the text ``'inf'`` (any case): the max norm, which torch takes as ``norm_type``."""
    if isinstance(norm_type, str):
        return norm_type.lower() == "inf"
    return isinstance(norm_type, float) and norm_type == math.inf


def _check_groups(groups: Any, path: tuple[str, ...]) -> list[Problem]:
    if groups is None:
        return []
    if isinstance(groups, (str, int)) or not isinstance(groups, Sequence) or not groups:
        return [Problem(path, "must be a non-empty list of parameter-name substrings (str) or group indices (int), "
                              f"e.g. groups=['backbone'], got {safe_repr(groups)}", kind="type")]
    problems = []
    for i, item in enumerate(groups):
        where = (*path[:-1], f"groups[{i}]")
        if checks.is_int(item):
            problems += checks.integer(item, where, low=0, meaning="a group index")
        elif not isinstance(item, str) or not item:
            problems.append(Problem(where, "must be a non-empty parameter-name substring or a group index, got "
                                           f"{safe_repr(item)}", kind="type"))
    return problems


@dataclass(frozen=True)
class ClipPolicy:
    """What to clip and how: a checked ``clip_grad`` config as a value whose ``repr`` reads as the rule."""

    kind: str
    bound: float
    norm_type: float = 2.0
    per_group: bool = False
    groups: tuple[str | int, ...] | None = None
    error_if_nonfinite: bool = False
    foreach: bool | None = None

    @classmethod
    def from_config(cls, clip_grad: Mapping[str, Any] | None,
                    path: tuple[str, ...] = ("optim_wrapper", "clip_grad")) -> ClipPolicy | None:
        """The policy of a ``clip_grad`` config, or None for no clipping; raises ``ConfigError``."""
        problems = check_clip_config(clip_grad, path)
        if problems:
            raise ConfigError(problems, title="invalid clip_grad")
        if clip_grad is None:
            return None
        kind = clip_grad.get("type", "norm")
        groups = clip_grad.get("groups")
        norm_type = clip_grad.get("norm_type", 2.0)
        return cls(
            kind=kind,
            bound=float(clip_grad[_REQUIRED[kind]]),
            norm_type=math.inf if isinstance(norm_type, str) else float(norm_type),
            per_group=bool(clip_grad.get("per_group", False)),
            groups=tuple(groups) if groups is not None else None,
            error_if_nonfinite=bool(clip_grad.get("error_if_nonfinite", False)),
            foreach=clip_grad.get("foreach"),
        )

    def __repr__(self) -> str:
        if self.kind == "value":
            text = f"clip each gradient value to +-{self.bound:g}"
        else:
            norm = "L2" if self.norm_type == 2 else ("max" if math.isinf(self.norm_type) else f"L{self.norm_type:g}")
            text = f"clip the {norm} gradient norm to {self.bound:g}" + (", per group" if self.per_group else "")
        return f"ClipPolicy({text}{f', only {list(self.groups)}' if self.groups is not None else ''})"


@dataclass(frozen=True)
class ClipUnit:
    """Parameters clipped together (one norm): a label for logs and the tensors."""

    label: str
    params: tuple[torch.Tensor, ...]


def clip_units(policy: ClipPolicy, param_groups: Sequence[Mapping[str, Any]], labels: Sequence[str],
               path: tuple[str, ...] = ("optim_wrapper", "clip_grad")) -> tuple[ClipUnit, ...]:
    """The parameters ``policy`` clips, in units that share one norm; raises ``ConfigError`` for a
    ``groups`` entry that selects nothing (with the closest names)."""
    chosen: list[list[torch.Tensor]] = [[] for _ in param_groups]
    if policy.groups is None:
        chosen = [list(g["params"]) for g in param_groups]
    else:
        problems: list[Problem] = []
        taken: list[set[int]] = [set() for _ in param_groups]
        for i, item in enumerate(policy.groups):
            where = (*path, f"groups[{i}]")
            hits = 0
            if isinstance(item, int):
                if item >= len(param_groups):
                    have = f"{plural(len(param_groups), 'group')} (0 to {len(param_groups) - 1})"
                    problems.append(Problem(where, f"group {safe_repr(item, 40)} does not exist: the optimizer has "
                                                   f"{have}"))
                    continue
                hits = len(param_groups[item]["params"])
                taken[item].update(range(hits))
            else:
                names_seen: list[str] = []
                for g, group in enumerate(param_groups):
                    names = group.get("param_names")
                    if names is None:
                        problems.append(Problem(where, "selects parameters by name, but the optimizer's groups have "
                                                       "no 'param_names' (build it with paramwise); use group "
                                                       "indices instead"))
                        break
                    names_seen += names
                    for k, name in enumerate(names):
                        if item in name:
                            taken[g].add(k)
                            hits += 1
                else:
                    if not hits:
                        modules = {n.rsplit(".", 1)[0] for n in names_seen}
                        problems.append(Problem(where, f"{safe_repr(item)} is in no parameter name, so nothing "
                                                       f"would be "
                                                       f"clipped.{did_you_mean(item, modules)}"))
        if problems:
            raise ConfigError(problems, title="invalid clip_grad")
        chosen = [[g["params"][k] for k in sorted(ks)]
                  for g, ks in zip(param_groups, taken)]
    if policy.per_group and policy.kind == "norm":
        return tuple(ClipUnit(label, tuple(ps)) for label, ps in zip(labels, chosen) if ps)
    return (ClipUnit("all", tuple(p for ps in chosen for p in ps)),)


def clip_gradients(policy: ClipPolicy, units: Sequence[ClipUnit]) -> list[tuple[str, torch.Tensor]]:
    """Clip the gradients of ``units`` in place; returns each unit's total norm before clipping (norm
    clipping only; units without gradients this step are left out). Norms stay tensors: no device sync."""
    norms: list[tuple[str, torch.Tensor]] = []
    for unit in units:
        grads = [p for p in unit.params if p.grad is not None and p.requires_grad]  # as mmengine filters
        if not grads:
            continue
        if policy.kind == "value":
            torch.nn.utils.clip_grad_value_(grads, policy.bound, foreach=policy.foreach)
        else:
            norm = torch.nn.utils.clip_grad_norm_(grads, policy.bound, norm_type=policy.norm_type,
                                                  error_if_nonfinite=policy.error_if_nonfinite,
                                                  foreach=policy.foreach)
            norms.append((unit.label, norm))
    return norms
