"""The layers of ARCHITECTURE.md, enforced: imports point down, private names stay in their package.

Every ``import`` in ``src/paramwise`` (at module level, inside functions and under ``TYPE_CHECKING``)
is read from the syntax tree. A unit (a top-level module, or a package with everything in it) may
import itself and the units below it; anything else is an upward or sideways import and fails here,
except the documented exceptions in ``ALLOWED_UPWARD``. A name or module starting with ``_`` is
private to its unit.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "paramwise"
ARCHITECTURE = Path(__file__).resolve().parents[1] / "ARCHITECTURE.md"

#: units from the bottom up; a unit imports only units on earlier lines (several on one line don't
#: import each other). The same table is in ARCHITECTURE.md, and a test below keeps the two equal.
LAYERS: list[tuple[str, ...]] = [
    ("errors",),
    ("suggestions",),
    ("checks",),
    ("registry", "muon"),
    ("layers", "optimizers", "models"),
    ("walk", "_third_party"),
    ("config",),
    ("plan",),
    ("state",),
    ("build",),
    ("schedule",),
    ("wrapper",),
    ("render", "integrations"),
    ("demo",),
    ("cli",),
    ("__init__", "__main__"),
]
RANK = {unit: rank for rank, units in enumerate(LAYERS) for unit in units}

#: (importing module, imported module): upward imports that are part of the design, each with its reason
ALLOWED_UPWARD = {
    ("paramwise.plan.plan", "paramwise.render"): "a Plan shows itself (str, table, HTML) with a lazy import",
}


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(SRC.rglob("*.py")):
        if "configs" in path.relative_to(SRC).parts:  # the demo's config files are data, not modules
            continue
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        if parts[-1] == "__init__" and len(parts) > 2:
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(module: str, path: Path) -> list[tuple[str, str, int]]:
    """(imported module, imported name or '', line) for every paramwise import in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_package = path.name == "__init__.py"
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, "", node.lineno) for alias in node.names if alias.name.startswith("paramwise")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            if not target.startswith("paramwise"):
                continue
            for alias in node.names:
                submodule = f"{target}.{alias.name}"
                if submodule in _modules():
                    found.append((submodule, "", node.lineno))
                else:
                    found.append((target, alias.name, node.lineno))
    return found


def _edges() -> list[tuple[str, str, str, int]]:
    return [(module, target, name, line) for module, path in _modules().items()
            for target, name, line in _imports(module, path)]


def test_every_unit_has_a_layer() -> None:
    units = {_unit(m) for m in _modules()}
    assert units - set(RANK) == set(), "add the new unit to LAYERS here and to ARCHITECTURE.md"
    assert set(RANK) - units == set(), "LAYERS names a unit that no longer exists"


def test_imports_point_down_the_layers() -> None:
    wrong = []
    for module, target, _name, line in _edges():
        source, dest = _unit(module), _unit(target)
        if source == dest or RANK[dest] < RANK[source] or (module, target) in ALLOWED_UPWARD:
            continue
        way = "sideways" if RANK[dest] == RANK[source] else "up"
        wrong.append(f"{module}:{line} imports {target} ({way}: {source} -> {dest})")
    assert not wrong, "imports against the layers of ARCHITECTURE.md:\n" + "\n".join(wrong)


def test_private_names_stay_in_their_unit() -> None:
    wrong = []
    for module, target, name, line in _edges():
        if _unit(module) == _unit(target) or _unit(module) == "__init__":
            continue
        private_module = any(part.startswith("_") and not part.startswith("__") for part in target.split("."))
        if (name.startswith("_") and not name.startswith("__")) or (private_module and _unit(target) != "_third_party"):
            wrong.append(f"{module}:{line} imports {target}{'.' + name if name else ''}")
    assert not wrong, "private names used outside their package:\n" + "\n".join(wrong)


def test_allowed_upward_imports_are_still_needed() -> None:
    edges = {(m, t) for m, t, _n, _l in _edges()}
    assert set(ALLOWED_UPWARD) <= edges, "an exception in ALLOWED_UPWARD is no longer used: remove it"


def test_architecture_md_lists_the_same_layers() -> None:
    text = ARCHITECTURE.read_text(encoding="utf-8")
    table = re.findall(r"^\| *(\d+) *\| *([^|]+?) *\|", text, re.M)
    documented = [tuple(u.strip(" `") for u in units.split(",")) for _rank, units in table]
    assert documented == LAYERS, "ARCHITECTURE.md's layer table and LAYERS here differ"


@pytest.mark.parametrize("module", sorted(_modules()))
def test_every_module_says_what_it_owns(module: str) -> None:
    tree = ast.parse(_modules()[module].read_text(encoding="utf-8"))
    doc = ast.get_docstring(tree)
    assert doc and len(doc.split()) >= 5, f"{module} needs a docstring saying what it holds"


@pytest.mark.parametrize(
    ("module", "must_not_load"),
    [
        ("paramwise.state", ("paramwise.plan", "paramwise.build", "paramwise.config")),
        ("paramwise.schedule", ("paramwise.plan", "paramwise.build", "paramwise.state", "paramwise.config")),
        ("paramwise.config", ("torch", "paramwise.plan", "paramwise.build")),
        ("paramwise.checks", ("torch", "paramwise.registry")),
    ],
)
def test_a_package_loads_only_what_is_below_it(module: str, must_not_load: tuple[str, ...]) -> None:
    """Importing a lower package must not pull in the rule engine or the builder (state loading did once)."""
    import subprocess
    import sys

    code = (f"import sys, {module}\n"
            f"print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch' or m.startswith('paramwise.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    loaded = set(eval(out))
    wrong = sorted(m for m in loaded if any(m == bad or m.startswith(bad + ".") for bad in must_not_load))
    assert not wrong, f"import {module} loads {wrong}"
