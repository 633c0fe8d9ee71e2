"""The per-parameter rules: which lr, weight decay and options each parameter gets, and why.

Semantics follow mmengine's ``DefaultOptimWrapperConstructor`` option by option: the first
matching custom key wins and stops the other rules; otherwise bias/dcn lr multipliers apply,
and one weight-decay multiplier in the order norm, bias, depthwise conv, flat (1-D).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from .errors import SharedParameterError
from .layers import NormMatcher, is_depthwise_conv
from .optimizers import optimizer_default
from .parameters import iter_param_sites
from .paramwise_cfg import CustomKey, OptimizerSpec, ParamwiseOptions

__all__ = ["DEFAULT_RULE", "ParamEntry", "RuleOutcome", "apply_rules"]

DEFAULT_RULE = "default"


@dataclass(frozen=True)
class ParamEntry:
    """One parameter's resolved hyperparameters, each with the rule that set it."""

    name: str
    shape: tuple[int, ...]
    trainable: bool
    hyperparams: Mapping[str, Any]
    rules: Mapping[str, str]
    param: torch.Tensor = field(repr=False, compare=False)

    @property
    def numel(self) -> int:
        return int(self.param.numel())


@dataclass(frozen=True)
class RuleOutcome:
    """Everything the rules found: entries in model order and what was left out."""

    entries: tuple[ParamEntry, ...]
    frozen: tuple[str, ...]  # left out because requires_grad=False
    duplicates: tuple[tuple[str, str], ...]  # (skipped name, name it was first seen under)
    key_matches: Mapping[str, int]  # custom key -> parameters it decided
    unmatched_norm_types: tuple[str, ...]


_NO_DEFAULT = object()


def _custom_rule(key: str) -> str:
    return f"custom_keys[{key!r}]"


def apply_rules(model: nn.Module, spec: OptimizerSpec, options: ParamwiseOptions) -> RuleOutcome:
    """Walk ``model`` once and resolve every parameter's hyperparameters (linear time)."""
    base: dict[str, Any] = {}
    if spec.base_lr is not None:
        base["lr"] = spec.base_lr
    if spec.base_wd is not None:
        base["weight_decay"] = spec.base_wd
    keys = options.custom_keys
    # an option that some custom key sets gets its effective value (config or signature default) on
    # every parameter, so that a custom value equal to it does not split a group off for nothing
    for option in sorted({k for ck in keys for k in ck.options} - base.keys()):
        value = spec.kwargs.get(option, optimizer_default(spec.cls, option, _NO_DEFAULT))
        if value is not _NO_DEFAULT:
            base[option] = value
    base_rules = dict.fromkeys(base, DEFAULT_RULE)
    is_norm = NormMatcher(options.norm_types)
    key_matches = {ck.key: 0 for ck in keys}
    seen: dict[int, str] = {}
    entries: list[ParamEntry] = []
    frozen: list[str] = []
    duplicates: list[tuple[str, str]] = []
    include_frozen = options.frozen == "include"

    for site in iter_param_sites(model):
        param = site.param
        first = seen.get(id(param))
        if first is not None:
            if not options.bypass_duplicate:
                raise SharedParameterError(
                    f"parameter {site.name!r} is the same tensor as {first!r} (a shared or tied "
                    "parameter). Set paramwise_cfg['bypass_duplicate']=True to optimize it once, "
                    f"under {first!r}.",
                    first=first,
                    second=site.name,
                )
            duplicates.append((site.name, first))
            continue
        seen[id(param)] = site.name
        if not param.requires_grad and not include_frozen:
            frozen.append(site.name)
            continue
        hyper = dict(base)
        rules = dict(base_rules)
        # mmengine tests root parameters as '.name'
        match_name = site.name if site.prefix else f".{site.name}"
        custom = next((ck for ck in keys if ck.key in match_name), None)
        if custom is not None:
            key_matches[custom.key] += 1
            _apply_custom(custom, spec, hyper, rules)
        else:
            _apply_builtin(site.leaf, site.prefix, site.module, site.parent_is_dcn, param, is_norm,
                           spec, options, hyper, rules)
        entries.append(ParamEntry(site.name, tuple(param.shape), param.requires_grad, hyper, rules, param))

    unmatched_norms = tuple(sorted(is_norm.names - is_norm.matched_names))
    return RuleOutcome(tuple(entries), tuple(frozen), tuple(duplicates), key_matches, unmatched_norms)


def _apply_custom(ck: CustomKey, spec: OptimizerSpec, hyper: dict[str, Any], rules: dict[str, str]) -> None:
    rule = _custom_rule(ck.key)
    if spec.base_lr is not None:
        hyper["lr"] = spec.base_lr * (ck.lr_mult if ck.lr_mult is not None else 1.0)
        rules["lr"] = rule
    if spec.base_wd is not None:
        hyper["weight_decay"] = spec.base_wd * (ck.decay_mult if ck.decay_mult is not None else 1.0)
        rules["weight_decay"] = rule
    for option, value in ck.options.items():  # explicit values win over multipliers, as in mmengine
        hyper[option] = value
        rules[option] = rule


def _apply_builtin(
    leaf: str,
    prefix: str,
    module: nn.Module,
    parent_is_dcn: bool,
    param: torch.Tensor,
    is_norm: NormMatcher,
    spec: OptimizerSpec,
    o: ParamwiseOptions,
    hyper: dict[str, Any],
    rules: dict[str, str],
) -> None:
    norm = is_norm(module)
    base_lr, base_wd = spec.base_lr, spec.base_wd
    if base_lr is not None:
        if o.bias_lr_mult is not None and leaf == "bias" and not (norm or parent_is_dcn):
            hyper["lr"] = base_lr * o.bias_lr_mult
            rules["lr"] = "bias_lr_mult"
        if (
            o.dcn_offset_lr_mult is not None
            and parent_is_dcn
            and "conv_offset" in prefix
            and isinstance(module, nn.Conv2d)
        ):
            hyper["lr"] = base_lr * o.dcn_offset_lr_mult
            rules["lr"] = "dcn_offset_lr_mult"
    if base_wd is None:
        return
    if norm and o.norm_decay_mult is not None:
        hyper["weight_decay"], rules["weight_decay"] = base_wd * o.norm_decay_mult, "norm_decay_mult"
    elif leaf == "bias" and not parent_is_dcn and o.bias_decay_mult is not None:
        hyper["weight_decay"], rules["weight_decay"] = base_wd * o.bias_decay_mult, "bias_decay_mult"
    elif o.dwconv_decay_mult is not None and is_depthwise_conv(module):
        hyper["weight_decay"], rules["weight_decay"] = base_wd * o.dwconv_decay_mult, "dwconv_decay_mult"
    elif param.ndim == 1 and not parent_is_dcn and o.flat_decay_mult is not None:
        hyper["weight_decay"], rules["weight_decay"] = base_wd * o.flat_decay_mult, "flat_decay_mult"
