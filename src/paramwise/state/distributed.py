"""Distributed checkpoints (``torch.distributed.checkpoint``) of a paramwise optimizer, loaded by parameter name.

torch's own resume path (``dcp.load`` then ``set_optimizer_state_dict``) keeps the grouping of the
checkpoint: flattened, each current group takes every hyperparameter from the checkpoint's value of its
first parameter (a config edit is silently lost after a regrouping); unflattened, a regrouped load fails
(``Missing key in checkpoint state_dict: optim.param_groups.2.lr``). Here the checkpoint is DCP's
flattened form (every value under its parameter's name, so DCP reshards it to any number of ranks), and
loading reads what the checkpoint holds for this model's names, then maps it by name as
:func:`paramwise.load_optimizer_state` does: state where it was, the current config wins, one report.
Communication is DCP's; nothing here talks to other ranks itself.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import torch
import torch.distributed as dist
from torch.distributed.checkpoint.api import CheckpointException
from torch.distributed.checkpoint.metadata import TensorStorageMetadata

from paramwise.errors import StateLoadError, UsageError, warn_user
from paramwise.state.by_name import (
    StateLoadReport,
    _checked_prefix_map,
    _current_names,
    _mapped,
    _same,
    load_optimizer_state,
)
from paramwise.suggestions import safe_repr, short_list

__all__ = ["DCP_KEY", "distributed_state_dict", "load_distributed", "save_distributed"]

#: The key the optimizer state is saved under in a DCP checkpoint (its entries: ``optimizer.state.<name>.<key>``
#: and ``optimizer.param_groups.<name>.<key>``), so one checkpoint can hold the model beside it.
DCP_KEY = "optimizer"
_STATE, _GROUPS = "state.", "param_groups."
# the group's member list, which torch's flattening copies onto every parameter: the save's grouping, not state
_DROPPED = frozenset({"param_names", "params"})


def _require_process_group(what: str) -> None:
    if not (dist.is_available() and dist.is_initialized()):
        raise UsageError(
            f"{what} needs the default process group: call torch.distributed.init_process_group(...) on every "
            "rank first (torchrun sets the environment for it), then build the model, wrap or shard it, and "
            "build the optimizer"
        )


def _check_model(optimizer: torch.optim.Optimizer, model: torch.nn.Module, what: str) -> None:
    """An error unless every parameter of ``optimizer`` is ``model``'s (sharding after the build replaces them)."""
    if not isinstance(optimizer, torch.optim.Optimizer) or not isinstance(model, torch.nn.Module):
        raise UsageError(f"{what}(optimizer, model, path) takes a torch optimizer and its model; got "
                         f"{type(optimizer).__name__} and {type(model).__name__}")
    own = {id(p) for p in model.parameters()}
    names = _current_names(optimizer)
    stray = [n for group, ns in zip(optimizer.param_groups, names) for n, p in zip(ns, group["params"])
             if id(p) not in own]
    if stray:
        raise UsageError(
            f"{what}: the optimizer holds parameters the model no longer has ({short_list(stray)}): the model "
            "was wrapped or sharded (fully_shard replaces every parameter by a DTensor) after the optimizer was "
            "built. Shard the model first, then build the optimizer from it"
        )


def distributed_state_dict(optimizer: torch.optim.Optimizer, model: torch.nn.Module) -> dict[str, Any]:
    """``optimizer``'s state in DCP's flattened form (``state.<name>.<key>``, ``param_groups.<name>.<key>``).

    For a ``dcp.save`` of your own that also holds the model: ``dcp.save({"model": ..., "optimizer":
    distributed_state_dict(optimizer, model)}, checkpoint_id=path)``; :func:`load_distributed` reads it.
    """
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

    _require_process_group("distributed_state_dict")
    _check_model(optimizer, model, "distributed_state_dict")
    # torch's flattened form as it is (param_names too), so torch's own dcp.load + set_optimizer_state_dict reads it
    return get_optimizer_state_dict(model, optimizer, options=StateDictOptions(flatten_optimizer_state_dict=True))


def save_distributed(optimizer: torch.optim.Optimizer, model: torch.nn.Module, path: str | os.PathLike[str]) -> None:
    """Save ``optimizer``'s state by parameter name with ``torch.distributed.checkpoint`` (call on every rank).

    The checkpoint can be loaded on any number of ranks, under any grouping, with :func:`load_distributed`.
    """
    import torch.distributed.checkpoint as dcp

    state = distributed_state_dict(optimizer, model)
    dcp.save({DCP_KEY: state}, checkpoint_id=os.fspath(path))


def _read_metadata(path: str) -> Mapping[str, Any]:
    """The checkpoint's entries (``optimizer.state.0.weight.exp_avg`` -> its storage metadata), or an error."""
    import torch.distributed.checkpoint as dcp

    if not os.path.isdir(path) or not os.path.isfile(os.path.join(path, ".metadata")):
        kind = "a file" if os.path.isfile(path) else ("a folder without .metadata" if os.path.isdir(path)
                                                       else "not there")
        raise StateLoadError(
            f"{path!r} is {kind}, not a torch.distributed.checkpoint folder. A state saved with torch.save on "
            "each rank holds that rank's shards only, for that number of ranks: it cannot be resharded. Save "
            "with paramwise.state.save_distributed(optimizer, model, path) (dcp.save of the state by name), "
            "which loads on any number of ranks; a full, unsharded state_dict loads with optimizer.load_state_dict"
        )
    try:
        metadata = dcp.FileSystemReader(path).read_metadata()
    except Exception as e:  # torch's reader raises what the file system or unpickling raises
        raise StateLoadError(f"{path!r}: the torch.distributed.checkpoint metadata cannot be read: "
                             f"{type(e).__name__}: {e}") from e
    return dict(metadata.state_dict_metadata)


def _split_entries(
    entries: Mapping[str, Any], key: str, path: str
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """The checkpoint's group values and state entries per saved name: name -> {key: storage metadata}."""
    head = f"{key}."
    if f"{head}{_GROUPS}0.params" in entries:
        raise StateLoadError(
            f"{path!r} holds the optimizer state under {key!r} unflattened (groups by position, as "
            "get_optimizer_state_dict saves it by default): a regrouped config cannot be matched to it. Save with "
            "paramwise.state.save_distributed (or StateDictOptions(flatten_optimizer_state_dict=True)), which "
            "keeps every value under its parameter's name"
        )
    groups: dict[str, dict[str, Any]] = {}
    for fqn, meta in entries.items():
        if fqn.startswith(head + _GROUPS):
            name, _, value_key = fqn[len(head + _GROUPS):].rpartition(".")
            if value_key not in _DROPPED:
                groups.setdefault(name, {})[value_key] = meta
            else:
                groups.setdefault(name, {})
    if not groups:
        tops = sorted({fqn.split(".", 1)[0] for fqn in entries})
        raise StateLoadError(
            f"{path!r} holds no optimizer state by name under {key!r} (its top-level keys: {short_list(tops)}). "
            "Save it with paramwise.state.save_distributed, or dcp.save a dict whose key (load_distributed(..., "
            "key=...)) holds distributed_state_dict(optimizer, model)"
        )
    states: dict[str, dict[str, Any]] = {name: {} for name in groups}
    for fqn, meta in entries.items():
        if not fqn.startswith(head + _STATE):
            continue
        rest = fqn[len(head + _STATE):]
        # the longest saved name that prefixes the entry (a state key never holds the parameter's dots)
        owner = max((n for n in groups if rest.startswith(n + ".")), key=len, default=None)
        if owner is not None:
            states[owner][rest[len(owner) + 1:]] = meta
    return groups, states


def _target(meta: Any, like: torch.Tensor | None) -> Any:
    """Where DCP reads one entry into: a tensor sharded as the parameter when it has its shape, else a whole one."""
    if not isinstance(meta, TensorStorageMetadata):
        return None  # a Python value: DCP puts the saved object in its place
    dtype = meta.properties.dtype
    if like is not None and tuple(like.shape) == tuple(meta.size):
        return torch.empty_like(like, dtype=dtype)  # a DTensor parameter's state: this rank's shard only
    return torch.empty(meta.size, dtype=dtype)


def _nested(flat: Mapping[str, Any]) -> dict[str, Any]:
    """``{'a.b': x}`` -> ``{'a': {'b': x}}``: a state key DCP flattened back into the optimizer's nesting."""
    out: dict[str, Any] = {}
    for dotted, value in flat.items():
        *parents, last = dotted.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return out


def _named_state(
    groups: Mapping[str, Mapping[str, Any]], states: Mapping[str, Mapping[str, Any]], wanted: set[str]
) -> dict[str, Any]:
    """The loaded entries as a state_dict with ``param_names``: names with equal saved values share a group."""
    saved_groups: list[dict[str, Any]] = []
    state: dict[int, Any] = {}
    for pid, (name, values) in enumerate(groups.items()):
        if name in wanted and states.get(name):
            state[pid] = _nested(states[name])
        home = next((g for g in saved_groups if g["_values"].keys() == values.keys()
                     and all(_same(g["_values"][k], v) for k, v in values.items())), None)
        if home is None:
            home = {"_values": dict(values), "params": [], "param_names": []}
            saved_groups.append(home)
        home["params"].append(pid)
        home["param_names"].append(name)
    return {"state": state, "param_groups": [{**g.pop("_values"), **g} for g in saved_groups]}


def load_distributed(
    optimizer: torch.optim.Optimizer,
    model: torch.nn.Module,
    path: str | os.PathLike[str],
    *,
    key: str = DCP_KEY,
    strict: bool = False,
    skip_mismatched: bool = False,
    prefix_map: Mapping[str, str] | None = None,
    allow_unrelated: bool = False,
) -> StateLoadReport:
    """Load a DCP checkpoint's optimizer state into ``optimizer`` by parameter name (call on every rank).

    Any number of ranks and any grouping on either side: each parameter's state goes to the parameter of
    the same name (resharded by DCP), the current config wins for hyperparameters, and what differed is
    returned, kept for :func:`paramwise.last_load_report` and warned once (by rank 0). The keywords are
    :func:`paramwise.load_optimizer_state`'s; ``key`` is where the state is in the checkpoint.
    """
    import torch.distributed.checkpoint as dcp

    _require_process_group("load_distributed")
    _check_model(optimizer, model, "load_distributed")
    where = os.fspath(path)
    groups, states = _split_entries(_read_metadata(where), key, where)
    renames = _checked_prefix_map(prefix_map)
    params = {n: p for group, names in zip(optimizer.param_groups, _current_names(optimizer))
              for n, p in zip(names, group["params"])}
    wanted = {n for n in groups if _mapped(n, renames) in params}
    request: dict[str, Any] = {}
    for name in wanted:
        like = params[_mapped(name, renames)]
        for value_key, meta in groups[name].items():
            request[f"{_GROUPS}{name}.{value_key}"] = _target(meta, None)
        for value_key, meta in states[name].items():
            request[f"{_STATE}{name}.{value_key}"] = _target(meta, like)
    loaded: dict[str, Any] = {key: request}
    if request:
        try:
            dcp.load(loaded, checkpoint_id=where)
        except (Exception, CheckpointException) as e:  # DCP's (a BaseException) gathers every rank's failure
            raise StateLoadError(f"{where!r}: torch.distributed.checkpoint could not read the optimizer state: "
                                 f"{type(e).__name__}: {safe_repr(str(e), 600)}") from e
    values = loaded[key]
    saved_groups = {n: ({k: values[f"{_GROUPS}{n}.{k}"] for k in groups[n]} if n in wanted else {}) for n in groups}
    saved_states = {n: {k: values[f"{_STATE}{n}.{k}"] for k in states[n]} for n in wanted}
    named = _named_state(saved_groups, saved_states, wanted)
    report = load_optimizer_state(optimizer, named, strict=strict, skip_mismatched=skip_mismatched,
                                  prefix_map=prefix_map, allow_unrelated=allow_unrelated)
    if not report.clean and dist.get_rank() == 0:
        warn_user(f"optimizer state loaded by parameter name from {where!r}:\n  " + "\n  ".join(report.lines())
                  + "\n(paramwise.last_load_report(optimizer) has the details)")
    return report
