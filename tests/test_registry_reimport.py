"""A taken name accepts only the same definition again (its module imported a second time), as
mmengine would accept nothing: two classes of one name in one function are a KeyError in both."""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path
from types import ModuleType

import pytest
from mmengine.registry import Registry as MMRegistry

from paramwise.errors import DuplicateRegistrationError
from paramwise.registry import Registry


def test_two_classes_of_one_name_in_one_function_are_refused_as_mmengine_does() -> None:
    ours, theirs = Registry("cat"), MMRegistry("cat")
    for registry in (ours, theirs):
        @registry.register_module()
        class BritishShorthair:
            pass

    with pytest.raises(KeyError):
        @theirs.register_module()
        class BritishShorthair:
            pass

    with pytest.raises(DuplicateRegistrationError, match="'BritishShorthair' is already registered") as caught:
        @ours.register_module()
        class BritishShorthair:
            pass
    assert isinstance(caught.value, KeyError) and "test_registry_reimport.py:" in str(caught.value)
    assert ours.get("BritishShorthair").__qualname__.endswith("BritishShorthair")


def test_two_functions_of_one_name_and_a_direct_call_are_refused() -> None:
    ours = Registry("fn")

    def build() -> int:
        return 1

    first = build
    ours.register_module(module=first)

    def build() -> int:
        return 2

    with pytest.raises(DuplicateRegistrationError):
        ours.register_module(module=build)
    assert ours.get("build") is first
    ours.register_module(module=build, force=True)  # force still replaces
    assert ours.get("build") is build


PLUGIN = '''
import plugin_registry

@plugin_registry.REG.register_module()
class Widget:
    pass

@plugin_registry.REG.register_module()
def make_widget():
    return Widget()

plugin_registry.REG.register_module(name="widget_alias", module=Widget)
'''


def load(path: Path) -> ModuleType:
    """Import ``path`` as the module ``plugin`` afresh: what a second import of the same module does."""
    spec = importlib.util.spec_from_file_location("plugin", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def plugin_registry(monkeypatch: pytest.MonkeyPatch) -> Registry:
    holder = types.ModuleType("plugin_registry")
    holder.REG = Registry("plugin")  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "plugin_registry", holder)
    return holder.REG  # type: ignore[attr-defined,no-any-return]


def test_a_module_imported_twice_registers_again_without_error(tmp_path: Path, plugin_registry: Registry) -> None:
    path = tmp_path / "plugin.py"
    path.write_text(PLUGIN)
    first, second = load(path), load(path)
    assert first.Widget is not second.Widget
    assert plugin_registry.get("Widget") is second.Widget and plugin_registry.get("widget_alias") is second.Widget
    assert plugin_registry.get("make_widget") is second.make_widget


def test_the_same_name_from_another_line_of_the_same_file_is_refused(tmp_path: Path,
                                                                    plugin_registry: Registry) -> None:
    path = tmp_path / "plugin.py"
    path.write_text(PLUGIN)
    load(path)
    path.write_text("\n\n" + PLUGIN)  # the same names, defined two lines lower: another definition
    with pytest.raises(DuplicateRegistrationError, match="'Widget' is already registered"):
        load(path)
