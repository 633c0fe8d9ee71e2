"""The ``paramwise`` command (also ``python -m paramwise``): show, check, audit, schedule, state, list, demo.

Exit codes: 0 success, 1 a problem in a config (or a failed ``check``), 2 a usage mistake
(missing file, bad model SPEC, bad arguments). Every error is one message on stderr;
``--traceback`` adds the traceback. Heavy imports (torch, rich) happen inside the commands,
so ``paramwise --help`` is instant.

Owns: ``main`` and ``build_parser``, which assembles the parser from each command module's
``add_parser`` (one module per command: a new command is a new module and a line in ``COMMANDS``).
What the commands share is in ``paramwise.cli.common``.

May import: anything in paramwise. The CLI is the top layer: nothing in paramwise imports it.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import sys
import traceback
from collections.abc import Sequence

from paramwise.cli import audit, check, demo, listing, schedule, show, state
from paramwise.cli.common import EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, TRACEBACK_HELP, explain
from paramwise.errors import UsageError

__all__ = ["COMMANDS", "EXIT_OK", "EXIT_PROBLEMS", "EXIT_USAGE", "UsageError", "build_parser", "main"]

COMMANDS = (show, check, audit, schedule, state, listing, demo)  # in the order `paramwise --help` lists them


def _version() -> str:
    """The installed distribution's version (the CLI sits below nothing, so it does not import the package root)."""
    try:
        return importlib.metadata.version("paramwise")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "(not installed)"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``paramwise`` command."""
    parser = argparse.ArgumentParser(
        prog="paramwise",
        description="Show, check and try optimizer configs with per-parameter rules (paramwise_cfg).",
        epilog="Run `paramwise demo` for a quick tour. Exit codes: 0 ok, 1 config problems, 2 usage errors.",
    )
    parser.add_argument("--version", action="version", version=f"paramwise {_version()}")
    parser.add_argument("--traceback", action="store_true", help=TRACEBACK_HELP)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "handler", None) is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        print("paramwise: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `paramwise show ... | head`: the reader left, nothing more to say
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except Exception as e:
        if getattr(args, "traceback", False):
            traceback.print_exc()
        code, message = explain(e, getattr(args, "config", None))
        print(f"paramwise: error: {message}", file=sys.stderr)
        return code
