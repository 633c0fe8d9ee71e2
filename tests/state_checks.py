"""Optimizer state by parameter name, and an exact comparison of two such states, for the state tests."""

from __future__ import annotations

from typing import Any

import torch


def state_by_name(optimizer: torch.optim.Optimizer) -> dict[str, dict[str, Any]]:
    """Each parameter's state under its name (from the groups' ``param_names``)."""
    return {n: optimizer.state[p] for g in optimizer.param_groups for n, p in zip(g["param_names"], g["params"])
            if p in optimizer.state}


def assert_same_state(a: dict[str, dict[str, Any]], b: dict[str, dict[str, Any]]) -> None:
    """The same names, the same keys, and bit-equal values."""
    assert a.keys() == b.keys()
    for name in a:
        assert a[name].keys() == b[name].keys(), name
        for key in a[name]:
            assert torch.equal(torch.as_tensor(a[name][key]), torch.as_tensor(b[name][key])), (name, key)
