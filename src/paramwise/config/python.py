"""Running a ``.py`` config the way mmengine does: ``_base_`` bound while it runs, ``read_base()``
imports of other configs, and every third-party import turned into a :class:`LazyObject`.

Only the standard library is really imported; ``from mmdet.models import RetinaNet`` binds a
reference, so a config loads without mmdet installed. ``from mmengine.config import read_base`` (or
``from mmengine import read_base``, as mmdet3d's configs write it) works whether or not mmengine is
installed, because the import is answered here. The code sees
``_base_`` and imported values as ConfigDicts: read by attribute, merged by ``update``, and edited
in place (``_base_.optim_wrapper.optimizer.lr = 0.002``, ``del _base_.model``), as in mmengine: the
edited ``_base_`` is what the file's own values merge over.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from paramwise.config.configdict import ConfigDict, _structure, _unwrap, config_copy
from paramwise.config.formats import key_text
from paramwise.config.lazy import LazyObject
from paramwise.config.refs import BaseRef, find_base_value, missing_ref_error, package_config_file
from paramwise.errors import ConfigFileError
from paramwise.suggestions import did_you_mean

__all__ = ["BASE_KEY", "ImportConfig", "PythonConfig", "run_python_config", "split_python_bases"]

BASE_KEY = "_base_"

#: Loads another config file for a ``read_base()`` import: (file, line) -> (its values merged with its own
#: bases, its other public names such as lazy imports, which ``import *`` brings along).
ImportConfig = Callable[[Path, "int | None"], tuple[dict[str, Any], Mapping[str, Any]]]

_CODE_TYPES = (types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.MethodType, type)
_STDLIB = frozenset(sys.stdlib_module_names) | frozenset(sys.builtin_module_names)
#: The modules that a config takes ``read_base`` from; mmengine exports it from both.
_READ_BASE_MODULES = frozenset({"mmengine", "mmengine.config"})
_REF_READER = "__paramwise_base_ref__"


@dataclass(frozen=True)
class PythonConfig:
    """What running a ``.py`` config gives: its values, its ``_base_`` as its code left it, its other names."""

    values: dict[str, Any]
    #: the merged ``_base_`` files after the code's edits (``_base_.x.lr = 0.1``, ``del _base_.y``); None: no ``_base_``
    bases: dict[Any, Any] | None
    #: public names that are not config values (lazy and standard-library imports, functions): what
    #: ``from this_config import *`` gives besides the values, as Python's own star import would
    exports: dict[str, Any]


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
        self.exported: dict[str, Any] = {}  # names bound from other configs' exports: not this file's values

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
        if name in _READ_BASE_MODULES and names:
            return self._mmengine_module(name, line)
        if name.partition(".")[0] in _STDLIB:
            return builtins.__import__(name, globals, locals, fromlist, level)
        if "*" in names:
            message = f"'from {name} import *' cannot be made lazy; import the names you use"
            raise ConfigFileError(message, filename=str(self.path), line=line)
        location = f"{self.path}, line {line}"
        return LazyObject(name if names else name.partition(".")[0], None, location)

    def _mmengine_module(self, name: str, line: int | None) -> types.ModuleType:
        """``mmengine`` or ``mmengine.config`` as a config imports from it: this file's ``read_base``, and
        a lazy reference for any other name (``from mmengine import Config, read_base``)."""
        module = types.ModuleType(name)
        module.read_base = self.read_base  # type: ignore[attr-defined]
        location = f"{self.path}, line {line}"
        module.__getattr__ = lambda attr: LazyObject(name, attr, location)  # type: ignore[method-assign]
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
            values, exports = self.import_config(target_file, line)
            self.exported.update({n: v for n, v in exports.items() if n in names or "*" in names})
            return _module_of(target_file, values, exports, names, self.path, line)
        # 'from .._base_ import models' with _base_/ a folder: each name is a config file in it
        module = types.ModuleType(str(target))
        for item in names:
            if item == "*":
                message = f"'import *' needs a config file, and {target} is a folder; name the files to import"
                raise ConfigFileError(message, filename=str(self.path), line=line)
            values, exports = self.import_config(target / f"{item}.py", line)
            setattr(module, item, _module_of(target / f"{item}.py", values, exports, (), self.path, line))
        return module


def _module_of(
    file: Path,
    values: Mapping[str, Any],
    exports: Mapping[str, Any],
    names: tuple[str, ...],
    asking: Path,
    line: int | None,
) -> types.ModuleType:
    """A module-like object holding a loaded config's public names, for ``from x import a``, ``import *``
    and ``x.a``: its values (copied, so edits stay in the importing file) and its other names, such as
    the classes it imported lazily (shared: they are immutable references, modules or functions)."""
    public = {k: config_copy(v) for k, v in values.items() if isinstance(k, str) and not k.startswith("_")}
    public.update({k: v for k, v in exports.items() if k not in public})
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
) -> PythonConfig:
    """Run a parsed config: its top-level names (not ``_private``, modules, functions, classes, or
    names imports bound) are its values. ``bases`` (the merged ``_base_`` files) is bound, as a copy,
    as ``_base_``; what the code does to it (assign at any depth, ``+=``, ``del``) is kept, as mmengine
    keeps it, and a ``{{_base_.x}}`` reads ``_base_`` where it stands, so it sees the edits before it."""
    imports = _Imports(path, import_config)
    namespace: dict[str, Any] = {
        "__file__": str(path),
        "__name__": "__paramwise_config__",
        "__builtins__": {**vars(builtins), "__import__": imports},
    }
    edited = None if bases is None else config_copy(copy.deepcopy(dict(bases)))
    if edited is not None:
        namespace[BASE_KEY] = edited  # kept by reference: a later 'del _base_' does not undo the edits

    def read_ref(token: str) -> Any:
        found, value = find_base_value(edited or {}, refs[token].dotted)
        if not found:
            raise missing_ref_error(refs[token], edited or {}, path)
        return config_copy(copy.deepcopy(value))

    if refs:
        namespace[_REF_READER] = read_ref
        tree = ast.fix_missing_locations(_ReadRefs(frozenset(refs)).visit(tree))
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
    except BaseException as exc:  # GeneratorExit and other non-Exception raises end here too
        raise _run_error(exc, path) from exc
    # what imports bind (here, or in a base for 'import *') is the file's tooling, not its config
    imported = _import_bound_names(tree)
    values: dict[str, Any] = {}
    exports: dict[str, Any] = {}
    for name, value in namespace.items():
        if name.startswith("_"):
            continue
        if isinstance(value, types.MethodType) and isinstance(value.__self__, _Imports):
            continue  # this file's own read_base(): an importer uses its own
        if isinstance(value, _CODE_TYPES) or name in imported or name in imports.exported:
            exports[name] = value
        else:
            values[name] = value
    return PythonConfig(values, None if edited is None else _edited_bases(edited, path), exports)


class _ReadRefs(ast.NodeTransformer):
    """Turn each ``{{_base_.x}}`` placeholder name the code reads into a call that reads ``_base_`` then."""

    def __init__(self, tokens: frozenset[str]) -> None:
        self.tokens = tokens

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if node.id not in self.tokens or not isinstance(node.ctx, ast.Load):
            return node
        call = ast.Call(ast.Name(_REF_READER, ast.Load()), [ast.Constant(node.id)], [])
        return ast.copy_location(call, node)


def _edited_bases(edited: ConfigDict, path: Path) -> dict[Any, Any]:
    """The ``_base_`` values as the file's code left them, as plain dicts (or why they cannot be used)."""
    problem = _structure(edited, (BASE_KEY,))
    if problem is not None:
        raise ConfigFileError(f"the code's edits of _base_ made it unusable: {problem}", filename=str(path))
    return dict(_unwrap(edited))


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
