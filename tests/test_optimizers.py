"""OPTIMIZERS: torch's optimizers found by scanning, third-party packages registered when present."""

from __future__ import annotations

import inspect
import types

import pytest
import torch

from paramwise import OPTIMIZERS, NotRegisteredError, Registry
from paramwise.optimizers import optimizer_arguments, optimizer_default, register_optimizers_from


def test_every_torch_optimizer_is_registered() -> None:
    expected = {
        name
        for name, obj in vars(torch.optim).items()
        if inspect.isclass(obj) and issubclass(obj, torch.optim.Optimizer) and obj is not torch.optim.Optimizer
    }
    assert {"SGD", "Adam", "AdamW"} <= expected
    for name in expected:
        assert OPTIMIZERS.get(name) is getattr(torch.optim, name)
    assert "Optimizer" not in OPTIMIZERS


def test_unknown_optimizer_suggests() -> None:
    with pytest.raises(NotRegisteredError, match=r"'Adamw' is not in the optimizer registry. Did you mean 'AdamW'"):
        OPTIMIZERS.get("Adamw")


def test_third_party_module_registered_under_prefix_and_bare_name() -> None:
    reg = Registry("optimizer")
    register_optimizers_from(reg, torch.optim)

    class Lamb(torch.optim.Optimizer):
        def __init__(self, params, lr=1e-3):
            super().__init__(params, {"lr": lr})

    class AdamW(torch.optim.Optimizer):  # clashes with torch's: only the prefixed name
        pass

    fake = types.ModuleType("fake_timm_optim")
    fake.Lamb, fake.AdamW, fake.helper = Lamb, AdamW, object()
    names = register_optimizers_from(reg, fake, prefix="timm")
    assert sorted(names) == ["Lamb", "timm.AdamW", "timm.Lamb"]
    assert reg.get("timm.Lamb") is Lamb and reg.get("Lamb") is Lamb
    assert reg.get("AdamW") is torch.optim.AdamW and reg.get("timm.AdamW") is AdamW


def test_argument_introspection() -> None:
    params_arg, named, var_kw = optimizer_arguments(torch.optim.SGD)
    assert params_arg == "params" and {"lr", "momentum", "weight_decay"} <= named and not var_kw
    assert "params" not in named
    assert optimizer_default(torch.optim.AdamW, "lr") == pytest.approx(1e-3)
    assert optimizer_default(torch.optim.AdamW, "nope") is None

    class Anything(torch.optim.Optimizer):
        def __init__(self, params, **kwargs):
            super().__init__(params, kwargs)

    assert optimizer_arguments(Anything) == ("params", frozenset(), True)


def test_lookup_error_names_installed_packages_that_failed_to_load(monkeypatch) -> None:
    from paramwise import optimizers

    monkeypatch.setitem(optimizers._THIRD_PARTY_FAILURES, "timm.optim", "ImportError: no torchvision")
    with pytest.raises(NotRegisteredError) as info:
        OPTIMIZERS.get("Lamb")
    assert str(info.value).endswith("(installed but not loaded: timm.optim: ImportError: no torchvision)")
