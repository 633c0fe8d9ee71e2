"""torch.distributed.checkpoint's own state-dict API on a paramwise optimizer: by name, the config wins.

``set_optimizer_state_dict`` hands the optimizer a state keyed by parameter names (flattened or not);
paramwise's load hook takes those names as ``param_names``. The API works in one process too, so the
regrouped, reconfigured load runs here in the test process (tests/distributed/ covers the ranks).
"""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn
from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict, set_optimizer_state_dict

import paramwise
from paramwise.state.by_name import keyed_by_position

CFG = dict(type="AdamW", lr=1e-3, weight_decay=0.1, paramwise_cfg=dict(norm_decay_mult=0.0))


@pytest.mark.parametrize("flatten", [True, False])
def test_torch_dcp_state_dict_api_loads_by_name_and_the_config_wins(flatten: bool) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4), nn.Linear(4, 2))
    optimizer = paramwise.build_optimizer(model, CFG)
    model(torch.randn(3, 4)).sum().backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)  # torch's flattened load initialises the state only without grads
    options = StateDictOptions(flatten_optimizer_state_dict=flatten)
    saved = get_optimizer_state_dict(model, optimizer, options=options)
    regrouped = paramwise.build_optimizer(model, dict(CFG, lr=5e-4, paramwise_cfg=dict(CFG["paramwise_cfg"],
                                                                                        group_by="param")))
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        set_optimizer_state_dict(model, regrouped, saved, options=options)
    for p in model.parameters():
        for key in ("exp_avg", "exp_avg_sq"):
            assert torch.equal(regrouped.state[p][key], optimizer.state[p][key])
    assert {g["lr"] for g in regrouped.param_groups} == {5e-4}  # the config's lr, not the checkpoint's
    norm = {g["param_names"][0]: g["weight_decay"] for g in regrouped.param_groups}
    assert norm["1.weight"] == 0.0 and norm["0.weight"] == 0.1  # not the first parameter's, as torch's flatten gives
    report = paramwise.last_load_report(regrouped)
    assert report is not None and any(c.key == "lr" for c in report.changed)


def test_a_state_keyed_by_names_becomes_positions_with_param_names_and_is_not_changed() -> None:
    state = {"state": {"a.weight": {"step": 1}}, "param_groups": [{"params": ["a.weight", "b"], "lr": 0.1}]}
    converted = keyed_by_position(state)
    assert converted["param_groups"] == [{"params": [0, 1], "param_names": ["a.weight", "b"], "lr": 0.1}]
    assert converted["state"] == {0: {"step": 1}}
    assert state["param_groups"][0]["params"] == ["a.weight", "b"]  # the input is untouched
    plain = {"state": {}, "param_groups": [{"params": [0], "lr": 0.1}]}
    assert keyed_by_position(plain) is plain


def test_the_state_loader_and_the_plan_name_the_main_route_alike() -> None:
    """state/ may not load plan/ (it stays light), so each spells the main route's name: they must agree."""
    from paramwise.plan.routes import MAIN_ROUTE as PLANNED
    from paramwise.state.by_name import MAIN_ROUTE as LOADED

    assert PLANNED == LOADED == "main"
