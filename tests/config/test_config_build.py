"""Config files end to end: a file on disk, overrides, then the optimizer it describes."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from expect import expect_warnings
from paramwise import Config, build_optimizer, plan_params


def test_mmdetection_seed_example_builds_expected_optimizer(tmp_path) -> None:
    path = tmp_path / "faster_rcnn_schedule.py"
    path.write_text("optimizer = dict(type='SGD', lr=0.00125, momentum=0.9, weight_decay=0.0001)\n")
    cfg = Config.fromfile(path)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    opt = build_optimizer(model, cfg.optimizer)
    assert isinstance(opt, torch.optim.SGD)
    assert len(opt.param_groups) == 1
    (group,) = opt.param_groups
    assert (group["lr"], group["momentum"], group["weight_decay"]) == (0.00125, 0.9, 0.0001)
    assert group["param_names"] == ["0.weight", "0.bias", "1.weight", "1.bias"]


def test_yaml_child_of_python_base_with_overrides(tmp_path) -> None:
    pytest.importorskip("yaml")
    (tmp_path / "base.py").write_text(
        "optimizer = dict(type='AdamW', lr=1e-3, weight_decay=0.05,\n"
        "                 paramwise_cfg=dict(norm_decay_mult=0.0, custom_keys={'0': dict(lr_mult=0.1)}))\n"
    )
    (tmp_path / "child.yaml").write_text(
        "_base_: base.py\noptimizer:\n  lr: 0.002\n  paramwise_cfg:\n    bias_decay_mult: 0.0\n"
    )
    cfg = Config.fromfile(tmp_path / "child.yaml")
    cfg.merge_from_dotlist(["optimizer.paramwise_cfg.custom_keys.0.lr_mult=0.5"])
    model = nn.Sequential(nn.Linear(2, 2), nn.LayerNorm(2))
    with expect_warnings(r"bias_decay_mult: decides no parameter"):
        plan = plan_params(model, cfg.optimizer)
    assert plan["0.weight"].hyperparams == {"lr": pytest.approx(0.001), "weight_decay": 0.05}
    assert plan["1.weight"].hyperparams == {"lr": 0.002, "weight_decay": 0.0}
    assert plan["1.weight"].rules["weight_decay"] == "norm_decay_mult"


def test_lazy_config_resolves_the_optimizer_class_and_keeps_unimportable_ones_lazy(tmp_path) -> None:
    """A new-style config: read_base(), imported classes; mmdet is not installed, torch is."""
    (tmp_path / "_base_").mkdir()
    (tmp_path / "_base_" / "schedule.py").write_text(
        "from torch.optim import AdamW\n"
        "optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type=AdamW, lr=1e-3, weight_decay=0.05),\n"
        "                     paramwise_cfg=dict(norm_decay_mult=0.0))\n"
    )
    (tmp_path / "model.py").write_text(
        "from mmengine.config import read_base\n"
        "with read_base():\n"
        "    from ._base_.schedule import *\n"
        "from mmdet.models import RetinaNet\n"
        "model = dict(type=RetinaNet, num_classes={0: 19}[0])\n"
        "optim_wrapper.update(optimizer=dict(lr=2e-3))\n"
    )
    from paramwise import LazyObject, optimizer_config

    cfg = Config.fromfile(tmp_path / "model.py")
    assert isinstance(cfg.model.type, LazyObject) and cfg.model.type.import_path == "mmdet.models.RetinaNet"
    assert cfg.model.num_classes == 19
    found = optimizer_config(cfg)
    model = nn.Sequential(nn.Linear(2, 2), nn.LayerNorm(2))
    opt = build_optimizer(model, found.optimizer)
    assert type(opt) is torch.optim.AdamW
    assert {n: g["weight_decay"] for g in opt.param_groups for n in g["param_names"]}["1.weight"] == 0.0
    assert opt.param_groups[0]["lr"] == 2e-3
    with pytest.raises(ImportError, match="mmdet"):
        cfg.model.type.resolve("model.type")
