"""Checkpoint files: reading one safely and finding the optimizer state inside it (mmengine, Lightning, scripts).

Imports: torch, :mod:`paramwise.errors` and :mod:`paramwise.state.by_name` (to describe what it finds).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from paramwise.errors import StateLoadError
from paramwise.state.by_name import GROUP_ONLY_KEYS, check_structure

__all__ = ["describe_state", "find_optimizer_state", "read_checkpoint"]

#: where frameworks keep the optimizer state in a whole checkpoint (mmengine, plain scripts, Lightning)
_STATE_KEYS = ("optimizer", "optimizer_state_dict", "optim", "optimizer_states")


def find_optimizer_state(checkpoint: Any, key: str | None = None) -> tuple[dict[str, Any], str]:
    """The optimizer state_dict inside a loaded checkpoint, and where it was (``'optimizer'``, ``''``...)."""
    def is_state(value: Any) -> bool:
        return isinstance(value, Mapping) and "state" in value and "param_groups" in value

    if key is not None:
        node = checkpoint
        for part in key.split("."):
            if isinstance(node, Mapping) and part in node:
                node = node[part]
            elif isinstance(node, (list, tuple)) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                raise StateLoadError(f"the checkpoint has no {key!r} (failed at {part!r})")
        if not is_state(node):
            raise StateLoadError(f"{key!r} in the checkpoint is not an optimizer state_dict")
        return dict(node), key
    if is_state(checkpoint):
        return dict(checkpoint), ""
    if isinstance(checkpoint, Mapping):
        for name in _STATE_KEYS:
            value = checkpoint.get(name)
            if isinstance(value, (list, tuple)) and len(value) == 1 and is_state(value[0]):
                return dict(value[0]), f"{name}.0"  # Lightning: one list entry per optimizer
            if isinstance(value, Mapping) and is_state(value):
                return dict(value), name
            if isinstance(value, Mapping) and value and all(is_state(v) for v in value.values()):
                raise StateLoadError(
                    f"the checkpoint's {name!r} holds several optimizers ({', '.join(map(str, value))}); "
                    f"choose one with --key {name}.<name>"
                )
        keys = ", ".join(sorted(map(str, checkpoint))) or "(none)"
        raise StateLoadError(f"no optimizer state found in the checkpoint (keys: {keys}); name it with --key")
    raise StateLoadError(f"the checkpoint is a {type(checkpoint).__name__}, not a dict")


def read_checkpoint(path: str, *, trust: bool = False) -> Any:
    """``torch.load`` a checkpoint file on the CPU; only tensors and plain data unless ``trust``."""
    try:
        return torch.load(path, map_location="cpu", weights_only=not trust)
    except FileNotFoundError as exc:
        raise StateLoadError(f"checkpoint file {path!r} not found") from exc
    except Exception as exc:
        if trust:
            raise StateLoadError(f"cannot read checkpoint {path!r}: {type(exc).__name__}: {exc}") from exc
        raise StateLoadError(
            f"cannot read checkpoint {path!r} as tensors and plain data ({type(exc).__name__}); checkpoints of "
            "mmengine and others also hold Python objects: pass --trust to unpickle it fully, if you trust the file"
        ) from exc


def describe_state(state_dict: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One record per saved group: index, parameter count, names (or None), how many have state, values."""
    state, groups = check_structure(state_dict, "the state")
    out = []
    for gi, group in enumerate(groups):
        names = group.get("param_names")
        out.append({
            "group": gi,
            "params": len(group["params"]),
            "with_state": sum(1 for pid in group["params"] if pid in state),
            "names": list(names) if names is not None else None,
            "hyperparams": {k: v for k, v in group.items() if k not in GROUP_ONLY_KEYS},
        })
    return out
