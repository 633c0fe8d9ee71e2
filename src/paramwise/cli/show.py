"""``paramwise show``: the plan of a config for a model, as a table, JSON or CSV.

Owns: the ``show`` subcommand's arguments and its handler.

May import: ``paramwise.cli.common`` and anything in paramwise (torch and rich only inside ``run``).
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from paramwise.cli.common import (
    EXIT_OK,
    add_command,
    add_config_args,
    add_format_arg,
    plan_args,
    print_json,
    print_rich,
    rich_console,
)
from paramwise.suggestions import did_you_mean

if TYPE_CHECKING:
    from paramwise.cli.common import Subparsers

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Subparsers) -> None:
    """Add ``paramwise show`` to the command line."""
    parser = add_command(subparsers, "show", run, help="show the plan: every parameter's lr, decay and rule",
                         description="Show what a config does to each parameter of a model, and the groups it makes.")
    add_config_args(parser, required=True)
    add_format_arg(parser, "json", "csv")
    parser.add_argument("--group-by", choices=("none", "rule", "group"), default="none",
                        help="order the rows in model order (none), or in sections per rule or per group")
    parser.add_argument("--filter", metavar="SUBSTR", help="only parameters whose name contains SUBSTR")
    parser.add_argument("--explain", action="store_true",
                        help="show each changed value as the product of its factors (base x each rule's "
                             "multiplier), and with paramwise_cfg['routes'] why each parameter went to its optimizer")


def run(args: argparse.Namespace) -> int:
    """Print the plan; a --filter that matches nothing is a note on stderr."""
    plan = plan_args(args, build=False).plan
    from paramwise import render

    options = {"group_by": args.group_by, "name_filter": args.filter}
    if args.format == "json":
        print_json(render.plan_json(plan, **options))
    elif args.format == "csv":
        sys.stdout.write(render.plan_csv(plan, **options))
    else:
        console = rich_console()
        if console is None:
            print(render.plan_text(plan, **options, explain=args.explain))
        else:
            print_rich(console, render.plan_table(plan, **options, explain=args.explain), page=True)
    if args.filter and not any(args.filter in e.name for e in plan.entries):
        names = {part for e in plan.entries for part in e.name.split(".")}
        print(f"paramwise: note: no parameter name contains {args.filter!r}.{did_you_mean(args.filter, names)}",
              file=sys.stderr)
    return EXIT_OK
