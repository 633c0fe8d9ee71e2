"""``OPTIMIZERS``: every ``torch.optim`` optimizer, found by scanning, plus installed third-party ones.

torch's optimizers are registered at import by scanning ``torch.optim`` (no hand-kept list, so a
new torch release brings its new optimizers). Third-party packages are scanned on the first lookup
only when they are installed, under a prefix (``timm.Lamb``, ``bnb.AdamW8bit``) and, when the name
is free, also bare (``Lamb``).
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
from types import ModuleType
from typing import Any

import torch

from .errors import NotRegisteredError
from .registry import Registry

__all__ = [
    "OPTIMIZERS",
    "THIRD_PARTY_PACKAGES",
    "optimizer_arguments",
    "optimizer_default",
    "register_optimizers_from",
]

# package to scan -> prefix of its names in the registry
THIRD_PARTY_PACKAGES: dict[str, str] = {
    "timm.optim": "timm",
    "bitsandbytes.optim": "bnb",
    "torch_optimizer": "torch_optimizer",
    "apex.optimizers": "apex",
    "lion_pytorch": "lion_pytorch",
    "schedulefree": "schedulefree",
}

# why a third-party package that is installed could not be scanned (shown in lookup errors)
_THIRD_PARTY_FAILURES: dict[str, str] = {}


class _OptimizerRegistry(Registry):
    """The optimizer registry; its lookup errors also say which installed packages failed to load."""

    def get(self, name: str) -> Any:
        try:
            return super().get(name)
        except NotRegisteredError as e:
            if _THIRD_PARTY_FAILURES:
                failed = "; ".join(f"{pkg}: {why}" for pkg, why in sorted(_THIRD_PARTY_FAILURES.items()))
                e.message = f"{e.message} (installed but not loaded: {failed})"
            raise


OPTIMIZERS: Registry = _OptimizerRegistry("optimizer", locations=["paramwise._third_party"])


def _optimizer_classes(module: ModuleType) -> list[type[torch.optim.Optimizer]]:
    found = []
    for name in dir(module):
        obj = getattr(module, name, None)
        if (
            inspect.isclass(obj)
            and issubclass(obj, torch.optim.Optimizer)
            and obj is not torch.optim.Optimizer
            and not name.startswith("_")
        ):
            found.append(obj)
    return found


def register_optimizers_from(registry: Registry, module: ModuleType, prefix: str | None = None) -> list[str]:
    """Register every ``Optimizer`` subclass that ``module`` exposes; return the names used.

    With a ``prefix`` each class is registered as ``prefix.Name``, and also as ``Name`` when
    that name is still free (torch's own optimizers keep their names).
    """
    names = []
    for cls in _optimizer_classes(module):
        keys = [cls.__name__] if prefix is None else [f"{prefix}.{cls.__name__}"]
        if prefix is not None and not registry.holds(cls.__name__):
            keys.append(cls.__name__)
        for key in keys:
            if not registry.holds(key):
                registry.register_module(name=key, module=cls)
                names.append(key)
    return names


def _scan_third_party() -> None:
    for package, prefix in THIRD_PARTY_PACKAGES.items():
        top = package.split(".")[0]
        if importlib.util.find_spec(top) is None:
            continue
        try:
            module = importlib.import_module(package)
        except Exception as e:  # an installed but broken package must not break paramwise
            _THIRD_PARTY_FAILURES[package] = f"{type(e).__name__}: {e}"
            continue
        register_optimizers_from(OPTIMIZERS, module, prefix)


def optimizer_arguments(cls: Any) -> tuple[str | None, frozenset[str], bool]:
    """Return ``cls``'s parameters argument, its other named keywords, and whether it takes ``**kwargs``.

    A class without a readable signature is taken to accept anything.
    """
    try:
        params = list(inspect.signature(cls).parameters.values())
    except (TypeError, ValueError):
        return None, frozenset(), True
    if not params:
        return None, frozenset(), False
    named = frozenset(
        p.name for p in params[1:] if p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    )
    return params[0].name, named, any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def optimizer_default(cls: Any, key: str, missing: Any = None) -> Any:
    """Return the default of ``cls``'s argument ``key``, or ``missing`` when it has none."""
    try:
        param = inspect.signature(cls).parameters.get(key)
    except (TypeError, ValueError):
        return missing
    if param is None or param.default is inspect.Parameter.empty:
        return missing
    # torch's old sentinel for a required lr
    return missing if type(param.default).__name__ == "_RequiredParameter" else param.default


register_optimizers_from(OPTIMIZERS, torch.optim)
