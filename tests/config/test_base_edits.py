"""Python configs that edit ``_base_`` in their code, and star imports of lazy bases, against mmengine.

mmengine binds the merged bases as ``_base_`` while a ``.py`` config runs and merges the file's values
over that same object afterwards, so ``_base_.optim_wrapper.optimizer.lr = 0.002`` and
``del _base_.model`` change the result. Each case here is loaded by paramwise and by
``mmengine.Config.fromfile``; the two ``to_dict()`` results must be equal.
"""

from __future__ import annotations

import copy
import os
import zipfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paramwise.config.config import Config, ConfigFileError, LazyObject


def write(folder: Path, name: str, text: str) -> Path:
    """Write one file of a temporary config tree (its folders made as needed) and return its path."""
    os.makedirs(folder / os.path.dirname(name), exist_ok=True)
    (folder / name).write_text(text, encoding="utf-8")
    return folder / name


def mmengine_dict(path: Path) -> dict[str, Any]:
    """The reference: what mmengine 0.10.7 itself loads (a test dependency)."""
    from mmengine.config import Config as MMConfig

    return MMConfig.fromfile(str(path)).to_dict()  # type: ignore[no-any-return]


def as_mmengine_text(value: Any) -> Any:
    """Our lazy imports written as mmengine's ``to_dict`` writes them: their dotted path."""
    if isinstance(value, LazyObject):
        return value.import_path
    if isinstance(value, (list, tuple)):
        return type(value)(as_mmengine_text(item) for item in value)
    if isinstance(value, dict):
        return {key: as_mmengine_text(item) for key, item in value.items()}
    return value

SCHEDULE = """\
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=0.0001))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=12, by_epoch=True, milestones=[8, 11], gamma=0.1),
]
"""
MODEL = """\
model = dict(type='FasterRCNN', backbone=dict(type='ResNet', depth=50, stages=[[1, 2], [3, 4]]))
train_pipeline = [dict(type='LoadImageFromFile'), dict(type='Resize', scale=(1333, 800))]
"""
HEAD = "_base_ = ['../_base_/schedule.py', '../_base_/model.py']\n"

# old-style configs: each edits its _base_ as a real OpenMMLab config does (or as Python allows)
EDITS = {
    "amp": "_base_.optim_wrapper.type = 'AmpOptimWrapper'\n",
    "lr": "_base_.optim_wrapper.optimizer.lr = 0.002\n",
    "milestones": "_base_.param_scheduler[1].milestones = [28, 34]\n",
    "del_top": "del _base_.param_scheduler\ndel _base_.model\n",
    "augmented": "_base_.optim_wrapper.optimizer.lr *= 2\n_base_.model.backbone.depth += 51\n",
    "items": "_base_['model']['backbone']['depth'] = 18\n_base_.model.backbone.stages[1][0] = 30\n",
    "list_item_dict": "_base_.train_pipeline[1].scale = (640, 640)\n",
    "del_nested": "del _base_.optim_wrapper.optimizer.momentum\ndel _base_.param_scheduler[0]\n",
    "new_keys": "_base_.model.neck = dict(type='FPN')\n_base_.work_dir = 'out'\n",
    "later_reads": (
        "_base_.optim_wrapper.optimizer.lr = 0.01\n"
        "lr_copy = _base_.optim_wrapper.optimizer.lr\n"
        "ref_copy = {{_base_.optim_wrapper.optimizer.lr}}\n"
    ),
    "file_value_wins": "_base_.optim_wrapper.optimizer.lr = 0.5\noptim_wrapper = dict(optimizer=dict(lr=0.1))\n",
    "method_calls": (
        "_base_.param_scheduler.append(dict(type='ConstantLR', factor=0.5))\n"
        "_base_.model.backbone.update(dict(frozen_stages=1))\n"
        "_base_.model.backbone.pop('stages')\n"
    ),
    "loop": "for entry in _base_.param_scheduler:\n    entry.by_epoch = True\n",
    "alias": "backbone = _base_.model.backbone\nbackbone.depth = 101\n",
    "del_then_set": "del _base_.model\n_base_.model = dict(type='RetinaNet')\n",
    "del_base_name": "_base_.optim_wrapper.optimizer.lr = 0.3\ndel _base_\n",
}


def base_tree(tmp_path: Path) -> None:
    write(tmp_path, "_base_/schedule.py", SCHEDULE)
    write(tmp_path, "_base_/model.py", MODEL)


def paramwise_dict(path: Path) -> dict[str, Any]:
    return as_mmengine_text(Config.fromfile(path).to_dict())  # type: ignore[no-any-return]


@pytest.mark.parametrize("case", sorted(EDITS))
def test_edits_of_base_match_mmengine(tmp_path: Path, case: str) -> None:
    base_tree(tmp_path)
    path = write(tmp_path, f"configs/{case}.py", HEAD + EDITS[case])
    expected = mmengine_dict(path)
    assert paramwise_dict(path) == expected
    assert paramwise_dict(path) != paramwise_dict(write(tmp_path, "configs/plain.py", HEAD))  # the edit did something


def test_edits_reach_the_values_that_matter(tmp_path: Path) -> None:
    """The issue's own examples, read back by name (not only equal to mmengine)."""
    base_tree(tmp_path)
    code = "".join(EDITS[name] for name in ("amp", "lr", "milestones"))
    cfg = Config.fromfile(write(tmp_path, "configs/c.py", HEAD + code))
    assert cfg.optim_wrapper.type == "AmpOptimWrapper"
    expected = {"type": "SGD", "lr": 0.002, "momentum": 0.9, "weight_decay": 0.0001}
    assert cfg.optim_wrapper.optimizer.to_dict() == expected
    assert cfg.param_scheduler[1].milestones == [28, 34]
    deleted = Config.fromfile(write(tmp_path, "configs/d.py", HEAD + EDITS["del_top"]))
    assert "param_scheduler" not in deleted and "model" not in deleted and "optim_wrapper" in deleted


def test_base_references_after_an_edit_read_the_edited_value(tmp_path: Path) -> None:
    base_tree(tmp_path)
    code = (
        "before = {{_base_.optim_wrapper.optimizer.lr}}\n"
        "_base_.optim_wrapper.optimizer.lr = 0.01\n"
        "after = {{_base_.optim_wrapper.optimizer.lr}}\n"
        "lr_text = 'lr={{_base_.optim_wrapper.optimizer.lr}}'\n"  # mmengine leaves a placeholder here
    )
    cfg = Config.fromfile(write(tmp_path, "configs/c.py", HEAD + code))
    assert (cfg.before, cfg.after, cfg.lr_text) == (0.02, 0.01, "lr=0.01")


def test_an_edit_is_seen_by_files_that_inherit_the_editing_file(tmp_path: Path) -> None:
    base_tree(tmp_path)
    write(tmp_path, "configs/mid.py", HEAD + EDITS["lr"])
    path = write(tmp_path, "configs/top.py", "_base_ = 'mid.py'\nlr = _base_.optim_wrapper.optimizer.lr * 10\n")
    assert paramwise_dict(path) == mmengine_dict(path)
    assert Config.fromfile(path).lr == pytest.approx(0.02)


def test_edits_do_not_leak_into_the_base_files_or_their_other_children(tmp_path: Path) -> None:
    base_tree(tmp_path)
    write(tmp_path, "configs/edit.py", HEAD + EDITS["lr"] + EDITS["del_top"])
    write(tmp_path, "configs/other.py", HEAD)
    path = write(tmp_path, "configs/both.py", "_base_ = ['edit.py', 'other.py']\n")  # one load, shared cache
    cfg = Config.fromfile(path)
    assert cfg.optim_wrapper.optimizer.lr == 0.02 and "model" in cfg  # other.py's untouched copy merged last
    assert Config.fromfile(tmp_path / "configs/edit.py").optim_wrapper.optimizer.lr == 0.002


# --------------------------------------------------------------------------- what cannot be applied


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("_base_.optim_wrappr.type = 'AmpOptimWrapper'\n", r"no key 'optim_wrappr'\. Did you mean 'optim_wrapper'\?"),
        ("del _base_.schedule\n", "no key 'schedule'"),
        ("_base_.optim_wrapper.optimizer.lr.value = 1\n", "'float' object has no attribute 'value'"),
        ("_base_.param_scheduler[5].milestones = [1]\n", "IndexError"),
        ("_base_.train_pipeline[1].scale[0] = 640\n", "'tuple' object does not support item assignment"),
        ("_base_.model.backbone.stages['a'] = 1\n", "TypeError"),
        ("del _base_.optim_wrapper.optimizer.betas\n", "no key 'betas'"),
    ],
)
def test_edits_that_cannot_be_applied_name_file_and_line(tmp_path: Path, code: str, message: str) -> None:
    base_tree(tmp_path)
    path = write(tmp_path, "configs/bad.py", HEAD + "x = 1\n" + code)
    with pytest.raises(ConfigFileError, match=message) as info:
        Config.fromfile(path)
    assert info.value.filename == str(path) and info.value.line == 3
    with pytest.raises(Exception):  # noqa: B017  mmengine refuses these too
        mmengine_dict(path)


def test_editing_base_without_bases_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "c.py", "a = 1\n_base_.optim_wrapper.type = 'AmpOptimWrapper'\n")
    with pytest.raises(ConfigFileError, match="_base_") as info:
        Config.fromfile(path)
    assert info.value.line == 2


def test_an_edit_that_makes_base_hold_itself_is_an_error(tmp_path: Path) -> None:
    base_tree(tmp_path)
    path = write(tmp_path, "configs/c.py", HEAD + "_base_.model.me = _base_.model\n")
    with pytest.raises(ConfigFileError, match="_base_") as info:
        Config.fromfile(path)
    assert info.value.filename == str(path)


# --------------------------------------------------------------------------- new-style (read_base) configs

LAZY_HEAD = "from mmengine.config import read_base\nwith read_base():\n    from .._base_.schedule import *\n"


@pytest.mark.parametrize(
    "code",
    [
        "optim_wrapper.type = 'AmpOptimWrapper'\n",
        "optim_wrapper.optimizer.lr = 0.002\n",
        "param_scheduler[1].milestones = [28, 34]\n",
        "del param_scheduler\n",
        "optim_wrapper.optimizer.lr *= 2\n",
    ],
)
def test_edits_of_read_base_imports_match_mmengine(tmp_path: Path, code: str) -> None:
    base_tree(tmp_path)
    path = write(tmp_path, "configs/lazy.py", LAZY_HEAD + code)
    assert paramwise_dict(path) == mmengine_dict(path)


# --------------------------------------------------------------------------- a property: any edit path


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value in nested dicts and lists."""
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*prefix, index))
    return found


BASE_VALUE = {
    "model": {"backbone": {"depth": 50, "stages": [[1, 2], [3, {"k": 4}]]}, "neck": {"n": 1}},
    "steps": [1, {"lr": 0.1}, [2, 3]],
    "opt": {"lr": 0.02},
}


def _code_of(path: tuple[Any, ...]) -> str:
    return "_base_" + "".join(f"[{key}]" if isinstance(key, int) else f".{key}" for key in path)


@settings(max_examples=25)
@given(
    path=st.sampled_from(_paths(BASE_VALUE)),
    value=st.one_of(st.integers(-5, 5), st.text("ab", max_size=3), st.lists(st.integers(0, 3), max_size=2)),
    delete=st.booleans(),
)
def test_any_assignment_or_deletion_lands_where_python_puts_it(
    tmp_path_factory: pytest.TempPathFactory, path: tuple[Any, ...], value: Any, delete: bool
) -> None:
    folder = tmp_path_factory.mktemp("edit")
    write(folder, "base.py", "\n".join(f"{k} = {v!r}" for k, v in BASE_VALUE.items()) + "\n")
    code = f"del {_code_of(path)}\n" if delete else f"{_code_of(path)} = {value!r}\n"
    config = write(folder, "c.py", "_base_ = 'base.py'\n" + code)
    expected = copy.deepcopy(BASE_VALUE)
    node: Any = expected
    for key in path[:-1]:
        node = node[key]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    assert Config.fromfile(config).to_dict() == expected


# --------------------------------------------------------------------------- 1b: star imports of lazy bases

DATASET = """\
import math
from mmpretrain.datasets import PackInputs, RandomResizedCrop
from mmpretrain.models import ImageClassifier as Classifier

dataset_type = 'ImageNet'
train_pipeline = [dict(type=RandomResizedCrop, scale=224), dict(type=PackInputs)]
"""
STAR = "from mmengine.config import read_base\nwith read_base():\n    from {module} import *\n"


def dataset_tree(tmp_path: Path) -> None:
    write(tmp_path, "_base_/datasets/imagenet.py", DATASET)


@pytest.mark.parametrize(
    ("name", "text"),
    [
        (  # the file uses names the base imported (mmpretrain's BEiT/MAE benchmark configs)
            "use.py",
            STAR.format(module=".._base_.datasets.imagenet")
            + "train_pipeline = [dict(type=RandomResizedCrop, scale=192), dict(type=PackInputs)]\n"
            + "model = dict(type=Classifier)\n",
        ),
        (  # one name, as 'from x import a'
            "one.py",
            "from mmengine.config import read_base\nwith read_base():\n"
            "    from .._base_.datasets.imagenet import RandomResizedCrop, dataset_type\n"
            "pipeline = [dict(type=RandomResizedCrop)]\n",
        ),
        (  # through a base that star-imported them itself
            "chain.py",
            STAR.format(module=".use") + "test_pipeline = [dict(type=RandomResizedCrop), dict(type=Classifier)]\n",
        ),
    ],
)
def test_star_imports_bring_the_names_a_base_imported(tmp_path: Path, name: str, text: str) -> None:
    dataset_tree(tmp_path)
    if name == "chain.py":
        write(
            tmp_path,
            "configs/use.py",
            STAR.format(module=".._base_.datasets.imagenet") + "model = dict(type=Classifier)\n",
        )
    path = write(tmp_path, f"configs/{name}", text)
    loaded = Config.fromfile(path).to_dict()
    assert as_mmengine_text(loaded) == mmengine_dict(path)
    assert "RandomResizedCrop" not in loaded and "Classifier" not in loaded  # imports are not config keys


def test_star_imports_give_every_public_name_as_python_does(tmp_path: Path) -> None:
    dataset_tree(tmp_path)
    path = write(
        tmp_path,
        "configs/c.py",
        STAR.format(module=".._base_.datasets.imagenet")
        + "crop = dict(type=RandomResizedCrop, ratio=math.pi)\nhead = dict(type=Classifier)\n",
    )
    cfg = Config.fromfile(path)
    assert cfg.crop.type == LazyObject("mmpretrain.datasets", "RandomResizedCrop")
    assert cfg.crop.ratio == pytest.approx(3.141592653589793)  # the standard library is imported for real
    assert cfg.head.type == LazyObject("mmpretrain.models", "ImageClassifier")
    assert set(cfg) == {"dataset_type", "train_pipeline", "crop", "head"}


def test_a_folder_import_reads_a_base_imported_name(tmp_path: Path) -> None:
    dataset_tree(tmp_path)
    path = write(
        tmp_path,
        "configs/c.py",
        "from mmengine.config import read_base\nwith read_base():\n    from .._base_.datasets import imagenet\n"
        "crop = dict(type=imagenet.RandomResizedCrop)\n",
    )
    assert Config.fromfile(path).crop.type == LazyObject("mmpretrain.datasets", "RandomResizedCrop")


def test_a_name_a_base_neither_defines_nor_imports_is_still_an_error(tmp_path: Path) -> None:
    dataset_tree(tmp_path)
    path = write(
        tmp_path,
        "configs/c.py",
        "from mmengine.config import read_base\nwith read_base():\n"
        "    from .._base_.datasets.imagenet import RandomCrop\n",
    )
    with pytest.raises(ConfigFileError, match="defines no 'RandomCrop'") as info:
        Config.fromfile(path)
    assert info.value.line == 3


# --------------------------------------------------------------------------- real configs (a cached wheel)

WHEEL = Path("/tmp/wheels/mmdet-3.3.0-py3-none-any.whl")
REAL = [
    "faster_rcnn/faster-rcnn_r50_fpn_amp-1x_coco.py",
    "retinanet/retinanet_r50_fpn_amp-1x_coco.py",
    "faster_rcnn/faster-rcnn_r50-caffe_fpn_ms-2x_coco.py",
    "dcnv2/mask-rcnn_r50-mdconv-c3-c5_fpn_amp-1x_coco.py",
    "strongsort/strongsort_yolox_x_8xb4-80e_crowdhuman-mot17halftrain_test-mot17halfval.py",
]


@pytest.mark.skipif(not WHEEL.is_file(), reason="the mmdet 3.3.0 wheel is not cached (pip download mmdet==3.3.0)")
@pytest.mark.parametrize("name", REAL)
def test_real_mmdet_configs_that_edit_base_match_mmengine(tmp_path: Path, name: str) -> None:
    prefix = "mmdet/.mim/configs/"
    with zipfile.ZipFile(WHEEL) as wheel:
        wheel.extractall(tmp_path, [n for n in wheel.namelist() if n.startswith(prefix) and n.endswith(".py")])
    path = tmp_path / prefix / name
    assert paramwise_dict(path) == mmengine_dict(path)
