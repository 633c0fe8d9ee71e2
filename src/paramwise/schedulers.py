"""``SCHEDULERS``: every learning-rate scheduler in ``torch.optim.lr_scheduler``, found by scanning.

Like ``OPTIMIZERS``, there is no hand-kept list: each public ``LRScheduler`` subclass that torch
exposes is registered under its class name, so a new torch release brings its new schedulers.
"""

from __future__ import annotations

import inspect
from types import ModuleType

from torch.optim import lr_scheduler

from .registry import Registry

__all__ = ["SCHEDULERS", "register_schedulers_from"]

SCHEDULERS = Registry("scheduler")


def _is_scheduler(obj: object) -> bool:
    return (
        inspect.isclass(obj)
        and issubclass(obj, lr_scheduler.LRScheduler)
        and obj is not lr_scheduler.LRScheduler
        and not obj.__name__.startswith("_")  # torch's deprecated alias _LRScheduler
    )


def register_schedulers_from(registry: Registry, module: ModuleType) -> list[str]:
    """Register every public ``LRScheduler`` subclass that ``module`` exposes; return the names used."""
    names = []
    for name in sorted(dir(module)):
        obj = getattr(module, name, None)
        if name.startswith("_") or not _is_scheduler(obj) or registry.holds(name):
            continue
        registry.register_module(name=name, module=obj)
        names.append(name)
    return names


register_schedulers_from(SCHEDULERS, lr_scheduler)
