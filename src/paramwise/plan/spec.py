"""Checks an optimizer config and its ``paramwise_cfg`` up front and turns them into typed options.

Every problem is collected (with its path in the config and the likely fix) and reported in one
``ConfigError``, so a user fixes a config in one pass instead of one error per run.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from paramwise import checks
from paramwise.checks import Path
from paramwise.errors import ConfigError, ParamwiseError, Problem, UsageTypeError
from paramwise.optimizers import (
    OPTIMIZERS,
    annotation_names,
    argument_choices,
    optimizer_arguments,
    optimizer_default,
    optimizer_parameter,
)
from paramwise.registry import Registry, copy_config
from paramwise.suggestions import did_you_mean, format_value, safe_repr

__all__ = [
    "ARGUMENT_CHECKS",
    "DECAY_MULTS",
    "LR_MULTS",
    "PARAMWISE_KEYS",
    "PARAM_RULE_OPTIONS",
    "GROUP_FLAGS",
    "CustomKey",
    "OptimizerSpec",
    "ParamwiseOptions",
    "register_group_flag",
    "resolve_config",
    "resolve_custom_keys",
]

#: Keys of a custom_keys entry that are not optimizer arguments but flags that training hooks read from
#: the parameter group (mmengine copies every key of the entry into the group). Users declare more
#: with ``register_group_flag`` or ``paramwise_cfg['group_flags']``; anything else is a typo.
GROUP_FLAGS: dict[str, str] = {
    "fix_lr": "mmpretrain's SimSiamHook keeps this group's lr fixed",
    "lars_exclude": "mmpretrain's LARS skips the trust-ratio adaptation (and weight decay) for this group",
    "lr_scale": "timm's schedulers multiply this group's lr by it",
}

#: ``paramwise_cfg`` options that add a ``param``-stage rule (layer decay, width scaling, tags). Each
#: entry is a function ``(value, paramwise_cfg, spec, path, problems) -> rule or None`` registered under
#: its option's name; the modules that define them are imported on the first lookup.
PARAM_RULE_OPTIONS = Registry(
    "paramwise_cfg rule option",
    locations=("paramwise.plan.layer_decay", "paramwise.plan.width_scaling", "paramwise.plan.no_decay"),
)

LR_MULTS = ("bias_lr_mult", "dcn_offset_lr_mult")
DECAY_MULTS = ("norm_decay_mult", "bias_decay_mult", "dwconv_decay_mult", "flat_decay_mult")
PARAMWISE_KEYS = frozenset(
    {*LR_MULTS, *DECAY_MULTS, "custom_keys", "bypass_duplicate", "norm_types", "frozen", "strict", "group_by",
     "group_flags", "force_default_settings", "compose", "routes"}
)
FROZEN_CHOICES = ("exclude", "include")
GROUP_BY_CHOICES = ("hyperparams", "param")
_ROOT = ("optimizer",)
_MISSING = object()
_PW = (*_ROOT, "paramwise_cfg")


#: The common optimizer arguments and what each must be, checked wherever they appear (the optimizer
#: config and every custom_keys entry) so that a bad value is reported with its path, before torch
#: raises without one (or, in a parameter group, accepts it silently: torch checks only the defaults).
#: A check applies only where the optimizer's own default has that shape: Adafactor's ``eps`` is a pair.
ARGUMENT_CHECKS: dict[str, str] = {
    "lr": "number",
    "weight_decay": "number",
    "momentum": "number",
    "dampening": "number",
    "eps": "number",
    "alpha": "number",
    "betas": "betas",
    "nesterov": "bool",
    "amsgrad": "bool",
}


def register_group_flag(name: str, description: str = "") -> None:
    """Declare a custom_keys option that is copied into the parameter group for hooks to read."""
    if not isinstance(name, str) or not name.isidentifier():
        raise UsageTypeError(f"a group flag name must be an identifier string, got {safe_repr(name)}")
    GROUP_FLAGS[name] = description or "declared with register_group_flag"


@dataclass(frozen=True)
class CustomKey:
    """One ``custom_keys`` entry: a substring of parameter names and what it sets."""

    key: str
    lr_mult: float | None = None
    decay_mult: float | None = None
    options: Mapping[str, Any] = field(default_factory=dict)  # set as given (momentum, betas, flags, ...)


@dataclass(frozen=True)
class ParamwiseOptions:
    """A validated ``paramwise_cfg``; ``None`` multipliers leave values alone."""

    custom_keys: tuple[CustomKey, ...] = ()  # in matching order: longest first, then alphabetical
    bias_lr_mult: float | None = None
    bias_decay_mult: float | None = None
    norm_decay_mult: float | None = None
    dwconv_decay_mult: float | None = None
    flat_decay_mult: float | None = None
    dcn_offset_lr_mult: float | None = None
    bypass_duplicate: bool = False
    norm_types: tuple[type | str, ...] = ()
    frozen: str = "exclude"
    strict: bool = False
    group_by: str = "hyperparams"
    group_flags: frozenset[str] = frozenset()  # declared in this paramwise_cfg (GROUP_FLAGS hold the rest)
    force_default_settings: bool = False  # mmsegmentation: built-in rules replace a custom key's values
    compose: bool = False  # paramwise: built-in rules multiply a custom key's values
    extra: Mapping[str, Any] = field(default_factory=dict)  # keys a custom constructor reads itself
    param_rules: tuple[Any, ...] = ()  # rules of the param stage, from PARAM_RULE_OPTIONS
    routes: tuple[Any, ...] = ()  # RouteSpec per entry of paramwise_cfg['routes'] (plan/routes.py), in order


@dataclass(frozen=True)
class OptimizerSpec:
    """The optimizer half of a config: the class, its keyword arguments and the base values."""

    cls: type
    type_name: str
    kwargs: Mapping[str, Any]
    params_arg: str
    named: frozenset[str]  # the keywords its signature names
    accepted: frozenset[str] | None  # None: it also takes **kwargs, so anything goes
    base_lr: float | None
    base_wd: float | None


def _is_scalar_tensor(value: Any) -> bool:
    """A one-element floating tensor: torch takes one as lr so that compiled steps do not recompile."""
    return isinstance(value, torch.Tensor) and value.numel() == 1 and value.is_floating_point()


def _key_text(key: Any) -> str:
    """A config key as one element of a Problem's path: a string as it is, anything else by its repr."""
    return key if isinstance(key, str) else safe_repr(key)


def _number(value: Any) -> Any:
    """``value``, or the float a one-element floating tensor holds (torch takes one as lr)."""
    return float(value) if _is_scalar_tensor(value) else value


def _is_base_value(value: Any) -> bool:
    """A base lr or weight decay a multiplier can scale: a finite real number or a scalar tensor."""
    return checks.is_finite_real(_number(value))


def _number_problems(value: Any, path: Path) -> list[Problem]:
    """Why ``value`` is not a finite number >= 0 (a scalar tensor holding one is fine), at ``path``."""
    return checks.real(_number(value), path, low=0)


def _betas_problems(value: Any, path: Path) -> list[Problem]:
    """Why ``value`` is not a pair of coefficients in [0, 1), each at ``path -> [i]``."""
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        return [Problem(path, f"must be a pair of numbers in [0, 1), such as (0.9, 0.999), got {safe_repr(value)}",
                        kind="value" if isinstance(value, (tuple, list)) else "type")]
    return [p for i, beta in enumerate(value) for p in checks.real(_number(beta), (*path, f"[{i}]"), low=0, high=1,
                                                                     high_open=True)]


def _argument_problems(cls: Any, key: Any, value: Any, path: Path) -> list[Problem]:
    """Why ``value`` does not fit ``cls``'s argument ``key``, at ``path``.

    The common arguments have their own checks with bounds (ARGUMENT_CHECKS); every other argument is
    checked against the type of its default in ``cls``'s signature (see ``_default_shape_problems``).
    """
    if not isinstance(key, str):
        return []
    default = optimizer_default(cls, key, _MISSING)
    check = ARGUMENT_CHECKS.get(key)
    if check is None or not _common_check_applies(check, default):
        return _default_shape_problems(cls, key, value, default, path)
    if value is None:
        if default is None:
            return []
        use = "" if default is _MISSING else f", or remove the key to use the default {format_value(default)}"
        return [Problem(path, f"is empty (None); write a value{use}")]
    if check == "number":
        return _number_problems(value, path)
    if check == "bool":
        return checks.boolean(value, path)
    return _betas_problems(value, path)


def _common_check_applies(check: str, default: Any) -> bool:
    """Whether a common argument's check fits this optimizer: its default, where known, has that shape
    (Adafactor's ``eps`` is a pair, not a number)."""
    if default in (_MISSING, None):
        return True
    if check == "number":
        return _is_number(default)
    if check == "bool":
        return isinstance(default, bool)
    return isinstance(default, (tuple, list)) and len(default) == 2


def _is_number(value: Any) -> bool:
    return isinstance(_number(value), (int, float)) and not isinstance(value, bool)


def _default_shape_problems(cls: Any, key: str, value: Any, default: Any, path: Path) -> list[Problem]:
    """Why ``value`` does not have the shape of ``cls``'s default for ``key``, at ``path``.

    A bool default takes a bool; a number a finite real (a whole number where the annotation says
    ``int``); a tuple of numbers a list or tuple as long, each item a finite real (None where the
    default's item is None); a string a string (one of the known names, if any). A default of None or
    none at all says nothing: known names and ``bool | None`` / ``int | None`` annotations are checked,
    the rest is left to the optimizer (whose TypeError or ValueError becomes a ConfigError when built).
    """
    choices = argument_choices(cls, key)
    param = optimizer_parameter(cls, key)
    allowed = annotation_names(param.annotation) if param is not None else frozenset()
    if default in (_MISSING, None):
        optional = default is None
        if choices is not None:
            return checks.one_of(value, path, choices, optional=optional)
        if allowed - {"None"} == {"bool"}:
            return checks.boolean(value, path, optional=optional)
        if allowed - {"None"} == {"int"}:
            return checks.integer(value, path, optional=optional)
        return []
    if value is None:
        return [Problem(path, f"is empty (None); write a value, or remove the key to use the default "
                              f"{format_value(default)}")]
    if isinstance(default, bool):
        return checks.boolean(value, path)
    if _is_number(default):
        if allowed == {"int"} and isinstance(default, int):
            return checks.integer(value, path)
        return checks.real(_number(value), path)
    if isinstance(default, str):
        if choices is not None:
            return checks.one_of(value, path, choices)
        return [] if isinstance(value, str) else [
            Problem(path, f"must be a string, such as the default {default!r}, got {safe_repr(value)}", kind="type")]
    if isinstance(default, (tuple, list)) and default and all(d is None or _is_number(d) for d in default):
        return _tuple_problems(value, default, path)
    return []


def _tuple_problems(value: Any, default: tuple[Any, ...] | list[Any], path: Path) -> list[Problem]:
    """Why ``value`` is not a tuple of numbers shaped like ``default`` (None allowed where it holds None)."""
    if not isinstance(value, (tuple, list)) or len(value) != len(default):
        what = "numbers" if all(d is not None for d in default) else "numbers or None"
        return [Problem(path, f"must be a tuple of {len(default)} {what}, such as the default "
                              f"{format_value(default)}, got {safe_repr(value)}",
                        kind="value" if isinstance(value, (tuple, list)) else "type")]
    return [p for i, (item, d) in enumerate(zip(value, default))
            for p in checks.real(_number(item), (*path, f"[{i}]"), optional=d is None)]


def _not_an_optimizer(cls: Any) -> str | None:
    """Why ``cls`` cannot be an optimizer's ``type``, or None.

    A class must subclass ``torch.optim.Optimizer`` (``type=dict`` would build a dict); so must the
    class a ``functools.partial`` wraps. Other callables (factory functions, callable instances) are
    taken on trust: what they return is only known once they are called.
    """
    target = cls.func if isinstance(cls, functools.partial) else cls
    if not isinstance(target, type):
        return None if callable(target) else "must be an optimizer name or class"
    if target is torch.optim.Optimizer:  # registered for mmengine's lookups, as mmengine does
        return ("is torch.optim.Optimizer, the base class of every optimizer: it has no update rule (its step "
                "raises NotImplementedError); name a concrete optimizer, e.g. type='AdamW'")
    try:
        ok = issubclass(target, torch.optim.Optimizer)
    except TypeError:
        ok = False
    if ok:
        return None
    return (
        f"is {safe_repr(target)}, which is not an optimizer: a class given as 'type' must subclass "
        "torch.optim.Optimizer (or name a registered optimizer, e.g. type='AdamW')"
    )


def _check_mult(value: Any, path: Path, problems: list[Problem]) -> float | None:
    """A multiplier (a finite number >= 0, or a scalar tensor holding one) as a float; None after appending
    why it is not one."""
    found = _number_problems(value, path)
    problems += found
    return None if found else float(value)


def _resolve_optimizer(cfg: Any, problems: list[Problem], root: Path = _ROOT) -> OptimizerSpec | None:
    """The checked spec of an optimizer config at ``root`` (the main one, or a route's); None when unusable."""
    if not isinstance(cfg, Mapping):
        problems.append(Problem(root, f"must be a dict with a 'type' key, got {type(cfg).__name__}", kind="type"))
        return None
    cfg = dict(cfg)
    for key in [k for k in cfg if k in ("paramwise_cfg", "paramwise_options", "constructor")]:
        value = cfg.pop(key)
        if key == "paramwise_options":
            problems.append(Problem((*root, key), "is the old mmcv spelling; rename it to 'paramwise_cfg'"))
        elif value is not None:
            problems.append(Problem(
                (*root, key),
                f"is not an optimizer argument: pass the optimizer config to build_optimizer(model, cfg), "
                f"which takes {key!r} out, or give it to the constructor separately",
            ))
    for key in [k for k in cfg if not isinstance(k, str)]:
        cfg.pop(key)
        problems.append(Problem((*root, _key_text(key)), (
            f"is a key of type {type(key).__name__}; optimizer arguments are named by strings"), kind="type"))
    for key in [k for k in cfg if k in PARAMWISE_KEYS]:
        cfg.pop(key)
        problems.append(Problem((*root, key), "is a paramwise_cfg option; move it into paramwise_cfg"))
    type_value = cfg.pop("type", None)
    if type_value is None:
        problems.append(Problem((*root, "type"), "is missing: name the optimizer, e.g. type='AdamW'", kind="missing"))
        return None
    try:
        cls = _optimizer_class(type_value, (*root, "type"))
    except (ParamwiseError, ImportError) as e:
        problems.append(Problem((*root, "type"), str(e)))
        return None
    not_optimizer = _not_an_optimizer(cls)
    if not_optimizer is not None:
        kind = "value" if isinstance(type_value, str) or callable(type_value) else "type"
        shown = "" if not_optimizer.startswith("is ") else f", got {safe_repr(type_value)}"
        problems.append(Problem((*root, "type"), f"{not_optimizer}{shown}", kind=kind))
        return None
    name = getattr(cls, "__name__", None)
    type_name = type_value if isinstance(type_value, str) else name if isinstance(name, str) else safe_repr(cls)
    if cls is not type_value and not isinstance(type_value, str):
        type_name = _plain_name(type_value)  # a lazy import from a config: keep the name the user wrote
    params_arg, named, takes_kwargs = optimizer_arguments(cls)
    accepted = None if takes_kwargs else named
    if accepted is not None:
        for key in cfg:
            if key not in accepted:
                problems.append(Problem(
                    (*root, key),
                    f"{type_name} does not take {key!r}.{did_you_mean(key, accepted)} "
                    f"It takes: {', '.join(sorted(accepted))}",
                ))
    # without lr in the config the optimizer's default is the base (None is a real default: e.g.
    # Adafactor's relative step); weight decay has no such fallback, as in mmengine
    default_lr = optimizer_default(cls, "lr", _MISSING)
    base_lr = cfg.get("lr", None if default_lr is _MISSING else default_lr)
    if "lr" not in cfg and default_lr is _MISSING and "lr" in named:
        message = f"is missing and {type_name} has no default lr; set lr"
        problems.append(Problem((*root, "lr"), message, kind="missing"))
    elif "lr" in cfg and cfg["lr"] is None and default_lr is not None:
        # `lr:` left empty in YAML: torch would fail comparing None with a number, far from the cause
        default = "" if default_lr is _MISSING else f", or remove the key to use {type_name}'s default {default_lr}"
        problems.append(Problem((*root, "lr"), f"is empty (None); write a number{default}"))
    base_wd = cfg.get("weight_decay")
    for key, value in cfg.items():
        if (key == "lr" and value is None) or (accepted is not None and key not in accepted):
            continue  # reported above
        problems += _argument_problems(cls, key, value, (*root, key))
    _check_nesterov(cls, cfg, problems, root)
    return OptimizerSpec(
        cls=cls,
        type_name=type_name,
        kwargs=cfg,
        params_arg=params_arg or "params",
        named=named,
        accepted=accepted,
        base_lr=base_lr if _is_base_value(base_lr) else None,
        base_wd=base_wd if checks.is_finite_real(base_wd) else None,
    )


def _plain_name(value: Any) -> str:
    """``str(value)`` (a lazy import's own spelling), or its safe repr when that fails."""
    try:
        text = str(value)
    except Exception:
        return safe_repr(value)
    return text if isinstance(text, str) else safe_repr(value)


def _check_nesterov(cls: Any, cfg: Mapping[str, Any], problems: list[Problem], root: Path = _ROOT) -> None:
    """SGD's nesterov needs momentum > 0 and no dampening: say so at the path, before torch does without one."""
    if not (isinstance(cls, type) and issubclass(cls, torch.optim.SGD)) or cfg.get("nesterov") is not True:
        return
    momentum = cfg.get("momentum", optimizer_default(cls, "momentum", 0))
    dampening = cfg.get("dampening", optimizer_default(cls, "dampening", 0))
    if not _number_problems(momentum, ()) and not _number_problems(dampening, ()) and (
        float(momentum) <= 0 or float(dampening) != 0
    ):
        problems.append(Problem((*root, "nesterov"), (
            f"needs momentum > 0 and dampening = 0, got momentum={format_value(momentum)} and "
            f"dampening={format_value(dampening)}; set momentum (e.g. 0.9) or nesterov=False")))


def _optimizer_class(type_value: Any, where: Path = (*_ROOT, "type")) -> Any:
    """The class a config's ``type`` names: a registry name, a class, or a lazy import from a config file."""
    if isinstance(type_value, str):
        return OPTIMIZERS.get(type_value)
    from paramwise.config.lazy import LazyObject  # light: no torch, no config machinery

    if isinstance(type_value, LazyObject):  # `from torch.optim import AdamW` in a lazy config
        return type_value.resolve(".".join(where))
    return type_value


def _base_missing(spec: OptimizerSpec | None, key: str) -> bool:
    """Whether a multiplier lacks its base value; a base that is set but invalid is reported on its own."""
    if spec is None or key in spec.kwargs:
        return False
    return (spec.base_lr if key == "lr" else spec.base_wd) is None


def resolve_custom_keys(
    raw: Any, spec: OptimizerSpec | None, flags: frozenset[str], problems: list[Problem]
) -> tuple[CustomKey, ...]:
    path = (*_PW, "custom_keys")
    if not isinstance(raw, Mapping):
        message = f"must be a dict of name substring -> options, got {type(raw).__name__}"
        problems.append(Problem(path, message, kind="type"))
        return ()
    out = []
    for key in raw:
        if not isinstance(key, str) or not key:
            message = "keys must be non-empty strings (substrings of parameter names)"
            problems.append(Problem((*path, safe_repr(key)), message))
    # mmengine's matching order: longest key first, ties alphabetical
    for key in sorted(sorted(k for k in raw if isinstance(k, str) and k), key=len, reverse=True):
        entry = raw[key]
        where = (*path, key)
        if not isinstance(entry, Mapping):
            problems.append(Problem(where, (
                f"must be a dict of options (lr_mult, decay_mult, ...), got {safe_repr(entry)}"), kind="type"))
            continue
        entry = dict(entry)
        for option in [o for o in entry if not isinstance(o, str)]:
            entry.pop(option)
            problems.append(Problem((*where, safe_repr(option)), (
                f"is an option name of type {type(option).__name__}; options are named by strings"), kind="type"))
        lr_mult = entry.pop("lr_mult", None)
        decay_mult = entry.pop("decay_mult", None)
        if lr_mult is not None:
            lr_mult = _check_mult(lr_mult, (*where, "lr_mult"), problems)
            if _base_missing(spec, "lr"):
                problems.append(Problem((*where, "lr_mult"), "needs a base lr: set lr in the optimizer config"))
        if decay_mult is not None:
            decay_mult = _check_mult(decay_mult, (*where, "decay_mult"), problems)
            if _base_missing(spec, "weight_decay"):
                problems.append(Problem(
                    (*where, "decay_mult"), "needs a base weight_decay: set weight_decay in the optimizer config"
                ))
        for option, value in entry.items():
            if spec is None or option in flags:
                continue
            if option in spec.named or spec.accepted is None:
                problems += _argument_problems(spec.cls, option, value, (*where, option))
            if option in spec.named:
                continue
            near = did_you_mean(option, [*spec.named, *flags, "lr_mult", "decay_mult"])
            # an optimizer taking **kwargs accepts any name, but not a misspelt multiplier or flag
            if spec.accepted is not None or did_you_mean(option, ["lr_mult", "decay_mult", *flags]):
                problems.append(Problem(
                    (*where, option),
                    f"{spec.type_name} does not take {option!r}.{near} A custom key may set lr_mult, "
                    "decay_mult, any argument of the optimizer, or a group flag that a hook reads "
                    f"({', '.join(sorted(flags))}; declare your own in paramwise_cfg['group_flags'])"
                    + _split_key_hint(key, option, value),
                ))
        out.append(CustomKey(key, lr_mult, decay_mult, entry))
    return tuple(out)


def _split_key_hint(key: str, option: str, value: Any) -> str:
    """A dict under a custom key's option is a dotted name split at its dot (an unquoted --cfg-options key)."""
    if not isinstance(value, Mapping):
        return ""
    return (f". For the custom key '{key}.{option}' (a name with a dot), quote it in --cfg-options and "
            f"dotlists: ...custom_keys.\"{key}.{option}\"=..., or in Python write "
            f"custom_keys={{'{key}.{option}': dict(...)}}")


def _resolve_flags(pw: dict[str, Any], problems: list[Problem]) -> frozenset[str]:
    """The group flags this config may set: the known ones and those it declares in ``group_flags``."""
    declared = pw.get("group_flags", ())
    if isinstance(declared, str):
        declared = [declared]
    if isinstance(declared, Mapping):  # {name: description}
        declared = list(declared)
    if not isinstance(declared, (list, tuple)) or not all(isinstance(f, str) and f.isidentifier() for f in declared):
        message = f"must be a list of flag names (identifiers), got {safe_repr(declared)}"
        problems.append(Problem((*_PW, "group_flags"), message, kind="type"))
        declared = ()
    return frozenset(GROUP_FLAGS) | frozenset(declared)


def _param_rule_options(pw: Mapping[Any, Any]) -> dict[str, Any]:
    """The param-stage options ``pw`` sets, in sorted order (their factors commute; the order is for display)."""
    return {key: PARAM_RULE_OPTIONS.get(key) for key in sorted(k for k in pw if isinstance(k, str))
            if key not in PARAMWISE_KEYS and key in PARAM_RULE_OPTIONS}


def _resolve_paramwise(
    raw: Any, spec: OptimizerSpec | None, problems: list[Problem], allow_extra: bool = False
) -> ParamwiseOptions:
    if raw is None:
        return ParamwiseOptions()
    if not isinstance(raw, Mapping):
        problems.append(Problem(_PW, f"must be a dict or None, got {type(raw).__name__}", kind="type"))
        return ParamwiseOptions()
    # None means unset for the keys paramwise knows; an unknown key is reported whatever its value
    pw = {k: v for k, v in raw.items() if v is not None}
    values: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    rule_options = _param_rule_options(pw)
    for key in list(raw):
        if key in PARAMWISE_KEYS or key in rule_options or (raw[key] is None and key in PARAM_RULE_OPTIONS):
            continue
        if allow_extra and isinstance(key, str):
            extra[key] = raw[key]  # a custom constructor's own option: it reads it itself
            continue
        if key == "paramwise_options":
            hint = " (the old mmcv spelling of paramwise_cfg itself: put its entries here directly)"
        elif spec is not None and key in spec.named:
            hint = f"; it is an argument of {spec.type_name}: put it in the optimizer config, beside 'type'"
        else:
            known = sorted({*PARAMWISE_KEYS, *PARAM_RULE_OPTIONS.names()})
            hint = "." + (did_you_mean(key, known) or f" Known keys: {', '.join(known)}")
        problems.append(Problem((*_PW, _key_text(key)), f"is not a paramwise_cfg option{hint}"))
    for key in (*LR_MULTS, *DECAY_MULTS):
        if pw.get(key) is not None:
            values[key] = _check_mult(pw[key], (*_PW, key), problems)
            if _base_missing(spec, "lr" if key in LR_MULTS else "weight_decay"):
                base = "lr" if key in LR_MULTS else "weight_decay"
                problems.append(Problem((*_PW, key), f"needs a base {base}: set {base} in the optimizer config"))
    flags = _resolve_flags(pw, problems)
    values["group_flags"] = flags - frozenset(GROUP_FLAGS)
    if "custom_keys" in pw:
        values["custom_keys"] = resolve_custom_keys(pw["custom_keys"], spec, flags, problems)
    for key in ("bypass_duplicate", "strict", "force_default_settings", "compose"):
        if key in pw:
            found = checks.boolean(pw[key], (*_PW, key))
            problems += found
            if not found:
                values[key] = pw[key]
    for key, choices in (("frozen", FROZEN_CHOICES), ("group_by", GROUP_BY_CHOICES)):
        if key in pw:
            problems += checks.one_of(pw[key], (*_PW, key), choices)
            values[key] = pw[key]
    if "norm_types" in pw:
        norm_types = pw["norm_types"]
        if isinstance(norm_types, (str, type)):
            norm_types = [norm_types]
        if not isinstance(norm_types, (list, tuple)) or not all(isinstance(t, (str, type)) for t in norm_types):
            problems.append(Problem((*_PW, "norm_types"), "must be a list of norm classes or class names"))
        else:
            values["norm_types"] = tuple(norm_types)
    if values.get("force_default_settings") and values.get("compose"):
        problems.append(Problem((*_PW, "compose"), "and force_default_settings both say how built-in rules meet "
                                                   "custom keys (multiply, or replace as mmsegmentation); keep one"))
    if "routes" in pw:
        from paramwise.plan.routes import resolve_routes  # routes.py builds on this module's checks

        values["routes"] = resolve_routes(pw["routes"], pw.get("custom_keys"), flags, spec, problems)
    values["extra"] = extra
    rules = [handler(pw[key], pw, spec, (*_PW, key), problems) for key, handler in rule_options.items()]
    values["param_rules"] = tuple(r for r in rules if r is not None)
    return ParamwiseOptions(**{k: v for k, v in values.items() if v is not None})


def resolve_config(
    optimizer_cfg: Any, paramwise_cfg: Any = None, *, allow_extra: bool = False
) -> tuple[OptimizerSpec, ParamwiseOptions]:
    """Validate both halves of a config; raise one ``ConfigError`` listing every problem.

    ``allow_extra`` lets unknown ``paramwise_cfg`` keys through into ``options.extra``: for
    constructors that read options of their own (checked after they ran: see paramwise.build.constructors).
    """
    problems: list[Problem] = []
    spec = _resolve_optimizer(copy_config(optimizer_cfg, _ROOT), problems)
    options = _resolve_paramwise(copy_config(paramwise_cfg, _PW), spec, problems, allow_extra)
    if problems or spec is None:
        raise ConfigError(problems, title="invalid optimizer config")
    return spec, options
