"""Small models for the routes (Muon for the hidden matrices, AdamW for the rest) and the embedding/head guards.

``GPT`` is a GPT-like language model (token embedding, blocks of attention and MLP linears, RMSNorm,
an ``lm_head``), tied or untied; ``TiedFirst`` ties with the head defined before the embedding;
``Unembed`` names its embeddings only through ``get_input_embeddings()`` / ``get_output_embeddings()``;
``ViTHead`` has a ``nn.Linear`` head named ``head`` and a two-layer ``classifier``; ``Conv`` is a conv net
with kernels Muon handles badly (depthwise, two output channels) and a wide, flat linear.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["GPT", "MUON_CONFIG", "Conv", "TiedFirst", "Unembed", "ViTHead", "issue_config"]


def issue_config(**paramwise: object) -> dict[str, object]:
    """The optimizer config of issue 18: AdamW for the rest, Muon for the hidden matrices."""
    return dict(type="AdamW", lr=3e-4, betas=(0.9, 0.95), weight_decay=0.1,
                paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0,
                                   routes=[dict(params="hidden_matrices", optimizer=dict(MUON_CONFIG))], **paramwise))


MUON_CONFIG = dict(type="Muon", lr=0.02, momentum=0.95, weight_decay=0.1, adjust_lr_fn="match_rms_adamw")


class Block(nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.norm1 = nn.RMSNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.norm2 = nn.RMSNorm(d)
        self.fc = nn.Linear(d, 4 * d)
        self.out = nn.Linear(4 * d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv(self.norm1(x)).chunk(3, dim=-1)
        att = torch.softmax(q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5, dim=-1)
        x = x + self.proj(att @ v)
        return x + self.out(torch.relu(self.fc(self.norm2(x))))


class GPT(nn.Module):
    """Token embedding, ``layers`` blocks, a final RMSNorm and an ``lm_head`` (tied to the embedding or not)."""

    def __init__(self, vocab: int = 64, d: int = 16, layers: int = 4, tied: bool = False) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.tok = nn.Embedding(vocab, d)
        self.blocks = nn.ModuleList([Block(d) for _ in range(layers)])
        self.norm = nn.RMSNorm(d)
        self.lm_head = nn.Linear(d, vocab, bias=False)
        if tied:
            self.lm_head.weight = self.tok.weight

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        x = self.tok(idx)
        for block in self.blocks:
            x = block(x)
        return self.lm_head(self.norm(x))


class TiedFirst(nn.Module):
    """The head is defined (and so named) before the embedding it is tied to."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(16, 16)
        self.decoder = nn.Linear(16, 64, bias=False)
        self.tok = nn.Embedding(64, 16)
        self.tok.weight = self.decoder.weight


class Table(nn.Module):
    """An embedding table that is no nn.Embedding (a model's own lookup)."""

    def __init__(self, vocab: int, d: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(vocab, d))


class Unembed(nn.Module):
    """Embeddings known only through Hugging Face's methods: a custom table and an ``unembed`` linear."""

    def __init__(self) -> None:
        super().__init__()
        self.wte = Table(64, 16)
        self.mix = nn.Linear(16, 16)
        self.unembed = nn.Linear(16, 64, bias=False)

    def get_input_embeddings(self) -> nn.Module:
        return self.wte

    def get_output_embeddings(self) -> nn.Module:
        return self.unembed


class ViTHead(nn.Module):
    """A ``head`` linear, and a ``classifier`` of two linears: only the last of them is the head."""

    def __init__(self) -> None:
        super().__init__()
        self.patch = nn.Linear(48, 32)
        self.norm = nn.LayerNorm(32)
        self.head = nn.Linear(32, 10)
        self.classifier = nn.Sequential(nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 10))


class Conv(nn.Module):
    """Conv kernels of every kind the routes decide on, then a wide, flat linear and a classifier."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3)  # 16x27 flattened
        self.bn = nn.BatchNorm2d(16)
        self.dw = nn.Conv2d(16, 16, 3, groups=16, bias=False)  # depthwise: a unit dimension
        self.narrow = nn.Conv2d(16, 2, 3, bias=False)  # two outputs: a very small side
        self.wide = nn.Linear(1024, 4, bias=False)  # 4x1024: aspect ratio 256
        self.classifier = nn.Linear(16, 10)
