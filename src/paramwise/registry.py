"""Named registries of builders and ``build_from_cfg``, the config-to-object step.

A config is a mapping whose ``type`` names a registered callable (or is one): a class, a function,
a ``functools.partial`` or a callable instance, as in mmengine; every other key becomes a keyword
argument. Arguments are checked against the target's signature before the call, so a typo fails
with a did-you-mean instead of deep inside it.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from types import CodeType, MappingProxyType
from typing import Any

from paramwise.errors import (
    BuildArgumentError,
    ConfigError,
    DuplicateRegistrationError,
    MissingTypeError,
    NotRegisteredError,
    ParamwiseError,
    Problem,
    UsageTypeError,
    wrap_target_error,
)
from paramwise.suggestions import did_you_mean, format_suggestions, safe_repr, safe_str, suggest

__all__ = ["MAX_NESTING", "Registry", "build_from_cfg", "call_target", "copy_config"]

#: How deep ``copy_config`` follows nested containers; real configs nest a few levels, and deeper
#: input (generated, or self-building) would otherwise end in a RecursionError.
MAX_NESTING = 200


# `get`'s "no default given"; None cannot serve, since `get(name, None)` is the mmengine-style call
_NO_DEFAULT: Any = object()


def _callable_name(obj: Any) -> str:
    """A short name for a registered or given callable, for messages: partials and instances have no ``__name__``."""
    name = getattr(obj, "__name__", None)
    if isinstance(name, str):
        return name
    if isinstance(obj, functools.partial):
        return f"partial({_callable_name(obj.func)})"
    return safe_repr(obj)


def _register_names(name: object) -> list[str] | None:
    """``register_module``'s ``name`` as a list of names (None: use the object's own), or a TypeError."""
    if name is None:
        return None
    if isinstance(name, str):
        return [name]
    if isinstance(name, (list, tuple)) and name and all(isinstance(n, str) for n in name):
        return list(name)
    raise UsageTypeError(
        "register_module(name=...) takes a string or a non-empty list of strings (the name, then "
        f"aliases), got {safe_repr(name)} of type {type(name).__name__}"
    )


class Registry:
    """A mapping of names to classes or functions, with lazy filling and a parent chain.

    Args:
        name: shown in every message ("the optimizer registry").
        parent: looked up after this registry's own names, so a project can extend
            paramwise's registries without touching them.
        locations: modules imported on the first lookup, which register their members.
        allow_import: whether a ``type`` string with a dot or colon (``"torch.optim:SGD"``) that is
            not registered is imported. Off by default: a config must not reach arbitrary code.
            A string or a list of module prefixes (``("torch.optim", "mypkg.")``) allows only modules
            under them: ``"torch.optim"`` admits ``torch.optim`` and ``torch.optim.sgd`` but not
            ``torch.optimx``; a trailing dot changes nothing. The module name is checked before
            anything is imported. ``True`` allows any module, as before prefixes existed.
    """

    def __init__(
        self,
        name: str,
        parent: Registry | None = None,
        locations: Iterable[str] = (),
        allow_import: bool | str | Iterable[str] = False,
    ) -> None:
        if not isinstance(name, str):
            raise UsageTypeError(f"a registry's name is a string, got {safe_repr(name)} of type {type(name).__name__}")
        if parent is not None and not isinstance(parent, Registry):
            raise UsageTypeError(f"Registry(parent=...) takes a Registry or None, got {type(parent).__name__}")
        self.name = name
        self.parent = parent
        self.locations = tuple(locations)
        #: None: any module may be imported; otherwise the module prefixes that may be
        self.import_prefixes: tuple[str, ...] | None = _import_prefixes(allow_import)
        self.allow_import = bool(allow_import) if isinstance(allow_import, bool) else bool(self.import_prefixes)
        self._modules: dict[str, Any] = {}
        self._sites: dict[str, tuple[str, int] | None] = {}  # name -> where its object was defined
        self._imported = not self.locations

    # ----------------------------------------------------------------- registration
    def register_module(
        self,
        name: str | list[str] | tuple[str, ...] | None = None,
        force: bool = False,
        module: Any = None,
    ) -> Any:
        """Register ``module`` under ``name`` (its ``__name__`` by default), or return a decorator.

        Any callable can be registered, as in mmengine: a class, a function, a ``functools.partial``
        or a callable instance; the last two have no ``__name__``, so they need ``name``. ``name``
        may be a list: the first is the name, the rest are aliases. Arguments are checked before
        anything is registered, so a decorator with a bad ``force`` fails where it is written.
        """
        if not isinstance(force, bool):
            raise UsageTypeError(
                f"register_module(force=...) takes True or False, got {safe_repr(force)} of type "
                f"{type(force).__name__}"
            )
        names = _register_names(name)
        if module is not None:
            self._register(module, names, force, _caller_site())
            return module

        def decorator(obj: Any) -> Any:
            self._register(obj, names, force, _caller_site())
            return obj

        return decorator

    def _register(self, obj: Any, names: list[str] | None, force: bool, caller: tuple[str, int] | None) -> None:
        if not callable(obj):
            raise UsageTypeError(
                f"only callables (classes, functions, functools.partial objects, callable instances) can be "
                f"registered in the {self.name} registry, got {safe_repr(obj)} of type {type(obj).__name__}"
            )
        if names is None:
            own = getattr(obj, "__name__", None)
            if not isinstance(own, str):
                raise UsageTypeError(
                    f"{safe_repr(obj)} has no __name__ to register it under in the {self.name} registry; "
                    "pass name='...' (a functools.partial or a callable instance always needs one)"
                )
            names = [own]
        site = _definition_site(obj, caller)
        for key in names:
            old = self._modules.get(key)
            # the same definition again, from the same file and line (its module was imported a second
            # time), is not a clash; a second class of the same name elsewhere is, as in mmengine
            same = old is not None and _same_definition(old, obj) and site is not None and self._sites.get(key) == site
            if old is not None and old is not obj and not force and not same:
                where = f" (defined at {site[0]}:{site[1]})" if site is not None and _same_definition(old, obj) else ""
                raise DuplicateRegistrationError(
                    f"{key!r} is already registered in the {self.name} registry as "
                    f"{_describe(old)}; cannot register {_describe(obj)}{where} under the same name. "
                    "Pass force=True to replace it, or choose another name.",
                    registry=self.name,
                    name=key,
                )
        for key in names:
            self._modules[key] = obj
            self._sites[key] = site

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

    def get(self, name: str, default: Any = _NO_DEFAULT) -> Any:
        """Return the object registered as ``name``, looking in parents after this registry.

        An unknown name raises ``NotRegisteredError`` (a ``KeyError``) that names the closest
        registered names, unless ``default`` is given: then ``default`` is returned instead.
        mmengine's ``get`` returns None for an unknown name; paramwise raises by default because a
        None carried on into a build fails later, far from the misspelt name. ``get(name, None)``
        gives mmengine's behaviour.
        """
        if not isinstance(name, str):
            raise UsageTypeError(
                f"{self.name} registry names are strings, got {safe_repr(name)} of type {type(name).__name__}"
            )
        try:
            return self._lookup(name)
        except NotRegisteredError:
            if default is _NO_DEFAULT:
                raise
            return default

    def _lookup(self, name: str) -> Any:
        found = self._find(name)
        if found is not None:
            return found
        if "." in name or ":" in name:
            return self._import_path(name)
        close = suggest(name, self.names())
        raise NotRegisteredError(
            f"{safe_repr(name)} is not in the {self.name} registry.{self._miss_help(name, close)}",
            registry=self.name,
            name=name,
            suggestions=close,
        )

    def _miss_help(self, name: str, close: list[str]) -> str:
        """The help after "'name' is not in the ... registry." (leading space); subclasses that know more override it.

        ``close`` holds the registered names nearest to ``name``, best first.
        """
        return format_suggestions(close) or f" It holds {len(self.names())} names; list them with registry.names()."

    def _import_path(self, path: str) -> Any:
        shown = safe_repr(path)
        if not self.allow_import:
            raise NotRegisteredError(
                f"{shown} is not in the {self.name} registry, and it is not imported: a config may "
                "not import code by path unless the registry was created with allow_import=True "
                "(or a list of module prefixes). Register the object (registry.register_module(module=obj)) "
                "or pass the object itself as 'type'.",
                registry=self.name,
                name=path,
            )
        module_name, sep, attr = path.partition(":")
        if not sep:
            module_name, _, attr = path.rpartition(".")
        prefixes = self.import_prefixes
        if prefixes is not None and not any(module_name == p or module_name.startswith(p + ".") for p in prefixes):
            raise NotRegisteredError(
                f"{shown} is not in the {self.name} registry, and its module {safe_repr(module_name)} is not "
                f"under the modules this registry may import from ({', '.join(map(repr, prefixes))}). "
                "Register the object, pass it itself as 'type', or add its module to allow_import.",
                registry=self.name,
                name=path,
            )
        try:
            obj: Any = importlib.import_module(module_name)
            for part in attr.split("."):
                obj = getattr(obj, part)
        except Exception as e:  # a bad name (ValueError for '' or NUL) or a module that fails to import
            raise NotRegisteredError(
                f"could not import {shown} for the {self.name} registry: {type(e).__name__}: {safe_str(e)}",
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
        return isinstance(name, str) and name in self._modules

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


def _import_prefixes(allow_import: Any) -> tuple[str, ...] | None:
    """``allow_import`` as the module prefixes it allows: None for any module, () for none."""
    if isinstance(allow_import, bool):
        return None if allow_import else ()
    items = [allow_import] if isinstance(allow_import, str) else allow_import
    try:
        prefixes = tuple(items)
    except TypeError:
        prefixes = (None,)  # not iterable: reported below
    if not all(isinstance(p, str) and p.strip(".") for p in prefixes):
        raise UsageTypeError(
            "Registry(allow_import=...) takes True, False, or module prefixes (a string or a list of "
            f"non-empty strings such as ('torch.optim', 'mypkg.')), got {safe_repr(allow_import)}"
        )
    return tuple(p.rstrip(".") for p in prefixes)


def _caller_site() -> tuple[str, int] | None:
    """The file and line that called ``register_module`` or its decorator (two frames up)."""
    try:
        frame = sys._getframe(2)
    except ValueError:  # called from the top of the stack: no such frame
        return None
    return frame.f_code.co_filename, frame.f_lineno


def _definition_site(obj: Any, caller: tuple[str, int] | None) -> tuple[str, int] | None:
    """Where ``obj`` was defined: a function's own file and first line, else where it was registered.

    A class keeps no line of its own before Python 3.13, and two classes of one name in one function
    have the same qualified name; the line that registers each tells them apart, and stays the same
    when the module is imported again.
    """
    code = getattr(obj, "__code__", None)
    if isinstance(code, CodeType):
        return code.co_filename, code.co_firstlineno
    return caller


def _same_definition(old: Any, new: Any) -> bool:
    """Whether ``new`` is ``old`` defined again (its module imported a second time): same module and name.

    Objects without a qualified name compare by repr; one whose repr fails is never the same.
    """
    if isinstance(getattr(new, "__qualname__", None), str):
        return _describe(old) == _describe(new)
    try:
        return isinstance(getattr(old, "__qualname__", None), str) is False and repr(old) == repr(new)
    except Exception:
        return False


def _describe(obj: Any) -> str:
    qualname = getattr(obj, "__qualname__", None)
    if not isinstance(qualname, str):  # a partial or a callable instance: its repr says what it is
        return safe_repr(obj)
    return f"{safe_str(getattr(obj, '__module__', '?'))}.{qualname}"


def _check_arguments(target: Callable[..., Any], kwargs: Mapping[str, Any], registry: str, type_name: str) -> None:
    """Raise ``BuildArgumentError`` if ``kwargs`` cannot be passed to ``target`` by keyword."""
    for key in kwargs:
        if not isinstance(key, str):  # Python itself would refuse it with a message that names nothing
            raise BuildArgumentError(
                f"{type_name} (from the {registry} registry) got an argument named {safe_repr(key)} of type "
                f"{type(key).__name__}; argument names are strings.",
                registry=registry,
                type_name=type_name,
                key=safe_str(key),
            )
    try:
        signature = inspect.signature(target)
    except Exception:  # builtins without a signature (TypeError, ValueError): let the call decide
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

    ``default_args`` fill in keys that ``cfg`` lacks (``type`` too). Neither input is mutated: the
    target gets deep copies of the plain containers in them (see :func:`copy_config`). A config or
    ``default_args`` that is not a mapping, or a key that is not a string, raises
    ``BuildArgumentError`` (a ``TypeError``); a config without ``type`` raises ``MissingTypeError``
    (also a ``KeyError``, as in mmengine).
    """
    if not isinstance(registry, Registry):
        raise UsageTypeError(f"build_from_cfg needs a Registry, got {type(registry).__name__}")
    if not isinstance(cfg, Mapping):
        raise BuildArgumentError(
            f"a config for the {registry.name} registry must be a mapping with a 'type' key, "
            f"got {type(cfg).__name__}: {safe_repr(cfg)}",
            registry=registry.name,
            type_name="?",
        )
    if default_args is not None and not isinstance(default_args, Mapping):
        raise BuildArgumentError(
            f"default_args for the {registry.name} registry must be a mapping or None, "
            f"got {type(default_args).__name__}: {safe_repr(default_args)}",
            registry=registry.name,
            type_name="?",
        )
    kwargs: dict[Any, Any] = dict(default_args or {})
    kwargs.update(cfg)  # shallow copies: the caller's dicts stay as they were
    if "type" not in kwargs:
        raise MissingTypeError(
            f"a config for the {registry.name} registry needs a 'type' key naming what to build; "
            f"got keys {_key_list(cfg)}"
            + (f" (and default_args keys {_key_list(default_args)})" if default_args else "")
            + ".",
            registry=registry.name,
            type_name="?",
            key="type",
        )
    obj_type = kwargs.pop("type")
    if isinstance(obj_type, str):
        target = registry.get(obj_type)
        type_name = obj_type
    elif callable(obj_type):
        target = obj_type
        type_name = _callable_name(obj_type)
    else:
        raise BuildArgumentError(
            f"'type' in a config for the {registry.name} registry must be a name or a callable "
            "(a class, a function, ...), "
            f"got {safe_repr(obj_type)} of type {type(obj_type).__name__}.",
            registry=registry.name,
            type_name=safe_repr(obj_type),
            key="type",
        )
    # Values may be mutable (lists, dicts, sets, bytearrays, also inside tuples); the target may
    # mutate them. Copy so the caller's config survives, but keep tensors, modules and other
    # non-plain objects as they are.
    try:
        copied = {k: copy_config(v, (safe_str(k),)) for k, v in kwargs.items()}
    except ConfigError as e:
        raise ConfigError(e.problems, title=f"invalid config for the {registry.name} registry") from None
    return call_target(target, copied, registry.name, type_name)


def _key_list(mapping: Mapping[Any, Any]) -> str:
    """The keys of ``mapping`` for a message, sorted as text (keys need not be strings)."""
    return "[" + ", ".join(sorted(safe_repr(k) for k in mapping)) + "]"


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
            f"building {safe_repr(type_name)} from the {registry} registry failed: {type(e).__name__}: "
            f"{safe_str(e, 4000)}",
            registry=registry,
            type_name=type_name,
        ) from e


def copy_config(value: Any, path: tuple[str, ...] = ()) -> Any:
    """Copy the plain containers in ``value`` all the way down; share everything else.

    Mappings (a ``Config`` too) become dicts and lists stay lists; sets and bytearrays are copied;
    a tuple is rebuilt (as its own type) when something inside it was copied. Leaves and other
    objects (numbers, strings, tensors, parameters, modules) stay shared: only the containers a
    callee could mutate are new. A container that holds itself is copied into one that holds
    itself. Nesting deeper than ``MAX_NESTING`` raises ``ConfigError`` naming the path (prefixed
    by ``path``), instead of a RecursionError.
    """
    try:
        return _copy(value, path, {}, 0)
    except RecursionError:  # the caller was already deep in the stack
        raise ConfigError([Problem(path, "is nested too deeply to copy; configs nest a few levels")],
                          title="config nested too deeply") from None


def _copy(value: Any, path: tuple[str, ...], memo: dict[int, Any], depth: int) -> Any:
    if isinstance(value, (str, bytes, int, float, complex, type(None))):
        return value  # the common leaves first: immutable, nothing to look up
    done = memo.get(id(value))
    if done is not None:
        return done
    if depth > MAX_NESTING and isinstance(value, (Mapping, list, tuple, set, bytearray)):
        raise ConfigError([Problem(path, f"nests containers more than {MAX_NESTING} levels deep")],
                          title="config nested too deeply")
    if isinstance(value, Mapping):
        out: Any = {}
        memo[id(value)] = out
        for k, v in value.items():
            out[k] = _copy(v, (*path, safe_str(k)), memo, depth + 1)
        return out
    if isinstance(value, list):
        out = []
        memo[id(value)] = out
        out.extend(_copy(v, (*path, f"[{i}]"), memo, depth + 1) for i, v in enumerate(value))
        return out
    if isinstance(value, tuple):
        items = [_copy(v, (*path, f"[{i}]"), memo, depth + 1) for i, v in enumerate(value)]
        if all(a is b for a, b in zip(items, value)):
            return value  # nothing mutable inside: the tuple itself can be shared
        return _rebuild_tuple(value, items)
    if isinstance(value, bytearray):
        return memo.setdefault(id(value), bytearray(value))
    if isinstance(value, (set, frozenset)):
        # set members are hashable, so they are not containers that can change; the set itself can
        return value if isinstance(value, frozenset) else memo.setdefault(id(value), set(value))
    return value


def _rebuild_tuple(value: tuple[Any, ...], items: list[Any]) -> tuple[Any, ...]:
    """A tuple of ``value``'s type holding ``items``: namedtuples take them by position."""
    if type(value) is tuple:
        return tuple(items)
    if hasattr(value, "_fields"):
        try:
            return type(value)(*items)
        except Exception:
            pass
    try:
        return type(value)(items)
    except Exception:  # a tuple subclass that cannot be rebuilt from its items: a plain tuple then
        return tuple(items)
