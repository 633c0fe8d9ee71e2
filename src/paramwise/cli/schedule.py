"""``paramwise schedule``: each group's lr (or another value) under the config's param_scheduler.

Owns: the ``schedule`` subcommand's arguments and handler, ``schedule_of`` (the config's
param_scheduler built on an optimizer) and ``print_schedule``; ``paramwise demo`` uses both.

May import: ``paramwise.cli.common`` and anything in paramwise (torch and rich only inside functions).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Any

from paramwise.cli.common import (
    EXIT_OK,
    add_command,
    add_config_args,
    add_format_arg,
    plan_args,
    print_json,
    print_rich,
    rich_console,
    rich_table,
)
from paramwise.errors import ConfigError, Problem, UsageError

if TYPE_CHECKING:
    from paramwise.cli.common import Subparsers

__all__ = ["add_parser", "print_schedule", "run", "schedule_of"]


def add_parser(subparsers: Subparsers) -> None:
    """Add ``paramwise schedule`` to the command line."""
    parser = add_command(subparsers, "schedule", run,
                         help="show the config's param_scheduler: each group's lr where it changes, and a plot",
                         description="Build the optimizer and the config's param_scheduler, and show each "
                                     "distinct group's lr at the steps where something changes; --plot writes "
                                     "a PNG with one line per distinct group (needs matplotlib).")
    add_config_args(parser, required=True)
    parser.add_argument("--iters", type=int, required=True, metavar="N", help="iterations of the run")
    parser.add_argument("--epoch-length", type=int, metavar="M",
                        help="iterations per epoch, for parts with by_epoch=True")
    parser.add_argument("--param", default="lr", help="the scheduled value to show (default: lr)")
    parser.add_argument("--plot", metavar="PNG", help="write a plot of every step to this PNG file")
    add_format_arg(parser, "json")


def schedule_of(cfg: Any, optimizer: Any, iters: int | None, epoch_length: int | None) -> Any:
    """The config's param_scheduler built on ``optimizer``, or None when the config has none."""
    from paramwise.schedule import build_scheduler

    if "param_scheduler" not in cfg:
        return None
    return build_scheduler(optimizer, cfg.to_dict()["param_scheduler"], epoch_length=epoch_length,
                           max_iters=iters)


def print_schedule(console: Any, curves: Any) -> None:
    """The milestone table of a schedule: one row per step where something changes, one column per curve."""
    from paramwise.render import value_text

    header = ["step", *curves.labels]
    rows = [[f"{step:,}", *(value_text(v) for v in values)] for step, values in curves.rows()]
    if console is None:
        widths = [max(len(r[c]) for r in [header, *rows]) for c in range(len(header))]
        print(f"{curves.param} per group at the steps where it changes:")
        for r in [header, *rows]:
            print("  ".join(c.rjust(w) for c, w in zip(r, widths)).rstrip())
        return
    table = rich_table(f"{curves.param} per group at the steps where it changes")
    for name in header:
        table.add_column(name, justify="right", overflow="fold")
    for row in rows:
        table.add_row(*row)
    print_rich(console, table)


def run(args: argparse.Namespace) -> int:
    """Print the milestones (and write the plot); a config without param_scheduler is a config problem."""
    from paramwise.schedule.report import plot_schedule, schedule_curves

    if args.iters < 1:
        raise UsageError("--iters must be at least 1")
    if args.epoch_length is not None and args.epoch_length < 1:
        raise UsageError(f"--epoch-length must be at least 1, got {args.epoch_length}")
    planned = plan_args(args, build=True)
    schedule = schedule_of(planned.cfg, planned.optimizer, args.iters, args.epoch_length)
    if schedule is None:
        hint = " mmcv's lr_config is not read: write it as param_scheduler." if "lr_config" in planned.cfg else ""
        raise ConfigError([Problem(("param_scheduler",), "is missing: the config has no schedule to show, e.g. "
                                                          "param_scheduler=[dict(type='LinearLR', start_factor=0.1, "
                                                          f"by_epoch=False, begin=0, end=500), ...].{hint}",
                                    kind="missing")], title=f"no schedule in {args.config}")
    curves = schedule_curves(schedule, args.iters, args.param)
    for note in getattr(schedule, "notes", ()):
        print(f"note: {note}", file=sys.stderr)
    if args.format == "json":
        print_json({"param": curves.param, "labels": list(curves.labels),
                    "milestones": [{"step": step, "values": list(values)} for step, values in curves.rows()]})
    else:
        print_schedule(rich_console(), curves)
    if args.plot:
        plot_schedule(curves, args.plot, title=f"{curves.param}: {os.path.basename(args.config)}")
        print(f"plot written to {args.plot}", file=sys.stderr)
    return EXIT_OK
