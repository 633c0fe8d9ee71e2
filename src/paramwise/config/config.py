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

from paramwise.config.configdict import (
    DELETE_KEY,
    ConfigDict,
    _data_repr,
    _missing_key_text,
    _structure,
    _without_delete_keys,
    _wrap,
)
from paramwise.config.formats import (
    BASE_KEY,
    DUMPERS,
    LOADERS,
    MAX_DEPTH,
    MAX_INHERITANCE,
    MAX_VALUES,
    SCALAR_TYPES,
    SUPPORTED_SUFFIXES,
    dump_problems,
    dumps_python,
    key_text,
)
from paramwise.config.lazy import LazyObject
from paramwise.config.python import run_python_config, split_python_bases
from paramwise.config.refs import (
    add_scope,
    mark_base_refs,
    resolve_base_refs,
    scoped_base_path,
    split_scope,
    substitute_predefined,
)
from paramwise.errors import (
    ConfigAttributeError,
    ConfigDependencyError,
    ConfigError,
    ConfigFileError,
    ConfigFileNotFoundError,
    ConfigFileWriteError,
    ConfigKeyError,
    Problem,
    UsageTypeError,
)

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
    "MAX_DEPTH",
    "MAX_INHERITANCE",
    "MAX_VALUES",
    "LazyObject",
    "parse_cfg_options",
    "parse_value",
    "split_key_path",
]

#: Keys with a meaning in config files (inheritance), which an override can never set.
RESERVED_KEYS = (BASE_KEY, DELETE_KEY)


# --------------------------------------------------------------------------- Config


class Config(ConfigDict):
    """A whole config: a ConfigDict that remembers its file, takes overrides and dumps to any format."""

    def __init__(
        self, cfg_dict: Mapping[str, Any] | None = None, *, filename: str | os.PathLike[str] | None = None
    ) -> None:
        if cfg_dict is not None and not isinstance(cfg_dict, Mapping):
            problem = Problem((), f"Config() takes a dict, got {type(cfg_dict).__name__}", kind="type")
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
        path = _path_argument(path, "Config.fromfile()")
        try:
            data = _Loader().tree(path, ())
        except RecursionError:  # a backstop: the limits below should make this unreachable
            message = (
                f"the config nests or inherits too deeply to load (limits: {MAX_DEPTH} levels,"
                f" {MAX_INHERITANCE} files); flatten it"
            )
            raise ConfigFileError(message, filename=str(path)) from None
        return cls(data, filename=path)

    def merge_from_dict(self, options: Mapping[str, Any], *, allow_new_keys: bool | None = None) -> None:
        """Set dotted keys (``'optimizer.lr'``) to values; all bad paths are reported and nothing changes.

        Missing keys are created, as mmengine's ``merge_from_dict`` and ``--cfg-options`` create them,
        below a top-level key the config has; a new top-level key is an error (a misspelt section
        would go unused). ``allow_new_keys=True`` creates new keys anywhere, ``False`` none. The
        values are copied in, so changing the config later does not change ``options``.
        """
        where = f" to {self.filename}" if self.filename else ""
        title = f"cannot apply config overrides{where}"
        if not isinstance(options, Mapping):
            message = f"overrides are a dict of {{'dotted.key': value}}, got {type(options).__name__}"
            raise ConfigError([Problem((), message, kind="type")], title=title)
        problems = [p for key in options for p in _override_key_problems(key)]
        if problems:
            raise ConfigError(problems, title=title)
        staged = self.to_dict()
        problems = [p for key, value in options.items() for p in _set_dotted(staged, key, value, allow_new_keys)]
        if not problems:  # the paths are fine: is the result safe to walk, and free of reserved keys?
            problem = _structure(staged)
            problems = [problem] if problem else [p for k, v in options.items() for p in _reserved_in_value(k, v)]
        if problems:
            raise ConfigError(problems, title=title)
        for key, value in options.items():  # validated on the copy: applying in place cannot fail now
            _set_dotted(self, key, value, allow_new_keys)

    def merge_from_dotlist(self, items: Iterable[str], *, allow_new_keys: bool | None = None) -> None:
        """Apply ``['optimizer.lr=0.01', ...]`` overrides, values parsed as literals (see parse_value)."""
        self.merge_from_dict(parse_cfg_options(items), allow_new_keys=allow_new_keys)

    @property
    def pretty_text(self) -> str:
        """The config as Python source, the same text ``dump('x.py')`` writes."""
        return dumps_python(self.to_dict())

    def dump(self, path: str | os.PathLike[str]) -> None:
        """Write the config to ``path`` in the format its extension names."""
        path = _path_argument(path, "Config.dump()")
        suffix = _suffix_of(path, chain=())
        data = self.to_dict()
        problems = dump_problems(data, suffix)
        if problems:
            raise ConfigError(problems, title=f"cannot write config to {path}")
        text = DUMPERS[suffix](data, path)
        try:
            path.write_text(text, encoding="utf-8")
        except FileNotFoundError as exc:
            message = f"cannot write: the folder {str(path.parent)!r} does not exist"
            raise ConfigFileNotFoundError(message, filename=str(path)) from exc
        except OSError as exc:
            raise ConfigFileWriteError(f"cannot write: {exc.strerror or exc}", filename=str(path)) from exc

    def copy(self) -> Config:
        """A shallow copy that keeps the filename."""
        return type(self)(self, filename=self.filename)

    def __repr__(self) -> str:
        return f"Config({_data_repr(self)}, filename={self.filename!r})"


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
    if isinstance(options, str):
        items: list[Any] = [options]
    else:
        try:
            items = list(options)
        except TypeError:
            message = f"overrides are a list of 'KEY=VALUE' strings, got {type(options).__name__}"
            raise ConfigError([Problem((), message, kind="type")], title="invalid config override") from None
    parsed: dict[str, Any] = {}
    problems: list[Problem] = []
    for index, item in enumerate(items):
        if not isinstance(item, str):
            message = f"{_shown(item)} is a {type(item).__name__}, not a 'KEY=VALUE' string such as 'optimizer.lr=0.01'"
            problems.append(Problem((f"item {index}",), message, kind="type"))
            continue
        text = item
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
            value = parse_value(raw)
            found = _override_key_problems(key.strip()) or _reserved_in_value(key.strip(), value)
            if found:
                problems += found
                continue
            parsed[key.strip()] = value
    if problems:
        raise ConfigError(problems, title="invalid config override")
    return parsed


def _shown(value: Any) -> str:
    """A short repr for messages, that never fails."""
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__}>"
    return text if len(text) <= 60 else text[:57] + "..."


def _override_key_problems(key: Any) -> list[Problem]:
    """What is wrong with an override's key itself: not a string, or naming a reserved key."""
    if not isinstance(key, str):
        message = f"override keys are dotted strings such as 'optimizer.lr', got a {type(key).__name__}"
        return [Problem((_shown(key),), message, kind="type")]
    try:
        segments = split_key_path(key)
    except ValueError:
        return []  # reported, with its reason, when the path is followed
    return [
        Problem(
            (key,),
            f"{name!r} is reserved for inheritance in config files; an override cannot set it."
            + (" To replace a dict, set it whole: 'optimizer={...}'" if name == DELETE_KEY else ""),
        )
        for name, _ in segments
        if name in RESERVED_KEYS
    ][:1]


def _reserved_in_value(key: Any, value: Any) -> list[Problem]:
    """Reserved keys inside an override's value (which must already be safe to walk)."""
    found: list[Problem] = []
    stack: list[tuple[Any, tuple[str, ...]]] = [(value, (key_text(key),))]
    while stack and not found:
        item, path = stack.pop()
        if isinstance(item, Mapping):
            for name, child in item.items():
                if name in RESERVED_KEYS:
                    message = f"{name!r} is reserved for inheritance in config files; an override value cannot hold it"
                    found.append(Problem((*path, name), message))
                stack.append((child, (*path, key_text(name))))
        elif isinstance(item, (list, tuple)):
            stack += [(child, (*path, str(index))) for index, child in enumerate(item)]
    return found


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


def _is_number(text: str) -> bool:
    """ASCII digits only: ``'¹'.isdigit()`` is true, but ``int('¹')`` fails."""
    return text.isascii() and text.isdigit() and len(text) <= 4000  # int() refuses longer ones


def _set_dotted(root: dict[Any, Any], dotted: str, value: Any, allow_new_keys: bool | None) -> list[Problem]:
    """Set ``root[a][b][c] = value`` for ``'a.b.c'``; return what is wrong with the path instead, if anything.

    ``allow_new_keys``: True creates missing keys anywhere, None below an existing top-level key, False nowhere.
    """
    try:
        segments = split_key_path(dotted)
    except ValueError as exc:
        return [Problem((dotted,), str(exc))]
    keys = [key for key, _ in segments]
    dotted_custom_key = _unquoted_custom_key(segments)
    if dotted_custom_key:
        return [dotted_custom_key]
    node: Any = root
    for depth, (key, quoted) in enumerate(segments):
        here, last = tuple(keys[: depth + 1]), depth == len(keys) - 1
        if isinstance(node, list):
            if quoted or not (_is_number(key) and int(key) < len(node)):
                return [Problem(here, f"not an index of this list of {len(node)} items")]
            if last:
                node[int(key)] = _wrap(value) if isinstance(root, ConfigDict) else value
                return []
            node = node[int(key)]
            continue
        if not isinstance(node, dict):
            return [Problem(here[:-1], f"is a {type(node).__name__}, not a section, so it has no key {key!r}")]
        target: Any = key
        if key not in node and not quoted and _is_number(key.removeprefix("-")) and int(key) in node:
            target = int(key)  # a .py config's {0: 19}: 'labels_map.0' reaches the int key
        if target not in node:
            if depth == 0 and allow_new_keys is None:
                message = "the config has no top-level " + _missing_key_text(key, node).removeprefix("no ")
                return [Problem(here, message + " Add a new section with allow_new_keys=True.")]
            if allow_new_keys is False:
                return [Problem(here, _missing_key_text(key, node) + " Pass allow_new_keys=True to add it.")]
            if not last:
                node[target] = {}
        if last:
            node[target] = value
            return []
        node = node[target]
    return []


_CUSTOM_KEYS_PATH = ("paramwise_cfg", "custom_keys")


def _unquoted_custom_key(segments: Sequence[tuple[str, bool]]) -> Problem | None:
    """``paramwise_cfg.custom_keys.backbone.stages.lr_mult``: a parameter name split at its dots.

    A custom key holds options (``lr_mult=0.1``), never a section, so three or more segments after
    ``custom_keys`` always mean a key with dots that was not quoted; say which quoting works.
    """
    keys = [key for key, _ in segments]
    for at in range(len(segments) - 1):
        if tuple(keys[at : at + 2]) != _CUSTOM_KEYS_PATH or any(quoted for _, quoted in segments[at : at + 2]):
            continue
        rest = segments[at + 2 :]
        if len(rest) < 3:
            return None
        name = ".".join(key for key, _ in rest[:-1])
        quote = "'" if '"' in name else '"'
        head = ".".join(_quoted_segment(key, quoted) for key, quoted in segments[: at + 2])
        fixed = f"{head}.{quote}{name}{quote}.{_quoted_segment(*rest[-1])}"
        message = (
            f"the custom key {rest[0][0]!r} cannot hold {rest[1][0]!r}: a custom key sets options such as lr_mult."
            f" For the custom key {name!r} (a name with dots), quote it: {fixed}=..."
            " (in a shell, put the whole item in single quotes)"
        )
        return Problem(tuple(keys), message)
    return None


def _quoted_segment(key: str, quoted: bool) -> str:
    """A key as it is written in a dotted path: quoted when it was, or when it holds a dot."""
    if not quoted and "." not in key:
        return key
    quote = "'" if '"' in key else '"'
    return f"{quote}{key}{quote}"


# --------------------------------------------------------------------------- loading


def _path_argument(path: Any, what: str) -> Path:
    """A path argument as a Path, or an error naming what is wrong with it (never os/pathlib's own)."""
    text = os.fspath(path) if isinstance(path, os.PathLike) else path
    if not isinstance(text, str):
        raise UsageTypeError(f"{what} takes a path (a str or os.PathLike), got a {type(path).__name__}: {_shown(path)}")
    if "\0" in text:
        shown = text.replace("\0", "\\0")
        raise ConfigFileError("the path contains a NUL byte (\\0), which no file name can hold", filename=shown)
    return Path(text)


class _Loader:
    """One ``fromfile``: loads each file once, however many files inherit it, and checks the chain.

    Results are cached by resolved path for this load only (a later ``fromfile`` reads the files
    again, so edits are seen). Cached results are shared between the files that inherit them, so
    nothing below may change a loaded dict in place: merging and wrapping always build new ones.
    """

    def __init__(self) -> None:
        self.loaded: dict[str, dict[Any, Any]] = {}
        self.active: list[str] = []  # resolved paths of the chain being loaded, for cycle detection
        self.exports: dict[str, dict[str, Any]] = {}  # a .py file's other public names, for 'import *'

    def tree(self, path: Path, chain: tuple[Path, ...]) -> dict[Any, Any]:
        """Load one file merged over everything it inherits: its bases in order, then the file itself on top."""
        chain = (*chain, path)
        names = _chain_names(chain)
        if len(chain) > MAX_INHERITANCE:
            shown = (*names[:3], "...", *names[-2:])
            message = (
                f"the inheritance is more than {MAX_INHERITANCE} files deep (the chain from {names[0]} reached"
                f" {len(chain)} files); flatten it, or check for a chain of _base_ files that never ends"
            )
            raise ConfigFileError(message, filename=str(chain[0]), chain=shown)
        key = _file_key(path)
        if key in self.loaded:
            return self.loaded[key]
        self.active.append(key)
        try:
            result, self.exports[key] = self._load(path, chain, names)
        finally:
            self.active.pop()
        self.loaded[key] = result
        return result

    def _load(
        self, path: Path, chain: tuple[Path, ...], names: tuple[str, ...]
    ) -> tuple[dict[Any, Any], dict[str, Any]]:
        """One file merged over its bases, and (a ``.py`` file) its public names that are not values."""
        exports: dict[str, Any] = {}
        suffix = _suffix_of(path, names)
        text = substitute_predefined(_read_text(path, names), path)
        text, refs = mark_base_refs(text, suffix)
        try:
            if suffix == ".py":
                code, base_value = split_python_bases(path, text)
            else:
                raw = _parse_data(path, text, suffix)
                _check_file_structure(raw, path)
                base_value = raw.pop(BASE_KEY, None)
            merged: dict[Any, Any] = {}
            for entry, base in _base_paths(base_value, path, names):
                loaded = self.base(base, chain, what=f"_base_ file {entry!r}", line=None)
                scope, _ = split_scope(entry)
                merged = _merge(merged, add_scope(loaded, scope) if scope else loaded)
            _check_file_structure(merged, path)
            if suffix == ".py":

                def import_config(file: Path, line: int | None) -> tuple[dict[Any, Any], dict[str, Any]]:
                    values = self.base(file, chain, what=f"read_base() import {file.name!r}", line=line)
                    return values, self.exports.get(_file_key(file), {})

                bases = merged if base_value is not None else None
                ran = run_python_config(path, code, bases=bases, refs=refs, import_config=import_config)
                raw, exports = ran.values, ran.exports
                merged = merged if ran.bases is None else ran.bases  # _base_ as the code edited it
                _check_file_structure(raw, path)
            raw = resolve_base_refs(raw, refs, merged, path)
            result = _merge(merged, raw)
            _check_file_structure(result, path)  # {{_base_.x}} can put deep values deeper
        except ConfigFileError as exc:
            if not exc.chain:
                exc.chain = names
            raise
        return result, exports

    def base(self, base: Path, chain: tuple[Path, ...], *, what: str, line: int | None) -> dict[Any, Any]:
        """Load a file that ``chain[-1]`` inherits or imports, after checking for a cycle and that it exists."""
        asking = chain[-1]
        if _file_key(base) in self.active:
            message = f"{what} makes an inheritance cycle; remove one of the _base_ entries or imports in the chain"
            raise ConfigFileError(message, filename=str(asking), line=line, chain=_chain_names((*chain, base)))
        if not base.is_file():
            message = (
                f"{what} not found (looked for {os.path.abspath(base)}){_why_not_a_file(base)};"
                " _base_ paths and relative imports are relative to the file that names them"
            )
            raise ConfigFileNotFoundError(message, filename=str(asking), line=line, chain=_chain_names((*chain, base)))
        return self.tree(base, chain)


def _check_file_structure(data: Any, path: Path) -> None:
    problem = _structure(data)
    if problem is not None:
        raise ConfigFileError(str(problem), filename=str(path))


def _file_key(path: Path) -> str:
    """The file a path names, symlinks followed (loops are left as they are: the read reports them)."""
    return os.path.normcase(os.path.realpath(path))


def _why_not_a_file(path: Path) -> str:
    """Why an existing-looking path is not a readable file: a folder, or a symlink that leads nowhere."""
    if os.path.islink(path):
        return ": it is a symlink whose target is missing, or a symlink loop"
    if os.path.isdir(path):
        return ": it is a folder"
    return ""


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


def _base_paths(value: Any, path: Path, names: tuple[str, ...]) -> list[tuple[str, Path]]:
    """The files a ``_base_`` value names: relative to the folder of the file that names them, or
    ``'pkg::path'`` inside an installed package."""
    if value is None:
        return []
    entries = [value] if isinstance(value, str) else value
    if not isinstance(entries, (list, tuple)):
        message = f"_base_ must be a path or a list of paths, got a {type(value).__name__}: {_shown(value)}"
        raise ConfigFileError(message, filename=str(path), chain=names)
    for index, entry in enumerate(entries):
        problem = None
        if not isinstance(entry, str):
            problem = f"is a {type(entry).__name__} ({_shown(entry)}), not a path"
        elif "\0" in entry:
            problem = f"{_shown(entry)} contains a NUL byte (\\0), which no file name can hold"
        elif not entry.strip():
            problem = "is empty; write a path such as '../_base_/default_runtime.py'"
        if problem:
            raise ConfigFileError(f"_base_ entry {index} {problem}", filename=str(path), chain=names)
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
        raise ConfigFileNotFoundError(f"config file not found{_why_not_a_file(path)}", filename=str(path), chain=chain)
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        message = f"not UTF-8 text (byte {exc.start}); save the file as UTF-8"
        raise ConfigFileError(message, filename=str(path), chain=chain) from exc
    except OSError as exc:
        raise ConfigFileError(f"cannot read: {exc.strerror}", filename=str(path), chain=chain) from exc


def _parse_data(path: Path, text: str, suffix: str) -> dict[Any, Any]:
    """Parse a YAML/JSON/TOML file (no inheritance) into a dict."""
    data = LOADERS[suffix](path, text)  # an empty YAML file (no document at all) reads as {}
    if not isinstance(data, dict):
        got = "null" if data is None else type(data).__name__
        message = f"the top level must be a mapping of names to values, got {got}"
        raise ConfigFileError(message, filename=str(path))
    return data
