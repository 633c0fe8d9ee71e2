"""The file formats of configs: one reader and one writer per format, nothing about inheritance.

Readers turn text into plain data (only ``.py`` runs code; YAML uses the safe loader); writers
produce text that the matching reader reads back to equal data.
"""

from __future__ import annotations

import json
import keyword
import math
import re
import sys
import unicodedata
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from paramwise.config.lazy import LazyObject
from paramwise.errors import ConfigDependencyError, ConfigFileError, Problem

__all__ = [
    "BASE_KEY",
    "DUMPERS",
    "LOADERS",
    "MAX_DEPTH",
    "MAX_INHERITANCE",
    "MAX_VALUES",
    "SCALAR_TYPES",
    "SUPPORTED_SUFFIXES",
    "dump_problems",
    "dumps_python",
    "key_text",
    "structure_problem",
]

BASE_KEY = "_base_"
SUPPORTED_SUFFIXES = (".py", ".yaml", ".yml", ".json", ".toml")

SCALAR_TYPES = (str, int, float, bool, type(None))
_STDLIB = frozenset(sys.stdlib_module_names) | frozenset(sys.builtin_module_names)

# Limits that keep hostile or broken configs from exhausting the stack, memory or time. Real configs
# stay far below them: mmdet's deepest configs nest about 8 levels and inherit about 5 files deep.
#: Levels of dicts/lists/tuples, the top-level mapping being level 1.
MAX_DEPTH = 100
#: Values (containers and scalars) in one config, counted at every place they appear: a YAML alias or
#: a list shared by reference counts once per use, which bounds "billion laughs" alias expansion.
MAX_VALUES = 1_000_000
#: Files in one inheritance chain (``_base_`` entries and ``read_base()`` imports, the file itself included).
MAX_INHERITANCE = 64


# --------------------------------------------------------------------------- structure


def key_text(key: Any) -> str:
    """A key as text for messages and key paths; never fails (an int too long for ``str`` is described)."""
    try:
        return key if isinstance(key, str) else str(key)
    except ValueError:  # int with more digits than sys.get_int_max_str_digits()
        return f"<{type(key).__name__} of {key.bit_length()} bits>" if isinstance(key, int) else type(key).__name__


class _Leave:
    """Marks, on the walk's stack, the point where a container's children are all done."""


_LEAVE = _Leave()


def structure_problem(value: Any, *, max_depth: int, max_values: int, path: tuple[str, ...] = ()) -> Problem | None:
    """The first self-reference, too deep nesting or too large expansion in ``value``, at its key path.

    Every other traversal of a config (merging, wrapping, dumping, ``{{_base_}}`` substitution) is
    recursive and expands shared references, so they are safe only on values this accepts. The walk
    itself uses its own stack and stops after ``max_values`` values. Shared (not circular) references
    are fine; they just count once per place they appear.
    """
    seen = 0
    active: set[int] = set()  # ids of the containers on the path from the top to the current value
    stack: list[tuple[Any, int, Any]] = [(value, 0, None)]  # (value, depth, trail: (key, parent trail))
    while stack:
        item, depth, trail = stack.pop()
        if item is _LEAVE:
            active.discard(depth)  # for a leave marker the slot holds the container's id
            continue
        seen += 1
        if seen > max_values:
            message = (
                f"the config holds more than {max_values:,} values (YAML aliases and repeated references"
                " count each time they appear); this looks like an alias bomb. Write the values out or split the config"
            )
            return Problem(_trail_path(trail, path), message)
        if not isinstance(item, (Mapping, list, tuple)):
            continue
        if id(item) in active:
            message = (
                "the value contains itself (a YAML anchor used inside its own value, or a list or dict added"
                " to itself), so it has no end; use a copy instead of the same object"
            )
            return Problem(_trail_path(trail, path), message)
        if depth >= max_depth:
            message = f"the config is nested more than {max_depth} levels deep here; flatten it"
            return Problem(_trail_path(trail, path), message)
        active.add(id(item))
        stack.append((_LEAVE, id(item), None))
        if isinstance(item, Mapping):
            for key, child in reversed(list(item.items())):
                stack.append((child, depth + 1, (key, trail)))
                if isinstance(key, tuple):  # tuple keys (.py configs) nest too
                    stack.append((key, depth + 1, ("<key>", trail)))
        else:
            for index in range(len(item) - 1, -1, -1):
                stack.append((item[index], depth + 1, (index, trail)))
    return None


def _trail_path(trail: Any, prefix: tuple[str, ...]) -> tuple[str, ...]:
    keys = []
    while trail is not None:
        key, trail = trail
        keys.append(key_text(key))
    return (*prefix, *reversed(keys))


def _import_yaml(path: Path) -> Any:
    try:
        import yaml
    except ImportError as exc:
        raise ConfigDependencyError(f"{path}: YAML configs need PyYAML: pip install paramwise[yaml]") from exc
    return yaml


# YAML 1.2 floats that YAML 1.1 (PyYAML) reads as strings: an exponent without a dot, e.g. 1e-3, -2E4
_YAML12_FLOAT = re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$")


class _DuplicateKey(Exception):
    def __init__(self, key: Any, line: int, first: int) -> None:
        super().__init__(key)
        self.key, self.line, self.first = key, line, first


def _yaml_loader(yaml: Any) -> Any:
    """``yaml.SafeLoader`` plus two checks: a repeated key is an error, and ``1e-3`` reads as a float."""

    class Loader(yaml.SafeLoader):  # type: ignore[name-defined,misc]
        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":  # '<<' merges may be overridden on purpose
                    continue
                key = self.construct_object(key_node, deep=deep)
                try:
                    first = seen.setdefault(key, key_node.start_mark.line + 1)
                except TypeError:  # unhashable: the base class reports it
                    continue
                if first != key_node.start_mark.line + 1:
                    raise _DuplicateKey(key, key_node.start_mark.line + 1, first)
            return super().construct_mapping(node, deep=deep)

        def compose_node(self, parent: Any, index: Any) -> Any:
            # PyYAML composes recursively: refuse deep nesting before it exhausts the stack. The exact
            # limit (and self-references, and alias expansion) is checked on the loaded data.
            depth = getattr(self, "_paramwise_depth", 0)
            if depth > MAX_DEPTH + 1:
                raise _TooDeep(self.peek_event().start_mark.line + 1)
            self._paramwise_depth = depth + 1
            try:
                return super().compose_node(parent, index)
            finally:
                self._paramwise_depth = depth

    Loader.add_implicit_resolver("tag:yaml.org,2002:float", _YAML12_FLOAT, list("-+0123456789"))
    return Loader


class _TooDeep(Exception):
    def __init__(self, line: int) -> None:
        super().__init__(line)
        self.line = line


def _load_yaml(path: Path, text: str) -> Any:
    """Parse YAML with a safe loader only, so a config can never construct Python objects.

    A file without a document (empty, only comments) is an empty mapping; an explicit ``null`` is None.
    """
    yaml = _import_yaml(path)
    loader = None
    try:
        loader = _yaml_loader(yaml)(text)  # a SafeLoader subclass: no Python objects
        node = loader.get_single_node()
        if node is None or (node.tag == "tag:yaml.org,2002:null" and node.value == ""):  # no content at all
            return {}
        return loader.construct_document(node)
    except _TooDeep as exc:
        message = f"the config is nested more than {MAX_DEPTH} levels deep; flatten it"
        raise ConfigFileError(message, filename=str(path), line=exc.line) from None
    except _DuplicateKey as exc:
        message = (
            f"duplicate key {exc.key!r} (first at line {exc.first}); YAML would keep only the last one."
            " Remove or rename one of them"
        )
        raise ConfigFileError(message, filename=str(path), line=exc.line) from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = None if mark is None else mark.line + 1
        raise ConfigFileError(_yaml_message(exc), filename=str(path), line=line) from exc
    except ValueError as exc:  # int('9' * 5000): more digits than Python converts
        raise ConfigFileError(_value_message(exc), filename=str(path)) from exc
    finally:
        if loader is not None:
            loader.dispose()


def _value_message(exc: BaseException) -> str:
    """Explain a ValueError or RecursionError that a parser let through."""
    if isinstance(exc, RecursionError):
        return f"the config is nested too deeply to parse (the limit is {MAX_DEPTH} levels); flatten it"
    if "digits" in str(exc):
        return (
            f"a number has more than {sys.get_int_max_str_digits()} digits, more than Python reads;"
            " write it as a string or a float"
        )
    return f"cannot read a value: {exc}"


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
    except (ValueError, RecursionError) as exc:  # a huge number; nesting deeper than the stack
        raise ConfigFileError(_value_message(exc), filename=str(path)) from None


def _import_toml_reader(path: Path) -> Any:
    try:
        import tomllib  # Python >= 3.11
    except ImportError:
        try:
            import tomli as tomllib  # type: ignore[no-redef]
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
    except (ValueError, RecursionError) as exc:  # a huge number; nesting deeper than the stack
        raise ConfigFileError(_value_message(exc), filename=str(path)) from None


#: Readers of the data formats; ``.py`` configs are run by :mod:`paramwise.config.python`.
LOADERS = {
    ".yaml": _load_yaml,
    ".yml": _load_yaml,
    ".json": _load_json,
    ".toml": _load_toml,
}


# --------------------------------------------------------------------------- dumping


_YAML_KEY_TYPES = (str, int, float, bool, type(None))


def dump_problems(data: Mapping[Any, Any], suffix: str) -> list[Problem]:
    """Everything in ``data`` that the format of ``suffix`` cannot write and read back."""
    problems = []
    if suffix == ".py":
        for key in data:
            if not isinstance(key, str):
                problems.append(Problem((key_text(key),), "the top-level keys of a .py config are names; use a string"))
            elif key.startswith("_") and key != BASE_KEY:
                problems.append(
                    Problem(
                        (key,),
                        "top-level names starting with '_' are ignored when a .py config is read;"
                        " rename the key or dump to .json/.yaml/.toml",
                    )
                )
    for path, key in _keys(data, ()):
        problem = _key_problem(key, suffix)
        if problem:
            problems.append(Problem(path, problem))
    for path, value in _leaves(data, ()):
        if isinstance(value, LazyObject):
            if suffix != ".py":
                message = (
                    f"a lazy import ({value.import_path}) cannot be written to a {suffix} file;"
                    " dump to .py, or name the type with a registered string"
                )
                problems.append(Problem(path, message))
            elif value.module.partition(".")[0] in _STDLIB:
                message = (
                    f"a lazy import of the standard library ({value.import_path}) would be imported for real"
                    " when the .py file is read back"
                )
                problems.append(Problem(path, message))
        elif type(value) is int and suffix != ".py" and _too_many_digits(value):
            message = (
                f"an int of {value.bit_length()} bits has more than {sys.get_int_max_str_digits()} digits, which"
                f" a {suffix} file cannot hold; dump to .py (written in hex) or store it as a string"
            )
            problems.append(Problem(path, message))
        elif type(value) not in SCALAR_TYPES:
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


def _too_many_digits(value: int) -> bool:
    try:
        str(value)
    except ValueError:
        return True
    return False


def _key_problem(key: Any, suffix: str) -> str | None:
    """Why a (non-string) key cannot be written to ``suffix`` and read back equal, or None."""
    if isinstance(key, str):
        return None
    kind = type(key).__name__
    if type(key) is int and suffix != ".py" and _too_many_digits(key):
        return f"key {key_text(key)} has too many digits for a {suffix} file; use a string key or dump to .py"
    if suffix == ".py":
        return None if _python_literal_key(key) else f"key {key!r} is a {kind}, which a .py file cannot write"
    if suffix in (".yaml", ".yml"):
        if type(key) in _YAML_KEY_TYPES:
            return None
        return f"key {key!r} is a {kind}; YAML keys here are strings, numbers, booleans or null. Dump to .py"
    return (
        f"key {key!r} is a {kind}; {suffix[1:].upper()} keys are strings, so it would come back as"
        f" {str(key)!r}. Dump to .py{' or .yaml' if type(key) in _YAML_KEY_TYPES else ''}"
    )


def _python_literal_key(key: Any) -> bool:
    if isinstance(key, tuple):
        return all(_python_literal_key(k) for k in key)
    return type(key) in SCALAR_TYPES


def _keys(value: Any, path: tuple[str, ...]) -> Iterable[tuple[tuple[str, ...], Any]]:
    """Every key in a nested config, with the path of the dict that holds it."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield path, key
            yield from _keys(item, (*path, key_text(key)))
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _keys(item, (*path, str(index)))


def _leaves(value: Any, path: tuple[str, ...]) -> Iterable[tuple[tuple[str, ...], Any]]:
    """Every non-container value in a nested config, with its path."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, (*path, key_text(key)))
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

    class Dumper(yaml.SafeDumper):  # type: ignore[name-defined]
        """safe_dump's dumper, with strings that PyYAML would mangle written double-quoted."""

    Dumper.add_representer(str, _represent_yaml_str)
    # the reader takes 1e-3 as a float, so the writer must quote the string '1e-3'
    Dumper.add_implicit_resolver("tag:yaml.org,2002:float", _YAML12_FLOAT, list("-+0123456789"))
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


DUMPERS = {
    ".py": lambda data, path: dumps_python(data),
    ".yaml": _dumps_yaml,
    ".yml": _dumps_yaml,
    ".json": _dumps_json,
    ".toml": _dumps_toml,
}


# Python source -------------------------------------------------------------

_LINE_LENGTH = 88
# Names the written source calls; a top-level key of that name would shadow them for later lines.
_WRITER_NAMES = frozenset({"dict", "float", "globals"})


def dumps_python(data: Mapping[str, Any]) -> str:
    """Readable Python source, one ``name = value`` per top-level key, that ``fromfile`` reads back.

    Lazy imports are written as import lines at the top and used by name, so they read back as the
    same LazyObjects.
    """
    imports, names = _lazy_imports(data)
    lines = list(imports)
    late = {}
    for key, value in data.items():
        if _is_kwarg_name(key) and key not in _WRITER_NAMES:
            lines.append(f"{key} = {_py_value(value, 0, len(key) + 3, names)}")
        else:  # keywords and non-identifiers cannot be assigned to; set them through globals()
            late[key] = value
    if late:
        lines.append(f"globals().update({_py_value(late, 0, len('globals().update('), names)})")
    return "".join(line + "\n" for line in lines)


def _lazy_imports(data: Mapping[str, Any]) -> tuple[list[str], dict[LazyObject, str]]:
    """Import lines for the LazyObjects in ``data``, and the expression that names each of them."""
    taken = {k for k in data if isinstance(k, str)} | _WRITER_NAMES
    bindings: dict[tuple[str, str | None], str] = {}  # (module, first attribute) -> bound name
    imports: list[str] = []
    names: dict[LazyObject, str] = {}
    for _, value in _leaves(dict(data), ()):
        if not isinstance(value, LazyObject) or value in names:
            continue
        first, _, rest = (value.name or "").partition(".")
        binding = (value.module, first or None)
        if binding not in bindings:
            wanted = first or value.module.rpartition(".")[2]
            alias = wanted if wanted not in taken else f"_lazy_{len(bindings)}_{wanted}"
            taken.add(alias)
            bindings[binding] = alias
            renamed = "" if alias == wanted else f" as {alias}"
            if first:
                imports.append(f"from {value.module} import {first}{renamed}")
            elif "." in value.module or renamed:
                imports.append(f"import {value.module} as {alias}")
            else:
                imports.append(f"import {value.module}")
        names[value] = bindings[binding] + (f".{rest}" if rest else "")
    return imports, names


def _is_kwarg_name(key: Any) -> bool:
    """True if ``key`` can be written bare (``key=...``): Python NFKC-normalises names, so 'º' reads as 'o'."""
    return (
        isinstance(key, str)
        and key.isidentifier()
        and not keyword.iskeyword(key)
        and unicodedata.normalize("NFKC", key) == key
    )


def _py_value(value: Any, indent: int, column: int, names: Mapping[LazyObject, str]) -> str:
    """A value's source starting at ``column``: on one line if it fits, else one item per line (black-ish)."""
    flat = _py_flat(value, names)
    if not isinstance(value, (dict, list, tuple)) or not value or column + len(flat) <= _LINE_LENGTH:
        return flat
    opening, closing, items = _py_parts(value, names)
    inner = indent + 4
    body = [" " * inner + prefix + _py_value(item, inner, inner + len(prefix), names) + "," for prefix, item in items]
    return "\n".join([opening, *body, " " * indent + closing])


def _py_parts(
    value: dict[Any, Any] | list[Any] | tuple[Any, ...], names: Mapping[LazyObject, str]
) -> tuple[str, str, list[tuple[str, Any]]]:
    """Opening, closing and (prefix, item) pairs of a container's source."""
    if isinstance(value, dict):
        if all(_is_kwarg_name(k) for k in value):
            return "dict(", ")", [(f"{k}=", v) for k, v in value.items()]
        return "{", "}", [(f"{_py_flat(k, names)}: ", v) for k, v in value.items()]
    if isinstance(value, list):
        return "[", "]", [("", v) for v in value]
    return "(", ")", [("", v) for v in value]


def _py_flat(value: Any, names: Mapping[LazyObject, str]) -> str:
    """A value's source on one line."""
    if isinstance(value, (dict, list, tuple)):
        opening, closing, items = _py_parts(value, names)
        inner = ", ".join(prefix + _py_flat(item, names) for prefix, item in items)
        if isinstance(value, tuple) and len(value) == 1:
            inner += ","
        return opening + inner + closing
    if isinstance(value, LazyObject) and value in names:
        return names[value]
    if type(value) is float and not math.isfinite(value):
        return "float('nan')" if math.isnan(value) else ("-" if value < 0 else "") + "float('inf')"
    if type(value) is int and _too_many_digits(value):  # hex has no digit limit and reads back equal
        return hex(value)
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
    raise TypeError(f"cannot write a {type(value).__name__} to TOML")  # dump_problems rules this out
