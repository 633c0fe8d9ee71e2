"""The named parameters of a model as the user sees them, seen through wrappers.

DDP/DataParallel (``.module``), ``torch.compile`` (``_orig_mod``), activation checkpointing and
FSDP1 all add name components the user never wrote; they are removed so custom keys match the
names in the user's model. The walk yields modules (with the facts the rules need) rather than
parameters: one object per module keeps the walk of a 100k-tensor model cheap.
"""

from __future__ import annotations

from collections.abc import Iterator

from torch import nn

from .errors import UsageTypeError
from .layers import is_dcn_module

__all__ = ["ModuleSite", "clean_name", "iter_module_sites", "unwrap_model"]

_WRAPPER_COMPONENTS = frozenset({"_orig_mod", "_fsdp_wrapped_module", "_checkpoint_wrapped_module"})


def _holds_only(wrapper: object, inner: nn.Module) -> bool:
    """Whether ``wrapper`` adds no parameters of its own around ``inner`` (so it is a mere wrapper)."""
    if not isinstance(wrapper, nn.Module):
        return True
    inner_ids = {id(p) for p in inner.parameters()}
    return all(id(p) in inner_ids for p in wrapper.parameters())


def unwrap_model(model: nn.Module) -> nn.Module:
    """Return the user's model inside DDP, DataParallel, FSDP1, ``torch.compile`` and other wrappers.

    Any object holding the model in ``.module`` counts as a wrapper (mmengine's rule, which its
    tests use with a pseudo wrapper) as long as it has no parameters of its own beside it.
    """
    wrappers: tuple[type, ...] = (nn.DataParallel, nn.parallel.DistributedDataParallel)
    while True:
        inner = getattr(model, "module", None)
        if isinstance(model, wrappers):
            model = model.module  # type: ignore[assignment]
        elif isinstance(inner, nn.Module) and inner is not model and _holds_only(model, inner):
            model = inner
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


#: (clean dotted name, module, whether its parent is a deformable conv); plain tuples: hot path
ModuleSite = tuple[str, nn.Module, bool]


def iter_module_sites(model: nn.Module, prefix: str = "", parent_is_dcn: bool = False) -> Iterator[ModuleSite]:
    """Yield ``(prefix, module, parent_is_dcn)`` for every module, in ``named_parameters()`` pre-order.

    The prefix has wrapper components removed (``prefix`` for the root, '' by default). A module reachable at two places
    (shared, or containing itself) is yielded at each, so its parameters can be reported as shared;
    its second subtree comes from torch's own walk, which stops at cycles. One module under two
    names of the same parent is one child, as for torch and mmengine.
    """
    root = unwrap_model(model)
    if not isinstance(root, nn.Module):
        raise UsageTypeError(f"expected a torch.nn.Module, got {type(model).__name__}")
    stack: list[tuple[str, nn.Module, bool, int]] = [(prefix, root, parent_is_dcn, 0)]
    parent_of: dict[int, int] = {}  # module id -> id of the parent it was first met under
    while stack:
        prefix, module, parent_is_dcn, parent = stack.pop()
        first_parent = parent_of.get(id(module))
        if first_parent is not None:
            if first_parent != parent:
                for sub_prefix, sub in module.named_modules(prefix=prefix):
                    yield clean_name(sub_prefix), sub, False
            continue
        parent_of[id(module)] = parent
        yield prefix, module, parent_is_dcn
        children = module._modules
        if not children:
            continue
        dcn = is_dcn_module(module)
        me = id(module)
        for n, child in reversed(children.items()):
            if child is None:
                continue
            if n in _WRAPPER_COMPONENTS:
                # the wrapped module stands where its wrapper stands: same name, same parent flag
                stack.append((prefix, child, parent_is_dcn, me))
            else:
                stack.append((f"{prefix}.{n}" if prefix else n, child, dcn, me))
