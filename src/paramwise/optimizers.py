"""``OPTIMIZERS``: every ``torch.optim`` optimizer, found by scanning, plus installed third-party ones.

The base class ``torch.optim.Optimizer`` is registered too, as in mmengine; building it is an error.

torch's optimizers are registered at import by scanning ``torch.optim`` (no hand-kept list, so a
new torch release brings its new optimizers). Third-party packages are scanned on the first lookup
only when they are installed, under a prefix (``timm.Lamb``, ``bnb.AdamW8bit``) and, when the name
is free, also bare (``Lamb``). A name that is not registered but belongs to a well-known package
(``KNOWN_OPTIMIZER_PACKAGES``) gets an error that names the package to install.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import types
import typing
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import torch

from paramwise.muon import ADJUST_LR_FNS, BatchedMuon
from paramwise.registry import Registry
from paramwise.suggestions import format_suggestions

__all__ = [
    "ARGUMENT_CHOICES",
    "KNOWN_OPTIMIZER_PACKAGES",
    "OPTIMIZERS",
    "THIRD_PARTY_PACKAGES",
    "KnownOptimizerPackage",
    "annotation_names",
    "argument_choices",
    "optimizer_arguments",
    "optimizer_default",
    "optimizer_parameter",
    "register_optimizers_from",
]

# package to scan -> prefix of its names in the registry
THIRD_PARTY_PACKAGES: dict[str, str] = {
    "timm.optim": "timm",
    "bitsandbytes.optim": "bnb",
    "torch_optimizer": "torch_optimizer",
    "apex.optimizers": "apex",
    "lion_pytorch": "lion_pytorch",
    "schedulefree": "schedulefree",
}

# why a third-party package that is installed could not be scanned (shown in lookup errors)
_THIRD_PARTY_FAILURES: dict[str, str] = {}


@dataclass(frozen=True)
class KnownOptimizerPackage:
    """A third-party package with well-known optimizers, so a lookup miss can say what to install.

    Args:
        name: the distribution's name, as ``pip install`` takes it.
        module: where the classes live; paramwise scans it when it is in ``THIRD_PARTY_PACKAGES``.
        optimizers: class names as the package spells them (a lookup matches them case-insensitively).
        install: how to install it, when that is not ``pip install <name>``.
        note: said after the advice for this package.
    """

    name: str
    module: str
    optimizers: tuple[str, ...]
    install: str = ""
    note: str = ""

    @property
    def scanned(self) -> bool:
        """Whether paramwise registers this package's optimizers by itself once it is installed."""
        return self.module in THIRD_PARTY_PACKAGES

    @property
    def how_to_install(self) -> str:
        """The install command or instruction shown in parentheses after the package's name."""
        return self.install or f"pip install {self.name}"


# Well-known optimizers outside torch and where they come from, dedicated packages first (the order of
# the advice). Only names torch lacks matter: a lookup reads this table after the registry missed.
KNOWN_OPTIMIZER_PACKAGES: tuple[KnownOptimizerPackage, ...] = (
    KnownOptimizerPackage("lion-pytorch", "lion_pytorch", ("Lion",)),
    KnownOptimizerPackage(
        "schedulefree",
        "schedulefree",
        ("AdamWScheduleFree", "SGDScheduleFree", "RAdamScheduleFree", "AdamWScheduleFreeClosure",
         "SGDScheduleFreeClosure", "AdamWScheduleFreeReference"),
    ),
    KnownOptimizerPackage("prodigyopt", "prodigyopt", ("Prodigy",)),
    KnownOptimizerPackage(
        "timm",
        "timm.optim",
        ("AdaBelief", "AdafactorBigVision", "Adahessian", "AdamP", "Adan", "Adopt", "Lamb", "Lars", "Lion",
         "Lookahead", "MADGRAD", "Nadam", "NAdamW", "NvNovoGrad", "RMSpropTF", "SGDP", "SGDW"),
    ),
    KnownOptimizerPackage(
        "torch-optimizer",
        "torch_optimizer",
        ("A2GradExp", "A2GradInc", "A2GradUni", "AccSGD", "AdaBelief", "AdaBound", "AdaMod", "Adahessian",
         "AdamP", "AggMo", "Apollo", "DiffGrad", "Lamb", "Lookahead", "MADGRAD", "NovoGrad", "PID", "QHAdam",
         "QHM", "Ranger", "RangerQH", "RangerVA", "SGDP", "SGDW", "Shampoo", "SWATS", "Yogi"),
    ),
    KnownOptimizerPackage(
        "bitsandbytes",
        "bitsandbytes.optim",
        ("Adam8bit", "Adam32bit", "AdamW8bit", "AdamW32bit", "PagedAdam", "PagedAdam8bit", "PagedAdam32bit",
         "PagedAdamW", "PagedAdamW8bit", "PagedAdamW32bit", "Adagrad8bit", "Adagrad32bit", "LAMB", "LAMB8bit",
         "LAMB32bit", "LARS", "LARS8bit", "LARS32bit", "PytorchLARS", "Lion", "Lion8bit", "Lion32bit",
         "PagedLion", "PagedLion8bit", "PagedLion32bit", "RMSprop8bit", "RMSprop32bit", "SGD8bit", "SGD32bit",
         "AdEMAMix", "AdEMAMix8bit", "AdEMAMix32bit", "PagedAdEMAMix", "PagedAdEMAMix8bit",
         "PagedAdEMAMix32bit"),
    ),
    KnownOptimizerPackage(
        "apex",
        "apex.optimizers",
        ("FusedAdam", "FusedLAMB", "FusedSGD", "FusedNovoGrad", "FusedAdagrad", "FusedMixedPrecisionLamb"),
        # the PyPI project called apex is unrelated: NVIDIA's is built from its repository
        install="built from source, see https://github.com/NVIDIA/apex; the PyPI package 'apex' is another project",
    ),
    KnownOptimizerPackage(
        "mmpretrain",
        "mmpretrain.engine.optimizers",
        ("Lamb", "LARS", "Adan"),
        note="Configs written for mmpretrain name its classes; mmpretrain registers them in mmengine's "
        "registry, not in paramwise's.",
    ),
)


def _installed(module: str) -> bool:
    """Whether the top-level package of ``module`` can be imported, without importing it."""
    return importlib.util.find_spec(module.split(".")[0]) is not None


def _and_join(items: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + f" and {items[-1]}"


def _package_advice(registry: Registry, name: str) -> str:
    """What to install (or register) for an unregistered ``name`` that a known package provides; "" if none."""
    automatic: list[str] = []  # scanned packages that are not installed
    sentences: list[str] = []
    for package in KNOWN_OPTIMIZER_PACKAGES:
        spelled = next((n for n in package.optimizers if n.lower() == name.lower()), None)
        if spelled is None or package.module in _THIRD_PARTY_FAILURES:  # failures are reported after this
            continue
        as_spelled = "" if spelled == name else f" as {spelled!r}"
        install = package.how_to_install
        installed = _installed(package.module)
        if package.scanned and not installed:
            automatic.append(f"{package.name}{as_spelled} ({install})")
            if package.note:
                sentences.append(package.note)
            continue
        if package.scanned:  # installed and scanned, yet the name is missing: an older version
            prefix = THIRD_PARTY_PACKAGES[package.module]
            if registry.holds(spelled) or registry.holds(f"{prefix}.{spelled}"):
                continue  # registered under another case: the did-you-mean already says so
            text = f"{package.name} is installed but has no {spelled!r}; a newer version may."
        else:
            how = (
                f"pass the class itself as 'type' (from {package.module} import {spelled}) or register it "
                f"with OPTIMIZERS.register_module(module={spelled})"
            )
            if installed:
                text = (
                    f"{package.name} is installed and provides it{as_spelled}, but paramwise does not "
                    f"scan it: {how}."
                )
            else:
                text = (
                    f"The package {package.name} provides it{as_spelled} ({install}); paramwise does not scan "
                    f"{package.name}, so once it is installed, {how}."
                )
        sentences.append(f"{text} {package.note}".rstrip())
    if automatic:
        if len(automatic) == 1:
            head = (
                f"It is provided by the package {automatic[0]}, which is not installed; paramwise registers "
                "its optimizers automatically once it is installed."
            )
        else:
            head = (
                f"It is provided by the packages {_and_join(automatic)}, none of which is installed; "
                "paramwise registers their optimizers automatically once one is installed."
            )
        sentences.insert(0, head)
    return "".join(f" {s}" for s in sentences)


class _OptimizerRegistry(Registry):
    """The optimizer registry: a miss also names the package to install and installed ones that failed to load."""

    def _miss_help(self, name: str, close: list[str]) -> str:
        advice = _package_advice(self, name)
        # A name a known package spells exactly is that optimizer: near misses ('FusedAdam' ->
        # 'SparseAdam') would only distract. A different spelling may still be a typo: show both.
        exact = any(name in package.optimizers for package in KNOWN_OPTIMIZER_PACKAGES)
        text = advice if advice and exact else advice + format_suggestions(close)
        if not text:
            text = (
                f" It holds {len(self.names())} names; list them with `paramwise list optimizers` "
                "or OPTIMIZERS.names()."
            )
        if _THIRD_PARTY_FAILURES:
            failed = "; ".join(f"{pkg}: {why}" for pkg, why in sorted(_THIRD_PARTY_FAILURES.items()))
            text += f" (installed but not loaded: {failed})"
        return text


OPTIMIZERS: Registry = _OptimizerRegistry("optimizer", locations=["paramwise._third_party"])


def _optimizer_classes(module: ModuleType) -> list[type[torch.optim.Optimizer]]:
    found = []
    for name in dir(module):
        obj = getattr(module, name, None)
        if (
            inspect.isclass(obj)
            and issubclass(obj, torch.optim.Optimizer)
            and obj is not torch.optim.Optimizer
            and not name.startswith("_")
        ):
            found.append(obj)
    return found


def register_optimizers_from(registry: Registry, module: ModuleType, prefix: str | None = None) -> list[str]:
    """Register every ``Optimizer`` subclass that ``module`` exposes; return the names used.

    With a ``prefix`` each class is registered as ``prefix.Name``, and also as ``Name`` when
    that name is still free (torch's own optimizers keep their names).
    """
    names = []
    for cls in _optimizer_classes(module):
        keys = [cls.__name__] if prefix is None else [f"{prefix}.{cls.__name__}"]
        if prefix is not None and not registry.holds(cls.__name__):
            keys.append(cls.__name__)
        for key in keys:
            if not registry.holds(key):
                registry.register_module(name=key, module=cls)
                names.append(key)
    return names


def scan_third_party() -> None:
    for package, prefix in THIRD_PARTY_PACKAGES.items():
        top = package.split(".")[0]
        if importlib.util.find_spec(top) is None:
            continue
        try:
            module = importlib.import_module(package)
        except Exception as e:  # an installed but broken package must not break paramwise
            _THIRD_PARTY_FAILURES[package] = f"{type(e).__name__}: {e}"
            continue
        register_optimizers_from(OPTIMIZERS, module, prefix)


def optimizer_arguments(cls: Any) -> tuple[str | None, frozenset[str], bool]:
    """Return ``cls``'s parameters argument, its other named keywords, and whether it takes ``**kwargs``.

    A class without a readable signature is taken to accept anything.
    """
    try:
        params = list(inspect.signature(cls).parameters.values())
    except (TypeError, ValueError):
        return None, frozenset(), True
    if not params:
        return None, frozenset(), False
    named = frozenset(
        p.name for p in params[1:] if p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    )
    return params[0].name, named, any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


#: Arguments that take one of a few names (their default is None, so the default's type says nothing),
#: by class and argument: torch checks some only at the first step (LBFGS's line search), far from the config.
ARGUMENT_CHOICES: dict[tuple[type, str], tuple[str, ...]] = {
    (torch.optim.LBFGS, "line_search_fn"): ("strong_wolfe",),
    **({(torch.optim.Muon, "adjust_lr_fn"): ADJUST_LR_FNS} if hasattr(torch.optim, "Muon") else {}),
    (BatchedMuon, "adjust_lr_fn"): ADJUST_LR_FNS,
}


def argument_choices(cls: Any, key: str) -> tuple[str, ...] | None:
    """The names argument ``key`` of ``cls`` (or of a class it derives from) takes, when they are known."""
    for klass in getattr(cls, "__mro__", ()):
        found = ARGUMENT_CHOICES.get((klass, key))
        if found is not None:
            return found
    return None


def optimizer_parameter(cls: Any, key: str) -> inspect.Parameter | None:
    """The parameter ``key`` of ``cls``'s signature, or None (no such name, or no readable signature)."""
    try:
        return inspect.signature(cls).parameters.get(key)
    except (TypeError, ValueError):
        return None


_ANNOTATION_PARTS = ("Optional[", "Union[")


def annotation_names(annotation: Any) -> frozenset[str]:
    """The plain type names an annotation allows: ``'bool | None'`` and ``Optional[bool]`` -> ``{'bool', 'None'}``.

    Written as a type or as a string (``from __future__ import annotations``); empty when there is none.
    """
    if annotation is inspect.Parameter.empty:
        return frozenset()
    if isinstance(annotation, str):
        text = annotation
        for part in _ANNOTATION_PARTS:
            text = text.replace(part, "")
        text = text.replace("]", "").replace(",", "|")
        names = {name.strip().rpartition(".")[2] for name in text.split("|")} | (
            {"None"} if "Optional[" in annotation else set())
        return frozenset("None" if name == "NoneType" else name for name in names if name)
    if annotation is None or annotation is type(None):
        return frozenset({"None"})
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return frozenset().union(*(annotation_names(arg) for arg in typing.get_args(annotation)))
    name = getattr(annotation, "__name__", None)
    return frozenset({name}) if isinstance(name, str) else frozenset()


def optimizer_default(cls: Any, key: str, missing: Any = None) -> Any:
    """Return the default of ``cls``'s argument ``key``, or ``missing`` when it has none."""
    param = optimizer_parameter(cls, key)
    if param is None or param.default is inspect.Parameter.empty:
        return missing
    # torch's old sentinel for a required lr
    return missing if type(param.default).__name__ == "_RequiredParameter" else param.default


register_optimizers_from(OPTIMIZERS, torch.optim)
# mmengine and mmcv register the base class too (their tests assert it): a lookup finds it, a build is a
# ConfigError at 'type' (paramwise.plan.spec), since the base class has no update rule
OPTIMIZERS.register_module(name="Optimizer", module=torch.optim.Optimizer)
# paramwise's own Muon (Newton-Schulz batched over same-shape matrices, `flatten` for conv kernels)
OPTIMIZERS.register_module(name="BatchedMuon", module=BatchedMuon)
