"""The ``paramwise`` command: the real entry point in a subprocess for what users see, in-process for the rest.

Each subprocess costs about two seconds (importing torch), so every invocation checks several things.
"""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from expect import TINY_MLP_DEMO_WARNINGS, expect_warnings
from paramwise.cli import main
from paramwise.demo.run import DEFAULT_CONFIG

DEMO = str(DEFAULT_CONFIG)


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "paramwise", *args],
        capture_output=True, text=True, cwd=cwd, timeout=120,
    )


def write(folder: Path, name: str, text: str) -> str:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def assert_clean_error(result: subprocess.CompletedProcess[str], code: int) -> str:
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    return result.stderr


# ----------------------------------------------------------------------------- subprocess: the real entry point


@pytest.mark.slow
def test_demo_trains_and_reports_lr_per_group() -> None:
    result = run("demo")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "custom_keys['backbone']" in out and "norm_decay_mult" in out  # the plan came first
    start, end = map(float, re.search(r"loss (\d+\.\d+) -> (\d+\.\d+)", out).groups())
    assert end < start * 0.5
    assert "lr per group" in out
    # the schedule's milestones: warmup from 10% to the base lrs at step 5 (backbone 0.1x, head 2x of 0.03),
    # then cosine to 10% of each group's own lr: the ratios hold at every step
    table = out[out.index("lr per group at the steps where it changes"):]
    assert re.search(r"\n\s*0\s+0\.0003\s+0\.003\s+0\.006\s*\n", table)
    assert re.search(r"\n\s*5\s+0\.003\s+0\.03\s+0\.06\s*\n", table)
    assert "audit:" in out and "resume:" in out
    # the wrapper: accumulation 2 (50 optimizer steps for 100 iterations) and clipping at norm 1
    assert re.search(r"wrapper: 50 optimizer steps for 100 iterations .* last gradient norm before clipping \d", out)


@pytest.mark.slow
def test_show_json_with_filter_and_cfg_options(tmp_path: Path) -> None:
    result = run("show", DEMO, "--model", "tiny_convnet", "--format", "json", "--filter", "backbone",
                 "--cfg-options", "optim_wrapper.optimizer.lr=0.01", "optim_wrapper.optimizer.betas=(0.8,0.9)",
                 'optim_wrapper.paramwise_cfg.custom_keys."backbone.0".lr_mult=0.5')
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert set(data) == {"optimizer", "base", "params", "groups", "warnings", "notes", "frozen", "duplicates"}
    assert data["optimizer"] == "AdamW"
    assert data["base"]["lr"] == 0.01 and data["base"]["betas"] == [0.8, 0.9]  # tuples become lists
    names = [p["name"] for p in data["params"]]
    assert names and all("backbone" in n for n in names)
    # a quoted key with a dot: 'backbone.0' is longer than 'backbone', so it wins for backbone.0.*
    expected = [0.005 if n.startswith("backbone.0.") else 0.001 for n in names]
    assert [p["lr"] for p in data["params"]] == pytest.approx(expected)
    assert {p["lr_rule"] for p in data["params"]} == {"custom_keys['backbone']", "custom_keys['backbone.0']"}
    assert data["params"][0]["shape"] == [16, 3, 3, 3]
    assert len(data["groups"]) == 5  # the filter narrows the rows, not the groups
    assert sum(g["params"] for g in data["groups"]) == 13
    assert data["warnings"] == [] and data["frozen"] == [] and data["duplicates"] == []


@pytest.mark.slow
def test_show_csv_grouped_by_rule() -> None:
    result = run("show", DEMO, "-m", "tiny_convnet", "--format", "csv", "--group-by", "rule")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == 13
    assert rows[0].keys() >= {"name", "shape", "numel", "group", "lr", "lr_rule", "weight_decay", "weight_decay_rule"}
    assert rows[0]["shape"] == "16x3x3x3"
    # sections in order of first appearance: backbone rows, then the neck's dwconv, norm, default, bias ...
    rules = [r["weight_decay_rule"] for r in rows]
    assert rules == sorted(rules, key=rules.index)
    assert next(r for r in rows if r["name"] == "neck.1.bias")["weight_decay"] == "0.0"


@pytest.mark.slow
def test_show_table_lists_warnings(tmp_path: Path) -> None:
    config = write(tmp_path, "vit.yaml", """
        optimizer:
          type: SGD
          lr: 0.1
          weight_decay: 0.0001
          paramwise_cfg:
            norm_decay_mult: 0
            custom_keys:
              pos_embed: {decay_mult: 0}
              backbone: {lr_mult: 0.1}
    """)
    result = run("show", config, "--model", "tiny_vit")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "\x1b[" not in out  # no colours into a pipe
    assert "cls_token" in out and "custom_keys['pos_embed']" in out and "norm_decay_mult" in out
    assert re.search(r"warning: .*custom_keys -> backbone: matches no parameter", out)
    table_line = next(line for line in out.splitlines() if "blocks.0.attn.qkv.weight" in line)
    # one row per parameter, not wrapped at 80 columns: name, shape, lr, decay and rule on one line
    assert re.search(r"blocks\.0\.attn\.qkv\.weight\s+\d+x\d+\s.*0\.1\s+0\.0001\s+default", table_line), table_line


@pytest.mark.slow
def test_missing_config_file(tmp_path: Path) -> None:
    write(tmp_path, "adamw.py", "optimizer = dict(type='AdamW', lr=1e-3)\n")
    err = assert_clean_error(run("show", "adamw.yp", "--model", "tiny_mlp", cwd=tmp_path), 2)
    assert "config file 'adamw.yp' not found" in err and "Did you mean 'adamw.py'?" in err


@pytest.mark.slow
def test_bad_model_spec(tmp_path: Path) -> None:
    err = assert_clean_error(run("show", DEMO, "--model", "tiny_convnt"), 2)
    assert "unknown model 'tiny_convnt'" in err and "Did you mean 'tiny_convnet'" in err
    assert "package.module:callable" in err


@pytest.mark.slow
def test_unknown_optimizer_suggests_the_right_name(tmp_path: Path) -> None:
    config = write(tmp_path, "adamww.py", "optimizer = dict(type='AdamWW', lr=1e-3)\n")
    err = assert_clean_error(run("show", config, "--model", "tiny_mlp"), 1)
    assert "'AdamWW' is not in the optimizer registry" in err and "Did you mean 'AdamW'" in err


@pytest.mark.slow
def test_config_typos_are_all_listed_one_per_line(tmp_path: Path) -> None:
    config = write(tmp_path, "typo.py", """
        optimizer = dict(type="AdamW", lr=1e-3, weight_decy=0.05, paramwise_cfg=dict(norm_decay_mul=0.0))
    """)
    err = assert_clean_error(run("show", config, "--model", "tiny_mlp"), 1)
    lines = err.splitlines()
    assert lines[0].startswith("paramwise: error: invalid optimizer config") and "typo.py" in lines[0]
    assert any("optimizer -> weight_decy" in line and "Did you mean 'weight_decay'" in line for line in lines[1:])
    assert any("paramwise_cfg -> norm_decay_mul" in line and "'norm_decay_mult'" in line for line in lines[1:])


@pytest.mark.slow
def test_check_passes_on_a_sound_config_with_an_imported_model(tmp_path: Path) -> None:
    write(tmp_path, "my_models.py", """
        from torch import nn

        def build(width=4):
            return nn.Sequential(nn.Linear(width, width), nn.LayerNorm(width), nn.Linear(width, 2))
    """)
    config = write(tmp_path, "sgd.json", json.dumps({
        "optimizer": {"type": "SGD", "lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4,
                      "paramwise_cfg": {"norm_decay_mult": 0, "custom_keys": {"2.": {"lr_mult": 10}}}},
    }))
    result = run("check", config, "--model", "my_models:build", "--model-args", '{"width": 6}', cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok: ") and "SGD" in result.stdout and "6 parameters" in result.stdout


@pytest.mark.slow
def test_check_fails_on_a_custom_key_that_matches_nothing(tmp_path: Path) -> None:
    config = write(tmp_path, "unmatched.py", """
        optimizer = dict(type="AdamW", lr=1e-3, weight_decay=0.05,
                         paramwise_cfg=dict(custom_keys={"hed": dict(lr_mult=10), "backbone": dict(lr_mult=0.1)}))
    """)
    result = run("check", config, "--model", "tiny_convnet")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "check failed" in result.stderr and "1 problem" in result.stderr
    assert re.search(r"^  - .*custom_keys -> hed: matches no parameter.*'head'", result.stderr, re.M)


@pytest.mark.slow
def test_list_optimizers() -> None:
    result = run("list", "optimizers", "--format", "json")
    assert result.returncode == 0, result.stderr
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert rows["AdamW"]["module"].startswith("torch.optim")
    assert rows["AdamW"]["description"] and "\n" not in rows["AdamW"]["description"]
    assert {"SGD", "Adam", "RMSprop"} <= set(rows)


# ----------------------------------------------------------------------------- in-process: the rest


def test_list_schedulers_models_constructors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "schedulers", "--format", "json"]) == 0
    schedulers = {r["name"] for r in json.loads(capsys.readouterr().out)}
    assert {"CosineAnnealingLR", "OneCycleLR", "LinearLR"} <= schedulers
    assert not {"LRScheduler", "_LRScheduler"} & schedulers
    assert main(["list", "models"]) == 0
    out = capsys.readouterr().out
    assert "tiny_convnet" in out and "tiny_vit" in out and "tiny_mlp" in out and "paramwise.models" in out
    assert main(["list", "constructors"]) == 0
    assert "DefaultOptimizerConstructor" in capsys.readouterr().out


def test_without_rich_output_is_plain_text(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    for name in [n for n in sys.modules if n == "rich" or n.startswith("rich.")] + ["rich"]:
        monkeypatch.setitem(sys.modules, name, None)  # `import rich...` now raises ImportError
    assert main(["show", DEMO, "-m", "tiny_convnet"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["name", "shape", "numel", "group", "lr", "weight_decay", "rule"]
    assert "group 3: 2 params" in out
    assert main(["show", DEMO, "-m", "tiny_convnet", "--filter", "head", "--group-by", "group"]) == 0
    out = capsys.readouterr().out
    assert "head.weight" in out and "backbone" not in out.split("\n\n")[0]
    assert "2 of 13 parameters contain 'head'" in out
    with expect_warnings(*TINY_MLP_DEMO_WARNINGS):
        assert main(["demo", "--steps", "5", "--model", "tiny_mlp"]) == 0  # the demo config is for a convnet
    out = capsys.readouterr().out
    assert "step 5/5" in out and "lr per group:" in out


def test_errors_exit_codes_and_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    no_optimizer = write(tmp_path, "model_only.py", "optimiser = dict(type='SGD', lr=0.1)\n")
    assert main(["show", no_optimizer, "-m", "tiny_mlp"]) == 1
    err = capsys.readouterr().err
    assert "no optimizer config" in err and "Did you mean 'optimiser'" in err and "Traceback" not in err

    assert main(["show", no_optimizer, "-m", "tiny_mlp", "--traceback"]) == 1
    assert "Traceback" in capsys.readouterr().err

    assert main(["show", no_optimizer, "-m", "tiny_mlp", "--cfg-options", "optimizer.lr=1"]) == 2
    assert "no top-level key 'optimizer'" in capsys.readouterr().err

    assert main(["show", DEMO, "-m", "tiny_mlp", "--model-args", "{width: 3}"]) == 2
    assert "--model-args is not valid JSON" in capsys.readouterr().err

    # a key the file does not set may be added below an existing one; a typo there is still caught
    assert main(["check", DEMO, "-m", "tiny_convnet", "--cfg-options",
                 "optim_wrapper.paramwise_cfg.flat_decay_mul=0"]) == 1
    assert "Did you mean 'flat_decay_mult'" in capsys.readouterr().err

    with pytest.raises(SystemExit) as info:  # argparse: a usage error
        main(["show", DEMO])
    assert info.value.code == 2
    assert "--model" in capsys.readouterr().err


def test_render_json_is_json_safe() -> None:
    import math

    import torch

    from paramwise.plan.plan import Plan
    from paramwise.render import plan_json, plan_table

    plan = Plan("Adam", {"lr": torch.tensor(0.01), "betas": (0.9, 0.99), "eps": math.inf}, (), ())
    data = json.loads(json.dumps(plan_json(plan), allow_nan=False))
    assert data["base"]["betas"] == [0.9, 0.99] and data["base"]["eps"] == "inf"
    assert data["base"]["lr"] == pytest.approx(0.01)
    from rich.console import Console

    console = Console(record=True, width=200)
    console.print(plan_table(plan))
    text = console.export_text()
    assert "Adam(lr=" in text and "0 parameters" in text and "parameter groups" in text


def test_mmengine_optim_wrapper_config_is_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "mm.py", """\
        optim_wrapper = dict(
            type='OptimWrapper',
            optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05),
            paramwise_cfg=dict(norm_decay_mult=0.0),
            constructor='DefaultOptimWrapperConstructor',
            clip_grad=dict(max_norm=1.0),
        )
        """)
    assert main(["show", path, "--model", "tiny_convnet", "--format", "json"]) == 0
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert data["optimizer"] == "AdamW"
    assert any(p["weight_decay_rule"] == "norm_decay_mult" for p in data["params"])
    assert data["warnings"] == [] and data["notes"] == []  # clip_grad is a wrapper key paramwise builds and checks


def test_check_validates_the_wrapper_keys_with_the_optimizers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "typo.py", """\
        optim_wrapper = dict(
            type='OptimWrapper',
            optimizer=dict(type='AdamW', lr=1e-3, weight_decy=0.05),
            clip_grads=dict(max_norm=1.0),
            accumulative_counts=0,
        )
        """)
    assert main(["check", path, "--model", "tiny_convnet"]) == 1
    err = capsys.readouterr().err
    assert "optim_wrapper -> clip_grads" in err and "Did you mean 'clip_grad'" in err
    assert "optim_wrapper -> accumulative_counts" in err
    assert "optim_wrapper -> optimizer -> weight_decy" in err


def test_optim_wrapper_problems_name_their_place_in_that_config(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "mm.py", """\
        optim_wrapper = dict(
            optimizer=dict(type='AdamW', lr=1e-3, weight_decy=0.05),
            paramwise_cfg=dict(norm_decay_mul=0.0, custom_keys={'nothing_here': {}}),
        )
        """)
    assert main(["check", path, "--model", "tiny_convnet"]) == 1
    err = capsys.readouterr().err
    assert "optim_wrapper -> optimizer -> weight_decy: AdamW does not take 'weight_decy'" in err
    assert "optim_wrapper -> paramwise_cfg -> norm_decay_mul: is not a paramwise_cfg option" in err
    path = write(tmp_path, "mm2.py", """\
        optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.1), paramwise_cfg=dict(custom_keys={'nothing_here': {}}))
        """)
    assert main(["check", path, "--model", "tiny_convnet"]) == 1
    err = capsys.readouterr().err
    assert "optim_wrapper -> paramwise_cfg -> custom_keys -> nothing_here: matches no parameter" in err


def test_version_is_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    import paramwise
    from paramwise.cli import main

    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"paramwise {paramwise.__version__}"
