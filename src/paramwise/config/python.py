"""Running a ``.py`` config the way mmengine does: ``_base_`` bound while it runs, ``read_base()``
imports of other configs, and every third-party import turned into a :class:`LazyObject`.

Only the standard library is really imported; ``from mmdet.models import RetinaNet`` binds a
reference, so a config loads without mmdet installed. ``from mmengine.config import read_base``
works whether or not mmengine is installed, because the import is answered here. The code sees
``_base_`` and imported values as ConfigDicts: read by attribute, merged by ``update``.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import copy
import sys
import traceback
import types
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from paramwise.config.configdict import config_copy
from paramwise.config.formats import key_text
from paramwise.config.lazy import LazyObject
from paramwise.config.refs import BaseRef, find_base_value, missing_ref_error, package_config_file
from paramwise.errors import ConfigFileError
from paramwise.suggestions import did_you_mean

__all__ = ["BASE_KEY", "ImportConfig", "run_python_config", "split_python_bases"]

BASE_KEY = "_base_"

#: Loads another config file (merged with its own bases) for a ``read_base()`` import: (file, line) -> data.
ImportConfig = Callable[[Path, "int | None"], dict[str, Any]]

_CODE_TYPES = (types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.MethodType, type)
_STDLIB = frozenset(sys.stdlib_module_names) | frozenset(sys.builtin_module_names)
_MMENGINE_CONFIG = "mmengine.config"


# --------------------------------------------------------------------------- _base_ in the code


def split_python_bases(path: Path, text: str) -> tuple[ast.Module, Any]:
    """Parse a ``.py`` config; take out its top-level ``_base_ = ...`` and return (code, that value).

    The value must be written literally (a string or a list of strings), as it is read before the
    file runs: the file's code needs the bases already merged.
    """
    try:
        tree = ast.parse(text, filename=str(path))
    except SyntaxError as exc:
        raise ConfigFileError(f"Python syntax error: {exc.msg}", filename=str(path), line=exc.lineno) from exc
    except (ValueError, RecursionError, MemoryError) as exc:  # NUL bytes in the source; absurd nesting
        message = f"cannot parse this Python config ({type(exc).__name__}: {exc})"
        raise ConfigFileError(message, filename=str(path)) from None
    value: Any = None
    body = []
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == BASE_KEY for t in node.targets):
            try:
                value = ast.literal_eval(node.value)
            except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError) as exc:
                message = (
                    "_base_ must be written as a literal string or list of strings (it is read before the"
                    " file runs), e.g. _base_ = ['../_base_/models/retinanet.py']"
                )
                raise ConfigFileError(message, filename=str(path), line=node.lineno) from exc
        else:
            body.append(node)
    tree.body = body
    return tree, value


# --------------------------------------------------------------------------- imports


class _Imports:
    """The ``__import__`` a config runs with: config files inside ``read_base()``, real imports for the
    standard library, LazyObjects for everything else."""

    def __init__(self, path: Path, import_config: ImportConfig) -> None:
        self.path = path
        self.import_config = import_config
        self.reading_base = False

    @contextlib.contextmanager
    def read_base(self) -> Iterator[None]:
        """Inside this block, ``from .x import *`` imports the config file ``x.py``."""
        self.reading_base = True
        try:
            yield
        finally:
            self.reading_base = False

    def __call__(
        self,
        name: str,
        globals: Mapping[str, Any] | None = None,
        locals: Mapping[str, Any] | None = None,
        fromlist: tuple[str, ...] | list[str] | None = (),
        level: int = 0,
    ) -> Any:
        line = _caller_line(self.path)
        names = tuple(fromlist or ())
        if self.reading_base:
            return self._config_module(name, names, level, line)
        if level:
            message = (
                "relative imports in a config import other configs and belong inside 'with read_base():'"
                " (from mmengine.config import read_base)"
            )
            raise ConfigFileError(message, filename=str(self.path), line=line)
        if name == _MMENGINE_CONFIG and names:
            return self._mmengine_config(line)
        if name.partition(".")[0] in _STDLIB:
            return builtins.__import__(name, globals, locals, fromlist, level)
        if "*" in names:
            message = f"'from {name} import *' cannot be made lazy; import the names you use"
            raise ConfigFileError(message, filename=str(self.path), line=line)
        location = f"{self.path}, line {line}"
        return LazyObject(name if names else name.partition(".")[0], None, location)

    def _mmengine_config(self, line: int | None) -> types.ModuleType:
        module = types.ModuleType(_MMENGINE_CONFIG)
        module.read_base = self.read_base  # type: ignore[attr-defined]
        location = f"{self.path}, line {line}"
        module.__getattr__ = lambda attr: LazyObject(_MMENGINE_CONFIG, attr, location)  # type: ignore[method-assign]
        return module

    def _config_module(self, name: str, names: tuple[str, ...], level: int, line: int | None) -> types.ModuleType:
        if not names:
            message = "only 'from ... import ...' of config files may appear inside 'with read_base():'"
            raise ConfigFileError(message, filename=str(self.path), line=line)
        if level:
            folder = self.path.parent
            for _ in range(level - 1):
                folder = folder.parent
            target = folder.joinpath(*name.split(".")) if name else folder
            target_file = target.with_name(target.name + ".py") if name else None
        else:
            target_file = package_config_file(name, self.path, line)
            target = target_file.with_suffix("")
        if target_file is not None and (target_file.is_file() or not target.is_dir()):
            values = self.import_config(target_file, line)
            return _module_of(target_file, values, names, self.path, line)
        # 'from .._base_ import models' with _base_/ a folder: each name is a config file in it
        module = types.ModuleType(str(target))
        for item in names:
            if item == "*":
                message = f"'import *' needs a config file, and {target} is a folder; name the files to import"
                raise ConfigFileError(message, filename=str(self.path), line=line)
            values = self.import_config(target / f"{item}.py", line)
            setattr(module, item, _module_of(target / f"{item}.py", values, (), self.path, line))
        return module


def _module_of(
    file: Path, values: Mapping[str, Any], names: tuple[str, ...], asking: Path, line: int | None
) -> types.ModuleType:
    """A module-like object holding a loaded config's values, for ``from x import a`` and ``x.a``."""
    public = {k: config_copy(v) for k, v in values.items() if isinstance(k, str) and not k.startswith("_")}
    missing = [n for n in names if n != "*" and n not in public]
    if missing:
        message = f"{file.name} defines no {missing[0]!r}.{did_you_mean(missing[0], sorted(public))}"
        raise ConfigFileError(message, filename=str(asking), line=line)
    module = types.ModuleType(str(file))
    module.__dict__.update(public)
    module.__all__ = list(public)  # type: ignore[attr-defined]
    return module


def _caller_line(path: Path) -> int | None:
    """The line of the config being run that is executing now (the import statement)."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename != str(path):
        frame = frame.f_back  # type: ignore[assignment]
    return None if frame is None else frame.f_lineno


def _import_bound_names(tree: ast.Module) -> set[str]:
    """Names bound by the file's top-level imports, outside ``read_base()``: not config keys."""
    bound = set()
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                bound.add(alias.asname or alias.name.partition(".")[0])
    return bound


# --------------------------------------------------------------------------- running


def run_python_config(
    path: Path,
    tree: ast.Module,
    *,
    bases: Mapping[str, Any] | None,
    refs: Mapping[str, BaseRef],
    import_config: ImportConfig,
) -> dict[str, Any]:
    """Run a parsed config and return its top-level names (not ``_private``, modules, functions,
    classes, or names its top-level imports bound). ``bases`` (the merged ``_base_`` files) is bound
    as ``_base_``."""
    imports = _Imports(path, import_config)
    namespace: dict[str, Any] = {
        "__file__": str(path),
        "__name__": "__paramwise_config__",
        "__builtins__": {**vars(builtins), "__import__": imports},
    }
    if bases is not None:
        namespace[BASE_KEY] = config_copy(copy.deepcopy(dict(bases)))
    for token, ref in refs.items():  # a {{_base_.x}} outside a string reads as this name
        found, value = find_base_value(bases or {}, ref.dotted)
        if found:
            namespace[token] = config_copy(copy.deepcopy(value))
    try:
        exec(compile(tree, str(path), "exec"), namespace)
    except ConfigFileError:
        raise
    except KeyboardInterrupt:  # the user's Ctrl-C must still stop the program
        raise
    except SystemExit as exc:
        code = key_text(exc.code) if isinstance(exc.code, int) else repr(exc.code)  # a 5000-digit int has no repr
        message = f"the config called exit() (code {code}) while loading; remove the call"
        raise ConfigFileError(message, filename=str(path), line=_line_in(exc, path)) from exc
    except NameError as exc:
        if exc.name is not None and exc.name in refs:
            raise missing_ref_error(refs[exc.name], bases or {}, path) from exc
        raise _run_error(exc, path) from exc
    except BaseException as exc:  # GeneratorExit and other non-Exception raises end here too
        raise _run_error(exc, path) from exc
    imported = _import_bound_names(tree)  # what imports bind is the file's tooling, not its config
    return {
        name: value
        for name, value in namespace.items()
        if not name.startswith("_") and not isinstance(value, _CODE_TYPES) and name not in imported
    }


def _run_error(exc: BaseException, path: Path) -> ConfigFileError:
    try:
        text = str(exc)
    except Exception:  # an exception whose own message cannot be formatted
        text = "(its message cannot be shown)"
    message = f"running this Python config raised {type(exc).__name__}: {text}"
    return ConfigFileError(message, filename=str(path), line=_line_in(exc, path))


def _line_in(exc: BaseException, path: Path) -> int | None:
    """The last line of ``path`` in the traceback of ``exc``: where the config itself failed."""
    lines = [frame.lineno for frame in traceback.extract_tb(exc.__traceback__) if frame.filename == str(path)]
    return lines[-1] if lines else None
