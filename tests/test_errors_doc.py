"""docs/errors.md lists every exception class of paramwise's hierarchy, and only classes that exist.

Classes are found by walking every module of the package (not only ``paramwise.errors``), so a new
error class anywhere fails here until it is documented. Classes made at run time (the subclasses
``ConfigError`` and ``BuildTargetError`` derive per built-in type) are not module attributes and
are not counted.
"""

from __future__ import annotations

import builtins
import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import paramwise
from paramwise.errors import ParamwiseError, ParamwiseWarning

DOC = Path(__file__).resolve().parents[1] / "docs" / "errors.md"
_HEADING = re.compile(r"^#{2,4}\s+`?([A-Za-z_][A-Za-z0-9_]*)`?\s*$", re.M)
_ROW = re.compile(r"^\|\s*`([A-Za-z_][A-Za-z0-9_]*)`\s*\|", re.M)
_BUILTIN_EXCEPTIONS = {c for c in vars(builtins).values()
                       if isinstance(c, type) and issubclass(c, BaseException)} - {Exception, BaseException}


def _package_classes() -> dict[str, type]:
    """Every ParamwiseError subclass (and warning class) defined as a module attribute in the package."""
    found: dict[str, type] = {}
    for info in pkgutil.walk_packages(paramwise.__path__, prefix="paramwise."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if (inspect.isclass(obj) and issubclass(obj, (ParamwiseError, ParamwiseWarning))
                    and obj.__module__.startswith("paramwise") and obj.__name__ == name):
                found[name] = obj
    return found


def _sections(text: str) -> dict[str, str]:
    """Each ``### Name`` heading with the text under it."""
    parts = re.split(r"^###\s+", text, flags=re.M)[1:]
    return {part.split("\n", 1)[0].strip().strip("`"): part for part in parts}


def test_every_error_class_is_documented_and_every_documented_name_exists() -> None:
    text = DOC.read_text(encoding="utf-8")
    classes = _package_classes()
    assert {"ParamwiseError", "ConfigError", "InternalError", "ParamwiseWarning"} <= set(classes)
    headings = set(_HEADING.findall(text))
    rows = set(_ROW.findall(text))
    missing = sorted(set(classes) - headings - rows)
    assert not missing, f"docs/errors.md does not list {missing}: add a section with when, an example and the fix"
    listed = (set(_sections(text)) | rows) - {"The classes", "Warnings", "Fuzzing"}
    unknown = sorted(n for n in listed if n not in classes)
    assert not unknown, f"docs/errors.md lists {unknown}, which paramwise does not define"


def test_every_documented_class_has_an_example_and_a_fix() -> None:
    sections = _sections(DOC.read_text(encoding="utf-8"))
    for name, cls in _package_classes().items():
        body = sections.get(name)
        assert body is not None, f"{name} has no '### {name}' section"
        if "abstract base" in body and issubclass(cls, ParamwiseError):
            continue
        assert "```text" in body and "Fix:" in body, f"the section of {name} needs a real example message and a fix"


def test_every_error_class_is_also_a_builtin_exception() -> None:
    sections = _sections(DOC.read_text(encoding="utf-8"))
    for name, cls in _package_classes().items():
        if not issubclass(cls, ParamwiseError):
            continue
        builtins = [b.__name__ for b in cls.__mro__ if b in _BUILTIN_EXCEPTIONS]
        if builtins:
            continue
        assert "An abstract base" in sections.get(name, ""), (
            f"{name} derives from no built-in exception other than Exception: add the fitting one "
            "(ValueError, TypeError, KeyError, ...), or document it as an abstract base in docs/errors.md")


def test_the_fuzzing_section_documents_the_long_run_command() -> None:
    text = DOC.read_text(encoding="utf-8")
    last = text.rsplit("\n## ", 1)[-1]
    assert last.startswith("Fuzzing")
    assert "PARAMWISE_FUZZ_EXAMPLES=10000 bash scripts/test.sh -k hardening" in last
