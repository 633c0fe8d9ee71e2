"""Optimizer state that follows parameter names, whatever the grouping on either side.

torch's ``Optimizer.load_state_dict`` matches saved state to parameters by position: after a config
change that regroups parameters, one parameter's Adam moments can land on another without a word.
Here the saved ``param_names`` decide where each parameter's state goes; the current config wins
for hyperparameters and every difference is reported; names on one side only are reported like
``Module.load_state_dict(strict=False)``'s missing/unexpected keys. A state in which (almost) no
name matches is another model's, or saved under another prefix (``module.``): that is an error with
the counts, the closest names and the prefix map that fixes it, as torch refuses such a state too.

Schedules: a saved group with ``initial_lr`` (or any ``initial_<key>``, as torch's and mmengine's
schedulers write) was being scheduled. Its base value is ``initial_<key>``; the scheduled value is
state, and carries over. When the config changed the base, the scheduled value is scaled by
new base / old base, so the schedule continues from where it was under the new base.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from paramwise import checks
from paramwise.errors import ForeignStateError, StateLoadError, UsageTypeError, warn_user
from paramwise.suggestions import format_value, safe_repr, short_list, suggest

__all__ = [
    "StateLoadError",
    "ForeignStateError",
    "GROUP_ONLY_KEYS",
    "MAIN_ROUTE",
    "FOREIGN_BELOW",
    "StateLoadReport",
    "attach_names",
    "check_structure",
    "ValueChange",
    "enable_state_by_name",
    "last_load_report",
    "load_converted",
    "load_optimizer_state",
    "map_state_by_name",
]

# per-parameter state of torch's optimizers that has the parameter's own shape (checked on load)
_PARAM_SHAPED = frozenset({
    "exp_avg", "exp_avg_sq", "max_exp_avg_sq", "momentum_buffer", "sum", "square_avg", "grad_avg",
    "acc_delta", "ax", "prev", "step_size", "exp_inf",
})
GROUP_ONLY_KEYS = ("params", "param_names")
#: The route of a group without a ``"route"`` key: the main optimizer's (a plain optimizer is all "main"); the
#: same name as ``plan.routes.MAIN_ROUTE``, which this light package does not import (a test keeps them equal).
MAIN_ROUTE = "main"
# mmengine copies a custom key's multipliers into its groups; they are config (the current config's
# resolved lr and weight decay already hold them), never state to carry over; "route" names the child
# of a composite optimizer that holds the group: the current grouping's answer, never the checkpoint's
_CONFIG_ONLY = frozenset({"lr_mult", "decay_mult", "route"})
#: A load whose matching names are fewer than this share of the saved parameters AND of the model's is
#: taken for another model's state and refused (``allow_unrelated=True`` loads it anyway). A resume after
#: adding or removing some modules keeps at least half of one side; a model grown threefold keeps all
#: the saved names, a pruned one all of its own.
FOREIGN_BELOW = 0.5
# how many leading name components a detected prefix may have ('module.', 'model.backbone.', ...)
_PREFIX_DEPTH = 3


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
        rerouted: parameters that moved to another route of a composite optimizer since the checkpoint
            (Muon <-> AdamW), as (name, saved route, current route); their state starts fresh there, as
            one optimizer's state means nothing to another's.
    """

    missing: tuple[str, ...] = ()
    unexpected: tuple[str, ...] = ()
    changed: tuple[ValueChange, ...] = ()
    unmapped: tuple[str, ...] = ()
    mismatched: tuple[str, ...] = ()
    fresh: tuple[str, ...] = ()
    carried: tuple[str, ...] = ()
    rerouted: tuple[tuple[str, str, str], ...] = ()

    @property
    def clean(self) -> bool:
        """True when every parameter found its state and nothing differed."""
        return not (self.missing or self.unexpected or self.changed or self.unmapped or self.mismatched
                    or self.carried or self.rerouted)

    def lines(self) -> list[str]:
        """One sentence per finding, for warnings and the CLI."""
        out = []
        if self.missing:
            out.append(f"missing from the checkpoint (state starts fresh): {short_list(self.missing)}")
        if self.unexpected:
            out.append(f"in the checkpoint but not in the optimizer (dropped): {short_list(self.unexpected)}")
        if self.mismatched:
            out.append(f"saved state of another shape (dropped): {short_list(self.mismatched)}")
        if self.rerouted:
            moves = [f"{name} ({saved} -> {now})" for name, saved, now in self.rerouted]
            out.append(f"moved to another optimizer since the checkpoint (state starts fresh there): "
                       f"{short_list(moves)}")
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


def keyed_by_position(state_dict: Any) -> Any:
    """``state_dict`` with integer parameter ids, where it comes keyed by parameter name instead.

    ``torch.distributed.checkpoint.state_dict.set_optimizer_state_dict`` hands the optimizer a state
    whose ``params`` and ``state`` keys are the parameters' fully qualified names: those names become
    ``param_names`` (what paramwise matches by) and the ids their positions. Anything else is returned
    as it is; the input is never changed.
    """
    if not isinstance(state_dict, Mapping) or not isinstance(state_dict.get("param_groups"), Sequence):
        return state_dict
    groups = state_dict["param_groups"]
    if not groups or not all(isinstance(g, Mapping) and isinstance(g.get("params"), Sequence)
                             and not isinstance(g.get("params"), str) and g["params"]
                             and all(isinstance(n, str) for n in g["params"]) for g in groups):
        return state_dict
    position: dict[str, int] = {}
    new_groups = []
    for group in groups:
        ids = [position.setdefault(name, len(position)) for name in group["params"]]
        new_groups.append({**group, "params": ids, "param_names": list(group["params"])})
    state = state_dict.get("state")
    new_state = {position.get(k, k) if isinstance(k, str) else k: v for k, v in state.items()} \
        if isinstance(state, Mapping) else state
    return {**state_dict, "state": new_state, "param_groups": new_groups}


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


def _saved_names(
    groups: Sequence[Mapping[str, Any]], prefix_map: Sequence[tuple[str, str]] = ()
) -> dict[str, tuple[Any, int, str]]:
    """name (after ``prefix_map``) -> (saved parameter id, saved group index, name as saved); an error when
    names are absent or repeated."""
    index: dict[str, tuple[Any, int, str]] = {}
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
        for saved_name, pid in zip(names, group["params"]):
            name = _mapped(saved_name, prefix_map)
            if name in index:
                first = index[name][2]
                via = "" if first == saved_name else f" ({first!r} and {saved_name!r} after prefix_map)"
                raise StateLoadError(f"the checkpoint names parameter {name!r} twice{via} (groups {index[name][1]} "
                                     f"and {gi}); it cannot be loaded by name")
            index[name] = (pid, gi, saved_name)
    return index


def _mapped(name: str, prefix_map: Sequence[tuple[str, str]]) -> str:
    """``name`` with the first (longest) matching old prefix of ``prefix_map`` replaced by its new one."""
    for old, new in prefix_map:
        if name.startswith(old):
            return new + name[len(old):]
    return name


def _checked_prefix_map(prefix_map: Mapping[str, str] | None) -> tuple[tuple[str, str], ...]:
    """``prefix_map`` as (old, new) pairs, longest old prefix first; a ``UsageTypeError`` unless str -> str."""
    if prefix_map is None:
        return ()
    if not isinstance(prefix_map, Mapping):
        raise UsageTypeError(f"prefix_map maps saved name prefixes to this model's, e.g. {{'module.': ''}}; got "
                             f"{safe_repr(prefix_map)}")
    for old, new in prefix_map.items():
        if not isinstance(old, str) or not isinstance(new, str):
            raise UsageTypeError(f"prefix_map maps strings to strings (old prefix -> new prefix, e.g. "
                                 f"{{'module.': ''}}); got {safe_repr(old)}: {safe_repr(new)}")
    return tuple(sorted(prefix_map.items(), key=lambda item: -len(item[0])))


def _dotted_prefixes(names: Sequence[str]) -> list[str]:
    """The prefixes of whole components that every name shares, shortest first: ``['', 'module.', ...]``."""
    shared: list[str] | None = None
    for name in names:
        parts = name.split(".")[:-1][:_PREFIX_DEPTH]  # the last component is the parameter's own name
        if shared is None:
            shared = parts
            continue
        same = 0
        while same < min(len(shared), len(parts)) and shared[same] == parts[same]:
            same += 1
        del shared[same:]
        if not shared:
            break
    shared = shared or []
    return ["".join(p + "." for p in shared[:k]) for k in range(len(shared) + 1)]


def _prefix_fix(saved: Sequence[str], current: set[str]) -> tuple[dict[str, str], int] | None:
    """The simplest prefix map under which most names match, and how many saved names it matches; or None.

    Candidates replace a prefix every saved name shares by one every current name shares (either may be
    empty: DDP's ``module.`` added on one side, a wrapper's ``vit.`` on the other).
    """
    best: tuple[dict[str, str], int] | None = None
    news = _dotted_prefixes(list(current))
    for old in _dotted_prefixes(saved):
        for new in news:
            if old == new:
                continue
            hits = sum(new + name[len(old):] in current for name in saved)
            if hits and (best is None or hits > best[1]):  # shortest first: ties keep the simpler map
                best = ({old: new}, hits)
    if best is None or _too_few(best[1], len(saved), len(current)):
        return None
    return best


def _too_few(matched: int, saved: int, current: int) -> bool:
    """Whether ``matched`` names are too few for a state of ``saved`` names to be this model's (``current``)."""
    if not saved or not current:
        return False  # an empty side: nothing to load or nothing to load into, not another model
    return matched < FOREIGN_BELOW * saved and matched < FOREIGN_BELOW * current


def _check_related(saved: Mapping[str, tuple[Any, int, str]], current: Sequence[list[str]]) -> None:
    """A ``ForeignStateError`` when too few saved names match the model's: another model, or another prefix."""
    names = [n for group in current for n in group]
    matched = sum(n in saved for n in names)
    if not _too_few(matched, len(saved), len(names)):
        return
    as_saved = [entry[2] for entry in saved.values()]
    fix = _prefix_fix(as_saved, set(names))
    lines = [
        f"the optimizer state does not fit this model: {matched:,} of {len(saved):,} saved parameters match a "
        f"parameter of this model by name (the model has {len(names):,}). Loading it would drop the saved state "
        "and start (almost) every parameter fresh, so it is refused, as torch's own load refuses a state that "
        "does not fit.",
        f"  in the checkpoint: {short_list(as_saved[:3])}" + _more(as_saved),
        f"  in this model: {short_list(names[:3])}" + _more(names),
    ]
    unmatched_current = [n for n in names if n not in saved]
    closest = [(s, found) for s in as_saved[:3] if s not in names
               for found in [_closest(s, unmatched_current)] if found]
    lines.append("  closest names: " + ("; ".join(f"{s!r} (saved) ~ {c!r} (model)" for s, c in closest)
                                        if closest else "none close (another model's state?)"))
    prefix_map: dict[str, str] | None = None
    if fix is not None:
        prefix_map, hits = fix
        (old, new), = prefix_map.items()
        if old and new:
            how = f"the saved names start with {old!r} where this model's start with {new!r}"
        elif old:
            how = (f"the saved names carry the prefix {old!r}, which this model's lack (as DistributedDataParallel "
                   "saves them)")
        else:
            how = f"this model's names carry the prefix {new!r}, which the saved names lack"
        lines.append(
            f"The names differ by a prefix: {how}. Map it: prefix_map={prefix_map!r} "
            f"(paramwise.load_optimizer_state(optimizer, state_dict, prefix_map=...), or "
            f"paramwise.enable_state_by_name(optimizer, prefix_map=...) before optimizer.load_state_dict; "
            f"paramwise state --map-prefix '{old}={new}'); then {hits:,} of {len(saved):,} match."
        )
    else:
        lines.append("Check that the checkpoint is this model's (and the model and config are the ones it was "
                     "trained with); prefix_map={old: new} maps names that differ by a prefix.")
    lines.append("To load the names that match anyway (every other parameter starts fresh), pass "
                 "allow_unrelated=True (paramwise state --allow-unrelated).")
    raise ForeignStateError("\n".join(lines), matched=matched, saved=len(saved), current=len(names),
                            prefix_map=prefix_map)


def _closest(name: str, candidates: Sequence[str]) -> str | None:
    """The candidate that ends the same way as ``name`` over most components (two at least: more than
    'weight'), as a renamed or re-nested module's parameters do; else the closest spelling, if any."""
    tail = name.split(".")[::-1]

    def shared(other: str) -> int:
        count = 0
        for a, b in zip(tail, reversed(other.split("."))):
            if a != b:
                break
            count += 1
        return count

    scores = [shared(c) for c in candidates]
    best = max(scores, default=0)
    if best >= 2:
        pool = [c for c, s in zip(candidates, scores) if s == best]
        return (suggest(name, pool, n=1) or pool)[0]
    found = suggest(name, candidates, n=1)
    return found[0] if found else None


def _more(names: Sequence[str]) -> str:
    return f" and {len(names) - 3:,} more" if len(names) > 3 else ""


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
    prefix_map: Mapping[str, str] | None = None,
    allow_unrelated: bool = False,
) -> tuple[dict[str, Any], StateLoadReport]:
    """Rewrite ``state_dict`` into ``optimizer``'s own layout by parameter name, and report what differs.

    The result can be given to torch's ``Optimizer.load_state_dict`` as it is: its groups are the
    optimizer's (current hyperparameters, current names), its state keyed by the current positions.
    ``for_loading`` makes each group's ``params`` a ``range`` (for that load only: it keeps torch's
    load linear, but a range does not survive ``torch.load(weights_only=True)``).
    ``prefix_map`` renames saved names before matching (``{'module.': ''}`` drops DDP's prefix, the
    longest matching old prefix wins). A state in which fewer than half of the saved names and fewer
    than half of the model's match (none at all, too) is a :class:`ForeignStateError`, unless
    ``allow_unrelated``.
    """
    saved_state, saved_groups = check_structure(keyed_by_position(state_dict), "the state to load")
    saved = _saved_names(saved_groups, _checked_prefix_map(prefix_map))
    current = _current_names(optimizer)
    if not allow_unrelated:
        _check_related(saved, current)
    new_state: dict[int, Any] = {}
    new_groups: list[dict[str, Any]] = []
    missing: list[str] = []
    mismatched: list[str] = []
    fresh: list[str] = []
    used: set[str] = set()
    changes: dict[tuple[str, str, str], tuple[Any, Any, list[str]]] = {}
    unmapped: list[str] = []
    carried: list[str] = []
    rerouted: list[tuple[str, str, str]] = []
    position = 0
    for gi, (group, names) in enumerate(zip(optimizer.param_groups, current)):
        members: dict[int, list[str]] = {}  # saved group -> names of this group that came from it
        route = _route(group)
        for offset, (name, param) in enumerate(zip(names, group["params"])):
            found = saved.get(name)
            if found is None:
                missing.append(name)
                continue
            used.add(name)
            pid, sgi, _ = found
            saved_route = _route(saved_groups[sgi])
            if saved_route != route:  # another optimizer's state (and hyperparameters): it starts fresh here
                rerouted.append((name, saved_route, route))
                continue
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
        unexpected=tuple(entry[2] for n, entry in saved.items() if n not in used),
        changed=tuple(ValueChange(key, old, new, tuple(params)) for (key, _, _), (old, new, params) in changes.items()),
        unmapped=tuple(unmapped),
        mismatched=tuple(mismatched),
        fresh=tuple(fresh),
        carried=tuple(carried),
        rerouted=tuple(rerouted),
    )
    return {"state": new_state, "param_groups": new_groups}, report


def _route(group: Mapping[str, Any]) -> str:
    """The route (child optimizer) a group belongs to; groups of a plain optimizer are the main route's."""
    route = group.get("route", MAIN_ROUTE)
    return route if isinstance(route, str) else safe_repr(route)


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
    prefix_map: Mapping[str, str] | None = None,
    allow_unrelated: bool = False,
) -> StateLoadReport:
    """Load ``state_dict`` into ``optimizer`` by parameter name and return what differed.

    Works for any optimizer whose groups carry ``param_names`` (paramwise's always do). With
    ``strict``, names on one side only are an error and nothing is loaded. ``prefix_map`` maps saved
    name prefixes to the model's (``{'module.': ''}``); a state of which few names match is an error
    (:class:`ForeignStateError`) unless ``allow_unrelated`` (see :func:`map_state_by_name`).
    """
    converted, report = map_state_by_name(optimizer, state_dict, skip_mismatched=skip_mismatched, for_loading=True,
                                          prefix_map=prefix_map, allow_unrelated=allow_unrelated)
    if strict and (report.missing or report.unexpected):
        raise StateLoadError("strict loading: names differ between the checkpoint and the optimizer:\n  "
                             + "\n  ".join(report.lines()[:2]))
    load_converted(optimizer, converted)
    _remember(optimizer, report)
    return report


def load_converted(optimizer: torch.optim.Optimizer, state_dict: Mapping[str, Any]) -> None:
    """Load a state already in ``optimizer``'s own layout through its ``load_state_dict``, past the by-name hook.

    For a state that :func:`map_state_by_name` converted (the hook must not convert it again), or one a
    composite optimizer split for its children. torch's refusal becomes a ``StateLoadError``.
    """
    loader = getattr(optimizer, _LOADER_ATTR, None)
    if isinstance(loader, _ByName):
        loader.skip_next = True  # torch's call below runs our hook, which must not redo the conversion
    try:
        optimizer.load_state_dict(dict(state_dict))
    except StateLoadError:
        raise
    except (ValueError, KeyError, TypeError, IndexError, RuntimeError) as e:
        raise StateLoadError(f"torch could not load the state (after matching it by name): "
                             f"{type(e).__name__}: {e}") from e
    finally:
        if isinstance(loader, _ByName):
            loader.skip_next = False


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
        self.prefix_map: dict[str, str] | None = None
        self.allow_unrelated = False

    def __call__(self, optimizer: torch.optim.Optimizer, state_dict: dict[str, Any]) -> dict[str, Any] | None:
        if self.skip_next:
            self.skip_next = False
            return None
        converted, report = map_state_by_name(optimizer, state_dict, for_loading=True, prefix_map=self.prefix_map,
                                              allow_unrelated=self.allow_unrelated)
        _remember(optimizer, report)
        if not report.clean:  # at the user's load_state_dict call, past torch's frames
            warn_user("optimizer state loaded by parameter name:\n  " + "\n  ".join(report.lines())
                      + "\n(paramwise.last_load_report(optimizer) has the details)")
        return converted


def enable_state_by_name(
    optimizer: torch.optim.Optimizer,
    *,
    prefix_map: Mapping[str, str] | None = None,
    allow_unrelated: bool = False,
) -> torch.optim.Optimizer:
    """Make ``optimizer.load_state_dict`` (torch's own call) load by parameter name; returns the optimizer.

    ``prefix_map`` and ``allow_unrelated`` (as in :func:`load_optimizer_state`) hold for every later load
    through torch's call, also one a framework makes; calling again replaces them.
    """
    checked = _checked_prefix_map(prefix_map)
    loader = getattr(optimizer, _LOADER_ATTR, None)
    if not isinstance(loader, _ByName):
        loader = _ByName()
        optimizer.register_load_state_dict_pre_hook(loader)
        setattr(optimizer, _LOADER_ATTR, loader)
    loader.prefix_map = dict(checked) or None
    loader.allow_unrelated = bool(allow_unrelated)
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
