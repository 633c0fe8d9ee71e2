"""The dict with attribute access that every config value is: ``cfg.optimizer.lr``, and an ``update`` that merges.

One class serves a loaded :class:`~paramwise.config.config.Config` and the ``_base_`` and ``read_base()``
values that a Python config's code works with while it runs, so both behave the same.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from paramwise.config.formats import MAX_DEPTH, MAX_VALUES, key_text, structure_problem
from paramwise.errors import ConfigAttributeError, ConfigError, ConfigKeyError, Problem, UsageTypeError
from paramwise.suggestions import did_you_mean

__all__ = ["DELETE_KEY", "ConfigDict", "config_copy"]

#: In a dict that merges into another (``_base_`` inheritance, ``update``): replace that dict instead.
DELETE_KEY = "_delete_"

_MAX_LISTED_KEYS = 20


# --------------------------------------------------------------------------- errors


def _missing_key_text(key: str, keys: Iterable[Any]) -> str:
    """Describe a missing key: the did-you-mean and the keys that do exist at that level."""
    names = sorted(key_text(k) for k in keys)
    listed = ", ".join(names[:_MAX_LISTED_KEYS]) + (", ..." if len(names) > _MAX_LISTED_KEYS else "")
    return f"no key {key!r}.{did_you_mean(key, names)} Available keys here: {listed or '(none)'}."


def _structure(value: Any, path: tuple[str, ...] = ()) -> Problem | None:
    """What makes ``value`` unsafe to walk: a self-reference, too deep nesting, too many values."""
    return structure_problem(value, max_depth=MAX_DEPTH, max_values=MAX_VALUES, path=path)


def _check_structure(value: Any, title: str, path: tuple[str, ...] = ()) -> None:
    """Raise a ConfigError at the key path where ``value`` refers to itself, nests or expands too far."""
    problem = _structure(value, path)
    if problem is not None:
        raise ConfigError([problem], title=title)


def _is_container(value: Any) -> bool:
    return isinstance(value, (Mapping, list, tuple))


# --------------------------------------------------------------------------- ConfigDict


class ConfigDict(dict[str, Any]):
    """A dict whose nested dicts are ConfigDicts too, so values read by attribute: ``cfg.optimizer.lr``.

    String keys read as attributes; other keys (``{0: 19}`` in a .py config) are kept and read with
    ``cfg[0]``. Keys that collide with dict methods (``items``, ``copy``, ...) still work with
    ``cfg['items']``. ``update`` (and ``|``, ``|=``) merge nested dicts, as mmengine's ConfigDict does.
    """

    def __init__(self, data: Mapping[Any, Any] | None = None, /, **kwargs: Any) -> None:
        super().__init__()
        for given in (data, kwargs):  # checked as given, so a self-reference is reported where it is
            if given:
                _check_structure(given, f"invalid {type(self).__name__}() data")
        _fill(self, {**(data or {}), **kwargs})

    def __missing__(self, key: Any) -> Any:
        raise ConfigKeyError(_missing_key_text(key_text(key), self), key=key)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):  # copy/pickle probe dunders: fail fast
            raise AttributeError(name)
        if name in self:
            return dict.__getitem__(self, name)
        raise ConfigAttributeError(_missing_key_text(name, self))

    def __setattr__(self, name: str, value: Any) -> None:
        attribute = getattr(type(self), name, None)
        if isinstance(attribute, property):
            object.__setattr__(self, name, value)
        elif attribute is not None:
            raise ConfigAttributeError(
                f"{name!r} is a method of {type(self).__name__}; set the key with cfg[{name!r}] = ..."
            )
        else:
            self[name] = value

    def __delattr__(self, name: str) -> None:
        if name not in self:
            raise ConfigAttributeError(_missing_key_text(name, self))
        del self[name]

    def __setitem__(self, key: Any, value: Any) -> None:
        if _is_container(value) and type(value) is not ConfigDict:  # a ConfigDict is kept, not walked
            _check_structure(value, "invalid config value", (key_text(key),))
        dict.__setitem__(self, key, _wrap(value))

    def __dir__(self) -> list[str]:
        return [*super().__dir__(), *(k for k in self if isinstance(k, str) and k.isidentifier())]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({_data_repr(self)})"

    def update(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        """Merge a dict (and keyword arguments) into this one, key by key at every depth.

        As mmengine's ``ConfigDict.update``: where a dict meets a dict here, it merges into it; any other
        value (a list, a number, a dict where a number was) replaces. A keyword argument replaces the
        positional dict's value for its key before the merge. Unlike mmengine, a dict holding
        ``_delete_=True`` replaces the dict it meets, as in ``_base_`` inheritance, and ``_delete_`` is
        never stored.

        Raises:
            UsageTypeError: more than one positional argument, or one that is not a dict or (key, value) pairs.
            ConfigError: a value that contains itself or nests too deeply; nothing is changed then.
        """
        if len(args) > 1:
            raise UsageTypeError(f"update() takes at most 1 positional argument (a dict), got {len(args)}")
        try:
            given = dict(*args, **kwargs)
        except (TypeError, ValueError) as exc:
            raise UsageTypeError(f"update() takes a dict or (key, value) pairs, got {type(args[0]).__name__}") from exc
        _check_structure(given, f"invalid {type(self).__name__}.update() data")  # before anything changes
        _merge_into(self, given)

    def merge(self, other: Mapping[Any, Any]) -> None:
        """Merge a copy of ``other`` into this dict in place, as mmengine's ``ConfigDict.merge``.

        New-style configs edit imported values this way (``train_dataloader.merge(dict(batch_size=256))``).
        Dicts meeting dicts merge at every depth; any other value replaces; a dict holding
        ``_delete_=True`` replaces the dict it meets. Unlike mmengine, ``_delete_`` is never stored (mmengine
        keeps it in a dict that lands where there was no dict), and nested dicts already here stay the
        same objects (mmengine rebuilds them), as ``update`` does.

        Raises:
            UsageTypeError: ``other`` is not a dict.
            ConfigError: ``other`` contains itself or nests too deeply; nothing is changed then.
        """
        if not isinstance(other, Mapping):
            raise UsageTypeError(f"merge() takes a dict, got {type(other).__name__}")
        _check_structure(other, f"invalid {type(self).__name__}.merge() data")  # before anything changes
        _merge_into(self, config_copy(dict(other)))  # a copy: the config never shares other's dicts

    def __ior__(self, other: Any) -> ConfigDict:  # type: ignore[override,misc]
        if not isinstance(other, Mapping):
            return NotImplemented
        self.update(other)
        return self

    def __or__(self, other: Any) -> ConfigDict:  # type: ignore[override]
        if not isinstance(other, Mapping):
            return NotImplemented
        merged = self.copy()
        _fill(merged, config_copy(dict(merged)))  # merging into the copy must not reach into this dict
        merged.update(other)
        return merged

    def __ror__(self, other: Any) -> ConfigDict:  # type: ignore[override,misc]
        if not isinstance(other, Mapping):
            return NotImplemented
        merged = ConfigDict(other)
        _fill(merged, config_copy(dict(merged)))
        merged.update(config_copy(dict(self)))
        return merged

    def setdefault(self, key: str, default: Any = None) -> Any:
        """Like ``dict.setdefault``, but the stored default is wrapped like any other value."""
        if key not in self:
            self[key] = default
        return dict.__getitem__(self, key)

    def copy(self) -> ConfigDict:
        """A shallow copy of the same type (``dict.copy`` would return a plain dict)."""
        return type(self)(self)

    def to_dict(self) -> dict[str, Any]:
        """Return the config as plain nested dicts and lists (tuples stay tuples).

        Raises:
            ConfigError: a list or dict in the config was changed in place to contain itself, or to nest
                or expand beyond the limits (see :data:`MAX_DEPTH`, :data:`MAX_VALUES`).
        """
        _check_structure(self, "the config cannot be copied")
        return _unwrap(self)


def _data_repr(config: ConfigDict) -> str:
    """The repr of a config's data; a config made to hold itself says so instead of recursing."""
    problem = _structure(config)
    return f"<cannot be shown: {problem}>" if problem else repr(_unwrap(config))


def _fill(target: ConfigDict, items: Mapping[Any, Any]) -> None:
    """Store already-checked items in ``target``, wrapping nested dicts."""
    for key, value in items.items():
        dict.__setitem__(target, key, _wrap(value))


def _wrap(value: Any) -> Any:
    """Turn nested mappings into ConfigDicts (keeping ConfigDicts as they are, so views stay shared)."""
    if type(value) is ConfigDict:
        return value
    if isinstance(value, Mapping):
        wrapped = ConfigDict.__new__(ConfigDict)
        _fill(wrapped, value)
        return wrapped
    if type(value) is list:
        return [_wrap(v) for v in value]
    if type(value) is tuple:
        return tuple(_wrap(v) for v in value)
    return value


def _unwrap(value: Any) -> Any:
    """Turn ConfigDicts back into plain dicts, copying containers all the way down."""
    if isinstance(value, dict):
        return {k: _unwrap(v) for k, v in value.items()}
    if type(value) is list:
        return [_unwrap(v) for v in value]
    if type(value) is tuple:
        return tuple(_unwrap(v) for v in value)
    return value


def config_copy(value: Any) -> Any:
    """A copy of ``value`` with its dicts (at any depth) as new ConfigDicts; it shares no dict or list."""
    return _wrap(_unwrap(value))


def _merge_into(target: ConfigDict, items: Mapping[Any, Any]) -> None:
    """``update``'s merge: dicts meeting dicts merge, everything else replaces; ``_delete_`` replaces."""
    if items.get(DELETE_KEY):
        target.clear()
    dict.pop(target, DELETE_KEY, None)  # one stored (ConfigDict(_delete_=...)) deletes nothing: mmengine drops it too
    for key, value in items.items():
        if key == DELETE_KEY:
            continue
        current = dict.get(target, key)
        if isinstance(current, ConfigDict) and isinstance(value, Mapping) and not value.get(DELETE_KEY):
            _merge_into(current, value)
        else:
            target[key] = _without_delete_keys(value) if _holds_delete_key(value) else value


def _holds_delete_key(value: Any) -> bool:
    if isinstance(value, Mapping):
        return DELETE_KEY in value or any(_holds_delete_key(v) for v in value.values())
    if type(value) in (list, tuple):
        return any(_holds_delete_key(v) for v in value)
    return False


def _without_delete_keys(value: Any) -> Any:
    """A copy of ``value`` without ``_delete_`` keys: a dict replacing what was there has nothing to delete."""
    if isinstance(value, Mapping):
        return {k: _without_delete_keys(v) for k, v in value.items() if k != DELETE_KEY}
    if type(value) is list:
        return [_without_delete_keys(v) for v in value]
    if type(value) is tuple:
        return tuple(_without_delete_keys(v) for v in value)
    return value
