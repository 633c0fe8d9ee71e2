"""paramwise: PyTorch optimizers, schedules and parameter groups from plain configuration.

The names below load lazily, so ``import paramwise`` stays cheap and does not import torch
until something that needs it is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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
    "InternalError": "errors",
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
    "Factor": "rules",
    "fold": "rules",
    "make_plan": "plan",
    "audit_plan": "audit",
    "build_optim_wrapper": "wrapper",
    "check_wrapper_config": "wrapper",
    "OptimWrapper": "wrapper",
    "AmpOptimWrapper": "wrapper",
    "OptimWrapperDict": "wrapper",
    "OPTIM_WRAPPERS": "wrapper",
    "group_labels": "wrapper",
    "ClipPolicy": "clipping",
    "build_scheduler": "schedules",
    "Schedule": "schedules",
    "ScheduleStateError": "errors",
    "MetricMissingError": "errors",
    "LearningRateDecayOptimizerConstructor": "layer_decay_constructors",
    "LayerDecayOptimizerConstructor": "layer_decay_constructors",
    "LearningRateDecayOptimWrapperConstructor": "layer_decay_constructors",
    "Finding": "audit",
    "PARAM_RULE_OPTIONS": "paramwise_cfg",
}

__all__ = sorted([*_EXPORTS, "__version__"])


if TYPE_CHECKING:  # what type checkers see: every export, so a misspelt name is an error, not Any
    from .audit import (
        Finding as Finding,
    )
    from .audit import (
        audit_plan as audit_plan,
    )
    from .checkpoint import (
        StateLoadReport as StateLoadReport,
    )
    from .checkpoint import (
        ValueChange as ValueChange,
    )
    from .checkpoint import (
        enable_state_by_name as enable_state_by_name,
    )
    from .checkpoint import (
        last_load_report as last_load_report,
    )
    from .checkpoint import (
        load_optimizer_state as load_optimizer_state,
    )
    from .checkpoint import (
        map_state_by_name as map_state_by_name,
    )
    from .checkpoint import (
        name_optimizer_state as name_optimizer_state,
    )
    from .checkpoint import (
        saved_parameter_order as saved_parameter_order,
    )
    from .clipping import ClipPolicy as ClipPolicy
    from .config import (
        Config as Config,
    )
    from .config import (
        ConfigAttributeError as ConfigAttributeError,
    )
    from .config import (
        ConfigDependencyError as ConfigDependencyError,
    )
    from .config import (
        ConfigDict as ConfigDict,
    )
    from .config import (
        ConfigFileError as ConfigFileError,
    )
    from .config import (
        ConfigFileNotFoundError as ConfigFileNotFoundError,
    )
    from .config import (
        ConfigKeyError as ConfigKeyError,
    )
    from .config import (
        parse_cfg_options as parse_cfg_options,
    )
    from .config_lazy import (
        LazyObject as LazyObject,
    )
    from .constructors import (
        CONSTRUCTORS as CONSTRUCTORS,
    )
    from .constructors import (
        OPTIMIZER_BUILDERS as OPTIMIZER_BUILDERS,
    )
    from .constructors import (
        DefaultOptimizerConstructor as DefaultOptimizerConstructor,
    )
    from .constructors import (
        DefaultOptimWrapperConstructor as DefaultOptimWrapperConstructor,
    )
    from .constructors import (
        build_optimizer as build_optimizer,
    )
    from .constructors import (
        optimizer_constructor as optimizer_constructor,
    )
    from .constructors import (
        plan_params as plan_params,
    )
    from .errors import (
        BuildArgumentError as BuildArgumentError,
    )
    from .errors import (
        BuildTargetError as BuildTargetError,
    )
    from .errors import (
        ConfigError as ConfigError,
    )
    from .errors import (
        DuplicateRegistrationError as DuplicateRegistrationError,
    )
    from .errors import (
        InternalError as InternalError,
    )
    from .errors import (
        MetricMissingError as MetricMissingError,
    )
    from .errors import (
        MissingTypeError as MissingTypeError,
    )
    from .errors import (
        NotRegisteredError as NotRegisteredError,
    )
    from .errors import (
        ParamwiseError as ParamwiseError,
    )
    from .errors import (
        ParamwiseWarning as ParamwiseWarning,
    )
    from .errors import (
        Problem as Problem,
    )
    from .errors import (
        ScheduleStateError as ScheduleStateError,
    )
    from .errors import (
        SharedParameterError as SharedParameterError,
    )
    from .errors import (
        StateLoadError as StateLoadError,
    )
    from .errors import (
        UsageTypeError as UsageTypeError,
    )
    from .groups import (
        GroupSpec as GroupSpec,
    )
    from .layer_decay_constructors import (
        LayerDecayOptimizerConstructor as LayerDecayOptimizerConstructor,
    )
    from .layer_decay_constructors import (
        LearningRateDecayOptimizerConstructor as LearningRateDecayOptimizerConstructor,
    )
    from .layer_decay_constructors import (
        LearningRateDecayOptimWrapperConstructor as LearningRateDecayOptimWrapperConstructor,
    )
    from .layers import (
        NORM_LAYERS as NORM_LAYERS,
    )
    from .models import (
        MODELS as MODELS,
    )
    from .models import (
        ModelSpecError as ModelSpecError,
    )
    from .models import (
        load_model as load_model,
    )
    from .optimizer_section import (
        OptimizerConfig as OptimizerConfig,
    )
    from .optimizer_section import (
        optimizer_config as optimizer_config,
    )
    from .optimizers import (
        OPTIMIZERS as OPTIMIZERS,
    )
    from .paramwise_cfg import (
        GROUP_FLAGS as GROUP_FLAGS,
    )
    from .paramwise_cfg import (
        PARAM_RULE_OPTIONS as PARAM_RULE_OPTIONS,
    )
    from .paramwise_cfg import (
        register_group_flag as register_group_flag,
    )
    from .plan import (
        Plan as Plan,
    )
    from .plan import (
        make_plan as make_plan,
    )
    from .registry import (
        Registry as Registry,
    )
    from .registry import (
        build_from_cfg as build_from_cfg,
    )
    from .render import (
        plan_table as plan_table,
    )
    from .rules import (
        Factor as Factor,
    )
    from .rules import (
        ParamEntry as ParamEntry,
    )
    from .rules import (
        fold as fold,
    )
    from .schedulers import (
        SCHEDULERS as SCHEDULERS,
    )
    from .schedules import (
        Schedule as Schedule,
    )
    from .schedules import (
        build_scheduler as build_scheduler,
    )
    from .wrapper import (
        OPTIM_WRAPPERS as OPTIM_WRAPPERS,
    )
    from .wrapper import (
        AmpOptimWrapper as AmpOptimWrapper,
    )
    from .wrapper import (
        OptimWrapper as OptimWrapper,
    )
    from .wrapper import (
        OptimWrapperDict as OptimWrapperDict,
    )
    from .wrapper import (
        build_optim_wrapper as build_optim_wrapper,
    )
    from .wrapper import (
        check_wrapper_config as check_wrapper_config,
    )
    from .wrapper import (
        group_labels as group_labels,
    )


if not TYPE_CHECKING:  # at run time, names load on first use

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
