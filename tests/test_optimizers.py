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
    # the base class too, as mmengine and mmcv register it (their tests assert it); building it is an error
    assert OPTIMIZERS.get("Optimizer") is torch.optim.Optimizer


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
        OPTIMIZERS.get("NvNovoGrad")  # timm only (torchvision missing here)
    assert str(info.value).endswith("(installed but not loaded: timm.optim: ImportError: no torchvision)")


@pytest.fixture
def nothing_installed(monkeypatch) -> None:
    """Every known third-party package reads as not installed and none failed, whatever this machine has."""
    from paramwise import optimizers

    monkeypatch.setattr(optimizers, "_installed", lambda module: False)
    monkeypatch.setattr(optimizers, "_THIRD_PARTY_FAILURES", {})


def _message(name: str) -> str:
    """The lookup error for ``name`` from an optimizer registry holding torch's optimizers only."""
    from paramwise.optimizers import _OptimizerRegistry

    reg = _OptimizerRegistry("optimizer")
    register_optimizers_from(reg, torch.optim)
    with pytest.raises(NotRegisteredError) as info:
        reg.get(name)
    assert isinstance(info.value, KeyError)
    return str(info.value)


def test_unknown_name_with_nothing_close_says_how_to_list(nothing_installed) -> None:
    msg = _message("Zzzzzzzz")
    assert msg.startswith("'Zzzzzzzz' is not in the optimizer registry. It holds ")
    assert "`paramwise list optimizers` or OPTIMIZERS.names()" in msg
    assert "registry.names()" not in msg


def test_known_package_single_provider(nothing_installed) -> None:
    assert _message("AdamWScheduleFree") == (
        "'AdamWScheduleFree' is not in the optimizer registry. It is provided by the package schedulefree "
        "(pip install schedulefree), which is not installed; paramwise registers its optimizers automatically "
        "once it is installed."
    )


def test_known_package_several_providers(nothing_installed) -> None:
    assert _message("Lion") == (
        "'Lion' is not in the optimizer registry. It is provided by the packages lion-pytorch "
        "(pip install lion-pytorch), timm (pip install timm), pytorch-optimizer (pip install pytorch-optimizer) and "
        "bitsandbytes (pip install bitsandbytes), "
        "none of which is installed; paramwise registers their optimizers automatically once one is installed."
    )


def test_known_package_matches_case_insensitively(nothing_installed) -> None:
    msg = _message("lion")
    assert "lion-pytorch as 'Lion' (pip install lion-pytorch)" in msg
    msg = _message("Lamb")
    assert "timm (pip install timm)" in msg and "bitsandbytes as 'LAMB' (pip install bitsandbytes)" in msg


def test_exact_known_name_drops_near_misses(nothing_installed) -> None:
    msg = _message("FusedAdam")
    assert "Did you mean" not in msg  # not 'SparseAdam'
    assert "github.com/NVIDIA/apex" in msg and "pip install apex" not in msg  # PyPI's apex is another project
    # a different spelling may be a typo of a registered name: both are said
    msg = _message("adan")
    assert "timm as 'Adan' (pip install timm)" in msg and "Did you mean 'Adam'" in msg


def test_unscanned_package_says_to_register_or_pass_the_class(nothing_installed, monkeypatch) -> None:
    from paramwise import optimizers

    monkeypatch.setattr(optimizers, "THIRD_PARTY_PACKAGES", {  # as if paramwise did not scan prodigyopt (a
        k: v for k, v in optimizers.THIRD_PARTY_PACKAGES.items() if k != "prodigyopt"})  # copy: the order matters
    monkeypatch.setattr(optimizers, "KNOWN_OPTIMIZER_PACKAGES", tuple(
        p for p in optimizers.KNOWN_OPTIMIZER_PACKAGES if p.name != "pytorch-optimizer"))
    msg = _message("Prodigy")
    assert "The package prodigyopt provides it (pip install prodigyopt); paramwise does not scan prodigyopt" in msg
    assert "pass the class itself as 'type' (from prodigyopt import Prodigy)" in msg
    assert "OPTIMIZERS.register_module(module=Prodigy)" in msg
    msg = _message("LARS")  # timm and bitsandbytes (scanned), mmpretrain (not scanned)
    assert "packages timm as 'Lars' (pip install timm) and bitsandbytes (pip install bitsandbytes)" in msg
    assert "from mmpretrain.engine.optimizers import LARS" in msg and "mmengine's registry" in msg

    monkeypatch.setattr(optimizers, "_installed", lambda module: module == "prodigyopt")
    msg = _message("Prodigy")
    assert "prodigyopt is installed and provides it, but paramwise does not scan it: pass the class itself" in msg
    assert "pip install" not in msg


def test_scanned_package_installed_without_the_name(monkeypatch) -> None:
    from paramwise import optimizers

    monkeypatch.setattr(optimizers, "_installed", lambda module: module == "schedulefree")
    msg = _message("AdamWScheduleFree")
    assert "schedulefree is installed but has no 'AdamWScheduleFree'; a newer version may." in msg
    assert "not installed" not in msg


def test_failed_package_is_not_called_missing(nothing_installed, monkeypatch) -> None:
    from paramwise import optimizers

    monkeypatch.setitem(optimizers._THIRD_PARTY_FAILURES, "timm.optim", "ImportError: no torchvision")
    msg = _message("Adan")
    assert "pip install timm" not in msg  # it is installed: the failure says why it is missing
    assert msg.endswith("(installed but not loaded: timm.optim: ImportError: no torchvision)")


def test_known_package_table_is_consistent() -> None:
    from paramwise.optimizers import KNOWN_OPTIMIZER_PACKAGES, THIRD_PARTY_PACKAGES

    modules = [p.module for p in KNOWN_OPTIMIZER_PACKAGES]
    assert set(THIRD_PARTY_PACKAGES) <= set(modules)  # every scanned package has its advice
    assert len(set(modules)) == len(modules)
    for package in KNOWN_OPTIMIZER_PACKAGES:
        assert package.optimizers and len(set(package.optimizers)) == len(package.optimizers)
        assert package.scanned == (package.module in THIRD_PARTY_PACKAGES)
    assert [p.name for p in KNOWN_OPTIMIZER_PACKAGES if p.module == "apex.optimizers"] == ["apex"]
    assert "pip" not in next(p.how_to_install for p in KNOWN_OPTIMIZER_PACKAGES if p.name == "apex")


def test_registered_name_never_reaches_the_table(nothing_installed) -> None:
    from paramwise.optimizers import _OptimizerRegistry

    reg = _OptimizerRegistry("optimizer")

    class Lion(torch.optim.Optimizer):
        pass

    reg.register_module(module=Lion)
    assert reg.get("Lion") is Lion
    with pytest.raises(NotRegisteredError, match="Did you mean 'Lion'"):
        reg.get("lion")  # registered under another case: the suggestion, before the advice


def test_package_advice_reaches_build_optimizer(nothing_installed) -> None:
    from paramwise import ParamwiseError, build_optimizer

    if "Lion" in OPTIMIZERS:
        pytest.skip("a package providing Lion is installed here")
    with pytest.raises(ParamwiseError) as info:
        build_optimizer(torch.nn.Linear(2, 2), {"type": "Lion", "lr": 1e-4})
    assert "pip install lion-pytorch" in str(info.value)


def test_get_default_on_the_optimizer_registry() -> None:
    assert OPTIMIZERS.get("Lion-not-a-thing", None) is None
    assert OPTIMIZERS.get("AdamW", None) is torch.optim.AdamW


def test_zero_resolves_whatever_was_imported_first() -> None:
    """ZeroRedundancyOptimizer registers from paramwise.build (it needs the plan's checks): a lookup through
    OPTIMIZERS alone imports it, and nothing of the third-party libraries."""
    import subprocess
    import sys

    code = ("import sys\nfrom paramwise.optimizers import OPTIMIZERS\n"
            "assert 'paramwise.build' not in sys.modules\n"
            "assert OPTIMIZERS.get('ZeroRedundancyOptimizer').__module__ == 'paramwise.build.zero'\n"
            "assert not {'bitsandbytes', 'torchao', 'lion_pytorch'} & set(sys.modules)\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
