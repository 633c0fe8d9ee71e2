"""``paramwise check``: validate a whole config against a model, for CI.

Owns: the ``check`` subcommand's arguments and its handler, which turns the problems of the
optimizer, the wrapper and the ``param_scheduler`` into one report and exit 1 instead of an error.

May import: ``paramwise.cli.common``, ``paramwise.cli.schedule`` (the schedule is built as that
command builds it) and anything in paramwise (torch only inside functions).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from paramwise.cli.common import (
    EXIT_OK,
    EXIT_PROBLEMS,
    add_command,
    add_config_args,
    load_config,
    load_model,
    optimizer_of,
    plan_and_build,
    problem_lines,
)
from paramwise.cli.schedule import schedule_of
from paramwise.errors import ConfigError, ParamwiseError, ParamwiseWarning, UsageError
from paramwise.suggestions import plural

if TYPE_CHECKING:
    from paramwise.cli.common import Subparsers

__all__ = ["ScheduleCheck", "add_parser", "check_schedule", "run"]


def add_parser(subparsers: Subparsers) -> None:
    """Add ``paramwise check`` to the command line."""
    parser = add_command(subparsers, "check", run, help="validate a config against a model (for CI)",
                         description="Load the config, plan it, build the optimizer and the param_scheduler; "
                                     "exit 1 listing every problem of the optimizer, the wrapper and the schedule "
                                     "(warnings included) or 0 when the config is sound.")
    add_config_args(parser, required=True)
    parser.add_argument("--allow-warnings", action="store_true",
                        help="report warnings (custom keys or multipliers that decide nothing, shared parameters) "
                             "but pass")
    parser.add_argument("--fail-on-frozen", action="store_true",
                        help="fail when the model has frozen parameters (by default they are reported as a note)")
    parser.add_argument("--iters", type=int, metavar="N",
                        help="the run's length, for schedule entries without 'end' (default: train_cfg's "
                             "max_iters or max_epochs)")
    parser.add_argument("--epoch-length", type=int, metavar="M",
                        help="iterations per epoch, for entries with by_epoch=True (default: 1, which checks "
                             "their windows in epochs)")


@dataclass(frozen=True)
class ScheduleCheck:
    """What building a config's ``param_scheduler`` found: problems (each at its path) and warnings."""

    entries: int = 0
    problems: list[str] = field(default_factory=list)
    title: str = ""
    warnings: list[str] = field(default_factory=list)


def _run_length(cfg: Mapping[str, Any], epoch_length: int) -> int | None:
    """The run's iterations from ``train_cfg`` (max_iters, or max_epochs x epoch_length), as mmengine's runner ends
    entries without ``end``; None when the config does not say."""
    train = cfg.get("train_cfg")
    if not isinstance(train, Mapping):
        return None
    for key, unit in (("max_iters", 1), ("max_epochs", epoch_length)):
        value = train.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value * unit
    return None


def _stand_in(optimizer_cfg: Mapping[str, Any] | None) -> Any:
    """A one-parameter optimizer of the config's type (with its defaults) to check a schedule on when the
    config's own optimizer cannot be built; SGD with momentum when that type cannot be built either."""
    import torch

    from paramwise.optimizers import OPTIMIZERS

    params = [torch.zeros(1, requires_grad=True)]
    type_name = optimizer_cfg.get("type") if optimizer_cfg is not None else None
    try:
        cls: Any = OPTIMIZERS.get(type_name) if isinstance(type_name, str) else type_name
        return cls(params)
    except Exception:  # unknown type, or one that needs arguments: the schedule is still worth checking
        return torch.optim.SGD(params, lr=0.1, momentum=0.9)


def check_schedule(cfg: Any, optimizer: Any, *, iters: int | None = None,
                   epoch_length: int | None = None) -> ScheduleCheck:
    """Build the config's ``param_scheduler`` on ``optimizer`` (a throwaway: its values change) with the schedule
    package's own checks, and collect what they find instead of raising.

    Without ``epoch_length``, epoch-based entries are checked in epochs (one iteration each): the runner
    knows the real length (the data loader's), a config check does not.
    """
    if "param_scheduler" not in cfg:
        return ScheduleCheck()
    length = epoch_length or 1
    entries = cfg.to_dict()["param_scheduler"]
    count = len(entries) if isinstance(entries, list | tuple) else 1
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ParamwiseWarning)
        try:
            schedule_of(cfg, optimizer, iters or _run_length(cfg, length), length)
        except ConfigError as e:
            found, title = problem_lines(e), e.title
        else:
            found, title = [], ""
    said = list(dict.fromkeys(str(w.message) for w in caught if issubclass(w.category, ParamwiseWarning)))
    return ScheduleCheck(count, found, title, said)


def _fail(subject: str, problems: list[str], titles: list[str]) -> int:
    print(f"check failed: {subject}: {plural(len(problems), 'problem')} ({'; '.join(titles)})", file=sys.stderr)
    for line in problems:
        print(f"  - {line}", file=sys.stderr)
    return EXIT_PROBLEMS


def run(args: argparse.Namespace) -> int:
    """Exit 0 with a summary when the config is sound, else 1 listing every problem on stderr."""
    for flag, value in (("--iters", args.iters), ("--epoch-length", args.epoch_length)):
        if value is not None and value < 1:
            raise UsageError(f"{flag} must be at least 1, got {value}")
    subject = f"{args.config} with model {args.model}"
    from paramwise.models import ModelSpecError

    problems: list[str] = []
    titles: list[str] = []
    cfg = loaded = plan = optimizer = None
    try:
        cfg = load_config(args.config, args.cfg_options)
        loaded = optimizer_of(cfg, args.config)
        model = load_model(args.model, args.model_args)
        # building catches what only the optimizer itself checks (betas out of range, ...)
        plan, optimizer = plan_and_build(model, loaded, build=True)
    except ConfigError as e:
        problems, titles = problem_lines(e), [e.title]
    except (UsageError, ModelSpecError):
        raise  # the command line is wrong, not the config: exit 2 from main
    except ParamwiseError as e:
        problems, titles = [str(e)], ["error"]
    schedule = ScheduleCheck()
    if cfg is not None:  # the schedule is checked even when the optimizer is broken: one run lists everything
        on = optimizer if optimizer is not None else _stand_in(loaded.optimizer if loaded is not None else None)
        schedule = check_schedule(cfg, on, iters=args.iters, epoch_length=args.epoch_length)
    if schedule.problems:
        problems, titles = [*problems, *schedule.problems], [*titles, schedule.title]
    if problems or plan is None:
        return _fail(subject, [*problems, *schedule.warnings], titles)
    # frozen parameters are normal when fine-tuning: a note, fatal only with --fail-on-frozen
    fatal_notes = list(plan.notes[:1]) if args.fail_on_frozen and plan.frozen else []
    found = [*map(str, fatal_notes), *map(str, plan.warnings), *schedule.warnings]
    if found and not (args.allow_warnings and not fatal_notes):
        return _fail(subject, found, ["warnings"])
    for w in found:
        print(f"warning: {w}", file=sys.stderr)
    for n in plan.notes:
        print(f"note: {n}", file=sys.stderr)
    total = sum(e.numel for e in plan.entries)
    scheduled = f"; param_scheduler: {plural(schedule.entries, 'entry', 'entries')}" if schedule.entries else ""
    print(f"ok: {subject}: {plan.optimizer}, {plural(len(plan.entries), 'parameter')} "
          f"({plural(total, 'element')}) in {plural(len(plan.groups), 'group')}{scheduled}")
    return EXIT_OK
