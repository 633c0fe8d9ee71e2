"""paramwise: PyTorch optimizers, schedules and parameter groups from plain configuration.

The names below load lazily, so ``import paramwise`` stays cheap and does not import torch
until something that needs it is used.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "Registry": "registry",
    "build_from_cfg": "registry",
    "ParamwiseError": "errors",
    "ConfigError": "errors",
    "NotRegisteredError": "errors",
    "DuplicateRegistrationError": "errors",
    "BuildArgumentError": "errors",
    "MissingTypeError": "errors",
    "UsageTypeError": "errors",
    "BuildTargetError": "errors",
    "SharedParameterError": "errors",
    "Problem": "errors",
    "ParamwiseWarning": "errors",
    "OPTIMIZERS": "optimizers",
    "NORM_LAYERS": "layers",
    "OPTIMIZER_BUILDERS": "constructors",
    "CONSTRUCTORS": "constructors",
    "DefaultOptimizerConstructor": "constructors",
    "DefaultOptimWrapperConstructor": "constructors",
    "register_group_flag": "paramwise_cfg",
    "GROUP_FLAGS": "paramwise_cfg",
    "build_optimizer": "constructors",
    "plan_params": "constructors",
    "optimizer_config": "optimizer_section",
    "OptimizerConfig": "optimizer_section",
    "optimizer_constructor": "constructors",
    "Plan": "plan",
    "load_optimizer_state": "checkpoint",
    "name_optimizer_state": "checkpoint",
    "map_state_by_name": "checkpoint",
    "last_load_report": "checkpoint",
    "enable_state_by_name": "checkpoint",
    "saved_parameter_order": "checkpoint",
    "StateLoadReport": "checkpoint",
    "StateLoadError": "errors",
    "ValueChange": "checkpoint",
    "ParamEntry": "rules",
    "GroupSpec": "groups",
    "Config": "config",
    "LazyObject": "config_lazy",
    "ConfigDict": "config",
    "ConfigFileError": "config",
    "ConfigFileNotFoundError": "config",
    "ConfigDependencyError": "config",
    "ConfigKeyError": "config",
    "ConfigAttributeError": "config",
    "parse_cfg_options": "config",
    "MODELS": "models",
    "ModelSpecError": "models",
    "load_model": "models",
    "SCHEDULERS": "schedulers",
    "plan_table": "render",
}

__all__ = sorted([*_EXPORTS, "__version__"])


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        from .suggestions import did_you_mean

        raise AttributeError(f"module 'paramwise' has no attribute {name!r}.{did_you_mean(name, __all__)}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
