"""Config files: load ``.py``/``.yaml``/``.json``/``.toml`` with ``_base_`` inheritance, override, dump back.

A loaded config is a :class:`Config`, a dict whose nested dicts read by attribute too
(``cfg.optimizer.lr``). Only ``.py`` configs run code; the other formats are parsed as data.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .config_formats import (
    BASE_KEY,
    DUMPERS,
    LOADERS,
    SCALAR_TYPES,
    SUPPORTED_SUFFIXES,
    dump_problems,
    dumps_python,
)
from .config_lazy import LazyObject
from .config_python import run_python_config, split_python_bases
from .config_refs import (
    add_scope,
    mark_base_refs,
    resolve_base_refs,
    scoped_base_path,
    split_scope,
    substitute_predefined,
)
from .errors import (
    ConfigAttributeError,
    ConfigDependencyError,
    ConfigError,
    ConfigFileError,
    ConfigFileNotFoundError,
    ConfigKeyError,
    Problem,
)
from .suggestions import did_you_mean

__all__ = [
    "BASE_KEY",
    "DELETE_KEY",
    "SUPPORTED_SUFFIXES",
    "Config",
    "ConfigAttributeError",
    "ConfigDependencyError",
    "ConfigDict",
    "ConfigFileError",
    "ConfigFileNotFoundError",
    "ConfigKeyError",
    "LazyObject",
    "parse_cfg_options",
    "parse_value",
    "split_key_path",
]

DELETE_KEY = "_delete_"

_MAX_LISTED_KEYS = 20


# --------------------------------------------------------------------------- errors


def _missing_key_text(key: str, keys: Iterable[str]) -> str:
    """Describe a missing key: the did-you-mean and the keys that do exist at that level."""
    names = sorted(str(k) for k in keys)
    listed = ", ".join(names[:_MAX_LISTED_KEYS]) + (", ..." if len(names) > _MAX_LISTED_KEYS else "")
    return f"no key {key!r}.{did_you_mean(key, names)} Available keys here: {listed or '(none)'}."


# --------------------------------------------------------------------------- ConfigDict


class ConfigDict(dict[str, Any]):
    """A dict whose nested dicts are ConfigDicts too, so values read by attribute: ``cfg.optimizer.lr``.

    String keys read as attributes; other keys (``{0: 19}`` in a .py config) are kept and read with
    ``cfg[0]``. Keys that collide with dict methods (``items``, ``copy``, ...) still work with
    ``cfg['items']``.
    """

    def __init__(self, data: Mapping[Any, Any] | None = None, /, **kwargs: Any) -> None:
        super().__init__()
        _fill(self, {**(data or {}), **kwargs})

    def __missing__(self, key: Any) -> Any:
        raise ConfigKeyError(_missing_key_text(str(key), self), key=key)

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
        dict.__setitem__(self, key, _wrap(value))

    def __dir__(self) -> list[str]:
        return [*super().__dir__(), *(k for k in self if isinstance(k, str) and k.isidentifier())]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.to_dict()!r})"

    def update(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        """Set every key through ``__setitem__``, so nested dicts become ConfigDicts."""
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def setdefault(self, key: str, default: Any = None) -> Any:
        """Like ``dict.setdefault``, but the stored default is wrapped like any other value."""
        if key not in self:
            self[key] = default
        return dict.__getitem__(self, key)

    def copy(self) -> ConfigDict:
        """A shallow copy of the same type (``dict.copy`` would return a plain dict)."""
        return type(self)(self)

    def to_dict(self) -> dict[str, Any]:
        """Return the config as plain nested dicts and lists (tuples stay tuples)."""
        return _unwrap(self)


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


# --------------------------------------------------------------------------- Config


class Config(ConfigDict):
    """A whole config: a ConfigDict that remembers its file, takes overrides and dumps to any format."""

    def __init__(
        self, cfg_dict: Mapping[str, Any] | None = None, *, filename: str | os.PathLike[str] | None = None
    ) -> None:
        if cfg_dict is not None and not isinstance(cfg_dict, Mapping):
            problem = Problem((), f"Config() takes a dict, got {type(cfg_dict).__name__}")
            raise ConfigError([problem], title="invalid config")
        super().__init__(cfg_dict or {})
        object.__setattr__(self, "_filename", None if filename is None else os.fspath(filename))

    @property
    def filename(self) -> str | None:
        """The file this config was loaded from, or None for a config built from a dict."""
        return self.__dict__.get("_filename")

    @filename.setter
    def filename(self, value: str | os.PathLike[str] | None) -> None:
        object.__setattr__(self, "_filename", None if value is None else os.fspath(value))

    @classmethod
    def fromfile(cls, path: str | os.PathLike[str]) -> Config:
        """Load a config file and everything it inherits through ``_base_`` or ``read_base()`` imports.

        mmengine's file features apply: ``{{_base_.x}}``, ``_base_.x`` in ``.py`` code, predefined
        variables such as ``{{ fileBasenameNoExtension }}``, ``'pkg::path'`` bases, and lazy imports.
        """
        path = Path(os.fspath(path))
        return cls(_load_tree(path, ()), filename=path)

    def merge_from_dict(self, options: Mapping[str, Any], *, allow_new_keys: bool = False) -> None:
        """Set dotted keys (``'optimizer.lr'``) to values; all bad paths are reported and nothing changes."""
        staged = self.to_dict()
        problems = [p for key, value in options.items() for p in _set_dotted(staged, key, value, allow_new_keys)]
        if problems:
            where = f" to {self.filename}" if self.filename else ""
            raise ConfigError(problems, title=f"cannot apply config overrides{where}")
        for key, value in options.items():  # validated on the copy: applying in place cannot fail now
            _set_dotted(self, key, value, allow_new_keys)

    def merge_from_dotlist(self, items: Iterable[str], *, allow_new_keys: bool = False) -> None:
        """Apply ``['optimizer.lr=0.01', ...]`` overrides, values parsed as literals (see parse_value)."""
        self.merge_from_dict(parse_cfg_options(items), allow_new_keys=allow_new_keys)

    @property
    def pretty_text(self) -> str:
        """The config as Python source, the same text ``dump('x.py')`` writes."""
        return dumps_python(self.to_dict())

    def dump(self, path: str | os.PathLike[str]) -> None:
        """Write the config to ``path`` in the format its extension names."""
        path = Path(os.fspath(path))
        suffix = _suffix_of(path, chain=())
        data = self.to_dict()
        problems = dump_problems(data, suffix)
        if problems:
            raise ConfigError(problems, title=f"cannot write config to {path}")
        path.write_text(DUMPERS[suffix](data, path), encoding="utf-8")

    def copy(self) -> Config:
        """A shallow copy that keeps the filename."""
        return type(self)(self, filename=self.filename)

    def __repr__(self) -> str:
        return f"Config({self.to_dict()!r}, filename={self.filename!r})"


# --------------------------------------------------------------------------- overrides


class _LowercaseLiterals(ast.NodeTransformer):
    """Let ``true``/``false``/``null`` stand for True/False/None, as in YAML and JSON."""

    _NAMES: Mapping[str, Any] = {"true": True, "false": False, "null": None}

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if node.id in self._NAMES:
            return ast.copy_location(ast.Constant(self._NAMES[node.id]), node)
        return node


def parse_value(text: str) -> Any:
    """Read an override value as a Python literal (plus true/false/null); anything else stays a string."""
    try:
        tree = _LowercaseLiterals().visit(ast.parse(text.strip(), mode="eval"))
        value = ast.literal_eval(tree)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return text
    return value if _is_config_value(value) else text


def _is_config_value(value: Any) -> bool:
    """True for the values a config file can hold (no sets, bytes or complex numbers)."""
    if isinstance(value, (list, tuple)):
        return all(_is_config_value(v) for v in value)
    if isinstance(value, dict):
        return all(_is_config_value(v) for v in value.values())
    return type(value) in SCALAR_TYPES


def parse_cfg_options(options: Iterable[str] | str) -> dict[str, Any]:
    """Parse ``--cfg-options`` items ``KEY=VALUE`` into ``{dotted_key: parsed value}``, in order.

    A key segment in quotes may hold dots: ``optimizer.paramwise_cfg.custom_keys."backbone.layer2".lr_mult=0.1``.
    """
    items = [options] if isinstance(options, str) else list(options)
    parsed: dict[str, Any] = {}
    problems: list[Problem] = []
    for item in items:
        text = str(item)
        split = _outside_quotes_index(text, "=")
        if split < 0:  # an unbalanced quote hides every '=': split at the first, and the key check says why
            split = text.find("=")
        key, raw = (text[:split], text[split + 1 :]) if split >= 0 else (text, "")
        if split < 0:
            problems.append(Problem((text,), "expected KEY=VALUE, e.g. optimizer.lr=0.01"))
        elif not key.strip():
            problems.append(Problem((text,), "the key before '=' is empty; e.g. optimizer.lr=0.01"))
        else:
            try:
                split_key_path(key.strip())
            except ValueError as exc:
                problems.append(Problem((text,), str(exc)))
                continue
            parsed[key.strip()] = parse_value(raw)
    if problems:
        raise ConfigError(problems, title="invalid config override")
    return parsed


def _outside_quotes_index(text: str, char: str) -> int:
    """Index of the first ``char`` not inside '...' or "..." (-1 if none)."""
    quote = ""
    for index, current in enumerate(text):
        if quote:
            quote = "" if current == quote else quote
        elif current in "'\"":
            quote = current
        elif current == char:
            return index
    return -1


def split_key_path(dotted: str) -> list[tuple[str, bool]]:
    """Split ``'a."b.c".d'`` into ``[('a', False), ('b.c', True), ('d', False)]``: (key, was quoted).

    Raises:
        ValueError: an empty key, an unbalanced quote, or a quote inside an unquoted key.
    """
    keys: list[tuple[str, bool]] = []
    at = 0
    while True:
        if at < len(dotted) and dotted[at] in "'\"":
            quote = dotted[at]
            end = dotted.find(quote, at + 1)
            if end < 0:
                raise ValueError(f"unbalanced {quote} in the key path {dotted!r}; close the quoted key")
            keys.append((dotted[at + 1 : end], True))
            at = end + 1
            if at < len(dotted) and dotted[at] != ".":
                raise ValueError(f"a quoted key must be followed by '.' or the end, in {dotted!r}")
        else:
            end = dotted.find(".", at)
            end = len(dotted) if end < 0 else end
            segment = dotted[at:end]
            if not segment:
                raise ValueError(f"empty key in the dotted path {dotted!r}; write keys like 'optimizer.lr'")
            if "'" in segment or '"' in segment:
                raise ValueError(f'quote inside the key {segment!r} of {dotted!r}; quote the whole key: "..."')
            keys.append((segment, False))
            at = end
        if at >= len(dotted):
            return keys
        at += 1  # the '.'
        if at == len(dotted):
            raise ValueError(f"empty key in the dotted path {dotted!r}; write keys like 'optimizer.lr'")


def _set_dotted(root: dict[Any, Any], dotted: str, value: Any, allow_new_keys: bool) -> list[Problem]:
    """Set ``root[a][b][c] = value`` for ``'a.b.c'``; return what is wrong with the path instead, if anything."""
    try:
        segments = split_key_path(dotted)
    except ValueError as exc:
        return [Problem((dotted,), str(exc))]
    keys = [key for key, _ in segments]
    node: Any = root
    for depth, (key, quoted) in enumerate(segments):
        here, last = tuple(keys[: depth + 1]), depth == len(keys) - 1
        if isinstance(node, list):
            if quoted or not (key.isdigit() and int(key) < len(node)):
                return [Problem(here, f"not an index of this list of {len(node)} items")]
            if last:
                node[int(key)] = _wrap(value) if isinstance(root, ConfigDict) else value
                return []
            node = node[int(key)]
            continue
        if not isinstance(node, dict):
            return [Problem(here[:-1], f"is a {type(node).__name__}, not a section, so it has no key {key!r}")]
        target: Any = key
        if key not in node and not quoted and key.lstrip("-").isdigit() and int(key) in node:
            target = int(key)  # a .py config's {0: 19}: 'labels_map.0' reaches the int key
        if target not in node:
            if not allow_new_keys:
                return [Problem(here, _missing_key_text(key, node) + " Pass allow_new_keys=True to add it.")]
            if not last:
                node[target] = {}
        if last:
            node[target] = value
            return []
        node = node[target]
    return []


# --------------------------------------------------------------------------- loading


def _load_tree(path: Path, chain: tuple[Path, ...]) -> dict[Any, Any]:
    """Load one file merged over everything it inherits: its bases in order, then the file itself on top."""
    chain = (*chain, path)
    names = _chain_names(chain)
    suffix = _suffix_of(path, names)
    text = substitute_predefined(_read_text(path, names), path)
    text, refs = mark_base_refs(text, suffix)
    try:
        if suffix == ".py":
            code, base_value = split_python_bases(path, text)
        else:
            raw = _parse_data(path, text, suffix)
            base_value = raw.pop(BASE_KEY, None)
        merged: dict[Any, Any] = {}
        for entry, base in _base_paths(base_value, path, names):
            loaded = _load_base(base, chain, what=f"_base_ file {entry!r}", line=None)
            scope, _ = split_scope(entry)
            merged = _merge(merged, add_scope(loaded, scope) if scope else loaded)
        if suffix == ".py":

            def import_config(file: Path, line: int | None) -> dict[Any, Any]:
                return _load_base(file, chain, what=f"read_base() import {file.name!r}", line=line)

            bases = merged if base_value is not None else None
            raw = run_python_config(path, code, bases=bases, refs=refs, import_config=import_config)
        raw = resolve_base_refs(raw, refs, merged, path)
    except ConfigFileError as exc:
        if not exc.chain:
            exc.chain = names
        raise
    return _merge(merged, raw)


def _load_base(base: Path, chain: tuple[Path, ...], *, what: str, line: int | None) -> dict[Any, Any]:
    """Load a file that ``chain[-1]`` inherits or imports, after checking for a cycle and that it exists."""
    asking = chain[-1]
    if any(_same_file(base, seen) for seen in chain):
        message = f"{what} makes an inheritance cycle; remove one of the _base_ entries or imports in the chain"
        raise ConfigFileError(message, filename=str(asking), line=line, chain=_chain_names((*chain, base)))
    if not base.is_file():
        message = (
            f"{what} not found (looked for {base.resolve()});"
            " _base_ paths and relative imports are relative to the file that names them"
        )
        raise ConfigFileNotFoundError(message, filename=str(asking), line=line, chain=_chain_names((*chain, base)))
    return _load_tree(base, chain)


def _chain_names(chain: Sequence[Path]) -> tuple[str, ...]:
    """Short names for an inheritance chain: each file relative to the first file's folder."""
    root = chain[0].parent
    names = []
    for path in chain:
        try:
            names.append(os.path.relpath(path, root))
        except ValueError:  # another drive on Windows
            names.append(str(path))
    return tuple(names)


def _same_file(a: Path, b: Path) -> bool:
    return os.path.normcase(a.resolve()) == os.path.normcase(b.resolve())


def _base_paths(value: Any, path: Path, names: tuple[str, ...]) -> list[tuple[str, Path]]:
    """The files a ``_base_`` value names: relative to the folder of the file that names them, or
    ``'pkg::path'`` inside an installed package."""
    if value is None:
        return []
    entries = [value] if isinstance(value, str) else value
    if not isinstance(entries, (list, tuple)) or not all(isinstance(e, str) for e in entries):
        message = f"_base_ must be a path or a list of paths, got {value!r}"
        raise ConfigFileError(message, filename=str(path), chain=names)
    return [(e, scoped_base_path(e, path, names) if "::" in e else _local_path(path, e)) for e in entries]


def _local_path(path: Path, entry: str) -> Path:
    return Path(os.path.normpath(path.parent / os.path.expanduser(entry)))


def _merge(base: dict[Any, Any], child: Mapping[Any, Any]) -> dict[Any, Any]:
    """Merge ``child`` over ``base`` key by key; ``_delete_: True`` replaces, lists replace, not merge."""
    merged = {} if child.get(DELETE_KEY) else dict(base)
    for key, value in child.items():
        if key == DELETE_KEY:
            continue
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = _without_delete_keys(value)
    return merged


def _without_delete_keys(value: Any) -> Any:
    """Drop ``_delete_`` keys below a value that replaces (rather than merges into) the base."""
    if isinstance(value, dict):
        return _merge({}, value)
    if isinstance(value, (list, tuple)):
        return type(value)(_without_delete_keys(v) for v in value)
    return value


def _suffix_of(path: Path, chain: Sequence[str]) -> str:
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        message = (
            f"unsupported config file type {path.suffix or '(no extension)'!r};"
            f" use one of {', '.join(SUPPORTED_SUFFIXES)}"
        )
        raise ConfigFileError(message, filename=str(path), chain=chain)
    return suffix


def _read_text(path: Path, chain: Sequence[str]) -> str:
    """The text of one config file, or an error naming it."""
    if not path.is_file():
        raise ConfigFileNotFoundError("config file not found", filename=str(path), chain=chain)
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        message = f"not UTF-8 text (byte {exc.start}); save the file as UTF-8"
        raise ConfigFileError(message, filename=str(path), chain=chain) from exc
    except OSError as exc:
        raise ConfigFileError(f"cannot read: {exc.strerror}", filename=str(path), chain=chain) from exc


def _parse_data(path: Path, text: str, suffix: str) -> dict[Any, Any]:
    """Parse a YAML/JSON/TOML file (no inheritance) into a dict."""
    data = LOADERS[suffix](path, text)
    if data is None:  # an empty YAML file
        data = {}
    if not isinstance(data, dict):
        message = f"the top level must be a mapping of names to values, got {type(data).__name__}"
        raise ConfigFileError(message, filename=str(path))
    return data
