"""The per-parameter rules: which lr, weight decay and options each parameter gets, and why.

Rules are values: each custom key and each built-in multiplier is a small frozen object whose
``repr`` is the reason users see, and every rule of a config sits in one ordered list
(:func:`build_rules`). A resolved value is a product of factors (``Factor``): the base value, then
each rule's multiplier (or a value it sets), and the plan keeps every factor with its rule, so
``lr = 0.001 x 0.1 custom_keys['backbone'] x 0.65^3 layer_decay`` can be shown and checked.

Stages, in list order, with mmengine's semantics by default: ``custom`` (the first matching custom
key, longest first; it switches the built-in rules off for its parameters unless the config asks
for ``force_default_settings`` (mmsegmentation) or ``compose``), ``lr`` (bias and DCN-offset lr
multipliers), ``decay`` (the first of norm, bias, depthwise-conv, flat weight-decay multipliers) and
``param`` (rules that look at each parameter, such as layer-wise lr decay and width scaling: they
multiply whatever the others gave, in every mode).

A parameter's outcome up to the ``param`` stage depends only on a few facts (which custom key
matched; norm layer, depthwise conv, DCN offset, bias, 1-D), so each distinct outcome is computed
once and its read-only mappings are shared by every parameter that has it. That keeps a
100k-tensor model at a few microseconds per parameter, and lets grouping hash each outcome once.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar, NamedTuple, Protocol

import torch
from torch import nn

from paramwise.errors import ConfigError, Problem, SharedParameterError
from paramwise.layers import NormMatcher, is_depthwise_conv
from paramwise.optimizers import optimizer_default
from paramwise.plan.spec import CustomKey, OptimizerSpec, ParamwiseOptions
from paramwise.suggestions import format_value
from paramwise.walk import Sites, model_sites, own_sites

__all__ = [
    "DEFAULT_RULE",
    "CustomKeyRule",
    "Facts",
    "Factor",
    "MultiplierRule",
    "ParamEntry",
    "ParamRule",
    "RuleOutcome",
    "apply_rules",
    "build_rules",
    "fold",
    "plan_base",
]

DEFAULT_RULE = "default"


@dataclass(frozen=True)
class Factor:
    """One step in a value: the base, a multiplier, or a value set outright, with the rule behind it."""

    key: str  # the hyperparameter: 'lr', 'weight_decay', 'momentum', ...
    op: str  # 'base', 'mult' or 'set'
    value: Any
    rule: str  # the reason, e.g. "custom_keys['backbone']"
    note: str = ""  # how the value came about, e.g. '0.65^3, layer 9 of 12'

    def apply(self, current: Any) -> Any:
        """The value after this factor, given the value before it."""
        return current * self.value if self.op == "mult" else self.value

    def __str__(self) -> str:
        if self.op == "base":
            return format_value(self.value)
        text = f"{'x' if self.op == 'mult' else '='} {format_value(self.value)} {self.rule}"
        return f"{text} ({self.note})" if self.note else text


def fold(factors: Iterable[Factor]) -> Any:
    """The value that a sequence of factors gives (what the plan's values must equal)."""
    value: Any = None
    for factor in factors:
        value = factor.apply(value)
    return value


class ParamEntry(NamedTuple):
    """One parameter's resolved hyperparameters, each with the rules and factors that made it.

    ``hyperparams``, ``rules`` and ``factors`` are read-only and shared between parameters with the
    same outcome. ``rules[key]`` is the reason in a few words; ``factors[key]`` the whole product.
    """

    name: str
    param: torch.Tensor
    trainable: bool
    hyperparams: Mapping[str, Any]
    rules: Mapping[str, str]
    factors: Mapping[str, tuple[Factor, ...]] = MappingProxyType({})
    route: str = "main"  # the optimizer it goes to: "main", or a route of paramwise_cfg['routes']
    route_reason: str = ""  # why it went there (or why a matrix stayed with main), e.g. "embedding (nn.Embedding)"

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


class Facts(NamedTuple):
    """What the built-in rules look at; parameters with equal facts get equal outcomes."""

    norm: bool
    depthwise: bool
    dcn_offset: bool  # a Conv2d named *conv_offset* inside a deformable conv
    parent_is_dcn: bool
    bias: bool
    flat: bool  # 1-D


@dataclass(frozen=True, repr=False)
class CustomKeyRule:
    """A ``custom_keys`` entry: parameters whose name contains ``key`` get its multipliers and options."""

    custom: CustomKey
    stage: ClassVar[str] = "custom"

    def __repr__(self) -> str:
        return f"custom_keys[{self.custom.key!r}]"

    def factors(self, spec: OptimizerSpec) -> tuple[Factor, ...]:
        """Its factors, as mmengine applies them: lr and weight decay multiplied (x1 when unset), options set."""
        rule, ck = repr(self), self.custom
        out = []
        if spec.base_lr is not None:
            out.append(Factor("lr", "mult", ck.lr_mult if ck.lr_mult is not None else 1.0, rule))
        if spec.base_wd is not None:
            out.append(Factor("weight_decay", "mult", ck.decay_mult if ck.decay_mult is not None else 1.0, rule))
        out += [Factor(option, "set", value, rule) for option, value in ck.options.items()]
        return tuple(out)


@dataclass(frozen=True, repr=False)
class MultiplierRule:
    """A built-in ``paramwise_cfg`` multiplier (``norm_decay_mult`` ...): its repr is the option's name."""

    option: str
    key: str  # 'lr' or 'weight_decay'
    mult: float
    stage: str  # 'lr' or 'decay'
    applies: Callable[[Facts], bool] = field(compare=False)

    def __repr__(self) -> str:
        return self.option

    def factors(self, spec: OptimizerSpec) -> tuple[Factor, ...]:
        base = spec.base_lr if self.key == "lr" else spec.base_wd
        return () if base is None else (Factor(self.key, "mult", self.mult, self.option),)


class ParamRule(Protocol):
    """A rule that looks at each parameter (layer decay, width scaling, tags): the ``param`` stage.

    ``bind(model)`` prepares what it needs from the whole model (layer ids, shapes) and returns a
    function of ``(name, param, module)`` giving that parameter's factors, ``()`` where it does not apply.
    A rule may also have ``problems(model) -> tuple[Problem, ...]``: warnings about the model (e.g.
    ``no_weight_decay()`` names that match no parameter), which the plan lists.
    """

    stage: str

    def bind(self, model: nn.Module) -> Callable[[str, torch.Tensor, nn.Module], tuple[Factor, ...]]: ...


# mmengine's conditions for each built-in multiplier, in its order
_BUILTINS: tuple[tuple[str, str, str, Callable[[Facts], bool]], ...] = (
    ("bias_lr_mult", "lr", "lr", lambda f: f.bias and not (f.norm or f.parent_is_dcn)),
    ("dcn_offset_lr_mult", "lr", "lr", lambda f: f.dcn_offset),
    ("norm_decay_mult", "weight_decay", "decay", lambda f: f.norm),
    ("bias_decay_mult", "weight_decay", "decay", lambda f: f.bias and not f.parent_is_dcn),
    ("dwconv_decay_mult", "weight_decay", "decay", lambda f: f.depthwise),
    ("flat_decay_mult", "weight_decay", "decay", lambda f: f.flat and not f.parent_is_dcn),
)


def build_rules(options: ParamwiseOptions, extra: Sequence[Any] = ()) -> tuple[Any, ...]:
    """Every rule of a config in the order they apply: custom keys, lr and decay multipliers, ``extra``."""
    rules: list[Any] = [CustomKeyRule(ck) for ck in options.custom_keys]
    for option, key, stage, applies in _BUILTINS:
        mult = getattr(options, option)
        if mult is not None:
            rules.append(MultiplierRule(option, key, mult, stage, applies))
    return (*rules, *options.param_rules, *extra)


_NO_DEFAULT = object()


def plan_base(spec: OptimizerSpec, options: ParamwiseOptions) -> dict[str, Any]:
    """The values every parameter starts from: base lr and weight decay, and the effective value of
    each option a custom key sets (config or signature default), so that a custom value equal to it
    does not split a group off for nothing."""
    base: dict[str, Any] = {}
    if spec.base_lr is not None:
        # a tensor lr (for compiled steps) is copied: schedules write into the groups' lr in place,
        # which must not change the tensor in the caller's config
        base["lr"] = spec.base_lr.detach().clone() if hasattr(spec.base_lr, "detach") else spec.base_lr
    if spec.base_wd is not None:
        base["weight_decay"] = spec.base_wd
    for option in sorted({k for ck in options.custom_keys for k in ck.options} - base.keys()):
        value = spec.kwargs.get(option, optimizer_default(spec.cls, option, _NO_DEFAULT))
        if value is not _NO_DEFAULT:
            base[option] = value
    return base


Outcome = tuple[Mapping[str, Any], Mapping[str, str], Mapping[str, tuple[Factor, ...]]]


def _outcome(base_factors: Mapping[str, tuple[Factor, ...]], chosen: Iterable[Factor]) -> Outcome:
    """Values, reasons and factors from the base factors extended by ``chosen``: read-only, shareable."""
    factors = {k: list(v) for k, v in base_factors.items()}
    for factor in chosen:
        if factor.op == "mult" and factor.key not in factors:
            continue  # nothing to multiply (e.g. no base weight decay)
        factors.setdefault(factor.key, []).append(factor)
    hyper = {k: fold(v) for k, v in factors.items()}
    for key, value in hyper.items():
        if isinstance(value, float) and not math.isfinite(value) and any(f.op == "mult" for f in factors[key]):
            _raise_overflow(key, value, factors[key])
    rules = {k: " x ".join(f.rule for f in v if f.op != "base") or DEFAULT_RULE for k, v in factors.items()}
    frozen = {k: tuple(v) for k, v in factors.items()}
    return MappingProxyType(hyper), MappingProxyType(rules), MappingProxyType(frozen)


def _raise_overflow(key: str, value: float, factors: Sequence[Factor]) -> None:
    """A product of finite factors that is not finite: every factor is valid, together they overflow a float."""
    product = " ".join(str(f) for f in factors)
    raise ConfigError([Problem(("optimizer", key), (
        f"is {value}: its factors {product} multiply past the largest float; lower a multiplier or the base "
        f"{key}"))], title="a value that overflows")


def _extend(outcome: Outcome, extra: Sequence[Factor]) -> Outcome:
    return _outcome(outcome[2], extra)


def _stage_factors(
    custom: CustomKeyRule | None, facts: Facts, rules: Sequence[Any], spec: OptimizerSpec, options: ParamwiseOptions
) -> list[Factor]:
    """The factors of the custom/lr/decay stages for one parameter, in mmengine's precedence.

    With ``force_default_settings`` (mmsegmentation) a custom key's parameters still get the built-in
    multipliers, each replacing the custom value by base x multiplier; with ``compose`` they multiply it.
    """
    chosen: list[Factor] = list(custom.factors(spec)) if custom is not None else []
    if custom is not None and not (options.force_default_settings or options.compose):
        return chosen
    replace = custom is not None and options.force_default_settings
    decided_decay = False
    for rule in rules:
        if rule.stage not in ("lr", "decay") or not rule.applies(facts):
            continue
        if rule.stage == "decay":
            if decided_decay:
                continue
            decided_decay = True
        for factor in rule.factors(spec):
            if replace:  # mmsegmentation: base x multiplier, whatever the custom key gave
                base = spec.base_lr if factor.key == "lr" else spec.base_wd
                factor = Factor(factor.key, "set", base * factor.value, factor.rule,
                                f"{format_value(base)} x {format_value(factor.value)}, replacing {custom!r}")
            chosen.append(factor)
    return chosen


def apply_rules(
    model: nn.Module,
    spec: OptimizerSpec,
    options: ParamwiseOptions,
    root_prefix: str = "",
    root_in_dcn: bool = False,
    recurse: bool = True,
    extra_rules: Sequence[Any] = (),
    sites: Sites | None = None,
    route: str | None = None,
) -> RuleOutcome:
    """Resolve every parameter's hyperparameters (linear time), from ``sites`` or one walk of ``model``.

    ``sites`` is the plan's one walk of ``model`` (:func:`~paramwise.walk.model_sites`); without it
    the model is walked here. ``root_prefix`` names ``model`` inside a larger model, and
    ``root_in_dcn`` says its parent is a deformable conv (mmengine's ``add_params(params, module,
    prefix, is_dcn_module)``); without ``recurse`` only ``model``'s own parameters are resolved.
    ``extra_rules`` are ``param``-stage rules (layer decay, width scaling) applied after the others.
    ``route`` names the route these parameters go to (plan/routes.py): it is then a hyperparameter of
    every entry, so groups never mix routes.
    """
    if sites is None:
        sites = (model_sites if recurse else own_sites)(model, root_prefix, root_in_dcn)
    base = plan_base(spec, options)
    if route is not None:
        base["route"] = route
    rules = build_rules(options, extra_rules)
    base_factors = {k: (Factor(k, "base", v, DEFAULT_RULE),) for k, v in base.items()}
    custom_rules = [r for r in rules if r.stage == "custom"]
    param_rules = [r for r in rules if r.stage == "param"]
    composing = options.force_default_settings or options.compose
    is_norm = NormMatcher(options.norm_types)
    key_matches = {r.custom.key: 0 for r in custom_rules}
    seen: dict[int, str] = {}
    entries: list[ParamEntry] = []
    modules: list[nn.Module] = []  # the module of each entry, for the param stage
    frozen: list[str] = []
    duplicates: list[tuple[str, str]] = []
    include_frozen = options.frozen == "include"
    entry_route = "main" if route is None else route

    def resolved(custom: CustomKeyRule | None, facts: Facts) -> Outcome:
        return _outcome(base_factors, _stage_factors(custom, facts, rules, spec, options))

    # hot loop (once per parameter): plain tuples, list slots and local names on purpose
    keyed = [(r.custom.key, r) for r in custom_rules]
    custom_outcomes = {r.custom.key: resolved(r, Facts(*(False,) * 6)) for r in custom_rules}
    fact_outcomes: dict[tuple[Any, ...], list[Outcome]] = {}  # (custom key, module facts) -> 4 slots (bias, flat)
    new_entry = tuple.__new__

    def module_outcomes(
        matched: CustomKeyRule | None, module: nn.Module, prefix: str, parent_is_dcn: bool
    ) -> list[Outcome]:
        """The 4 outcomes (bias or not, 1-D or not) of a parameter of ``module``, cached by the facts."""
        facts = (
            is_norm(module),
            is_depthwise_conv(module),
            parent_is_dcn and "conv_offset" in prefix and isinstance(module, nn.Conv2d),
            parent_is_dcn,
        )
        key = (None if matched is None else matched.custom.key, facts)
        these = fact_outcomes.get(key)
        if these is None:
            these = fact_outcomes[key] = [
                resolved(matched, Facts(*facts, bias, flat)) for bias in (False, True) for flat in (False, True)
            ]
        return these

    # outside deformable convs and custom keys, a module's class alone decides its facts (but a Conv2d's
    # depthwise-ness): one dict lookup per parameter finds its outcomes
    class_outcomes: dict[type, list[Outcome]] = {}
    for name, param, module, prefix, leaf, parent_is_dcn in sites.params:
        trainable = param.requires_grad
        first = seen.get(param_id := id(param))
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
        seen[param_id] = name
        if not trainable and not include_frozen:
            frozen.append(name)
            continue
        found = None
        matched = None
        if keyed:
            match_name = name if prefix else f".{name}"  # mmengine tests root parameters as '.name'
            for key, rule in keyed:
                if key in match_name:
                    key_matches[key] += 1
                    matched = rule
                    found = custom_outcomes[key]
                    break
        if found is None or composing:
            if matched is None and not parent_is_dcn:
                these = class_outcomes.get(type(module))  # the common case
                if these is None:
                    these = module_outcomes(None, module, prefix, False)
                    if not isinstance(module, nn.Conv2d):
                        class_outcomes[type(module)] = these
            else:
                these = module_outcomes(matched, module, prefix, parent_is_dcn)
            found = these[(leaf == "bias") * 2 + (param.ndim == 1)]
        # tuple.__new__ skips NamedTuple's Python-level __new__: a third of the per-parameter cost
        entries.append(new_entry(ParamEntry, (name, param, trainable, *found, entry_route, "")))
        if param_rules:
            modules.append(module)

    if param_rules:
        entries = _apply_param_rules(model, entries, modules, param_rules)
    unmatched_norms = tuple(is_norm.unmatched(sites.module_classes())) if is_norm.extra else ()
    return RuleOutcome(tuple(entries), tuple(frozen), tuple(duplicates), key_matches, unmatched_norms)


def _apply_param_rules(
    model: nn.Module, entries: list[ParamEntry], modules: list[nn.Module], param_rules: Sequence[Any]
) -> list[ParamEntry]:
    """Run the ``param`` stage: each rule's factors multiply the entry's values; equal results stay shared."""
    bound = [rule.bind(model) for rule in param_rules]
    cache: dict[tuple[int, tuple[Factor, ...]], Outcome] = {}
    out = []
    for entry, module in zip(entries, modules):
        extra = tuple(f for fn in bound for f in fn(entry.name, entry.param, module))
        if not extra:
            out.append(entry)
            continue
        key = (id(entry.factors), extra)
        outcome = cache.get(key)
        if outcome is None:
            outcome = cache[key] = _extend((entry.hyperparams, entry.rules, entry.factors), extra)
        out.append(ParamEntry(entry.name, entry.param, entry.trainable, *outcome, entry.route, entry.route_reason))
    return out
