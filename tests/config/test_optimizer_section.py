"""Which optimizer a whole config means: ``optimizer_config`` and the CLI give the same answer."""

from __future__ import annotations

import copy
import json
import textwrap
from pathlib import Path

import pytest

import paramwise
from expect import expect_warnings
from paramwise import ConfigError, optimizer_config
from paramwise.cli import main

# mmsegmentation's schedules: a top-level SGD and an optim_wrapper; the runner uses optim_wrapper only
MMSEG_BOTH = dict(
    optimizer=dict(type="SGD", lr=0.01, momentum=0.9, weight_decay=0.0005),
    optim_wrapper=dict(
        type="OptimWrapper",
        optimizer=dict(type="AdamW", lr=6e-5, betas=(0.9, 0.999), weight_decay=0.01),
        paramwise_cfg=dict(custom_keys={"pos_block": dict(decay_mult=0.0), "norm": dict(decay_mult=0.0)}),
        clip_grad=None,
    ),
)


def test_optim_wrapper_wins_and_an_unused_top_level_optimizer_is_reported() -> None:
    before = copy.deepcopy(MMSEG_BOTH)
    found = optimizer_config(MMSEG_BOTH)
    assert MMSEG_BOTH == before
    assert found.source == "optim_wrapper"
    assert found.optimizer["type"] == "AdamW" and found.optimizer["lr"] == 6e-5
    assert found.optimizer["paramwise_cfg"]["custom_keys"]["norm"] == dict(decay_mult=0.0)
    assert found.wrapper == dict(type="OptimWrapper", clip_grad=None)
    (warning,) = found.warnings
    assert warning.path == ("optimizer",) and "is not used" in warning.message


def test_same_top_level_optimizer_referenced_by_the_wrapper_is_not_reported() -> None:
    sgd = dict(type="SGD", lr=0.01)
    found = optimizer_config(dict(optimizer=sgd, optim_wrapper=dict(type="OptimWrapper", optimizer=sgd)))
    assert found.warnings == () and found.optimizer == sgd


def test_mmcv_style_top_level_optimizer() -> None:
    cfg = dict(optimizer=dict(type="SGD", lr=0.1, paramwise_cfg=dict(norm_decay_mult=0.0)))
    found = optimizer_config(cfg)
    assert found.source == "optimizer" and found.optimizer == cfg["optimizer"] and found.wrapper == {}


@pytest.mark.parametrize("cfg, path, words", [
    (dict(optimizer=dict(type="SGD", lr=0.1), paramwise_cfg=dict(norm_decay_mult=0.0)),
     ("paramwise_cfg",), "at the top level of the config, where nothing reads it"),
    (dict(optimizer=dict(type="SGD", lr=0.1), optim_wrapper=dict(paramwise_cfg=dict(norm_decay_mult=0.0))),
     ("optim_wrapper", "paramwise_cfg"), "is not used: the optimizer is the top-level 'optimizer'"),
    (dict(optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.1, paramwise_cfg={}), paramwise_cfg={})),
     ("optim_wrapper", "optimizer", "paramwise_cfg"), "is given twice"),
    (dict(optim_wrapper=dict(type="OptimWrapper")), ("optim_wrapper", "optimizer"), "is missing"),
    (dict(model=dict()), ("optim_wrapper",), "is missing, and so is a top-level 'optimizer'"),
    (dict(optim_wrapper=dict(generator=dict(optimizer=dict(type="Adam")), discriminator=dict(optimizer={}))),
     ("optim_wrapper",), "holds several optimizers (generator, discriminator"),
])
def test_misplaced_or_missing_keys_are_errors_that_say_where(cfg: dict, path: tuple[str, ...], words: str) -> None:
    with pytest.raises(ConfigError) as info:
        optimizer_config(cfg)
    assert any(p.path == path and words in p.message for p in info.value.problems), info.value.problems


def test_wrong_shapes_are_type_errors() -> None:
    with pytest.raises(TypeError):
        optimizer_config(dict(optim_wrapper=[1]))
    with pytest.raises(TypeError):
        optimizer_config(dict(optimizer="SGD"))


def test_locate_moves_problem_paths_into_the_optim_wrapper() -> None:
    found = optimizer_config(MMSEG_BOTH)
    assert found.locate(("optimizer", "lr")) == ("optim_wrapper", "optimizer", "lr")
    assert found.locate(("optimizer", "paramwise_cfg", "x")) == ("optim_wrapper", "paramwise_cfg", "x")
    assert optimizer_config(dict(optimizer=dict(type="SGD"))).locate(("optimizer", "lr")) == ("optimizer", "lr")


def write(folder: Path, name: str, text: str) -> str:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_cli_shows_the_optim_wrapper_optimizer_of_an_mmseg_style_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "seg.py", f"globals().update({MMSEG_BOTH!r})\n")
    assert main(["show", path, "-m", "tiny_convnet", "-f", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["optimizer"] == "AdamW" and data["base"]["lr"] == 6e-5
    assert any(w.startswith("optimizer: is not used") for w in data["warnings"])
    # the API gives the same answer as the CLI
    model = paramwise.load_model("tiny_convnet", {})
    with expect_warnings("custom_keys -> pos_block: matches no parameter", "custom_keys -> norm: matches no parameter"):
        plan = paramwise.plan_params(model, optimizer_config(MMSEG_BOTH).optimizer)
    assert [p["lr"] for p in data["params"]] == [e.hyperparams["lr"] for e in plan.entries]


def test_check_reports_frozen_parameters_as_a_note_unless_asked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))
    write(tmp_path, "frozen_models.py", """\
        from torch import nn

        def build():
            model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2))
            model[0].requires_grad_(False)
            return model
        """)
    cfg = write(tmp_path, "ft.py", "optim_wrapper = dict(optimizer=dict(type='AdamW', lr=1e-4))\n")
    spec = "frozen_models:build"
    assert main(["check", cfg, "-m", spec]) == 0
    captured = capsys.readouterr()
    assert "note: model: has 2 parameters with requires_grad=False, left out" in captured.err
    assert "ok:" in captured.out and "2 parameters" in captured.out and "in 1 group\n" in captured.out
    assert main(["check", cfg, "-m", spec, "--fail-on-frozen"]) == 1
    assert "check failed" in capsys.readouterr().err


def test_check_names_a_norm_decay_mult_shadowed_by_custom_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write(tmp_path, "shadow.py", """\
        optim_wrapper = dict(
            optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05),
            paramwise_cfg=dict(norm_decay_mult=0.0, custom_keys={'backbone': dict(lr_mult=0.1),
                                                                 'neck': dict(lr_mult=1.0)}),
        )
        """)
    assert main(["check", cfg, "-m", "tiny_convnet"]) == 1
    err = capsys.readouterr().err
    assert ("optim_wrapper -> paramwise_cfg -> norm_decay_mult: decides no parameter: every parameter it applies "
            "to") in err
    assert "custom_keys['backbone'], custom_keys['neck']" in err


def test_mmpretrain_style_simsiam_config_with_fix_lr_through_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """mmpretrain's SimSiam configs: a schedule base, lr from {{_base_}}-style reuse, fix_lr for a hook."""
    (tmp_path / "_base_").mkdir()
    write(tmp_path / "_base_", "sgd_coslr.py", """\
        optimizer = dict(type='SGD', lr=0.05, weight_decay=1e-4, momentum=0.9)
        optim_wrapper = dict(type='OptimWrapper', optimizer=optimizer)
        """)
    path = write(tmp_path, "simsiam.py", """\
        _base_ = ['_base_/sgd_coslr.py']
        lr = _base_.optimizer.lr * 2
        optim_wrapper = dict(
            optimizer=dict(lr=lr),
            paramwise_cfg=dict(custom_keys={'head': dict(fix_lr=True)}))
        custom_hooks = [dict(type='SimSiamHook', fix_pred_lr=True, lr=lr)]
        """)
    assert main(["check", path, "-m", "tiny_convnet", "--allow-warnings"]) == 0
    err = capsys.readouterr().err
    assert "warning: optimizer: is not used" in err  # the base's top-level SGD now differs from optim_wrapper's
    assert main(["show", path, "-m", "tiny_convnet", "-f", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["base"]["lr"] == 0.1
    heads = [p for p in data["params"] if p["name"].startswith("head")]
    assert heads and all(p["fix_lr"] is True and p["fix_lr_rule"] == "custom_keys['head']" for p in heads)
    assert {g["hyperparams"].get("fix_lr") for g in data["groups"]} == {True, None}
