"""paramwise: PyTorch optimizers, schedules and parameter groups from plain configuration.

The public names load lazily, so ``import paramwise`` stays cheap and does not import torch until
something that needs it is used. The one list of them is the ``if TYPE_CHECKING:`` block below:
type checkers read it as imports, and at run time ``__getattr__`` reads the same block (from this
file's syntax tree, on the first lookup) to learn which module holds each name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:  # the public API, one import per module; `as` marks each name as re-exported
    from paramwise.build.constructors import CONSTRUCTORS as CONSTRUCTORS
    from paramwise.build.constructors import OPTIMIZER_BUILDERS as OPTIMIZER_BUILDERS
    from paramwise.build.constructors import DefaultOptimizerConstructor as DefaultOptimizerConstructor
    from paramwise.build.constructors import DefaultOptimWrapperConstructor as DefaultOptimWrapperConstructor
    from paramwise.build.constructors import build_optimizer as build_optimizer
    from paramwise.build.constructors import optimizer_constructor as optimizer_constructor
    from paramwise.build.constructors import plan_params as plan_params
    from paramwise.build.hybrid import HybridOptimizer as HybridOptimizer
    from paramwise.build.naming import name_optimizer_state as name_optimizer_state
    from paramwise.build.naming import saved_parameter_order as saved_parameter_order
    from paramwise.build.openmmlab import LayerDecayOptimizerConstructor as LayerDecayOptimizerConstructor
    from paramwise.build.openmmlab import (
        LearningRateDecayOptimizerConstructor as LearningRateDecayOptimizerConstructor,
    )
    from paramwise.build.openmmlab import (
        LearningRateDecayOptimWrapperConstructor as LearningRateDecayOptimWrapperConstructor,
    )
    from paramwise.config.config import Config as Config
    from paramwise.config.config import ConfigDict as ConfigDict
    from paramwise.config.config import parse_cfg_options as parse_cfg_options
    from paramwise.config.lazy import LazyObject as LazyObject
    from paramwise.config.sections import OptimizerConfig as OptimizerConfig
    from paramwise.config.sections import optimizer_config as optimizer_config
    from paramwise.errors import BuildArgumentError as BuildArgumentError
    from paramwise.errors import BuildTargetError as BuildTargetError
    from paramwise.errors import ConfigAttributeError as ConfigAttributeError
    from paramwise.errors import ConfigDependencyError as ConfigDependencyError
    from paramwise.errors import ConfigError as ConfigError
    from paramwise.errors import ConfigFileError as ConfigFileError
    from paramwise.errors import ConfigFileNotFoundError as ConfigFileNotFoundError
    from paramwise.errors import ConfigKeyError as ConfigKeyError
    from paramwise.errors import DuplicateRegistrationError as DuplicateRegistrationError
    from paramwise.errors import ForeignStateError as ForeignStateError
    from paramwise.errors import InternalError as InternalError
    from paramwise.errors import MetricMissingError as MetricMissingError
    from paramwise.errors import MissingTypeError as MissingTypeError
    from paramwise.errors import ModelSpecError as ModelSpecError
    from paramwise.errors import NotRegisteredError as NotRegisteredError
    from paramwise.errors import ParamwiseError as ParamwiseError
    from paramwise.errors import ParamwiseWarning as ParamwiseWarning
    from paramwise.errors import Problem as Problem
    from paramwise.errors import ScheduleStateError as ScheduleStateError
    from paramwise.errors import SharedParameterError as SharedParameterError
    from paramwise.errors import StateLoadError as StateLoadError
    from paramwise.errors import UsageTypeError as UsageTypeError
    from paramwise.layers import NORM_LAYERS as NORM_LAYERS
    from paramwise.models import MODELS as MODELS
    from paramwise.models import load_model as load_model
    from paramwise.optimizers import OPTIMIZERS as OPTIMIZERS
    from paramwise.plan.audit import Finding as Finding
    from paramwise.plan.audit import audit_plan as audit_plan
    from paramwise.plan.groups import GroupSpec as GroupSpec
    from paramwise.plan.plan import Plan as Plan
    from paramwise.plan.plan import make_plan as make_plan
    from paramwise.plan.rules import Factor as Factor
    from paramwise.plan.rules import ParamEntry as ParamEntry
    from paramwise.plan.rules import fold as fold
    from paramwise.plan.spec import GROUP_FLAGS as GROUP_FLAGS
    from paramwise.plan.spec import PARAM_RULE_OPTIONS as PARAM_RULE_OPTIONS
    from paramwise.plan.spec import register_group_flag as register_group_flag
    from paramwise.registry import Registry as Registry
    from paramwise.registry import build_from_cfg as build_from_cfg
    from paramwise.render import plan_table as plan_table
    from paramwise.schedule.curve import SCHEDULERS as SCHEDULERS
    from paramwise.schedule.schedule import Schedule as Schedule
    from paramwise.schedule.schedule import build_scheduler as build_scheduler
    from paramwise.state.by_name import StateLoadReport as StateLoadReport
    from paramwise.state.by_name import ValueChange as ValueChange
    from paramwise.state.by_name import enable_state_by_name as enable_state_by_name
    from paramwise.state.by_name import last_load_report as last_load_report
    from paramwise.state.by_name import load_optimizer_state as load_optimizer_state
    from paramwise.state.by_name import map_state_by_name as map_state_by_name
    from paramwise.state.distributed import load_distributed as load_distributed
    from paramwise.state.distributed import save_distributed as save_distributed
    from paramwise.wrapper.clipping import ClipPolicy as ClipPolicy
    from paramwise.wrapper.optim_wrapper import OPTIM_WRAPPERS as OPTIM_WRAPPERS
    from paramwise.wrapper.optim_wrapper import AmpOptimWrapper as AmpOptimWrapper
    from paramwise.wrapper.optim_wrapper import OptimWrapper as OptimWrapper
    from paramwise.wrapper.optim_wrapper import OptimWrapperDict as OptimWrapperDict
    from paramwise.wrapper.optim_wrapper import build_optim_wrapper as build_optim_wrapper
    from paramwise.wrapper.optim_wrapper import check_wrapper_config as check_wrapper_config
    from paramwise.wrapper.optim_wrapper import group_labels as group_labels


if not TYPE_CHECKING:  # at run time, names load on first use

    def _exports() -> dict[str, str]:
        """Public name -> module, read from the ``if TYPE_CHECKING:`` block of this file (once)."""
        found = globals().get("_EXPORTS")
        if found is None:
            import ast
            from pathlib import Path

            tree = ast.parse(Path(__file__).read_text(encoding="utf-8"))
            block = next(node for node in tree.body if isinstance(node, ast.If)
                         and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING")
            found = {alias.asname or alias.name: node.module for node in block.body
                     if isinstance(node, ast.ImportFrom) and node.module for alias in node.names}
            globals()["_EXPORTS"] = found
        return found

    def __getattr__(name: str) -> Any:
        if name == "__all__":
            value: Any = sorted([*_exports(), "__version__"])
        else:
            module = _exports().get(name)
            if module is None:
                from paramwise.suggestions import did_you_mean

                raise AttributeError(f"module 'paramwise' has no attribute {name!r}."
                                     f"{did_you_mean(name, _exports())}")
            import importlib

            value = getattr(importlib.import_module(module), name)
        globals()[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted([*_exports(), "__version__"])
