"""From a plan's entries to parameter groups: equal hyperparameters share one group.

Few groups keep torch's foreach/fused kernels fast (they batch within a group only) and keep
``add_param_group``, which is quadratic in the number of groups, cheap. Order is deterministic:
groups in the order of their first parameter, parameters in model order. A group holds one layout
(:func:`tensor_layout`): plain tensors, or DTensors of one mesh and placements (FSDP2's
``fully_shard``), since torch's foreach kernels refuse a list that mixes them.
"""

from __future__ import annotations

import sys
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from paramwise.plan.rules import ParamEntry
from paramwise.plan.spec import GROUP_BY_CHOICES

__all__ = ["GroupSpec", "group_entries", "tensor_layout", "torch_param_groups"]


@dataclass(frozen=True)
class GroupSpec:
    """One parameter group: its hyperparameters and the indices of its entries in the plan."""

    index: int
    hyperparams: Mapping[str, Any]
    members: tuple[int, ...]


def _hashable(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, Mapping):
        items = ((k, _hashable(v)) for k, v in value.items())  # keys of mixed types sort by type, then text
        return tuple(sorted(items, key=lambda kv: (type(kv[0]).__name__, repr(kv[0]))))
    try:
        hash(value)
    except TypeError:
        return ("<object>", id(value))  # unhashable and unequal to anything else: its own group
    if hasattr(value, "__torch_function__"):  # a tensor hyperparameter (e.g. lr as a Tensor)
        return ("<tensor>", id(value))
    return value


def tensor_layout(param: Any) -> Hashable:
    """None for a plain tensor; for a DTensor (FSDP2, tensor parallel) its mesh and placements.

    Parameters of different layouts never share a group: torch's foreach kernels (the default for
    AdamW, SGD, ...) refuse a list that mixes plain tensors and DTensors, or DTensors of two meshes.
    """
    dtensor = sys.modules.get("torch.distributed.tensor")  # not imported: no parameter is a DTensor
    if dtensor is None or not isinstance(param, dtensor.DTensor):
        return None
    return ("DTensor", param.device_mesh, tuple(param.placements))


def group_entries(
    entries: Sequence[ParamEntry], base: Mapping[str, Any], group_by: str = "hyperparams"
) -> tuple[GroupSpec, ...]:
    """Group entries whose effective hyperparameters (``base`` overlaid by their own) and layout are equal.

    The layout (:func:`tensor_layout`) splits a model that is partly sharded: its DTensors and its
    plain tensors go to separate groups with the same hyperparameters.

    ``group_by='param'`` gives one group per parameter, the layout of mmcv/mmengine.
    """
    if group_by == "param":
        return tuple(GroupSpec(i, e.hyperparams, (i,)) for i, e in enumerate(entries))
    if group_by not in GROUP_BY_CHOICES:
        raise ValueError(f"group_by must be one of {', '.join(map(repr, GROUP_BY_CHOICES))}, got {group_by!r}")
    frozen_base = {k: _hashable(v) for k, v in base.items()}
    slots: dict[tuple, list[int]] = {}
    # entries with the same outcome share one hyperparams mapping: find its slot once per layout
    slot_of: dict[tuple[int, Hashable], list[int]] = {}
    for i, entry in enumerate(entries):
        layout = tensor_layout(entry.param)
        members = slot_of.get((id(entry.hyperparams), layout))
        if members is None:
            effective = dict(frozen_base)
            effective.update((k, _hashable(v)) for k, v in entry.hyperparams.items())
            key = (tuple(sorted(effective.items())), layout)
            members = slot_of[(id(entry.hyperparams), layout)] = slots.setdefault(key, [])
        members.append(i)
    # dicts keep insertion order: groups come in the order of their first member
    return tuple(
        GroupSpec(n, entries[members[0]].hyperparams, tuple(members)) for n, members in enumerate(slots.values())
    )


def torch_param_groups(entries: Sequence[ParamEntry], groups: Sequence[GroupSpec]) -> list[dict[str, Any]]:
    """The ``param_groups`` list to hand to a ``torch.optim.Optimizer``, names included."""
    out = []
    for group in groups:
        out.append({
            "params": [entries[i].param for i in group.members],
            "param_names": [entries[i].name for i in group.members],
            **group.hyperparams,
        })
    return out
