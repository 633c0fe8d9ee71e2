"""Config files, read as mmengine reads them, and the sections of a whole config paramwise builds from.

Owns: the file formats (Python, YAML, JSON, TOML), ``_base_`` inheritance and ``{{_base_.x}}``
references, Python configs run in a sandbox, lazy imports (``LazyObject``), overrides
(``--cfg-options``), the dict with attribute access (``ConfigDict``), and ``optimizer_config``,
which finds the optimizer, wrapper and schedule sections of a whole config.

May import: the base (errors, suggestions, checks, registry). Never torch, never the plan.
"""

from __future__ import annotations

from paramwise.config.config import (
    MAX_DEPTH,
    MAX_INHERITANCE,
    MAX_VALUES,
    SUPPORTED_SUFFIXES,
    Config,
    ConfigDict,
    parse_cfg_options,
)
from paramwise.config.lazy import LazyObject
from paramwise.config.sections import OptimizerConfig, optimizer_config

__all__ = [
    "Config", "ConfigDict", "LazyObject", "MAX_DEPTH", "MAX_INHERITANCE", "MAX_VALUES", "OptimizerConfig",
    "SUPPORTED_SUFFIXES", "optimizer_config", "parse_cfg_options"
]
