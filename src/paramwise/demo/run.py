"""``paramwise demo``: a short, seeded training run that shows a config's parameter groups at work.

The task is synthetic and learnable: each class has a fixed random template and an example is its
template plus noise, so a few hundred steps on a CPU bring the loss well down. Any classifier that
takes one tensor and returns ``(batch, classes)`` logits can be trained, given its input shape.
``rich`` is used for the progress bar and tables when it is installed, plain lines otherwise.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from paramwise.errors import ParamwiseError
from paramwise.render import plural, value_text

__all__ = [
    "DEFAULT_CONFIG",
    "DEFAULT_MODEL",
    "DemoResult",
    "SyntheticTask",
    "input_shape_of",
    "num_classes_of",
    "report_table",
    "report_text",
    "train",
    "train_with_progress",
]

#: The config the demo runs unless given another; it ships inside the package.
DEFAULT_CONFIG = Path(__file__).parent / "configs" / "demo.py"
#: The model the demo trains unless given another: ``tiny_convnet`` with GroupNorm (see ``demo.model``).
DEFAULT_MODEL = "paramwise.demo.model:demo_convnet"


class SyntheticTask:
    """Random-but-learnable classification: class templates plus Gaussian noise, from one seed."""

    def __init__(self, input_shape: Sequence[int], num_classes: int, seed: int = 0, noise: float = 1.0) -> None:
        self.generator = torch.Generator().manual_seed(seed)
        self.num_classes = num_classes
        self.noise = noise
        self.templates = torch.randn(num_classes, *input_shape, generator=self.generator)

    def batch(self, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``size`` examples and their labels."""
        labels = torch.randint(self.num_classes, (size,), generator=self.generator)
        noise = torch.randn(size, *self.templates.shape[1:], generator=self.generator)
        return self.templates[labels] + self.noise * noise, labels


@dataclass(frozen=True)
class DemoResult:
    """What a demo run did: the loss of every step, each group's final values, the time taken."""

    losses: tuple[float, ...]
    groups: tuple[Mapping[str, Any], ...]  # index, params, names, lr, weight_decay
    seconds: float
    optimizer_steps: int | None = None  # steps the wrapper took (fewer than iterations when accumulating)
    skipped_steps: int = 0  # steps the wrapper skipped (inf/nan gradients under float16)
    grad_norm: Any = None  # the last gradient norm the wrapper clipped (a float, or per group)
    accumulative_counts: int = 1  # iterations per optimizer step
    clips_norm: bool = False  # whether the wrapper clips by norm (only then is there a norm to report)

    def _window(self) -> int:
        return max(1, min(10, len(self.losses) // 10))

    @property
    def start_loss(self) -> float:
        """Mean loss of the first steps (up to 10)."""
        return sum(self.losses[: self._window()]) / self._window()

    @property
    def end_loss(self) -> float:
        """Mean loss of the last steps (up to 10)."""
        return sum(self.losses[-self._window():]) / self._window()


def input_shape_of(model: nn.Module) -> tuple[int, ...] | None:
    """One example's shape, from ``model.input_shape`` or timm's ``pretrained_cfg['input_size']``."""
    shape = getattr(model, "input_shape", None)
    if shape is None:
        cfg = getattr(model, "pretrained_cfg", None) or getattr(model, "default_cfg", None)
        shape = cfg.get("input_size") if isinstance(cfg, Mapping) else None
    return tuple(int(s) for s in shape) if shape else None


def num_classes_of(model: nn.Module, input_shape: Sequence[int]) -> int:
    """The number of logits ``model`` returns, from one forward pass on two examples."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(torch.zeros(2, *input_shape))
    except Exception as e:
        raise ParamwiseError(
            f"the demo could not run the model on inputs of shape {tuple(input_shape)} (batch first): "
            f"{type(e).__name__}: {e}. Pass the shape of one example with --input-shape, e.g. 3,224,224"
        ) from e
    finally:
        model.train(was_training)
    if not isinstance(out, torch.Tensor) or out.ndim != 2:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ParamwiseError(f"the demo trains classifiers that return (batch, classes) logits; the model gave {got}")
    return int(out.shape[1])


def train(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    task: SyntheticTask,
    steps: int,
    batch_size: int = 32,
    on_step: Callable[[int, float], None] | None = None,
    threads: int | None = 1,
    schedule: Any = None,
    wrapper: Any = None,
) -> DemoResult:
    """Train ``model`` on ``task`` for ``steps`` steps with cross-entropy; ``on_step(step, loss)`` after each.

    With ``wrapper`` (a paramwise ``OptimWrapper`` around ``optimizer``) each iteration goes through
    ``update_params``: its clipping, accumulation and mixed precision apply. ``schedule`` is stepped
    once per iteration.

    ``threads`` caps torch's CPU threads for the run (None: leave as is). One is the default: tiny
    models gain nothing from more, and on a busy machine OpenMP threads waiting on each other
    made steps a hundred times slower (6 ms -> 600 ms on two loaded cores).
    """
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    model.train()
    losses = []
    started = time.perf_counter()
    if wrapper is not None:
        wrapper.initialize_count_status(model, 0, steps)  # the last accumulation window at its real size
    try:
        for step in range(1, steps + 1):
            inputs, labels = task.batch(batch_size)
            if wrapper is not None:
                with wrapper.optim_context(model):
                    loss = F.cross_entropy(model(inputs), labels)
                wrapper.update_params(loss)
            else:
                loss = F.cross_entropy(model(inputs), labels)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            if schedule is not None:
                schedule.step()  # once per iteration, after the optimizer, as torch and mmengine do
            losses.append(float(loss.item()))
            if on_step is not None:
                on_step(step, losses[-1])
    finally:
        torch.set_num_threads(previous)
    seconds = time.perf_counter() - started
    groups = tuple(
        {
            "group": i,
            "params": len(group["params"]),
            "names": list(group.get("param_names", [])),
            "lr": group.get("lr"),
            "weight_decay": group.get("weight_decay"),
        }
        for i, group in enumerate(optimizer.param_groups)
    )
    if wrapper is None:
        return DemoResult(tuple(losses), groups, seconds)
    policy = getattr(wrapper, "clip_policy", None)
    return DemoResult(tuple(losses), groups, seconds, wrapper.step_count, wrapper.skipped_steps,
                      wrapper.last_grad_norm, wrapper.accumulative_counts,
                      policy is not None and policy.kind == "norm")


def train_with_progress(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    task: SyntheticTask,
    steps: int,
    batch_size: int = 32,
    console: Any = None,
    schedule: Any = None,
    wrapper: Any = None,
) -> DemoResult:
    """``train`` with a progress bar on ``console`` (a rich Console), or plain lines when it is None."""
    if console is None:
        every = max(1, steps // 10)

        def report(step: int, loss: float) -> None:
            if step % every == 0 or step == steps:
                print(f"step {step}/{steps}  loss {loss:.4f}", flush=True)

        return train(model, optimizer, task, steps, batch_size, report, schedule=schedule, wrapper=wrapper)

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("training"), BarColumn(), MofNCompleteColumn(), TextColumn("loss {task.fields[loss]}"),
               TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        bar = progress.add_task("train", total=steps, loss="-")
        return train(model, optimizer, task, steps, batch_size,
                     lambda step, loss: progress.update(bar, completed=step, loss=f"{loss:.4f}"), schedule=schedule,
                     wrapper=wrapper)


def _names(names: Sequence[str], at_most: int = 3) -> str:
    shown = ", ".join(names[:at_most])
    return shown + (f", ... (+{len(names) - at_most})" if len(names) > at_most else "")


def _loss_line(result: DemoResult) -> str:
    window = result._window()
    steps = len(result.losses)
    line = (
        f"trained {plural(steps, 'step')} in {result.seconds:.1f} s: "
        f"loss {result.start_loss:.4f} -> {result.end_loss:.4f} (mean of the first and last {plural(window, 'step')})"
    )
    wrapper = _wrapper_line(result)
    return f"{line}\n{wrapper}" if wrapper else line


def _wrapper_line(result: DemoResult) -> str:
    """What the wrapper did, naming only what applies: accumulation, skipped steps, the clipped norm."""
    if result.optimizer_steps is None:
        return ""
    said = []
    if result.accumulative_counts > 1:
        said.append(f"{plural(result.optimizer_steps, 'optimizer step')} for {plural(len(result.losses), 'iteration')} "
                    f"(accumulation over {result.accumulative_counts})")
    if result.skipped_steps:
        said.append(f"{plural(result.skipped_steps, 'step')} skipped (inf or nan gradients)")
    norm = result.grad_norm
    if result.clips_norm and norm is not None:
        norm_text = (value_text(norm) if not isinstance(norm, Mapping)
                     else ", ".join(f"{k} {value_text(v)}" for k, v in norm.items()))
        said.append(f"last gradient norm before clipping {norm_text}")
    return f"wrapper: {'; '.join(said)}" if said else ""


def report_text(result: DemoResult) -> str:
    """The run's outcome as plain lines: loss at the start and end, then lr and decay per group."""
    lines = [_loss_line(result), "lr per group:"]
    for g in result.groups:
        lines.append(
            f"  group {g['group']}: lr={value_text(g['lr'])} weight_decay={value_text(g['weight_decay'])} "
            f"({plural(g['params'], 'param')}: {_names(g['names'])})"
        )
    return "\n".join(lines)


def report_table(result: DemoResult) -> Any:
    """The run's outcome as a rich renderable."""
    from rich import box
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    table = Table(title="lr per group", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for name, justify in (("group", "right"), ("params", "right"), ("lr", "right"),
                          ("weight_decay", "right"), ("parameters", "left")):
        # fold rather than cut: on a narrow terminal every name stays readable, on more lines
        table.add_column(name, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for g in result.groups:
        table.add_row(str(g["group"]), str(g["params"]), value_text(g["lr"]), value_text(g["weight_decay"]),
                      _names(g["names"]))
    style = "green" if result.end_loss < result.start_loss else "red"
    return Group(Text(_loss_line(result), style=style), table)


def resume_line(model: nn.Module, optimizer: torch.optim.Optimizer, optimizer_cfg: Mapping[str, Any]) -> str:
    """Save the trained optimizer's state, rebuild it with another grouping, load by name, and say how it went.

    The rebuilt optimizer has one group per parameter (mmengine's layout), so torch's positional load
    could not even start; paramwise moves each parameter's state by its name.
    """
    from paramwise.build.constructors import build_optimizer
    from paramwise.state.by_name import load_optimizer_state
    from paramwise.suggestions import plural

    saved = optimizer.state_dict()
    pw = dict(optimizer_cfg.get("paramwise_cfg") or {}, group_by="param")
    rebuilt = build_optimizer(model, {**optimizer_cfg, "paramwise_cfg": pw})
    report = load_optimizer_state(rebuilt, saved)
    old = {n: p for g in optimizer.param_groups for n, p in zip(g["param_names"], g["params"])}
    new = {n: p for g in rebuilt.param_groups for n, p in zip(g["param_names"], g["params"])}
    same = sum(
        1 for n in new if n in old and all(
            torch.equal(torch.as_tensor(v), torch.as_tensor(rebuilt.state[new[n]][k]))
            for k, v in optimizer.state[old[n]].items()
        )
    )
    verdict = "no hyperparameter differs" if report.clean else "; ".join(report.lines())
    return (f"resume: saved the optimizer state ({plural(len(optimizer.param_groups), 'group')}), rebuilt it with "
            f"one group per parameter ({plural(len(rebuilt.param_groups), 'group')}) and loaded it by parameter "
            f"name: {same} of {plural(len(new), 'parameter')} got their own state back; {verdict}")
