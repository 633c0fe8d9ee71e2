"""Small CPU models shared by the tests: every layer kind the paramwise rules care about.

``ZOO`` maps a name to a factory (a fresh, seeded model per call). ``SHARED`` names the models
that hold one parameter under two names (they need ``bypass_duplicate=True``), ``DCN`` those
with a fake deformable conv and ``FROZEN`` those built with some ``requires_grad=False``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

__all__ = [
    "DCN",
    "FROZEN",
    "SHARED",
    "ZOO",
    "DeformConv2d",
    "LlamaRMSNorm",
    "ModulatedDeformConv2d",
    "build",
    "module_name_substrings",
]


class ConvNet(nn.Module):
    """Plain, depthwise, grouped and 1-channel convs with batch, group and instance norms."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)  # depthwise, with bias
        self.dw_nobias = nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False)
        self.grouped = nn.Conv2d(8, 8, 1, groups=2)  # grouped, not depthwise
        self.gn = nn.GroupNorm(2, 8)
        self.inorm = nn.InstanceNorm2d(8, affine=True)
        self.single = nn.Conv2d(1, 4, 1)  # in_channels == groups == 1: depthwise by mmengine's rule
        self.dw1d = nn.Conv1d(4, 4, 3, groups=4)  # a depthwise Conv1d is not a "dwconv" (Conv2d only)
        self.layers = nn.Sequential(
            nn.Conv2d(8, 16, 3, stride=2, bias=False),
            nn.BatchNorm2d(16),
            nn.ReLU(),
            nn.Sequential(nn.Conv2d(16, 16, 3, groups=16), nn.BatchNorm2d(16)),
        )
        self.head = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.inorm(self.gn(self.grouped(self.dw_nobias(self.dw(self.bn(self.stem(x)))))))
        x = self.layers(x)
        return self.head(x.mean((2, 3)))


class LlamaRMSNorm(nn.Module):
    """A hand-written RMSNorm (not a subclass of any torch norm): a norm only by name."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * self.weight


class MyLayerNorm(nn.LayerNorm):
    """A subclass of a torch norm: a norm by class."""


class Norms(nn.Module):
    """Every torch norm kind with affine parameters, between linear layers."""

    def __init__(self) -> None:
        super().__init__()
        self.bn1d = nn.BatchNorm1d(4)
        self.bn2d = nn.BatchNorm2d(4)
        self.bn3d = nn.BatchNorm3d(4)
        self.sync_bn = nn.SyncBatchNorm(4)
        self.in1d = nn.InstanceNorm1d(4, affine=True)
        self.in2d = nn.InstanceNorm2d(4, affine=True)
        self.in3d = nn.InstanceNorm3d(4, affine=True)
        self.in_noaffine = nn.InstanceNorm2d(4)  # no parameters
        self.gn = nn.GroupNorm(2, 4)
        self.ln = nn.LayerNorm(4)
        self.ln_nobias = nn.LayerNorm(4, bias=False)
        self.ln_2d = nn.LayerNorm((2, 2))  # 2-D weight: a norm, not flat
        self.my_ln = MyLayerNorm(4)
        self.rms = nn.RMSNorm(4)
        self.llama_rms = LlamaRMSNorm(4)
        self.fc = nn.Linear(4, 4)
        self.fc_nobias = nn.Linear(4, 4, bias=False)


class Transformer(nn.Module):
    """torch's TransformerEncoder (2 layers): MultiheadAttention keeps in_proj_* on itself."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(8, 16)
        layer = nn.TransformerEncoderLayer(16, 2, dim_feedforward=32, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, norm=nn.LayerNorm(16), enable_nested_tensor=False)
        self.head = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(self.embed(x)))


class Attention(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)


class Block(nn.Module):
    def __init__(self, dim: int, rms: bool = False) -> None:
        super().__init__()
        self.norm1 = nn.RMSNorm(dim) if rms else nn.LayerNorm(dim)
        self.attn = Attention(dim)
        self.norm2 = nn.RMSNorm(dim) if rms else nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))
        self.gamma = nn.Parameter(torch.full((dim,), 0.1))  # layer scale: a flat non-bias parameter


class ViT(nn.Module):
    """A ViT-like model: root-level cls_token/pos_embed, patch-embedding conv, blocks, head."""

    def __init__(self, dim: int = 8, depth: int = 3) -> None:
        super().__init__()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.randn(1, 5, dim) * 0.02)
        self.patch_embed = nn.Conv2d(3, dim, 4, stride=4)
        self.blocks = nn.ModuleList(Block(dim, rms=i % 2 == 1) for i in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, 4)


class SharedModule(nn.Module):
    """One nn.Linear used at two places (different depths) and twice in one Sequential."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(4, 4)
        self.body = nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4), self.proj)
        self.twice = nn.Sequential(self.proj, nn.ReLU(), self.proj)  # named_children keeps the first
        self.out = nn.Linear(4, 2)


class TiedLM(nn.Module):
    """Embedding and output head share one weight (weight tying)."""

    def __init__(self, vocab: int = 11, dim: int = 6) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.norm = nn.LayerNorm(dim)
        self.mix = nn.Linear(dim, dim)
        self.lm_head = nn.Linear(dim, vocab)
        self.lm_head.weight = self.embed.weight


class RootParams(nn.Module):
    """Parameters directly on the top module: flat, matrix, a root 'bias' and a 0-d scalar."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(4))
        self.matrix = nn.Parameter(torch.randn(4, 4))
        self.bias = nn.Parameter(torch.zeros(4))
        self.temperature = nn.Parameter(torch.tensor(1.0))
        self.fc = nn.Linear(4, 4)
        self.norm = nn.LayerNorm(4)


class DeformConv2d(nn.Module):
    """A stand-in for mmcv's DeformConv2d: matched by class name, owns weight/bias and an offset conv."""

    def __init__(self, cin: int = 4, cout: int = 4, k: int = 3) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin, k, k) * 0.1)
        self.bias = nn.Parameter(torch.zeros(cout))
        self.conv_offset = nn.Conv2d(cin, 2 * k * k, k, padding=1)
        self.mask_fc = nn.Linear(cin, cin)  # a DCN child that is not the offset conv
        self.mask_conv = nn.Conv2d(cin, k * k, k, padding=1)  # a Conv2d child of a DCN, not named conv_offset
        self.conv_offset_seq = nn.Sequential(nn.Conv2d(cin, cin, 1))  # grandchild: parent is not a DCN
        self.conv_offset_norm = nn.BatchNorm2d(cin)  # a norm child of a DCN


class ModulatedDeformConv2d(DeformConv2d):
    """mmcv's other DCN class name."""


class DCNPack(DeformConv2d):
    """A subclass of a DCN class: still a DCN (mmengine uses isinstance)."""


class DCNNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 1)
        self.dcn = DeformConv2d()
        self.mdcn = ModulatedDeformConv2d()
        self.neck = nn.Sequential(DCNPack())
        self.conv_offset = nn.Conv2d(4, 4, 1)  # named conv_offset but not inside a DCN
        self.head = nn.Linear(4, 2)


class FrozenBackbone(nn.Module):
    """A frozen backbone (conv + bn), a partly frozen neck (frozen bias only), a trainable head."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Conv2d(4, 4, 3, groups=4))
        self.backbone.requires_grad_(False)
        self.neck = nn.Linear(4, 4)
        self.neck.bias.requires_grad_(False)
        self.norm = nn.LayerNorm(4)
        self.head = nn.Linear(4, 2)


class AliasedParam(nn.Module):
    """One Parameter registered under two attribute names of the same module."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.fc.weight_alias = self.fc.weight  # registers the same Parameter again on fc
        self.norm = nn.LayerNorm(4)
        self.norm.scale = self.norm.weight


class Mixed(nn.Module):
    """Several zoo models nested, to get longer names and every rule in one model."""

    def __init__(self) -> None:
        super().__init__()
        self.pos_embed = nn.Parameter(torch.zeros(1, 3, 4))
        self.conv = ConvNet()
        self.vit = ViT(dim=4, depth=2)
        self.norms = nn.ModuleDict({"rms": nn.RMSNorm(4), "ln": nn.LayerNorm(4), "bn": nn.BatchNorm1d(4)})
        self.mlp = nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 4, bias=False))


def _seeded(factory: Callable[[], nn.Module]) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        torch.manual_seed(0)
        return factory()

    build.__name__ = getattr(factory, "__name__", "build")
    return build


ZOO: dict[str, Callable[[], nn.Module]] = {
    "convnet": _seeded(ConvNet),
    "norms": _seeded(Norms),
    "transformer": _seeded(Transformer),
    "vit": _seeded(ViT),
    "shared_module": _seeded(SharedModule),
    "tied": _seeded(TiedLM),
    "root_params": _seeded(RootParams),
    "dcn": _seeded(DCNNet),
    "frozen": _seeded(FrozenBackbone),
    "mixed": _seeded(Mixed),
    "aliased_param": _seeded(AliasedParam),
    # the root module itself is the layer the rules look at (its parameters are root parameters)
    "bare_norm": _seeded(lambda: nn.LayerNorm(4)),
    "bare_dwconv": _seeded(lambda: nn.Conv2d(4, 4, 3, groups=4)),
    "bare_dcn": _seeded(DeformConv2d),
    "sequential": _seeded(lambda: nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))),
}

SHARED = frozenset({"shared_module", "tied", "aliased_param"})
DCN = frozenset({"dcn", "bare_dcn"})
FROZEN = frozenset({"frozen"})


def build(name: str) -> nn.Module:
    return ZOO[name]()


def module_name_substrings(model: nn.Module) -> list[str]:
    """Substrings of the model's parameter names that a user would write as custom keys.

    Full module and parameter names, their last components, '.'-prefixed root names, and
    overlapping variants ('blocks' and 'blocks.0', 'bias' and '.bias', ...). Sorted, unique.
    """
    out: set[str] = set()
    for name, _ in model.named_parameters(remove_duplicate=False):
        parts = name.split(".")
        for i in range(len(parts)):
            out.add(".".join(parts[: i + 1]))
            out.add(parts[i])
        if len(parts) == 1:
            out.add(f".{name}")
        else:
            out.add(".".join(parts[-2:]))
            out.add(f".{parts[-1]}")
    for name, _ in model.named_modules(remove_duplicate=False):
        if name:
            out.add(name)
            out.add(name.split(".")[-1])
    return sorted(out)
