"""A small model with Swin's parameter names (mmpretrain/mmdet ``SwinTransformer``), for tables and the audit."""

from __future__ import annotations

import torch
from torch import nn


class WindowMSA(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.relative_position_bias_table = nn.Parameter(torch.zeros(9, 2))
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)


class ShiftWindowMSA(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.w_msa = WindowMSA(dim)


class SwinBlock(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = ShiftWindowMSA(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(nn.Linear(dim, dim * 4), nn.GELU(), nn.Linear(dim * 4, dim))


class Stage(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.blocks = nn.ModuleList([SwinBlock(dim), SwinBlock(dim)])


class PatchEmbed(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.projection = nn.Conv2d(3, dim, 4, 4)
        self.norm = nn.LayerNorm(dim)


class SwinBackbone(nn.Module):
    def __init__(self, dim: int = 8) -> None:
        super().__init__()
        self.absolute_pos_embed = nn.Parameter(torch.zeros(1, 16, dim))
        self.patch_embed = PatchEmbed(dim)
        self.stages = nn.ModuleList([Stage(dim), Stage(dim)])
        self.norm3 = nn.LayerNorm(dim)


class SwinLike(nn.Module):
    """``backbone.absolute_pos_embed``, ``backbone.stages.0.blocks.0.attn.w_msa.relative_position_bias_table``, ..."""

    def __init__(self, dim: int = 8, classes: int = 10) -> None:
        super().__init__()
        self.backbone = SwinBackbone(dim)
        self.head = nn.Linear(dim, classes)


#: mmpretrain's Swin recipe: the backbone at a tenth of the lr, no decay for the position tables and norms.
SWIN_PARAMWISE_CFG = dict(
    norm_decay_mult=0.0,
    bias_decay_mult=0.0,
    custom_keys={
        "backbone": dict(lr_mult=0.1),
        "absolute_pos_embed": dict(decay_mult=0.0),
        "relative_position_bias_table": dict(decay_mult=0.0),
    },
)
