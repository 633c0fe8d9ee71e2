"""mmengine config-file features in paramwise.Config.fromfile: {{_base_.x}}, _base_ in code, read_base()
lazy configs, scoped bases, predefined variables, non-string keys, YAML strictness, quoted override keys.

Where mmengine can load the same file, its ``Config.fromfile(...).to_dict()`` is the reference.
"""

from __future__ import annotations

import copy
import pickle
import sys
from pathlib import Path
from typing import Any

import pytest

from paramwise.config.config import Config, ConfigFileError, ConfigFileNotFoundError, LazyObject, parse_cfg_options
from paramwise.errors import ConfigDependencyError, ConfigError


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def mmengine_dict(path: Path) -> dict[str, Any]:
    """What mmengine itself loads from ``path`` (skips the test where mmengine is not installed)."""
    mm_config = pytest.importorskip("mmengine.config")
    return mm_config.Config.fromfile(str(path)).to_dict()  # type: ignore[no-any-return]


def as_mmengine_text(value: Any) -> Any:
    """Our LazyObjects as mmengine's to_dict writes them: the dotted import path."""
    if isinstance(value, dict):
        return {k: as_mmengine_text(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(as_mmengine_text(v) for v in value)
    return value.import_path if isinstance(value, LazyObject) else value


# --------------------------------------------------------------------------- an mmdetection-style chain

MODEL = """\
num_classes = 80
model = dict(
    type='RetinaNet',
    backbone=dict(type='ResNet', depth=50, frozen_stages=1, norm_cfg=dict(type='BN', requires_grad=True)),
    bbox_head=dict(type='RetinaHead', num_classes=80, in_channels=256),
)
"""
DATASET = """\
dataset_type = 'CocoDataset'
data_root = 'data/coco/'
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(1333, 800), keep_ratio=True),
]
train_dataloader = dict(batch_size=2, dataset=dict(type=dataset_type, pipeline=train_pipeline))
"""
SCHEDULE = """\
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=0.0001))
"""
CHILD = """\
_base_ = [
    '../_base_/models/retinanet_r50_fpn.py',
    '../_base_/datasets/coco_detection.py',
    '../_base_/schedules/schedule_1x.py',
]
model = dict(
    backbone=dict(depth=101, norm_cfg={{_base_.model.backbone.norm_cfg}}),
    bbox_head=dict(num_classes=_base_.num_classes + 1),
)
first_step = _base_.train_pipeline[0]
backbone_type = _base_.model.backbone.type
depth_ref = {{_base_.model.backbone.depth}}
pipeline = [*_base_.train_pipeline, dict(type='PackDetInputs')]
optim_wrapper = dict(optimizer=dict(_delete_=True, type='AdamW', lr=0.0001))
work_dir = './work_dirs/{{ fileBasenameNoExtension }}'
"""


def mmdet_tree(tmp_path: Path) -> Path:
    write(tmp_path, "_base_/models/retinanet_r50_fpn.py", MODEL)
    write(tmp_path, "_base_/datasets/coco_detection.py", DATASET)
    write(tmp_path, "_base_/schedules/schedule_1x.py", SCHEDULE)
    return write(tmp_path, "retinanet/retinanet_r101_fpn_1x_coco.py", CHILD)


def test_mmdet_chain_with_base_references(tmp_path: Path) -> None:
    cfg = Config.fromfile(mmdet_tree(tmp_path))
    assert "_base_" not in cfg
    assert cfg.model.backbone.to_dict() == {
        "type": "ResNet",
        "depth": 101,
        "frozen_stages": 1,
        "norm_cfg": {"type": "BN", "requires_grad": True},
    }
    assert cfg.model.bbox_head.num_classes == 81
    assert cfg.first_step == {"type": "LoadImageFromFile"}
    assert cfg.backbone_type == "ResNet" and cfg.depth_ref == 50
    assert [step["type"] for step in cfg.pipeline] == ["LoadImageFromFile", "Resize", "PackDetInputs"]
    assert cfg.optim_wrapper.to_dict() == {"type": "OptimWrapper", "optimizer": {"type": "AdamW", "lr": 0.0001}}
    assert cfg.work_dir == "./work_dirs/retinanet_r101_fpn_1x_coco"
    assert cfg.train_dataloader.dataset.type == "CocoDataset"


def test_mmdet_chain_matches_mmengine(tmp_path: Path) -> None:
    path = mmdet_tree(tmp_path)
    assert Config.fromfile(path).to_dict() == mmengine_dict(path)


def test_base_references_in_yaml_and_json(tmp_path: Path) -> None:
    write(tmp_path, "base.py", MODEL + "name = 'retina'\n")
    yaml_path = write(
        tmp_path,
        "child.yaml",
        "_base_: ./base.py\nheads: {{_base_.num_classes}}\nbackbone: {{_base_.model.backbone}}\n"
        "nested:\n  items: [{{_base_.model.bbox_head.in_channels}}, 3]\n",
    )
    json_path = write(
        tmp_path,
        "child.json",
        '{"_base_": "./base.py", "heads": {{_base_.num_classes}}, "nested": {"items": [{{ _base_.name }}]}}',
    )
    backbone = {"type": "ResNet", "depth": 50, "frozen_stages": 1, "norm_cfg": {"type": "BN", "requires_grad": True}}
    yaml_cfg = Config.fromfile(yaml_path)
    assert yaml_cfg.heads == 80 and yaml_cfg.backbone == backbone and yaml_cfg.nested["items"] == [256, 3]
    json_cfg = Config.fromfile(json_path)
    assert json_cfg.heads == 80 and json_cfg.nested["items"] == ["retina"]
    for path in (yaml_path, json_path):
        assert Config.fromfile(path).to_dict() == mmengine_dict(path)


def test_base_reference_inside_a_string_is_text(tmp_path: Path) -> None:
    # mmengine leaves a mangled placeholder here; paramwise joins the value's text in
    write(tmp_path, "base.py", "name = 'retina'\ndepth = 50\nmodel = dict(a=1)\n")
    path = write(
        tmp_path,
        "c.py",
        "_base_ = 'base.py'\nwork = 'dirs/{{_base_.name}}_r{{_base_.depth}}'\nquoted = '{{_base_.depth}}'\n",
    )
    cfg = Config.fromfile(path)
    assert cfg.work == "dirs/retina_r50" and cfg.quoted == 50
    toml = write(tmp_path, "c.toml", '_base_ = "base.py"\nd = {{_base_.depth}}\ns = "x-{{_base_.name}}"\n')
    assert Config.fromfile(toml).to_dict()["d"] == 50 and Config.fromfile(toml).s == "x-retina"
    bad = write(tmp_path, "bad.yaml", "_base_: base.py\nx: 'a {{_base_.model}}'\n")
    with pytest.raises(ConfigFileError, match="dict but sits inside a longer string") as info:
        Config.fromfile(bad)
    assert info.value.line == 2


def test_missing_base_reference_names_file_line_and_keys(tmp_path: Path) -> None:
    write(tmp_path, "base.py", "model = dict(depth=50)\n")
    path = write(
        tmp_path,
        "c.py",
        "_base_ = 'base.py'\n# {{_base_.gone}} in a comment is ignored\nx = 1\ny = {{_base_.model.dept}}\n",
    )
    with pytest.raises(ConfigFileError) as info:
        Config.fromfile(path)
    assert info.value.filename == str(path) and info.value.line == 4
    assert "no 'dept'" in str(info.value) and "depth" in str(info.value)
    no_bases = write(tmp_path, "n.yaml", "x: {{_base_.a}}\n")
    with pytest.raises(ConfigFileError, match="has no _base_"):
        Config.fromfile(no_bases)


def test_base_in_code_reads_by_attribute_with_suggestions(tmp_path: Path) -> None:
    write(tmp_path, "base.py", "model = dict(depth=50)\n")
    path = write(tmp_path, "c.py", "_base_ = 'base.py'\nx = _base_.model.detph\n")
    with pytest.raises(ConfigFileError, match=r"Did you mean 'depth'\?") as info:
        Config.fromfile(path)
    assert info.value.line == 2


def test_base_values_changed_through_a_name_change_the_base_as_in_mmengine(tmp_path: Path) -> None:
    write(tmp_path, "base.py", "model = dict(backbone=dict(depth=50))\n")
    path = write(
        tmp_path,
        "c.py",
        "_base_ = 'base.py'\nother = _base_.model\nother.backbone.depth = 18\nother.update(dict(backbone=dict(x=1)))\n",
    )
    cfg = Config.fromfile(path)
    # 'other' is the base's own dict, as in mmengine: changing it changes the base the file merges over
    assert cfg.model.backbone.to_dict() == {"depth": 18, "x": 1}
    assert cfg.other.backbone.to_dict() == {"depth": 18, "x": 1}  # update merges, as mmengine's ConfigDict
    assert cfg.to_dict() == mmengine_dict(path)
    assert Config.fromfile(tmp_path / "base.py").model.to_dict() == {"backbone": {"depth": 50}}  # the file is not


# --------------------------------------------------------------------------- predefined variables


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("exp_1.py", "a = '{{fileDirname}}|{{ fileBasename }}|{{fileBasenameNoExtension }}|{{  fileExtname}}'\n"),
        ("exp_1.yaml", "a: '{{fileDirname}}|{{ fileBasename }}|{{fileBasenameNoExtension }}|{{  fileExtname}}'\n"),
        ("exp_1.json", '{"a": "{{fileDirname}}|{{ fileBasename }}|{{fileBasenameNoExtension }}|{{  fileExtname}}"}'),
    ],
)
def test_predefined_variables(tmp_path: Path, name: str, text: str) -> None:
    path = write(tmp_path, name, text)
    suffix = name.partition(".")[2]
    assert Config.fromfile(path).a == f"{tmp_path}|{name}|exp_1|.{suffix}"
    assert Config.fromfile(path).to_dict() == mmengine_dict(path)


# --------------------------------------------------------------------------- read_base() lazy configs

LAZY_RUNTIME = """\
default_scope = 'mmdet'
env_cfg = dict(cudnn_benchmark=False)
"""
LAZY_SCHEDULE = """\
from torch.optim.sgd import SGD

optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type=SGD, lr=0.02, momentum=0.9, weight_decay=0.0001))
max_epochs = 12
"""
LAZY_CHILD = """\
from mmengine.config import read_base

with read_base():
    from .._base_.default_runtime import *
    from .._base_.schedules.schedule_1x import optim_wrapper, max_epochs as epochs

import torch.nn as nn
from mmdet.models import RetinaNet
from torch.optim import AdamW

model = dict(type=RetinaNet, act_cfg=dict(type=nn.ReLU))
optim_wrapper.update(dict(optimizer=dict(type=AdamW, lr=0.0001)))
train_cfg = dict(max_epochs=epochs * 2)
"""


def lazy_tree(tmp_path: Path) -> Path:
    write(tmp_path, "_base_/default_runtime.py", LAZY_RUNTIME)
    write(tmp_path, "_base_/schedules/schedule_1x.py", LAZY_SCHEDULE)
    return write(tmp_path, "retinanet/retinanet_lazy.py", LAZY_CHILD)


def test_read_base_config_with_lazy_imports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mmdet", None)  # not installed: the config must load anyway
    cfg = Config.fromfile(lazy_tree(tmp_path))
    assert set(cfg) == {"default_scope", "env_cfg", "optim_wrapper", "epochs", "model", "train_cfg"}
    assert cfg.model.type == LazyObject("mmdet.models", "RetinaNet")
    assert cfg.model.act_cfg.type == LazyObject("torch.nn", "ReLU")
    assert cfg.optim_wrapper.to_dict() == {
        "type": "OptimWrapper",
        "optimizer": {
            "type": LazyObject("torch.optim", "AdamW"),
            "lr": 0.0001,
            "momentum": 0.9,
            "weight_decay": 0.0001,
        },
    }
    assert cfg.train_cfg.max_epochs == 24 and cfg.default_scope == "mmdet"
    assert "mmdet.models" not in sys.modules


def test_read_base_config_matches_mmengine(tmp_path: Path) -> None:
    path = lazy_tree(tmp_path)
    assert as_mmengine_text(Config.fromfile(path).to_dict()) == mmengine_dict(path)


def test_read_base_works_without_mmengine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mmengine", None)
    monkeypatch.setitem(sys.modules, "mmengine.config", None)
    cfg = Config.fromfile(lazy_tree(tmp_path))
    assert cfg.optim_wrapper.optimizer.lr == 0.0001


def test_read_base_imports_a_folder_of_configs(tmp_path: Path) -> None:
    write(tmp_path, "_base_/models.py", "model = dict(depth=50)\n")
    path = write(
        tmp_path,
        "a/b/c.py",
        "from mmengine.config import read_base\nwith read_base():\n    from ..._base_ import models\n"
        "model = dict(depth=models.model.depth + 1)\n",
    )
    assert Config.fromfile(path).to_dict() == {"model": {"depth": 51}}


def test_read_base_errors(tmp_path: Path) -> None:
    write(tmp_path, "base.py", "a = 1\n")
    head = "from mmengine.config import read_base\nwith read_base():\n"
    cases = {
        "missing.py": (head + "    from .nothere import *\n", "not found", 3),
        "name.py": (head + "    from .base import b\n", "defines no 'b'", 3),
        "outside.py": ("from .base import a\n", "belong inside 'with read_base", 1),
        "star.py": ("from torch.optim import *\n", "cannot be made lazy", 1),
        "call.py": ("from torch.optim import SGD\nopt = SGD(lr=1)\n", "cannot be called", 2),
    }
    for name, (text, message, line) in cases.items():
        with pytest.raises(ConfigFileError, match=message) as info:
            Config.fromfile(write(tmp_path, name, text))
        assert info.value.filename == str(tmp_path / name) and info.value.line == line, name


def test_read_base_cycle_is_an_error(tmp_path: Path) -> None:
    head = "from mmengine.config import read_base\nwith read_base():\n"
    write(tmp_path, "a.py", head + "    from .b import *\n")
    write(tmp_path, "b.py", head + "    from .a import *\n")
    with pytest.raises(ConfigFileError, match="cycle") as info:
        Config.fromfile(tmp_path / "a.py")
    assert info.value.chain == ("a.py", "b.py", "a.py")


# --------------------------------------------------------------------------- new-style configs as OpenMMLab writes them

MM3D_SCHEDULE = """\
from mmengine.optim.optimizer.optimizer_wrapper import OptimWrapper
from mmengine.optim.scheduler.lr_scheduler import CosineAnnealingLR, LinearLR
from mmengine.runner.loops import EpochBasedTrainLoop
from torch.optim.adamw import AdamW

lr = 1e-4
optim_wrapper = dict(
    type=OptimWrapper, optimizer=dict(type=AdamW, lr=lr, weight_decay=0.01), clip_grad=dict(max_norm=35))
param_scheduler = [
    dict(type=LinearLR, start_factor=0.1, by_epoch=False, begin=0, end=500),
    dict(type=CosineAnnealingLR, T_max=20, eta_min=lr * 1e-4, begin=0, end=20, by_epoch=True),
]
train_cfg = dict(type=EpochBasedTrainLoop, max_epochs=20, val_interval=5)
"""
MM3D_DATA = """\
from mmdet3d.datasets import NuScenesDataset

train_dataloader = dict(
    batch_size=2, num_workers=2, sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type=NuScenesDataset, pipeline=[dict(type='LoadPoints')], test_mode=False),
)
model = dict(type='CenterPoint', pts_backbone=dict(type='SECOND', out_channels=[64, 128]), pts_bbox_head=dict(tasks=6))
"""
MM3D_CHILD = """\
from mmengine import read_base

with read_base():
    from .._base_.schedules.cyclic_20e import *
    from .._base_.datasets.nus_3d import *

from mmdet3d.datasets import CBGSDataset
from torch.optim.sgd import SGD

model.merge(dict(pts_backbone=dict(out_channels=[32, 64]), pts_bbox_head=dict(_delete_=True, tasks=2)))
train_dataloader.merge(
    dict(_delete_=True, batch_size=4, dataset=dict(type=CBGSDataset, dataset=train_dataloader.dataset)))
optim_wrapper.merge(dict(optimizer=dict(type=SGD, lr=0.02, momentum=0.9), clip_grad=dict(_delete_=True, max_norm=10)))
param_scheduler[0].merge(dict(end=1000))
train_cfg.merge(dict(max_epochs=40))
"""


def mm3d_tree(tmp_path: Path) -> Path:
    """mmdet3d's shape of new-style config: ``from mmengine import read_base``, imported values edited by ``merge``."""
    write(tmp_path, "_base_/schedules/cyclic_20e.py", MM3D_SCHEDULE)
    write(tmp_path, "_base_/datasets/nus_3d.py", MM3D_DATA)
    return write(tmp_path, "centerpoint/centerpoint_lazy.py", MM3D_CHILD)


def test_read_base_from_mmengine_and_merge(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mmdet3d", None)  # not installed: the config must load anyway
    cfg = Config.fromfile(mm3d_tree(tmp_path))
    assert cfg.optim_wrapper.to_dict() == {
        "type": LazyObject("mmengine.optim.optimizer.optimizer_wrapper", "OptimWrapper"),
        "optimizer": {"type": LazyObject("torch.optim.sgd", "SGD"), "lr": 0.02, "weight_decay": 0.01, "momentum": 0.9},
        "clip_grad": {"max_norm": 10},
    }
    assert cfg.param_scheduler[0].end == 1000 and cfg.param_scheduler[1].end == 20
    assert cfg.train_cfg.max_epochs == 40 and cfg.train_cfg.val_interval == 5
    assert cfg.model.pts_bbox_head.to_dict() == {"tasks": 2}
    assert cfg.model.pts_backbone.out_channels == [32, 64]
    loader = cfg.train_dataloader.to_dict()
    assert set(loader) == {"batch_size", "dataset"} and loader["batch_size"] == 4
    assert loader["dataset"]["type"] == LazyObject("mmdet3d.datasets", "CBGSDataset")
    assert loader["dataset"]["dataset"]["type"] == LazyObject("mmdet3d.datasets", "NuScenesDataset")
    assert "read_base" not in cfg and "mmdet3d.datasets" not in sys.modules


def test_read_base_from_mmengine_and_merge_match_mmengine(tmp_path: Path) -> None:
    path = mm3d_tree(tmp_path)
    assert as_mmengine_text(Config.fromfile(path).to_dict()) == mmengine_dict(path)


def test_other_names_from_mmengine_stay_lazy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mmengine", None)  # answered without mmengine installed
    write(tmp_path, "base.py", "lr = 0.1\n")
    path = write(
        tmp_path,
        "c.py",
        "from mmengine import read_base, DefaultScope\nwith read_base():\n    from .base import *\n"
        "scope = dict(type=DefaultScope, lr=lr)\n",
    )
    scope = {"type": LazyObject("mmengine", "DefaultScope"), "lr": 0.1}
    assert Config.fromfile(path).to_dict() == {"lr": 0.1, "scope": scope}


#: OpenMMLab's own new-style configs, where they are checked out (the list names 66 files of three repositories)
REAL_LAZY_LIST = Path("/work/tools/lazy_list.txt")
REAL_REPOS = [Path("/work/repos") / name for name in ("mmpretrain", "mmdetection3d", "mmaction2")]
SECTIONS = ("optim_wrapper", "optimizer", "param_scheduler", "train_cfg")


def without_delete_keys(value: Any) -> Any:
    """mmengine keeps ``_delete_`` in a dict a lazy config assigns whole; paramwise never stores it."""
    if isinstance(value, dict):
        return {k: without_delete_keys(v) for k, v in value.items() if k != "_delete_"}
    if isinstance(value, (list, tuple)):
        return type(value)(without_delete_keys(v) for v in value)
    return value


@pytest.mark.skipif(not REAL_LAZY_LIST.is_file() or not all(r.is_dir() for r in REAL_REPOS), reason="no checkouts")
def test_openmmlab_new_style_configs_match_mmengine(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every real config that mmengine loads, paramwise loads, with the same optimizer sections (and the rest)."""
    mm_config = pytest.importorskip("mmengine.config")
    for repo in REAL_REPOS:
        monkeypatch.syspath_prepend(str(repo))
    loaded = 0
    for name in REAL_LAZY_LIST.read_text().split():
        try:
            theirs = without_delete_keys(mm_config.Config.fromfile(name).to_dict())
        except Exception:  # mmengine refuses 2 of the 66 (a NameError, a star import outside read_base)
            continue
        ours = as_mmengine_text(Config.fromfile(name).to_dict())
        assert {k: ours.get(k) for k in SECTIONS} == {k: theirs.get(k) for k in SECTIONS}, name
        assert ours == theirs, name
        loaded += 1
    assert loaded >= 64


# --------------------------------------------------------------------------- LazyObject


def test_lazy_object_api() -> None:
    sgd = LazyObject("torch.optim", "SGD", location="c.py, line 1")
    assert repr(sgd) == "LazyObject('torch.optim', 'SGD')" and str(sgd) == "torch.optim.SGD"
    assert sgd == LazyObject("torch", "optim.SGD") and hash(sgd) == hash(LazyObject("torch.optim.SGD"))
    torch = pytest.importorskip("torch")
    assert sgd.resolve() is torch.optim.SGD
    assert LazyObject("torch").optim.SGD.resolve() is torch.optim.SGD
    assert copy.deepcopy(sgd) is sgd and pickle.loads(pickle.dumps(sgd)) == sgd
    assert not hasattr(sgd, "__array__")
    with pytest.raises(AttributeError, match="frozen"):
        sgd.module = "x"  # type: ignore[misc]


def test_lazy_object_resolve_errors_name_module_and_key() -> None:
    with pytest.raises(ConfigDependencyError) as info:
        LazyObject("no_such_pkg_xyz.models", "Net", location="c.py, line 3").resolve("model.type")
    message = str(info.value)
    assert "no_such_pkg_xyz.models" in message and "'model.type'" in message and "c.py, line 3" in message
    assert "pip install no_such_pkg_xyz" in message and isinstance(info.value, ImportError)
    with pytest.raises(ConfigDependencyError, match="has no attribute 'Nope'"):
        LazyObject("torch.optim", "Nope").resolve()


def test_lazy_objects_survive_copies_and_dump_to_python(tmp_path: Path) -> None:
    cfg = Config.fromfile(lazy_tree(tmp_path))
    for clone in (cfg.copy(), copy.deepcopy(cfg), pickle.loads(pickle.dumps(cfg)), Config(cfg.to_dict())):
        assert clone.model.type == LazyObject("mmdet.models", "RetinaNet")
    text = cfg.pretty_text
    assert "from mmdet.models import RetinaNet\n" in text and "model = dict(type=RetinaNet, " in text
    cfg.dump(tmp_path / "out.py")
    assert Config.fromfile(tmp_path / "out.py") == cfg
    with pytest.raises(ConfigError, match=r"lazy import \(mmdet.models.RetinaNet\) cannot be written"):
        cfg.dump(tmp_path / "out.json")


def test_python_dump_renames_clashing_lazy_names(tmp_path: Path) -> None:
    cfg = Config({"a": LazyObject("x.models", "Net"), "b": LazyObject("y.models", "Net"), "Net": 1})
    cfg.dump(tmp_path / "out.py")
    assert Config.fromfile(tmp_path / "out.py") == cfg


# --------------------------------------------------------------------------- scoped bases


def fake_package(root: Path, name: str, *, layout: str = "mim") -> None:
    write(root, f"{name}/__init__.py", "raise RuntimeError('configs must not import the package')\n")
    folder = {"mim": f"{name}/.mim/configs", "editable": "configs"}[layout]
    write(
        root,
        f"{folder}/_base_/models/resnet50.py",
        "model = dict(type='ImageClassifier', backbone=dict(type='ResNet', depth=50))\n"
        "pipeline = [dict(type='LoadImage')]\nnum_classes = 1000\n",
    )


@pytest.mark.parametrize("layout", ["mim", "editable"])
def test_scoped_base_from_an_installed_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, layout: str) -> None:
    fake_package(tmp_path / "site", "mmfakepre", layout=layout)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    path = write(
        tmp_path,
        "cfg/c.py",
        "_base_ = ['mmfakepre::_base_/models/resnet50.py']\nnum_classes = {{_base_.num_classes}}\n",
    )
    cfg = Config.fromfile(path)
    assert cfg.to_dict() == {
        "model": {"type": "ImageClassifier", "backbone": {"type": "ResNet", "depth": 50}, "_scope_": "mmfakepre"},
        "pipeline": [{"type": "LoadImage", "_scope_": "mmfakepre"}],
        "num_classes": 1000,
    }
    assert "mmfakepre" not in sys.modules


def test_scoped_base_of_a_missing_package_says_what_to_install(tmp_path: Path) -> None:
    path = write(tmp_path, "c.yaml", "_base_: ['mmsegnotinstalled::_base_/x.py']\n")
    with pytest.raises(ConfigFileNotFoundError, match="pip install mmsegnotinstalled") as info:
        Config.fromfile(path)
    assert info.value.filename == str(path)


def test_scoped_base_missing_file_lists_where_it_looked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_package(tmp_path / "site", "mmfakepre")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    with pytest.raises(ConfigFileNotFoundError, match=r"\.mim") as info:
        Config.fromfile(write(tmp_path, "c.py", "_base_ = 'mmfakepre::_base_/nothere.py'\n"))
    assert "nothere.py" in str(info.value)


def test_read_base_absolute_import_from_a_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, "site/mmfakedet/__init__.py", "raise RuntimeError('must not be imported')\n")
    write(tmp_path, "site/mmfakedet/configs/_base_/runtime.py", "default_scope = 'mmfakedet'\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    path = write(
        tmp_path,
        "c.py",
        "from mmengine.config import read_base\nwith read_base():\n"
        "    from mmfakedet.configs._base_.runtime import *\n",
    )
    assert Config.fromfile(path).to_dict() == {"default_scope": "mmfakedet"}


# --------------------------------------------------------------------------- non-string keys


def test_non_string_keys_in_python_configs(tmp_path: Path) -> None:
    path = write(tmp_path, "c.py", "labels_map = {0: 19, 1: 'car', (2, 3): None}\nnested = dict(m={1.5: [1]})\n")
    cfg = Config.fromfile(path)
    assert cfg.labels_map == {0: 19, 1: "car", (2, 3): None} and cfg.nested.m[1.5] == [1]
    assert cfg.to_dict() == mmengine_dict(path)
    cfg.dump(tmp_path / "out.py")
    assert Config.fromfile(tmp_path / "out.py") == cfg
    cfg.merge_from_dotlist(["labels_map.0=5"])
    assert cfg.labels_map[0] == 5


def test_non_string_keys_and_formats_that_cannot_hold_them(tmp_path: Path) -> None:
    ints = Config({"labels_map": {0: 19, True: 1, None: 2}})
    ints.dump(tmp_path / "out.yaml")
    assert Config.fromfile(tmp_path / "out.yaml") == ints
    for suffix in (".json", ".toml"):
        with pytest.raises(ConfigError, match="keys are strings") as info:
            ints.dump(tmp_path / f"out{suffix}")
        assert info.value.problems[0].path == ("labels_map",)
    with pytest.raises(ConfigError, match="Dump to .py"):
        Config({"m": {(1, 2): 3}}).dump(tmp_path / "t.yaml")


# --------------------------------------------------------------------------- custom_imports, exit()


def test_custom_imports_stay_data(tmp_path: Path) -> None:
    text = "custom_imports = dict(imports=['no_such_module_xyz.plugins'], allow_failed_imports=False)\n"
    cfg = Config.fromfile(write(tmp_path, "c.py", text))
    assert cfg.custom_imports.imports == ["no_such_module_xyz.plugins"]


@pytest.mark.parametrize("call", ["exit()", "import sys\nsys.exit(3)", "raise SystemExit"])
def test_exit_in_a_config_is_a_file_error(tmp_path: Path, call: str) -> None:
    path = write(tmp_path, "c.py", f"a = 1\n{call}\n")
    with pytest.raises(ConfigFileError, match="exit") as info:
        Config.fromfile(path)
    assert info.value.filename == str(path) and info.value.line is not None


# --------------------------------------------------------------------------- YAML strictness


def test_yaml_duplicate_key_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "c.yaml", "optimizer:\n  lr: 0.1\n  momentum: 0.9\n  lr: 0.2\n")
    with pytest.raises(ConfigFileError, match="duplicate key 'lr' \\(first at line 2\\)") as info:
        Config.fromfile(path)
    assert info.value.line == 4 and info.value.filename == str(path)


def test_yaml_merge_keys_may_be_overridden(tmp_path: Path) -> None:
    path = write(tmp_path, "c.yaml", "base: &b {lr: 0.1, wd: 0}\nopt:\n  <<: *b\n  lr: 0.2\n")
    assert Config.fromfile(path).opt == {"lr": 0.2, "wd": 0}


def test_yaml_reads_exponent_floats(tmp_path: Path) -> None:
    path = write(tmp_path, "c.yaml", "a: 1e-3\nb: 1E5\nc: -2e-4\nd: '1e-3'\ne: 1.5e3\nf: 10\n")
    assert Config.fromfile(path).to_dict() == {
        "a": 0.001,
        "b": 100000.0,
        "c": -0.0002,
        "d": "1e-3",
        "e": 1500.0,
        "f": 10,
    }
    Config({"s": "1e-3", "x": 1e-3}).dump(tmp_path / "out.yaml")
    assert Config.fromfile(tmp_path / "out.yaml").to_dict() == {"s": "1e-3", "x": 0.001}


# --------------------------------------------------------------------------- quoted override keys


def test_quoted_override_keys_may_hold_dots() -> None:
    cfg = Config({"optimizer": {"paramwise_cfg": {"custom_keys": {"backbone.layer2": {"lr_mult": 1.0}}}}})
    cfg.merge_from_dotlist(
        [
            'optimizer.paramwise_cfg.custom_keys."backbone.layer2".lr_mult=0.1',
            "optimizer.paramwise_cfg.custom_keys.'.pos_embed'.decay_mult=0",
        ],
        allow_new_keys=True,
    )
    assert cfg.optimizer.paramwise_cfg.custom_keys.to_dict() == {
        "backbone.layer2": {"lr_mult": 0.1},
        ".pos_embed": {"decay_mult": 0},
    }
    assert parse_cfg_options(['a."b=c".d=1']) == {'a."b=c".d': 1}


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ('optimizer."backbone.layer2.lr_mult=0.1', "unbalanced"),
        ("optimizer.'x'y=1", "followed by '.'"),
        ('optimizer.ba"ck=1', "quote the whole key"),
        ("optimizer..lr=1", "empty key"),
    ],
)
def test_bad_quoted_override_names_the_item(item: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        parse_cfg_options([item])
    assert info.value.problems[0].path == (item,)


def test_names_bound_by_imports_are_not_config_keys(tmp_path: Path) -> None:
    text = "from __future__ import annotations\nfrom math import pi\nimport torch\nhalf = torch.float16\nr = pi\n"
    cfg = Config.fromfile(write(tmp_path, "c.py", text))
    assert cfg.to_dict() == {"half": LazyObject("torch", "float16"), "r": 3.141592653589793}
