"""A schedule for people: the steps where something changes, one column per distinct group, and a plot.

Groups that follow the same curve (equal values at every step) share one column, labelled by their
parameters; the steps shown are the ends of every part of the schedule plus every jump (a change in
one step much larger than its neighbours', as StepLR and MultiStepLR make). The plot (matplotlib, an
optional extra) draws every step, one line per distinct group.

May import: the base (errors) only; it reads a ``Schedule`` through its public members.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from paramwise.errors import ConfigDependencyError, UsageError

__all__ = ["ScheduleCurves", "plot_schedule", "schedule_curves"]

_MAX_POINTS = 20_000  # steps evaluated for a table or a plot; longer runs are sampled evenly


@dataclass(frozen=True)
class ScheduleCurves:
    """Each distinct group's values of one hyperparameter at the sampled steps, and the milestone steps."""

    param: str
    steps: tuple[int, ...]  # the sampled steps (every step for runs up to 20,000)
    labels: tuple[str, ...]  # one per distinct curve: its groups' parameters
    values: tuple[tuple[float, ...], ...]  # values[curve][i] at steps[i]
    milestones: tuple[int, ...]  # steps worth a row in a table

    def rows(self) -> list[tuple[int, tuple[float, ...]]]:
        """(step, the value of every curve) at each milestone."""
        index = {s: i for i, s in enumerate(self.steps)}
        return [(m, tuple(curve[index[m]] for curve in self.values)) for m in self.milestones if m in index]


def _label(names: Sequence[str]) -> str:
    if not names:
        return "(unnamed group)"
    return names[0] if len(names) == 1 else f"{names[0]} +{len(names) - 1}"


def schedule_curves(schedule: Any, iters: int, param: str = "lr") -> ScheduleCurves:
    """Evaluate ``schedule`` (a ``paramwise.Schedule``) over ``iters`` iterations without stepping it."""
    if iters < 1:
        raise ValueError(f"iters must be at least 1, got {iters}")
    stride = max(1, -(-iters // _MAX_POINTS))
    steps = list(range(0, iters, stride))
    if steps[-1] != iters - 1:
        steps.append(iters - 1)
    groups = schedule.optimizer.param_groups
    per_step = [schedule.values_at(s).get(param) for s in steps]
    if per_step[0] is None:  # no entry schedules it (an empty param_scheduler): the groups keep their values
        held = [group.get(param) for group in groups]
        if not held or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in held):
            raise UsageError(f"the schedule does not set {param!r} and the optimizer's groups have no number "
                             f"{param!r} to show: pick a value the schedule sets or the optimizer has (--param)")
        per_step = [[float(v) for v in held]] * len(steps)
    curves: dict[tuple[float, ...], list[str]] = {}
    for g, group in enumerate(groups):
        curve = tuple(float(values[g]) for values in per_step)
        curves.setdefault(curve, []).extend(group.get("param_names", []) or [f"group {g}"])
    values = tuple(curves)
    milestones = {steps[0], steps[-1]}
    for part in getattr(schedule, "parts", ()):
        for edge in (part.first_iteration, part.stop_iteration, *part.boundaries()):
            if 0 <= edge < iters:
                milestones.add(edge - edge % stride)
    for curve in values:
        deltas = [abs(b - a) for a, b in itertools.pairwise(curve)]
        for i, delta in enumerate(deltas):
            around = max(deltas[i - 1] if i else 0.0, deltas[i + 1] if i + 1 < len(deltas) else 0.0)
            if delta > 1e-15 and delta > 5 * around:
                milestones.add(steps[i + 1])
    return ScheduleCurves(param, tuple(steps), tuple(_label(n) for n in curves.values()), values,
                          tuple(sorted(milestones)))


def plot_schedule(curves: ScheduleCurves, path: str, *, title: str = "") -> None:
    """Write a PNG (800 x 450 pixels) with one line per distinct group; needs matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only: no display needed
        from matplotlib import pyplot as plt
    except ImportError as exc:
        raise ConfigDependencyError(
            "plotting a schedule needs matplotlib: pip install 'paramwise[plot]' (or pip install matplotlib)"
        ) from exc
    figure, axes = plt.subplots(figsize=(8, 4.5), dpi=100)
    try:
        for label, curve in zip(curves.labels, curves.values):
            axes.plot(curves.steps, curve, label=label, linewidth=1.5)
        axes.set_xlabel("iteration")
        axes.set_ylabel(curves.param)
        axes.set_title(title or f"{curves.param} per group")
        axes.grid(True, alpha=0.3)
        if len(curves.labels) > 1:
            axes.legend(fontsize="small")
        figure.tight_layout()
        figure.savefig(path)
    finally:
        plt.close(figure)
