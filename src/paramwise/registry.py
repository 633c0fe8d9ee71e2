"""Named registries of builders and ``build_from_cfg``, the config-to-object step.

A config is a mapping whose ``type`` names a registered class or function (or is one);
every other key becomes a keyword argument. Arguments are checked against the target's
signature before the call, so a typo fails with a did-you-mean instead of deep inside it.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Iterable, Iterator, Mapping
from types import MappingProxyType
from typing import Any

from .errors import (
    BuildArgumentError,
    DuplicateRegistrationError,
    NotRegisteredError,
    ParamwiseError,
    wrap_target_error,
)
from .suggestions import did_you_mean, format_suggestions, suggest

__all__ = ["Registry", "build_from_cfg", "call_target", "copy_config"]


def _is_buildable(obj: object) -> bool:
    return inspect.isclass(obj) or inspect.isroutine(obj)


class Registry:
    """A mapping of names to classes or functions, with lazy filling and a parent chain.

    Args:
        name: shown in every message ("the optimizer registry").
        parent: looked up after this registry's own names, so a project can extend
            paramwise's registries without touching them.
        locations: modules imported on the first lookup, which register their members.
        allow_import: if true, a ``type`` string with a dot or colon (``"torch.optim:SGD"``)
            is imported. Off by default: a config must not reach arbitrary code.
    """

    def __init__(
        self,
        name: str,
        parent: Registry | None = None,
        locations: Iterable[str] = (),
        allow_import: bool = False,
    ) -> None:
        self.name = name
        self.parent = parent
        self.locations = tuple(locations)
        self.allow_import = allow_import
        self._modules: dict[str, Any] = {}
        self._imported = not self.locations

    # ----------------------------------------------------------------- registration
    def register_module(
        self,
        name: str | Iterable[str] | None = None,
        force: bool = False,
        module: Any = None,
    ) -> Any:
        """Register ``module`` under ``name`` (its ``__name__`` by default), or return a decorator.

        ``name`` may be a list: the first is the name, the rest are aliases.
        """
        if name is not None and not isinstance(name, str):
            name = list(name)
            if not name or not all(isinstance(n, str) for n in name):
                raise TypeError(
                    f"register_module(name=...) takes a string or a non-empty list of strings, got {name!r}"
                )
        if module is not None:
            self._register(module, name, force)
            return module

        def decorator(obj: Any) -> Any:
            self._register(obj, name, force)
            return obj

        return decorator

    def _register(self, obj: Any, name: str | list[str] | None, force: bool) -> None:
        if not _is_buildable(obj):
            raise TypeError(
                f"only classes and functions can be registered in the {self.name} registry, "
                f"got {obj!r} of type {type(obj).__name__}"
            )
        names = [obj.__name__] if name is None else [name] if isinstance(name, str) else name
        for key in names:
            old = self._modules.get(key)
            if old is not None and old is not obj and not force:
                raise DuplicateRegistrationError(
                    f"{key!r} is already registered in the {self.name} registry as "
                    f"{_describe(old)}; cannot register {_describe(obj)} under the same name. "
                    "Pass force=True to replace it, or choose another name.",
                    registry=self.name,
                    name=key,
                )
        for key in names:
            self._modules[key] = obj

    # ---------------------------------------------------------------------- lookup
    def _ensure_imported(self) -> None:
        if self._imported:
            return
        self._imported = True  # set first: the imported modules register into us
        for location in self.locations:
            importlib.import_module(location)

    def _find(self, name: str) -> Any | None:
        self._ensure_imported()
        if name in self._modules:
            return self._modules[name]
        return self.parent._find(name) if self.parent is not None else None

    def get(self, name: str) -> Any:
        """Return the object registered as ``name``, looking in parents after this registry."""
        if not isinstance(name, str):
            raise TypeError(f"{self.name} registry names are strings, got {name!r}")
        found = self._find(name)
        if found is not None:
            return found
        if "." in name or ":" in name:
            return self._import_path(name)
        names = self.names()
        close = suggest(name, names)
        hint = format_suggestions(close) or f" It holds {len(names)} names; list them with registry.names()."
        raise NotRegisteredError(
            f"{name!r} is not in the {self.name} registry.{hint}",
            registry=self.name,
            name=name,
            suggestions=close,
        )

    def _import_path(self, path: str) -> Any:
        if not self.allow_import:
            raise NotRegisteredError(
                f"{path!r} is not in the {self.name} registry, and it is not imported: a config may "
                "not import code by path unless the registry was created with allow_import=True. "
                "Register the object (registry.register_module(module=obj)) or pass the object "
                "itself as 'type'.",
                registry=self.name,
                name=path,
            )
        module_name, sep, attr = path.partition(":")
        if not sep:
            module_name, _, attr = path.rpartition(".")
        try:
            obj: Any = importlib.import_module(module_name)
            for part in attr.split("."):
                obj = getattr(obj, part)
        except (ImportError, AttributeError) as e:
            raise NotRegisteredError(
                f"could not import {path!r} for the {self.name} registry: {e}",
                registry=self.name,
                name=path,
            ) from e
        return obj

    def names(self) -> list[str]:
        """Every name this registry resolves, its parents' included, sorted."""
        self._ensure_imported()
        own = set(self._modules)
        if self.parent is not None:
            own.update(self.parent.names())
        return sorted(own)

    @property
    def module_dict(self) -> Mapping[str, Any]:
        """A read-only view of this registry's own entries."""
        self._ensure_imported()
        return MappingProxyType(self._modules)

    def holds(self, name: str) -> bool:
        """Whether this registry itself (not a parent) holds ``name``, without importing locations."""
        return name in self._modules

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._find(name) is not None

    def __len__(self) -> int:
        self._ensure_imported()
        return len(self._modules)

    def __iter__(self) -> Iterator[str]:
        self._ensure_imported()
        return iter(sorted(self._modules))

    def __repr__(self) -> str:
        self._ensure_imported()
        items = ", ".join(sorted(self._modules))
        parent = f", parent={self.parent.name!r}" if self.parent is not None else ""
        return f"Registry(name={self.name!r}{parent}, items=[{items}])"

    def build(self, cfg: Mapping[str, Any], **default_args: Any) -> Any:
        """Build ``cfg`` with this registry; keyword arguments fill in what ``cfg`` lacks."""
        return build_from_cfg(cfg, self, default_args or None)


def _describe(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"


def _check_arguments(target: Callable[..., Any], kwargs: Mapping[str, Any], registry: str, type_name: str) -> None:
    """Raise ``BuildArgumentError`` if ``kwargs`` cannot be passed to ``target`` by keyword."""
    try:
        signature = inspect.signature(target)
    except (TypeError, ValueError):  # builtins without a signature: let the call decide
        return
    params = signature.parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        accepted = None
    else:
        accepted = [
            n for n, p in params.items()
            if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        ]
    if accepted is not None:
        for key in kwargs:
            if key not in accepted:
                raise BuildArgumentError(
                    f"{type_name} (from the {registry} registry) got an unexpected argument {key!r}."
                    f"{did_you_mean(key, accepted)} It accepts: {', '.join(accepted) or 'nothing'}.",
                    registry=registry,
                    type_name=type_name,
                    key=key,
                )
    for name, p in params.items():
        required = p.default is inspect.Parameter.empty and p.kind in (
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            inspect.Parameter.KEYWORD_ONLY,
            inspect.Parameter.POSITIONAL_ONLY,
        )
        if required and name not in kwargs:
            raise BuildArgumentError(
                f"{type_name} (from the {registry} registry) is missing the required argument "
                f"{name!r}; add it to the config.",
                registry=registry,
                type_name=type_name,
                key=name,
            )


def build_from_cfg(
    cfg: Mapping[str, Any],
    registry: Registry,
    default_args: Mapping[str, Any] | None = None,
) -> Any:
    """Build the object that ``cfg['type']`` names, with the other keys as keyword arguments.

    ``default_args`` fill in keys that ``cfg`` lacks. Neither input is mutated.
    """
    if not isinstance(registry, Registry):
        raise TypeError(f"build_from_cfg needs a Registry, got {type(registry).__name__}")
    if not isinstance(cfg, Mapping):
        raise TypeError(
            f"a config for the {registry.name} registry must be a mapping with a 'type' key, "
            f"got {type(cfg).__name__}: {cfg!r}"
        )
    if default_args is not None and not isinstance(default_args, Mapping):
        raise TypeError(f"default_args must be a mapping or None, got {type(default_args).__name__}")
    kwargs: dict[str, Any] = dict(default_args or {})
    kwargs.update(cfg)  # shallow copies: the caller's dicts stay as they were
    if "type" not in kwargs:
        raise BuildArgumentError(
            f"a config for the {registry.name} registry needs a 'type' key naming what to build; "
            f"got keys {sorted(map(str, cfg))}.",
            registry=registry.name,
            type_name="?",
            key="type",
        )
    obj_type = kwargs.pop("type")
    if isinstance(obj_type, str):
        target = registry.get(obj_type)
        type_name = obj_type
    elif _is_buildable(obj_type):
        target = obj_type
        type_name = getattr(obj_type, "__name__", repr(obj_type))
    else:
        raise BuildArgumentError(
            f"'type' in a config for the {registry.name} registry must be a name or a class/function, "
            f"got {obj_type!r} of type {type(obj_type).__name__}.",
            registry=registry.name,
            type_name=repr(obj_type),
            key="type",
        )
    # Values may be mutable (lists, dicts); the target may mutate them. Copy so the caller's
    # config survives, but keep tensors, modules and other non-plain objects as they are.
    return call_target(target, {k: copy_config(v) for k, v in kwargs.items()}, registry.name, type_name)


def call_target(target: Callable[..., Any], kwargs: Mapping[str, Any], registry: str, type_name: str) -> Any:
    """Check ``kwargs`` against ``target``'s signature, call it, and name the target if it raises.

    ``kwargs`` is passed as it is (no copy): for callers that made it themselves.
    """
    _check_arguments(target, kwargs, registry, type_name)
    try:
        return target(**kwargs)
    except ParamwiseError:
        raise
    except Exception as e:
        raise wrap_target_error(
            e,
            f"building {type_name!r} from the {registry} registry failed: {type(e).__name__}: {e}",
            registry=registry,
            type_name=type_name,
        ) from e


def copy_config(value: Any) -> Any:
    """Copy nested mappings (a ``Config`` too) and lists into plain dicts and lists.

    Leaves (numbers, tensors, parameters, modules) stay shared: only the containers a callee
    could mutate are new.
    """
    if isinstance(value, Mapping):
        return {k: copy_config(v) for k, v in value.items()}
    if isinstance(value, list):
        return [copy_config(v) for v in value]
    return value
