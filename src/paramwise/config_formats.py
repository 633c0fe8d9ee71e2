"""The file formats of configs: one reader and one writer per format, nothing about inheritance.

Readers turn text into plain data (only ``.py`` runs code; YAML uses the safe loader); writers
produce text that the matching reader reads back to equal data.
"""

from __future__ import annotations

import json
import keyword
import math
import re
import traceback
import types
import unicodedata
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .errors import ConfigDependencyError, ConfigFileError, Problem

__all__ = ["BASE_KEY", "DUMPERS", "LOADERS", "SCALAR_TYPES", "SUPPORTED_SUFFIXES", "dump_problems", "dumps_python"]

BASE_KEY = "_base_"
SUPPORTED_SUFFIXES = (".py", ".yaml", ".yml", ".json", ".toml")

SCALAR_TYPES = (str, int, float, bool, type(None))
_CODE_TYPES = (types.ModuleType, types.FunctionType, types.BuiltinFunctionType, type)


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


LOADERS = {
    ".py": _load_python,
    ".yaml": _load_yaml,
    ".yml": _load_yaml,
    ".json": _load_json,
    ".toml": _load_toml,
}


# --------------------------------------------------------------------------- dumping


def dump_problems(data: Mapping[str, Any], suffix: str) -> list[Problem]:
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
        if type(value) not in SCALAR_TYPES:
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

    class Dumper(yaml.SafeDumper):  # type: ignore[name-defined]
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


def dumps_python(data: dict[str, Any]) -> str:
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
    raise TypeError(f"cannot write a {type(value).__name__} to TOML")  # dump_problems rules this out
