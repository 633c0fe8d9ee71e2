"""From a config and a model to a torch optimizer: the constructors and ``build_optimizer``.

Owns: ``DefaultOptimizerConstructor`` / ``DefaultOptimWrapperConstructor`` (with mmcv's and mmengine's
``add_params`` for subclasses), the OpenMMLab layer-decay and force-default constructors, the composite
``HybridOptimizer`` (one child optimizer per route),
``build_optimizer`` and ``plan_params``, the saved order of unnamed checkpoints, and mmengine's
``ZeroRedundancyOptimizer`` spelling (``zero.py``: torch's ZeRO over paramwise's groups).

May import: the base, ``layers``, ``walk``, ``optimizers``, ``config``, ``plan`` and ``state`` (the
by-name loader it installs on every optimizer it builds).
"""

from __future__ import annotations

from paramwise.build.constructors import (
    CONSTRUCTORS,
    OPTIMIZER_BUILDERS,
    DefaultOptimizerConstructor,
    DefaultOptimWrapperConstructor,
    build_optimizer,
    optimizer_constructor,
    plan_params,
)
from paramwise.build.hybrid import HybridOptimizer
from paramwise.build.naming import name_optimizer_state, saved_parameter_order
from paramwise.build.zero import ZeroRedundancyOptimizer

__all__ = [
    "CONSTRUCTORS", "DefaultOptimWrapperConstructor", "DefaultOptimizerConstructor", "HybridOptimizer",
    "OPTIMIZER_BUILDERS", "ZeroRedundancyOptimizer",
    "build_optimizer", "name_optimizer_state", "optimizer_constructor", "plan_params", "saved_parameter_order"
]
