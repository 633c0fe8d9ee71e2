"""README's layer-decay example is what ``show --explain`` prints for that parameter."""

from __future__ import annotations

import re
from pathlib import Path

from torch import nn

import paramwise
from paramwise.render import explain_text

README = Path(__file__).resolve().parents[1] / "README.md"


class Layer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.attn = nn.Module()
        self.attn.qkv = nn.Linear(4, 12)


class FineTuned(nn.Module):
    """Twelve layers under ``backbone.layers``: the README's example model."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Module()
        self.backbone.layers = nn.ModuleList([Layer() for _ in range(12)])
        self.head = nn.Linear(4, 2)


def test_readme_layer_decay_example_matches_the_tool() -> None:
    [line] = [ln for ln in README.read_text().splitlines() if "backbone.layers.9.attn.qkv.weight ..." in ln]
    shown = line.split("... ", 1)[1]
    plan = paramwise.plan_params(FineTuned(), dict(type="AdamW", lr=0.001, weight_decay=0.05, paramwise_cfg=dict(
        custom_keys={"backbone": dict(lr_mult=0.1)}, layer_decay=0.65)))
    explained = explain_text(plan["backbone.layers.9.attn.qkv.weight"])
    assert explained.split("; ")[0] == shown
    assert re.search(r"0\.65\^3, layer 9 of 12", shown)
