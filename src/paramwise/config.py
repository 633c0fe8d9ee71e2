"""Config files: load ``.py``/``.yaml``/``.json``/``.toml`` with ``_base_`` inheritance, override, dump back.

A loaded config is a :class:`Config`, a dict whose nested dicts read by attribute too
(``cfg.optimizer.lr``). Only ``.py`` configs run code; the other formats are parsed as data.
"""

from __future__ import annotations

import ast
import json
import keyword
import math
import os
import re
import traceback
import types
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .errors import ConfigError, ParamwiseError, Problem
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
    "parse_cfg_options",
    "parse_value",
]

BASE_KEY = "_base_"
DELETE_KEY = "_delete_"
SUPPORTED_SUFFIXES = (".py", ".yaml", ".yml", ".json", ".toml")

_SCALAR_TYPES = (str, int, float, bool, type(None))
_CODE_TYPES = (types.ModuleType, types.FunctionType, types.BuiltinFunctionType, type)
_MAX_LISTED_KEYS = 20


# --------------------------------------------------------------------------- errors


class ConfigFileError(ParamwiseError, ValueError):
    """A config file cannot be read, parsed or inherited from; names the file, the line and the fix."""

    def __init__(
        self,
        message: str,
        *,
        filename: str | os.PathLike[str],
        line: int | None = None,
        chain: Sequence[str] = (),
    ):
        self.message = message
        self.filename = os.fspath(filename)
        self.line = line
        self.chain = tuple(chain)
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.filename if self.line is None else f"{self.filename}, line {self.line}"
        text = f"{where}: {self.message}"
        if len(self.chain) > 1:
            text += f"\n  inheritance chain: {' -> '.join(self.chain)}"
        return text


class ConfigFileNotFoundError(ConfigFileError, FileNotFoundError):
    """A config file, or a ``_base_`` file it names, does not exist."""


class ConfigDependencyError(ParamwiseError, ImportError):
    """Reading or writing a format needs an optional package that is not installed."""


class ConfigKeyError(ParamwiseError, KeyError):
    """``cfg[key]`` names a key the config does not hold."""

    def __init__(self, message: str, *, key: str):
        super().__init__(message)
        self.message = message
        self.key = key

    def __str__(self) -> str:  # KeyError would quote the whole message otherwise
        return self.message


class ConfigAttributeError(ParamwiseError, AttributeError):
    """``cfg.name`` names neither a key nor an attribute of the config."""


def _missing_key_text(key: str, keys: Iterable[str]) -> str:
    """Describe a missing key: the did-you-mean and the keys that do exist at that level."""
    names = sorted(str(k) for k in keys)
    listed = ", ".join(names[:_MAX_LISTED_KEYS]) + (", ..." if len(names) > _MAX_LISTED_KEYS else "")
    return f"no key {key!r}.{did_you_mean(key, names)} Available keys here: {listed or '(none)'}."


# --------------------------------------------------------------------------- ConfigDict


class ConfigDict(dict[str, Any]):
    """A dict whose nested dicts are ConfigDicts too, so values read by attribute: ``cfg.optimizer.lr``.

    Keys must be strings. Keys that collide with dict methods (``items``, ``copy``, ...) still work
    with ``cfg['items']``.
    """

    def __init__(self, data: Mapping[str, Any] | None = None, /, **kwargs: Any) -> None:
        super().__init__()
        items = {**(data or {}), **kwargs}
        _raise_key_problems(items, title="invalid config")
        _fill(self, items)

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

    def __setitem__(self, key: str, value: Any) -> None:
        _raise_key_problems({key: value}, title="invalid config")
        dict.__setitem__(self, key, _wrap(value))

    def __dir__(self) -> list[str]:
        return [*super().__dir__(), *(k for k in self if k.isidentifier())]

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


def _fill(target: ConfigDict, items: Mapping[str, Any]) -> None:
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


def _key_problems(value: Any, path: tuple[str, ...] = ()) -> list[Problem]:
    """Every non-string key in a nested value, with where it is."""
    problems: list[Problem] = []
    if isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(key, str):
                problems += _key_problems(item, (*path, key))
            else:
                message = f"key {key!r} is a {type(key).__name__}; config keys must be strings (quote it)"
                problems.append(Problem(path, message))
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            problems += _key_problems(item, (*path, str(index)))
    return problems


def _raise_key_problems(value: Any, *, title: str) -> None:
    problems = _key_problems(value)
    if problems:
        raise ConfigError(problems, title=title)


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
        """Load a config file and everything it inherits through ``_base_``."""
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
        return _dumps_python(self.to_dict())

    def dump(self, path: str | os.PathLike[str]) -> None:
        """Write the config to ``path`` in the format its extension names."""
        path = Path(os.fspath(path))
        suffix = _suffix_of(path, chain=())
        data = self.to_dict()
        problems = _dump_problems(data, suffix)
        if problems:
            raise ConfigError(problems, title=f"cannot write config to {path}")
        path.write_text(_DUMPERS[suffix](data, path), encoding="utf-8")

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
    return type(value) in _SCALAR_TYPES


def parse_cfg_options(options: Iterable[str] | str) -> dict[str, Any]:
    """Parse ``--cfg-options`` items ``KEY=VALUE`` into ``{dotted_key: parsed value}``, in order."""
    items = [options] if isinstance(options, str) else list(options)
    parsed: dict[str, Any] = {}
    problems: list[Problem] = []
    for item in items:
        key, sep, raw = str(item).partition("=")
        if not sep:
            problems.append(Problem((str(item),), "expected KEY=VALUE, e.g. optimizer.lr=0.01"))
        elif not key.strip():
            problems.append(Problem((str(item),), "the key before '=' is empty; e.g. optimizer.lr=0.01"))
        else:
            parsed[key.strip()] = parse_value(raw)
    if problems:
        raise ConfigError(problems, title="invalid config override")
    return parsed


def _set_dotted(root: dict[str, Any], dotted: str, value: Any, allow_new_keys: bool) -> list[Problem]:
    """Set ``root[a][b][c] = value`` for ``'a.b.c'``; return what is wrong with the path instead, if anything."""
    keys = dotted.split(".")
    if not all(keys):
        return [Problem((dotted,), "empty key in the dotted path; write keys like 'optimizer.lr'")]
    key_problems = _key_problems(value, tuple(keys))
    if key_problems:
        return key_problems
    node: Any = root
    for depth, key in enumerate(keys):
        here, last = tuple(keys[: depth + 1]), depth == len(keys) - 1
        if isinstance(node, list):
            if not (key.isdigit() and int(key) < len(node)):
                return [Problem(here, f"not an index of this list of {len(node)} items")]
            if last:
                node[int(key)] = _wrap(value) if isinstance(root, ConfigDict) else value
                return []
            node = node[int(key)]
            continue
        if not isinstance(node, dict):
            return [Problem(here[:-1], f"is a {type(node).__name__}, not a section, so it has no key {key!r}")]
        if key not in node:
            if not allow_new_keys:
                return [Problem(here, _missing_key_text(key, node) + " Pass allow_new_keys=True to add it.")]
            if not last:
                node[key] = {}
        if last:
            node[key] = value
            return []
        node = node[key]
    return []


# --------------------------------------------------------------------------- loading


def _load_tree(path: Path, chain: tuple[Path, ...]) -> dict[str, Any]:
    """Load one file merged over everything it inherits: its bases in order, then the file itself on top."""
    chain = (*chain, path)
    names = _chain_names(chain)
    raw = _read_config_file(path, names)
    merged: dict[str, Any] = {}
    for base in _base_paths(raw.pop(BASE_KEY, None), path, names):
        if any(_same_file(base, seen) for seen in chain):
            cycle = _chain_names((*chain, base))
            message = "_base_ makes an inheritance cycle; remove one of the _base_ entries in the chain"
            raise ConfigFileError(message, filename=str(path), chain=cycle)
        if not base.is_file():
            message = (
                f"_base_ file {os.path.relpath(base, path.parent)!r} not found (looked for {base.resolve()});"
                " _base_ paths are relative to the file that lists them"
            )
            raise ConfigFileNotFoundError(message, filename=str(path), chain=_chain_names((*chain, base)))
        merged = _merge(merged, _load_tree(base, chain))
    return _merge(merged, raw)


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


def _base_paths(value: Any, path: Path, names: Sequence[str]) -> list[Path]:
    """The files a ``_base_`` value names, resolved against the folder of the file that names them."""
    if value is None:
        return []
    entries = [value] if isinstance(value, str) else value
    if not isinstance(entries, (list, tuple)) or not all(isinstance(e, str) for e in entries):
        message = f"_base_ must be a path or a list of paths, got {value!r}"
        raise ConfigFileError(message, filename=str(path), chain=names)
    return [Path(os.path.normpath(path.parent / os.path.expanduser(e))) for e in entries]


def _merge(base: dict[str, Any], child: Mapping[str, Any]) -> dict[str, Any]:
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


def _read_config_file(path: Path, chain: Sequence[str]) -> dict[str, Any]:
    """Parse one file (no inheritance) into a dict with string keys."""
    suffix = _suffix_of(path, chain)
    if not path.is_file():
        raise ConfigFileNotFoundError("config file not found", filename=str(path), chain=chain)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        message = f"not UTF-8 text (byte {exc.start}); save the file as UTF-8"
        raise ConfigFileError(message, filename=str(path), chain=chain) from exc
    except OSError as exc:
        raise ConfigFileError(f"cannot read: {exc.strerror}", filename=str(path), chain=chain) from exc
    try:
        data = _LOADERS[suffix](path, text)
    except ConfigFileError as exc:
        exc.chain = tuple(chain)
        raise
    if data is None:  # an empty YAML file
        data = {}
    if not isinstance(data, dict):
        message = f"the top level must be a mapping of names to values, got {type(data).__name__}"
        raise ConfigFileError(message, filename=str(path), chain=chain)
    _raise_key_problems(data, title=f"invalid config file {path}")
    return data


def _load_python(path: Path, text: str) -> dict[str, Any]:
    """Run a ``.py`` config and keep its top-level names (not ``_private``, modules, functions, classes)."""
    try:
        code = compile(text, str(path), "exec")
    except SyntaxError as exc:
        raise ConfigFileError(f"Python syntax error: {exc.msg}", filename=str(path), line=exc.lineno) from exc
    namespace: dict[str, Any] = {"__file__": str(path), "__name__": "__paramwise_config__"}
    try:
        exec(code, namespace)
    except Exception as exc:
        message = f"running this Python config raised {type(exc).__name__}: {exc}"
        raise ConfigFileError(message, filename=str(path), line=_line_in(exc, path)) from exc
    return {
        name: value
        for name, value in namespace.items()
        if (not name.startswith("_") or name == BASE_KEY) and not isinstance(value, _CODE_TYPES)
    }


def _line_in(exc: BaseException, path: Path) -> int | None:
    """The last line of ``path`` in the traceback of ``exc``: where the config itself failed."""
    lines = [frame.lineno for frame in traceback.extract_tb(exc.__traceback__) if frame.filename == str(path)]
    return lines[-1] if lines else None


def _import_yaml(path: Path) -> Any:
    try:
        import yaml
    except ImportError as exc:
        raise ConfigDependencyError(f"{path}: YAML configs need PyYAML: pip install paramwise[yaml]") from exc
    return yaml


def _load_yaml(path: Path, text: str) -> Any:
    """Parse YAML with ``safe_load`` only, so a config can never construct Python objects."""
    yaml = _import_yaml(path)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = None if mark is None else mark.line + 1
        raise ConfigFileError(_yaml_message(exc), filename=str(path), line=line) from exc


def _yaml_message(exc: Exception) -> str:
    """Explain a YAML error; python tags get their own message, as they are refused on purpose."""
    problem = str(getattr(exc, "problem", None) or exc)
    tags = re.findall(r"'(tag:[^']*|![^']*)'", problem)
    tag = tags[0].replace("tag:yaml.org,2002:", "!!") if tags else ""
    if "python/" in tag:
        return (
            f"python tags are not allowed ({tag}): YAML configs are read with yaml.safe_load and never"
            " create Python objects. Write the value as plain data, or use a .py config for code"
        )
    if tag:
        return f"unknown YAML tag {tag}; only standard YAML types (maps, lists, strings, numbers) are allowed"
    context = getattr(exc, "context", None)
    return f"invalid YAML: {problem}" + (f" ({context})" if context else "")


def _load_json(path: Path, text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        message = f"invalid JSON: {exc.msg} (column {exc.colno})"
        raise ConfigFileError(message, filename=str(path), line=exc.lineno) from exc


def _import_toml_reader(path: Path) -> Any:
    try:
        import tomllib  # Python >= 3.11
    except ImportError:
        try:
            import tomli as tomllib
        except ImportError as exc:
            message = f"{path}: TOML configs need Python 3.11+ or the tomli package: pip install tomli"
            raise ConfigDependencyError(message) from exc
    return tomllib


def _load_toml(path: Path, text: str) -> Any:
    tomllib = _import_toml_reader(path)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"line (\d+)", str(exc))
        line = getattr(exc, "lineno", None) or (int(found.group(1)) if found else None)
        raise ConfigFileError(f"invalid TOML: {exc}", filename=str(path), line=line) from exc


_LOADERS = {
    ".py": _load_python,
    ".yaml": _load_yaml,
    ".yml": _load_yaml,
    ".json": _load_json,
    ".toml": _load_toml,
}


# --------------------------------------------------------------------------- dumping


def _dump_problems(data: Mapping[str, Any], suffix: str) -> list[Problem]:
    """Everything in ``data`` that the format of ``suffix`` cannot write and read back."""
    problems = []
    if suffix == ".py":
        problems += [
            Problem(
                (key,),
                "top-level names starting with '_' are ignored when a .py config is read;"
                " rename the key or dump to .json/.yaml/.toml",
            )
            for key in data
            if key.startswith("_") and key != BASE_KEY
        ]
    for path, value in _leaves(data, ()):
        if type(value) not in _SCALAR_TYPES:
            problems.append(
                Problem(
                    path,
                    f"a {type(value).__name__} cannot be written to a {suffix} file;"
                    " config files hold dicts, lists, strings, numbers, booleans",
                )
            )
        elif value is None and suffix == ".toml":
            problems.append(Problem(path, "TOML has no None/null; remove the key, or dump to .py/.json/.yaml"))
    return problems


def _leaves(value: Any, path: tuple[str, ...]) -> Iterable[tuple[tuple[str, ...], Any]]:
    """Every non-container value in a nested config, with its path."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, (*path, key))
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _leaves(item, (*path, str(index)))
    else:
        yield path, value


def _as_lists(value: Any) -> Any:
    """Tuples become lists: JSON, YAML and TOML have only one sequence type."""
    if isinstance(value, dict):
        return {k: _as_lists(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_as_lists(v) for v in value]
    return value


def _dumps_json(data: dict[str, Any], path: Path) -> str:
    return json.dumps(_as_lists(data), indent=2, ensure_ascii=False) + "\n"


def _dumps_yaml(data: dict[str, Any], path: Path) -> str:
    yaml = _import_yaml(path)

    class Dumper(yaml.SafeDumper):
        """safe_dump's dumper, with strings that PyYAML would mangle written double-quoted."""

    Dumper.add_representer(str, _represent_yaml_str)
    return yaml.dump(_as_lists(data), Dumper=Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False)


def _represent_yaml_str(dumper: Any, text: str) -> Any:
    # With allow_unicode, PyYAML writes these line breaks raw in single-quoted or plain scalars and the
    # reader folds them into spaces; double quotes make the emitter escape them (\N, \L, \P).
    style = '"' if any(ch in text for ch in "\x85\u2028\u2029") else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


def _dumps_toml(data: dict[str, Any], path: Path) -> str:
    try:
        import tomli_w
    except ImportError:
        return _toml_document(_as_lists(data))
    return tomli_w.dumps(_as_lists(data))


_DUMPERS = {
    ".py": lambda data, path: _dumps_python(data),
    ".yaml": _dumps_yaml,
    ".yml": _dumps_yaml,
    ".json": _dumps_json,
    ".toml": _dumps_toml,
}


# Python source -------------------------------------------------------------

_LINE_LENGTH = 88
# Names the written source calls; a top-level key of that name would shadow them for later lines.
_WRITER_NAMES = frozenset({"dict", "float", "globals"})


def _dumps_python(data: dict[str, Any]) -> str:
    """Readable Python source, one ``name = value`` per top-level key, that ``fromfile`` reads back."""
    lines, late = [], {}
    for key, value in data.items():
        if _is_kwarg_name(key) and key not in _WRITER_NAMES:
            lines.append(f"{key} = {_py_value(value, 0, len(key) + 3)}")
        else:  # keywords and non-identifiers cannot be assigned to; set them through globals()
            late[key] = value
    if late:
        lines.append(f"globals().update({_py_value(late, 0, len('globals().update('))})")
    return "".join(line + "\n" for line in lines)


def _is_kwarg_name(key: str) -> bool:
    """True if ``key`` can be written bare (``key=...``): Python NFKC-normalises names, so 'º' reads as 'o'."""
    return key.isidentifier() and not keyword.iskeyword(key) and unicodedata.normalize("NFKC", key) == key


def _py_value(value: Any, indent: int, column: int) -> str:
    """A value's source starting at ``column``: on one line if it fits, else one item per line (black-ish)."""
    flat = _py_flat(value)
    if not isinstance(value, (dict, list, tuple)) or not value or column + len(flat) <= _LINE_LENGTH:
        return flat
    opening, closing, items = _py_parts(value)
    inner = indent + 4
    body = [" " * inner + prefix + _py_value(item, inner, inner + len(prefix)) + "," for prefix, item in items]
    return "\n".join([opening, *body, " " * indent + closing])


def _py_parts(value: dict[str, Any] | list[Any] | tuple[Any, ...]) -> tuple[str, str, list[tuple[str, Any]]]:
    """Opening, closing and (prefix, item) pairs of a container's source."""
    if isinstance(value, dict):
        if all(_is_kwarg_name(k) for k in value):
            return "dict(", ")", [(f"{k}=", v) for k, v in value.items()]
        return "{", "}", [(f"{k!r}: ", v) for k, v in value.items()]
    if isinstance(value, list):
        return "[", "]", [("", v) for v in value]
    return "(", ")", [("", v) for v in value]


def _py_flat(value: Any) -> str:
    """A value's source on one line."""
    if isinstance(value, (dict, list, tuple)):
        opening, closing, items = _py_parts(value)
        inner = ", ".join(prefix + _py_flat(item) for prefix, item in items)
        if isinstance(value, tuple) and len(value) == 1:
            inner += ","
        return opening + inner + closing
    if type(value) is float and not math.isfinite(value):
        return "float('nan')" if math.isnan(value) else ("-" if value < 0 else "") + "float('inf')"
    return repr(value)  # exact for str/int/float/bool/None; other objects only appear in pretty_text


# TOML ----------------------------------------------------------------------------

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_TOML_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def _toml_document(data: dict[str, Any]) -> str:
    """A small TOML writer, used when tomli_w is not installed: tables for dicts, inline inside lists."""
    lines: list[str] = []
    _toml_table(data, (), lines)
    return "".join(line + "\n" for line in lines)


def _toml_table(table: dict[str, Any], path: tuple[str, ...], lines: list[str]) -> None:
    # A header is only needed for a table with values of its own (or none at all): sub-table headers
    # such as [a.b] create their parents implicitly.
    if path and (not table or any(not isinstance(v, dict) for v in table.values())):
        if lines:
            lines.append("")
        lines.append("[" + ".".join(_toml_key(k) for k in path) + "]")
    # A table's own values must come before its sub-tables' headers, or they would land in the last one.
    lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in table.items() if not isinstance(v, dict)]
    for key, value in table.items():
        if isinstance(value, dict):
            _toml_table(value, (*path, key), lines)


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else _toml_string(key)


def _toml_string(text: str) -> str:
    chars = [_TOML_ESCAPES.get(ch) or (f"\\u{ord(ch):04X}" if ord(ch) < 0x20 or ord(ch) == 0x7F else ch) for ch in text]
    return '"' + "".join(chars) + '"'


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return repr(value)  # repr round-trips exactly; 'inf'/'-inf' and '1e+20' are valid TOML too
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write a {type(value).__name__} to TOML")  # _dump_problems rules this out
