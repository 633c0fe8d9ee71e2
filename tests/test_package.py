"""The package surface: lazy exports and a light import."""

from __future__ import annotations

import subprocess
import sys

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


@pytest.mark.parametrize("name", paramwise.__all__)
def test_every_exported_name_resolves(name: str) -> None:
    assert getattr(paramwise, name) is not None


def test_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'build_optimiser'. Did you mean 'build_optimizer'"):
        paramwise.build_optimiser  # noqa: B018
