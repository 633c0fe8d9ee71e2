"""``paramwise check``: validate a config against a model, for CI.

Owns: the ``check`` subcommand's arguments and its handler, which turns config problems into a
report and exit 1 instead of an error.

May import: ``paramwise.cli.common`` and anything in paramwise (torch only inside ``run``).
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from paramwise.cli.common import EXIT_OK, EXIT_PROBLEMS, add_command, add_config_args, plan_args, problem_lines
from paramwise.errors import ConfigError, ParamwiseError, UsageError
from paramwise.suggestions import plural

if TYPE_CHECKING:
    from paramwise.cli.common import Subparsers

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Subparsers) -> None:
    """Add ``paramwise check`` to the command line."""
    parser = add_command(subparsers, "check", run, help="validate a config against a model (for CI)",
                         description="Load the config, plan it and build the optimizer; exit 1 listing every "
                                     "problem (warnings included) or 0 when the config is sound.")
    add_config_args(parser, required=True)
    parser.add_argument("--allow-warnings", action="store_true",
                        help="report warnings (custom keys or multipliers that decide nothing, shared parameters) "
                             "but pass")
    parser.add_argument("--fail-on-frozen", action="store_true",
                        help="fail when the model has frozen parameters (by default they are reported as a note)")


def run(args: argparse.Namespace) -> int:
    """Exit 0 with a summary when the config is sound, else 1 listing every problem on stderr."""
    subject = f"{args.config} with model {args.model}"
    from paramwise.models import ModelSpecError

    try:
        # building catches what only the optimizer itself checks (betas out of range, ...)
        plan = plan_args(args, build=True).plan
    except ConfigError as e:
        problems, title = problem_lines(e), e.title
    except (UsageError, ModelSpecError):
        raise  # the command line is wrong, not the config: exit 2 from main
    except ParamwiseError as e:
        problems, title = [str(e)], "error"
    else:
        # frozen parameters are normal when fine-tuning: a note, fatal only with --fail-on-frozen
        fatal_notes = list(plan.notes[:1]) if args.fail_on_frozen and plan.frozen else []
        problems, title = [*fatal_notes, *plan.warnings], "warnings"
        if not problems or (args.allow_warnings and not fatal_notes):
            for w in problems:
                print(f"warning: {w}", file=sys.stderr)
            for n in plan.notes:
                print(f"note: {n}", file=sys.stderr)
            total = sum(e.numel for e in plan.entries)
            print(f"ok: {subject}: {plan.optimizer}, {plural(len(plan.entries), 'parameter')} "
                  f"({plural(total, 'element')}) in {plural(len(plan.groups), 'group')}")
            return EXIT_OK
    print(f"check failed: {subject}: {plural(len(problems), 'problem')} ({title})", file=sys.stderr)
    for line in problems:
        print(f"  - {line}", file=sys.stderr)
    return EXIT_PROBLEMS
