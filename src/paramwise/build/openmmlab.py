"""The layer-decay constructors that OpenMMLab configs name, each with its project's exact results.

Trained recipes depend on the exact per-parameter lr and weight decay, so these reproduce their
peers, quirks included, and say so in the plan (a factor's note or rule) where a quirk differs from
what paramwise's own ``layer_decay`` option does:

- ``LearningRateDecayOptimizerConstructor`` (mmsegmentation, mmdetection): ``num_layers``,
  ``decay_rate``, ``decay_type``; layer ids from ConvNeXt / BEiT / MAE parameter names.
- ``LayerDecayOptimizerConstructor`` (mmsegmentation, deprecated): ``layer_decay_rate`` for the above.
- ``LearningRateDecayOptimWrapperConstructor`` (mmpretrain): ``layer_decay_rate`` and the model's
  ``get_layer_depth``, with weight decay from custom keys, norm, bias and flat multipliers.

Each is ``DefaultOptimWrapperConstructor`` with its own keys (``own_keys``) and one rule of the
``param`` stage (``extra_rules``) that gives every parameter the peer's values as factors. The
built-in rules see none of the keys the peer reads or ignores, so nothing else changes the values.
``docs/layer_decay.md`` lists every formula and quirk.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.instancenorm import _InstanceNorm

from paramwise import checks
from paramwise.build.constructors import OPTIMIZER_BUILDERS, DefaultOptimWrapperConstructor
from paramwise.errors import ConfigError, Problem, warn_user
from paramwise.plan.layer_decay import LayerDecayRule, decay_note
from paramwise.plan.rules import Factor
from paramwise.plan.spec import GROUP_FLAGS, CustomKey, OptimizerSpec, resolve_custom_keys
from paramwise.registry import copy_config
from paramwise.suggestions import short_list
from paramwise.walk import named_parameters, unwrap_model

__all__ = [
    "LayerDecayOptimizerConstructor",
    "LearningRateDecayOptimWrapperConstructor",
    "LearningRateDecayOptimizerConstructor",
    "MmpretrainLayerDecayRule",
    "MmsegLayerDecayRule",
]

_PW = ("optimizer", "paramwise_cfg")
_TOKENS = ("backbone.cls_token", "backbone.mask_token", "backbone.pos_embed")  # the peers compare full names
_MM_NORMS = (_BatchNorm, _InstanceNorm, nn.GroupNorm, nn.LayerNorm)  # mmengine's is_norm
#: the most layers num_layers may count: the decay raises the rate to powers up to it (far beyond any backbone)
_MAX_LAYERS = 10**6

Bound = Callable[[str, torch.Tensor, nn.Module], tuple[Factor, ...]]


def _power(rate: float, exponent: int, key: str, constructor: str) -> float:
    """``rate ** exponent``, the lr scale of one layer; a ConfigError at ``key`` when a float cannot hold it."""
    try:
        scale = rate ** exponent
    except (OverflowError, ZeroDivisionError):  # a rate far above 1, or 0 ** -1 for an id past the top
        scale = math.inf
    if not math.isfinite(scale):
        raise ConfigError([Problem((*_PW, key), f"{rate:g} ** {exponent} (the lr scale of a layer) is too large "
                                                "for a float: a decay rate is at most 1 as a rule")],
                          title=f"{constructor} cannot use this model")
    return float(scale)


def _wrapped_paramwise(optim_wrapper_cfg: Any, paramwise_cfg: Any) -> Any:
    """The paramwise_cfg a wrapper constructor will read: the argument, else the one inside the wrapper config."""
    if paramwise_cfg is not None or not isinstance(optim_wrapper_cfg, Mapping):
        return paramwise_cfg
    return optim_wrapper_cfg.get("paramwise_cfg")


class _PeerConstructor(DefaultOptimWrapperConstructor):
    """A peer's constructor: its keys checked with every other problem of the config in one error."""

    #: keys the peer accepts but never reads: taken from the built-in rules and reported as ignored
    ignored_keys: ClassVar[tuple[str, ...]] = ()

    def __init__(self, optim_wrapper_cfg: Mapping[str, Any], paramwise_cfg: Mapping[str, Any] | None = None) -> None:
        problems: list[Problem] = []
        try:
            super().__init__(optim_wrapper_cfg, paramwise_cfg)
        except ConfigError as e:
            raw = _wrapped_paramwise(optim_wrapper_cfg, paramwise_cfg)
            own = {k: v for k, v in raw.items() if k in self.own_keys} if isinstance(raw, Mapping) else {}
            self._check(own, None, problems)
            raise ConfigError([*e.problems, *problems], title=e.title) from None
        self._check(self.own_options, self.spec, problems)
        if any(isinstance(rule, LayerDecayRule) for rule in self.options.param_rules):
            problems.append(Problem((*_PW, "layer_decay"), f"would decay the lr a second time, on top of "
                                                          f"{type(self).__name__}'s own decay; drop one"))
        if problems:
            raise ConfigError(problems, title=f"invalid {type(self).__name__} config")
        ignored = [k for k in self.ignored_keys if self.own_options.get(k) is not None]
        if ignored:
            warn_user(f"optimizer -> paramwise_cfg: {type(self).__name__} ignores {', '.join(map(repr, ignored))} "
                  f"(as its peer does); for layer decay that composes with them, use paramwise's layer_decay "
                  "option with DefaultOptimizerConstructor")

    def _check(self, own: Mapping[str, Any], spec: OptimizerSpec | None, problems: list[Problem]) -> None:
        """Validate the peer's own keys (appending Problems) and keep what the rule needs."""
        raise NotImplementedError

    def _require_base(self, spec: OptimizerSpec | None, key: str, why: str, problems: list[Problem]) -> None:
        base = None if spec is None else spec.base_lr if key == "lr" else spec.base_wd
        if spec is not None and base is None and key not in spec.kwargs:
            problems.append(Problem(("optimizer", key), f"is missing: {type(self).__name__} {why}", kind="missing"))


# ============================================================= mmsegmentation / mmdetection
def _convnext_layer_id(name: str, num_layers: int) -> int | None:
    """mmseg's layer_wise id for ConvNeXt (called with ``num_layers``, not ``num_layers + 2``)."""
    if name in _TOKENS:
        return 0
    parts = name.split(".")
    if name.startswith("backbone.downsample_layers"):
        return {0: 0, 1: 2, 2: 3, 3: num_layers}.get(int(parts[2]))
    if name.startswith("backbone.stages"):
        stage, block = int(parts[2]), int(parts[3])
        return 3 + block // 3 if stage == 2 else {0: 1, 1: 2, 3: num_layers}.get(stage)
    return num_layers + 1


def _convnext_stage_id(name: str, num_layers: int) -> int | None:
    """mmseg's stage_wise id for ConvNeXt: every downsample 0, stage s at s + 1, the rest ``num_layers + 1``."""
    if name in _TOKENS or name.startswith("backbone.downsample_layers"):
        return 0
    if name.startswith("backbone.stages"):
        return int(name.split(".")[2]) + 1
    return num_layers + 1


def _vit_layer_id(name: str, num_layers: int) -> int | None:
    """mmseg's layer_wise id for BEiT / MAE: tokens and patch_embed 0, ``layers.i`` at i + 1, the rest last."""
    if name in _TOKENS or name.startswith("backbone.patch_embed"):
        return 0
    if name.startswith("backbone.layers"):
        return int(name.split(".")[2]) + 1
    return num_layers + 1


@dataclass(frozen=True, repr=False)
class MmsegLayerDecayRule:
    """mmsegmentation's ``LearningRateDecayOptimizerConstructor``: its lr scale and no-decay test per parameter."""

    constructor: str
    num_layers: int
    decay_rate: float
    decay_type: str
    rate_key: str = "decay_rate"  # the paramwise_cfg key the rate came from, for messages
    stage: str = "param"

    def __repr__(self) -> str:
        return f"{self.constructor}(decay_type={self.decay_type!r})"

    def _layer_ids(self, backbone: nn.Module | None) -> tuple[Callable[[str, int], int | None], str] | str:
        """The id function for this backbone and decay type, or why the peer would fail."""
        if backbone is None:
            return ("has no 'backbone' module; this constructor reads layer ids from 'backbone.*' names "
                    "(a segmentor or detector); for other models use paramwise's layer_decay option")
        kind = type(backbone).__name__
        if "layer_wise" in self.decay_type:  # a substring test in the peer: 'layer_wise_vit' is layer_wise
            if "ConvNeXt" in kind:
                return _convnext_layer_id, "ConvNeXt layer_wise"
            if "BEiT" in kind or "MAE" in kind:
                return _vit_layer_id, "BEiT/MAE layer_wise"
            return (f"backbone is a {kind}; decay_type={self.decay_type!r} supports backbones whose class name "
                    "contains 'ConvNeXt', 'BEiT' or 'MAE' (mmdetection's: 'ConvNeXt' only)")
        if "ConvNeXt" in kind:
            return _convnext_stage_id, "ConvNeXt stage_wise"
        return f"backbone is a {kind}; decay_type='stage_wise' supports ConvNeXt backbones only"

    def bind(self, model: nn.Module) -> Bound:
        root = unwrap_model(model)
        backbone = getattr(root, "backbone", None)
        found = self._layer_ids(backbone if isinstance(backbone, nn.Module) else None)
        if isinstance(found, str):
            title = f"{self.constructor} cannot use this model"
            raise ConfigError([Problem(("model", "backbone"), found)], title=title)
        layer_id, scheme = found
        n, top = self.num_layers, self.num_layers + 1  # the peer's N = num_layers + 2 ids: 0 .. num_layers + 1
        ids: dict[str, int] = {}
        bad: list[str] = []
        for name, param in named_parameters(root):
            try:
                found_id = layer_id(name, n)
            except (ValueError, IndexError):
                found_id = None
            if found_id is None:
                if param.requires_grad:  # the peer skips frozen parameters before it asks for their id
                    bad.append(name)
            else:
                ids[name] = found_id
        if bad:
            raise ConfigError([Problem(("model", "backbone"), (
                f"{short_list(bad)}: no {scheme} layer id (the peer fails on them: it knows "
                "downsample_layers.0-3 and stages.0-3 of ConvNeXt, and backbone.layers.N of BEiT/MAE)"))],
                title=f"{self.constructor} cannot use this model")
        extra = "" if self.decay_type in ("layer_wise", "stage_wise") else (
            f"; decay_type {self.decay_type!r} acts as 'layer_wise' (the peer tests 'layer_wise' in decay_type)")
        lr_rule, wd_rule = "decay_rate", "no_decay"
        cache: dict[tuple[int, bool], Factor] = {}

        def lr_factor(layer: int, name: str) -> Factor:
            late_stage_2 = scheme == "ConvNeXt layer_wise" and layer >= n and name.startswith("backbone.stages.2.")
            factor = cache.get((layer, late_stage_2))
            if factor is None:
                exponent = top - layer
                note = f"{decay_note(self.decay_rate, exponent, layer, top)}, {scheme}{extra}"
                if late_stage_2:
                    note += "; a stage-2 block at id 3 + block // 3 >= num_layers, beside stage 3 or above it"
                if exponent < 0:
                    note += "; the id passes num_layers + 1, so the scale is above 1 (the peer does not check)"
                scale = _power(self.decay_rate, exponent, self.rate_key, self.constructor)
                factor = Factor("lr", "mult", scale, lr_rule, note)
                cache[(layer, late_stage_2)] = factor
            return factor

        def factors(name: str, param: torch.Tensor, module: nn.Module) -> tuple[Factor, ...]:
            layer = ids.get(name)
            if layer is None:
                return ()
            leaf = name.rpartition(".")[2]
            if param.ndim == 1:
                wd: Factor | None = Factor("weight_decay", "set", 0.0, wd_rule, "1-D")
            elif name.endswith(".bias"):
                wd = Factor("weight_decay", "set", 0.0, wd_rule, "a bias")
            elif name in ("pos_embed", "cls_token"):
                wd = Factor("weight_decay", "set", 0.0, wd_rule, f"named {name!r}")
            elif leaf in ("pos_embed", "cls_token"):
                wd = Factor("weight_decay", "mult", 1.0, wd_rule, (
                    f"decayed: the peer compares the full name {name!r} with the bare {leaf!r}, so its "
                    "no-decay test misses it"))
            else:
                wd = None
            lr = lr_factor(layer, name)
            return (lr,) if wd is None else (lr, wd)

        return factors


_MM_IGNORED = ("custom_keys", "bias_lr_mult", "bias_decay_mult", "norm_decay_mult", "dwconv_decay_mult",
               "flat_decay_mult", "dcn_offset_lr_mult")


@OPTIMIZER_BUILDERS.register_module()
class LearningRateDecayOptimizerConstructor(_PeerConstructor):
    """mmsegmentation's and mmdetection's layer-wise lr decay for ConvNeXt and BEiT/MAE backbones.

    ``paramwise_cfg``: ``num_layers`` (int), ``decay_rate`` (float), ``decay_type`` (``'layer_wise'``,
    ``'layer_wise_vit'`` or ``'stage_wise'``). With ``N = num_layers + 2`` a parameter at id ``i`` gets
    ``lr = decay_rate ** (N - 1 - i) x lr`` and ``weight_decay = 0`` when it is 1-D, a bias, or a
    top-level ``pos_embed`` / ``cls_token``, else the base. Custom keys and the ``*_mult`` options are
    ignored, as in the peer. mmdetection's class is the same except that it has no BEiT/MAE ids.
    """

    own_keys: ClassVar[frozenset[str]] = frozenset({"num_layers", "decay_rate", "decay_type", *_MM_IGNORED})
    ignored_keys: ClassVar[tuple[str, ...]] = _MM_IGNORED
    _rate_key: ClassVar[str] = "decay_rate"

    def _check(self, own: Mapping[str, Any], spec: OptimizerSpec | None, problems: list[Problem]) -> None:
        num_layers = own.get("num_layers")
        if num_layers is None:
            problems.append(Problem((*_PW, "num_layers"), "is missing: the backbone's number of layers (e.g. 12 "
                                                          "for BEiT-B, 12 for ConvNeXt as its configs write)",
                                    kind="missing"))
        else:
            problems += checks.integer(num_layers, (*_PW, "num_layers"), low=1, high=_MAX_LAYERS)
        rate = own.get(self._rate_key)
        if rate is None:
            problems.append(Problem((*_PW, self._rate_key), "is missing: the lr decay per layer, e.g. 0.9",
                                    kind="missing"))
        else:
            problems += checks.real(rate, (*_PW, self._rate_key), low=0, low_open=True)
        decay_type = own.get("decay_type", "layer_wise")
        if not isinstance(decay_type, str) or ("layer_wise" not in decay_type and decay_type != "stage_wise"):
            problems.append(Problem((*_PW, "decay_type"), "must be 'layer_wise', 'layer_wise_vit' or 'stage_wise', "
                                                          f"got {decay_type!r}"))
        self._require_base(spec, "lr", "scales the base lr", problems)
        self._require_base(spec, "weight_decay", "gives decayed parameters the base weight_decay (the peer "
                                                 "would write None into their groups, which torch rejects)", problems)
        self._rule = MmsegLayerDecayRule(type(self).__name__, num_layers or 0, rate or 0.0, decay_type,
                                         self._rate_key) if not problems else None

    def extra_rules(self, model: nn.Module) -> tuple[Any, ...]:
        return () if self._rule is None else (self._rule,)


@OPTIMIZER_BUILDERS.register_module()
class LayerDecayOptimizerConstructor(LearningRateDecayOptimizerConstructor):
    """mmsegmentation's deprecated BEiT constructor: ``layer_decay_rate`` is ``decay_rate``, with
    ``decay_type='layer_wise_vit'`` (so ``layer_wise``, also for ConvNeXt) whatever the config says."""

    own_keys: ClassVar[frozenset[str]] = LearningRateDecayOptimizerConstructor.own_keys | {"layer_decay_rate"}
    _rate_key: ClassVar[str] = "layer_decay_rate"

    def __init__(self, optim_wrapper_cfg: Mapping[str, Any], paramwise_cfg: Mapping[str, Any] | None = None) -> None:
        warn_user("LayerDecayOptimizerConstructor is deprecated (in mmsegmentation too): use "
              "LearningRateDecayOptimizerConstructor with decay_rate and decay_type='layer_wise_vit'")
        wrapper = copy_config(optim_wrapper_cfg) if isinstance(optim_wrapper_cfg, Mapping) else optim_wrapper_cfg
        raw = paramwise_cfg
        if raw is None and isinstance(wrapper, dict):
            raw = wrapper.pop("paramwise_cfg", None)
        mapped = dict(raw) if isinstance(raw, Mapping) else {}
        overwritten = [k for k in ("decay_type", "decay_rate") if mapped.get(k) is not None]
        if overwritten:  # the peer overwrites them silently
            warn_user(f"optimizer -> paramwise_cfg: {', '.join(map(repr, overwritten))} of "
                      "LayerDecayOptimizerConstructor are replaced (decay_type='layer_wise_vit', "
                      "decay_rate=layer_decay_rate), as in mmsegmentation")
        mapped.pop("decay_rate", None)
        mapped["decay_type"] = "layer_wise_vit"
        super().__init__(wrapper, mapped if isinstance(raw, Mapping) or raw is None else raw)


# ======================================================================================== mmpretrain
@dataclass(frozen=True, repr=False)
class MmpretrainLayerDecayRule:
    """mmpretrain's ``LearningRateDecayOptimWrapperConstructor``: weight decay, then the lr from the depth."""

    layer_decay_rate: float
    custom_keys: tuple[CustomKey, ...]  # longest first, ties alphabetical: the peer's order
    norm_decay_mult: float | None
    bias_decay_mult: float | None
    flat_decay_mult: float | None
    has_base_wd: bool
    stage: str = "param"

    def __repr__(self) -> str:
        return "LearningRateDecayOptimWrapperConstructor"

    def _decay(self, name: str, param: torch.Tensor, module: nn.Module) -> list[Factor]:
        """The peer's weight-decay chain (the first that applies): custom key, norm, bias, flat."""
        if not self.has_base_wd:
            return []  # the peer skips the whole block, custom keys included
        custom = next((ck for ck in self.custom_keys if ck.key in name), None)
        if custom is not None:
            rule = f"custom_keys[{custom.key!r}]"
            out = [Factor("weight_decay", "mult", 1.0 if custom.decay_mult is None else custom.decay_mult, rule)]
            for option, value in custom.options.items():
                if option == "lr":
                    out.append(Factor("lr", "mult", 1.0, rule, f"lr={value!r} dropped: the layer scale overwrites lr"))
                else:  # copied into the group after the decay, so a 'weight_decay' here wins
                    out.append(Factor(option, "set", value, rule))
            if custom.lr_mult is not None:
                out.append(Factor("lr", "mult", 1.0, rule, (
                    f"lr_mult={custom.lr_mult:g} dropped: mmpretrain's constructor overwrites lr with base lr x "
                    "layer scale (the group keeps an inert lr_mult key)")))
            return out
        if isinstance(module, _MM_NORMS) and self.norm_decay_mult is not None:
            return [Factor("weight_decay", "mult", self.norm_decay_mult, "norm_decay_mult")]
        if name.rpartition(".")[2] == "bias" and self.bias_decay_mult is not None:
            return [Factor("weight_decay", "mult", self.bias_decay_mult, "bias_decay_mult")]
        if param.ndim == 1 and self.flat_decay_mult is not None:
            return [Factor("weight_decay", "mult", self.flat_decay_mult, "flat_decay_mult")]
        return []

    def bind(self, model: nn.Module) -> Bound:
        root = unwrap_model(model)
        get_layer_depth = getattr(root, "get_layer_depth", None)
        if not callable(get_layer_depth):
            raise ConfigError([Problem(("model",), (
                f"{type(root).__name__} has no get_layer_depth(param_name) method, which "
                "LearningRateDecayOptimWrapperConstructor needs (mmpretrain's classifiers and backbones have one); "
                "for other models use paramwise's layer_decay option"), kind="type")],
                title="LearningRateDecayOptimWrapperConstructor cannot use this model")
        rate = self.layer_decay_rate

        def factors(name: str, param: torch.Tensor, module: nn.Module) -> tuple[Factor, ...]:
            try:
                layer, total = get_layer_depth(name)
            except Exception as e:  # the model's own code: name the parameter, keep the cause
                raise ConfigError([Problem(("model",), f"{type(root).__name__}.get_layer_depth({name!r}) raised "
                                                       f"{type(e).__name__}: {e}")],
                                  title="LearningRateDecayOptimWrapperConstructor cannot use this model") from e
            exponent = total - layer - 1
            note = f"{decay_note(rate, exponent, layer, total - 1)} (get_layer_depth)"
            scale = _power(rate, exponent, "layer_decay_rate", "LearningRateDecayOptimWrapperConstructor")
            lr = Factor("lr", "mult", scale, "layer_decay_rate", note)
            return (*self._decay(name, param, module), lr)

        return factors


@OPTIMIZER_BUILDERS.register_module()
class LearningRateDecayOptimWrapperConstructor(_PeerConstructor):
    """mmpretrain's layer-wise lr decay: ``lr = layer_decay_rate ** (num_layers - 1 - depth) x lr`` from the
    model's ``get_layer_depth(name) -> (depth, num_layers)``; weight decay from the first of a custom key's
    ``decay_mult``, ``norm_decay_mult``, ``bias_decay_mult``, ``flat_decay_mult``. A custom key's
    ``lr_mult`` is dropped, as in the peer (the plan says so)."""

    own_keys: ClassVar[frozenset[str]] = frozenset({
        "layer_decay_rate", "custom_keys", "norm_decay_mult", "bias_decay_mult", "flat_decay_mult",
        "bias_lr_mult", "dwconv_decay_mult", "dcn_offset_lr_mult"})
    ignored_keys: ClassVar[tuple[str, ...]] = ("bias_lr_mult", "dwconv_decay_mult", "dcn_offset_lr_mult")

    def _check(self, own: Mapping[str, Any], spec: OptimizerSpec | None, problems: list[Problem]) -> None:
        rate = own.get("layer_decay_rate", 1.0)
        problems += checks.real(rate, (*_PW, "layer_decay_rate"), low=0, low_open=True)
        mults: dict[str, float | None] = {}
        for key in ("norm_decay_mult", "bias_decay_mult", "flat_decay_mult"):
            value = own.get(key)
            problems += checks.real(value, (*_PW, key), low=0, optional=True)
            mults[key] = value if checks.is_finite_real(value) else None  # as given: the peer multiplies it raw
        has_wd = spec is not None and spec.base_wd is not None
        for key in ("norm_decay_mult", "bias_decay_mult", "dwconv_decay_mult"):  # mmengine's _validate_cfg
            if own.get(key) is not None and spec is not None and not has_wd:
                problems.append(Problem((*_PW, key), "needs a base weight_decay: set weight_decay in the optimizer "
                                                     "config", kind="missing"))
        custom: tuple[CustomKey, ...] = ()
        if own.get("custom_keys") is not None:
            custom = resolve_custom_keys(own["custom_keys"], spec, frozenset(GROUP_FLAGS), problems)
        self._require_base(spec, "lr", "scales the base lr", problems)
        raw = self.paramwise_cfg if hasattr(self, "paramwise_cfg") else {}
        # mmengine calls add_params only for a non-empty paramwise_cfg: an empty one means no layer decay
        usable = not problems and bool(dict(raw)) and checks.is_finite_real(rate)
        self._rule = None if not usable else MmpretrainLayerDecayRule(
            rate, custom, mults["norm_decay_mult"], mults["bias_decay_mult"], mults["flat_decay_mult"],
            has_wd)

    def extra_rules(self, model: nn.Module) -> tuple[Any, ...]:
        return () if self._rule is None else (self._rule,)
