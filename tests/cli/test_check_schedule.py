"""``paramwise check`` checks the whole config: optimizer, wrapper and param_scheduler problems in one report."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from paramwise.cli import main


def write(folder: Path, text: str, name: str = "cfg.py") -> str:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def problems(stderr: str) -> list[str]:
    return re.findall(r"^  - (.*)$", stderr, re.M)


BROKEN_SCHEDULE = """
    optim_wrapper = dict(optimizer=dict(type="AdamW", lr=1e-3, weight_decay=0.05))
    param_scheduler = [
        dict(type="LinearLR", start_factor=0.1, by_epoch=False, begin=500, end=0),
        dict(type="CosineAnnealingLr", by_epoch=False, begin=500, end=1000),
        dict(type="CosineAnnealingLR", milestone=[3], by_epoch=False, begin=500, end=1000),
    ]
"""


def test_check_fails_on_a_broken_schedule_with_every_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # passed (exit 0) before: check planned and built only the optimizer
    assert main(["check", write(tmp_path, BROKEN_SCHEDULE), "-m", "tiny_mlp"]) == 1
    found = problems(capsys.readouterr().err)
    assert any(p.startswith("param_scheduler[0] -> end: must be larger than begin") for p in found)
    assert any(p.startswith("param_scheduler[1] -> type: 'CosineAnnealingLr' is not a known scheduler")
               and "'CosineAnnealingLR'" in p for p in found)
    assert any(p.startswith("param_scheduler[2] -> milestone") for p in found)


def test_check_lists_what_paramwise_schedule_lists(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # one set of checks: the schedule command's problems are exactly check's schedule problems
    config = write(tmp_path, BROKEN_SCHEDULE)
    assert main(["schedule", config, "-m", "tiny_mlp", "--iters", "1000"]) == 1
    by_schedule = problems(capsys.readouterr().err)
    assert main(["check", config, "-m", "tiny_mlp", "--iters", "1000"]) == 1
    by_check = problems(capsys.readouterr().err)
    assert by_schedule and by_check == by_schedule


def test_optimizer_wrapper_and_schedule_problems_together(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    config = write(tmp_path, """
        optim_wrapper = dict(optimizer=dict(type="AdamW", lr=1e-3, weight_decy=0.05), accumulative_counts=0)
        param_scheduler = [dict(type="LinearLR", start_factor=0.1, by_epoch=False, begin=500, end=0)]
    """)
    assert main(["check", config, "-m", "tiny_mlp"]) == 1
    err = capsys.readouterr().err
    found = problems(err)
    assert any(p.startswith("optim_wrapper -> optimizer -> weight_decy:") for p in found)
    assert any(p.startswith("optim_wrapper -> accumulative_counts:") for p in found)
    assert any(p.startswith("param_scheduler[0] -> end:") for p in found)
    assert "invalid param_scheduler" in err.splitlines()[0]


def test_schedule_checked_when_the_optimizer_type_is_unknown(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    config = write(tmp_path, """
        optimizer = dict(type="AdamQ", lr=1e-3)
        param_scheduler = dict(type="LinearLR", by_epoch=False, begin=3, end=1)
    """)
    assert main(["check", config, "-m", "tiny_mlp"]) == 1
    found = problems(capsys.readouterr().err)
    assert any("AdamQ" in p for p in found) and any(p.startswith("param_scheduler[0] -> end:") for p in found)


def test_epoch_based_schedule_of_mmdetection_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # mmdetection's 1x schedule: the runner knows the epoch length, a config check does not need it
    config = write(tmp_path, """
        optim_wrapper = dict(type="OptimWrapper", optimizer=dict(type="SGD", lr=0.02, momentum=0.9,
                                                                 weight_decay=0.0001))
        param_scheduler = [
            dict(type="LinearLR", start_factor=0.001, by_epoch=False, begin=0, end=500),
            dict(type="MultiStepLR", begin=0, end=12, by_epoch=True, milestones=[8, 11], gamma=0.1),
        ]
        train_cfg = dict(type="EpochBasedTrainLoop", max_epochs=12, val_interval=1)
    """)
    assert main(["check", config, "-m", "tiny_mlp"]) == 0
    assert "param_scheduler: 2 entries" in capsys.readouterr().out
    assert main(["check", config, "-m", "tiny_mlp", "--epoch-length", "100"]) == 0


def test_open_ended_entry_takes_its_end_from_train_cfg(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # an entry without `end` is ended by mmengine's runner at max_epochs; OneCycleLR needs that length
    text = textwrap.dedent("""
        optimizer = dict(type="AdamW", lr=1e-3)
        param_scheduler = [dict(type="OneCycleLR", eta_max=0.01, by_epoch=True, begin=0)]
    """)
    assert main(["check", write(tmp_path, text + "train_cfg = dict(by_epoch=True, max_epochs=100)\n"),
                 "-m", "tiny_mlp"]) == 0
    capsys.readouterr()
    # without train_cfg and --iters the length is unknown: the schedule package says so, at `end`
    assert main(["check", write(tmp_path, text, "bare.py"), "-m", "tiny_mlp"]) == 1
    assert any(p.startswith("param_scheduler[0] -> end:") for p in problems(capsys.readouterr().err))
    assert main(["check", str(tmp_path / "bare.py"), "-m", "tiny_mlp", "--iters", "1000"]) == 0


def test_schedule_warnings_count_as_warnings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # an absolute eta_min flattens lr_mult ratios: the schedule warns; check fails unless --allow-warnings
    config = write(tmp_path, """
        optimizer = dict(type="AdamW", lr=1e-3, paramwise_cfg=dict(custom_keys={"fc2": dict(lr_mult=10)}))
        param_scheduler = [dict(type="CosineAnnealingLR", T_max=100, eta_min=1e-5, by_epoch=False,
                                begin=0, end=100)]
    """)
    assert main(["check", config, "-m", "tiny_mlp"]) == 1
    assert any("eta_min" in p for p in problems(capsys.readouterr().err))
    assert main(["check", config, "-m", "tiny_mlp", "--allow-warnings"]) == 0
    assert "warning: param_scheduler[0] -> eta_min" in capsys.readouterr().err


def test_check_flags_must_be_positive(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write(tmp_path, "optimizer = dict(type='SGD', lr=0.1)\n")
    assert main(["check", config, "-m", "tiny_mlp", "--epoch-length", "0"]) == 2
    assert "--epoch-length must be at least 1" in capsys.readouterr().err
