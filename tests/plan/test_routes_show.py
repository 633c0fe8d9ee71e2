"""Routes in what ``paramwise show`` prints: the optimizer column, the reasons, JSON and CSV fields."""

from __future__ import annotations

import csv
import io
import json
import warnings
from pathlib import Path

import pytest

from gpt_like import GPT, issue_config
from paramwise import plan_params, render
from paramwise.cli import main


def test_text_has_the_optimizer_column_and_explain_the_reasons() -> None:
    plan = plan_params(GPT(layers=1), issue_config())
    text = render.plan_text(plan)
    header = text.splitlines()[0].split()
    assert header[:5] == ["name", "shape", "numel", "group", "optimizer"]
    rows = {line.split()[0]: line.split() for line in text.splitlines()[1:] if line.startswith(("tok", "blocks"))}
    assert rows["tok.weight"][4] == "AdamW" and rows["blocks.0.qkv.weight"][4] == "Muon"
    assert text.splitlines()[0] != render.plan_text(plan_params(GPT(layers=1), dict(type="AdamW", lr=1e-3)))
    explained = render.plan_text(plan, explain=True)
    assert "AdamW: embedding (nn.Embedding)" in explained and "AdamW: output head ('lm_head')" in explained
    assert "Muon: hidden matrix" in explained


def test_without_routes_no_route_column() -> None:
    plan = plan_params(GPT(layers=1), dict(type="AdamW", lr=1e-3))
    assert "optimizer" not in render.plan_text(plan).splitlines()[0]
    assert "route" not in render.plan_csv(plan).splitlines()[0] and "routes" not in render.plan_json(plan)


def test_json_and_csv_carry_route_and_reason() -> None:
    plan = plan_params(GPT(layers=1), issue_config())
    data = render.plan_json(plan)
    assert data["routes"] == {"main": "AdamW", "Muon": "Muon"}
    record = {r["name"]: r for r in data["params"]}["lm_head.weight"]
    assert (record["route"], record["optimizer"], record["route_reason"]) == ("main", "AdamW",
                                                                             "output head ('lm_head')")
    rows = {r["name"]: r for r in csv.DictReader(io.StringIO(render.plan_csv(plan)))}
    assert (rows["blocks.0.fc.weight"]["route"], rows["blocks.0.fc.weight"]["route_reason"]) == ("Muon",
                                                                                                 "hidden matrix")
    assert "optimizer" in render.plan_html(plan) and "route reason" in render.plan_html(plan)


def test_rich_table_shows_the_optimizer() -> None:
    pytest.importorskip("rich")
    from rich.console import Console

    console = Console(width=160, record=True)
    console.print(render.plan_table(plan_params(GPT(layers=1), issue_config()), explain=True))
    text = console.export_text()
    assert "optimizer" in text and "Muon: hidden matrix" in text and "+ Muon(lr=0.02" in text


def test_cli_show_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "muon.py"
    config.write_text(f"optim_wrapper = dict(optimizer={issue_config()!r})\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["show", str(config), "--model", "gpt_like:GPT", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    routes = {r["name"]: (r["optimizer"], r["route_reason"]) for r in data["params"]}
    assert routes["tok.weight"] == ("AdamW", "embedding (nn.Embedding)")
    assert routes["blocks.3.out.weight"] == ("Muon", "hidden matrix")
