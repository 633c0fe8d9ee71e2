"""Rendering plans and demo reports for people: counted words, rounded numbers, and narrow terminals."""

from __future__ import annotations

import csv
import io
import json
from fractions import Fraction

import pytest
import torch
from rich.console import Console
from rich.measure import Measurement
from torch import nn

import paramwise
from paramwise.demo.run import DemoResult, report_table, report_text
from paramwise.plan.plan import Plan
from paramwise.render import plan_csv, plan_html, plan_json, plan_table, plan_text, plural, rule_text, value_text

UNROUNDED = 0.1 * 0.003  # 0.00030000000000000003: what lr_mult=0.1 makes of lr=0.003
assert repr(UNROUNDED) != "0.0003"


def rich_text(renderable: object, width: int) -> str:
    console = Console(width=width, record=True, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.self_attention_query_key_value_projection = nn.Linear(4, 4)
        self.norm = nn.LayerNorm(4)


class Backbone(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.ModuleList([Block(), Block()])


class LongNames(nn.Module):
    """Long parameter names and long rules: what an 80-column terminal could not show whole."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = Backbone()
        self.head = nn.Linear(4, 2)


def long_plan() -> Plan:
    cfg = dict(type="AdamW", lr=0.003, weight_decay=0.05,
               paramwise_cfg=dict(custom_keys={"backbone.layers.0": dict(lr_mult=0.1)}, norm_decay_mult=0.0,
                                  bias_lr_mult=0.1, bias_decay_mult=0.5))
    return paramwise.plan_params(LongNames(), cfg)


def one_param_plan() -> Plan:
    model = nn.Module()
    model.scale = nn.Parameter(torch.ones(1))
    return paramwise.plan_params(model, dict(type="SGD", lr=0.003, paramwise_cfg=dict(
        custom_keys={"scale": dict(lr_mult=0.1)})))


# ----------------------------------------------------------------------------- counted words


def test_plural() -> None:
    assert plural(1, "group") == "1 group"
    assert plural(0, "group") == "0 groups"
    assert plural(2, "param") == "2 params"
    assert plural(6874, "element") == "6,874 elements"
    assert plural(1, "index", "indices") == "1 index" and plural(3, "index", "indices") == "3 indices"


def test_one_of_each_is_singular_in_text_and_table() -> None:
    plan = one_param_plan()
    text = plan_text(plan)
    assert "group 0: 1 param, 1 element, lr=0.0003" in text
    table = rich_text(plan_table(plan), 200)
    assert "SGD(lr=0.003): 1 parameter, 1 element, 1 group" in table
    assert "1 of 1 parameter contains 'scale'" in rich_text(plan_table(plan, name_filter="scale"), 200)
    for wrong in ("1 params", "1 parameters", "1 groups", "1 elements"):
        assert wrong not in text and wrong not in table


def test_demo_report_counts_and_rounds() -> None:
    result = DemoResult(losses=(2.5,), seconds=0.25, groups=(
        {"group": 0, "params": 1, "names": ["head.weight"], "lr": UNROUNDED, "weight_decay": 0.0},
        {"group": 1, "params": 4, "names": ["a", "b", "c", "d"], "lr": torch.tensor(UNROUNDED),
         "weight_decay": 0.05},
    ))
    text = report_text(result)
    assert "trained 1 step in" in text and "(mean of the first and last 1 step)" in text
    assert "group 0: lr=0.0003 weight_decay=0 (1 param: head.weight)" in text
    assert "group 1: lr=0.0003 weight_decay=0.05 (4 params: a, b, c, ... (+1))" in text
    table = rich_text(report_table(result), 120)
    for out in (text, table):
        assert "0.00030000000000000003" not in out and "tensor" not in out and "1 steps" not in out
    assert table.count("0.0003") == 2


# ----------------------------------------------------------------------------- rounded for people, exact for tools


def test_value_text_rounds_every_kind_of_number() -> None:
    assert value_text(UNROUNDED) == "0.0003"
    assert value_text((0.1 * 9, 0.999)) == "(0.9, 0.999)"
    assert value_text([UNROUNDED, 2]) == "(0.0003, 2)"
    assert value_text({"lr": UNROUNDED}) == "{lr: 0.0003}"
    assert value_text(torch.tensor(UNROUNDED)) == "0.0003"
    assert value_text(torch.tensor([UNROUNDED, 0.5])) == "(0.0003, 0.5)"
    assert value_text(Fraction(1, 3)) == "0.333333"
    assert value_text(float("inf")) == "inf"
    assert value_text(3) == "3" and value_text(True) == "True" and value_text(None) == "None"
    assert value_text("nesterov") == "nesterov"
    np = pytest.importorskip("numpy")
    assert value_text(np.float32(UNROUNDED)) == "0.0003"
    assert value_text(np.float64(UNROUNDED)) == "0.0003"
    assert value_text(np.int64(7)) == "7"
    assert value_text(np.array([UNROUNDED, 1.0])) == "(0.0003, 1)"


def test_tables_round_and_exports_stay_exact() -> None:
    model = nn.Sequential(nn.Linear(2, 2))
    cfg = dict(type="AdamW", lr=0.003, weight_decay=0.05, betas=(0.1 * 9, 0.999),
               paramwise_cfg=dict(custom_keys={"0.bias": dict(lr_mult=0.1, betas=(0.1 * 9, 0.1 * 3))}))
    plan = paramwise.plan_params(model, cfg)
    assert plan["0.bias"].hyperparams["lr"] == UNROUNDED  # the plan itself keeps the exact value
    for out in (plan_text(plan), rich_text(plan_table(plan), 200), plan_html(plan)):
        assert "0.0003" in out and "(0.9, 0.3)" in out
        assert "0.00030000000000000003" not in out and "0.9000000000000001" not in out
        assert "0.30000000000000004" not in out
    data = json.loads(json.dumps(plan_json(plan)))
    bias = next(p for p in data["params"] if p["name"] == "0.bias")
    assert bias["lr"] == UNROUNDED and bias["betas"] == [0.1 * 9, 0.1 * 3]
    assert any(g["hyperparams"].get("lr") == UNROUNDED for g in data["groups"])
    rows = {r["name"]: r for r in csv.DictReader(io.StringIO(plan_csv(plan)))}
    assert float(rows["0.bias"]["lr"]) == UNROUNDED and rows["0.bias"]["lr"] == repr(UNROUNDED)


# ----------------------------------------------------------------------------- narrow terminals


def column_text(out: str, header: str, next_header: str | None) -> str:
    """Everything in one column of the parameter table, all lines joined, whitespace removed."""
    lines = out.splitlines()
    top = next(i for i, line in enumerate(lines) if line.strip().startswith("name") and "rule" in line)
    start = lines[top].index(header)
    end = lines[top].index(next_header) if next_header else None
    body = []
    for line in lines[top + 2:]:  # after the header and its rule line
        if not line.strip():
            break
        body.append(line[start:end])
    return "".join("".join(body).split())


@pytest.mark.parametrize("width", [80, 60])
def test_narrow_terminal_folds_rule_and_name_never_cuts(width: int) -> None:
    plan = long_plan()
    rules = [rule_text(e) for e in plan.entries]
    assert "custom_keys['backbone.layers.0']" in rules
    assert any(";" in r for r in rules)  # a rule text with spaces: lr and weight_decay by different rules
    out = rich_text(plan_table(plan), width)
    assert "…" not in out and "..." not in out
    assert all(len(line) <= width for line in out.splitlines())
    assert column_text(out, "rule", None) == "".join("".join(rules).split())
    assert column_text(out, "name", "shape") == "".join(e.name for e in plan.entries)


def test_at_80_columns_names_stay_whole_and_the_rule_wraps_between_words() -> None:
    demo_like = paramwise.plan_params(paramwise.load_model("tiny_convnet", {}), dict(
        type="AdamW", lr=0.003, weight_decay=0.05,
        paramwise_cfg=dict(custom_keys={"backbone": dict(lr_mult=0.1)}, norm_decay_mult=0.0)))
    out = rich_text(plan_table(demo_like), 80)
    lines = out.splitlines()
    for entry in demo_like.entries:  # each name whole, on one line
        assert any(line.startswith(entry.name + " ") for line in lines)
    assert out.count("custom_keys[") == 6 and out.count("'backbone']") == 6  # wrapped after the bracket
    assert "…" not in out and all(len(line) <= 80 for line in lines)


def test_wide_console_and_measure_are_unchanged() -> None:
    plan = long_plan()
    console = Console(width=80, file=io.StringIO())
    natural = Measurement.get(console, console.options.update_width(100_000), plan_table(plan)).maximum
    assert 80 < natural < 300  # what the CLI widens a pipe's console to
    out = rich_text(plan_table(plan), natural)
    for entry in plan.entries:  # nothing folded: each row on one line
        assert any(entry.name in line and rule_text(entry) in line for line in out.splitlines())


def test_demo_report_folds_in_a_narrow_terminal() -> None:
    long = "backbone.layers.0.self_attention_query_key_value_projection.weight"
    result = DemoResult(losses=(2.0, 1.0), seconds=1.0, groups=(
        {"group": 0, "params": 1, "names": [long], "lr": 0.001, "weight_decay": 0.05},))
    out = rich_text(report_table(result), 60)
    assert "…" not in out and all(len(line) <= 60 for line in out.splitlines())
    assert long in "".join(out.split())


def test_notes_are_in_every_view() -> None:
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
    model[0].requires_grad_(False)
    with pytest.warns(paramwise.ParamwiseWarning, match="requires_grad=False"):
        plan = paramwise.plan_params(model, dict(type="SGD", lr=0.1))
    assert plan.notes and "requires_grad=False" in str(plan.notes[0])
    note = f"note: {plan.notes[0]}"
    assert note in plan_text(plan)
    assert "note:" in rich_text(plan_table(plan), 400) and "requires_grad=False" in rich_text(plan_table(plan), 400)
    assert "<p>note: " in plan_html(plan)
    assert plan_json(plan)["notes"] == [str(n) for n in plan.notes]
