"""The per-parameter rules: which lr, weight decay and options each parameter gets, and why.

Semantics follow mmengine's ``DefaultOptimWrapperConstructor`` option by option: the first
matching custom key wins and stops the other rules; otherwise bias/dcn lr multipliers apply,
and one weight-decay multiplier in the order norm, bias, depthwise conv, flat (1-D).

A parameter's outcome depends only on a few facts (which custom key matched, or: norm layer,
depthwise conv, DCN offset, bias, 1-D), so each distinct outcome is computed once and its
read-only mappings are shared by every parameter that has it. That keeps a 100k-tensor model
at a few microseconds per parameter, and lets grouping hash each outcome once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from types import MappingProxyType
from typing import Any, NamedTuple

import torch
from torch import nn

from .errors import SharedParameterError
from .layers import NormMatcher, is_depthwise_conv
from .optimizers import optimizer_default
from .parameters import iter_module_sites
from .paramwise_cfg import CustomKey, OptimizerSpec, ParamwiseOptions

__all__ = ["DEFAULT_RULE", "ParamEntry", "RuleOutcome", "apply_rules", "plan_base"]

DEFAULT_RULE = "default"


class ParamEntry(NamedTuple):
    """One parameter's resolved hyperparameters, each with the rule that set it.

    ``hyperparams`` and ``rules`` are read-only and shared between parameters with the same outcome.
    """

    name: str
    param: torch.Tensor
    trainable: bool
    hyperparams: Mapping[str, Any]
    rules: Mapping[str, str]

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.param.shape)

    @property
    def numel(self) -> int:
        return int(self.param.numel())

    def __eq__(self, other: object) -> bool:  # tensors do not compare to a bool: compare by identity
        if not isinstance(other, ParamEntry):
            return NotImplemented
        return (self.name, self.trainable, dict(self.hyperparams), dict(self.rules)) == (
            other.name, other.trainable, dict(other.hyperparams), dict(other.rules)
        ) and self.param is other.param

    def __ne__(self, other: object) -> bool:
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    def __hash__(self) -> int:
        return hash((self.name, id(self.param)))

    def __repr__(self) -> str:
        return (f"ParamEntry(name={self.name!r}, shape={self.shape}, trainable={self.trainable}, "
                f"hyperparams={dict(self.hyperparams)}, rules={dict(self.rules)})")


@dataclass(frozen=True)
class RuleOutcome:
    """Everything the rules found: entries in model order and what was left out."""

    entries: tuple[ParamEntry, ...]
    frozen: tuple[str, ...]  # left out because requires_grad=False
    duplicates: tuple[tuple[str, str], ...]  # (skipped name, name it was first seen under)
    key_matches: Mapping[str, int]  # custom key -> parameters it decided
    unmatched_norm_types: tuple[str, ...]


class _Facts(NamedTuple):
    """What the built-in rules look at; parameters with equal facts get equal outcomes."""

    norm: bool
    depthwise: bool
    dcn_offset: bool  # a Conv2d named *conv_offset* inside a deformable conv
    parent_is_dcn: bool
    bias: bool
    flat: bool  # 1-D


_NO_DEFAULT = object()


def _custom_rule(key: str) -> str:
    return f"custom_keys[{key!r}]"


def plan_base(spec: OptimizerSpec, options: ParamwiseOptions) -> dict[str, Any]:
    """The values every parameter starts from: base lr and weight decay, and the effective value of
    each option a custom key sets (config or signature default), so that a custom value equal to it
    does not split a group off for nothing."""
    base: dict[str, Any] = {}
    if spec.base_lr is not None:
        base["lr"] = spec.base_lr
    if spec.base_wd is not None:
        base["weight_decay"] = spec.base_wd
    for option in sorted({k for ck in options.custom_keys for k in ck.options} - base.keys()):
        value = spec.kwargs.get(option, optimizer_default(spec.cls, option, _NO_DEFAULT))
        if value is not _NO_DEFAULT:
            base[option] = value
    return base


def apply_rules(
    model: nn.Module,
    spec: OptimizerSpec,
    options: ParamwiseOptions,
    root_prefix: str = "",
    root_in_dcn: bool = False,
    recurse: bool = True,
) -> RuleOutcome:
    """Walk ``model`` once and resolve every parameter's hyperparameters (linear time).

    ``root_prefix`` names ``model`` inside a larger model, and ``root_in_dcn`` says its parent is a
    deformable conv (mmengine's ``add_params(params, module, prefix, is_dcn_module)``); without
    ``recurse`` only ``model``'s own parameters are resolved.
    """
    base = plan_base(spec, options)
    keys = options.custom_keys
    base_rules = dict.fromkeys(base, DEFAULT_RULE)
    is_norm = NormMatcher(options.norm_types)
    key_matches = dict.fromkeys((ck.key for ck in keys), 0)
    seen: dict[int, str] = {}
    entries: list[ParamEntry] = []
    frozen: list[str] = []
    duplicates: list[tuple[str, str]] = []
    include_frozen = options.frozen == "include"

    def resolved(apply: Callable[[dict[str, Any], dict[str, str]], None]) -> tuple[Mapping[str, Any], ...]:
        """Base values overlaid by one rule's outcome, read-only: shared by every matching parameter."""
        hyper, rules = dict(base), dict(base_rules)
        apply(hyper, rules)
        return MappingProxyType(hyper), MappingProxyType(rules)

    # hot loop (once per parameter): plain tuples, list slots and local names on purpose
    key_strings = [ck.key for ck in keys]
    custom_outcomes = {ck.key: resolved(partial(_apply_custom, ck, spec)) for ck in keys}
    builtin_outcomes: dict[tuple[bool, ...], list[Any]] = {}  # module facts -> 4 slots (bias, flat)
    new_entry = tuple.__new__
    module_classes: set[type] = set()
    sites = iter_module_sites(model, root_prefix, root_in_dcn) if recurse else [(root_prefix, model, root_in_dcn)]
    for prefix, module, parent_is_dcn in sites:
        module_classes.add(type(module))
        slots = None
        for leaf, param in module._parameters.items():
            if param is None:
                continue
            name = f"{prefix}.{leaf}" if prefix else leaf
            trainable = param.requires_grad
            first = seen.get(id(param))
            if first is not None:
                if not trainable and not include_frozen:
                    continue  # a frozen tensor is left out once, under its first name; not a duplicate
                if first.rpartition(".")[0] == prefix:
                    continue  # one Parameter under two attribute names of one module: one parameter to torch
                if not options.bypass_duplicate:
                    raise SharedParameterError(
                        f"parameter {name!r} is the same tensor as {first!r} (a shared or tied "
                        "parameter). Set paramwise_cfg['bypass_duplicate']=True to optimize it once, "
                        f"under {first!r}.",
                        first=first,
                        second=name,
                    )
                duplicates.append((name, first))
                continue
            seen[id(param)] = name
            if not trainable and not include_frozen:
                frozen.append(name)
                continue
            found = None
            if key_strings:
                match_name = name if prefix else f".{name}"  # mmengine tests root parameters as '.name'
                for key in key_strings:
                    if key in match_name:
                        key_matches[key] += 1
                        found = custom_outcomes[key]
                        break
            if found is None:
                if slots is None:
                    facts = (
                        is_norm(module),
                        is_depthwise_conv(module),
                        parent_is_dcn and "conv_offset" in prefix and isinstance(module, nn.Conv2d),
                        parent_is_dcn,
                    )
                    slots = builtin_outcomes.get(facts)
                    if slots is None:
                        slots = builtin_outcomes[facts] = [
                            resolved(partial(_apply_builtin, _Facts(*facts, bias, flat), spec, options))
                            for bias in (False, True)
                            for flat in (False, True)
                        ]
                found = slots[(leaf == "bias") * 2 + (param.ndim == 1)]
            # tuple.__new__ skips NamedTuple's Python-level __new__: a third of the per-parameter cost
            entries.append(new_entry(ParamEntry, (name, param, trainable, *found)))

    unmatched_norms = tuple(is_norm.unmatched(module_classes))
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
    f: _Facts, spec: OptimizerSpec, o: ParamwiseOptions, hyper: dict[str, Any], rules: dict[str, str]
) -> None:
    base_lr, base_wd = spec.base_lr, spec.base_wd
    if base_lr is not None:
        if o.bias_lr_mult is not None and f.bias and not (f.norm or f.parent_is_dcn):
            hyper["lr"] = base_lr * o.bias_lr_mult
            rules["lr"] = "bias_lr_mult"
        if o.dcn_offset_lr_mult is not None and f.dcn_offset:
            hyper["lr"] = base_lr * o.dcn_offset_lr_mult
            rules["lr"] = "dcn_offset_lr_mult"
    if base_wd is None:
        return
    if f.norm and o.norm_decay_mult is not None:
        hyper["weight_decay"], rules["weight_decay"] = base_wd * o.norm_decay_mult, "norm_decay_mult"
    elif f.bias and not f.parent_is_dcn and o.bias_decay_mult is not None:
        hyper["weight_decay"], rules["weight_decay"] = base_wd * o.bias_decay_mult, "bias_decay_mult"
    elif f.depthwise and o.dwconv_decay_mult is not None:
        hyper["weight_decay"], rules["weight_decay"] = base_wd * o.dwconv_decay_mult, "dwconv_decay_mult"
    elif f.flat and not f.parent_is_dcn and o.flat_decay_mult is not None:
        hyper["weight_decay"], rules["weight_decay"] = base_wd * o.flat_decay_mult, "flat_decay_mult"
