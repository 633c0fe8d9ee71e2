"""ZeRO from mmengine's config spelling: ``dict(type='ZeroRedundancyOptimizer', optimizer_type='AdamW', lr=...)``.

``ZeroRedundancyOptimizer`` (registered in ``OPTIMIZERS`` under that name) builds torch's
``torch.distributed.optim.ZeroRedundancyOptimizer`` over paramwise's groups, as mmengine's class of the
same name does, with paramwise's promises kept: every group's hyperparameters and ``param_names`` as
the plan says, ``state_dict()`` consolidated to rank 0 with the names, and ``load_state_dict`` by name.
torch's ZeRO module is imported on the first build only (it costs most of a second), so the class is
made then too.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

import torch

from paramwise.errors import ConfigError, Problem
from paramwise.optimizers import OPTIMIZERS
from paramwise.plan.spec import resolve_config
from paramwise.suggestions import safe_repr

__all__ = ["ZERO_OWN_ARGUMENTS", "ZeroRedundancyOptimizer", "zero_class"]

#: the arguments torch's ZeroRedundancyOptimizer takes for itself; the others go to the local optimizer
ZERO_OWN_ARGUMENTS = ("process_group", "parameters_as_bucket_view", "overlap_with_ddp")
_ROOT = ("optimizer",)


def _local_class(optimizer_type: Any, local_kwargs: dict[str, Any]) -> Any:
    """The local optimizer class ``optimizer_type`` names, its arguments checked as the optimizer's own."""
    if optimizer_type is None:  # a default only so that its absence is a config problem at its path
        raise ConfigError([Problem((*_ROOT, "optimizer_type"), (
            "is missing: ZeroRedundancyOptimizer needs the optimizer each rank runs on its shard, e.g. "
            "optimizer_type='AdamW'"), kind="missing")], title="invalid ZeroRedundancyOptimizer config")
    if not isinstance(optimizer_type, str) and not isinstance(optimizer_type, type):
        raise ConfigError([Problem((*_ROOT, "optimizer_type"), (
            f"must name the optimizer each rank runs on its shard, e.g. optimizer_type='AdamW', got "
            f"{safe_repr(optimizer_type)}"), kind="type")], title="invalid ZeroRedundancyOptimizer config")
    try:
        spec, _ = resolve_config({"type": optimizer_type, **local_kwargs}, None)
    except ConfigError as e:  # the same problems, at the paths the user wrote ('type' is 'optimizer_type' here)
        problems = [Problem(tuple("optimizer_type" if (part == "type" and i == 1) else part
                                  for i, part in enumerate(p.path)), p.message, kind=p.kind) for p in e.problems]
        raise ConfigError(problems, title="invalid local optimizer for ZeroRedundancyOptimizer") from None
    if spec.cls is ZeroRedundancyOptimizer or (isinstance(spec.cls, type) and issubclass(spec.cls, zero_class())):
        raise ConfigError([Problem((*_ROOT, "optimizer_type"), "names ZeroRedundancyOptimizer itself; name the "
                                   "optimizer each rank runs on its shard, e.g. 'AdamW'")])
    return spec.cls


def ZeroRedundancyOptimizer(  # a class's name in configs (mmengine's), made lazily
    params: Iterable[Any], optimizer_type: str | type[torch.optim.Optimizer] | None = None, **kwargs: Any
) -> torch.optim.Optimizer:
    """torch's ZeroRedundancyOptimizer over ``params`` (paramwise's groups), running ``optimizer_type`` per rank.

    mmengine's spelling: ``optimizer_type`` is a registered name (or a class), ``kwargs`` are its
    arguments plus ZeRO's own (``process_group``, ``parameters_as_bucket_view``; ``overlap_with_ddp``
    only with one group). Needs ``torch.distributed.init_process_group`` first, on every rank.
    """
    local_kwargs = {k: v for k, v in kwargs.items() if k not in ZERO_OWN_ARGUMENTS}
    local = _local_class(optimizer_type, local_kwargs)  # the config's problems first, then the environment's
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        raise ConfigError([Problem((*_ROOT, "type"), (
            "ZeroRedundancyOptimizer shards the optimizer state over the ranks of a process group, and none is "
            "initialised: call torch.distributed.init_process_group(...) on every rank (torchrun sets the "
            "environment it reads) before building the optimizer, or use the optimizer itself "
            f"(type={safe_repr(optimizer_type)}) in a single process"))], title="no process group")
    groups = list(params)
    if kwargs.get("overlap_with_ddp") and len(groups) > 1 and all(isinstance(g, dict) for g in groups):
        raise ConfigError([Problem((*_ROOT, "overlap_with_ddp"), (
            f"torch's ZeroRedundancyOptimizer supports one parameter group with overlap_with_ddp=True, but the "
            f"plan has {len(groups)}: remove overlap_with_ddp, or make the groups equal (no paramwise_cfg)"))],
            title="invalid ZeroRedundancyOptimizer config")
    return zero_class()(groups, local, **kwargs)


@functools.cache
def zero_class() -> type[Any]:
    """The ZeroRedundancyOptimizer subclass paramwise builds, made on first use (torch's module is slow to import)."""
    from torch.distributed.optim import ZeroRedundancyOptimizer as TorchZero

    class ZeroRedundancyOptimizer(TorchZero):  # type: ignore[misc,valid-type]
        """torch's ZeRO with names kept per rank, the state consolidated to rank 0, and loads by name first."""

        def __init__(self, params: Any, optimizer_class: type[torch.optim.Optimizer], **kwargs: Any) -> None:
            super().__init__(params, optimizer_class, **kwargs)
            self._name_local_groups()

        def _name_local_groups(self) -> None:
            """Give each local group the names of the parameters this rank holds (torch copies the whole
            group's ``param_names`` into each rank's share, so they no longer fit its ``params``)."""
            if not hasattr(self, "optim"):
                return  # overlap_with_ddp: the local optimizer comes with DDP's first buckets
            for whole, local in zip(self.param_groups, self.optim.param_groups):
                names = whole.get("param_names")
                if names is None:
                    continue
                by_id = {id(p): n for p, n in zip(whole["params"], names)}
                local["param_names"] = [by_id[id(p)] for p in local["params"]]

        def add_param_group(self, param_group: dict[str, Any]) -> None:
            super().add_param_group(param_group)
            if getattr(self, "initialized", False):
                self._name_local_groups()

        def step(self, closure: Any = None, **kwargs: Any) -> Any:
            loss = super().step(closure, **kwargs)
            self._name_local_groups()  # torch copied the whole groups' keys onto the local ones
            return loss

        def state_dict(self) -> dict[str, Any]:
            """The whole state, with names, on rank 0 (every rank must call it: it gathers the shards);
            ``{}`` on the other ranks, as mmengine's ZeroRedundancyOptimizer."""
            self.consolidate_state_dict(to=0)
            if self.rank != 0:
                return {}
            return super().state_dict()

        def load_state_dict(self, state_dict: dict[str, Any]) -> None:
            """Load a whole (consolidated) state: first by name onto the current groups (paramwise's hook and
            any other pre-hook), then torch's ZeRO keeps each rank's share."""
            hooks = self._optimizer_load_state_dict_pre_hooks
            for hook in list(hooks.values()):
                changed = hook(self, state_dict)
                if changed is not None:
                    state_dict = changed
            # torch reads the state by index before Optimizer.load_state_dict would run the hooks: they ran above
            self._optimizer_load_state_dict_pre_hooks = OrderedDict()
            try:
                super().load_state_dict(dict(state_dict, state=dict(state_dict["state"])))
            finally:
                self._optimizer_load_state_dict_pre_hooks = hooks
            self._name_local_groups()

    ZeroRedundancyOptimizer.__module__ = __name__
    ZeroRedundancyOptimizer.__qualname__ = "ZeroRedundancyOptimizer"
    return ZeroRedundancyOptimizer


# mmengine registers its class under this name; configs written for it build here unchanged
OPTIMIZERS.register_module(name="ZeroRedundancyOptimizer", module=ZeroRedundancyOptimizer)
