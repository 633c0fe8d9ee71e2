"""The optimizer wrapper: accumulation, clipping, mixed precision, several optimizers as one.

Owns: ``OptimWrapper``, ``AmpOptimWrapper``, ``OptimWrapperDict``, ``build_optim_wrapper`` and the
clipping policies (norm, value, per group).

May import: the base, ``walk``, ``config`` (the wrapper section) and ``build`` (the optimizer it wraps).
"""

from __future__ import annotations

from paramwise.wrapper.clipping import ClipPolicy
from paramwise.wrapper.optim_wrapper import (
    OPTIM_WRAPPERS,
    AmpOptimWrapper,
    OptimWrapper,
    OptimWrapperDict,
    build_optim_wrapper,
    check_wrapper_config,
    group_labels,
    wrap_optimizer,
)

__all__ = [
    "AmpOptimWrapper", "ClipPolicy", "OPTIM_WRAPPERS", "OptimWrapper", "OptimWrapperDict", "build_optim_wrapper",
    "check_wrapper_config", "group_labels", "wrap_optimizer"
]
