"""The whole config an integration is given: a mapping, or a config file's path read as mmengine reads it."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from paramwise.config import Config
from paramwise.errors import UsageTypeError
from paramwise.suggestions import safe_repr

__all__ = ["load_config"]


def load_config(cfg: Mapping[str, Any] | str | os.PathLike[str]) -> Mapping[str, Any]:
    """A whole config from a mapping (returned as is, never changed) or a config file's path."""
    if isinstance(cfg, (str, os.PathLike)):
        return Config.fromfile(cfg)
    if not isinstance(cfg, Mapping):
        raise UsageTypeError(f"a paramwise config is a dict (with optim_wrapper and param_scheduler) or a config "
                             f"file's path, got {type(cfg).__name__}: {safe_repr(cfg)}")
    return cfg
