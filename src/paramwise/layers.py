"""What kind of layer owns a parameter: norm, depthwise conv, deformable conv.

These decide which ``paramwise_cfg`` multiplier applies, with mmengine's meanings.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

from torch import nn

from paramwise.registry import Registry

__all__ = ["NORM_LAYERS", "NormMatcher", "is_dcn_class", "is_dcn_module", "is_depthwise_conv"]

#: Norm layer classes whose parameters ``norm_decay_mult`` applies to; register a model's own
#: norm class here (or name it in ``paramwise_cfg['norm_types']``) to treat it as a norm.
NORM_LAYERS = Registry("norm layer")
for _cls in (
    nn.modules.batchnorm._BatchNorm,  # BatchNorm1d/2d/3d, SyncBatchNorm, LazyBatchNorm
    nn.modules.instancenorm._InstanceNorm,
    nn.GroupNorm,
    nn.LayerNorm,
    getattr(nn, "RMSNorm", None),  # torch >= 2.4
):
    if _cls is not None:
        NORM_LAYERS.register_module(module=_cls)


class NormMatcher:
    """Decides whether a module is a norm layer: a registered class, or one named in ``norm_types``.

    Names match any class in the module's MRO, so ``'LlamaRMSNorm'`` works without an import.
    Results are cached per module class, so the check costs one dict lookup per module.
    """

    def __init__(self, extra: Iterable[type | str] = ()) -> None:
        self.extra = tuple(extra)
        self.classes = tuple(NORM_LAYERS.module_dict.values()) + tuple(c for c in self.extra if isinstance(c, type))
        self.names = frozenset(c for c in self.extra if isinstance(c, str))
        self._cache: dict[type, bool] = {}

    def __call__(self, module: nn.Module) -> bool:
        cls = type(module)
        hit = self._cache.get(cls)
        if hit is None:
            hit = issubclass(cls, self.classes) or bool(self.names and self.names & _mro_names(cls))
            self._cache[cls] = hit
        return hit

    def unmatched(self, module_classes: Iterable[type]) -> list[str]:
        """The extra norm types (as names) that no class among ``module_classes`` is or derives from."""
        module_classes = list(module_classes)
        missing = []
        for norm in self.extra:
            if isinstance(norm, type):
                if not any(issubclass(cls, norm) for cls in module_classes):
                    missing.append(norm.__name__)
            elif not any(norm in _mro_names(cls) for cls in module_classes):
                missing.append(norm)
        return missing


def _mro_names(cls: type) -> set[str]:
    return {c.__name__ for c in cls.__mro__}


def is_depthwise_conv(module: nn.Module) -> bool:
    """A ``Conv2d`` whose groups equal its input channels (mmengine's definition)."""
    return isinstance(module, nn.Conv2d) and module.in_channels == module.groups


_DCN_CLASS_NAMES = frozenset({"DeformConv2d", "ModulatedDeformConv2d"})


def is_dcn_module(module: nn.Module) -> bool:
    """A deformable conv (mmcv's ``DeformConv2d``/``ModulatedDeformConv2d`` or subclasses).

    Matched by class name so that mmcv need not be installed or imported.
    """
    return is_dcn_class(type(module))  # type: ignore[arg-type]


@functools.cache
def is_dcn_class(cls: type) -> bool:
    """Whether modules of class ``cls`` are deformable convs (:func:`is_dcn_module`), cached per class."""
    return any(c.__name__ in _DCN_CLASS_NAMES for c in cls.__mro__)
