"""Optimizer constructors: turn (model, optimizer config, paramwise_cfg) into an optimizer.

``DefaultOptimizerConstructor`` runs the one-way flow: config checks -> rules per parameter ->
plan -> groups -> ``torch.optim`` optimizer. Users register their own constructors in
``OPTIMIZER_BUILDERS`` and select them with ``constructor=`` in the config.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import inspect
import re
import weakref
from collections.abc import Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import Any, ClassVar

import torch
from torch import nn

from paramwise.errors import (
    BuildTargetError,
    ConfigError,
    ModelChangedError,
    NotRegisteredError,
    Problem,
    SharedParameterError,
    warn_user,
)
from paramwise.layers import is_dcn_module as is_dcn
from paramwise.optimizers import OPTIMIZERS, cuda_problem
from paramwise.plan.groups import tensor_layout, torch_param_groups
from paramwise.plan.plan import Plan, frozen_notes, make_plan, plan_from_entries
from paramwise.plan.routes import MAIN_ROUTE, Router, matrix_refusal
from paramwise.plan.rules import DEFAULT_RULE, Factor, ParamEntry, apply_rules, plan_base
from paramwise.plan.spec import PARAMWISE_KEYS, OptimizerSpec, resolve_config
from paramwise.registry import Registry, build_from_cfg, call_target, copy_config
from paramwise.state.by_name import enable_state_by_name
from paramwise.suggestions import did_you_mean, plural, safe_repr, safe_str, short_list
from paramwise.walk import model_sites, named_parameters

__all__ = [
    "CONSTRUCTORS",
    "OPTIMIZER_BUILDERS",
    "DefaultOptimWrapperConstructor",
    "DefaultOptimizerConstructor",
    "build_optimizer",
    "check_model_parameters",
    "check_optimizer_constraints",
    "construct",
    "optimizer_constructor",
    "plan_params",
    "watch_model_parameters",
]

OPTIMIZER_BUILDERS = Registry("optimizer constructor", locations=("paramwise.build.openmmlab",))
CONSTRUCTORS = OPTIMIZER_BUILDERS  # mmcv's other name for the same registry

class _ReadTracker(dict[str, Any]):
    """A ``paramwise_cfg`` dict that records which keys were looked at, so options that a custom
    constructor never reads can be reported instead of silently ignored."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        super().__init__(data)
        self.read: set[Any] = set()

    def __getitem__(self, key: Any) -> Any:
        self.read.add(key)
        return super().__getitem__(key)

    def get(self, key: Any, default: Any = None) -> Any:
        self.read.add(key)
        return super().get(key, default)

    def __contains__(self, key: object) -> bool:
        self.read.add(key)
        return super().__contains__(key)

    def pop(self, key: Any, *default: Any) -> Any:
        self.read.add(key)
        return super().pop(key, *default)

    def setdefault(self, key: Any, default: Any = None) -> Any:
        self.read.add(key)
        return super().setdefault(key, default)


# also under mmcv's name for the registry; mmengine's DefaultOptimWrapperConstructor is below
@OPTIMIZER_BUILDERS.register_module()
class DefaultOptimizerConstructor:
    """Builds an optimizer with mmengine's ``paramwise_cfg`` semantics and merged parameter groups.

    Subclasses written for mmcv/mmengine work unchanged: one that overrides
    ``add_params(params, module, prefix='', is_dcn_module=None)`` is asked for its per-parameter
    groups, which become the plan (the rule of each value it changed is ``Class.add_params``);
    ``self.base_lr``, ``self.base_wd``, ``self.optimizer_cfg`` and ``self.paramwise_cfg`` (a dict,
    never None) are there to read, and ``paramwise_cfg`` keys of its own are let through.

    Args:
        optimizer_cfg: ``dict(type='AdamW', lr=..., ...)``, the optimizer and its arguments.
        paramwise_cfg: per-parameter rules (custom_keys, *_mult, bypass_duplicate, norm_types,
            frozen, strict, group_by, group_flags); see the README for each.
    """

    #: paramwise_cfg keys a subclass reads and checks itself (e.g. a layer-decay constructor's ``num_layers``)
    own_keys: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, optimizer_cfg: Mapping[str, Any], paramwise_cfg: Mapping[str, Any] | None = None) -> None:
        own = {k: v for k, v in (paramwise_cfg or {}).items() if k in self.own_keys} if isinstance(
            paramwise_cfg, Mapping) else {}
        rest = {k: v for k, v in paramwise_cfg.items() if k not in own} if isinstance(
            paramwise_cfg, Mapping) else paramwise_cfg
        self.spec, self.options = resolve_config(optimizer_cfg, rest, allow_extra=self._custom_add_params())
        self.own_options: dict[str, Any] = copy_config(own)
        self.optimizer_cfg: dict[str, Any] = copy_config(optimizer_cfg)
        self.paramwise_cfg: dict[str, Any] = _ReadTracker(copy_config(paramwise_cfg or {}))
        self.base_lr = self.spec.base_lr
        self.base_wd = self.spec.base_wd
        self._decided: dict[int, ParamEntry] = {}  # what this class's add_params gave each parameter
        self._added: dict[int, str] = {}  # parameters add_params has put in a group, by id

    @classmethod
    def _custom_add_params(cls) -> bool:
        return cls.add_params is not DefaultOptimizerConstructor.add_params

    def extra_rules(self, model: nn.Module) -> tuple[Any, ...]:
        """Rules a subclass adds after the built-in ones (the ``param`` stage); none by default."""
        return ()

    # ------------------------------------------------------------------ mmengine's hook
    def add_params(
        self, params: list[dict[str, Any]], module: nn.Module, prefix: str = "", is_dcn_module: Any = None
    ) -> None:
        """Append one group per parameter of ``module`` to ``params``, then recurse, as mmengine does.

        Children go through ``self.add_params`` again, so a subclass that handles some modules itself
        and passes the rest to ``super().add_params`` sees every module, as with mmengine.
        """
        outcome = apply_rules(module, self.spec, self.options, prefix, bool(is_dcn_module), recurse=False)
        for entry in outcome.entries:
            if id(entry.param) in self._added:
                if self.options.bypass_duplicate:
                    continue
                raise SharedParameterError(
                    f"parameter {entry.name!r} is already in a group (a shared parameter, or add_params called "
                    "twice on one module). Set paramwise_cfg['bypass_duplicate']=True to optimize it once.",
                    first=self._added[id(entry.param)],
                    second=entry.name,
                )
            self._added[id(entry.param)] = entry.name
            self._decided[id(entry.param)] = entry
            params.append({"params": [entry.param], **entry.hyperparams})
        in_dcn = is_dcn(module)
        for name, child in module.named_children():
            self.add_params(params, child, prefix=f"{prefix}.{name}" if prefix else name, is_dcn_module=in_dcn)

    # ------------------------------------------------------------------ the plan
    def plan(self, model: nn.Module) -> Plan:
        """Resolve every parameter's hyperparameters and group them, without building anything."""
        if self._custom_add_params():
            return self._plan_from_add_params(model)
        plan = make_plan(model, self.spec, self.options, self.extra_rules(model))
        for note in (*plan.notes, *plan.warnings):
            warn_user(str(note))
        return plan

    def _plan_from_add_params(self, model: nn.Module) -> Plan:
        """The plan of a subclass's own ``add_params``: its groups, named and checked, then merged."""
        if self.options.routes:  # its groups say nothing of routes: refuse rather than ignore them
            raise ConfigError([Problem(("optimizer", "paramwise_cfg", "routes"), (
                f"{type(self).__name__} plans with its own add_params, which does not route parameters; use "
                "DefaultOptimizerConstructor (or a subclass without add_params) with routes"))],
                title="routes with a custom add_params")
        sites = model_sites(model)
        root = sites.root
        names = sites.first_names()
        self._decided, self._added = {}, {}
        groups: list[dict[str, Any]] = []
        self.add_params(groups, root)
        owner = f"{type(self).__name__}.add_params"
        base = plan_base(self.spec, self.options)
        entries: list[ParamEntry] = []
        problems: list[Problem] = []
        seen: set[int] = set()
        for index, group in enumerate(groups):
            where = (owner, f"params[{index}]")
            if not isinstance(group, Mapping) or "params" not in group:
                problems.append(Problem(where, f"must be a dict with a 'params' list, got {group!r:.80}", kind="type"))
                continue
            tensors = group["params"]
            tensors = [tensors] if isinstance(tensors, torch.Tensor) else list(tensors)
            own = {k: v for k, v in group.items() if k != "params"}
            hyper = MappingProxyType({**base, **own})
            factors = MappingProxyType({k: _set_by(k, base, v, owner) for k, v in hyper.items()})
            rules = MappingProxyType({k: owner if len(f) > 1 else DEFAULT_RULE for k, f in factors.items()})
            for param in tensors:
                name = names.get(id(param))
                if name is None:
                    problems.append(Problem(where, "holds a tensor that is not a parameter of the model"))
                    continue
                if id(param) in seen:
                    problems.append(Problem(where, f"holds {name!r}, which an earlier group holds too"))
                    continue
                seen.add(id(param))
                decided = self._decided.get(id(param))
                if decided is not None and dict(decided.hyperparams) == dict(hyper):
                    entries.append(decided)  # as the default rules decided it: keep their reasons
                else:
                    entries.append(ParamEntry(name, param, param.requires_grad, hyper, rules, factors))
        if problems:
            raise ConfigError(problems, title=f"{owner} returned groups paramwise cannot use")
        left_out = [n for i, n in names.items() if i not in seen]
        frozen = [n for n in left_out if not _param_by_name(root, n).requires_grad]
        lost = [n for n in left_out if n not in set(frozen)]
        found = []
        if lost:
            found.append(Problem(("model",), f"{plural(len(lost), 'trainable parameter')} "
                         f"{'is' if len(lost) == 1 else 'are'} in no group of {owner} and will not be trained: "
                         f"{short_list(lost)}"))
        unread = [k for k in self.options.extra if k not in self.paramwise_cfg.read]  # type: ignore[attr-defined]
        for key in unread:
            asked = [str(k) for k in self.paramwise_cfg.read if k not in self.paramwise_cfg]  # type: ignore[attr-defined]
            found.append(Problem(("optimizer", "paramwise_cfg", key), (
                f"is not a paramwise_cfg option and {owner} did not read it, so it does nothing."
                f"{did_you_mean(key, [*asked, *PARAMWISE_KEYS])}")))
        # no coverage check here: a custom add_params may leave parameters out (reported above as a warning)
        plan = plan_from_entries(self.spec, self.options, entries, found, frozen_notes(frozen), frozen, sites=sites)
        for note in (*plan.notes, *plan.warnings):
            warn_user(str(note))
        return plan

    # ------------------------------------------------------------------ the optimizer
    def build(self, plan: Plan) -> torch.optim.Optimizer:
        """Construct the optimizer that ``plan`` describes."""
        if not plan.entries:
            fix = (f"{len(plan.frozen)} are frozen: unfreeze some, or set paramwise_cfg['frozen']='include'"
                   if plan.frozen else "the model has none at all")
            raise ConfigError([Problem(("model",), f"has no parameters to optimize; {fix}")],
                              title="nothing to optimize")
        if plan.spec is not None and plan.spec != self.spec:
            raise ConfigError([Problem(("optimizer",), (
                f"this plan was made from another optimizer config ({plan.spec.type_name} with "
                f"{dict(plan.spec.kwargs)}), not this constructor's ({self.spec.type_name} with "
                f"{dict(self.spec.kwargs)}); plan and build with the same constructor"))], title="plan mismatch")
        if plan.routes:
            return self._build_routes(plan)
        check_optimizer_constraints(self.spec, plan.entries)
        # the groups are new and hold 100k tensors at most: passed on without build_from_cfg's copy
        kwargs = {self.spec.params_arg: torch_param_groups(plan.entries, plan.groups), **copy_config(self.spec.kwargs)}
        optimizer = self._construct(self.spec, kwargs, ("optimizer",))
        return enable_state_by_name(optimizer)  # load_state_dict matches saved state by parameter name

    def _build_routes(self, plan: Plan) -> torch.optim.Optimizer:
        """One child optimizer per route (main first, then the routes in config order), in one HybridOptimizer.

        A route with no parameters (``allow_empty``, or main when every parameter is routed) has no child:
        torch refuses an optimizer without parameters. Groups added later go where ``Router`` says.
        """
        children: dict[str, torch.optim.Optimizer] = {}
        parts = [(MAIN_ROUTE, self.spec, ("optimizer",)),
                 *((r.name, r.spec, (*r.path, "optimizer")) for r in plan.routes)]
        for name, spec, root in parts:
            groups = [g for g in plan.groups if plan.entries[g.members[0]].route == name]
            if not groups:
                continue
            check_optimizer_constraints(spec, [plan.entries[i] for g in groups for i in g.members], root)
            kwargs = {spec.params_arg: torch_param_groups(plan.entries, groups), **copy_config(spec.kwargs)}
            children[name] = self._construct(spec, kwargs, root)
        from paramwise.build.hybrid import HybridOptimizer  # only configs with routes need it
        known = {e.name: e.route for e in plan.entries}
        return HybridOptimizer(children, router=Router(plan.routes, known))

    def _construct(self, spec: OptimizerSpec, kwargs: dict[str, Any], root: tuple[str, ...]) -> torch.optim.Optimizer:
        """``spec``'s optimizer from ``kwargs``; what it refuses is a ConfigError at ``root``."""
        needs_cuda = cuda_problem(spec.cls, spec.type_name, (*root, "type"))
        if needs_cuda is not None:
            raise ConfigError([needs_cuda], title="optimizer needs CUDA")
        try:
            optimizer = call_target(spec.cls, kwargs, OPTIMIZERS.name, spec.type_name)
        except BuildTargetError as e:
            raise _refused(spec, e, root) from e.__cause__
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise ConfigError([Problem((*root, "type"), (
                f"{spec.type_name} returned {type(optimizer).__name__}, not a torch.optim.Optimizer; name an "
                "optimizer class, or a factory that returns one"), kind="type")], title="not an optimizer")
        return optimizer

    def __call__(self, model: nn.Module) -> torch.optim.Optimizer:
        with gc_paused():
            return self.build(self.plan(model))


@OPTIMIZER_BUILDERS.register_module()
class DefaultOptimWrapperConstructor(DefaultOptimizerConstructor):
    """mmengine's constructor, by its name and arguments: ``optim_wrapper_cfg=dict(optimizer=..., ...)``.

    The other keys of ``optim_wrapper_cfg`` (``type``, ``clip_grad``, ...) are kept in
    ``self.optim_wrapper_cfg`` for the wrapper; calling the constructor builds the optimizer.
    """

    def __init__(self, optim_wrapper_cfg: Mapping[str, Any], paramwise_cfg: Mapping[str, Any] | None = None) -> None:
        if not isinstance(optim_wrapper_cfg, Mapping):
            raise ConfigError([Problem(("optim_wrapper",), f"must be a dict with an 'optimizer' key, got "
                                                           f"{type(optim_wrapper_cfg).__name__}", kind="type")])
        wrapper = copy_config(optim_wrapper_cfg)
        if "optimizer" not in wrapper:
            raise ConfigError([Problem(("optim_wrapper", "optimizer"), "is missing: put the optimizer config here, "
                                                                       "e.g. optimizer=dict(type='SGD', lr=0.01)",
                                       kind="missing")])
        optimizer_cfg = wrapper.pop("optimizer")
        inner = wrapper.pop("paramwise_cfg", None)
        wrapper.pop("constructor", None)
        if inner is not None and paramwise_cfg is not None:
            raise ConfigError([Problem(("optim_wrapper", "paramwise_cfg"),
                                       "is given twice (in optim_wrapper_cfg and as paramwise_cfg=); keep one")])
        self.optim_wrapper_cfg = wrapper
        super().__init__(optimizer_cfg, paramwise_cfg if paramwise_cfg is not None else inner)


@OPTIMIZER_BUILDERS.register_module()
class ForceDefaultOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """mmsegmentation's constructor of that name, with its exact results.

    ``paramwise_cfg['force_default_settings']=True`` applies the built-in bias/norm/depthwise/flat
    rules to parameters a custom key matched too, each replacing the custom value by base x
    multiplier (not multiplying it; paramwise's own ``compose=True`` multiplies). Frozen parameters
    are kept in the optimizer with the plain base values, as mmsegmentation's copy of the old
    mmengine code does.
    """

    def plan(self, model: nn.Module) -> Plan:
        plan = super().plan(model)
        if not plan.frozen:
            return plan
        decided = {id(e.param): e for e in plan.entries}
        base = plan_base(self.spec, self.options)
        start = (MappingProxyType(dict(base)), MappingProxyType(dict.fromkeys(base, DEFAULT_RULE)),
                 MappingProxyType({k: (Factor(k, "base", v, DEFAULT_RULE),) for k, v in base.items()}))
        entries = []
        # by identity, each tensor once under its first name in the plan's walk (torch's order and names,
        # wrappers' components removed where a wrapper put them)
        sites = plan.sites if plan.sites is not None else model_sites(model)
        seen: set[int] = set()
        for name, param, *_ in sites.params:
            if id(param) in seen:
                continue
            seen.add(id(param))
            if id(param) in decided:
                entries.append(decided[id(param)])
            elif not param.requires_grad:  # mmsegmentation keeps frozen parameters, at the optimizer's defaults
                entries.append(ParamEntry(name, param, False, *start))
        return plan_from_entries(self.spec, self.options, entries, plan.warnings, (), (), plan.duplicates,
                                 model=model, sites=sites, routes=plan.routes)


def _set_by(key: str, base: Mapping[str, Any], value: Any, owner: str) -> tuple[Factor, ...]:
    """The factors of a value a custom ``add_params`` chose: the base, then what it set (if it differs)."""
    if key in base and _same_value(base[key], value):
        return (Factor(key, "base", value, DEFAULT_RULE),)
    start = (Factor(key, "base", base[key], DEFAULT_RULE),) if key in base else ()
    return (*start, Factor(key, "set", value, owner))


def _same_value(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:  # tensors and other values without a plain truth value
        return a is b


def _param_by_name(root: nn.Module, name: str) -> torch.Tensor:
    module_name, _, leaf = name.rpartition(".")
    return root.get_submodule(module_name)._parameters[leaf] if module_name else root._parameters[leaf]  # type: ignore[return-value]


def _refused(spec: OptimizerSpec, error: BuildTargetError, root: tuple[str, ...] = ("optimizer",)) -> Exception:
    """The optimizer's own TypeError or ValueError about its arguments as a ConfigError at the optimizer
    (at the argument, when the message names exactly one that the config sets); anything else as it was."""
    cause = error.__cause__
    if not isinstance(cause, (TypeError, ValueError)):
        return error
    text = safe_str(cause, 4000)
    named = [key for key in spec.kwargs if isinstance(key, str) and re.search(rf"\b{re.escape(key)}\b", text)]
    path = (*root, named[0]) if len(named) == 1 else root
    return ConfigError([Problem(path, (
        f"{spec.type_name} refused its arguments: {type(cause).__name__}: {text}"),
        kind="type" if isinstance(cause, TypeError) else "value")], title="invalid optimizer arguments")


def check_optimizer_constraints(
    spec: OptimizerSpec, entries: Sequence[ParamEntry], root: tuple[str, ...] = ("optimizer",)
) -> None:
    """Check what an optimizer requires of its parameters before torch does, naming the parameters
    (Muon: 2-D only; BatchedMuon: 2-D, or more with flatten=True); ``root`` is the optimizer's config path."""
    flat = [f"{e.name} {tuple(e.shape)}" for e in entries if matrix_refusal(spec, e.shape) is not None]
    if flat:
        raise ConfigError([Problem((*root, "type"), (
            f"{spec.type_name} only optimizes 2-D matrices, but {len(flat)} parameters are not 2-D: "
            f"{short_list(flat)}. Freeze them, or route them to another optimizer (paramwise_cfg['routes']: "
            "Muon for params='hidden_matrices', the rest to the main optimizer)"))], title="optimizer constraint")


_WHOLE_CONFIG_FIX = (
    "build_optimizer and plan_params take the optimizer config, dict(type='AdamW', lr=..., paramwise_cfg=...); "
    "for a whole config (or dict(optim_wrapper=...)) pass paramwise.optimizer_config(cfg).optimizer"
)


def _split(cfg: Mapping[str, Any]) -> tuple[Any, dict[str, Any], Any]:
    if not isinstance(cfg, Mapping):
        raise ConfigError([Problem(("optimizer",), f"must be a dict like dict(type='AdamW', lr=1e-3), got "
                                                   f"{type(cfg).__name__}: {safe_repr(cfg, 80)}", kind="type")])
    wrapper_type = "type" not in cfg or (isinstance(cfg["type"], str) and cfg["type"].endswith("OptimWrapper"))
    if "optim_wrapper" in cfg or (isinstance(cfg.get("optimizer"), Mapping) and wrapper_type):
        what = "a whole config" if "optim_wrapper" in cfg or "model" in cfg else "an optim_wrapper config"
        raise ConfigError([Problem((), f"this is {what}, not an optimizer config: {_WHOLE_CONFIG_FIX}",
                                   kind="missing")], title="wrong config passed")
    optimizer_cfg: dict[str, Any] = copy_config(cfg)
    constructor = optimizer_cfg.pop("constructor", None)
    if constructor is None:
        constructor = "DefaultOptimizerConstructor"
    elif not isinstance(constructor, str) and not callable(constructor):
        raise ConfigError([Problem(("optimizer", "constructor"), (
            f"must be the name of a registered constructor or a class, got {constructor!r}"), kind="type")])
    paramwise_cfg = optimizer_cfg.pop("paramwise_cfg", None)
    return constructor, optimizer_cfg, paramwise_cfg


def _takes_wrapper_cfg(constructor: Any) -> bool:
    """Whether a constructor has mmengine's signature, ``(optim_wrapper_cfg, paramwise_cfg)``."""
    cls = _constructor_target(constructor)
    try:
        return "optim_wrapper_cfg" in inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return False


_CONSTRUCTOR_PATH = ("optimizer", "constructor")
_CONSTRUCTOR_FIX = ("a constructor is a class called with (optimizer_cfg, paramwise_cfg) whose instance, called "
                    "with the model, returns the optimizer: name a registered one (e.g. "
                    "'DefaultOptimizerConstructor') or derive one from DefaultOptimizerConstructor")


def _constructor_error(message: str, kind: str = "value") -> ConfigError:
    return ConfigError([Problem(_CONSTRUCTOR_PATH, message, kind=kind)], title="invalid optimizer constructor")


def _constructor_target(constructor: Any) -> Any:
    """The class (or factory) ``constructor`` names or is; an unknown name is a ConfigError at ``constructor``."""
    if not isinstance(constructor, str):
        return constructor
    try:
        return OPTIMIZER_BUILDERS.get(constructor)
    except NotRegisteredError as e:
        raise _constructor_error(str(e), kind="missing") from None


def _not_a_constructor(target: Any, first: str) -> str | None:
    """Why ``target`` cannot be a constructor, or None.

    A class (also inside ``functools.partial``) must make callable instances; every callable must take
    ``first`` (``optimizer_cfg`` or mmengine's ``optim_wrapper_cfg``) and ``paramwise_cfg`` as keywords.
    Other callables (factories) are taken on trust for what they return, which is checked once built.
    """
    cls = target.func if isinstance(target, functools.partial) else target
    if isinstance(cls, type) and not any("__call__" in vars(k) for k in cls.__mro__ if k is not object):
        return f"is {safe_repr(cls)}, whose instances cannot be called with a model, so it is not a constructor"
    try:
        signature = inspect.signature(target)
    except (TypeError, ValueError):
        return None  # no readable signature (a builtin): the instance check above is all there is
    try:
        signature.bind(**{first: {}, "paramwise_cfg": None})
    except TypeError as e:
        return f"is {safe_repr(target)}, which cannot be called with ({first}, paramwise_cfg): {safe_str(e)}"
    return None


def optimizer_constructor(cfg: Mapping[str, Any]) -> Any:
    """The constructor ``cfg`` selects, built and validated: ``.plan(model)`` then ``.build(plan)``.

    For callers that want both the plan and the optimizer without checking the config twice.
    Constructors with mmengine's signature get ``optim_wrapper_cfg=dict(optimizer=...)``. A
    ``constructor`` that is not one (``constructor=dict``) is a ``ConfigError`` at ``constructor``.
    """
    constructor, optimizer_cfg, paramwise_cfg = _split(cfg)
    target = _constructor_target(constructor)
    first = "optim_wrapper_cfg" if _takes_wrapper_cfg(target) else "optimizer_cfg"
    why = _not_a_constructor(target, first)
    if why is not None:
        raise _constructor_error(f"{why}; {_CONSTRUCTOR_FIX}", kind="type")
    args = {first: {"optimizer": optimizer_cfg} if first == "optim_wrapper_cfg" else optimizer_cfg}
    built = build_from_cfg({"type": target, **args, "paramwise_cfg": paramwise_cfg}, OPTIMIZER_BUILDERS)
    if not callable(built):
        raise _constructor_error(f"{safe_repr(constructor)} built {safe_repr(built, 80)}, which cannot be called "
                                 f"with a model; {_CONSTRUCTOR_FIX}", kind="type")
    return built


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Hold the cyclic garbage collector while a plan is built, then restore it as it was.

    A plan of a large model allocates a few objects per parameter (sites, entries, groups), none of
    them in reference cycles; left on, the collector traverses the whole model's object graph several
    times meanwhile (a quarter of the build at 96k tensors). Nested and concurrent uses are safe: only
    the call that found it enabled enables it again.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def build_optimizer(model: nn.Module, cfg: Mapping[str, Any]) -> torch.optim.Optimizer:
    """Build the optimizer that ``cfg`` describes for ``model``; ``cfg`` is not modified.

    ``constructor`` (default ``DefaultOptimizerConstructor``) and ``paramwise_cfg`` are taken
    out of a copy of ``cfg``; the rest is the optimizer's config.
    """
    return construct(optimizer_constructor(cfg), model)


def construct(constructor: Any, model: nn.Module) -> torch.optim.Optimizer:
    """``constructor(model)``, which must be a torch optimizer: a custom ``__call__`` returning anything
    else is a ConfigError at ``constructor``, never a failure later in whatever receives it."""
    optimizer = constructor(model)
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise _constructor_error(f"{type(constructor).__name__} returned a {type(optimizer).__name__} for the "
                                 f"model, not a torch.optim.Optimizer; {_CONSTRUCTOR_FIX}", kind="type")
    watch_model_parameters(optimizer, model)
    return optimizer


def check_model_parameters(optimizer: torch.optim.Optimizer, model: nn.Module) -> None:
    """Raise ``ModelChangedError`` where the optimizer holds, under a name, a tensor that is no longer the
    model's parameter of that name (the model sharded by ``fully_shard`` after the optimizer was built).

    Groups without ``param_names`` and names the model does not have (parameters added from elsewhere)
    are not checked.
    """
    current = dict(named_parameters(model))
    stale: list[tuple[str, torch.Tensor]] = []
    for group in optimizer.param_groups:
        for name, param in zip(group.get("param_names", ()), group["params"], strict=False):
            now = current.get(name)
            if now is not None and now is not param:
                stale.append((name, now))
    if not stale:
        return
    names = [name for name, _ in stale]
    sharded = any(tensor_layout(t) is not None for _, t in stale)
    how = ("DTensors: it was sharded after the optimizer was built" if sharded
           else "replaced after the optimizer was built")
    raise ModelChangedError(
        f"{len(stale)} of the optimizer's parameters {'is' if len(stale) == 1 else 'are'} no longer the model's "
        f"({short_list(names)}): the model now holds other tensors under these names ({how}); the optimizer "
        "would step tensors that get no gradients. Shard the model first (fully_shard / FSDP2), then build the "
        "optimizer from the sharded model")


def watch_model_parameters(optimizer: torch.optim.Optimizer, model: nn.Module) -> None:
    """Run :func:`check_model_parameters` at the optimizer's first step (one walk of the model), then take
    the hook away, so later steps pay nothing. The model is held weakly: a model gone by then is not checked."""
    model_ref = weakref.ref(model)

    def first_step(opt: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        watched = model_ref()
        if watched is not None:
            check_model_parameters(opt, watched)  # raises at every step until the optimizer is rebuilt
        handle.remove()

    handle = optimizer.register_step_pre_hook(first_step)


def plan_params(model: nn.Module, cfg: Mapping[str, Any]) -> Plan:
    """Return the plan of ``build_optimizer(model, cfg)``: every parameter's values and rules."""
    constructor = optimizer_constructor(cfg)
    if not hasattr(constructor, "plan"):
        raise ConfigError([Problem(("optimizer", "constructor"), (
            f"{type(constructor).__name__} has no plan(model) method, so its plan cannot be shown; "
            "derive it from DefaultOptimizerConstructor or add one"), kind="type")], title="no plan")
    with gc_paused():
        return constructor.plan(model)
