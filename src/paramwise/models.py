"""Small built-in models to try configs on, and ``load_model``, which turns a model SPEC into a model.

The models are tiny (a few thousand parameters, milliseconds per step on a CPU) but are named the
way real ones are (``backbone``/``neck``/``head``, ``cls_token``/``pos_embed``/``blocks.N.attn``),
so a config's ``custom_keys`` and multipliers can be tried on them before a real model exists.
Each model class has ``input_shape`` (one example, no batch) and ``num_classes``.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from paramwise.errors import ModelSpecError
from paramwise.registry import Registry
from paramwise.suggestions import did_you_mean

__all__ = ["MODELS", "ModelSpecError", "TinyConvNet", "TinyGPT", "TinyMLP", "TinyViT", "load_model"]

MODELS = Registry("model")


def _conv_bn(cin: int, cout: int, kernel: int = 3, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class TinyConvNet(nn.Module):
    """A conv classifier: conv+BatchNorm backbone, depthwise-separable neck, linear head."""

    input_shape = (3, 16, 16)

    def __init__(self, num_classes: int = 10, width: int = 16) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.backbone = nn.Sequential(_conv_bn(3, width), _conv_bn(width, width * 2, stride=2))
        channels = width * 2
        self.neck = nn.Sequential(
            _conv_bn(channels, channels, groups=channels),  # depthwise: dwconv_decay_mult applies
            nn.Conv2d(channels, channels, 1),  # pointwise, with a bias: bias_* multipliers apply
        )
        self.head = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.neck(self.backbone(x))
        return self.head(x.mean(dim=(2, 3)))


class _Attention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class _Block(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = _Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, dim * 2), nn.GELU(), nn.Linear(dim * 2, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class TinyViT(nn.Module):
    """A vision transformer with timm's names: patch_embed, cls_token, pos_embed, blocks, norm, head."""

    input_shape = (3, 16, 16)

    def __init__(self, num_classes: int = 10, dim: int = 32, depth: int = 2, heads: int = 2, patch: int = 4) -> None:
        super().__init__()
        self.num_classes = num_classes
        tokens = (self.input_shape[1] // patch) * (self.input_shape[2] // patch)
        self.patch_embed = nn.Conv2d(3, dim, patch, patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.randn(1, tokens + 1, dim) * 0.02)
        self.blocks = nn.ModuleList(_Block(dim, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x)[:, 0])


class TinyMLP(nn.Module):
    """A two-layer perceptron with a LayerNorm, on flat feature vectors."""

    input_shape = (32,)

    def __init__(self, num_classes: int = 10, hidden: int = 64) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.fc1 = nn.Linear(self.input_shape[0], hidden)
        self.norm = nn.LayerNorm(hidden)
        self.fc2 = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.relu(self.norm(self.fc1(x))))


class _GPTBlock(nn.Module):
    """Pre-norm attention and MLP, every projection a Linear without bias (as in modern LMs)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.attn_norm = nn.RMSNorm(dim)
        self.attn = nn.ModuleDict({k: nn.Linear(dim, dim, bias=False) for k in ("q_proj", "k_proj", "v_proj",
                                                                                   "o_proj")})
        self.mlp_norm = nn.RMSNorm(dim)
        self.mlp = nn.ModuleDict({"up_proj": nn.Linear(dim, 4 * dim, bias=False),
                                  "down_proj": nn.Linear(4 * dim, dim, bias=False)})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        h = self.attn_norm(x)
        q, k, v = (self.attn[name](h).view(b, n, self.heads, d // self.heads).transpose(1, 2)
                   for name in ("q_proj", "k_proj", "v_proj"))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(b, n, d)
        x = x + self.attn["o_proj"](y)
        return x + self.mlp["down_proj"](F.gelu(self.mlp["up_proj"](self.mlp_norm(x))))


class TinyGPT(nn.Module):
    """A decoder-only language model: token and position embeddings, pre-norm blocks, RMSNorm, ``lm_head``.

    ``tied=True`` shares ``lm_head.weight`` with the token embedding. ``get_input_embeddings`` and
    ``get_output_embeddings`` answer as Hugging Face models do, so optimizers that must not treat
    embeddings as hidden matrices (Muon) can find them.
    """

    def __init__(self, vocab: int = 64, dim: int = 32, depth: int = 2, heads: int = 2, context: int = 16,
                 tied: bool = False) -> None:
        super().__init__()
        self.input_shape = (context,)
        self.num_classes = vocab
        self.embed_tokens = nn.Embedding(vocab, dim)
        self.embed_positions = nn.Embedding(context, dim)
        self.blocks = nn.ModuleList(_GPTBlock(dim, heads) for _ in range(depth))
        self.norm = nn.RMSNorm(dim)
        self.lm_head = nn.Linear(dim, vocab, bias=False)
        if tied:
            self.lm_head.weight = self.embed_tokens.weight

    def get_input_embeddings(self) -> nn.Module:
        return self.embed_tokens

    def get_output_embeddings(self) -> nn.Module:
        return self.lm_head

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Logits of the next token at every position: (batch, length, vocab)."""
        positions = torch.arange(tokens.shape[1], device=tokens.device)
        x = self.embed_tokens(tokens) + self.embed_positions(positions)
        for block in self.blocks:
            x = block(x)
        return self.lm_head(self.norm(x))


@MODELS.register_module()
def tiny_gpt(vocab: int = 64, dim: int = 32, depth: int = 2, heads: int = 2, context: int = 16,
             tied: bool = False) -> TinyGPT:
    """A tiny decoder-only language model (embeddings, attention and MLP matrices, RMSNorm, lm_head)."""
    return TinyGPT(vocab, dim, depth, heads, context, tied)


@MODELS.register_module()
def tiny_convnet(num_classes: int = 10, width: int = 16) -> TinyConvNet:
    """Conv classifier on 3x16x16 images: backbone (conv+BN), neck (depthwise conv), head (linear)."""
    return TinyConvNet(num_classes, width)


@MODELS.register_module()
def tiny_vit(num_classes: int = 10, dim: int = 32, depth: int = 2, heads: int = 2) -> TinyViT:
    """Vision transformer on 3x16x16 images: cls_token, pos_embed, LayerNorm, attention, head."""
    return TinyViT(num_classes, dim, depth, heads)


@MODELS.register_module()
def tiny_mlp(num_classes: int = 10, hidden: int = 64) -> TinyMLP:
    """Two-layer perceptron on 32 features: fc1, LayerNorm, fc2."""
    return TinyMLP(num_classes, hidden)


_MISSING = object()
_SPEC_FORMS = (
    "a SPEC is a built-in model name (see `paramwise list models`), package.module:callable, "
    "or timm:<model name>"
)


def load_model(spec: str, kwargs: Mapping[str, Any] | None = None) -> nn.Module:
    """Build the model that ``spec`` names, calling it with ``kwargs``.

    ``spec`` is a name in ``MODELS``, ``package.module:callable`` (the current directory is
    importable, as with ``python -m``), or ``timm:<name>`` (``timm.create_model``, not pretrained).
    """
    kwargs = dict(kwargs or {})
    if spec.startswith("timm:"):
        return _timm_model(spec, spec[len("timm:"):], kwargs)
    if ":" in spec or "." in spec:
        return _call_model(spec, _import_callable(spec), kwargs)
    if spec not in MODELS:
        raise ModelSpecError(
            f"unknown model {spec!r}.{did_you_mean(spec, MODELS.names())} Built-in models: "
            f"{', '.join(MODELS.names())}; {_SPEC_FORMS}.",
            spec=spec,
        )
    return _call_model(spec, MODELS.get(spec), kwargs)


def _import_callable(spec: str) -> Any:
    module_name, sep, attr = spec.partition(":")
    if not sep:
        module_name, _, attr = spec.rpartition(".")
    if not module_name or not attr:
        raise ModelSpecError(f"model SPEC {spec!r} is incomplete; {_SPEC_FORMS}.", spec=spec)
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())  # the console script does not put the working directory on the path
    try:
        obj: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        missing = e.name or module_name
        raise ModelSpecError(
            f"cannot import {module_name!r} for model SPEC {spec!r}: no module named {missing!r}. "
            f"Check the spelling, or run from the folder that holds it; {_SPEC_FORMS}.",
            spec=spec,
        ) from e
    except Exception as e:  # the user's module itself raised while importing
        raise ModelSpecError(
            f"importing {module_name!r} for model SPEC {spec!r} raised {type(e).__name__}: {e}", spec=spec
        ) from e
    for part in attr.split("."):
        found = getattr(obj, part, _MISSING)
        if found is _MISSING:
            public = [n for n in dir(obj) if not n.startswith("_")]
            raise ModelSpecError(
                f"{getattr(obj, '__name__', module_name)!r} has no attribute {part!r} "
                f"(model SPEC {spec!r}).{did_you_mean(part, public)}",
                spec=spec,
            )
        obj = found
    if not callable(obj):
        raise ModelSpecError(f"{spec!r} is a {type(obj).__name__}, not a class or function that builds a model",
                             spec=spec)
    return obj


def _call_model(spec: str, factory: Any, kwargs: dict[str, Any]) -> nn.Module:
    try:
        model = factory(**kwargs)
    except Exception as e:  # the user's code: say which call failed, the traceback is one flag away
        args = f"with arguments {kwargs!r}" if kwargs else "with no arguments"
        hint = " (pass keyword arguments as JSON with --model-args)" if isinstance(e, TypeError) else ""
        raise ModelSpecError(
            f"building model {spec!r} {args} raised {type(e).__name__}: {e}{hint}", spec=spec
        ) from e
    if not isinstance(model, nn.Module):
        raise ModelSpecError(
            f"{spec!r} returned a {type(model).__name__}, not a torch.nn.Module", spec=spec
        )
    return model


def _timm_model(spec: str, name: str, kwargs: dict[str, Any]) -> nn.Module:
    if not name:
        raise ModelSpecError("'timm:' needs a model name, e.g. timm:resnet18", spec=spec)
    if importlib.util.find_spec("timm") is None:
        raise ModelSpecError(f"model SPEC {spec!r} needs timm, which is not installed: pip install timm", spec=spec)
    try:
        import timm
    except Exception as e:  # installed but broken (often a torch/torchvision version mismatch)
        raise ModelSpecError(
            f"model SPEC {spec!r} needs timm, which is installed but failed to import: {type(e).__name__}: {e}",
            spec=spec,
        ) from e
    try:
        return timm.create_model(name, pretrained=False, **kwargs)
    except Exception as e:
        hint = ""
        if "Unknown model" in str(e):
            hint = did_you_mean(name, timm.list_models())
        raise ModelSpecError(f"timm could not build {name!r}: {e}.{hint}", spec=spec) from e
