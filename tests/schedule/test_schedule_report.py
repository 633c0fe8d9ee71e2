"""`paramwise schedule`: the milestone table, one column per distinct group, and the PNG plot."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

import paramwise
from paramwise.cli import main
from paramwise.demo.run import DEFAULT_CONFIG
from paramwise.schedule.report import schedule_curves

CONFIG = """\
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9),
                     paramwise_cfg=dict(custom_keys={'head': dict(lr_mult=0.5)}))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=4),
    dict(type='MultiStepLR', milestones=[2, 3], gamma=0.1, by_epoch=True, begin=0, end=4),
]
"""


def test_curves_merge_equal_groups_and_find_part_ends_and_jumps() -> None:
    model = nn.Sequential(nn.Linear(2, 2), nn.LayerNorm(2), nn.Linear(2, 2))
    optimizer = paramwise.build_optimizer(model, dict(
        type="SGD", lr=0.1, weight_decay=1e-4,
        paramwise_cfg=dict(norm_decay_mult=0.0, custom_keys={"2": dict(lr_mult=0.5)})))
    assert len(optimizer.param_groups) == 3  # norm (no decay) and Linear 0 share the lr curve
    schedule = paramwise.build_scheduler(optimizer, [
        dict(type="LinearLR", start_factor=0.1, by_epoch=False, begin=0, end=4),
        dict(type="MultiStepLR", milestones=[2, 3], gamma=0.1, by_epoch=True, begin=0, end=4),
    ], epoch_length=10)
    curves = schedule_curves(schedule, 40)
    assert curves.labels == ("0.weight +3", "2.weight +1")
    assert set(curves.milestones) >= {0, 4, 20, 30, 39}
    rows = dict(curves.rows())
    assert rows[4] == pytest.approx((0.1, 0.05))
    assert rows[20] == pytest.approx((0.01, 0.005)) and rows[30] == pytest.approx((0.001, 0.0005))
    for values in rows.values():
        assert values[1] / values[0] == pytest.approx(0.5)  # the ratio holds at every milestone
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.01)  # evaluating did not step the optimizer


@pytest.mark.slow
def test_cli_schedule_table_json_and_plot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    from PIL import Image

    path = tmp_path / "sched.py"
    path.write_text(textwrap.dedent(CONFIG))
    png = tmp_path / "lr.png"
    assert main(["schedule", str(path), "-m", "tiny_convnet", "--iters", "40", "--epoch-length", "10",
                 "--plot", str(png)]) == 0
    captured = capsys.readouterr()
    assert "lr per group at the steps where it changes" in captured.out
    assert f"plot written to {png}" in captured.err
    with Image.open(png) as image:
        assert image.size == (800, 450)
        pixels = torch.tensor(list(image.convert("L").tobytes()), dtype=torch.float32)
    assert pixels.std() > 10  # not blank: axes, labels and lines
    assert (pixels < 128).float().mean() > 0.005  # some dark ink

    assert main(["schedule", str(path), "-m", "tiny_convnet", "--iters", "40", "--epoch-length", "10",
                 "-f", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["param"] == "lr" and len(data["labels"]) == 2
    steps = {m["step"]: m["values"] for m in data["milestones"]}
    assert steps[0] == pytest.approx([0.005, 0.01]) or steps[0] == pytest.approx([0.01, 0.005])


def test_cli_schedule_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "sched.py"
    path.write_text(textwrap.dedent(CONFIG))
    assert main(["schedule", str(path), "-m", "tiny_convnet", "--iters", "40"]) == 1  # by_epoch needs a length
    assert "epoch_length" in capsys.readouterr().err
    bare = tmp_path / "bare.py"
    bare.write_text("optimizer = dict(type='SGD', lr=0.1)\nlr_config = dict(policy='step', step=[8, 11])\n")
    assert main(["schedule", str(bare), "-m", "tiny_convnet", "--iters", "10"]) == 1
    err = capsys.readouterr().err
    assert "param_scheduler: is missing" in err and "lr_config is not read" in err
    assert main(["schedule", str(DEFAULT_CONFIG), "-m", "tiny_convnet", "--iters", "0"]) == 2
