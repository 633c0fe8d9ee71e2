"""The audit's advice in the config's dialect, checked by running it through mmengine's own constructor;
custom keys that drop an enclosing key's multiplier; one vocabulary of levels in the table and the JSON."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
from mmengine.optim import DefaultOptimWrapperConstructor
from torch import nn

from paramwise import plan_params
from paramwise.cli import main
from paramwise.plan.audit import LEVELS, Finding, audit_plan
from swin_like import SWIN_PARAMWISE_CFG, SwinLike

pytestmark = pytest.mark.filterwarnings("ignore::paramwise.ParamwiseWarning")

LR, WD = 1e-3, 0.05
BASE = dict(type="AdamW", lr=LR, weight_decay=WD)


def mmengine_values(model: nn.Module, paramwise_cfg: dict[str, Any]) -> dict[str, tuple[float, float]]:
    """Each parameter's (lr, weight_decay) as mmengine's DefaultOptimWrapperConstructor builds them."""
    constructor = DefaultOptimWrapperConstructor(dict(type="OptimWrapper", optimizer=dict(BASE)),
                                                 copy.deepcopy(paramwise_cfg))
    names = {id(p): n for n, p in model.named_parameters()}
    return {names[id(p)]: (g["lr"], g["weight_decay"])
            for g in constructor(model).optimizer.param_groups for p in g["params"]}


def audit(model: nn.Module, paramwise_cfg: dict[str, Any]) -> list[Finding]:
    return audit_plan(plan_params(model, dict(BASE, paramwise_cfg=paramwise_cfg)), model,
                      paramwise_cfg=paramwise_cfg)


def suggested_keys(message: str) -> dict[str, Any]:
    """The ``custom_keys={...}`` a finding suggests, as the config would hold it."""
    example = re.search(r"custom_keys=(\{.*\})$", message)
    assert example and "..." not in example.group(1), message
    return eval(example.group(1), {"dict": dict})  # our own message: Python a config takes


def with_keys(paramwise_cfg: dict[str, Any], keys: dict[str, Any]) -> dict[str, Any]:
    return dict(paramwise_cfg, custom_keys={**paramwise_cfg["custom_keys"], **keys})


def test_swin_custom_key_that_drops_the_backbone_lr_mult() -> None:
    model = SwinLike()
    pos = "backbone.absolute_pos_embed"
    table = "backbone.stages.0.blocks.0.attn.w_msa.relative_position_bias_table"
    before = mmengine_values(model, SWIN_PARAMWISE_CFG)
    assert before[pos][0] == pytest.approx(LR) and before["backbone.patch_embed.projection.weight"][0] == pytest.approx(
        0.1 * LR)  # what the finding says: mmengine trains the position table at 10x the backbone's lr
    [dropped] = [f for f in audit(model, SWIN_PARAMWISE_CFG) if f.kind == "dropped-mult"]
    assert dropped.level == "warning" and pos in dropped.names and table in dropped.names
    assert "custom_keys['absolute_pos_embed']" in dropped.message and "custom_keys['backbone']" in dropped.message
    assert "lr_mult=0.1" in dropped.message and "10x" in dropped.message
    fixed = with_keys(SWIN_PARAMWISE_CFG, suggested_keys(dropped.message))
    after = mmengine_values(model, fixed)
    for name in dropped.names:  # mmengine, given the fix: the backbone's lr, and still no decay
        assert after[name] == (pytest.approx(0.1 * LR), 0.0)
    assert not [f for f in audit(model, fixed) if f.kind == "dropped-mult"]
    plan = plan_params(model, dict(BASE, paramwise_cfg=fixed))  # paramwise agrees with mmengine on the fix
    assert {e.name: (plan.value_of(e, "lr"), plan.value_of(e, "weight_decay")) for e in plan.entries} == {
        n: (pytest.approx(lr), pytest.approx(wd)) for n, (lr, wd) in after.items()}


def test_dropped_decay_mult_and_a_deliberate_lr_mult() -> None:
    model = nn.Sequential()
    model.add_module("backbone", nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2)))
    cfg = dict(custom_keys={"backbone": dict(decay_mult=0.5), "backbone.1": dict(lr_mult=2.0)})
    [dropped] = [f for f in audit(model, cfg) if f.kind == "dropped-mult"]
    assert dropped.names == ("backbone.1.weight", "backbone.1.bias") and "decay_mult=0.5" in dropped.message
    fixed = with_keys(cfg, suggested_keys(dropped.message))
    assert mmengine_values(model, fixed)["backbone.1.weight"] == (pytest.approx(2 * LR), pytest.approx(0.5 * WD))
    deliberate = dict(custom_keys={"backbone": dict(lr_mult=0.1), "backbone.1": dict(lr_mult=1.0)})
    assert not [f for f in audit(model, deliberate) if f.kind == "dropped-mult"]


def norm_model() -> nn.Module:
    model = nn.Sequential()
    model.add_module("backbone", nn.Sequential(nn.Linear(2, 2, bias=False), nn.LayerNorm(2)))
    model.add_module("head", nn.Sequential(nn.LayerNorm(2), nn.Linear(2, 2, bias=False)))
    return model


def test_mmengine_config_gets_a_custom_key_mmengine_runs_not_compose() -> None:
    model = norm_model()
    cfg = dict(norm_decay_mult=0.0, custom_keys={"backbone": dict(lr_mult=0.1)})
    assert mmengine_values(model, cfg)["backbone.1.weight"] == (pytest.approx(0.1 * LR), WD)  # decayed
    [norm] = [f for f in audit(model, cfg) if f.kind == "norm"]
    assert norm.names == ("backbone.1.weight", "backbone.1.bias")
    assert "compose" not in norm.message and "decay_mult=0.0" in norm.message
    after = mmengine_values(model, with_keys(cfg, suggested_keys(norm.message)))
    assert after["backbone.1.weight"] == after["backbone.1.bias"] == (pytest.approx(0.1 * LR), 0.0)
    assert after["backbone.0.weight"] == (pytest.approx(0.1 * LR), WD)  # the rest of the backbone as it was
    assert after["head.0.weight"] == (LR, 0.0)  # norm_decay_mult still applies outside the key


def test_paramwise_config_gets_compose() -> None:
    model = norm_model()
    cfg = dict(norm_decay_mult=0.0, frozen="exclude", custom_keys={"backbone": dict(lr_mult=0.1)})
    [norm] = [f for f in audit(model, cfg) if f.kind == "norm"]
    assert norm.message.endswith("set compose=True to apply both")
    [norm] = [f for f in audit_plan(plan_params(model, dict(BASE, paramwise_cfg=cfg)), model) if f.kind == "norm"]
    assert "compose" not in norm.message  # the config unknown: advice that mmengine and paramwise both run


def test_json_levels_are_the_words_the_table_shows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "swin.json"
    config.write_text(json.dumps({"optimizer": dict(BASE, paramwise_cfg=SWIN_PARAMWISE_CFG)}))
    args = ["audit", str(config), "--model", "swin_like:SwinLike"]
    assert main([*args, "--format", "json"]) == 0
    findings = json.loads(capsys.readouterr().out)["findings"]
    assert main(args) == 0
    table = capsys.readouterr().out
    shown = re.findall(r"^ ?(\w+) ([\w-]+) ", table, re.M)
    assert [(f["level"], f["kind"]) for f in findings] == shown
    assert {f["level"] for f in findings} == set(LEVELS)
    assert findings[0]["kind"] == "dropped-mult"
