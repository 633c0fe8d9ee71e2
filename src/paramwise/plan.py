"""The plan: every parameter's resolved hyperparameters with their rules, and the groups made of them.

Planning has one home, here: walk the model -> match the rules -> apply them -> group the results
(``make_plan``), with what decides nothing collected as Problems. A ``Plan`` is plain data computed
before any optimizer exists, so it can be printed, exported to records (pandas), rendered in a
notebook, or compared between two configs; it keeps the optimizer spec it was made from, so it
cannot be built with another config's optimizer. Rendering lives in render.py, imported only
when a plan is shown.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from .diagnostics import idle_entries, short_list
from .errors import ConfigError, Problem
from .groups import GroupSpec, group_entries
from .paramwise_cfg import OptimizerSpec, ParamwiseOptions
from .rules import DEFAULT_RULE, ParamEntry, apply_rules
from .suggestions import format_value, plural

__all__ = ["Plan", "format_value", "frozen_notes", "make_plan", "plan_from_entries"]


@dataclass(frozen=True)
class Plan:
    """What an optimizer config means for one model, parameter by parameter."""

    optimizer: str
    base: Mapping[str, Any]  # the optimizer's keyword arguments from the config
    entries: tuple[ParamEntry, ...]
    groups: tuple[GroupSpec, ...]
    warnings: tuple[Problem, ...] = ()  # probably not what the author meant: `check` fails on them
    notes: tuple[Problem, ...] = ()  # worth knowing but normal (frozen parameters when fine-tuning)
    frozen: tuple[str, ...] = ()  # names left out (requires_grad=False)
    duplicates: tuple[tuple[str, str], ...] = ()  # (skipped name, kept name)
    spec: OptimizerSpec | None = field(default=None, repr=False, compare=False)  # what it was made from

    def __iter__(self) -> Iterator[ParamEntry]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, name: str) -> ParamEntry:
        for entry in self.entries:
            if entry.name == name:
                return entry
        raise KeyError(f"no parameter named {name!r} in the plan")

    def group_of(self) -> list[int]:
        """The group index of each entry, in entry order."""
        index = [0] * len(self.entries)
        for group in self.groups:
            for i in group.members:
                index[i] = group.index
        return index

    def value_of(self, entry: ParamEntry, key: str) -> Any:
        """``entry``'s value of ``key``: its own, else the optimizer config's (None when neither has it)."""
        return entry.hyperparams.get(key, self.base.get(key))

    def option_keys(self) -> list[str]:
        """Every hyperparameter named in any entry: lr and weight_decay first, then the rest sorted."""
        keys = {k for e in self.entries for k in e.hyperparams}
        head = [k for k in ("lr", "weight_decay") if k in keys]
        return head + sorted(keys - set(head))

    def to_records(self) -> list[dict[str, Any]]:
        """One dict per parameter: name, shape, numel, group, and per hyperparameter its value, rule and factors."""
        groups = self.group_of()
        keys = self.option_keys()
        records = []
        for entry, group in zip(self.entries, groups):
            record: dict[str, Any] = {
                "name": entry.name,
                "shape": list(entry.shape),
                "numel": entry.numel,
                "group": group,
                "trainable": entry.trainable,
            }
            for key in keys:
                record[key] = self.value_of(entry, key)
                record[f"{key}_rule"] = entry.rules.get(key, DEFAULT_RULE)
                # the value as the product of its factors, e.g. "0.001 x 0.1 custom_keys['head']"
                record[f"{key}_factors"] = " ".join(str(f) for f in entry.factors.get(key, ()))
            records.append(record)
        return records

    def group_records(self) -> list[dict[str, Any]]:
        """One dict per group: index, number of parameters, total numel, hyperparameters."""
        return [
            {
                "group": g.index,
                "params": len(g.members),
                "numel": sum(self.entries[i].numel for i in g.members),
                "hyperparams": dict(g.hyperparams),
            }
            for g in self.groups
        ]

    # Rendering lives in render.py; these hooks import it only when a plan is shown.
    def __str__(self) -> str:
        from .render import plan_text

        return plan_text(self)

    def __rich__(self) -> Any:
        """Render with rich (``rich.print(plan)``); rich is imported only then."""
        from .render import plan_table

        return plan_table(self)

    def _repr_html_(self) -> str:
        from .render import plan_html

        return plan_html(self)


def frozen_notes(frozen: Sequence[str]) -> list[Problem]:
    """The note about frozen parameters left out (normal when fine-tuning, so a note, not a warning)."""
    if not frozen:
        return []
    return [Problem(("model",), f"has {plural(len(frozen), 'parameter')} with requires_grad=False, left out of "
                                f"the optimizer ({short_list(list(frozen))}); set paramwise_cfg['frozen']='include' "
                                "to keep frozen parameters for later unfreezing")]


def plan_from_entries(
    spec: OptimizerSpec,
    options: ParamwiseOptions,
    entries: Sequence[ParamEntry],
    warnings: Sequence[Problem] = (),
    notes: Sequence[Problem] = (),
    frozen: Sequence[str] = (),
    duplicates: Sequence[tuple[str, str]] = (),
) -> Plan:
    """Group resolved entries into a Plan (the last step of planning, shared by every constructor)."""
    return Plan(
        optimizer=spec.type_name,
        base=dict(spec.kwargs),
        entries=tuple(entries),
        groups=group_entries(entries, spec.kwargs, options.group_by),
        warnings=tuple(warnings),
        notes=tuple(notes),
        frozen=tuple(frozen),
        duplicates=tuple(duplicates),
        spec=spec,
    )


def make_plan(
    model: nn.Module, spec: OptimizerSpec, options: ParamwiseOptions, extra_rules: Sequence[Any] = ()
) -> Plan:
    """Walk ``model``, apply every rule, collect what decides nothing, and group: the whole plan.

    Raises ``ConfigError`` for entries that match nothing when ``options.strict`` is set.
    """
    outcome = apply_rules(model, spec, options, extra_rules=extra_rules)
    idle = idle_entries(outcome, options, model)
    if idle.unmatched and options.strict:
        title = "config entries that match nothing in the model (paramwise_cfg['strict']=True)"
        raise ConfigError(idle.unmatched, title=title)
    found = [*idle.unmatched, *idle.shadowed]
    for rule in (*options.param_rules, *extra_rules):  # rules that read declarations from the model
        check = getattr(rule, "problems", None)
        if check is not None:
            found.extend(check(model))
    if outcome.duplicates:
        pairs = [f"{skipped} (= {kept})" for skipped, kept in outcome.duplicates]
        found.insert(0, Problem(("model",), "has shared parameters, optimized once under their first name: "
                                            f"{short_list(pairs)}"))
    return plan_from_entries(spec, options, outcome.entries, found, frozen_notes(outcome.frozen),
                             outcome.frozen, outcome.duplicates)
