"""``paramwise demo``: the tour; a plan, its audit and schedule, then a short training run.

Owns: the ``demo`` subcommand's arguments and handler, and reading ``--input-shape``. The training
itself (synthetic task, loop, report) is ``paramwise.demo``'s.

May import: ``paramwise.cli.common``, the printers of ``paramwise.cli.audit`` and
``paramwise.cli.schedule`` (the demo shows what those commands show), and anything in paramwise
(torch and rich only inside functions).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from paramwise.cli.audit import print_audit
from paramwise.cli.common import (
    EXIT_OK,
    add_command,
    add_config_args,
    audit_findings,
    load_config,
    load_model,
    optimizer_of,
    plan_and_build,
    print_rich,
    rich_console,
)
from paramwise.cli.schedule import print_schedule, schedule_of
from paramwise.errors import UsageError
from paramwise.suggestions import plural

if TYPE_CHECKING:
    from paramwise.cli.common import Subparsers

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Subparsers) -> None:
    """Add ``paramwise demo`` to the command line."""
    parser = add_command(subparsers, "demo", run, help="show a plan, then train briefly on synthetic data",
                         description="Show the plan of a config, train the model for a few steps on a synthetic, "
                                     "learnable task with the optimizer it builds, and report the loss and "
                                     "the lr of each group.")
    add_config_args(parser, required=False)
    parser.add_argument("--steps", type=int, default=100, help="training steps (default: 100)")
    parser.add_argument("--batch-size", type=int, default=32, help="examples per step (default: 32)")
    parser.add_argument("--seed", type=int, default=0, help="seed for the model and the data (default: 0)")
    parser.add_argument("--epoch-length", type=int, metavar="M",
                        help="iterations per epoch, for schedules with by_epoch=True (mmdetection's default)")
    parser.add_argument("--input-shape", metavar="C,H,W",
                        help="shape of one example, for models that do not declare it (e.g. 3,224,224)")
    parser.add_argument("--no-hybrid", action="store_true",
                        help="skip the second part of the default demo (Muon for a small language model's hidden "
                             "matrices, AdamW for the rest); it runs only when no --config is given")


def _input_shape(text: str | None, model: Any) -> tuple[int, ...]:
    """One example's shape: from --input-shape, else as the model declares it."""
    from paramwise.demo.run import input_shape_of

    if text:
        try:
            shape = tuple(int(part) for part in text.replace("x", ",").split(",") if part.strip())
        except ValueError:
            shape = ()
        if not shape or min(shape) < 1:
            raise UsageError(f"--input-shape must be positive integers like 3,32,32, got {text!r}")
        return shape
    declared = input_shape_of(model)
    if declared is None:
        raise UsageError(
            f"the demo does not know the input shape of {type(model).__name__}; "
            "pass one example's shape with --input-shape, e.g. 3,224,224"
        )
    return declared


def run(args: argparse.Namespace) -> int:
    """Show the plan, audit and schedule, train for --steps, and report the loss and each group's lr."""
    if args.steps < 1 or args.batch_size < 1:
        raise UsageError("--steps and --batch-size must be at least 1")
    if args.epoch_length is not None and args.epoch_length < 1:
        raise UsageError(f"--epoch-length must be at least 1, got {args.epoch_length}")
    import torch

    from paramwise import render
    from paramwise.demo import run as demo
    from paramwise.schedule.report import schedule_curves

    config = args.config or str(demo.DEFAULT_CONFIG)
    spec = args.model or demo.DEFAULT_MODEL
    whole = load_config(config, args.cfg_options)
    loaded = optimizer_of(whole, config)
    torch.manual_seed(args.seed)
    model = load_model(spec, args.model_args)
    shape = _input_shape(args.input_shape, model)
    classes = demo.num_classes_of(model, shape)
    plan, optimizer = plan_and_build(model, loaded, build=True)
    findings = audit_findings(plan, model, loaded.optimizer)
    schedule = schedule_of(whole, optimizer, args.steps, args.epoch_length)
    from paramwise.wrapper.optim_wrapper import wrap_optimizer

    wrapper = wrap_optimizer(optimizer, loaded.wrapper)  # clipping, accumulation, mixed precision
    task = demo.SyntheticTask(shape, classes, seed=args.seed)
    console = rich_console()
    name = spec if args.model else "tiny_convnet with GroupNorm (the demo's model)"
    what = (f"training {name} for {plural(args.steps, 'step')} on synthetic data "
            f"({classes} classes, inputs {'x'.join(map(str, shape))}, batch {args.batch_size}, seed {args.seed})")
    if console is None:
        print(f"config: {config}\n")
        print(render.plan_text(plan))
        print()
        print_audit(None, findings)
        if schedule is not None:
            print()
            print_schedule(None, schedule_curves(schedule, args.steps))
        print(f"\n{what}")
        result = demo.train_with_progress(model, optimizer, task, args.steps, args.batch_size, schedule=schedule,
                                          wrapper=wrapper)
        print(demo.report_text(result))
        print(demo.resume_line(model, optimizer, loaded.optimizer))
    else:
        console.print(f"config: {config}", highlight=False)
        print_rich(console, render.plan_table(plan))
        print_audit(console, findings)
        if schedule is not None:
            print_schedule(console, schedule_curves(schedule, args.steps))
        console.print(what, highlight=False)
        result = demo.train_with_progress(model, optimizer, task, args.steps, args.batch_size, console,
                                          schedule=schedule, wrapper=wrapper)
        print_rich(console, demo.report_table(result))
        console.print(demo.resume_line(model, optimizer, loaded.optimizer), highlight=False)
    if not (args.config or args.no_hybrid):
        from paramwise.demo.hybrid import run_hybrid_demo

        print("\n" + "\n".join(run_hybrid_demo(seed=args.seed).lines()))
    return EXIT_OK
