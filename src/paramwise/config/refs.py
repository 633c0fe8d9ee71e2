"""What a config file refers to outside itself: ``{{ fileBasename }}``, ``{{_base_.x}}``, ``pkg::path`` bases.

These are mmengine's text-level features. They work on the file's text before it is parsed, so
they need no knowledge of the format beyond where its strings are.
"""

from __future__ import annotations

import copy
import importlib.util
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from paramwise.errors import ConfigFileError, ConfigFileNotFoundError

__all__ = [
    "BaseRef",
    "SCOPE_KEY",
    "add_scope",
    "find_base_value",
    "mark_base_refs",
    "package_config_file",
    "resolve_base_refs",
    "scoped_base_path",
    "split_scope",
    "substitute_predefined",
]

SCOPE_KEY = "_scope_"

# pip names of OpenMMLab packages whose import name differs; used only in the install hint
_PIP_NAMES = {"mmseg": "mmsegmentation", "mmaction": "mmaction2", "mmcls": "mmcls"}

_PREDEFINED = re.compile(r"\{\{\s*(fileDirname|fileBasename|fileBasenameNoExtension|fileExtname)\s*\}\}")
_BASE_REF = re.compile(r"\{\{\s*_base_\.([\w.]+)\s*\}\}")
_TOKEN = re.compile(r"__paramwise_base_ref_(\d+)__")


# --------------------------------------------------------------------------- predefined variables


def substitute_predefined(text: str, path: Path) -> str:
    """Replace ``{{ fileDirname }}`` and its kin with parts of ``path``, as text (backslashes become '/')."""
    absolute = os.path.abspath(path)
    stem, extension = os.path.splitext(os.path.basename(absolute))
    values = {
        "fileDirname": os.path.dirname(absolute),
        "fileBasename": os.path.basename(absolute),
        "fileBasenameNoExtension": stem,
        "fileExtname": extension,
    }
    return _PREDEFINED.sub(lambda match: values[match.group(1)].replace("\\", "/"), text)


# --------------------------------------------------------------------------- {{_base_.x}}


@dataclass(frozen=True)
class BaseRef:
    """One ``{{_base_.name}}`` in a file: the placeholder that stands for it and where it was written."""

    token: str
    dotted: str
    line: int


def mark_base_refs(text: str, suffix: str) -> tuple[str, dict[str, BaseRef]]:
    """Replace each ``{{_base_.x}}`` by a placeholder the format parses as a string (or, in .py, a name).

    Returns the new text and the placeholders. JSON and TOML need quotes around a placeholder that
    is not already inside a string; YAML reads it bare as a string; Python reads it as a name, which
    the runner binds to the base value.
    """
    matches = list(_BASE_REF.finditer(text))
    if not matches:
        return text, {}
    in_string = _inside_strings(text, [m.start() for m in matches], suffix)
    refs: dict[str, BaseRef] = {}
    pieces, last = [], 0
    for index, match in enumerate(matches):
        token = f"__paramwise_base_ref_{index}__"
        refs[token] = BaseRef(token, match.group(1), text.count("\n", 0, match.start()) + 1)
        quoted = suffix in (".json", ".toml") and not in_string[index]
        pieces += [text[last : match.start()], f'"{token}"' if quoted else token]
        last = match.end()
    pieces.append(text[last:])
    return "".join(pieces), refs


def _inside_strings(text: str, positions: list[int], suffix: str) -> list[bool]:
    """For each position, whether it lies inside a JSON/TOML string literal (other formats: unused)."""
    if suffix not in (".json", ".toml"):
        return [False] * len(positions)
    quotes = {'"': True, "'": False} if suffix == ".toml" else {'"': True}  # value: backslash escapes apply
    inside, results, wanted = "", [], sorted(positions)
    index, at = 0, 0
    while at < len(text) and index < len(wanted):
        if at == wanted[index]:
            results.append(bool(inside))
            index += 1
            continue
        char = text[at]
        if inside:
            if char == "\\" and quotes[inside]:
                at += 1
            elif char == inside:
                inside = ""
        elif char in quotes:
            inside = char
        elif char == "#" and suffix == ".toml":  # a comment runs to the end of the line
            end = text.find("\n", at)
            at = len(text) if end < 0 else end
            continue
        at += 1
    order = {position: i for i, position in enumerate(wanted)}
    return [results[order[p]] if order[p] < len(results) else False for p in positions]


def find_base_value(bases: Any, dotted: str) -> tuple[bool, Any]:
    """Look ``'model.backbone.depth'`` up in the merged bases; a number indexes a list. (found, value)."""
    node: Any = bases
    for key in dotted.split("."):
        if isinstance(node, Mapping) and key in node:
            node = node[key]
        elif isinstance(node, (list, tuple)) and key.isdigit() and int(key) < len(node):
            node = node[int(key)]
        else:
            return False, None
    return True, node


def missing_ref_error(ref: BaseRef, bases: Mapping[Any, Any], path: Path) -> ConfigFileError:
    """The error for a ``{{_base_.x}}`` that names nothing in the merged bases."""
    if not bases:
        message = (
            f"{{{{_base_.{ref.dotted}}}}} refers to the _base_ files, but this file has no _base_;"
            " add a _base_ list or write the value itself"
        )
        return ConfigFileError(message, filename=str(path), line=ref.line)
    node: Any = bases
    walked = []
    for key in ref.dotted.split("."):
        found, value = find_base_value(node, key)
        if not found:
            break
        walked.append(key)
        node = value
    where = "the merged _base_" + (f" value {'.'.join(walked)}" if walked else "")
    have = ", ".join(sorted(str(k) for k in node)) if isinstance(node, Mapping) else type(node).__name__
    message = f"{{{{_base_.{ref.dotted}}}}}: {where} has no {key!r} (it has: {have or '(nothing)'})"
    return ConfigFileError(message, filename=str(path), line=ref.line)


def resolve_base_refs(value: Any, refs: Mapping[str, BaseRef], bases: Mapping[Any, Any], path: Path) -> Any:
    """A copy of ``value`` with placeholders replaced: a whole-string one by the base value itself
    (any type, copied), one inside a longer string by the value's text."""
    if not refs:
        return value
    if isinstance(value, str):
        return _resolve_in_string(value, refs, bases, path)
    if isinstance(value, Mapping):
        return {
            resolve_base_refs(k, refs, bases, path): resolve_base_refs(v, refs, bases, path) for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return type(value)(resolve_base_refs(v, refs, bases, path) for v in value)
    return value


def _resolve_in_string(text: str, refs: Mapping[str, BaseRef], bases: Mapping[Any, Any], path: Path) -> Any:
    if "__paramwise_base_ref_" not in text:
        return text
    if text in refs:
        found, value = find_base_value(bases, refs[text].dotted)
        if not found:
            raise missing_ref_error(refs[text], bases, path)
        return copy.deepcopy(value)

    def text_of(match: re.Match[str]) -> str:
        ref = refs.get(match.group(0))
        if ref is None:
            return match.group(0)
        found, value = find_base_value(bases, ref.dotted)
        if not found:
            raise missing_ref_error(ref, bases, path)
        if isinstance(value, (Mapping, list, tuple)):
            message = (
                f"{{{{_base_.{ref.dotted}}}}} is a {type(value).__name__} but sits inside a longer string;"
                " only numbers, strings and booleans can be joined into text. Use it as the whole value"
            )
            raise ConfigFileError(message, filename=str(path), line=ref.line)
        return str(value)

    return _TOKEN.sub(text_of, text)


# --------------------------------------------------------------------------- scoped bases


def split_scope(entry: str) -> tuple[str | None, str]:
    """``'mmpretrain::_base_/x.py'`` -> ``('mmpretrain', '_base_/x.py')``; a plain path has no scope."""
    if "::" not in entry:
        return None, entry
    scope, _, rest = entry.partition("::")
    return scope, rest


def _package_dirs(package: str) -> list[Path] | None:
    """The folders of an installed top-level package, found without importing it (None: not installed)."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.submodule_search_locations:
        return [Path(p) for p in spec.submodule_search_locations]
    return [Path(spec.origin).parent] if spec.origin else None


def _not_installed(package: str, entry: str, asking: Path, chain: tuple[str, ...]) -> ConfigFileNotFoundError:
    message = (
        f"{entry!r} is a config of the package {package!r}, which is not installed:"
        f" pip install {_PIP_NAMES.get(package, package)}"
    )
    return ConfigFileNotFoundError(message, filename=str(asking), chain=chain)


def scoped_base_path(entry: str, asking: Path, chain: tuple[str, ...]) -> Path:
    """Where ``'pkg::sub/path.py'`` lives: the package's ``.mim/configs`` (a pip install, as mmengine
    looks), else ``configs`` inside or beside the package folder (an editable source checkout)."""
    package, relative = split_scope(entry)
    assert package is not None
    if not package.isidentifier():
        message = f"_base_ {entry!r}: the part before '::' must be a package name, e.g. 'mmdet::_base_/x.py'"
        raise ConfigFileError(message, filename=str(asking), chain=chain)
    folders = _package_dirs(package)
    if folders is None:
        raise _not_installed(package, entry, asking, chain)
    candidates = [
        Path(os.path.normpath(root / relative))
        for folder in folders
        for root in (folder / ".mim" / "configs", folder / "configs", folder.parent / "configs")
    ]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    looked = ", ".join(str(c) for c in candidates)
    message = f"_base_ {entry!r} not found in the installed package {package!r} (looked in {looked})"
    raise ConfigFileNotFoundError(message, filename=str(asking), chain=chain)


def package_config_file(module: str, asking: Path, line: int | None) -> Path:
    """The file ``from mmdet.configs.x import *`` names inside ``read_base()``: ``<mmdet folder>/configs/x.py``."""
    parts = module.split(".")
    if len(parts) < 2:
        message = (
            f"read_base() imports config files, not a package: write e.g."
            f" 'from {module}.configs.some_config import *' or a relative 'from .some_config import *'"
        )
        raise ConfigFileError(message, filename=str(asking), line=line)
    folders = _package_dirs(parts[0])
    if folders is None:
        message = (
            f"read_base() imports {module!r} from the package {parts[0]!r}, which is not installed:"
            f" pip install {_PIP_NAMES.get(parts[0], parts[0])}"
        )
        raise ConfigFileNotFoundError(message, filename=str(asking), line=line)
    candidates = [folder.joinpath(*parts[1:]).with_suffix(".py") for folder in folders]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    message = f"read_base() import {module!r}: no config file {candidates[0]}"
    raise ConfigFileNotFoundError(message, filename=str(asking), line=line)


def add_scope(value: Any, scope: str) -> Any:
    """A copy where each outermost dict with a ``type`` gets ``_scope_: scope`` unless it has one, as
    mmengine marks what a ``pkg::`` base defines, so registries build it from that package."""
    if isinstance(value, Mapping):
        if "type" in value:
            if value.get(SCOPE_KEY) is None:
                return {**value, SCOPE_KEY: scope}
            return dict(value)
        return {k: add_scope(v, scope) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(add_scope(v, scope) for v in value)
    return value
