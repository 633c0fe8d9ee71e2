"""The named parameters of a model as the user sees them, seen through wrappers.

DDP/DataParallel (``.module``), ``torch.compile`` (``_orig_mod``), activation checkpointing
(``_checkpoint_wrapped_module``) and FSDP1 (``_fsdp_wrapped_module``) all add name components the
user never wrote; they are removed so custom keys match the names in the user's model. A component
is removed only where a wrapper put it: the child a wrapper holds its module in. A user's own
submodule that happens to be called ``_orig_mod`` keeps its name, and its parameters.

A plan walks the model once (:func:`model_sites`): the list of sites it gives (each parameter with
its name, module and the facts the rules need) is handed down to the rules, the diagnostics and the
audit, which read it instead of walking again.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

from paramwise.errors import UsageTypeError
from paramwise.layers import is_dcn_class

__all__ = [
    "ModuleSite",
    "ParamSite",
    "Sites",
    "clean_name",
    "iter_module_sites",
    "model_sites",
    "named_parameters",
    "own_sites",
    "unwrap_model",
    "wrapped_child_name",
]

#: wrapper class (by name, anywhere in the mro) -> the child it holds the wrapped module in.
#: By name, so that checking costs no import of torch._dynamo or torch.distributed.
_WRAPPER_CHILDREN: dict[str, str] = {
    "OptimizedModule": "_orig_mod",  # torch.compile (torch._dynamo.eval_frame)
    "FullyShardedDataParallel": "_fsdp_wrapped_module",  # FSDP1
    "FlattenParamsWrapper": "_fpw_module",  # FSDP1's flat-parameter wrapper in torch < 1.13
    "ActivationWrapper": "_checkpoint_wrapped_module",  # CheckpointWrapper, OffloadWrapper
    "CheckpointWrapper": "_checkpoint_wrapped_module",
}
_WRAPPER_COMPONENTS = frozenset(_WRAPPER_CHILDREN.values())
_child_of_type: dict[type, str | None] = {}  # a cache of _component_of, filled as types are met


def _component_of(cls: type) -> str | None:
    try:
        return _child_of_type[cls]
    except KeyError:
        found = next((_WRAPPER_CHILDREN[c.__name__] for c in cls.__mro__ if c.__name__ in _WRAPPER_CHILDREN), None)
        _child_of_type[cls] = found
        return found


def wrapped_child_name(module: nn.Module) -> str | None:
    """The name of the child that ``module`` wraps, when it is a known wrapper holding one; else None."""
    name = _component_of(type(module))
    if name is None or module._modules.get(name) is None:
        return None
    return name


def _holds_only(wrapper: object, inner: nn.Module) -> bool:
    """Whether ``wrapper`` adds no parameters of its own around ``inner`` (so it is a mere wrapper)."""
    if not isinstance(wrapper, nn.Module):
        return True
    inner_ids = {id(p) for p in inner.parameters()}
    return all(id(p) in inner_ids for p in wrapper.parameters())


def unwrap_model(model: nn.Module) -> nn.Module:
    """Return the user's model inside DDP, DataParallel, FSDP1, ``torch.compile`` and other wrappers.

    Any object holding the model in ``.module`` counts as a wrapper (mmengine's rule, which its
    tests use with a pseudo wrapper) as long as it has no parameters of its own beside it. Modules
    that hold each other in ``.module`` (a cycle) stop the unwrapping where the cycle closes.
    """
    wrappers: tuple[type, ...] = (nn.DataParallel, nn.parallel.DistributedDataParallel)
    seen: set[int] = set()
    while id(model) not in seen:
        seen.add(id(model))
        inner = getattr(model, "module", None)
        if isinstance(model, wrappers):
            model = model.module  # type: ignore[assignment]
        elif isinstance(inner, nn.Module) and inner is not model and _holds_only(model, inner):
            model = inner
        elif isinstance(model, nn.Module) and (child := wrapped_child_name(model)) is not None:
            model = model._modules[child]  # type: ignore[assignment]
        else:
            break
    return model


def clean_name(name: str) -> str:
    """Remove every wrapper-like component from a name given as text (``a._orig_mod.b`` -> ``a.b``).

    Text alone cannot tell a wrapper's component from a user's module of the same name: for the
    names of a model's parameters use :func:`named_parameters`, which removes only what wrappers put.
    """
    if "._" not in name and not name.startswith("_"):
        return name  # the common case: nothing to remove
    return ".".join(part for part in name.split(".") if part not in _WRAPPER_COMPONENTS)


def _child_prefix(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _named_modules(module: nn.Module, prefix: str) -> Iterator[tuple[str, nn.Module]]:
    """``module.named_modules(prefix=prefix)`` (each module once, pre-order) with wrappers' components removed."""
    memo: set[int] = set()
    stack: list[tuple[str, nn.Module]] = [(prefix, module)]
    while stack:
        prefix, module = stack.pop()
        if id(module) in memo:
            continue
        memo.add(id(module))
        yield prefix, module
        wrapped = wrapped_child_name(module) if module._modules else None
        for n, child in reversed(module._modules.items()):
            if child is not None:
                stack.append((prefix if n == wrapped else _child_prefix(prefix, n), child))


def named_parameters(model: nn.Module) -> list[tuple[str, torch.Tensor]]:
    """``model.named_parameters()`` of the unwrapped model, in torch's order, named as the user wrote them.

    Each tensor comes once, under its first name, as from torch; a name component is removed only
    where a wrapper put it.
    """
    seen: set[int] = set()
    out: list[tuple[str, torch.Tensor]] = []
    for prefix, module in _named_modules(unwrap_model(model), ""):
        for leaf, param in module._parameters.items():
            if param is not None and id(param) not in seen:
                seen.add(id(param))
                out.append((_child_prefix(prefix, leaf), param))
    return out


#: (clean dotted name, module, whether its parent is a deformable conv); plain tuples: hot path
ModuleSite = tuple[str, nn.Module, bool]

#: (clean dotted name, parameter, owning module, the module's clean name, attribute name, whether the
#: module's parent is a deformable conv): one per parameter slot; plain tuples: hot path
ParamSite = tuple[str, nn.Parameter, nn.Module, str, str, bool]


@dataclass(frozen=True, eq=False)
class Sites:
    """One walk of a model: every module and every parameter slot, with the facts the rules read.

    Made once per plan and handed down: the rules, the idle-rule diagnostics and the audit read it
    instead of walking the model again. ``modules`` and ``params`` are in ``named_parameters()``
    pre-order; a module (and so a tensor) reachable at two places is at each place, so that shared
    parameters can be reported as shared. ``root`` is the unwrapped model the walk started from.
    """

    root: nn.Module
    modules: list[ModuleSite]
    params: list[ParamSite]

    def module_classes(self) -> set[type]:
        """The class of every module in the model."""
        return {type(site[1]) for site in self.modules}

    def first_names(self) -> dict[int, str]:
        """``id(tensor)`` -> the name it is first met under (torch's name for it, less wrappers' components)."""
        names: dict[int, str] = {}
        for site in self.params:
            names.setdefault(id(site[1]), site[0])
        return names


#: type -> (whether it is a deformable conv, the child a wrapper of that type holds): filled as types are met
_class_facts: dict[type, tuple[bool, str | None]] = {}


def _facts_of(cls: type) -> tuple[bool, str | None]:
    facts = _class_facts[cls] = (is_dcn_class(cls), _component_of(cls))
    return facts


def model_sites(model: nn.Module, prefix: str = "", parent_is_dcn: bool = False) -> Sites:
    """Walk ``model`` once: each module at each place it is reachable from, and each of its parameters.

    The prefix has wrapper components removed (``prefix`` for the root, '' by default): a wrapped
    module stands where its wrapper stands, with the same name and parent flag. A module reachable
    at two places (shared, or containing itself) is visited at each, so its parameters can be
    reported as shared; its second subtree is walked as torch walks it, which stops at cycles. First
    names are torch's (``model.named_parameters()``, less wrappers' components), cycles included. One
    module under two names of the same parent is one child, as for torch and mmengine.
    """
    root = unwrap_model(model)
    if not isinstance(root, nn.Module):
        raise UsageTypeError(f"expected a torch.nn.Module, got {type(model).__name__}")
    modules: list[ModuleSite] = []
    params: list[ParamSite] = []
    add_module, add_param = modules.append, params.append

    def visit(prefix: str, module: nn.Module, parent_is_dcn: bool) -> None:
        add_module((prefix, module, parent_is_dcn))
        for leaf, param in module._parameters.items():
            if param is not None:
                add_param((f"{prefix}.{leaf}" if prefix else leaf, param, module, prefix, leaf, parent_is_dcn))

    # hot loop (once per module): local names, a per-class cache of the module's kind, the parameters inline
    class_facts = _class_facts
    stack: list[tuple[str, nn.Module, bool, int]] = [(prefix, root, parent_is_dcn, 0)]
    pop, push = stack.pop, stack.append
    parent_of: dict[int, int] = {}  # module id -> id of the parent it was first met under
    while stack:
        prefix, module, parent_is_dcn, parent = pop()
        me = id(module)
        first_parent = parent_of.get(me)
        if first_parent is not None:
            if first_parent != parent:
                # only modules met already: in a cycle the rest is still on the stack, and is met
                # there under the name torch gives it (in an acyclic model this filters nothing)
                for sub_prefix, sub in _named_modules(module, prefix):
                    if id(sub) in parent_of:
                        visit(sub_prefix, sub, False)
            continue
        parent_of[me] = parent
        add_module((prefix, module, parent_is_dcn))
        own = module._parameters
        if own:
            for leaf, param in own.items():
                if param is not None:
                    add_param((f"{prefix}.{leaf}" if prefix else leaf, param, module, prefix, leaf, parent_is_dcn))
        children = module._modules
        if not children:
            continue
        cls = type(module)
        dcn, wrapper_child = class_facts.get(cls) or _facts_of(cls)
        wrapped = wrapper_child if wrapper_child is not None and children.get(wrapper_child) is not None else None
        for n, child in reversed(children.items()):
            if child is None:
                continue
            if n == wrapped:
                # the wrapped module stands where its wrapper stands: same name, parent and parent flag
                push((prefix, child, parent_is_dcn, parent))
            else:
                push((f"{prefix}.{n}" if prefix else n, child, dcn, me))
    return Sites(root, modules, params)


def own_sites(module: nn.Module, prefix: str = "", parent_is_dcn: bool = False) -> Sites:
    """The sites of ``module`` alone, its children left out (for mmengine's one-module ``add_params``)."""
    params: list[ParamSite] = [(f"{prefix}.{leaf}" if prefix else leaf, param, module, prefix, leaf, parent_is_dcn)
                               for leaf, param in module._parameters.items() if param is not None]
    return Sites(module, [(prefix, module, parent_is_dcn)], params)


def iter_module_sites(model: nn.Module, prefix: str = "", parent_is_dcn: bool = False) -> Iterator[ModuleSite]:
    """Yield ``(prefix, module, parent_is_dcn)`` for every module, in ``named_parameters()`` pre-order.

    The modules of :func:`model_sites` (which see); prefer that where the parameters are wanted too.
    """
    yield from model_sites(model, prefix, parent_is_dcn).modules
