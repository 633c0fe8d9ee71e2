"""``paramwise list``: what a registry holds, with the module and first docstring line of each entry.

Owns: the ``list`` subcommand's arguments and handler, and which registry each of its choices reads.
(Named ``listing``, not ``list``: a submodule ``list`` would shadow the built-in inside ``paramwise.cli``.)

May import: ``paramwise.cli.common`` and anything in paramwise; the registries load inside ``run``,
so choosing one imports only its module.
"""

from __future__ import annotations

import argparse
import importlib
from typing import TYPE_CHECKING, Any

from paramwise.cli.common import EXIT_OK, add_command, add_format_arg, print_json, print_rich, rich_console, rich_table

if TYPE_CHECKING:
    from paramwise.cli.common import Subparsers

__all__ = ["REGISTRIES", "add_parser", "run"]

REGISTRIES = {  # `paramwise list` argument -> (module, registry)
    "optimizers": ("paramwise.optimizers", "OPTIMIZERS"),
    "constructors": ("paramwise.build.constructors", "OPTIMIZER_BUILDERS"),
    "schedulers": ("paramwise.schedule", "SCHEDULERS"),
    "models": ("paramwise.models", "MODELS"),
}


def add_parser(subparsers: Subparsers) -> None:
    """Add ``paramwise list`` to the command line."""
    parser = add_command(subparsers, "list", run, help="list registered optimizers, constructors, schedulers, models",
                         description="List what a registry holds, with the source module and a description.")
    parser.add_argument("what", choices=tuple(REGISTRIES), help="which registry")
    add_format_arg(parser, "json")


def _describe(obj: Any) -> str:
    doc = (getattr(obj, "__doc__", None) or "").strip()
    return doc.splitlines()[0].strip() if doc else ""


def run(args: argparse.Namespace) -> int:
    """Print one row per registered name: a rich table, plain aligned columns, or JSON."""
    module, attr = REGISTRIES[args.what]
    registry = getattr(importlib.import_module(module), attr)
    rows = [
        {"name": name, "module": getattr(obj, "__module__", "?"), "description": _describe(obj)}
        for name, obj in sorted(registry.module_dict.items())
    ]
    if args.format == "json":
        print_json(rows)
        return EXIT_OK
    console = rich_console()
    if console is None:
        widths = [max([len(h), *(len(r[h]) for r in rows)]) for h in ("name", "module")]
        for r in rows:
            print(f"{r['name']:<{widths[0]}}  {r['module']:<{widths[1]}}  {r['description']}".rstrip())
        return EXIT_OK
    table = rich_table(f"{args.what}: {len(rows)} in the {registry.name} registry")
    table.add_column("name", style="bold", overflow="fold")
    table.add_column("module", style="dim", overflow="fold")
    table.add_column("description")
    for r in rows:
        table.add_row(r["name"], r["module"], r["description"])
    print_rich(console, table, page=True)
    return EXIT_OK
