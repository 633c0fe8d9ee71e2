"""The ``paramwise`` command (also ``python -m paramwise``): show, check, list and demo.

Exit codes: 0 success, 1 a problem in a config (or a failed ``check``), 2 a usage mistake
(missing file, bad model SPEC, bad arguments). Every error is one message on stderr;
``--traceback`` adds the traceback. Heavy imports (torch, rich) happen inside the commands,
so ``paramwise --help`` is instant.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import traceback
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from paramwise import __version__
from paramwise.errors import ConfigError, ParamwiseError, ParamwiseWarning, Problem, UsageError
from paramwise.suggestions import did_you_mean, plural

__all__ = ["EXIT_OK", "EXIT_PROBLEMS", "EXIT_USAGE", "UsageError", "build_parser", "main"]

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2

_REGISTRIES = {  # `paramwise list` argument -> (module, registry)
    "optimizers": ("paramwise.optimizers", "OPTIMIZERS"),
    "constructors": ("paramwise.build.constructors", "OPTIMIZER_BUILDERS"),
    "schedulers": ("paramwise.schedule.mmengine", "SCHEDULERS"),
    "models": ("paramwise.models", "MODELS"),
}


# ----------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``paramwise`` command."""
    parser = argparse.ArgumentParser(
        prog="paramwise",
        description="Show, check and try optimizer configs with per-parameter rules (paramwise_cfg).",
        epilog="Run `paramwise demo` for a quick tour. Exit codes: 0 ok, 1 config problems, 2 usage errors.",
    )
    parser.add_argument("--version", action="version", version=f"paramwise {__version__}")
    parser.add_argument("--traceback", action="store_true", help="show the full traceback on errors")
    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: a subcommand's default must not overwrite --traceback given before the subcommand
    common.add_argument("--traceback", action="store_true", default=argparse.SUPPRESS,
                        help="show the full traceback on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    model_help = ("the model: a built-in name (`paramwise list models`), package.module:callable, "
                  "or timm:<name>")

    def add_config_args(p: argparse.ArgumentParser, *, required: bool) -> None:
        if required:
            p.add_argument("config", metavar="CONFIG",
                           help="config file (.py/.yaml/.json/.toml) with optim_wrapper=dict(optimizer=...) "
                                "or an 'optimizer' key")
            p.add_argument("--model", "-m", metavar="SPEC", required=True, help=model_help)
        else:
            p.add_argument("--config", metavar="PATH",
                           help="config file (default: the demo config shipped in the package)")
            p.add_argument("--model", "-m", metavar="SPEC", help=f"{model_help} (default: tiny_convnet)")
        p.add_argument("--model-args", metavar="JSON",
                       help='keyword arguments for the model as a JSON object, e.g. \'{"num_classes": 5}\'')
        p.add_argument("--cfg-options", metavar="KEY=VALUE", nargs="+", action="extend", default=[],
                       help="override config values, e.g. optimizer.lr=0.01 optimizer.paramwise_cfg.norm_decay_mult=0")

    show = sub.add_parser("show", parents=[common], help="show the plan: every parameter's lr, decay and rule",
                          description="Show what a config does to each parameter of a model, and the groups it makes.")
    add_config_args(show, required=True)
    show.add_argument("--format", "-f", choices=("table", "json", "csv"), default="table", help="output format")
    show.add_argument("--group-by", choices=("none", "rule", "group"), default="none",
                      help="order the rows in model order (none), or in sections per rule or per group")
    show.add_argument("--filter", metavar="SUBSTR", help="only parameters whose name contains SUBSTR")
    show.add_argument("--explain", action="store_true",
                      help="show each changed value as the product of its factors (base x each rule's multiplier)")
    show.set_defaults(handler=_cmd_show)

    check = sub.add_parser("check", parents=[common], help="validate a config against a model (for CI)",
                           description="Load the config, plan it and build the optimizer; exit 1 listing every "
                                       "problem (warnings included) or 0 when the config is sound.")
    add_config_args(check, required=True)
    check.add_argument("--allow-warnings", action="store_true",
                       help="report warnings (custom keys or multipliers that decide nothing, shared parameters) "
                            "but pass")
    check.add_argument("--fail-on-frozen", action="store_true",
                       help="fail when the model has frozen parameters (by default they are reported as a note)")
    check.set_defaults(handler=_cmd_check)

    audit = sub.add_parser("audit", parents=[common],
                           help="list outcomes a reviewer would question: decayed norms, biases, embeddings, tags",
                           description="Plan a config for a model and list what a reviewer would question: norm "
                                       "layers, biases, embeddings, positional embeddings and tokens that get "
                                       "weight decay; parameters the model tags as not decayed that are; "
                                       "no_weight_decay() names that match nothing; many groups. Notes give the "
                                       "number of groups, parameters no rule decided and frozen parameters.")
    add_config_args(audit, required=True)
    audit.add_argument("--strict", action="store_true", help="exit 1 when there are warnings (for CI)")
    audit.add_argument("--format", "-f", choices=("table", "json"), default="table", help="output format")
    audit.set_defaults(handler=_cmd_audit)

    schedule = sub.add_parser("schedule", parents=[common],
                              help="show the config's param_scheduler: each group's lr where it changes, and a plot",
                              description="Build the optimizer and the config's param_scheduler, and show each "
                                          "distinct group's lr at the steps where something changes; --plot writes "
                                          "a PNG with one line per distinct group (needs matplotlib).")
    add_config_args(schedule, required=True)
    schedule.add_argument("--iters", type=int, required=True, metavar="N", help="iterations of the run")
    schedule.add_argument("--epoch-length", type=int, metavar="M",
                          help="iterations per epoch, for parts with by_epoch=True")
    schedule.add_argument("--param", default="lr", help="the scheduled value to show (default: lr)")
    schedule.add_argument("--plot", metavar="PNG", help="write a plot of every step to this PNG file")
    schedule.add_argument("--format", "-f", choices=("table", "json"), default="table", help="output format")
    schedule.set_defaults(handler=_cmd_schedule)

    state = sub.add_parser("state", parents=[common],
                           help="show a checkpoint's optimizer state, and what loading it under a config would change",
                           description="Show the optimizer state in a checkpoint: its groups, parameter names and "
                                       "hyperparameters. With --config and --model, also what loading it into the "
                                       "optimizer that config builds would do: parameters matched by name, missing "
                                       "or unexpected, and hyperparameters where the config differs.")
    state.add_argument("checkpoint", metavar="CHECKPOINT",
                       help="a file saved with torch.save: an optimizer state_dict, or a checkpoint holding one")
    state.add_argument("--key", metavar="PATH",
                       help="where the optimizer state is in the checkpoint (default: found by itself, e.g. "
                            "'optimizer'); dotted for nested ones, e.g. optimizer.generator")
    state.add_argument("--trust", action="store_true",
                       help="unpickle the whole file (needed for checkpoints holding Python objects; "
                            "only for files you trust)")
    state.add_argument("--config", metavar="PATH", help="the config to load the state under (with --model)")
    state.add_argument("--model", "-m", metavar="SPEC", help=model_help)
    state.add_argument("--model-args", metavar="JSON", help="keyword arguments for the model, a JSON object")
    state.add_argument("--cfg-options", metavar="KEY=VALUE", nargs="+", action="extend", default=[],
                       help="override config values")
    state.add_argument("--saved-with", metavar="PATH",
                       help="for a checkpoint without parameter names (plain torch, mmcv/mmengine): the config "
                            "it was saved with, which decides its parameter order (default: --config)")
    state.add_argument("--format", "-f", choices=("table", "json"), default="table", help="output format")
    state.set_defaults(handler=_cmd_state)

    lister = sub.add_parser("list", parents=[common],
                            help="list registered optimizers, constructors, schedulers, models",
                            description="List what a registry holds, with the source module and a description.")
    lister.add_argument("what", choices=tuple(_REGISTRIES), help="which registry")
    lister.add_argument("--format", "-f", choices=("table", "json"), default="table", help="output format")
    lister.set_defaults(handler=_cmd_list)

    demo = sub.add_parser("demo", parents=[common], help="show a plan, then train briefly on synthetic data",
                          description="Show the plan of a config, train the model for a few steps on a synthetic, "
                                      "learnable task with the optimizer it builds, and report the loss and "
                                      "the lr of each group.")
    add_config_args(demo, required=False)
    demo.add_argument("--steps", type=int, default=100, help="training steps (default: 100)")
    demo.add_argument("--batch-size", type=int, default=32, help="examples per step (default: 32)")
    demo.add_argument("--seed", type=int, default=0, help="seed for the model and the data (default: 0)")
    demo.add_argument("--input-shape", metavar="C,H,W",
                      help="shape of one example, for models that do not declare it (e.g. 3,224,224)")
    demo.set_defaults(handler=_cmd_demo)
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
        code, message = _explain(e, getattr(args, "config", None))
        print(f"paramwise: error: {message}", file=sys.stderr)
        return code


# ----------------------------------------------------------------------------- errors


def _problem_lines(e: ConfigError) -> list[str]:
    return [str(p) for p in e.problems]


def _explain(e: BaseException, config: str | None) -> tuple[int, str]:
    """The exit code and the message for an error that ended a command."""
    from paramwise.models import ModelSpecError

    if isinstance(e, (UsageError, ModelSpecError)):
        return EXIT_USAGE, str(e)
    if isinstance(e, ConfigError):
        title = e.title
        if config and config not in title:
            title += f" ({config})"
        return EXIT_PROBLEMS, "\n".join([f"{title}:", *(f"  - {line}" for line in _problem_lines(e))])
    if isinstance(e, ParamwiseError):  # config files that do not parse, missing optional packages, ...
        return EXIT_PROBLEMS, str(e)
    return EXIT_PROBLEMS, f"unexpected {type(e).__name__}: {e} (run again with --traceback to see where)"


# ----------------------------------------------------------------------------- shared steps


def _missing_file(path: str) -> UsageError:
    folder = Path(path).parent
    hint = ""
    if folder.is_dir():
        from paramwise.config.config import SUPPORTED_SUFFIXES

        files = [p.name for p in folder.iterdir() if p.suffix.lower() in SUPPORTED_SUFFIXES]
        hint = did_you_mean(Path(path).name, files)
    elif str(folder) not in ("", "."):
        hint = f" (the folder {str(folder)!r} does not exist either)"
    return UsageError(f"config file {path!r} not found.{hint}")


def _load_optimizer_cfg(path: str, overrides: Sequence[str]) -> Any:
    """Read CONFIG, apply --cfg-options, and return its ``OptimizerConfig`` (optim_wrapper wins)."""
    return _optimizer_of(_load_config(path, overrides), path)


def _optimizer_of(cfg: Any, path: str) -> Any:
    from paramwise.config.sections import optimizer_config

    try:
        return optimizer_config(cfg.to_dict())
    except ConfigError as e:
        raise ConfigError(e.problems, title=f"{e.title} in {path}") from e


def _load_config(path: str, overrides: Sequence[str]) -> Any:
    """Read CONFIG and apply --cfg-options: the whole config."""
    if os.path.isdir(path):
        raise UsageError(f"{path!r} is a folder; CONFIG is a config file (.py/.yaml/.json/.toml)")
    if not os.path.isfile(path):
        raise _missing_file(path)
    from paramwise.config.config import Config, parse_cfg_options

    cfg = Config.fromfile(path)
    if overrides:
        try:
            parsed = parse_cfg_options(overrides)
        except ConfigError as e:
            raise UsageError("bad --cfg-options: " + "; ".join(_problem_lines(e))) from e
        for key in parsed:
            top = key.split(".")[0]
            if top not in cfg:
                raise UsageError(
                    f"--cfg-options {key}=...: {path} has no top-level key {top!r}.{did_you_mean(top, cfg)} "
                    f"Its keys: {', '.join(sorted(map(str, cfg))) or '(none)'}"
                )
        # new keys are fine below an existing top-level key (e.g. a paramwise_cfg option the file
        # does not set); a misspelt option is then caught by the optimizer config check, with a did-you-mean
        try:
            cfg.merge_from_dict(parsed, allow_new_keys=True)
        except ConfigError as e:
            raise UsageError("bad --cfg-options: " + "; ".join(_problem_lines(e))) from e
    return cfg


def _load_model(spec: str, model_args: str | None) -> Any:
    kwargs: Any = {}
    if model_args:
        try:
            kwargs = json.loads(model_args)
        except json.JSONDecodeError as e:
            raise UsageError(f"--model-args is not valid JSON ({e.msg} at column {e.colno}): {model_args!r}") from e
        if not isinstance(kwargs, dict):
            raise UsageError(f"--model-args must be a JSON object of keyword arguments, got {model_args!r}")
    from paramwise.models import load_model

    return load_model(spec, kwargs)


def _quietly(fn: Any, *args: Any) -> Any:
    """Call ``fn`` with paramwise's warnings silenced: the CLI shows them itself, once."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ParamwiseWarning)
        return fn(*args)


def _plan_and_build(model: Any, loaded: Any, *, build: bool) -> tuple[Any, Any]:
    """The plan and (with ``build``) the optimizer, from one constructor: the config is checked once.

    Problems and warnings name their place in the whole config (inside optim_wrapper where it came from).
    """
    from paramwise.build.constructors import optimizer_constructor
    from paramwise.wrapper.optim_wrapper import check_wrapper_config

    # the wrapper's keys (clip_grad, accumulative_counts, dtype, ...) are checked with the optimizer's,
    # so one run lists every problem of the optim_wrapper
    wrapper_problems = check_wrapper_config(loaded.wrapper) if loaded.source == "optim_wrapper" else []
    try:
        constructor = optimizer_constructor(loaded.optimizer)
        plan = _quietly(constructor.plan, model)
        optimizer = _quietly(constructor.build, plan) if build else None
    except ConfigError as e:
        problems = [*wrapper_problems, *(dataclasses.replace(p, path=loaded.locate(p.path)) for p in e.problems)]
        raise ConfigError(problems, title=e.title) from e
    if wrapper_problems:
        raise ConfigError(wrapper_problems, title="invalid optim_wrapper")
    found = (*loaded.warnings, *(dataclasses.replace(w, path=loaded.locate(w.path)) for w in plan.warnings))
    notes = tuple(dataclasses.replace(n, path=loaded.locate(n.path)) for n in plan.notes)
    plan = dataclasses.replace(plan, warnings=found, notes=notes)
    return plan, optimizer


def _plan(args: argparse.Namespace) -> Any:
    loaded = _load_optimizer_cfg(args.config, args.cfg_options)
    model = _load_model(args.model, args.model_args)
    return _plan_and_build(model, loaded, build=False)[0]


def _console(**kwargs: Any) -> Any:
    """A rich Console, or None when rich is not installed (callers then print plain text)."""
    try:
        from rich.console import Console
    except ImportError:
        return None
    return Console(**kwargs)


def _print_rich(console: Any, renderable: Any, *, page: bool = False) -> None:
    """Print ``renderable``: as wide as it needs into a pipe or file; paged when taller than the terminal."""
    if not console.is_terminal:
        from rich.measure import Measurement

        # rich would wrap to 80 columns; a pipe or file gets whole lines instead
        options = console.options.update_width(100_000)
        console.width = max(console.width, Measurement.get(console, options, renderable).maximum)
        console.print(renderable)
        return
    if page:
        with console.capture() as captured:
            console.print(renderable)
        text = captured.get()
        if text.count("\n") > console.height:
            os.environ.setdefault("LESS", "-R")  # pydoc runs plain `less`, which would show colours as escapes
            with console.pager(styles=True):
                console.print(renderable)
        else:
            console.file.write(text)
            console.file.flush()
        return
    console.print(renderable)


# ----------------------------------------------------------------------------- commands


def _cmd_show(args: argparse.Namespace) -> int:
    plan = _plan(args)
    from paramwise import render

    options = {"group_by": args.group_by, "name_filter": args.filter}
    if args.format == "json":
        print(json.dumps(render.plan_json(plan, **options), indent=2))
    elif args.format == "csv":
        sys.stdout.write(render.plan_csv(plan, **options))
    else:
        console = _console()
        if console is None:
            print(render.plan_text(plan, **options, explain=args.explain))
        else:
            _print_rich(console, render.plan_table(plan, **options, explain=args.explain), page=True)
    if args.filter and not any(args.filter in e.name for e in plan.entries):
        names = {part for e in plan.entries for part in e.name.split(".")}
        print(f"paramwise: note: no parameter name contains {args.filter!r}.{did_you_mean(args.filter, names)}",
              file=sys.stderr)
    return EXIT_OK


def _cmd_check(args: argparse.Namespace) -> int:
    subject = f"{args.config} with model {args.model}"
    from paramwise.models import ModelSpecError

    try:
        loaded = _load_optimizer_cfg(args.config, args.cfg_options)
        model = _load_model(args.model, args.model_args)
        # building catches what only the optimizer itself checks (betas out of range, ...)
        plan, _ = _plan_and_build(model, loaded, build=True)
    except ConfigError as e:
        problems, title = _problem_lines(e), e.title
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


def _print_audit(console: Any, findings: Sequence[Any]) -> None:
    """The audit's findings: a rich table when ``console`` is given, plain lines otherwise."""
    from paramwise.suggestions import short_list

    warned = sum(f.level == "warning" for f in findings)
    title = f"audit: {plural(warned, 'warning')}, {plural(len(findings) - warned, 'note')}"
    if console is None:
        print(title)
        for f in findings:
            print(f"  {f}" + (f"\n      {short_list(f.names)}" if f.names else ""))
        return
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, show_header=False)
    table.add_column("level", no_wrap=True)
    table.add_column("finding")
    for f in findings:
        level = "[yellow]warning[/]" if f.level == "warning" else "[dim]note[/]"
        names = f"\n[dim]{escape(short_list(f.names))}[/]" if f.names else ""
        table.add_row(f"{level} [bold]{f.kind}[/]", escape(f.message) + names)
    _print_rich(console, table)


def _cmd_audit(args: argparse.Namespace) -> int:
    from paramwise.plan.audit import audit_plan

    loaded = _load_optimizer_cfg(args.config, args.cfg_options)
    model = _load_model(args.model, args.model_args)
    plan = _plan_and_build(model, loaded, build=False)[0]
    norm_types = (loaded.optimizer.get("paramwise_cfg") or {}).get("norm_types") or ()
    findings = audit_plan(plan, model, norm_types=[norm_types] if isinstance(norm_types, (str, type)) else norm_types)
    if args.format == "json":
        from paramwise.render import json_safe

        print(json.dumps(json_safe({"findings": [dataclasses.asdict(f) for f in findings]}), indent=2))
    else:
        _print_audit(_console(), findings)
    failed = args.strict and any(f.level == "warning" for f in findings)
    return EXIT_PROBLEMS if failed else EXIT_OK


def _schedule_of(cfg: Any, optimizer: Any, iters: int | None, epoch_length: int | None) -> Any:
    """The config's param_scheduler built on ``optimizer``, or None when the config has none."""
    from paramwise.schedule.schedule import build_scheduler

    if "param_scheduler" not in cfg:
        return None
    return build_scheduler(optimizer, cfg.to_dict()["param_scheduler"], epoch_length=epoch_length,
                           max_iters=iters)


def _print_schedule(console: Any, curves: Any) -> None:
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
    from rich import box
    from rich.table import Table

    table = Table(title=f"{curves.param} per group at the steps where it changes", title_justify="left",
                  box=box.SIMPLE_HEAD, pad_edge=False)
    for name in header:
        table.add_column(name, justify="right", overflow="fold")
    for row in rows:
        table.add_row(*row)
    _print_rich(console, table)


def _cmd_schedule(args: argparse.Namespace) -> int:
    from paramwise.schedule.report import plot_schedule, schedule_curves

    if args.iters < 1:
        raise UsageError("--iters must be at least 1")
    cfg = _load_config(args.config, args.cfg_options)
    loaded = _optimizer_of(cfg, args.config)
    model = _load_model(args.model, args.model_args)
    _, optimizer = _plan_and_build(model, loaded, build=True)
    schedule = _schedule_of(cfg, optimizer, args.iters, args.epoch_length)
    if schedule is None:
        hint = " mmcv's lr_config is not read: write it as param_scheduler." if "lr_config" in cfg else ""
        raise ConfigError([Problem(("param_scheduler",), "is missing: the config has no schedule to show, e.g. "
                                                          "param_scheduler=[dict(type='LinearLR', start_factor=0.1, "
                                                          f"by_epoch=False, begin=0, end=500), ...].{hint}",
                                    kind="missing")], title=f"no schedule in {args.config}")
    curves = schedule_curves(schedule, args.iters, args.param)
    for note in getattr(schedule, "notes", ()):
        print(f"note: {note}", file=sys.stderr)
    if args.format == "json":
        data = {"param": curves.param, "labels": list(curves.labels),
                "milestones": [{"step": step, "values": list(values)} for step, values in curves.rows()]}
        print(json.dumps(data, indent=2))
    else:
        _print_schedule(_console(), curves)
    if args.plot:
        plot_schedule(curves, args.plot, title=f"{curves.param}: {os.path.basename(args.config)}")
        print(f"plot written to {args.plot}", file=sys.stderr)
    return EXIT_OK


def _cmd_state(args: argparse.Namespace) -> int:
    from paramwise.build.naming import name_optimizer_state
    from paramwise.state.by_name import map_state_by_name
    from paramwise.state.files import describe_state, find_optimizer_state, read_checkpoint

    if bool(args.config) != bool(args.model):
        raise UsageError("--config and --model go together: the optimizer to load into is built from both")
    saved, where = find_optimizer_state(read_checkpoint(args.checkpoint, trust=args.trust), args.key)
    groups = describe_state(saved)
    report = None
    if args.config:
        loaded = _load_optimizer_cfg(args.config, args.cfg_options)
        model = _load_model(args.model, args.model_args)
        _, optimizer = _plan_and_build(model, loaded, build=True)
        if any(g["names"] is None for g in groups):
            old_cfg = _load_optimizer_cfg(args.saved_with, []).optimizer if args.saved_with else loaded.optimizer
            saved = _quietly(name_optimizer_state, saved, model, old_cfg)
        report = map_state_by_name(optimizer, saved)[1]
    if args.format == "json":
        from paramwise.render import json_safe

        data: dict[str, Any] = {"key": where, "groups": groups}
        if report is not None:
            data["load"] = dataclasses.asdict(report)
        print(json.dumps(json_safe(data), indent=2))
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
        print(f"\nloading it under {args.config} with model {args.model}:")
        for line in report.lines() or [str(report)]:
            print(f"  - {line}")
    return EXIT_OK


def _describe(obj: Any) -> str:
    doc = (getattr(obj, "__doc__", None) or "").strip()
    return doc.splitlines()[0].strip() if doc else ""


def _cmd_list(args: argparse.Namespace) -> int:
    import importlib

    module, attr = _REGISTRIES[args.what]
    registry = getattr(importlib.import_module(module), attr)
    rows = [
        {"name": name, "module": getattr(obj, "__module__", "?"), "description": _describe(obj)}
        for name, obj in sorted(registry.module_dict.items())
    ]
    if args.format == "json":
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    console = _console()
    if console is None:
        widths = [max([len(h), *(len(r[h]) for r in rows)]) for h in ("name", "module")]
        for r in rows:
            print(f"{r['name']:<{widths[0]}}  {r['module']:<{widths[1]}}  {r['description']}".rstrip())
        return EXIT_OK
    from rich import box
    from rich.table import Table

    table = Table(title=f"{args.what}: {len(rows)} in the {registry.name} registry", title_justify="left",
                  box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("name", style="bold", overflow="fold")
    table.add_column("module", style="dim", overflow="fold")
    table.add_column("description")
    for r in rows:
        table.add_row(r["name"], r["module"], r["description"])
    _print_rich(console, table, page=True)
    return EXIT_OK


def _input_shape(text: str | None, model: Any) -> tuple[int, ...]:
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


def _cmd_demo(args: argparse.Namespace) -> int:
    if args.steps < 1 or args.batch_size < 1:
        raise UsageError("--steps and --batch-size must be at least 1")
    import torch

    from paramwise import render
    from paramwise.demo import run as demo
    from paramwise.plan.audit import audit_plan
    from paramwise.schedule.report import schedule_curves

    config = args.config or str(demo.DEFAULT_CONFIG)
    spec = args.model or demo.DEFAULT_MODEL
    whole = _load_config(config, args.cfg_options)
    loaded = _optimizer_of(whole, config)
    torch.manual_seed(args.seed)
    model = _load_model(spec, args.model_args)
    shape = _input_shape(args.input_shape, model)
    classes = demo.num_classes_of(model, shape)
    plan, optimizer = _plan_and_build(model, loaded, build=True)
    findings = audit_plan(plan, model)
    schedule = _schedule_of(whole, optimizer, args.steps, None)
    from paramwise.wrapper.optim_wrapper import wrap_optimizer

    wrapper = wrap_optimizer(optimizer, loaded.wrapper)  # clipping, accumulation, mixed precision
    task = demo.SyntheticTask(shape, classes, seed=args.seed)
    console = _console()
    what = (f"training {spec} for {plural(args.steps, 'step')} on synthetic data "
            f"({classes} classes, inputs {'x'.join(map(str, shape))}, batch {args.batch_size}, seed {args.seed})")
    if console is None:
        print(f"config: {config}\n")
        print(render.plan_text(plan))
        print()
        _print_audit(None, findings)
        if schedule is not None:
            print()
            _print_schedule(None, schedule_curves(schedule, args.steps))
        print(f"\n{what}")
        result = demo.train_with_progress(model, optimizer, task, args.steps, args.batch_size, schedule=schedule,
                                          wrapper=wrapper)
        print(demo.report_text(result))
        print(demo.resume_line(model, optimizer, loaded.optimizer))
    else:
        console.print(f"config: {config}", highlight=False)
        _print_rich(console, render.plan_table(plan))
        _print_audit(console, findings)
        if schedule is not None:
            _print_schedule(console, schedule_curves(schedule, args.steps))
        console.print(what, highlight=False)
        result = demo.train_with_progress(model, optimizer, task, args.steps, args.batch_size, console,
                                          schedule=schedule, wrapper=wrapper)
        _print_rich(console, demo.report_table(result))
        console.print(demo.resume_line(model, optimizer, loaded.optimizer), highlight=False)
    return EXIT_OK
