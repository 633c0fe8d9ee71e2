"""The migration pages give the source library's values: each page's own config, run, against the library.

mmengine is installed: its ``build_optim_wrapper`` builds the page's config. timm (needs torchvision)
and detectron2 (not installable) are compared with their rules written here as formulas, from their
sources (timm's ``param_groups_weight_decay`` / ``param_groups_layer_decay``, detectron2's
``get_default_optimizer_params``). transformers' own functions are the reference for its page.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

import paramwise
from test_docs import DOCS, run_page


def page(name: str) -> dict[str, Any]:
    """The namespace that ``docs/migration/<name>.md``'s python blocks leave."""
    namespace: dict[str, Any] = {"__name__": "__docs__"}
    run_page(DOCS / "migration" / f"{name}.md", namespace)
    return namespace


def values(optimizer: torch.optim.Optimizer, model: nn.Module) -> dict[str, tuple[float, float]]:
    """Each parameter's (lr, weight_decay) in ``optimizer``, by its name in ``model``."""
    names = {id(p): n for n, p in model.named_parameters()}
    return {names[id(p)]: (g["lr"], g["weight_decay"]) for g in optimizer.param_groups for p in g["params"]}


def assert_same(got: dict[str, tuple[float, float]], expected: dict[str, tuple[float, float]]) -> None:
    assert got.keys() == expected.keys()
    for name, (lr, wd) in expected.items():
        assert got[name][0] == pytest.approx(lr, rel=1e-12), name
        assert got[name][1] == pytest.approx(wd, rel=1e-12, abs=0), name


def test_mmengine_page_matches_mmengine() -> None:
    mmengine_optim = pytest.importorskip("mmengine.optim")
    ns = page("mmengine")
    model, cfg = ns["model"], ns["optim_wrapper"]
    theirs = mmengine_optim.build_optim_wrapper(model, __import__("copy").deepcopy(cfg)).optimizer
    expected = values(theirs, model)
    assert len({v for v in expected.values()}) == 3  # the page's example really differs per parameter
    assert_same(values(ns["optimizer"], model), expected)
    assert_same(values(ns["wrapper"].optimizer, model), expected)


def _timm_layer_ids(names: list[str], depth: int) -> dict[str, int]:
    """timm's ids for its VisionTransformer's group_matcher: stem 0, blocks.i at i + 1, norm with the
    last block (MATCH_PREV_GROUP), anything unmatched (the head) after all: ``depth + 1``."""
    ids = {}
    for name in names:
        if re.match(r"^cls_token|pos_embed|patch_embed", name):
            ids[name] = 0
        elif m := re.match(r"^blocks\.(\d+)", name):
            ids[name] = int(m.group(1)) + 1
        elif name.startswith("norm"):
            ids[name] = depth
        else:
            ids[name] = depth + 1
    return ids


def test_timm_page_matches_timms_formulas() -> None:
    ns = page("timm")
    model, cfg = ns["model"], ns["cfg"]
    lr, wd, rate = cfg["lr"], cfg["weight_decay"], cfg["paramwise_cfg"]["layer_decay"]["rate"]
    names = [n for n, _ in model.named_parameters()]
    ids = _timm_layer_ids(names, len(model.blocks))
    num_layers = max(ids.values()) + 1
    no_wd = model.no_weight_decay()
    expected = {}
    for name, p in model.named_parameters():  # param_groups_layer_decay, lr_scale folded into lr
        decayed = not (p.ndim <= 1 or name.endswith(".bias") or name in no_wd)
        expected[name] = (lr * rate ** (num_layers - 1 - ids[name]), wd if decayed else 0.0)
    assert len({v[0] for v in expected.values()}) == num_layers == 5
    assert_same(values(paramwise.build_optimizer(model, cfg), model), expected)


_D2_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm, nn.GroupNorm, nn.InstanceNorm1d,
             nn.InstanceNorm2d, nn.InstanceNorm3d, nn.LayerNorm, nn.LocalResponseNorm)


def detectron2_values(model: nn.Module, solver: dict[str, Any]) -> dict[str, tuple[float, float]]:
    """detectron2's get_default_optimizer_params as formulas: defaults, the norm rule, then the bias
    override by a parameter's own name (which replaces the norm rule)."""
    base_lr, wd = solver["BASE_LR"], solver["WEIGHT_DECAY"]
    bias: dict[str, float] = {}
    if solver.get("BIAS_LR_FACTOR", 1.0) != 1.0:
        bias["lr"] = base_lr * solver["BIAS_LR_FACTOR"]
    if solver.get("WEIGHT_DECAY_BIAS") is not None:
        bias["weight_decay"] = solver["WEIGHT_DECAY_BIAS"]
    out = {}
    for module_name, module in model.named_modules():
        for local, _ in module.named_parameters(recurse=False):
            hyper = {"lr": base_lr, "weight_decay": wd}
            if isinstance(module, _D2_NORMS) and solver.get("WEIGHT_DECAY_NORM") is not None:
                hyper["weight_decay"] = solver["WEIGHT_DECAY_NORM"]
            if local == "bias":
                hyper.update(bias)
            out[f"{module_name}.{local}" if module_name else local] = (hyper["lr"], hyper["weight_decay"])
    return out


def test_detectron2_page_matches_detectron2s_rules() -> None:
    ns = page("detectron2")
    model, cfg, solver = ns["model"], ns["cfg"], ns["solver"]
    expected = detectron2_values(model, solver)
    assert expected["1.bias"] == (0.04, 0.0) and expected["1.weight"] == (0.02, 0.0)  # the override wins
    assert_same(values(paramwise.build_optimizer(model, cfg), model), expected)


@pytest.mark.parametrize("solver", [
    dict(BASE_LR=0.1, WEIGHT_DECAY=1e-4, WEIGHT_DECAY_NORM=0.0),  # detectron2's defaults otherwise
    dict(BASE_LR=0.1, WEIGHT_DECAY=1e-4, WEIGHT_DECAY_NORM=1e-5, BIAS_LR_FACTOR=2.0, WEIGHT_DECAY_BIAS=3e-5),
])
def test_detectron2_translation_of_the_page_holds_for_other_values(solver: dict[str, Any]) -> None:
    model = page("detectron2")["model"]
    pw: dict[str, Any] = dict(norm_decay_mult=solver["WEIGHT_DECAY_NORM"] / solver["WEIGHT_DECAY"])
    if "BIAS_LR_FACTOR" in solver:
        pw["custom_keys"] = {".bias": dict(lr_mult=solver["BIAS_LR_FACTOR"],
                                           decay_mult=solver["WEIGHT_DECAY_BIAS"] / solver["WEIGHT_DECAY"])}
    cfg = dict(type="SGD", lr=solver["BASE_LR"], weight_decay=solver["WEIGHT_DECAY"], paramwise_cfg=pw)
    assert_same(values(paramwise.build_optimizer(model, cfg), model), detectron2_values(model, solver))


def _hf_decay_names(model: nn.Module) -> set[str]:
    """transformers' Trainer.get_decay_parameter_names (5.x), as a formula: not in a LayerNorm module, and
    no forbidden pattern in the name."""
    forbidden = [r"bias", r"layernorm", r"rmsnorm", r"(?:^|\.)norm(?:$|\.)", r"_norm(?:$|\.)"]
    norm_params = {f"{m}.{n}" if m else n for m, mod in model.named_modules() if isinstance(mod, nn.LayerNorm)
                   for n, _ in mod.named_parameters(recurse=False)}
    return {n for n, _ in model.named_parameters()
            if n not in norm_params and not any(re.search(p, n.lower()) for p in forbidden)}


def _hf_linear(step: int, warmup: int, total: int) -> float:
    """transformers' get_linear_schedule_with_warmup factor."""
    return step / max(1, warmup) if step < warmup else max(0.0, (total - step) / max(1, total - warmup))


def test_huggingface_page_matches_the_trainers_rules() -> None:
    ns = page("huggingface")
    model, optimizer = ns["model"], ns["optimizer"]
    decay = _hf_decay_names(model)
    base = ns["optim_wrapper"]["optimizer"]
    expected = {n: (base["lr"], base["weight_decay"] if n in decay else 0.0) for n, _ in model.named_parameters()}
    fresh = paramwise.build_optimizer(model, dict(base, paramwise_cfg=ns["optim_wrapper"]["paramwise_cfg"]))
    assert_same(values(fresh, model), expected)
    assert len(ns["lrs"]) == 100
    for step, lr in enumerate(ns["lrs"]):
        assert math.isclose(lr, base["lr"] * _hf_linear(step, 10, 100), rel_tol=1e-9, abs_tol=1e-15), step
    assert optimizer.param_groups[0]["betas"] == (0.9, 0.999)


@pytest.mark.slow
def test_huggingface_formulas_are_transformers_own() -> None:
    transformers = pytest.importorskip("transformers")
    model = page("huggingface")["model"]
    assert set(transformers.Trainer.get_decay_parameter_names(None, model)) == _hf_decay_names(model)
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = transformers.get_linear_schedule_with_warmup(opt, 10, 100)
    for step in range(100):
        assert math.isclose(opt.param_groups[0]["lr"], _hf_linear(step, 10, 100), abs_tol=1e-15), step
        opt.step()
        sched.step()


def test_every_migration_page_is_checked_here() -> None:
    source = Path(__file__).read_text(encoding="utf-8")
    for md in (DOCS / "migration").glob("*.md"):
        assert f'page("{md.stem}")' in source, f"{md} has no test comparing its values with the source library"
