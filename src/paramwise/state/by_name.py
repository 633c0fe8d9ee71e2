"""Optimizer state that follows parameter names, whatever the grouping on either side.

torch's ``Optimizer.load_state_dict`` matches saved state to parameters by position: after a config
change that regroups parameters, one parameter's Adam moments can land on another without a word.
Here the saved ``param_names`` decide where each parameter's state goes; the current config wins
for hyperparameters and every difference is reported; names on one side only are reported like
``Module.load_state_dict``'s missing/unexpected keys.

Schedules: a saved group with ``initial_lr`` (or any ``initial_<key>``, as torch's and mmengine's
schedulers write) was being scheduled. Its base value is ``initial_<key>``; the scheduled value is
state, and carries over. When the config changed the base, the scheduled value is scaled by
new base / old base, so the schedule continues from where it was under the new base.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from paramwise import checks
from paramwise.errors import ParamwiseWarning, StateLoadError
from paramwise.suggestions import format_value, safe_repr, short_list

__all__ = [
    "StateLoadError",
    "GROUP_ONLY_KEYS",
    "StateLoadReport",
    "attach_names",
    "check_structure",
    "ValueChange",
    "enable_state_by_name",
    "last_load_report",
    "load_optimizer_state",
    "map_state_by_name",
]

# per-parameter state of torch's optimizers that has the parameter's own shape (checked on load)
_PARAM_SHAPED = frozenset({
    "exp_avg", "exp_avg_sq", "max_exp_avg_sq", "momentum_buffer", "sum", "square_avg", "grad_avg",
    "acc_delta", "ax", "prev", "step_size", "exp_inf",
})
GROUP_ONLY_KEYS = ("params", "param_names")
# mmengine copies a custom key's multipliers into its groups; they are config (the current config's
# resolved lr and weight decay already hold them), never state to carry over
_CONFIG_ONLY = frozenset({"lr_mult", "decay_mult"})


@dataclass(frozen=True)
class ValueChange:
    """A hyperparameter whose value in the checkpoint differs from the current config's (which is kept)."""

    key: str
    saved: Any
    current: Any
    params: tuple[str, ...]

    def __str__(self) -> str:
        return (f"{self.key}: {format_value(self.saved)} in the checkpoint -> {format_value(self.current)} now, "
                f"for {short_list(self.params)}")


@dataclass(frozen=True)
class StateLoadReport:
    """What loading optimizer state by name did.

    Attributes:
        missing: current parameters the checkpoint has no entry for (their state starts fresh).
        unexpected: names in the checkpoint the optimizer does not have (their state is dropped).
        changed: hyperparameters where the checkpoint and the current config differ; the config is kept.
        unmapped: per-group values that could not be carried over, each as a sentence.
        mismatched: parameters whose saved state has another shape (dropped with ``skip_mismatched``).
        fresh: parameters named in the checkpoint that had no state yet (never stepped).
        carried: per-group values the config does not set, kept from the checkpoint (``group i: key=value``).
    """

    missing: tuple[str, ...] = ()
    unexpected: tuple[str, ...] = ()
    changed: tuple[ValueChange, ...] = ()
    unmapped: tuple[str, ...] = ()
    mismatched: tuple[str, ...] = ()
    fresh: tuple[str, ...] = ()
    carried: tuple[str, ...] = ()

    @property
    def clean(self) -> bool:
        """True when every parameter found its state and nothing differed."""
        return not (self.missing or self.unexpected or self.changed or self.unmapped or self.mismatched
                    or self.carried)

    def lines(self) -> list[str]:
        """One sentence per finding, for warnings and the CLI."""
        out = []
        if self.missing:
            out.append(f"missing from the checkpoint (state starts fresh): {short_list(self.missing)}")
        if self.unexpected:
            out.append(f"in the checkpoint but not in the optimizer (dropped): {short_list(self.unexpected)}")
        if self.mismatched:
            out.append(f"saved state of another shape (dropped): {short_list(self.mismatched)}")
        out += [f"config kept over the checkpoint: {change}" for change in self.changed]
        out += list(self.unmapped)
        if self.carried:
            out.append(f"kept from the checkpoint, as the config does not set them: {', '.join(self.carried)}")
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines()) or "all parameters matched by name; no hyperparameter differs"


def _same(a: Any, b: Any) -> bool:
    """Equal values, tensors by value, without raising."""
    try:
        if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
            return bool(torch.equal(torch.as_tensor(a), torch.as_tensor(b)))
        if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
            return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
        return bool(a == b)
    except Exception:
        return False


def _level(value: Any) -> float | None:
    """A scheduled hyperparameter (or its base) as a finite float >= 0, a one-element tensor too; else None:
    a schedule does not continue from nan, inf, a negative value or text."""
    if isinstance(value, torch.Tensor) and value.numel() == 1 and not value.is_complex():
        value = float(value)
    number = checks.real_value(value)
    return number if number is not None and number >= 0 else None


def check_structure(state_dict: Any, what: str) -> tuple[Mapping[Any, Any], list[Mapping[str, Any]]]:
    """The state and the groups of an optimizer state_dict, each part checked; a ``StateLoadError`` if not."""
    if not isinstance(state_dict, Mapping) or "state" not in state_dict or "param_groups" not in state_dict:
        keys = sorted(map(safe_repr, state_dict)) if isinstance(state_dict, Mapping) else type(state_dict).__name__
        raise StateLoadError(
            f"{what} is not an optimizer state_dict (a dict with 'state' and 'param_groups'); got {keys}. "
            "A whole checkpoint holds it under a key such as 'optimizer'"
        )
    raw_groups, state = state_dict["param_groups"], state_dict["state"]
    if not isinstance(state, Mapping):
        raise StateLoadError(f"{what}: 'state' must be a dict of parameter id -> that parameter's state, got "
                             f"{type(state).__name__}")
    if isinstance(raw_groups, (str, bytes, Mapping)) or not isinstance(raw_groups, Sequence):
        raise StateLoadError(f"{what}: 'param_groups' must be a list of groups, got {type(raw_groups).__name__}")
    groups = list(raw_groups)
    seen: set[int] = set()
    for gi, group in enumerate(groups):
        where = f"{what}: param_groups[{gi}]"
        if not isinstance(group, Mapping) or "params" not in group:
            raise StateLoadError(f"{where} must be a dict with 'params', got {safe_repr(group)}")
        odd = [k for k in group if not isinstance(k, str)]
        if odd:
            raise StateLoadError(f"{where}: group keys are strings ('lr', 'params', ...), got {safe_repr(odd[0])}")
        ids = group["params"]
        if isinstance(ids, (str, bytes, Mapping)) or not isinstance(ids, (Sequence, range)):
            raise StateLoadError(f"{where} -> params must be a list of parameter ids, got {safe_repr(ids)}")
        for pid in ids:
            if not isinstance(pid, int) or isinstance(pid, bool):
                raise StateLoadError(f"{where} -> params: parameter ids are integers, got {safe_repr(pid)}")
            if pid in seen:
                raise StateLoadError(f"{where} -> params: parameter id {pid} is in more than one place")
            seen.add(pid)
        names = group.get("param_names")
        if names is not None:
            if isinstance(names, (str, bytes, Mapping)) or not isinstance(names, Sequence):
                raise StateLoadError(f"{where} -> param_names must be a list of names, got {safe_repr(names)}")
            if len(names) != len(ids):
                raise StateLoadError(f"{where} has {len(ids)} params but {len(names)} param_names")
            for name in names:
                if not isinstance(name, str):
                    raise StateLoadError(f"{where} -> param_names: names are strings, got {safe_repr(name)}")
    for pid, entry in state.items():
        if not isinstance(entry, Mapping):
            raise StateLoadError(f"{what}: state[{safe_repr(pid)}] must be a dict of that parameter's state "
                                 f"(e.g. 'momentum_buffer'), got {safe_repr(entry)}")
    return state, groups


def _saved_names(groups: Sequence[Mapping[str, Any]]) -> dict[str, tuple[Any, int]]:
    """name -> (saved parameter id, saved group index); an error when names are absent or repeated."""
    index: dict[str, tuple[Any, int]] = {}
    for gi, group in enumerate(groups):
        names = group.get("param_names")
        if names is None or len(names) != len(group["params"]):
            raise StateLoadError(
                "the checkpoint's optimizer state has no parameter names (saved by plain torch, or by "
                "mmcv/mmengine, whose groups are unnamed), so it can only be matched by position, which is "
                "what silently mixes up state. Name it first with "
                "paramwise.name_optimizer_state(state_dict, model, cfg), giving the optimizer config it was "
                "saved with (None for a plain torch optimizer over model.parameters())"
            )
        for name, pid in zip(names, group["params"]):
            if name in index:
                raise StateLoadError(f"the checkpoint names parameter {name!r} twice (groups {index[name][1]} "
                                     f"and {gi}); it cannot be loaded by name")
            index[name] = (pid, gi)
    return index


def _current_names(optimizer: torch.optim.Optimizer) -> list[list[str]]:
    out = []
    for gi, group in enumerate(optimizer.param_groups):
        names = group.get("param_names")
        if names is None or len(names) != len(group["params"]):
            raise StateLoadError(
                f"group {gi} of the optimizer has no 'param_names', so state cannot be loaded into it by name; "
                "build the optimizer with paramwise, or give every group param_names"
            )
        out.append(list(names))
    return out


def _shape_fits(state: Mapping[str, Any], param: torch.Tensor) -> bool:
    return all(
        not isinstance(v, torch.Tensor) or v.ndim == 0 or v.shape == param.shape
        for k, v in state.items()
        if k in _PARAM_SHAPED
    )


def map_state_by_name(
    optimizer: torch.optim.Optimizer,
    state_dict: Mapping[str, Any],
    *,
    skip_mismatched: bool = False,
    for_loading: bool = False,
) -> tuple[dict[str, Any], StateLoadReport]:
    """Rewrite ``state_dict`` into ``optimizer``'s own layout by parameter name, and report what differs.

    The result can be given to torch's ``Optimizer.load_state_dict`` as it is: its groups are the
    optimizer's (current hyperparameters, current names), its state keyed by the current positions.
    ``for_loading`` makes each group's ``params`` a ``range`` (for that load only: it keeps torch's
    load linear, but a range does not survive ``torch.load(weights_only=True)``).
    """
    saved_state, saved_groups = check_structure(state_dict, "the state to load")
    saved = _saved_names(saved_groups)
    current = _current_names(optimizer)
    new_state: dict[int, Any] = {}
    new_groups: list[dict[str, Any]] = []
    missing: list[str] = []
    mismatched: list[str] = []
    fresh: list[str] = []
    used: set[str] = set()
    changes: dict[tuple[str, str, str], tuple[Any, Any, list[str]]] = {}
    unmapped: list[str] = []
    carried: list[str] = []
    position = 0
    for gi, (group, names) in enumerate(zip(optimizer.param_groups, current)):
        members: dict[int, list[str]] = {}  # saved group -> names of this group that came from it
        for offset, (name, param) in enumerate(zip(names, group["params"])):
            found = saved.get(name)
            if found is None:
                missing.append(name)
                continue
            used.add(name)
            pid, sgi = found
            members.setdefault(sgi, []).append(name)
            state = saved_state.get(pid)
            if state is None:
                fresh.append(name)
            elif not _shape_fits(state, param):
                if not skip_mismatched:
                    shapes = {k: tuple(v.shape) for k, v in state.items() if k in _PARAM_SHAPED and
                              isinstance(v, torch.Tensor)}
                    raise StateLoadError(
                        f"the saved state of {name!r} does not fit the parameter: {shapes} in the checkpoint, "
                        f"{tuple(param.shape)} now. The model changed shape there; load with "
                        "skip_mismatched=True to start that parameter fresh"
                    )
                mismatched.append(name)
            else:
                new_state[position + offset] = state
        new_group = {k: v for k, v in group.items() if k not in GROUP_ONLY_KEYS}
        _merge_group_values(gi, group, new_group, members, saved_groups, changes, unmapped, carried)
        ids = range(position, position + len(names))
        # a range for torch's own load (its `id in group['params']` test is then O(1), not a list scan:
        # torch's load is otherwise quadratic); a list where the result is kept or saved
        new_group["params"] = ids if for_loading else list(ids)
        new_group["param_names"] = list(names)
        new_groups.append(new_group)
        position += len(names)
    report = StateLoadReport(
        missing=tuple(missing),
        unexpected=tuple(n for n in saved if n not in used),
        changed=tuple(ValueChange(key, old, new, tuple(params)) for (key, _, _), (old, new, params) in changes.items()),
        unmapped=tuple(unmapped),
        mismatched=tuple(mismatched),
        fresh=tuple(fresh),
        carried=tuple(carried),
    )
    return {"state": new_state, "param_groups": new_groups}, report


def _merge_group_values(
    gi: int,
    group: Mapping[str, Any],
    new_group: dict[str, Any],
    members: Mapping[int, list[str]],
    saved_groups: Sequence[Mapping[str, Any]],
    changes: dict[tuple[str, str, str], tuple[Any, Any, list[str]]],
    unmapped: list[str],
    carried: list[str],
) -> None:
    """Set ``new_group``'s values from the config (``group``) and the checkpoint's groups, recording differences."""
    extras: dict[str, list[Any]] = {}
    scheduled: dict[str, list[tuple[Any, Any]]] = {}  # key -> (saved value, saved base) per saved group
    for sgi, names in members.items():
        old = saved_groups[sgi]
        for key, value in old.items():
            if key in GROUP_ONLY_KEYS or key in _CONFIG_ONLY or (key.startswith("initial_") and key[8:] in old):
                continue
            if f"initial_{key}" in old and key in group:
                scheduled.setdefault(key, []).append((value, old[f"initial_{key}"]))
                base_old, base_new = old[f"initial_{key}"], group.get(f"initial_{key}", group[key])
                _record(changes, key, base_old, base_new, names)
            elif key in group:
                base_new = group.get(f"initial_{key}", group[key])  # a scheduler made since: compare bases
                _record(changes, key, value, base_new, names)
            else:
                extras.setdefault(key, []).append(value)
    for key, pairs in scheduled.items():
        (value, base_old), *others = pairs
        if any(not (_same(v, value) and _same(b, base_old)) for v, b in others):
            unmapped.append(f"group {gi}: the scheduled {key} differs among the checkpoint's groups merged "
                            f"into it; the config's {key} is used and the schedule restarts there")
            continue
        base_new = group.get(f"initial_{key}", group[key])
        if _level(value) is None and _level(base_new) is not None:  # nan, inf, text: nothing to continue from
            unmapped.append(f"group {gi}: the checkpoint's scheduled {key} is {safe_repr(value, 40)}, not a finite "
                            "number >= 0; the config's value is used and the schedule restarts there")
        elif _same(base_old, base_new):
            new_group[key] = value
        else:
            ratio_old, ratio_new, now = _level(base_old), _level(base_new), _level(value)
            rescaled = None
            if ratio_old and ratio_new is not None and now is not None:  # the schedule's progress under the new base
                rescaled = _level(now * ratio_new / ratio_old)  # None where it overflows a float
            if rescaled is not None:
                new_group[key] = rescaled
            else:
                unmapped.append(f"group {gi}: the scheduled {key} cannot be rescaled to the new base "
                                f"{safe_repr(base_new)}; the config's value is used")
        new_group[f"initial_{key}"] = base_new
    for key, values in extras.items():
        if len(values) == sum(len(n) > 0 for n in members.values()) and all(_same(v, values[0]) for v in values):
            new_group[key] = values[0]
            carried.append(f"group {gi}: {key}={format_value(values[0])}")
        else:
            unmapped.append(f"group {gi}: {key!r} (per-group state the config does not set) differs among, or is "
                            f"missing from, the checkpoint's groups merged into it; it is left out")


def _record(changes: dict[tuple[str, str, str], tuple[Any, Any, list[str]]], key: str, old: Any, new: Any,
            names: list[str]) -> None:
    """Note that ``key`` is ``old`` in the checkpoint and ``new`` in the config for ``names``."""
    if not _same(old, new):
        slot = changes.setdefault((key, safe_repr(old), safe_repr(new)), (old, new, []))
        slot[2].extend(names)


def load_optimizer_state(
    optimizer: torch.optim.Optimizer,
    state_dict: Mapping[str, Any],
    *,
    strict: bool = False,
    skip_mismatched: bool = False,
) -> StateLoadReport:
    """Load ``state_dict`` into ``optimizer`` by parameter name and return what differed.

    Works for any optimizer whose groups carry ``param_names`` (paramwise's always do). With
    ``strict``, names on one side only are an error and nothing is loaded.
    """
    converted, report = map_state_by_name(optimizer, state_dict, skip_mismatched=skip_mismatched, for_loading=True)
    if strict and (report.missing or report.unexpected):
        raise StateLoadError("strict loading: names differ between the checkpoint and the optimizer:\n  "
                             + "\n  ".join(report.lines()[:2]))
    loader = getattr(optimizer, _LOADER_ATTR, None)
    if isinstance(loader, _ByName):
        loader.skip_next = True  # already converted: torch's call below runs our hook, which must not redo it
    try:
        optimizer.load_state_dict(converted)
    except (ValueError, KeyError, TypeError, IndexError, RuntimeError) as e:
        if isinstance(loader, _ByName):
            loader.skip_next = False
        raise StateLoadError(f"torch could not load the state (after matching it by name): "
                             f"{type(e).__name__}: {e}") from e
    _remember(optimizer, report)
    return report


_LOADER_ATTR = "_paramwise_state_by_name"
_REPORT_ATTR = "_paramwise_load_report"


def _remember(optimizer: torch.optim.Optimizer, report: StateLoadReport) -> None:
    setattr(optimizer, _REPORT_ATTR, report)


def last_load_report(optimizer: torch.optim.Optimizer) -> StateLoadReport | None:
    """The report of the last state loaded into ``optimizer`` by name (through torch's own call too)."""
    return getattr(optimizer, _REPORT_ATTR, None)


class _ByName:
    """The load-state-dict pre-hook paramwise puts on the optimizers it builds."""

    def __init__(self) -> None:
        self.skip_next = False

    def __call__(self, optimizer: torch.optim.Optimizer, state_dict: dict[str, Any]) -> dict[str, Any] | None:
        if self.skip_next:
            self.skip_next = False
            return None
        converted, report = map_state_by_name(optimizer, state_dict, for_loading=True)
        _remember(optimizer, report)
        if not report.clean:
            warnings.warn(
                "optimizer state loaded by parameter name:\n  " + "\n  ".join(report.lines())
                + "\n(paramwise.last_load_report(optimizer) has the details)",
                ParamwiseWarning,
                stacklevel=3,
            )
        return converted


def enable_state_by_name(optimizer: torch.optim.Optimizer) -> torch.optim.Optimizer:
    """Make ``optimizer.load_state_dict`` (torch's own call) load by parameter name; returns the optimizer."""
    if not isinstance(getattr(optimizer, _LOADER_ATTR, None), _ByName):
        loader = _ByName()
        optimizer.register_load_state_dict_pre_hook(loader)
        setattr(optimizer, _LOADER_ATTR, loader)
    return optimizer


# --------------------------------------------------------------------------- checkpoints without names


def attach_names(
    state_dict: Mapping[str, Any], order: Sequence[str], params: Mapping[str, torch.Tensor]
) -> dict[str, Any]:
    """``state_dict`` with ``param_names`` added: ``order`` names its parameters in saved order.

    ``params`` are the model's parameters by name, to check each saved state's shape against the
    parameter it would belong to. A count or shape that does not fit is an error naming the first
    mismatch. Which order a checkpoint was saved in is the builder's question
    (:func:`paramwise.saved_parameter_order`).
    """
    saved_state, saved_groups = check_structure(state_dict, "the state to name")
    ids = [pid for g in saved_groups for pid in g["params"]]
    if len(ids) != len(order):
        raise StateLoadError(
            f"the checkpoint holds {len(ids)} parameters, but the model under this config has {len(order)} "
            f"(first: {short_list(list(order[:3]))}). Give the optimizer config the checkpoint was saved with (its "
            "paramwise_cfg decides which parameters it held), or the names in saved order"
        )
    for pid, name in zip(ids, order):
        state = saved_state.get(pid)
        param = params.get(name)
        if state is not None and param is not None and not _shape_fits(state, param):
            shapes = {k: tuple(v.shape) for k, v in state.items() if k in _PARAM_SHAPED and isinstance(v, torch.Tensor)}
            raise StateLoadError(
                f"saved parameter #{pid} has state of shape {shapes}, but in this order it would be {name!r} of "
                f"shape {tuple(param.shape)}: the first mismatch. The order (config or model) differs from the "
                "one the checkpoint was saved with"
            )
    named_groups = []
    it = iter(order)
    for group in saved_groups:
        named_groups.append({**group, "param_names": [next(it) for _ in group["params"]]})
    return {"state": saved_state, "param_groups": named_groups}
