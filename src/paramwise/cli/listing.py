"""``paramwise list``: what a registry holds, with the module and the first sentence of each entry's docstring.

Owns: the ``list`` subcommand's arguments and handler, and which registry each of its choices reads.
(Named ``listing``, not ``list``: a submodule ``list`` would shadow the built-in inside ``paramwise.cli``.)

May import: ``paramwise.cli.common`` and anything in paramwise; the registries load inside ``run``,
so choosing one imports only its module.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import re
from typing import TYPE_CHECKING, Any

from paramwise.cli.common import EXIT_OK, add_command, add_format_arg, print_json, print_rich, rich_console, rich_table

if TYPE_CHECKING:
    from paramwise.cli.common import Subparsers

__all__ = ["REGISTRIES", "add_parser", "describe", "plain_text", "run"]

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


_DESCRIPTION_WIDTH = 30  # the narrowest description column worth showing on a terminal

# reStructuredText markup in docstrings, each alternative naming the text it shows; one pass, left to
# right, so what is inside a literal (``a * b``) is never read as markup
_RST = re.compile(
    r"``(?P<literal>.+?)``"
    r"|:[\w:+.-]+:`(?P<role>[^`]+)`"
    r"|`(?P<link>[^`<]+?)\s*<[^`>]*>`_{1,2}"
    r"|`(?P<text>[^`]+)`_{0,2}"
    r"|\*\*(?P<strong>[^*]+)\*\*"
    r"|(?<![\w*])\*(?P<em>[^*\s][^*]*?)\*(?![\w*])",
    re.DOTALL,
)
# a sentence ends at . ! or ? before a capital, a bracket or quote, or the end (not after e.g. or i.e.)
_SENTENCE_END = re.compile(r"(?<!\be\.g)(?<!\bi\.e)(?<!\betc)(?<!\bvs)[.!?](?=\s+[A-Z(\"'`]|\s*$)")


def _shown(match: re.Match[str]) -> str:
    """The text one piece of markup shows: a role's title (``text <target>``) or last dotted part (``~a.B``)."""
    kind = match.lastgroup or ""
    text = match.group(kind)
    if kind == "role":
        titled = re.fullmatch(r"(.+?)\s*<[^>]*>", text, re.DOTALL)
        if titled:
            return titled.group(1)
        text = text.lstrip("!")
        return text.rsplit(".", 1)[-1] if text.startswith("~") else text
    return text


def plain_text(doc: str) -> str:
    """A docstring's first paragraph as one line of plain text: reStructuredText markup shown as its text."""
    paragraph = inspect.cleandoc(doc).strip().split("\n\n", 1)[0]
    return " ".join(_RST.sub(_shown, paragraph).split())


def describe(obj: Any) -> str:
    """The first sentence of ``obj``'s docstring, whole, as plain text (the whole first paragraph when it has
    no sentence end): what ``paramwise list`` shows beside each name."""
    text = plain_text(getattr(obj, "__doc__", None) or "")
    end = _SENTENCE_END.search(text)
    return text[: end.end()] if end else text


def run(args: argparse.Namespace) -> int:
    """Print one row per registered name: a rich table, plain aligned columns, or JSON."""
    module, attr = REGISTRIES[args.what]
    registry = getattr(importlib.import_module(module), attr)
    rows = [
        {"name": name, "module": getattr(obj, "__module__", "?"), "description": describe(obj)}
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
    from rich.text import Text

    table = rich_table(f"{args.what}: {len(rows)} in the {registry.name} registry")
    # names whole on one line; the description wraps between words, never cut. On a terminal too narrow
    # for the modules beside a readable description, the modules go (JSON and a wide terminal have them)
    widths = [max(len(r[key]) for r in rows) if rows else 0 for key in ("name", "module")]
    columns: tuple[str, ...] = ("name", "module", "description")
    if console.is_terminal and sum(widths) + _DESCRIPTION_WIDTH + 4 > console.width:
        columns = ("name", "description")
    if console.is_terminal and widths[0] + _DESCRIPTION_WIDTH + 2 > console.width:
        columns = ("name",)  # narrower still: each description on the lines below its name
    table.add_column("name" if len(columns) > 1 else "name, description", style="bold", no_wrap=len(columns) > 1,
                     overflow="fold")
    if "module" in columns:
        table.add_column("module", style="dim", no_wrap=True)
    if "description" in columns:
        table.add_column("description", overflow="fold", min_width=_DESCRIPTION_WIDTH)
    for r in rows:
        if len(columns) == 1:
            table.add_row(Text.assemble((r["name"], "bold"), "\n", r["description"]))
        else:
            table.add_row(*(r[c] for c in columns))
    print_rich(console, table, page=True)
    return EXIT_OK
