"""The plan: every parameter's resolved hyperparameters with their rules, and the groups made of them.

A ``Plan`` is plain data computed before any optimizer exists, so it can be printed, exported
to records (pandas), rendered in a notebook, or compared between two configs.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import Problem
from .groups import GroupSpec
from .rules import DEFAULT_RULE, ParamEntry
from .suggestions import format_value

__all__ = ["Plan", "format_value"]


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
        """One dict per parameter (name, shape, numel, group, each hyperparameter and its rule)."""
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
