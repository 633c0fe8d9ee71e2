"""The named parameters of a model as the user sees them, seen through wrappers.

DDP/DataParallel (``.module``), ``torch.compile`` (``_orig_mod``), activation checkpointing and
FSDP1 all add name components the user never wrote; they are removed so custom keys match the
names in the user's model. Each parameter comes with its owning module, which the rules need.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

from .layers import is_dcn_module

__all__ = ["ParamSite", "clean_name", "iter_param_sites", "unwrap_model"]

_WRAPPER_COMPONENTS = frozenset({"_orig_mod", "_fsdp_wrapped_module", "_checkpoint_wrapped_module"})


@dataclass(frozen=True)
class ParamSite:
    """One place a parameter is registered: its clean name and the module that owns it."""

    name: str  # full dotted name, wrapper components removed
    prefix: str  # the owning module's dotted name ('' for the root)
    leaf: str  # the attribute name ('weight', 'bias', ...)
    param: nn.Parameter
    module: nn.Module
    parent_is_dcn: bool  # owning module is a child of a deformable conv (mmengine's is_dcn_module)


def unwrap_model(model: nn.Module) -> nn.Module:
    """Return the user's model inside DDP, DataParallel, FSDP1 and ``torch.compile`` wrappers."""
    wrappers: tuple[type, ...] = (nn.DataParallel, nn.parallel.DistributedDataParallel)
    while True:
        if isinstance(model, wrappers):
            model = model.module
        elif hasattr(model, "_orig_mod") and isinstance(model._orig_mod, nn.Module):
            model = model._orig_mod  # torch.compile's OptimizedModule
        elif type(model).__name__ == "FullyShardedDataParallel" and isinstance(
            getattr(model, "module", None), nn.Module
        ):
            model = model.module  # type: ignore[assignment]
        else:
            return model


def clean_name(name: str) -> str:
    """Remove the name components that wrappers add (``a._orig_mod.b`` -> ``a.b``)."""
    if "._" not in name and not name.startswith("_"):
        return name  # the common case: nothing to remove
    return ".".join(part for part in name.split(".") if part not in _WRAPPER_COMPONENTS)


def iter_param_sites(model: nn.Module) -> Iterator[ParamSite]:
    """Yield every (module, parameter) registration in ``named_parameters()`` order.

    A parameter shared by two modules is yielded at each place (the caller decides what to do),
    in the same pre-order walk that ``named_parameters`` and mmengine use.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"expected a torch.nn.Module, got {type(model).__name__}")
    stack: list[tuple[str, nn.Module, bool]] = [("", unwrap_model(model), False)]
    visited: set[int] = set()
    while stack:
        prefix, module, parent_is_dcn = stack.pop()
        if id(module) in visited:
            yield from _revisited(prefix, module)
            continue
        visited.add(id(module))
        clean_prefix = clean_name(prefix)
        own: set[int] = set()
        for leaf, param in module._parameters.items():
            if param is None:
                continue
            if not isinstance(param, torch.Tensor):
                continue
            if id(param) in own:
                # one Parameter under two attribute names of the same module is one parameter to
                # named_parameters(recurse=False), to torch and to mmengine: keep its first name only
                continue
            own.add(id(param))
            name = f"{clean_prefix}.{leaf}" if clean_prefix else leaf
            yield ParamSite(name, clean_prefix, leaf, param, module, parent_is_dcn)
        dcn = is_dcn_module(module)
        # a wrapper's wrapped module (``_orig_mod``, ...) stands where the wrapper stands: it inherits
        # the wrapper's parent flag, so a compiled child of a DCN is still a child of the DCN
        children = [
            (f"{prefix}.{n}" if prefix else n, child, parent_is_dcn if n in _WRAPPER_COMPONENTS else dcn)
            for n, child in module.named_children()
        ]
        stack.extend(reversed(children))


def _revisited(prefix: str, module: nn.Module) -> Iterator[ParamSite]:
    """The parameters of a module met a second time (shared, or a cycle): all of them duplicates.

    torch's own walk, which remembers modules, lists them; the caller reports them as shared.
    """
    for sub_prefix, sub in module.named_modules(prefix=prefix):
        clean_prefix = clean_name(sub_prefix)
        for leaf, param in sub._parameters.items():
            if isinstance(param, torch.Tensor):
                name = f"{clean_prefix}.{leaf}" if clean_prefix else leaf
                yield ParamSite(name, clean_prefix, leaf, param, sub, False)
