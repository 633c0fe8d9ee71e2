"""``paramwise state``: a checkpoint's optimizer state, and what loading it under a config would change.

Owns: the ``state`` subcommand's arguments and its handler.

May import: ``paramwise.cli.common`` and anything in paramwise (torch only inside ``run``).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import TYPE_CHECKING, Any

from paramwise.cli.common import (
    EXIT_OK,
    add_command,
    add_format_arg,
    add_model_args,
    load_config,
    optimizer_of,
    plan_args,
    print_json,
    quietly,
)
from paramwise.errors import UsageError
from paramwise.suggestions import plural

if TYPE_CHECKING:
    from paramwise.cli.common import Subparsers

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Subparsers) -> None:
    """Add ``paramwise state`` to the command line."""
    parser = add_command(subparsers, "state", run,
                         help="show a checkpoint's optimizer state, and what loading it under a config would change",
                         description="Show the optimizer state in a checkpoint: its groups, parameter names and "
                                     "hyperparameters. With --config and --model, also what loading it into the "
                                     "optimizer that config builds would do: parameters matched by name, missing "
                                     "or unexpected, and hyperparameters where the config differs.")
    parser.add_argument("checkpoint", metavar="CHECKPOINT",
                        help="a file saved with torch.save: an optimizer state_dict, or a checkpoint holding one")
    parser.add_argument("--key", metavar="PATH",
                        help="where the optimizer state is in the checkpoint (default: found by itself, e.g. "
                             "'optimizer'); dotted for nested ones, e.g. optimizer.generator")
    parser.add_argument("--trust", action="store_true",
                        help="unpickle the whole file (needed for checkpoints holding Python objects; "
                             "only for files you trust)")
    parser.add_argument("--config", metavar="PATH", help="the config to load the state under (with --model)")
    add_model_args(parser, model_args_help="keyword arguments for the model, a JSON object",
                   cfg_options_help="override config values")
    parser.add_argument("--saved-with", metavar="PATH",
                        help="for a checkpoint without parameter names (plain torch, mmcv/mmengine): the config "
                             "it was saved with, which decides its parameter order (default: --config)")
    parser.add_argument("--map-prefix", metavar="OLD=NEW", action="append", default=[],
                        help="rename saved parameter names that start with OLD to start with NEW before matching "
                             "(repeatable; e.g. module.= drops DistributedDataParallel's 'module.', =vit. adds 'vit.')")
    parser.add_argument("--allow-unrelated", action="store_true",
                        help="show the load even when few or no saved names match this model (otherwise an error, "
                             "exit 1: the state looks like another model's)")
    add_format_arg(parser, "json")


def run(args: argparse.Namespace) -> int:
    """Print the saved groups; with --config and --model, what loading them by name would do."""
    from paramwise.build.naming import name_optimizer_state
    from paramwise.state.by_name import map_state_by_name
    from paramwise.state.files import describe_state, find_optimizer_state, read_checkpoint

    if bool(args.config) != bool(args.model):
        raise UsageError("--config and --model go together: the optimizer to load into is built from both")
    prefix_map = _prefix_map(args.map_prefix)
    if (prefix_map or args.allow_unrelated) and not args.config:
        raise UsageError("--map-prefix and --allow-unrelated apply to loading the state: give --config and --model")
    saved, where = find_optimizer_state(read_checkpoint(args.checkpoint, trust=args.trust), args.key)
    groups = describe_state(saved)
    report = None
    if args.config:
        planned = plan_args(args, build=True)
        if any(g["names"] is None for g in groups):
            # the saved order is the one the config it was saved with gives (--saved-with, else --config)
            old = optimizer_of(load_config(args.saved_with, []), args.saved_with) if args.saved_with else planned.loaded
            saved = quietly(name_optimizer_state, saved, planned.model, old.optimizer)
        report = map_state_by_name(planned.optimizer, saved, prefix_map=prefix_map,
                                   allow_unrelated=args.allow_unrelated)[1]
    if args.format == "json":
        from paramwise.render import json_safe

        data: dict[str, Any] = {"key": where, "groups": groups}
        if report is not None:
            data["load"] = dataclasses.asdict(report)
            if prefix_map:
                data["load"]["prefix_map"] = prefix_map
        print_json(json_safe(data))
        return EXIT_OK
    from paramwise.render import value_text

    total = sum(g["params"] for g in groups)
    print(f"{args.checkpoint}{f' [{where}]' if where else ''}: {plural(len(groups), 'group')}, "
          f"{plural(total, 'parameter')}, {sum(g['with_state'] for g in groups):,} with state")
    for g in groups:
        values = ", ".join(f"{k}={value_text(v)}" for k, v in g["hyperparams"].items())
        names = g["names"]
        shown = ("unnamed" if names is None else ", ".join(names[:4]) + (f", ... ({len(names)} in all)"
                                                                          if len(names) > 4 else ""))
        print(f"  group {g['group']}: {plural(g['params'], 'param')} ({shown}); {values}")
    if any(g["names"] is None for g in groups) and report is None:
        print("note: the groups have no parameter names (plain torch, mmcv/mmengine); give --config and --model "
              "to name them by the config they were saved with", file=sys.stderr)
    if report is not None:
        mapped = "".join(f", names {old!r} -> {new!r}" for old, new in prefix_map.items())
        print(f"\nloading it under {args.config} with model {args.model}{mapped}:")
        for line in report.lines() or [str(report)]:
            print(f"  - {line}")
    return EXIT_OK


def _prefix_map(pairs: list[str]) -> dict[str, str]:
    """``--map-prefix OLD=NEW`` flags as a dict; a ``UsageError`` for one without ``=`` or an OLD given twice."""
    out: dict[str, str] = {}
    for pair in pairs:
        old, sep, new = pair.partition("=")
        if not sep:
            raise UsageError(f"--map-prefix takes OLD=NEW, got {pair!r}; e.g. --map-prefix module.= drops the "
                             "prefix 'module.' from the saved names")
        if old in out and out[old] != new:
            raise UsageError(f"--map-prefix gives {old!r} twice ({out[old]!r} and {new!r}); give it once")
        out[old] = new
    return out
