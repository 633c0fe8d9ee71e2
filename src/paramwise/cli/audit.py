"""``paramwise audit``: what a reviewer would question in a config's plan.

Owns: the ``audit`` subcommand's arguments and handler, and ``print_audit`` (``paramwise demo``
prints its audit with it too).

May import: ``paramwise.cli.common`` and anything in paramwise (torch and rich only inside functions).
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from paramwise.cli.common import (
    EXIT_OK,
    EXIT_PROBLEMS,
    add_command,
    add_config_args,
    add_format_arg,
    audit_findings,
    plan_args,
    print_json,
    print_rich,
    rich_console,
    rich_table,
)
from paramwise.suggestions import plural

if TYPE_CHECKING:
    from paramwise.cli.common import Subparsers

__all__ = ["add_parser", "print_audit", "run"]


def add_parser(subparsers: Subparsers) -> None:
    """Add ``paramwise audit`` to the command line."""
    parser = add_command(subparsers, "audit", run,
                         help="list outcomes a reviewer would question: decayed norms, biases, embeddings, tags",
                         description="Plan a config for a model and list what a reviewer would question: norm "
                                     "layers, biases, embeddings, positional embeddings and tokens that get "
                                     "weight decay; parameters the model tags as not decayed that are; "
                                     "no_weight_decay() names that match nothing; many groups. Notes give the "
                                     "number of groups, parameters no rule decided and frozen parameters.")
    add_config_args(parser, required=True)
    parser.add_argument("--strict", action="store_true", help="exit 1 when there are warnings (for CI)")
    add_format_arg(parser, "json")


def print_audit(console: Any, findings: Sequence[Any]) -> None:
    """The audit's findings: a rich table when ``console`` is given, plain lines otherwise."""
    from paramwise.suggestions import short_list

    warned = sum(f.level == "warning" for f in findings)
    title = f"audit: {plural(warned, 'warning')}, {plural(len(findings) - warned, 'note')}"
    if console is None:
        print(title)
        for f in findings:
            print(f"  {f}" + (f"\n      {short_list(f.names)}" if f.names else ""))
        return
    from rich.markup import escape

    table = rich_table(title, show_header=False)
    table.add_column("level", no_wrap=True)
    table.add_column("finding")
    for f in findings:
        level = "[yellow]warning[/]" if f.level == "warning" else "[dim]note[/]"
        names = f"\n[dim]{escape(short_list(f.names))}[/]" if f.names else ""
        table.add_row(f"{level} [bold]{f.kind}[/]", escape(f.message) + names)
    print_rich(console, table)


def run(args: argparse.Namespace) -> int:
    """Print the findings; with --strict, exit 1 when any is a warning."""
    planned = plan_args(args, build=False)
    findings = audit_findings(planned.plan, planned.model, planned.loaded.optimizer)
    if args.format == "json":
        from paramwise.render import json_safe

        print_json(json_safe({"findings": [dataclasses.asdict(f) for f in findings]}))
    else:
        print_audit(rich_console(), findings)
    failed = args.strict and any(f.level == "warning" for f in findings)
    return EXIT_PROBLEMS if failed else EXIT_OK
