"""Optimizer state by parameter name: mapping saved state onto any grouping, and checkpoint files.

Owns: loading a state_dict by the names in its groups (the current config wins, every change is
reported; a state of another model, or under another name prefix, refused with the prefix map that
fixes it), the load-state-dict hook the builder installs, naming a state in a given order, reading
checkpoint files and finding the optimizer state inside them, distributed checkpoints
(``torch.distributed.checkpoint``) saved and loaded by name on any number of ranks.

May import: the base and torch. It never imports the builder: which order an unnamed checkpoint was
saved in is the builder's answer (``paramwise.build.naming``).
"""

from __future__ import annotations

from paramwise.state.by_name import (
    MAIN_ROUTE,
    StateLoadReport,
    ValueChange,
    enable_state_by_name,
    last_load_report,
    load_converted,
    load_optimizer_state,
    map_state_by_name,
)
from paramwise.state.distributed import DCP_KEY, distributed_state_dict, load_distributed, save_distributed
from paramwise.state.files import describe_state, find_optimizer_state, read_checkpoint

__all__ = [
    "DCP_KEY", "MAIN_ROUTE", "StateLoadReport", "ValueChange", "describe_state", "distributed_state_dict",
    "enable_state_by_name", "find_optimizer_state", "last_load_report", "load_converted", "load_distributed",
    "load_optimizer_state", "map_state_by_name", "read_checkpoint", "save_distributed",
]
