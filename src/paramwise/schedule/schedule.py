"""``build_scheduler``: one schedule object from an mmengine-style ``param_scheduler`` list.

The schedule is stepped once per iteration and has torch's scheduler interface. Its whole state is
the step count (plus ReduceOnPlateau's bookkeeping): every value is computed in closed form from the
step and each group's *own* initial value, so

- the ratios between groups (``lr_mult``, layer decay, width scaling) hold at every step, except
  where a config asks for one absolute value for every group (``eta_min``, OneCycle's ``eta_max``,
  a plateau's ``min_value``): those are kept, as in mmengine, and reported in ``notes``;
- a schedule rebuilt from its config and loaded continues exactly, whatever the optimizer's grouping
  is now: nothing in the state belongs to a group position.

How parts compose. mmengine steps each scheduler recursively on the current value. Parts whose
update is a multiplication (Constant, Linear, Exponential, Step, MultiStep, ReduceOnPlateau, and
Cosine/Poly with a zero floor) chain by multiplication wherever their windows overlap, as mmengine's
do, in closed form. The others set values anchored to the group's base or to absolute numbers
(Cosine/Poly with a floor, CosineRestart, OneCycle): where such a part overlaps others on the same
value, mmengine's result is the history of its updates, so those parts (an :class:`_Overlap`) are
replayed with mmengine's own updates, in mmengine's order, from each group's value where they begin;
after the last shared step the part that remains continues in closed form from the replayed value.
The replay is deterministic from the step count and cached (a cursor and a checkpoint every
``_CHECKPOINT`` iterations), so a normal step costs O(1). A modern shape or a ReduceOnPlateau part
may not overlap an anchored part (an error naming both). A part that starts after another ended
starts from the value the earlier one left, as in mmengine.

Owns: :class:`Part`, :class:`Schedule` and ``build_scheduler``, the one resolver of entries: every
entry, mmengine's or a shape, is looked up in ``SCHEDULERS``, read by its :class:`SchedulerType`
and placed in its window; every problem of the list is a ``Problem`` at ``param_scheduler[i] -> key``,
all raised at once in one ``ConfigError``. A value that is not a finite number is never written.

May import: the base (errors, suggestions, checks, registry), torch, and the curves of this package.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.optim.lr_scheduler import LRScheduler

from paramwise.errors import (
    ConfigError,
    MetricMissingError,
    ParamwiseWarning,
    Problem,
    ScheduleStateError,
    UsageTypeError,
    warn_user,
)
from paramwise.schedule.curve import INF, SCHEDULERS, Curve, PartConfig, SchedulerType
from paramwise.schedule.mmengine import ConstantCurve, LinearCurve, MMEngineCurve, PlateauCurve
from paramwise.suggestions import did_you_mean, format_value, safe_repr, suggest

__all__ = ["Part", "Schedule", "build_scheduler"]

_ROOT = "param_scheduler"
#: the largest step a saved state may hold (far beyond any run; keeps the arithmetic in floats)
_MAX_STEP = 2**53
#: iterations between the replay's saved values (random access replays at most this many)
_CHECKPOINT = 4096


@dataclass(frozen=True)
class Part:
    """One entry of the list, resolved: its value, its window in steps of ``unit`` iterations, its curve.

    ``unit`` is 1 for iteration-based parts (and converted ones), the epoch length for epoch-based
    ones, whose values change only at epoch boundaries. ``begin``/``end`` count units; ``end`` may be
    ``INF``.
    """

    index: int
    type_name: str
    param: str
    begin: int
    end: int
    unit: int
    curve: Curve

    @property
    def span(self) -> int:
        return self.end - self.begin

    @property
    def length(self) -> int | None:
        """The part's length as its curve sees it: None when open-ended (mmengine's curves see ``INF - begin``)."""
        return None if self.end >= INF and self.curve.open_end else self.span

    @property
    def anchored(self) -> bool:
        return not self.curve.homogeneous(self.length)

    @property
    def first_iteration(self) -> int:
        return self.begin * self.unit

    @property
    def stop_iteration(self) -> int:
        return self.end * self.unit

    def local(self, step: int) -> int | None:
        """The part's own step at global iteration ``step``: None before it begins, held at its last after it ends."""
        k = step // self.unit
        if k < self.begin:
            return None
        if k >= self.end and self.end < INF and self.curve.settles_at_end:
            return self.span  # a shape's formula at its end (the floor), as docs/schedule_shapes.md says
        return min(k, self.end - 1) - self.begin

    def boundaries(self) -> list[int]:
        """The global iterations where a phase of this part begins (warmup end, decay start, floor), for tables."""
        return [(self.begin + b) * self.unit for b in self.curve.boundaries(self.length)]

    def acts(self, step: int) -> bool:
        """Whether mmengine steps this part at global iteration ``step`` (every iteration, or each epoch's first)."""
        return self.first_iteration <= step < self.stop_iteration and step % self.unit == 0

    def next_act(self, step: int) -> int | None:
        """The first iteration ``>= step`` at which this part acts; None when it has ended."""
        at = max(step, self.first_iteration)
        at += -at % self.unit
        return at if at < self.stop_iteration else None

    def where(self) -> str:
        unit = "iterations" if self.unit == 1 else "epochs"
        end = "open end" if self.end >= INF else str(self.end)
        return f"{_ROOT}[{self.index}] ({self.type_name}, {unit} {self.begin}..{end})"


@dataclass(frozen=True)
class _Overlap:
    """Parts on one value whose windows overlap, an anchored one among them: replayed as mmengine steps them.

    ``shared_until`` is the last iteration at which two of them act; after it only ``survivor``
    (None when they end together) changes the value, in closed form from the replayed one.
    """

    parts: tuple[Part, ...]  # in list order, mmengine's order of updates within a step
    first: int
    stop: int
    shared_until: int
    survivor: Part | None

    @property
    def first_iteration(self) -> int:
        return self.first

    def where(self) -> str:
        return " and ".join(p.where() for p in self.parts)


@dataclass
class _Replay:
    """The replay's cache for one overlap: the values it started from, a cursor, and checkpoints."""

    entering: tuple[float, ...]
    cursor: int
    values: list[float]
    marks: list[int] = dataclasses.field(default_factory=list)  # checkpoint iterations, ascending
    saved: list[list[float]] = dataclasses.field(default_factory=list)


@dataclass
class _PlateauState:
    best: float
    num_bad_epochs: int = 0
    cooldown_counter: int = 0
    last_step: int = -1
    reductions: int = 0


class _Target:
    """How to read and write one scheduled value in a param group: a key, or ``betas[0]`` for Adam's momentum."""

    def __init__(self, key: str, betas: bool) -> None:
        self.key = key
        self.betas = betas

    def read(self, group: Mapping[str, Any]) -> Any:
        return group["betas"][0] if self.betas else group[self.key]

    def write(self, group: dict[str, Any], value: float) -> None:
        current = self.read(group)
        if isinstance(current, torch.Tensor):
            # in place: a torch.compile'd optimizer step guards on this tensor, not on its value
            current.fill_(value)
        elif self.betas:
            group["betas"] = (value, *tuple(group["betas"])[1:])
        else:
            group[self.key] = value


class Schedule(LRScheduler):
    """Every part of a ``param_scheduler`` list as one scheduler, stepped once per iteration.

    Attributes:
        parts: the resolved entries, in list order.
        notes: Problems that do not stop the build but change what the config means (an absolute
            ``eta_min`` that flattens lr_mult ratios); also issued as ``ParamwiseWarning``.
        last_epoch: the number of ``step()`` calls (torch's name; it counts iterations here).
        base_lrs: each group's initial lr, the value every lr part scales.
    """

    def __init__(
        self,
        optimizer: Any,
        parts: Sequence[Part],
        *,
        targets: Mapping[str, _Target],
        epoch_length: int | None = None,
        notes: Sequence[Problem] = (),
    ) -> None:
        # LRScheduler.__init__ is not called: it would wrap optimizer.step and compute values its own way
        self.optimizer = optimizer
        self.parts = tuple(parts)
        self.notes = tuple(notes)
        self.epoch_length = epoch_length
        self._targets = dict(targets)
        self._by_param: dict[str, list[Part | _Overlap]] = {}
        for param in dict.fromkeys(p.param for p in self.parts):
            self._by_param[param] = _units([p for p in self.parts if p.param == param])
        self._replays: dict[tuple[str, int], _Replay] = {}
        self._bases: dict[str, list[float]] = {}
        for param, target in self._targets.items():
            bases = []
            for group in optimizer.param_groups:
                current = target.read(group)
                # torch and mmengine keep the base in initial_<name>; paramwise's checkpoint loading keeps it too
                group.setdefault(f"initial_{param}", current.clone() if isinstance(current, torch.Tensor) else current)
                bases.append(float(group[f"initial_{param}"]))
            self._bases[param] = bases
        self.base_lrs = list(self._bases.get("lr", [float(g["lr"]) for g in optimizer.param_groups]))
        self._plateaus = {
            p.index: _PlateauState(best=_worst(p.curve)) for p in self.parts if isinstance(p.curve, PlateauCurve)
        }
        self.last_epoch = 0
        self._last_values: dict[str, list[float]] = {}
        self._apply()

    # ------------------------------------------------------------------ values
    def _param_values(self, param: str, step: int) -> list[float]:
        """Every group's value of ``param`` at iteration ``step``: the parts folded in the order they begin."""
        bases = self._bases[param]
        values = list(bases)
        for unit in self._by_param.get(param, ()):
            if isinstance(unit, _Overlap):
                if step >= unit.first:
                    values = self._overlap_values(param, unit, values, step)
                continue
            part = unit
            if isinstance(part.curve, PlateauCurve):
                reductions = self._plateaus[part.index].reductions
                if reductions:
                    values = [part.curve.reduce(v, g, reductions) for g, v in enumerate(values)]
                continue
            t = part.local(step)
            if t is None:
                continue
            values = [self._checked(part, param, g, step, part.curve.value, t, part.length, v, bases[g], g)
                      for g, v in enumerate(values)]
        return values

    def _checked(self, part: Part, param: str, group: int, step: int, fn: Any, *args: Any) -> float:
        """``fn(*args)`` as a finite float, or the error that names the part, the group and the iteration."""
        try:
            value = fn(*args)
        except ArithmeticError as e:  # a float overflow, 0 ** -p: the arguments cannot go this far
            raise _not_finite(part, param, group, step, f"{type(e).__name__}: {e}") from None
        if not math.isfinite(value):  # never written into a param group: it would train on nan silently
            raise _not_finite(part, param, group, step, f"{value!r}")
        return float(value)

    def _overlap_values(self, param: str, unit: _Overlap, entering: list[float], step: int) -> list[float]:
        """The overlap's values at ``step``: replayed up to its last shared step, then its survivor's closed form."""
        step = min(step, unit.stop - 1)
        survivor = unit.survivor
        if survivor is None or step <= unit.shared_until:
            return self._replay(param, unit, entering, step)
        at = self._replay(param, unit, entering, unit.shared_until)
        s, t = survivor.local(unit.shared_until), survivor.local(step)
        assert s is not None and t is not None
        if t == s:
            return at
        bases = self._bases[param]
        tails = [self._checked(survivor, param, g, step, survivor.curve.tail, s, v, t, survivor.length, bases[g], g)
                 for g, v in enumerate(at)] if isinstance(survivor.curve, MMEngineCurve) else [None]
        if any(v is None for v in tails):
            return self._replay(param, unit, entering, step)  # no closed form from here: replay these steps too
        return [float(v) for v in tails if v is not None]

    def _replay(self, param: str, unit: _Overlap, entering: list[float], step: int) -> list[float]:
        """Every group's value after mmengine's updates at iteration ``step``, replayed from ``entering``."""
        key = (param, unit.first)
        cache = self._replays.get(key)
        if cache is None or cache.entering != tuple(entering):
            cache = self._replays[key] = _Replay(tuple(entering), unit.first - 1, list(entering))
        if step < cache.cursor:  # back to the last checkpoint at or before the step
            i = bisect.bisect_right(cache.marks, step) - 1
            cursor, values = (cache.marks[i], list(cache.saved[i])) if i >= 0 else (unit.first - 1, list(entering))
        else:
            cursor, values = cache.cursor, cache.values
        bases = self._bases[param]
        while True:
            nexts = [n for n in (p.next_act(cursor + 1) for p in unit.parts) if n is not None]
            if not nexts or min(nexts) > step:
                break
            cursor = min(nexts)
            acting = [p for p in unit.parts if p.acts(cursor)]
            if cursor:  # after the first iteration mmengine's hook steps iteration parts, then epoch parts
                acting.sort(key=lambda p: p.unit != 1)
            for part in acting:
                t = part.local(cursor)
                curve = part.curve
                assert t is not None and isinstance(curve, MMEngineCurve)
                values = [self._checked(part, param, g, cursor, curve.chain, t, v, part.length, bases[g], g)
                          for g, v in enumerate(values)]
            if not cache.marks or cursor - cache.marks[-1] >= _CHECKPOINT:  # only ever past the last one
                cache.marks.append(cursor)
                cache.saved.append(list(values))
        if step >= cache.cursor:
            cache.cursor, cache.values = step, values
        return list(values)

    def values_at(self, step: int) -> dict[str, list[float]]:
        """Every scheduled value of every group at iteration ``step``, without touching the optimizer.

        Plateau reductions are those recorded so far. For tables and plots of a schedule.
        """
        return {param: self._param_values(param, step) for param in self._targets}

    def _apply(self) -> None:
        values = self.values_at(self.last_epoch)
        for param, target in self._targets.items():
            for group, value in zip(self.optimizer.param_groups, values[param]):
                target.write(group, value)
        self._last_values = values
        self._last_lr: list[float | torch.Tensor] = list(
            values.get("lr", [float(g["lr"]) for g in self.optimizer.param_groups])
        )

    # --------------------------------------------------------------- torch API
    def step(self, epoch: int | None = None) -> None:
        """Advance one iteration (or, as torch's deprecated form, jump to iteration ``epoch``) and set the values."""
        if epoch is None:
            self.last_epoch += 1
        else:
            if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0:
                raise UsageTypeError(f"step(epoch) takes an iteration number >= 0, got {epoch!r}")
            self.last_epoch = epoch
        self._apply()

    def get_last_lr(self) -> list[float | torch.Tensor]:
        """Each group's lr as set by the last step (floats)."""
        return list(self._last_lr)

    def get_lr(self) -> list[float | torch.Tensor]:  # torch's hook; the values are computed in closed form
        return self.get_last_lr()

    def get_last_values(self, param: str = "lr") -> list[float]:
        """Each group's value of ``param`` ('lr', 'momentum', 'weight_decay', ...) as set by the last step."""
        if param not in self._last_values:
            raise UsageTypeError(f"this schedule does not change {param!r}; it changes {sorted(self._last_values)}"
                                 f".{did_you_mean(param, self._last_values)}")
        return list(self._last_values[param])

    def observe(self, metrics: Mapping[str, Any]) -> None:
        """Feed validation metrics to the ReduceOnPlateau parts (mmengine's ``after_val_epoch``).

        Call it after the epoch's iterations were stepped; a part counts only while the number of
        finished epochs is within its ``begin``/``end``, as in mmengine.
        """
        if not isinstance(metrics, Mapping):
            raise UsageTypeError(f"observe() takes a mapping of metric names to values, got {type(metrics).__name__}")
        changed = False
        for part in self.parts:
            if not isinstance(part.curve, PlateauCurve):
                continue
            epochs = self.last_epoch // part.unit
            if not part.begin <= epochs < part.end:
                continue
            curve, state = part.curve, self._plateaus[part.index]
            if curve.monitor not in metrics:
                raise MetricMissingError(
                    f"{part.where()} monitors {curve.monitor!r}, which the metrics do not hold: "
                    f"{sorted(map(str, metrics))}.{did_you_mean(curve.monitor, map(str, metrics))}",
                    monitor=curve.monitor,
                )
            metric = float(metrics[curve.monitor])
            state.last_step += 1
            if curve.better(metric, state.best):
                state.best, state.num_bad_epochs = metric, 0
            else:
                state.num_bad_epochs += 1
            if state.cooldown_counter > 0:
                state.cooldown_counter -= 1
                state.num_bad_epochs = 0  # bad epochs in cooldown do not count
            if state.num_bad_epochs > curve.patience:
                state.reductions += 1
                state.cooldown_counter = curve.cooldown
                state.num_bad_epochs = 0
                changed = True
        if changed:
            self._apply()

    def state_dict(self) -> dict[str, Any]:
        """The step count and each plateau part's bookkeeping; nothing that depends on the grouping."""
        return {
            "step": self.last_epoch,
            "plateau": {
                str(i): {"type": self.parts_by_index[i].type_name, **vars(s)} for i, s in self._plateaus.items()
            },
        }

    @property
    def parts_by_index(self) -> dict[int, Part]:
        return {p.index: p for p in self.parts}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Continue from a saved state: set the step, then every value as it is at that step.

        A state that does not fit (not from ``state_dict()``, or from another list) is a
        ``ScheduleStateError`` and changes nothing.
        """
        if not isinstance(state_dict, Mapping) or "step" not in state_dict:
            shown = f" with keys {sorted(map(repr, state_dict))}" if isinstance(state_dict, Mapping) else ""
            raise ScheduleStateError(
                "a schedule state is a mapping with a 'step' (from Schedule.state_dict()), got "
                f"{type(state_dict).__name__}{shown}"
            )
        unknown = sorted(repr(k) for k in state_dict if k not in ("step", "plateau"))
        if unknown:
            raise ScheduleStateError(f"a schedule state has the keys 'step' and 'plateau' only, got also "
                                     f"{', '.join(unknown)}")
        step = state_dict["step"]
        if not isinstance(step, int) or isinstance(step, bool) or not 0 <= step <= _MAX_STEP:
            raise ScheduleStateError(f"the saved step must be an integer in [0, {_MAX_STEP}], got {safe_repr(step)}")
        raw = state_dict.get("plateau")
        if raw is None:
            raw = {}
        if not isinstance(raw, Mapping):
            raise ScheduleStateError(f"the saved 'plateau' must be a mapping of list positions to states, got "
                                     f"{type(raw).__name__}")
        saved = dict(raw)
        ours = {str(i) for i in self._plateaus}
        if set(saved) != ours:
            raise ScheduleStateError(
                f"the saved state has ReduceOnPlateau parts at list positions {sorted(map(repr, saved))}, this "
                f"schedule at {sorted(ours)}: it was saved from another param_scheduler list"
            )
        fields = {f.name: f.type for f in dataclasses.fields(_PlateauState)}
        plateaus = {}
        for key, entry in saved.items():
            part = self.parts_by_index[int(key)]
            where = f"{_ROOT}[{key}]"
            if not isinstance(entry, Mapping):
                raise ScheduleStateError(f"{where}: the saved plateau state must be a mapping, got "
                                         f"{type(entry).__name__}")
            if entry.get("type") != part.type_name:
                raise ScheduleStateError(
                    f"{where} was saved as {safe_repr(entry.get('type'))}, this schedule has {part.type_name!r} there"
                )
            kwargs = {k: v for k, v in entry.items() if k != "type"}
            bad = sorted(repr(k) for k in kwargs if k not in fields)
            missing = [k for k in ("best",) if k not in kwargs]
            if bad or missing:
                raise ScheduleStateError(f"{where}: the saved plateau state has unknown keys {bad} or lacks {missing}; "
                                         f"it holds 'type' and {', '.join(fields)}")
            for k, v in kwargs.items():
                whole = k != "best"
                if whole:
                    ok = isinstance(v, int) and not isinstance(v, bool)
                else:  # the best metric so far: a float, +-inf before the first observation
                    ok = (isinstance(v, float) and not math.isnan(v)) or (
                        isinstance(v, int) and not isinstance(v, bool) and abs(v) <= _MAX_STEP)
                if not ok:
                    raise ScheduleStateError(f"{where} -> {k}: the saved value must be "
                                             f"{'an integer' if whole else 'a number'}, got {safe_repr(v)}")
                if whole and not -1 <= v <= _MAX_STEP:
                    raise ScheduleStateError(f"{where} -> {k}: the saved value must be in [-1, {_MAX_STEP}], "
                                             f"got {safe_repr(v)}")
            plateaus[int(key)] = _PlateauState(**kwargs)
        old = self._plateaus, self.last_epoch
        self._plateaus = plateaus
        self.last_epoch = step
        try:
            self._apply()
        except (OverflowError, ValueError, ArithmeticError) as e:
            self._plateaus, self.last_epoch = old
            self._apply()
            raise ScheduleStateError(f"the saved step {step} cannot be applied: {e}") from None

    def __repr__(self) -> str:
        parts = ", ".join(p.type_name for p in self.parts)
        return f"Schedule(step={self.last_epoch}, parts=[{parts}], groups={len(self.optimizer.param_groups)})"


def _not_finite(part: Part, param: str, group: int, step: int, got: str) -> ConfigError:
    """The error for a value that is not a finite number: named at the part that made it, nothing written."""
    return ConfigError([Problem(_at(part.index), (
        f"{part.type_name} gives group {group}'s {param} {got} at iteration {step}, which is not a finite number; "
        "nothing was written to the optimizer. Check this entry's arguments (a gamma above 1 grows without bound)"
    ))], title="the schedule cannot go on")


def _worst(curve: Curve | None) -> float:
    return -math.inf if isinstance(curve, PlateauCurve) and curve.rule == "greater" else math.inf


# ------------------------------------------------------------------------------------ building
def build_scheduler(
    optimizer: Any,
    cfg: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    *,
    epoch_length: int | None = None,
    max_iters: int | None = None,
) -> Schedule:
    """Build one schedule from a ``param_scheduler`` config (one entry or a list), stepped once per iteration.

    Args:
        optimizer: any torch optimizer (its ``param_groups``; ``defaults`` decide what momentum means).
        cfg: mmengine's ``param_scheduler``: entries with ``type`` naming a registered scheduler
            (``SCHEDULERS``: mmengine's schedulers and the modern shapes).
        epoch_length: iterations per epoch; needed by every epoch-based entry (``by_epoch=True``,
            mmengine's default), as the runner passes ``len(train_dataloader)``.
        max_iters: the run's length; an entry without ``end`` ends there (epoch-based ones at
            ``ceil(max_iters / epoch_length)`` epochs), as mmengine's runner sets it.

    Raises:
        ConfigError: every problem of the list at once, each at ``param_scheduler[i] -> key``.
    """
    if not hasattr(optimizer, "param_groups"):
        raise UsageTypeError(
            f"build_scheduler needs a torch optimizer (with param_groups), got {type(optimizer).__name__}"
        )
    for name, value in (("epoch_length", epoch_length), ("max_iters", max_iters)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value <= 0):
            raise UsageTypeError(f"build_scheduler({name}=...) takes a positive integer or None, got {value!r}")
    if isinstance(cfg, Mapping):
        entries: Sequence[Any] = [cfg]
    elif isinstance(cfg, Sequence) and not isinstance(cfg, str):
        entries = list(cfg)
    else:
        raise ConfigError([Problem((_ROOT,), f"expected a scheduler config (a dict with 'type') or a list of them, "
                                             f"got {type(cfg).__name__}", kind="type")])
    problems: list[Problem] = []
    parts: list[Part] = []
    for index, entry in enumerate(entries):
        part = _resolve(index, entry, epoch_length, max_iters, problems)
        if part is not None:
            parts.append(part)
    targets: dict[str, _Target] = {}
    for part in parts:
        if part.param not in targets:
            target = _target(optimizer, part, problems)
            if target is not None:
                targets[part.param] = target
    problems += _overlap_problems([p for p in parts if p.param in targets])
    if problems:
        raise ConfigError(problems, title="invalid param_scheduler")
    parts = [p for p in parts if p.param in targets]
    notes = _notes(optimizer, parts, targets)
    for note in notes:
        warnings.warn(str(note), ParamwiseWarning, stacklevel=2)
    for part in parts:
        if part.end >= INF and part.curve.spans_length(part.length):
            warn_user(f"{part.where()} has no end and build_scheduler got no max_iters, so it spans mmengine's "
                      f"INF = {INF} {'iterations' if part.unit == 1 else 'epochs'} and never reaches its end "
                      "(its values barely move). Set 'end' on this entry, or pass max_iters= (and epoch_length= "
                      "for epoch-based entries) to build_scheduler; the CLI takes --iters")
    return Schedule(optimizer, parts, targets=targets, epoch_length=epoch_length, notes=notes)


def _at(index: int, key: str | None = None) -> tuple[str, ...]:
    return (f"{_ROOT}[{index}]",) if key is None else (f"{_ROOT}[{index}]", key)


def _lookup(index: int, type_name: Any, problems: list[Problem]) -> SchedulerType | None:
    """The registry entry a ``type`` names; a Problem with did-you-mean when nothing has it."""
    if isinstance(type_name, SchedulerType):
        return type_name
    if not isinstance(type_name, str):
        problems.append(Problem(_at(index, "type"), f"must be a scheduler name, got {safe_repr(type_name)}",
                                kind="type"))
        return None
    if type_name in SCHEDULERS:
        entry = SCHEDULERS.get(type_name)
        if isinstance(entry, SchedulerType):
            return entry
        problems.append(Problem(_at(index, "type"), f"{type_name!r} is registered as {safe_repr(entry)}, which is "
                                "not a scheduler entry: register a SchedulerType for a Curve"))
        return None
    close = suggest(type_name, SCHEDULERS.names())
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    problems.append(Problem(_at(index, "type"), f"{type_name!r} is not a known scheduler.{hint} "
                                                f"`paramwise list schedulers` lists them."))
    return None


def _resolve(
    index: int, entry: Any, epoch_length: int | None, max_iters: int | None, problems: list[Problem]
) -> Part | None:
    """One entry as a Part: its keys and values checked, its window in iterations or epochs; None after a Problem."""
    if not isinstance(entry, Mapping):
        problems.append(Problem(_at(index), f"must be a dict with a 'type', got {type(entry).__name__}", kind="type"))
        return None
    if "type" not in entry:
        problems.append(Problem(_at(index, "type"), "missing: name the scheduler, e.g. type='LinearLR'",
                                kind="missing"))
        return None
    target = _lookup(index, entry["type"], problems)
    if target is None:
        return None
    type_name = entry["type"] if isinstance(entry["type"], str) else target.__name__
    cfg, found = target.read({k: v for k, v in entry.items() if k != "type"}, type_name)
    problems += [Problem(_at(index, *p.path[:1]) + p.path[1:], p.message, p.kind) for p in found]
    if cfg is None:
        return None
    curve = cfg.curve
    if isinstance(curve, PlateauCurve) and (not cfg.by_epoch or cfg.convert_to_iter_based):
        problems.append(Problem(_at(index, "by_epoch"), f"{type_name} reacts to validation metrics once per "
                                "epoch: it needs by_epoch=True and no convert_to_iter_based (as in mmengine)"))
        return None
    window = _window(index, cfg, epoch_length, max_iters, problems)
    if window is None:
        return None
    begin, end, unit = window
    if cfg.convert_to_iter_based and epoch_length:
        curve = curve.scaled(epoch_length)
    part = Part(index=index, type_name=type_name, param=cfg.param, begin=begin, end=end, unit=unit, curve=curve)
    found = curve.total_problems(part.length)
    if found:
        problems += [Problem(_at(index, *p.path[:1]) + p.path[1:], p.message, p.kind) for p in found]
        return None
    return part


def _window(
    index: int, cfg: PartConfig, epoch_length: int | None, max_iters: int | None, problems: list[Problem]
) -> tuple[int, int, int] | None:
    """(begin, end, unit) in the part's steps (iterations once converted), end defaulted; None after a Problem."""
    begin, end, by_epoch = cfg.begin, cfg.end, cfg.by_epoch
    if cfg.convert_to_iter_based and not by_epoch:
        problems.append(Problem(_at(index, "convert_to_iter_based"), "converts an epoch-based entry to iterations; "
                                "this one has by_epoch=False (remove convert_to_iter_based, or set by_epoch=True)"))
        return None
    if by_epoch and epoch_length is None:
        problems.append(Problem(_at(index, "by_epoch"), "this entry counts epochs (by_epoch=True, mmengine's default), "
                                "so it needs the iterations per epoch: --epoch-length N on the command line, "
                                "build_scheduler(..., epoch_length=N) in Python; or set by_epoch=False "
                                "to give begin/end in iterations", kind="missing"))
        return None
    if end is None:
        length = cfg.curve.default_length()
        end = begin + length if length is not None else None
    if end is None and max_iters is not None:
        end = math.ceil(max_iters / epoch_length) if by_epoch and epoch_length else max_iters
    if end is None:
        end = INF
    if end <= begin:
        problems.append(Problem(_at(index, "end"), f"must be larger than begin, got begin={begin}, end={end}"))
        return None
    unit = epoch_length if by_epoch and epoch_length else 1
    if cfg.convert_to_iter_based and epoch_length:
        begin, end, unit = int(begin * epoch_length), (end if end >= INF else int(end * epoch_length)), 1
    return int(begin), int(end), unit


def _target(optimizer: Any, part: Part, problems: list[Problem]) -> _Target | None:
    groups = optimizer.param_groups
    defaults = getattr(optimizer, "defaults", {}) or {}
    name = type(optimizer).__name__
    key = "param_name" if part.type_name.endswith("ParamScheduler") else "type"
    if part.param == "momentum" and "momentum" not in defaults and not all("momentum" in g for g in groups):
        if "betas" in defaults or all("betas" in g for g in groups):
            return _Target("momentum", betas=True)  # Adam-style: momentum is betas[0], as mmengine schedules it
        problems.append(Problem(_at(part.index, key), f"{name} has neither 'momentum' nor 'betas' to schedule"))
        return None
    missing = [i for i, g in enumerate(groups) if part.param not in g]
    if missing:
        numeric = sorted(k for k, v in groups[0].items() if isinstance(v, (int, float, torch.Tensor))
                         and not isinstance(v, bool) and not k.startswith("initial_")) if groups else []
        problems.append(Problem(_at(part.index, key), f"{name}'s param group(s) {missing} have no {part.param!r}."
                                f"{did_you_mean(part.param, numeric)} They hold: {', '.join(numeric)}."))
        return None
    return _Target(part.param, betas=False)


def _shared(a: Part, b: Part) -> tuple[int, int] | None:
    """The iterations ``[start, stop)`` that two parts' windows share, if any."""
    start, stop = max(a.first_iteration, b.first_iteration), min(a.stop_iteration, b.stop_iteration)
    return (start, stop) if start < stop else None


def _clusters(parts: Sequence[Part]) -> list[list[Part]]:
    """Parts on one value grouped by overlapping windows (connected, in list order within each)."""
    clusters: list[list[Part]] = []
    for part in sorted(parts, key=lambda p: (p.first_iteration, p.index)):
        if clusters and any(_shared(part, other) for other in clusters[-1]):
            clusters[-1].append(part)
        else:
            clusters.append([part])
    return [sorted(c, key=lambda p: p.index) for c in clusters]


def _units(parts: Sequence[Part]) -> list[Part | _Overlap]:
    """One value's parts in the order they begin; those that overlap an anchored part become one ``_Overlap``."""
    units: list[Part | _Overlap] = []
    for cluster in _clusters(parts):
        if len(cluster) == 1 or not any(p.anchored for p in cluster):
            units += cluster  # multiplications commute: each part in closed form
            continue
        pairs = [shared for j, b in enumerate(cluster) for a in cluster[:j] if (shared := _shared(a, b))]
        shared_until = max(stop for _, stop in pairs) - 1
        first = min(p.first_iteration for p in cluster)
        stop = max(p.stop_iteration for p in cluster)
        after = [p for p in cluster if p.stop_iteration > shared_until + 1]
        units.append(_Overlap(tuple(cluster), first, stop, shared_until, after[0] if after else None))
    return sorted(units, key=lambda u: u.first_iteration)


def _overlap_problems(parts: Sequence[Part]) -> list[Problem]:
    """What cannot be replayed as mmengine steps it: a shape or a plateau over an anchored part, a zero factor."""
    found = []
    for param in dict.fromkeys(p.param for p in parts):
        for unit in _units([p for p in parts if p.param == param]):
            if not isinstance(unit, _Overlap):
                continue
            for j, later in enumerate(unit.parts):
                for earlier in unit.parts[:j]:
                    shared = _shared(earlier, later)
                    if shared is None or not (earlier.anchored or later.anchored):
                        continue
                    odd = next((p for p in (later, earlier) if not isinstance(p.curve, MMEngineCurve)
                                or isinstance(p.curve, PlateauCurve)), None)
                    if odd is None:
                        continue
                    start, stop = shared
                    last = "the open end" if stop >= INF else f"iteration {stop - 1}"
                    why = ("reduces at validation times the schedule's state does not record"
                           if isinstance(odd.curve, PlateauCurve) else
                           "is a formula of the group's initial value with its own warmup, not one of mmengine's "
                           "recursive updates")
                    found.append(Problem(_at(later.index, "begin"), (
                        f"overlaps {earlier.where()} on {param!r} from iteration {start} to {last}, and "
                        f"{odd.type_name} {why}, so the overlap has no mmengine meaning to follow. Make the windows "
                        "disjoint: start this entry where the other ends (begin = the other's end)"
                        + (", or use the shape's warmup_steps instead of a separate warmup"
                           if not isinstance(odd.curve, MMEngineCurve) else "")
                    )))
            for part in unit.parts:
                curve = part.curve
                zero = (isinstance(curve, ConstantCurve) and curve.factor_ == 0) or (
                    isinstance(curve, LinearCurve) and curve.start_factor == 0)
                if zero:
                    key = "factor" if isinstance(curve, ConstantCurve) else "start_factor"
                    found.append(Problem(_at(part.index, key), (
                        f"is 0 in a part that overlaps an anchored one ({unit.where()}): mmengine's update "
                        "divides by it there. Use a small positive value (e.g. 1e-3)")))
    return found


def _notes(optimizer: Any, parts: Sequence[Part], targets: Mapping[str, _Target]) -> list[Problem]:
    """An absolute value for every group flattens their ratios: say so where the ratios differ."""
    notes = []
    for part in parts:
        key = part.curve.absolute()
        if key is None:
            continue
        target = targets[part.param]
        bases = [float(g.get(f"initial_{part.param}", target.read(g))) for g in optimizer.param_groups]
        if len({round(b, 15) for b in bases}) <= 1:
            continue
        value = getattr(part.curve, key if key != "min_value" else "min_value")
        default = (getattr(optimizer, "defaults", {}) or {}).get(part.param)
        fix = {"eta_min": "eta_min_ratio", "eta_max": "eta_max_ratio"}.get(key)
        advice = ""
        if fix and isinstance(default, (int, float)) and default and isinstance(value, (int, float)):
            advice = f"; {fix}={format_value(value / default)} (of each group's initial value) keeps them"
        elif fix:
            advice = f"; {fix} (a fraction of each group's initial value) keeps them"
        notes.append(Problem(_at(part.index, key), (
            f"{key}={format_value(value)} is one absolute {part.param} for every group, so the groups' ratios "
            f"(lr_mult, layer decay) do not hold where the schedule approaches it{advice}"
        )))
    return notes

