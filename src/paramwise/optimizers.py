"""``OPTIMIZERS``: every ``torch.optim`` optimizer, found by scanning, plus installed third-party ones.

The base class ``torch.optim.Optimizer`` is registered too, as in mmengine; building it is an error.

torch's optimizers are registered at import by scanning ``torch.optim`` (no hand-kept list, so a
new torch release brings its new optimizers). Installed optimizer libraries are registered lazily: a
lookup imports only the libraries the name may come from, and registers them under a prefix
(``timm.Lamb``, ``bnb.AdamW8bit``) and, when torch lacks the name, also bare (``Lamb``), owned by the
first library in ``THIRD_PARTY_PACKAGES`` that defines it; reading all names imports every installed one.
A name that is not registered but belongs to a well-known package
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

from paramwise.errors import Problem
from paramwise.muon import ADJUST_LR_FNS, BatchedMuon
from paramwise.registry import Registry
from paramwise.suggestions import format_suggestions

__all__ = [
    "ARGUMENT_CHOICES",
    "CUDA_ONLY_OPTIMIZERS",
    "KNOWN_OPTIMIZER_PACKAGES",
    "OPTIMIZERS",
    "THIRD_PARTY_ALIASES",
    "THIRD_PARTY_PACKAGES",
    "KnownOptimizerPackage",
    "annotation_names",
    "argument_choices",
    "cuda_problem",
    "cuda_requirement",
    "optimizer_arguments",
    "optimizer_default",
    "optimizer_parameter",
    "register_optimizers_from",
]

# package to scan -> prefix of its names in the registry. The order decides who owns a bare name that
# several packages define (``Lion``: lion-pytorch's, as in mmengine): the packages mmengine registers
# first (bitsandbytes' names are bare there), then the collections; torch's own names are never taken.
# A package is imported only when a name may be its own.
THIRD_PARTY_PACKAGES: dict[str, str] = {
    "lion_pytorch": "lion_pytorch",
    "dadaptation": "dadaptation",
    "prodigyopt": "prodigyopt",
    "schedulefree": "schedulefree",
    "bitsandbytes.optim": "bnb",
    "timm.optim": "timm",
    "torch_optimizer": "torch_optimizer",
    "pytorch_optimizer": "pytorch_optimizer",
    "heavyball": "heavyball",
    "torchao.optim": "torchao",
    "apex.optimizers": "apex",
    "transformers.optimization": "transformers",
}

#: Extra names under which mmengine registers a package's optimizers, by package: a function of the class
#: name. mmengine registers bitsandbytes' classes bare and, where torch (or lion-pytorch) has the name,
#: as ``bnb_Name``; paramwise registers ``bnb_Name`` for every one of them, so those configs work.
THIRD_PARTY_ALIASES: dict[str, str] = {"bitsandbytes.optim": "bnb_{}"}

#: Optimizers that need CUDA, by package and class name ("*": every class of the package). A build
#: without CUDA is a ConfigError at 'type' (looking them up, planning and listing work anywhere).
CUDA_ONLY_OPTIMIZERS: dict[str, tuple[str, ...]] = {
    "apex.optimizers": ("*",),
    "torchao.optim": ("CPUOffloadOptimizer",),
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
        "dadaptation", "dadaptation", ("DAdaptAdaGrad", "DAdaptAdam", "DAdaptAdan", "DAdaptLion", "DAdaptSGD")
    ),
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
        "pytorch-optimizer",
        "pytorch_optimizer",
        ("ADOPT", "AdaBelief", "AdaBound", "AdaFactor", "AdaHessian", "AdamP", "Adan", "AdEMAMix", "CAME",
         "DAdaptAdam", "Kron", "Lamb", "LARS", "Lion", "Lookahead", "MADGRAD", "MARS", "Prodigy", "Ranger",
         "Ranger21", "SAM", "ScheduleFreeAdamW", "SGDP", "SOAP", "SophiaH", "StableAdamW", "Tiger", "Yogi"),
    ),
    KnownOptimizerPackage(
        "heavyball",
        "heavyball",
        ("HeavySOAP", "LaProp", "PSGDKron", "SOAP", "SFAdamW", "MuonLaProp", "UnscaledAdamW"),
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
        "torchao",
        "torchao.optim",
        ("Adam4bit", "Adam8bit", "AdamFp8", "AdamW4bit", "AdamW8bit", "AdamWFp8", "CPUOffloadOptimizer"),
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
    KnownOptimizerPackage(
        "transformers",
        "transformers.optimization",
        ("Adafactor",),
        note="mmengine's 'Adafactor' is transformers' class: in paramwise it is 'transformers.Adafactor', "
        "and 'Adafactor' is torch's (mmengine's 'TorchAdafactor').",
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
    """The optimizer registry: a miss also names the package to install and installed ones that failed to load.

    With ``third_party=True`` (``OPTIMIZERS``), a name that is not held yet is looked for in the installed
    packages of ``THIRD_PARTY_PACKAGES``, importing only what it takes: its prefix's package
    (``bnb.AdamW8bit``), or the packages in order until one defines a bare name (``Lion``).
    """

    def __init__(self, name: str, *, third_party: bool = False, **kwargs: Any) -> None:
        super().__init__(name, **kwargs)
        self.third_party = third_party
        self._packages_done: set[str] = set()  # packages whose prefixed names are registered here

    def _find(self, name: str) -> Any | None:
        if not self.third_party:
            return super()._find(name)
        found = self._modules.get(name)  # without the full scan that super()._find starts
        if found is None and name in REGISTERED_ELSEWHERE:  # a paramwise optimizer built above this layer
            importlib.import_module(REGISTERED_ELSEWHERE[name])
            found = self._modules.get(name)
        if found is None:
            found = self._find_third_party(name)
        if found is None and self.parent is not None:
            found = self.parent._find(name)
        return found

    def _find_third_party(self, name: str) -> Any | None:
        """``name`` from the installed packages that may define it (registering what they hold), or None."""
        for package, prefix in THIRD_PARTY_PACKAGES.items():
            if name.startswith(f"{prefix}.") or _is_alias(THIRD_PARTY_ALIASES.get(package), name):
                self.register_package(package)
                return self._modules.get(name)
        if "." in name:
            return None
        for package, prefix in THIRD_PARTY_PACKAGES.items():  # a bare name: the first package defining it
            if self.register_package(package) and self.holds(f"{prefix}.{name}"):
                self.register_module(name=name, module=self._modules[f"{prefix}.{name}"])
                return self._modules[name]
        return None

    def register_package(self, package: str) -> bool:
        """Register ``package``'s optimizers under its prefix (and aliases); False when it is absent or broken."""
        classes = _package_classes(package)
        if classes is None:
            return False
        if package not in self._packages_done:
            self._packages_done.add(package)
            prefix, alias = THIRD_PARTY_PACKAGES[package], THIRD_PARTY_ALIASES.get(package)
            for attr, cls in classes:
                for key in (f"{prefix}.{attr}", *([alias.format(attr)] if alias else [])):
                    if not self.holds(key):
                        self.register_module(name=key, module=cls)
        return True

    def register_third_party(self) -> None:
        """Register every installed package's optimizers, prefixed, and bare where the name is free (in order)."""
        for package in THIRD_PARTY_PACKAGES:
            if self.register_package(package):
                for attr, cls in _package_classes(package) or ():
                    if not self.holds(attr):
                        self.register_module(name=attr, module=cls)

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


def _is_alias(alias: str | None, name: str) -> bool:
    """Whether ``name`` has the form of ``alias`` (``"bnb_{}"``: ``bnb_AdamW``)."""
    if alias is None:
        return False
    head, _, tail = alias.partition("{}")
    return len(name) > len(head) + len(tail) and name.startswith(head) and name.endswith(tail)

# package -> its own optimizer classes (name as the package exports it, class), once imported
_PACKAGE_CLASSES: dict[str, list[tuple[str, type[torch.optim.Optimizer]]]] = {}


def _package_classes(package: str) -> list[tuple[str, type[torch.optim.Optimizer]]] | None:
    """Import ``package`` (once) and return the optimizers it defines itself; None when absent or broken.

    Classes it re-exports from elsewhere (``pytorch_optimizer.AdamW`` is torch's) are left out.
    """
    if package in _PACKAGE_CLASSES:
        return _PACKAGE_CLASSES[package]
    if package in _THIRD_PARTY_FAILURES or not _installed(package):
        return None
    try:
        module = importlib.import_module(package)
    except Exception as e:  # an installed but broken package must not break paramwise
        _THIRD_PARTY_FAILURES[package] = f"{type(e).__name__}: {e}"
        return None
    top = package.split(".")[0]
    found = [(name, cls) for name, cls in _exported_optimizers(module) if cls.__module__.split(".")[0] == top]
    _PACKAGE_CLASSES[package] = found
    return found


#: Names that paramwise registers from a module above this layer (it needs the plan's checks), imported on
#: their first lookup, and with the whole registry's names, so they resolve whatever was imported first.
REGISTERED_ELSEWHERE = {"ZeroRedundancyOptimizer": "paramwise.build.zero"}

OPTIMIZERS: Registry = _OptimizerRegistry(
    "optimizer", third_party=True, locations=["paramwise._third_party", *dict.fromkeys(REGISTERED_ELSEWHERE.values())])


def _exported_optimizers(module: ModuleType) -> list[tuple[str, type[torch.optim.Optimizer]]]:
    """Every public ``Optimizer`` subclass ``module`` exposes, with the name it exposes it under."""
    found = []
    for name in dir(module):
        obj = getattr(module, name, None)
        if (
            inspect.isclass(obj)
            and issubclass(obj, torch.optim.Optimizer)
            and obj is not torch.optim.Optimizer
            and not name.startswith("_")
        ):
            found.append((name, obj))
    return found


def _optimizer_classes(module: ModuleType) -> list[type[torch.optim.Optimizer]]:
    return [cls for _, cls in _exported_optimizers(module)]


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
    """Register every installed third-party optimizer in ``OPTIMIZERS`` (what listing all names needs)."""
    assert isinstance(OPTIMIZERS, _OptimizerRegistry)
    OPTIMIZERS.register_third_party()


def cuda_requirement(cls: Any) -> str | None:
    """The package whose optimizer ``cls`` runs on CUDA only (``CUDA_ONLY_OPTIMIZERS``), or None."""
    top = (getattr(cls, "__module__", None) or "").split(".")[0]
    for package, names in CUDA_ONLY_OPTIMIZERS.items():
        if top == package.split(".")[0] and ("*" in names or getattr(cls, "__name__", None) in names):
            return package
    return None


def cuda_problem(cls: Any, type_name: str, path: tuple[str, ...]) -> Problem | None:
    """A ``Problem`` at ``path`` when ``cls`` needs CUDA and torch has none here; None when it can be built."""
    package = cuda_requirement(cls)
    if package is None or torch.cuda.is_available():
        return None
    return Problem(path, (
        f"{type_name} needs CUDA ({package} runs it on CUDA GPUs only), and torch.cuda.is_available() is False "
        f"here (torch {torch.__version__}): run on a machine with a CUDA GPU and a CUDA build of torch, or "
        "pick an optimizer that runs on CPU (e.g. type='AdamW')"))


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
# mmengine registers torch's Adafactor as 'TorchAdafactor' ('Adafactor' is transformers' there; here it is torch's)
if hasattr(torch.optim, "Adafactor"):
    OPTIMIZERS.register_module(name="TorchAdafactor", module=torch.optim.Adafactor)
