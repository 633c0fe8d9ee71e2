"""Width scaling (muP) and expression rules: ``param``-stage rules that scale each parameter's lr and
weight decay by how its shape compares with a base model's (see rules.py for the rule interface).

``width_scaling`` gives the values of the ``mup`` package's ``MuAdam``/``MuSGD`` without their
optimizers: a parameter's *width dimensions* are those that grow with the model (mup's "infinite"
dimensions); with Adam-like optimizers a parameter with two of them (a hidden matrix) gets
``lr / width_mult`` and the others keep the base lr; with SGD-like ones a parameter with one (a
bias, a norm gain, an embedding, a ``MuReadout`` weight) gets ``lr * width_mult`` and a matrix
``lr / (fan_in mult / fan_out mult)``. Weight decay moves the other way (mup keeps ``lr * wd``), unless
``scale_weight_decay=False``. The base shapes come from the config (a base-shapes file as
``mup.save_base_shapes`` writes it, a dict of shapes, or a base model from ``MODELS``) or, when the
config names none, from the ``infshape`` that ``mup.set_base_shapes`` put on the parameters.

``scale_rules`` are the general form: ``dict(match=regex, lr_mult='base_fan_in / fan_in')``, the
values safe expressions (expressions.py) over the parameter's shape, its base shape and its layer.

Both only multiply: they compose with custom keys, the built-in multipliers and layer decay, and
every factor is recorded with its reason, e.g. ``x 0.25 width_scaling (width_mult 4, matrix-like)``.
"""

from __future__ import annotations

import math
import os
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from paramwise import checks
from paramwise.errors import ConfigError, ParamwiseWarning, Problem
from paramwise.optimizers import optimizer_default
from paramwise.plan.expressions import Expression, ExpressionError, check_expression
from paramwise.plan.rules import Factor
from paramwise.plan.spec import PARAM_RULE_OPTIONS, OptimizerSpec
from paramwise.suggestions import did_you_mean, format_value, plural, safe_repr, safe_str, short_list
from paramwise.walk import named_parameters, unwrap_model

__all__ = [
    "ADAM_LIKE",
    "SGD_LIKE",
    "SCALE_VARIABLES",
    "BaseShapes",
    "ScaleRule",
    "ScaleRules",
    "WidthScalingRule",
    "WidthShape",
    "scale_rules_option",
    "width_scaling_option",
]

#: Optimizers whose update is normalised entry by entry (mup's "Adam-like": MuAdam's rules apply).
ADAM_LIKE = frozenset({"Adam", "AdamW", "Adamax", "NAdam", "RAdam", "RMSprop", "Adagrad", "SparseAdam", "Lion"})
#: Optimizers whose update is the gradient itself, up to momentum (MuSGD's rules apply).
SGD_LIKE = frozenset({"SGD", "ASGD"})

#: The variables of a ``scale_rules`` expression.
SCALE_VARIABLES: Mapping[str, str] = {
    "fan_in": "inputs per output: shape[1] x the receptive field (torch's fan_in); 1 for 1-D and 0-D tensors",
    "fan_out": "outputs: shape[0] x the receptive field; numel for 1-D tensors, 1 for 0-D",
    "ndim": "number of dimensions",
    "numel": "number of elements",
    "layer": "the layer index that match's first group captured (r'blocks\\.(\\d+)\\.')",
    "num_layers": "the rule's num_layers, or the largest captured index + 1",
    "base_fan_in": "fan_in of the base shape",
    "base_fan_out": "fan_out of the base shape",
    "base_numel": "numel of the base shape",
    "width_mult": "mup's width multiplier: size / base size of the last width dimension (1 if none)",
}
_BASE_VARIABLES = frozenset({"base_fan_in", "base_fan_out", "base_numel", "width_mult"})
_LAYER_VARIABLES = frozenset({"layer", "num_layers"})

_WIDTH_KEYS = ("base_shapes", "base_model", "delta_model", "optimizer", "readout", "scale_weight_decay", "scale_eps")
_BASE_KEYS = ("base_shapes", "base_model", "delta_model")
#: the most layers a scale rule may count: expressions read it as a float (far beyond any network)
_MAX_LAYERS = 10**6
_RULE_KEYS = ("match", "lr_mult", "decay_mult", "num_layers")
_RULE = "width_scaling"

Dims = tuple[int | None, ...]  # a base shape: the base size of each width dimension, None where fixed


# ------------------------------------------------------------------------------------------ shapes
@dataclass(frozen=True)
class WidthShape:
    """A parameter's shape against its base: which dimensions are widths, and their base sizes.

    ``base[i]`` is the base size of dimension ``i`` when it is a width dimension, else None (as mup's
    ``InfDim``); ``main`` is the dimension whose multiplier is the parameter's ``width_mult`` (mup: the
    last width dimension, which is the fan-in of a matrix).
    """

    shape: tuple[int, ...]
    base: Dims
    main: int | None

    @classmethod
    def of(cls, shape: Sequence[int], base: Sequence[int | None]) -> WidthShape:
        width = [i for i, b in enumerate(base) if b is not None]
        return cls(tuple(shape), tuple(base), width[-1] if width else None)

    @property
    def ninf(self) -> int:
        """How many dimensions are widths (mup's ``ninf``)."""
        return sum(b is not None for b in self.base)

    def mult(self, dim: int) -> float:
        base = self.base[dim]
        return 1.0 if base is None else self.shape[dim] / base

    @property
    def width_mult(self) -> float:
        return 1.0 if self.main is None else self.mult(self.main)

    @property
    def base_shape(self) -> tuple[int, ...]:
        return tuple(s if b is None else b for s, b in zip(self.shape, self.base))

    @property
    def readout_like(self) -> bool:
        """A matrix from a width to a fixed size (fan-in a width, fan-out not): a readout layer's weight."""
        return len(self.shape) >= 2 and self.base[0] is None and self.base[1] is not None


@dataclass(frozen=True)
class BaseShapes:
    """Where the base shapes come from, in the forms ``mup.set_base_shapes`` accepts.

    ``shapes`` maps parameter names to base dimensions (None: a fixed dimension); ``None`` means the
    model's own mup ``infshape`` attributes. With ``fixed_if_same`` (the shapes of a base model), a
    dimension as large as the model's is fixed, as mup treats a base model; without it (a base-shapes
    file, or a base model with a delta model) every number marks a width dimension.
    """

    source: str  # for messages: "base_shapes 'base.bsh'", "base_model 'mlp'", "the parameters' infshape"
    shapes: Mapping[str, Dims] | None = None
    fixed_if_same: bool = False

    def width_shapes(self, root: nn.Module, path: tuple[str, ...]) -> dict[int, WidthShape]:
        """Every parameter's WidthShape, by ``id``; a ConfigError lists every parameter that does not fit."""
        params = named_parameters(root)
        if self.shapes is None:
            return self._from_infshape(params, path)
        shapes = _strip_module_prefix(self.shapes, [n for n, _ in params])
        problems: list[Problem] = []
        out: dict[int, WidthShape] = {}
        missing, wrong = [], []
        for name, param in params:
            base = shapes.get(name)
            if base is None:
                missing.append(name)
                continue
            shape = tuple(param.shape)
            if len(base) != len(shape):
                wrong.append(f"{name} {list(shape)} vs base {list(base)}")
                continue
            if self.fixed_if_same:
                base = tuple(None if b == s else b for b, s in zip(base, shape))
            out[id(param)] = WidthShape.of(shape, base)
        extra = sorted(set(shapes) - {n for n, _ in params})
        if missing:
            hint = next((h for h in (did_you_mean(n, extra) for n in missing) if h), "")
            problems.append(Problem(path, f"{self.source} has no shape for {short_list(missing)}.{hint} "
                                          "Make the base shapes from this model's class (same parameter names)"))
        if extra:
            problems.append(Problem(path, f"{self.source} has shapes for parameters the model lacks: "
                                          f"{short_list(extra)}"))
        if wrong:
            problems.append(Problem(path, f"{self.source} gives base shapes with another number of dimensions: "
                                          f"{short_list(wrong)}"))
        if problems:
            raise ConfigError(problems, title="width scaling: the base shapes do not fit the model")
        return out

    def _from_infshape(
        self, params: Sequence[tuple[str, torch.Tensor]], path: tuple[str, ...]
    ) -> dict[int, WidthShape]:
        out: dict[int, WidthShape] = {}
        missing = []
        for name, param in params:
            infshape = getattr(param, "infshape", None)
            if infshape is None:
                missing.append(name)
                continue
            base = tuple(getattr(d, "base_dim", None) for d in infshape)
            main = getattr(infshape, "main_idx", None)  # mup lets users move it; honour that
            shape = tuple(param.shape)
            width = WidthShape.of(shape, base)
            out[id(param)] = WidthShape(shape, base, main) if main is not None else width
        if missing:
            which = "none of the model's parameters have" if len(missing) == len(params) else (
                f"{short_list(missing)} have no")
            raise ConfigError([Problem(path, (
                f"names no base shapes, and {which} mup's `infshape`: give base_shapes='base.bsh' "
                "(mup.save_base_shapes), base_shapes={name: shape}, or base_model=dict(type=...) from "
                "paramwise.MODELS; or call mup.set_base_shapes(model, base) before building"))],
                title="width scaling: no base shapes")
        return out


def _strip_module_prefix(shapes: Mapping[str, Dims], names: Sequence[str]) -> Mapping[str, Dims]:
    """Base shapes saved from a DataParallel/DDP model have a 'module.' on every name (mup's hack too)."""
    if shapes and names and all(k.startswith("module.") for k in shapes) and not any(
            n.startswith("module.") for n in names):
        return {k[len("module."):]: v for k, v in shapes.items()}
    return shapes


def _fans(shape: Sequence[int]) -> tuple[int, int]:
    """(fan_in, fan_out) as torch's init computes them; a 1-D tensor is a matrix from one constant input."""
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return 1, shape[0]
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def _is_mu_readout(module: nn.Module) -> bool:
    return any(cls.__name__ == "MuReadout" for cls in type(module).__mro__)  # no import of mup needed


# ------------------------------------------------------------------------------------------ width_scaling
@dataclass(frozen=True, repr=False)
class WidthScalingRule:
    """``paramwise_cfg['width_scaling']``: mup's ``MuAdam``/``MuSGD`` values as factors.

    ``readout`` names (regexes) plain ``nn.Linear`` readouts without MuReadout's output multiplier:
    their weights get muP's lr for that form (``lr / fan_in mult`` for Adam and SGD alike).
    ``eps`` (the optimizer's eps, when ``scale_eps``) becomes ``eps / width_mult`` on matrices.
    """

    base: BaseShapes
    optimizer: str  # 'adam' or 'sgd'
    readout: tuple[str, ...] = ()
    scale_weight_decay: bool = True
    eps: float | None = None
    path: tuple[str, ...] = ("optimizer", "paramwise_cfg", "width_scaling")
    stage: ClassVar[str] = "param"

    def __repr__(self) -> str:
        return _RULE

    def bind(self, model: nn.Module) -> Callable[[str, torch.Tensor, nn.Module], tuple[Factor, ...]]:
        root = unwrap_model(model)
        shapes = self.base.width_shapes(root, self.path)
        patterns = [re.compile(p) for p in self.readout]
        names = {id(p): n for n, p in named_parameters(root)}
        readouts = {i for i, ws in shapes.items() if ws.readout_like and any(p.search(names[i]) for p in patterns)}
        self._check_readouts(root, shapes, names, readouts, patterns)
        cache: dict[tuple[Any, ...], tuple[Factor, ...]] = {}

        def factors(name: str, param: torch.Tensor, module: nn.Module) -> tuple[Factor, ...]:
            width = shapes.get(id(param))
            if width is None:
                return ()
            readout = id(param) in readouts
            key = (width.shape, width.base, width.main, readout)
            found = cache.get(key)
            if found is None:
                found = cache[key] = self._factors(width, readout, name)
            return found

        return factors

    def _factors(self, width: WidthShape, readout: bool, name: str) -> tuple[Factor, ...]:
        ninf = width.ninf
        if ninf > 2:
            raise ConfigError([Problem(self.path, (
                f"{safe_repr(name)} has {ninf} width dimensions (shape {list(width.shape)}, base "
                f"{list(width.base)}); mup's rules cover at most 2. Make all but two of them fixed in the "
                "base shapes (the same size as the model's), or leave the parameter out with a custom key"))],
                title="width scaling")
        matrix = False
        if readout:
            mult = width.mult(1)
            lr, note = 1 / mult, f"fan_in mult {format_value(mult)}, readout without output multiplier"
        elif ninf == 2 and self.optimizer == "adam":
            mult, matrix = width.width_mult, True
            lr, note = 1 / mult, f"width_mult {format_value(mult)}, matrix-like"
        elif ninf == 2:  # SGD: mup's fanin_fanout_mult_ratio
            fan_in, fan_out = width.mult(1), width.mult(0)
            mult, matrix = fan_in / fan_out, True
            lr = 1 / mult
            note = f"fan_in mult {format_value(fan_in)} / fan_out mult {format_value(fan_out)}, matrix-like"
        elif ninf == 1 and self.optimizer == "sgd":
            mult = width.width_mult
            lr, note = mult, f"width_mult {format_value(mult)}, vector-like"
        else:
            return ()  # Adam: vectors keep the base lr; fixed parameters do everywhere
        if lr == 1.0:
            return ()  # as wide as the base: nothing to show
        out = [Factor("lr", "mult", lr, _RULE, note)]
        if self.scale_weight_decay:
            out.append(Factor("weight_decay", "mult", 1 / lr, _RULE, note))
        if self.eps is not None and matrix:
            out.append(Factor("eps", "set", self.eps, _RULE, "the optimizer's eps"))
            out.append(Factor("eps", "mult", 1 / mult, _RULE, note))
        return tuple(out)

    def _check_readouts(
        self,
        root: nn.Module,
        shapes: Mapping[int, WidthShape],
        names: Mapping[int, str],
        readouts: set[int],
        patterns: Sequence[re.Pattern[str]],
    ) -> None:
        """Warn where the values would not be muP: a plain Linear readout not named in ``readout``
        (mup's set_base_shapes refuses it), or a ``readout`` pattern that names no readout."""
        plain = []
        for module in root.modules():
            weight = getattr(module, "weight", None)
            if not isinstance(module, nn.Linear) or _is_mu_readout(module) or not isinstance(weight, torch.Tensor):
                continue
            width = shapes.get(id(weight))
            if width is not None and width.readout_like and id(weight) not in readouts and id(weight) in names:
                plain.append(names[id(weight)])
        if plain:
            one = len(plain) == 1
            which = short_list(plain) if one else f"{plural(len(plain), 'weight')} ({short_list(plain)})"
            it = "it" if one else "them"
            warnings.warn(
                f"width_scaling: {which} {'maps' if one else 'map'} a width to a fixed size "
                f"({'a readout' if one else 'readouts'}) in "
                f"{'a plain nn.Linear' if one else 'plain nn.Linear layers'}. "
                "mup's MuAdam/MuSGD values assume MuReadout, which divides its input by width_mult: use "
                f"mup.MuReadout, or name {it} in width_scaling['readout'] for muP's lr without that multiplier "
                f"(and initialise {it} to zero or with variance ~ 1/fan_in^2)",
                ParamwiseWarning,
                stacklevel=3,
            )
        for pattern in patterns:
            if not any(pattern.search(names[i]) for i in readouts):
                warnings.warn(
                    f"width_scaling['readout']: {safe_repr(pattern.pattern)} names no readout weight (a matrix "
                    f"whose fan-in "
                    "is a width and whose fan-out is fixed)",
                    ParamwiseWarning,
                    stacklevel=3,
                )


@PARAM_RULE_OPTIONS.register_module(name="width_scaling")
def width_scaling_option(
    value: Any, paramwise_cfg: Mapping[str, Any], spec: OptimizerSpec | None, path: tuple[str, ...],
    problems: list[Problem],
) -> WidthScalingRule | None:
    """``width_scaling=dict(base_shapes=..., optimizer='auto', readout=[], scale_weight_decay=True,
    scale_eps=False)``, or ``True`` to read the model's mup ``infshape``."""
    if value is False:
        return None
    if value is True:
        value = {}
    if not isinstance(value, Mapping):
        problems.append(Problem(path, f"must be a dict of options ({', '.join(_WIDTH_KEYS)}) or True, got "
                                      f"{value!r:.80}", kind="type"))
        return None
    before = len(problems)
    _check_keys(value, _WIDTH_KEYS, path, problems)
    base = _resolve_base(value, path, problems)
    kind = _optimizer_kind(value.get("optimizer", "auto"), spec, (*path, "optimizer"), problems)
    readout = _patterns(value.get("readout", ()), (*path, "readout"), problems)
    scale_wd = _flag(value, "scale_weight_decay", True, path, problems)
    scale_eps = _flag(value, "scale_eps", False, path, problems)
    eps = _eps(paramwise_cfg, spec, kind, path, problems) if scale_eps else None
    if spec is not None and spec.base_lr is None and "lr" not in spec.kwargs:
        problems.append(Problem(path, "scales lr, but the optimizer config has no lr: set lr"))
    if len(problems) > before or base is None or kind is None:
        return None
    return WidthScalingRule(base, kind, readout, scale_wd, eps, path)


def _optimizer_kind(
    value: Any, spec: OptimizerSpec | None, path: tuple[str, ...], problems: list[Problem]
) -> str | None:
    if value in ("adam", "sgd"):
        return str(value)
    if value != "auto":
        problems.append(Problem(path, f"must be 'auto', 'adam' or 'sgd', got {safe_repr(value)}"))
        return None
    if spec is None:
        return None  # the optimizer config has its own problem
    names = {getattr(c, "__name__", "") for c in getattr(spec.cls, "__mro__", (spec.cls,))}
    if names & SGD_LIKE:
        return "sgd"
    if names & ADAM_LIKE:
        return "adam"
    problems.append(Problem(path, (
        f"cannot tell whether {spec.type_name} scales like Adam or like SGD: set optimizer='adam' (updates "
        "normalised entry by entry: Adam, RMSprop, Adagrad, Lion, ...) or optimizer='sgd' (the gradient, with "
        "momentum)")))
    return None


def _eps(
    paramwise_cfg: Mapping[str, Any], spec: OptimizerSpec | None, kind: str | None, path: tuple[str, ...],
    problems: list[Problem],
) -> float | None:
    where = (*path, "scale_eps")
    if kind == "sgd":
        problems.append(Problem(where, "is for Adam-like optimizers (SGD has no eps); remove it"))
        return None
    if spec is None:
        return None
    eps = spec.kwargs.get("eps", optimizer_default(spec.cls, "eps", None))
    if not checks.is_finite_real(eps):  # an eps the optimizer config reports itself gets this second note
        problems.append(Problem(where, f"needs a finite number eps, but {spec.type_name}'s eps is {safe_repr(eps)}"))
        return None
    custom = paramwise_cfg.get("custom_keys")
    if isinstance(custom, Mapping) and any(isinstance(v, Mapping) and "eps" in v for v in custom.values()):
        # the param stage sets eps from the optimizer's value, which would undo a custom key's eps
        problems.append(Problem(where, "cannot be combined with custom keys that set eps yet; "
                                       "set eps in the optimizer config instead"))
        return None
    return float(eps)


# ------------------------------------------------------------------------------------------ base shapes
def _resolve_base(cfg: Mapping[str, Any], path: tuple[str, ...], problems: list[Problem]) -> BaseShapes | None:
    """The base shapes a config names (``base_shapes`` or ``base_model``, with an optional
    ``delta_model``), or the model's ``infshape`` when it names none; None after a problem."""
    given = [k for k in ("base_shapes", "base_model") if cfg.get(k) is not None]
    if len(given) > 1:
        problems.append(Problem((*path, "base_model"), "and base_shapes both give the base; keep one"))
        return None
    if cfg.get("delta_model") is not None and "base_model" not in given:
        problems.append(Problem((*path, "delta_model"), "needs base_model (mup's make_base_shapes(base, delta))"))
        return None
    if not given:
        return BaseShapes("the parameters' infshape")
    if given[0] == "base_shapes":
        return _base_shapes(cfg["base_shapes"], (*path, "base_shapes"), problems)
    base = _model_shapes(cfg["base_model"], (*path, "base_model"), problems)
    if base is None:
        return None
    label = _model_label(cfg["base_model"])
    if cfg.get("delta_model") is None:
        return BaseShapes(f"base_model {label}", base, fixed_if_same=True)
    delta = _model_shapes(cfg["delta_model"], (*path, "delta_model"), problems)
    if delta is None:
        return None
    if set(delta) != set(base) or any(len(delta[n]) != len(base[n]) for n in base):
        problems.append(Problem((*path, "delta_model"), (
            f"has other parameters or shapes than base_model {label}: build both from one model function, "
            "changing only the widths")))
        return None
    # mup's make_base_shapes: a dimension is a width when base and delta differ in it
    dims = {n: tuple(b if b != d else None for b, d in zip(base[n], delta[n])) for n in base}
    return BaseShapes(f"base_model {label} with delta_model", dims, fixed_if_same=False)


def _model_label(cfg: Any) -> str:
    return repr(cfg.get("type") if isinstance(cfg, Mapping) else cfg)


def _model_shapes(cfg: Any, path: tuple[str, ...], problems: list[Problem]) -> dict[str, Dims] | None:
    """The parameter shapes of a model from ``paramwise.MODELS`` (built on the meta device: no memory)."""
    from paramwise.models import MODELS

    if isinstance(cfg, str):
        cfg = {"type": cfg}
    if not isinstance(cfg, Mapping) or not isinstance(cfg.get("type"), str):
        problems.append(Problem(path, (
            f"must be dict(type=NAME, **kwargs) naming a model in paramwise.MODELS, got {cfg!r:.80}; register "
            "your model function with @paramwise.MODELS.register_module()"), kind="type"))
        return None
    try:
        try:
            with torch.device("meta"):
                model = MODELS.build(dict(cfg))
        except Exception:  # a model that computes with its tensors while it is built: build it for real
            model = MODELS.build(dict(cfg))
    except Exception as e:
        problems.append(Problem(path, f"cannot be built: {type(e).__name__}: {e}"))
        return None
    if not isinstance(model, nn.Module):
        problems.append(Problem(path, f"built a {type(model).__name__}, not a torch.nn.Module"))
        return None
    root = unwrap_model(model)
    return {n: tuple(int(s) for s in p.shape) for n, p in named_parameters(root)}


def _base_shapes(value: Any, path: tuple[str, ...], problems: list[Problem]) -> BaseShapes | None:
    if isinstance(value, (str, os.PathLike)):
        loaded = _read_base_shapes(os.fspath(value), path, problems)
        if loaded is None:
            return None
        return BaseShapes(f"base_shapes {safe_repr(os.fspath(value))}", loaded, fixed_if_same=False)
    if isinstance(value, Mapping):
        shapes = _check_shapes(value, path, problems)
        return None if shapes is None else BaseShapes("base_shapes", shapes, fixed_if_same=True)
    problems.append(Problem(path, (
        f"must be the path of a base-shapes file (mup.save_base_shapes) or a dict of parameter name -> base shape, "
        f"got {type(value).__name__}"), kind="type"))
    return None


def _read_base_shapes(filename: str, path: tuple[str, ...], problems: list[Problem]) -> dict[str, Dims] | None:
    """A base-shapes file as mup writes it: YAML, ``name: [base size or null per dimension]``."""
    try:
        import yaml
    except ImportError:
        problems.append(Problem(path, "is a YAML file (mup's format); reading it needs PyYAML: "
                                      "pip install paramwise[yaml]"))
        return None
    try:
        with open(filename, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except OSError as e:
        problems.append(Problem(path, f"cannot be read: {e.strerror or e} ({safe_repr(filename)}; relative "
                                      f"paths are from "
                                      f"{safe_repr(os.getcwd())})"))
        return None
    except ValueError as e:  # a NUL byte in the path
        problems.append(Problem(path, f"is not a usable file path ({e}): {safe_repr(filename)}"))
        return None
    except yaml.YAMLError as e:
        problems.append(Problem(path, f"is not a base-shapes file (YAML): {e}"))
        return None
    if not isinstance(data, Mapping):
        problems.append(Problem(path, f"{safe_repr(filename)} holds {type(data).__name__}, not a mapping of parameter "
                                      "names to base shapes (write it with mup.save_base_shapes)"))
        return None
    return _check_shapes(data, path, problems)


def _check_shapes(data: Mapping[Any, Any], path: tuple[str, ...], problems: list[Problem]) -> dict[str, Dims] | None:
    out: dict[str, Dims] = {}
    bad = []
    for name, dims in data.items():
        ok = isinstance(name, str) and isinstance(dims, (list, tuple)) and all(
            d is None or (isinstance(d, int) and not isinstance(d, bool) and d > 0) for d in dims)
        if not ok:
            bad.append(f"{safe_str(name)}: {safe_repr(dims, 40)}")
            continue
        out[name] = tuple(dims)
    if bad:
        problems.append(Problem(path, (
            f"gives shapes that are not lists of positive sizes (or null for fixed dimensions): {short_list(bad)}")))
        return None
    return out


# ------------------------------------------------------------------------------------------ scale_rules
@dataclass(frozen=True, repr=False)
class ScaleRule:
    """One ``scale_rules`` entry: parameters whose name ``match`` finds get its multipliers."""

    index: int
    match: str | None
    lr_mult: Expression | None
    decay_mult: Expression | None
    num_layers: int | None = None
    regex: re.Pattern[str] | None = field(default=None, compare=False)

    def __repr__(self) -> str:
        return f"scale_rules[{self.index}]"

    @property
    def names(self) -> frozenset[str]:
        return frozenset().union(*(e.names for e in (self.lr_mult, self.decay_mult) if e is not None))


@dataclass(frozen=True, repr=False)
class ScaleRules:
    """``paramwise_cfg['scale_rules']``: every matching entry multiplies (they compose, in order)."""

    rules: tuple[ScaleRule, ...]
    base: BaseShapes | None  # None: no rule reads the base shape
    path: tuple[str, ...] = ("optimizer", "paramwise_cfg", "scale_rules")
    stage: ClassVar[str] = "param"

    def __repr__(self) -> str:
        return "scale_rules"

    def bind(self, model: nn.Module) -> Callable[[str, torch.Tensor, nn.Module], tuple[Factor, ...]]:
        root = unwrap_model(model)
        widths = self.base.width_shapes(root, self.path) if self.base is not None else {}
        names = [n for n, _ in named_parameters(root)]
        counts = {rule.index: self._num_layers(rule, names) for rule in self.rules if rule.names & _LAYER_VARIABLES}

        def factors(name: str, param: torch.Tensor, module: nn.Module) -> tuple[Factor, ...]:
            out: list[Factor] = []
            for rule in self.rules:
                found = rule.regex.search(name) if rule.regex is not None else None
                if rule.regex is not None and found is None:
                    continue
                variables = self._variables(rule, name, param, found, widths, counts)
                for key, expr in (("lr", rule.lr_mult), ("weight_decay", rule.decay_mult)):
                    if expr is not None:
                        out.append(self._factor(rule, key, expr, variables, name))
            return tuple(out)

        return factors

    def _where(self, rule: ScaleRule, key: str) -> tuple[str, ...]:
        return (*self.path, str(rule.index), "lr_mult" if key == "lr" else "decay_mult")

    def _factor(self, rule: ScaleRule, key: str, expr: Expression, variables: Mapping[str, float], name: str) -> Factor:
        try:
            value = expr(variables)
        except ExpressionError as e:
            raise ConfigError([Problem(self._where(rule, key), f"{e.text} {e.message} for parameter "
                                                               f"{safe_repr(name)}")],
                              title="scale rule") from None
        if value < 0:
            raise ConfigError([Problem(self._where(rule, key), (
                f"{expr.text} gives {value:g} for parameter {safe_repr(name)}; a multiplier must be >= 0"))],
                title="scale rule")
        shown = ", ".join(f"{n}={format_value(variables[n])}" for n in sorted(expr.names))
        note = expr.text if expr.constant else f"{expr.text} with {shown}"
        return Factor(key, "mult", value, repr(rule), note)

    def _variables(
        self,
        rule: ScaleRule,
        name: str,
        param: torch.Tensor,
        found: re.Match[str] | None,
        widths: Mapping[int, WidthShape],
        counts: Mapping[int, int],
    ) -> dict[str, float]:
        shape = tuple(param.shape)
        fan_in, fan_out = _fans(shape)
        values: dict[str, float] = {"fan_in": fan_in, "fan_out": fan_out, "ndim": len(shape),
                                    "numel": math.prod(shape)}
        used = rule.names
        if used & _LAYER_VARIABLES:
            values["layer"] = self._layer(rule, found, name)
            values["num_layers"] = counts[rule.index]
        if used & _BASE_VARIABLES:
            width = widths[id(param)]
            base_in, base_out = _fans(width.base_shape)
            values.update(base_fan_in=base_in, base_fan_out=base_out, base_numel=math.prod(width.base_shape),
                          width_mult=width.width_mult)
        return values

    def _layer(self, rule: ScaleRule, found: re.Match[str] | None, name: str) -> int:
        text = found.group(1) if found is not None else None
        if text is None or not text.isdigit():
            raise ConfigError([Problem((*self.path, str(rule.index), "match"), (
                f"{safe_repr(rule.match)} captured {safe_repr(text)} from {safe_repr(name)}, not a layer index: "
                f"make the first group "
                r"capture the number alone, e.g. r'blocks\.(\d+)\.'"))], title="scale rule")
        return int(text)

    def _num_layers(self, rule: ScaleRule, names: Sequence[str]) -> int:
        if rule.num_layers is not None:
            return rule.num_layers
        layers = [self._layer(rule, m, n) for n in names if rule.regex is not None
                  for m in [rule.regex.search(n)] if m is not None]
        return max(layers, default=-1) + 1


@PARAM_RULE_OPTIONS.register_module(name="scale_rules")
def scale_rules_option(
    value: Any, paramwise_cfg: Mapping[str, Any], spec: OptimizerSpec | None, path: tuple[str, ...],
    problems: list[Problem],
) -> ScaleRules | None:
    """``scale_rules=[dict(match=regex, lr_mult=expr, decay_mult=expr, num_layers=N), ...]``, or
    ``dict(rules=[...], base_shapes=... | base_model=...)`` when the expressions read the base shape."""
    before = len(problems)
    base_cfg: Mapping[str, Any] = {}
    rules_path = path
    if isinstance(value, Mapping):
        _check_keys(value, ("rules", *_BASE_KEYS), path, problems)
        base_cfg, value, rules_path = value, value.get("rules"), (*path, "rules")
    if not isinstance(value, (list, tuple)) or not value:
        problems.append(Problem(rules_path, (
            "must be a non-empty list of dict(match=regex, lr_mult=expr, decay_mult=expr), e.g. "
            "[dict(match=r'\\.weight$', lr_mult='base_fan_in / fan_in')]"), kind="type"))
        return None
    rules = [r for i, entry in enumerate(value) if (r := _scale_rule(i, entry, spec, (*rules_path, str(i)), problems))]
    if len(problems) > before:
        return None
    base = None
    if any(rule.names & _BASE_VARIABLES for rule in rules):
        base = _resolve_base(base_cfg, path, problems)
        if base is None:
            return None
    elif any(base_cfg.get(k) is not None for k in _BASE_KEYS):
        where = (*path, next(k for k in _BASE_KEYS if base_cfg.get(k) is not None))
        problems.append(Problem(where, "is given, but no expression reads the base shape (base_fan_in, "
                                       "base_fan_out, base_numel, width_mult); remove it"))
        return None
    return ScaleRules(tuple(rules), base, rules_path)


def _scale_rule(
    index: int, entry: Any, spec: OptimizerSpec | None, path: tuple[str, ...], problems: list[Problem]
) -> ScaleRule | None:
    if not isinstance(entry, Mapping):
        problems.append(Problem(path, f"must be a dict(match=..., lr_mult=..., decay_mult=...), got {entry!r:.80}",
                                kind="type"))
        return None
    before = len(problems)
    _check_keys(entry, _RULE_KEYS, path, problems)
    match, regex = entry.get("match"), None
    if match is not None:
        if not isinstance(match, str):
            problems.append(Problem((*path, "match"), f"must be a regular expression string, got {safe_repr(match)}"))
        else:
            try:
                regex = re.compile(match)
            except re.error as e:
                problems.append(Problem((*path, "match"), f"is not a valid regular expression: {e}"))
    num_layers = entry.get("num_layers")
    problems += checks.integer(num_layers, (*path, "num_layers"), low=1, high=_MAX_LAYERS, optional=True)
    exprs: dict[str, Expression | None] = {}
    for key, base in (("lr_mult", "lr"), ("decay_mult", "weight_decay")):
        raw = entry.get(key)
        expr = exprs[key] = None if raw is None else check_expression(raw, SCALE_VARIABLES, (*path, key), problems)
        if expr is not None and expr.constant:  # a negative constant is wrong for every parameter: say so now
            problems += checks.real(expr(), (*path, key), low=0, meaning="a multiplier")
        if raw is not None and spec is not None and base not in spec.kwargs and (
                spec.base_lr if base == "lr" else spec.base_wd) is None:
            problems.append(Problem((*path, key), f"needs a base {base}: set {base} in the optimizer config"))
    if entry.get("lr_mult") is None and entry.get("decay_mult") is None:
        problems.append(Problem(path, "sets neither lr_mult nor decay_mult, so it does nothing"))
    rule = ScaleRule(index, match, exprs["lr_mult"], exprs["decay_mult"], num_layers, regex)
    if len(problems) == before and rule.names & _LAYER_VARIABLES and (regex is None or regex.groups < 1):
        problems.append(Problem((*path, "match"), (
            r"must capture the layer index in its first group for 'layer'/'num_layers', e.g. r'blocks\.(\d+)\.'")))
    return rule if len(problems) == before else None


# ------------------------------------------------------------------------------------------ small checks
def _check_keys(cfg: Mapping[Any, Any], known: Sequence[str], path: tuple[str, ...], problems: list[Problem]) -> None:
    for key in cfg:
        if key not in known:
            hint = did_you_mean(safe_str(key), known) or f" Known keys: {', '.join(known)}"
            problems.append(Problem((*path, safe_str(key)), f"is not an option here.{hint}"))


def _flag(cfg: Mapping[str, Any], key: str, default: bool, path: tuple[str, ...], problems: list[Problem]) -> bool:
    value = cfg.get(key, default)
    found = checks.boolean(value, (*path, key))
    problems += found
    return default if found else value


def _patterns(value: Any, path: tuple[str, ...], problems: list[Problem]) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        problems.append(Problem(path, f"must be a list of regular expressions (parameter names), got {value!r:.80}"))
        return ()
    for pattern in value:
        try:
            re.compile(pattern)
        except re.error as e:
            problems.append(Problem(path, f"{safe_repr(pattern)} is not a valid regular expression: {e}"))
    return tuple(value)
