"""The package surface: lazy exports and a light import."""

from __future__ import annotations

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


@pytest.mark.parametrize("name", paramwise.__all__)
def test_every_exported_name_resolves(name: str) -> None:
    assert getattr(paramwise, name) is not None


def test_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'build_optimiser'. Did you mean 'build_optimizer'"):
        paramwise.build_optimiser  # noqa: B018


def test_type_checkers_see_every_export_and_reject_a_misspelt_one(tmp_path) -> None:
    """The lazy ``__getattr__`` is hidden from type checkers: a typo is a mypy error, not Any."""
    import shutil
    import subprocess
    import sys

    import paramwise

    mypy = shutil.which("mypy") or str(Path(sys.executable).with_name("mypy"))
    if not Path(mypy).exists():
        pytest.skip("mypy is not installed")
    snippet = tmp_path / "use.py"
    snippet.write_text("import paramwise\n" + "".join(f"paramwise.{n}\n" for n in paramwise.__all__)
                       + "paramwise.build_optimzer\n")
    result = subprocess.run([mypy, "--no-incremental", str(snippet)], capture_output=True, text=True, cwd=tmp_path)
    errors = [line for line in result.stdout.splitlines() if ": error:" in line]
    assert len(errors) == 1 and 'has no attribute "build_optimzer"' in errors[0], result.stdout
    assert Path(paramwise.__file__).with_name("py.typed").exists()
