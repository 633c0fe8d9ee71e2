"""What every ``paramwise`` command shares: its arguments, loading, errors and printing.

Owns: the exit codes; adding a command with ``--traceback`` and the config, model and format
arguments; reading CONFIG with ``--cfg-options``, loading ``--model`` with ``--model-args``, planning
and building with every problem placed in the whole config; turning an error into an exit code and
one message; the rich console, its tables, and plain-text fallbacks.

May import: anything in paramwise (the CLI is the top layer; nothing in paramwise imports it), but
only the standard library and the light base modules at import time: torch, rich and the planning
modules load inside the functions, so ``paramwise --help`` stays fast.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from paramwise.errors import ConfigError, ParamwiseError, ParamwiseWarning, UsageError
from paramwise.suggestions import did_you_mean

__all__ = [
    "EXIT_OK",
    "EXIT_PROBLEMS",
    "EXIT_USAGE",
    "MODEL_HELP",
    "Planned",
    "TRACEBACK_HELP",
    "add_command",
    "add_config_args",
    "add_format_arg",
    "add_model_args",
    "explain",
    "load_config",
    "load_model",
    "optimizer_of",
    "plan_and_build",
    "plan_args",
    "print_json",
    "print_rich",
    "problem_lines",
    "quietly",
    "rich_console",
    "rich_table",
]

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2

if TYPE_CHECKING:
    from typing import TypeAlias

    # what `add_subparsers` returns: each command module adds its parser to it
    Subparsers: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]

MODEL_HELP = "the model: a built-in name (`paramwise list models`), package.module:callable, or timm:<name>"
TRACEBACK_HELP = "show the full traceback on errors"


# ----------------------------------------------------------------------------- arguments


def add_command(subparsers: Subparsers, name: str, handler: Callable[[argparse.Namespace], int], *,
                help: str, description: str) -> argparse.ArgumentParser:
    """Add the subcommand ``name``, run by ``handler``, with the ``--traceback`` every command takes."""
    parser: argparse.ArgumentParser = subparsers.add_parser(name, help=help, description=description)
    # SUPPRESS: a subcommand's default must not overwrite --traceback given before the subcommand
    parser.add_argument("--traceback", action="store_true", default=argparse.SUPPRESS, help=TRACEBACK_HELP)
    parser.set_defaults(handler=handler)
    return parser


def add_config_args(parser: argparse.ArgumentParser, *, required: bool) -> None:
    """CONFIG and --model (both required), or --config and --model with defaults; then the model's options."""
    if required:
        parser.add_argument("config", metavar="CONFIG",
                            help="config file (.py/.yaml/.json/.toml) with optim_wrapper=dict(optimizer=...) "
                                 "or an 'optimizer' key")
        add_model_args(parser, model_help=MODEL_HELP, required=True)
    else:
        parser.add_argument("--config", metavar="PATH",
                            help="config file (default: the demo config shipped in the package)")
        add_model_args(parser, model_help=f"{MODEL_HELP} (default: the demo's model, tiny_convnet with GroupNorm)")


def add_model_args(parser: argparse.ArgumentParser, *, model_help: str = MODEL_HELP, required: bool = False,
                   model_args_help: str = 'keyword arguments for the model as a JSON object, '
                                          'e.g. \'{"num_classes": 5}\'',
                   cfg_options_help: str = "override config values, e.g. optimizer.lr=0.01 "
                                           "optimizer.paramwise_cfg.norm_decay_mult=0") -> None:
    """--model SPEC, --model-args JSON and --cfg-options KEY=VALUE..."""
    parser.add_argument("--model", "-m", metavar="SPEC", required=required, help=model_help)
    parser.add_argument("--model-args", metavar="JSON", help=model_args_help)
    parser.add_argument("--cfg-options", metavar="KEY=VALUE", nargs="+", action="extend", default=[],
                        help=cfg_options_help)


def add_format_arg(parser: argparse.ArgumentParser, *formats: str) -> None:
    """--format / -f, one of ``formats``; ``table`` is the default."""
    parser.add_argument("--format", "-f", choices=("table", *formats), default="table", help="output format")


# ----------------------------------------------------------------------------- errors


def problem_lines(e: ConfigError) -> list[str]:
    """One line per problem of ``e``, each naming its place in the config."""
    return [str(p) for p in e.problems]


def explain(e: BaseException, config: str | None) -> tuple[int, str]:
    """The exit code and the message for an error that ended a command."""
    from paramwise.models import ModelSpecError

    if isinstance(e, (UsageError, ModelSpecError)):
        return EXIT_USAGE, str(e)
    if isinstance(e, ConfigError):
        title = e.title
        if config and config not in title:
            title += f" ({config})"
        return EXIT_PROBLEMS, "\n".join([f"{title}:", *(f"  - {line}" for line in problem_lines(e))])
    if isinstance(e, ParamwiseError):  # config files that do not parse, missing optional packages, ...
        return EXIT_PROBLEMS, str(e)
    return EXIT_PROBLEMS, f"unexpected {type(e).__name__}: {e} (run again with --traceback to see where)"


# ----------------------------------------------------------------------------- loading


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


def load_config(path: str, overrides: Sequence[str]) -> Any:
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
            raise UsageError("bad --cfg-options: " + "; ".join(problem_lines(e))) from e
        for key in parsed:
            top = key.split(".")[0]
            if top not in cfg:
                raise UsageError(
                    f"--cfg-options {key}=...: {path} has no top-level key {top!r}.{did_you_mean(top, cfg)} "
                    f"Its keys: {', '.join(sorted(map(str, cfg))) or '(none)'}"
                )
        # new keys are fine below an existing top-level key (e.g. a paramwise_cfg option the file does not
        # set), as in Config.merge_from_dict's default; a misspelt option is then caught by the optimizer
        # config check, with a did-you-mean
        try:
            cfg.merge_from_dict(parsed)
        except ConfigError as e:
            raise UsageError("bad --cfg-options: " + "; ".join(problem_lines(e))) from e
    return cfg


def optimizer_of(cfg: Any, path: str) -> Any:
    """The ``OptimizerConfig`` of a whole config (optim_wrapper wins); its problems name ``path``."""
    from paramwise.config.sections import optimizer_config

    try:
        return optimizer_config(cfg.to_dict())
    except ConfigError as e:
        raise ConfigError(e.problems, title=f"{e.title} in {path}") from e


def load_model(spec: str, model_args: str | None) -> Any:
    """The model named by --model, called with --model-args."""
    kwargs: Any = {}
    if model_args:
        try:
            kwargs = json.loads(model_args)
        except json.JSONDecodeError as e:
            raise UsageError(f"--model-args is not valid JSON ({e.msg} at column {e.colno}): {model_args!r}") from e
        if not isinstance(kwargs, dict):
            raise UsageError(f"--model-args must be a JSON object of keyword arguments, got {model_args!r}")
    from paramwise.models import load_model as load

    return load(spec, kwargs)


def quietly(fn: Any, *args: Any) -> Any:
    """Call ``fn`` with paramwise's warnings silenced: the CLI shows them itself, once."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ParamwiseWarning)
        return fn(*args)


def plan_and_build(model: Any, loaded: Any, *, build: bool) -> tuple[Any, Any]:
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
        plan = quietly(constructor.plan, model)
        optimizer = quietly(constructor.build, plan) if build else None
    except ConfigError as e:
        problems = [*wrapper_problems, *(dataclasses.replace(p, path=loaded.locate(p.path)) for p in e.problems)]
        raise ConfigError(problems, title=e.title) from e
    if wrapper_problems:
        raise ConfigError(wrapper_problems, title="invalid optim_wrapper")
    found = (*loaded.warnings, *(dataclasses.replace(w, path=loaded.locate(w.path)) for w in plan.warnings))
    notes = tuple(dataclasses.replace(n, path=loaded.locate(n.path)) for n in plan.notes)
    plan = dataclasses.replace(plan, warnings=found, notes=notes)
    return plan, optimizer


@dataclasses.dataclass(frozen=True)
class Planned:
    """What a command's CONFIG, --cfg-options, --model and --model-args come to."""

    cfg: Any  # the whole config, --cfg-options applied
    loaded: Any  # its OptimizerConfig
    model: Any
    plan: Any
    optimizer: Any  # None unless built


def plan_args(args: argparse.Namespace, *, build: bool) -> Planned:
    """Read the config, load the model, plan (and with ``build``, build the optimizer), in that order."""
    cfg = load_config(args.config, args.cfg_options)
    loaded = optimizer_of(cfg, args.config)
    model = load_model(args.model, args.model_args)
    plan, optimizer = plan_and_build(model, loaded, build=build)
    return Planned(cfg, loaded, model, plan, optimizer)


# ----------------------------------------------------------------------------- printing


def audit_findings(plan: Any, model: Any, optimizer_cfg: Any) -> list[Any]:
    """The audit of ``plan`` with the config's own norm types and dialect (its ``paramwise_cfg``)."""
    from paramwise.plan.audit import audit_plan

    paramwise_cfg = optimizer_cfg.get("paramwise_cfg") or {}
    norm_types = paramwise_cfg.get("norm_types") or ()
    norm_types = [norm_types] if isinstance(norm_types, (str, type)) else norm_types
    return audit_plan(plan, model, norm_types=norm_types, paramwise_cfg=paramwise_cfg)


def print_json(data: Any) -> None:
    """``data`` as indented JSON on stdout."""
    print(json.dumps(data, indent=2))


def rich_console(**kwargs: Any) -> Any:
    """A rich Console, or None when rich is not installed (callers then print plain text)."""
    try:
        from rich.console import Console
    except ImportError:
        return None
    return Console(**kwargs)


def rich_table(title: str, **options: Any) -> Any:
    """A rich Table in the CLI's one style: title on the left, a rule under the header, no outer padding."""
    from rich import box
    from rich.table import Table

    return Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, **options)


def print_rich(console: Any, renderable: Any, *, page: bool = False) -> None:
    """Print ``renderable``: as wide as it needs into a pipe or file; paged when taller than the terminal."""
    if not console.is_terminal:
        from rich.measure import Measurement

        # rich would wrap to 80 columns; a pipe or file gets whole lines instead
        options = console.options.update_width(100_000)
        console.width = max(console.width, Measurement.get(console, options, renderable).maximum)
        from paramwise.render import unpadded

        console.print(unpadded(renderable))  # rows are padded to the table's width: not in a file
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
