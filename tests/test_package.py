"""The package surface: lazy exports and a light import."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import paramwise


def test_import_and_registry_do_not_load_torch_or_rich() -> None:
    code = (
        "import sys, paramwise\n"
        "paramwise.Registry('x').register_module(module=len)\n"
        "print(sorted(m for m in ('torch', 'rich', 'yaml') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def type_checking_block() -> ast.If:
    """The ``if TYPE_CHECKING:`` block of paramwise/__init__.py: the one list of public names."""
    tree = ast.parse(Path(paramwise.__file__).read_text(encoding="utf-8"))
    blocks = [node for node in tree.body if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"]
    assert len(blocks) == 1
    return blocks[0]


def exported_modules() -> dict[str, str]:
    """Public name -> the module the block imports it from, read here independently of ``_exports``."""
    found: dict[str, str] = {}
    for node in type_checking_block().body:
        assert isinstance(node, ast.ImportFrom) and node.module and node.level == 0, ast.unparse(node)
        for alias in node.names:
            assert alias.asname == alias.name, f"{alias.name}: 'import x as x' marks a re-export for type checkers"
            assert alias.name not in found, f"{alias.name} is imported twice"
            found[alias.name] = node.module
    return found


def test_the_run_time_names_are_the_type_checking_imports() -> None:
    names = sorted([*exported_modules(), "__version__"])
    assert paramwise.__all__ == names
    assert dir(paramwise) == names


def test_every_exported_name_is_the_object_its_module_defines() -> None:
    for name, module in exported_modules().items():
        assert getattr(paramwise, name) is getattr(importlib.import_module(module), name), name


def test_star_import_gives_exactly_all() -> None:
    namespace: dict[str, object] = {}
    exec("from paramwise import *", namespace)
    assert sorted(set(namespace) - {"__builtins__"}) == paramwise.__all__


def test_type_checkers_see_the_block_and_not_the_lazy_getattr() -> None:
    """A typo is then a type error, not Any: ``__getattr__`` is defined only under ``if not TYPE_CHECKING:``."""
    tree = ast.parse(Path(paramwise.__file__).read_text(encoding="utf-8"))
    seen_by_checkers = [node for node in tree.body
                        if not (isinstance(node, ast.If) and ast.unparse(node.test) == "not TYPE_CHECKING")]
    defined = {node.name for node in ast.walk(ast.Module(body=seen_by_checkers, type_ignores=[]))
               if isinstance(node, ast.FunctionDef)}
    assert not defined & {"__getattr__", "__dir__"}
    assert "__getattr__" in vars(paramwise)  # and it is there at run time
    assert Path(paramwise.__file__).with_name("py.typed").exists()


def test_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'build_optimiser'. Did you mean 'build_optimizer'"):
        paramwise.build_optimiser  # noqa: B018
