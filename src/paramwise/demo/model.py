"""The demo's model: ``tiny_convnet`` with GroupNorm where it has BatchNorm.

The demo's config accumulates gradients over two iterations. BatchNorm's statistics would then see
the small batches (the wrapper warns about it on every run); GroupNorm normalizes each example on
its own, so accumulating is exactly one large batch. The parameter names, and so the plan, the
norm rules and the audit, stay those of ``tiny_convnet``.
"""

from __future__ import annotations

from torch import nn

from paramwise.models import TinyConvNet

__all__ = ["demo_convnet"]

_GROUPS = 1  # channels per group: 4 for the backbone's first layer (16 channels), 8 after it


def demo_convnet(num_classes: int = 10, width: int = 16) -> TinyConvNet:
    """``tiny_convnet`` with each BatchNorm replaced by a GroupNorm of the same channels, affine as before."""
    model = TinyConvNet(num_classes, width)
    for module in list(model.modules()):
        for name, child in module.named_children():
            if isinstance(child, nn.BatchNorm2d):
                groups = _GROUPS if child.num_features % _GROUPS == 0 else 1
                setattr(module, name, nn.GroupNorm(groups, child.num_features))
    return model
