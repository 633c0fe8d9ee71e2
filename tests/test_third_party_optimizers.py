"""Optimizer libraries: registered lazily when installed, built from a config by name, mmengine's names resolve.

Each library's cases skip (with the reason) where it is not installed; scripts/test.sh installs those that
install on CPU without replacing torch.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap
import warnings
from typing import Any

import pytest
import torch
from torch import nn

from paramwise import OPTIMIZERS, ConfigError, build_optimizer
from paramwise.optimizers import THIRD_PARTY_PACKAGES, cuda_requirement, optimizer_arguments


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module.split(".")[0]) is not None


def _needs(module: str) -> pytest.MarkDecorator:
    return pytest.mark.skipif(not _installed(module), reason=f"{module.split('.')[0]} is not installed")


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.ReLU(), nn.Linear(8, 2))


@pytest.fixture
def no_heavyball_compile(monkeypatch: pytest.MonkeyPatch) -> None:
    """heavyball compiles every step with torch.compile (tens of seconds on CPU); its eager path is the same math."""
    if _installed("heavyball"):
        import heavyball.utils

        monkeypatch.setattr(heavyball.utils, "compile_mode", None)
        monkeypatch.setattr(heavyball.utils, "compile_mode_recommended_to_none", None)


# (module that must be installed, registered name, arguments beside lr)
CASES = [
    ("lion_pytorch", "Lion", {}),  # mmengine's name
    ("lion_pytorch", "lion_pytorch.Lion", {}),
    ("dadaptation", "DAdaptAdam", {}),
    ("dadaptation", "DAdaptSGD", {}),
    ("dadaptation", "DAdaptAdaGrad", {}),
    ("prodigyopt", "Prodigy", {"d_coef": 1.0}),
    ("schedulefree", "AdamWScheduleFree", {"warmup_steps": 2}),
    ("schedulefree", "SGDScheduleFree", {"momentum": 0.9}),
    ("pytorch_optimizer", "pytorch_optimizer.Lamb", {}),
    ("pytorch_optimizer", "pytorch_optimizer.AdamP", {}),
    ("pytorch_optimizer", "pytorch_optimizer.Lion", {}),
    ("heavyball", "heavyball.AdamW", {}),
    ("heavyball", "heavyball.SOAP", {}),
    ("bitsandbytes", "AdamW8bit", {}),  # mmengine's name
    ("bitsandbytes", "bnb_AdamW", {}),  # mmengine's name where torch has AdamW
    ("bitsandbytes", "bnb.PagedLion8bit", {}),
    ("timm.optim", "timm.Lamb", {}),
    ("torch_optimizer", "torch_optimizer.Yogi", {}),
    ("transformers", "transformers.Adafactor", {"relative_step": False, "scale_parameter": False}),
    ("torchao", "torchao.AdamW8bit", {}),  # slow: torch.compile at its first step
]
SLOW = {"torchao.AdamW8bit"}


@pytest.mark.usefixtures("no_heavyball_compile")
@pytest.mark.parametrize("module, name, kwargs", [
    pytest.param(*case, id=case[1], marks=[pytest.mark.slow] if case[1] in SLOW else []) for case in CASES])
def test_built_from_a_config_by_its_name_and_one_step(module: str, name: str, kwargs: dict[str, Any]) -> None:
    if not _installed(module):
        pytest.skip(f"{module.split('.')[0]} is not installed")
    cls = OPTIMIZERS.get(name)
    _, accepted, _ = optimizer_arguments(cls)
    cfg: dict[str, Any] = {"type": name, "lr": 1e-2, **kwargs}
    if "weight_decay" in accepted:
        cfg["weight_decay"] = 0.01
    model = _model()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # some libraries print advice through warnings
        optimizer = build_optimizer(model, {**cfg, "paramwise_cfg": {"norm_decay_mult": 0.0}})
    assert type(optimizer) is cls
    names = {n for g in optimizer.param_groups for n in g["param_names"]}
    assert names == {n for n, _ in model.named_parameters()}
    if "weight_decay" in accepted:  # the paramwise_cfg took effect on the library's groups
        norm = next(g for g in optimizer.param_groups if "1.weight" in g["param_names"])
        assert norm["weight_decay"] == 0.0
    if hasattr(optimizer, "train"):  # schedule-free optimizers switch between train and eval weights
        optimizer.train()
    before = [p.detach().clone() for p in model.parameters()]
    model(torch.randn(5, 4)).pow(2).mean().backward()
    optimizer.step()
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert optimizer.state  # the step ran: the library keeps state per parameter
    if not name.startswith("DAdapt") and name != "heavyball.SOAP":  # first steps that may be zero: D-Adaptation
        # starts d tiny, SOAP's first step only sets up its preconditioner
        assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters()))


@_needs("lion_pytorch")
def test_arguments_are_checked_against_the_library_signature() -> None:
    with pytest.raises(ConfigError, match=r"optimizer -> momentum") as info:
        build_optimizer(_model(), {"type": "Lion", "lr": 1e-4, "momentum": 0.9})
    assert "betas" in str(info.value)  # the accepted arguments come from Lion's signature


def _mmengine_optimizers() -> dict[str, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import mmengine.optim  # noqa: F401  (registers the installed libraries in mmengine's registry)
        from mmengine.registry import OPTIMIZERS as MM_OPTIMIZERS
    return dict(MM_OPTIMIZERS.module_dict)


def test_mmengine_names_resolve_to_the_same_classes() -> None:
    mm = _mmengine_optimizers()
    mm = {n: c for n, c in mm.items() if not c.__module__.startswith("mmengine.")}  # its ZeroRedundancyOptimizer
    third_party = {n: c for n, c in mm.items() if not c.__module__.startswith("torch.")}
    compared = 0
    for name, cls in third_party.items():
        if name == "Adafactor":  # transformers' in mmengine; torch's keeps the name here (README)
            assert OPTIMIZERS.get("transformers.Adafactor") is cls
            assert OPTIMIZERS.get("Adafactor") is mm["TorchAdafactor"] is torch.optim.Adafactor
        else:
            assert OPTIMIZERS.get(name) is cls, name
        compared += 1
    expected = {m for m in ("lion_pytorch", "dadaptation", "bitsandbytes", "transformers") if _installed(m)}
    assert {c.__module__.split(".")[0] for c in third_party.values()} == expected
    assert compared >= len(expected)
    for name in mm:  # torch's names too: every name an mmengine config may use
        assert name in OPTIMIZERS, name


def test_a_library_never_shadows_torch() -> None:
    names = OPTIMIZERS.names()  # the full scan: every installed library registered
    torch_names = [n for n, c in vars(torch.optim).items()
                   if isinstance(c, type) and issubclass(c, torch.optim.Optimizer)]
    for name in torch_names:
        assert OPTIMIZERS.get(name) is getattr(torch.optim, name)
    # a bare name belongs to the first library (in THIRD_PARTY_PACKAGES' order) that defines it
    for name in names:
        tops = {package.split(".")[0] for package in THIRD_PARTY_PACKAGES}
        if "." in name or name.startswith("bnb_") or OPTIMIZERS.get(name).__module__.split(".")[0] not in tops:
            continue  # torch's, paramwise's, mmengine's aliases, and classes other tests register
        owners = [f"{prefix}.{name}" for prefix in THIRD_PARTY_PACKAGES.values() if f"{prefix}.{name}" in names]
        assert owners and OPTIMIZERS.get(name) is OPTIMIZERS.get(owners[0]), name


def test_cuda_only_optimizer_without_cuda_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    class FusedAdam(torch.optim.Optimizer):  # as apex defines it: CUDA kernels only
        def __init__(self, params: Any, lr: float = 1e-3) -> None:
            super().__init__(params, {"lr": lr})

    FusedAdam.__module__ = "apex.optimizers.fused_adam"
    assert cuda_requirement(FusedAdam) == "apex.optimizers" and cuda_requirement(torch.optim.AdamW) is None
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match=r"optimizer -> type: FusedAdam needs CUDA \(apex.optimizers runs it on "
                                          r"CUDA GPUs only\), and torch.cuda.is_available\(\) is False"):
        build_optimizer(_model(), {"type": FusedAdam, "lr": 0.1})
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # with CUDA it is built as any other
    assert isinstance(build_optimizer(_model(), {"type": FusedAdam, "lr": 0.1}), FusedAdam)


@_needs("torchao")
def test_torchao_cpu_offload_without_cuda_names_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match=r"torchao.CPUOffloadOptimizer needs CUDA"):
        build_optimizer(_model(), {"type": "torchao.CPUOffloadOptimizer", "optimizer_class": torch.optim.AdamW})


def test_a_lookup_imports_only_what_the_name_needs() -> None:
    code = textwrap.dedent("""
        import sys, torch
        from paramwise import OPTIMIZERS, build_optimizer
        LIBS = ("lion_pytorch", "dadaptation", "prodigyopt", "schedulefree", "pytorch_optimizer", "heavyball",
                "bitsandbytes", "torchao", "transformers", "timm", "torch_optimizer")
        build_optimizer(torch.nn.Linear(2, 2), {"type": "AdamW", "lr": 0.1})
        print(sorted(m for m in LIBS if m in sys.modules))
        try:
            OPTIMIZERS.get("lion_pytorch.Lion")
        except KeyError:
            pass
        print(sorted(m for m in LIBS if m in sys.modules))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    plain, prefixed = out.stdout.splitlines()[-2:]
    assert plain == "[]"  # torch's names need no library
    assert prefixed == ("['lion_pytorch']" if _installed("lion_pytorch") else "[]")
