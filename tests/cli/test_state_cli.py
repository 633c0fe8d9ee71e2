"""``paramwise state``: a foreign state exits 1 with the message; ``--map-prefix`` and ``--allow-unrelated`` load it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

import paramwise
from paramwise.cli import main

CONFIG = "optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.05, momentum=0.9))\n"


def save_checkpoint(tmp_path: Path, model: nn.Module, prefix: str, layout: str) -> Path:
    """A checkpoint of a torch SGD over ``model``'s named parameters, each name with ``prefix``, in a
    framework's layout: mmengine's (``optimizer`` beside ``state_dict`` and ``meta``), Lightning's
    (``optimizer_states``, a list) or a bare optimizer state_dict."""
    torch.manual_seed(0)
    optimizer = torch.optim.SGD([(prefix + n, p) for n, p in model.named_parameters()], lr=0.1, momentum=0.9)
    model(torch.randn(2, 3, 32, 32)).sum().backward()
    optimizer.step()
    state = optimizer.state_dict()
    content = {
        "mmengine": {"meta": {"epoch": 3}, "state_dict": model.state_dict(), "optimizer": state},
        "lightning": {"epoch": 3, "optimizer_states": [state]},
        "bare": state,
    }[layout]
    path = tmp_path / f"{layout}.pth"
    torch.save(content, path)
    return path


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "sgd.py"
    path.write_text(CONFIG)
    return path


@pytest.mark.parametrize("layout", ["mmengine", "lightning", "bare"])
def test_a_ddp_prefix_exits_1_naming_the_flag_and_the_flag_loads_it(tmp_path: Path, config: Path, layout: str,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    path = save_checkpoint(tmp_path, paramwise.load_model("tiny_convnet", {}), "module.", layout)
    load = ["state", str(path), "--config", str(config), "-m", "tiny_convnet"]
    assert main(load) == 1
    err = capsys.readouterr().err
    assert "0 of 13 saved parameters match a parameter of this model" in err
    assert "prefix 'module.'" in err and "--map-prefix 'module.='" in err

    assert main([*load, "--map-prefix", "module.=", "-f", "json"]) == 0
    data = json.loads(capsys.readouterr().out)["load"]
    assert data["missing"] == [] and data["unexpected"] == [] and data["prefix_map"] == {"module.": ""}
    assert [c["key"] for c in data["changed"]] == ["lr"]

    assert main([*load, "--map-prefix", "module.="]) == 0
    out = capsys.readouterr().out
    assert "names 'module.' -> ''" in out and "config kept over the checkpoint: lr: 0.1" in out


def test_another_models_state_exits_1_and_allow_unrelated_shows_the_load(tmp_path: Path, config: Path,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    path = save_checkpoint(tmp_path, paramwise.load_model("tiny_convnet", {}), "", "mmengine")
    load = ["state", str(path), "--config", str(config), "-m", "tiny_mlp"]
    assert main(load) == 1
    err = capsys.readouterr().err
    assert "0 of 13 saved parameters match a parameter of this model by name (the model has 6)" in err
    assert "closest names: 'backbone.0.1.weight' (saved) ~ 'fc1.weight' (model)" in err and "--allow-unrelated" in err
    assert main([*load, "--allow-unrelated", "-f", "json"]) == 0
    data = json.loads(capsys.readouterr().out)["load"]
    assert data["missing"] == [n for n, _ in paramwise.load_model("tiny_mlp", {}).named_parameters()]
    assert len(data["unexpected"]) == 13


def test_a_checkpoint_of_the_same_model_still_loads(tmp_path: Path, config: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    path = save_checkpoint(tmp_path, paramwise.load_model("tiny_convnet", {}), "", "lightning")
    assert main(["state", str(path), "--config", str(config), "-m", "tiny_convnet", "-f", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["key"] == "optimizer_states.0"
    assert data["load"]["missing"] == [] and data["load"]["unexpected"] == [] and "prefix_map" not in data["load"]


@pytest.mark.parametrize(("flags", "message"), [
    (["--map-prefix", "module."], "--map-prefix takes OLD=NEW, got 'module.'"),
    (["--map-prefix", "a.=", "--map-prefix", "a.=b."], "--map-prefix gives 'a.' twice"),
])
def test_bad_map_prefix_flags_are_usage_errors(tmp_path: Path, config: Path, flags: list[str], message: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    path = save_checkpoint(tmp_path, paramwise.load_model("tiny_convnet", {}), "", "bare")
    assert main(["state", str(path), "--config", str(config), "-m", "tiny_convnet", *flags]) == 2
    assert message in capsys.readouterr().err
    assert main(["state", str(path), "--allow-unrelated"]) == 2  # it applies to a load only
    assert "give --config and --model" in capsys.readouterr().err
