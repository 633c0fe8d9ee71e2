"""Names for optimizer state saved without them: the order in which the builder puts a model's parameters.

A plain torch, mmcv or mmengine checkpoint holds its parameters by position. Which parameter each
position is depends on the optimizer config it was saved with, so the answer comes from the
builder; :func:`paramwise.state.by_name.attach_names` then writes the names in.

Imports: :mod:`paramwise.build.constructors`, :mod:`paramwise.state`, :mod:`paramwise.walk` and the base.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from torch import nn

from paramwise.build.constructors import plan_params
from paramwise.errors import ParamwiseWarning, StateLoadError, UsageTypeError
from paramwise.state.by_name import attach_names
from paramwise.suggestions import safe_repr
from paramwise.walk import unwrap_model

__all__ = ["name_optimizer_state", "saved_parameter_order"]


def saved_parameter_order(model: nn.Module, cfg: Mapping[str, Any] | None = None) -> list[str]:
    """The parameter names, in the order an unnamed checkpoint holds them.

    ``cfg`` is the optimizer config it was saved with. ``None`` (or one without ``paramwise_cfg``)
    means ``Optimizer(model.parameters())``: every parameter, frozen ones too, which is also what
    mmengine builds for an empty ``paramwise_cfg``. With a ``paramwise_cfg``, mmcv/mmengine kept one
    group per trainable parameter, in model order.
    """
    if cfg is not None and not isinstance(cfg, Mapping):
        raise UsageTypeError(f"the optimizer config must be a dict (or None for a plain torch optimizer over "
                             f"model.parameters()), got {type(cfg).__name__}")
    if cfg is None or cfg.get("paramwise_cfg") is None or cfg.get("paramwise_cfg") == {}:
        return [name for name, _ in unwrap_model(model).named_parameters()]
    raw = cfg["paramwise_cfg"]
    # not a dict: plan_params reports it at its path
    pw = dict(raw, frozen="exclude", group_by="param", bypass_duplicate=True) if isinstance(raw, Mapping) else raw
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ParamwiseWarning)
        return [e.name for e in plan_params(model, {**cfg, "paramwise_cfg": pw}).entries]


def name_optimizer_state(
    state_dict: Mapping[str, Any],
    model: nn.Module,
    cfg: Mapping[str, Any] | None = None,
    *,
    names: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Add ``param_names`` to an unnamed optimizer state_dict (plain torch, mmcv/mmengine).

    The saved order is the model's under the config the checkpoint was made with (see
    :func:`saved_parameter_order`), or ``names`` when given. A count or shape that does not fit is
    an error naming the first mismatch.
    """
    if names is not None:
        if isinstance(names, (str, bytes, Mapping)) or not isinstance(names, Sequence):
            raise StateLoadError(f"name_optimizer_state(names=...) takes a list of parameter names in saved order, "
                                 f"got {type(names).__name__}")
        bad = [n for n in names if not isinstance(n, str)]
        if bad:
            raise StateLoadError(f"name_optimizer_state(names=...): names are strings, got {safe_repr(bad[0])}")
        if len(set(names)) != len(names):
            met: set[str] = set()
            for twice in names:
                if twice in met:
                    break
                met.add(twice)
            raise StateLoadError(f"name_optimizer_state(names=...) names {twice!r} twice")
    order = list(names) if names is not None else saved_parameter_order(model, cfg)
    return attach_names(state_dict, order, dict(unwrap_model(model).named_parameters()))
