"""Every numeric option of every non-schedule entry point, given a bad number, ends in a ``ConfigError`` at its path.

The bad values: nan, +-inf, integers too large for a float, negative numbers, bools, numbers in quotes and
None (where None does not mean "unset"). The options come from the code's own tables where there is one
(``ARGUMENT_CHECKS``, ``LR_MULTS``/``DECAY_MULTS``, ``PARAM_RULE_OPTIONS``, torch's GradScaler signature),
so a new option is covered, or a test here says it needs an entry. Also: the checks themselves
(:mod:`paramwise.checks`), and state loading never carrying a NaN over from a checkpoint.
"""

from __future__ import annotations

import copy
import inspect
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import paramwise
from paramwise import ConfigError, ParamwiseError, checks
from paramwise.optimizers import OPTIMIZERS, optimizer_arguments, optimizer_default
from paramwise.plan.spec import ARGUMENT_CHECKS, DECAY_MULTS, LR_MULTS, PARAM_RULE_OPTIONS
from strategies import same

Path = tuple[str, ...]
PW: Path = ("optimizer", "paramwise_cfg")


# ------------------------------------------------------------------------------------------ bad values
@dataclass(frozen=True)
class Bad:
    """A drawn bad value and its kind: 'nan', 'inf', '-inf', 'huge', 'negative', 'bool', 'text' or 'none'."""

    kind: str
    value: Any


bad_values = st.one_of(
    st.sampled_from([Bad("nan", math.nan), Bad("inf", math.inf), Bad("-inf", -math.inf)]),
    st.integers(min_value=2**1024, max_value=10**400).flatmap(
        lambda v: st.sampled_from([Bad("huge", v), Bad("huge", -v)])),
    st.floats(max_value=-1e-9, allow_infinity=False, allow_nan=False).map(lambda v: Bad("negative", v)),
    st.integers(max_value=-1).map(lambda v: Bad("negative", v)),
    st.booleans().map(lambda v: Bad("bool", v)),
    st.sampled_from(["1e-3", "0.5", " 2", "1"]).map(lambda v: Bad("text", v)),
    st.just(Bad("none", None)),
)


@dataclass(frozen=True)
class Option:
    """One numeric option: where it sits, how to run an entry point with a value there, what it accepts."""

    name: str
    path: Path
    run: Callable[[Any], Any]
    accepts: frozenset[str] = frozenset()  # kinds of Bad that are valid here (None meaning "unset", ...)
    valid: Any = 0.5  # a value it takes

    def __repr__(self) -> str:
        return self.name


class Model(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.ModuleList([nn.Linear(4, 4), nn.Linear(4, 4)])  # layer decay's built-in family
        self.norm = nn.LayerNorm(4)
        self.head = nn.Linear(4, 2)


class Depths(Model):
    """A model with mmpretrain's get_layer_depth."""

    def get_layer_depth(self, name: str) -> tuple[int, int]:
        return (0 if name.startswith("blocks") else 2), 3


def _finite_groups(optimizer: torch.optim.Optimizer) -> None:
    """No group holds a non-finite number: nothing bad was built silently."""
    for group in optimizer.param_groups:
        for key, value in group.items():
            numbers = value if isinstance(value, tuple) else (value,)
            for number in numbers:
                if isinstance(number, float):
                    assert math.isfinite(number), (key, group[key])


def _build(cfg: dict[str, Any], model: nn.Module | None = None) -> Any:
    optimizer = paramwise.build_optimizer(model or Model(), cfg)
    _finite_groups(optimizer)
    return optimizer


def _set(cfg: Any, path: Path, value: Any) -> Any:
    """A copy of ``cfg`` with ``value`` at ``path``; in a list, ``'[1]'`` or ``'1'`` is an index."""
    cfg = copy.deepcopy(cfg)
    node = cfg
    for key in path[:-1]:
        node = node[int(key.strip("[]"))] if isinstance(node, list) else node[key]
    if isinstance(node, list):
        node[int(path[-1].strip("[]"))] = value
    else:
        node[path[-1]] = value
    return cfg


# ------------------------------------------------------------------------------- optimizer options
_CANDIDATES = ("SGD", "AdamW", "RMSprop", "Adagrad", "Adadelta", "Adamax", "NAdam", "RAdam")


def _optimizer_for(key: str) -> str | None:
    """A torch optimizer whose signature takes ``key`` with a default of the shape ARGUMENT_CHECKS checks."""
    for name in _CANDIDATES:
        cls = OPTIMIZERS.get(name)
        _, named, _ = optimizer_arguments(cls)
        default = optimizer_default(cls, key, None)
        if key not in named:
            continue
        shape_ok = (isinstance(default, (tuple, list)) and len(default) == 2) if ARGUMENT_CHECKS[key] == "betas" \
            else checks.is_finite_real(default)
        if shape_ok:
            return name
    return None


def _argument_options() -> list[Option]:
    """Each numeric argument of ARGUMENT_CHECKS, in the optimizer config and in a custom key."""
    out = []
    for key, check in ARGUMENT_CHECKS.items():
        if check == "bool":
            continue
        name = _optimizer_for(key)
        assert name is not None, f"no torch optimizer takes {key!r}: add one to _CANDIDATES"
        base: dict[str, Any] = {"type": name, "lr": 0.1, "weight_decay": 0.01}
        if check == "betas":
            base["betas"] = [0.9, 0.99]
        places = [(key,)] if check == "number" else [(key, "[0]"), (key, "[1]")]
        for place in places:
            out.append(Option(f"optimizer.{'.'.join(place)}", ("optimizer", *place),
                              lambda v, base=base, place=place: _build(_set(base, place, v))))
            in_key = (*PW, "custom_keys", "head", *place)
            custom = {**base, "paramwise_cfg": {"custom_keys": {"head": {key: base.get(key, 0.5)}}}}
            out.append(Option(f"custom_keys.{'.'.join(place)}", in_key,
                              lambda v, custom=custom, place=place: _build(_set(custom, ("paramwise_cfg", "custom_keys",
                                                                                       "head", *place), v))))
    return out


def _multiplier_options() -> list[Option]:
    """paramwise_cfg's *_mult options and a custom key's lr_mult/decay_mult; None leaves each unset."""
    base = {"type": "SGD", "lr": 0.1, "weight_decay": 0.01}
    out = [Option(f"paramwise_cfg.{key}", (*PW, key), lambda v, key=key: _build({**base, "paramwise_cfg": {key: v}}),
                  frozenset({"none"}))
           for key in (*LR_MULTS, *DECAY_MULTS)]
    for key in ("lr_mult", "decay_mult"):
        out.append(Option(f"custom_keys.{key}", (*PW, "custom_keys", "head", key),
                          lambda v, key=key: _build({**base, "paramwise_cfg": {"custom_keys": {"head": {key: v}}}}),
                          frozenset({"none"})))
    return out


#: each registered paramwise_cfg rule option: a valid value, and its numeric options with a valid value around
RULE_OPTIONS: dict[str, tuple[Any, dict[Path, Any]]] = {
    "layer_decay": (0.5, {("rate",): {"rate": 0.5}, ("min_scale",): {"rate": 0.5}}),
    "scale_rules": ([{"match": "weight", "lr_mult": 1.0}],
                    {("0", "lr_mult"): [{"match": "weight", "lr_mult": 1.0}],
                     ("0", "decay_mult"): [{"match": "weight", "decay_mult": 1.0}],
                     ("0", "num_layers"): [{"match": r"blocks\.(\d+)\.", "lr_mult": 1.0}]}),
    "width_scaling": (False, {}),  # no numeric options: shapes, patterns and flags
    "no_weight_decay": ("auto", {}),  # no numeric options: sources
}
#: what a rule option itself accepts besides a valid value: None (and False) leave it off; width_scaling=True and
#: no_weight_decay=True are its documented forms; an expression is any text
_RULE_ACCEPTS = {"width_scaling": {"bool"}, "no_weight_decay": {"bool"}}
_EXPRESSION_ACCEPTS = frozenset({"text", "none"})  # a formula is text; None leaves a multiplier out


def _rule_options() -> list[Option]:
    base = {"type": "SGD", "lr": 0.1, "weight_decay": 0.01}
    out = []
    for option in PARAM_RULE_OPTIONS.names():
        valid, numbers = RULE_OPTIONS.get(option, (None, {}))  # a new option: test_every_rule_option_is_listed
        out.append(Option(f"paramwise_cfg.{option}", (*PW, option),
                          lambda v, option=option: _build({**base, "paramwise_cfg": {option: v}}),
                          frozenset({"none", *_RULE_ACCEPTS.get(option, ())}), valid=valid))
        for place, around in numbers.items():
            accepts = _EXPRESSION_ACCEPTS if place[-1].endswith("_mult") else frozenset()
            if place[-1] == "num_layers":
                accepts = frozenset({"none"})
            out.append(Option(f"paramwise_cfg.{option}.{'.'.join(place)}", (*PW, option, *place),
                              lambda v, option=option, place=place, around=around: _build(
                                  {**base, "paramwise_cfg": {option: _set(around, place, v)}}),
                              accepts, valid=4 if place[-1] == "num_layers" else 0.5))
    return out


# ---------------------------------------------------------------------------- OpenMMLab constructors
_MM_VALID: dict[str, dict[str, Any]] = {
    "LearningRateDecayOptimizerConstructor": {"num_layers": 2, "decay_rate": 0.9},
    "LayerDecayOptimizerConstructor": {"num_layers": 2, "layer_decay_rate": 0.9},
    "LearningRateDecayOptimWrapperConstructor": {"layer_decay_rate": 0.9, "norm_decay_mult": 0.0,
                                                 "bias_decay_mult": 0.0, "flat_decay_mult": 0.0},
}


def _openmmlab_options() -> list[Option]:
    out = []
    for constructor, valid in _MM_VALID.items():
        for key in valid:
            def run(v: Any, constructor: str = constructor, valid: dict[str, Any] = valid, key: str = key) -> Any:
                cfg = {"type": "AdamW", "lr": 0.1, "weight_decay": 0.05, "constructor": constructor,
                       "paramwise_cfg": {**valid, key: v}}
                return paramwise.optimizer_constructor(cfg)

            accepts = frozenset({"none"}) if key.endswith("_mult") else frozenset()
            out.append(Option(f"{constructor}.{key}", (*PW, key), run, accepts, valid=valid[key]))
    return out


# --------------------------------------------------------------------------------- wrapper, clipping
_WRAPPER_OPTIMIZER = {"type": "SGD", "lr": 0.1}


def _wrap(cfg: dict[str, Any]) -> Any:
    wrapper = paramwise.build_optim_wrapper(Model(), {"optimizer": dict(_WRAPPER_OPTIMIZER), **cfg})
    _finite_groups(wrapper.optimizer)
    return wrapper


def _grad_scaler_numbers() -> list[str]:
    """torch's GradScaler arguments whose defaults are numbers (``enabled`` is a flag, ``device`` a name)."""
    params = inspect.signature(torch.amp.GradScaler.__init__).parameters.values()
    return [p.name for p in params if checks.is_finite_real(p.default)]


def _wrapper_options() -> list[Option]:
    amp = {"type": "AmpOptimWrapper", "dtype": "bfloat16"}
    wrapper: Path = ("optim_wrapper",)
    out = [
        Option("accumulative_counts", (*wrapper, "accumulative_counts"), lambda v: _wrap({"accumulative_counts": v}),
               valid=2),
        Option("loss_scale", (*wrapper, "loss_scale"), lambda v: _wrap({**amp, "loss_scale": v}),
               frozenset({"none"})),
    ]
    scaler = torch.amp.GradScaler.__init__
    for key in _grad_scaler_numbers():  # torch's own default is a valid value
        out.append(Option(f"loss_scale.{key}", (*wrapper, "loss_scale", key),
                          lambda v, key=key: _wrap({**amp, "loss_scale": {key: v}}),
                          valid=inspect.signature(scaler).parameters[key].default))
    clip = (*wrapper, "clip_grad")
    for kind, key in (("norm", "max_norm"), ("norm", "norm_type"), ("value", "clip_value")):
        bound = "max_norm" if kind == "norm" else "clip_value"
        out.append(Option(f"clip_grad.{key}", (*clip, key),
                          lambda v, kind=kind, key=key, bound=bound: _wrap(
                              {"clip_grad": {"type": kind, bound: 1.0, key: v}}),
                          frozenset({"inf"}) if key == "norm_type" else frozenset()))  # inf: the max norm
    out.append(Option("clip_grad.groups[0]", (*clip, "groups[0]"),
                      lambda v: _wrap({"clip_grad": {"max_norm": 1.0, "per_group": True, "groups": [v]}}),
                      frozenset({"text"}), valid="head"))  # text is a name substring: '1' selects blocks.1
    return out


OPTIONS = [*_argument_options(), *_multiplier_options(), *_rule_options(), *_openmmlab_options(),
           *_wrapper_options()]


# ------------------------------------------------------------------------------------ the property
def _outcome(option: Option, value: Any) -> Any:
    """The result of running ``option`` with ``value``, or the paramwise error it raised (nothing else)."""
    snapshot = copy.deepcopy(value)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return option.run(value)
    except ParamwiseError as e:
        return e
    finally:
        assert same(value, snapshot)


def _check_bad(option: Option, bad: Bad) -> None:
    result = _outcome(option, bad.value)
    if bad.kind in option.accepts:
        return  # valid here: built, or refused for another reason, but by paramwise
    assert isinstance(result, ConfigError), f"{option.name}={bad.value!r:.60} gave {result!r:.300}"
    paths = {p.path for p in result.problems}
    assert option.path in paths, f"{option.name}={bad.value!r:.60}: {option.path} not in {paths}"


#: the values the issue names, each tried on every option
NAMED = [Bad("nan", math.nan), Bad("inf", math.inf), Bad("-inf", -math.inf), Bad("huge", 10**400),
         Bad("negative", -1), Bad("negative", -0.5), Bad("bool", True), Bad("text", "1e-3"), Bad("none", None)]


@pytest.mark.parametrize("option", OPTIONS, ids=repr)
def test_named_bad_values_are_config_errors_at_their_path(option: Option) -> None:
    for bad in NAMED:
        _check_bad(option, bad)


@settings(max_examples=max(10, settings().max_examples // 4))
@given(bad=bad_values)
@pytest.mark.parametrize("option", OPTIONS, ids=repr)
def test_a_bad_number_is_a_config_error_at_its_path(option: Option, bad: Bad) -> None:
    _check_bad(option, bad)


@pytest.mark.parametrize("option", OPTIONS, ids=repr)
def test_each_option_builds_with_a_valid_value(option: Option) -> None:
    """The options above are real: each one's own config, with a valid value, builds."""
    result = _outcome(option, option.valid)
    assert not isinstance(result, ParamwiseError), result


def test_every_rule_option_is_listed() -> None:
    """A new paramwise_cfg rule option says here which of its options are numbers (none is an answer too)."""
    assert set(PARAM_RULE_OPTIONS.names()) == set(RULE_OPTIONS)


def test_scalar_tensor_lr_is_still_valid() -> None:
    optimizer = _build({"type": "AdamW", "lr": torch.tensor(1e-3), "paramwise_cfg": {"bias_lr_mult": 2.0}})
    assert isinstance(optimizer.param_groups[0]["lr"], torch.Tensor)
    with pytest.raises(ConfigError, match=r"optimizer -> lr: must be a finite number >= 0, got nan"):
        _build({"type": "AdamW", "lr": torch.tensor(math.nan)})


@pytest.mark.parametrize("constructor, key", [("LearningRateDecayOptimizerConstructor", "decay_rate"),
                                              ("LearningRateDecayOptimWrapperConstructor", "layer_decay_rate")])
def test_a_decay_rate_whose_powers_overflow_is_a_config_error(constructor: str, key: str) -> None:
    own = {**_MM_VALID[constructor], key: 1e300}
    cfg = {"type": "AdamW", "lr": 0.1, "weight_decay": 0.05, "constructor": constructor, "paramwise_cfg": own}
    model = Depths() if "Wrapper" in constructor else _segmentor()
    with pytest.raises(ConfigError, match=key) as info:
        paramwise.build_optimizer(model, cfg)
    assert (*PW, key) in {p.path for p in info.value.problems}


def _segmentor() -> nn.Module:
    """A model whose backbone mmsegmentation's constructor places (a BEiT by its class name)."""

    class BEiT(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.patch_embed = nn.Linear(2, 2)
            self.layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(2)])

    class Segmentor(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.backbone = BEiT()

    return Segmentor()


# ------------------------------------------------------------------------------------- state loading
@given(bad=bad_values, where=st.sampled_from(["lr", "initial_lr"]))
def test_state_loading_never_carries_a_bad_scheduled_value(bad: Bad, where: str) -> None:
    """A checkpoint whose scheduled lr (or its base) is no finite number: the config's lr, and a note."""
    model = Model()
    cfg = {"type": "SGD", "lr": 0.1, "momentum": 0.9}
    optimizer = paramwise.build_optimizer(model, cfg)
    saved = copy.deepcopy(optimizer.state_dict())
    for group in saved["param_groups"]:
        group["initial_lr"], group["lr"] = 0.2, 0.05
        group[where] = bad.value
    fresh = paramwise.build_optimizer(model, {**cfg, "lr": 0.1})
    for group in fresh.param_groups:
        group["initial_lr"] = 0.1
    try:
        report = paramwise.load_optimizer_state(fresh, saved)
    except ParamwiseError:
        return
    _finite_groups(fresh)
    assert all(group["lr"] >= 0 for group in fresh.param_groups)
    assert any("scheduled lr" in line for line in report.unmapped), report.lines()


# ---------------------------------------------------------------------------------------- the checks
@pytest.mark.parametrize("value, text", [
    (math.nan, "must be a finite number >= 0, got nan"),
    (10**400, "which is too large for a float"),
    (True, "got True (a bool, not a number)"),
    ("1e-3", "got the text '1e-3': write 1e-3 without quotes"),
    ("inf", "got the text 'inf'"),
    (None, "got None (empty)"),
    (-1, "must be a number >= 0, got -1"),
])
def test_real_says_what_is_wrong(value: Any, text: str) -> None:
    (problem,) = checks.real(value, ("a", "b"), low=0)
    assert problem.path == ("a", "b") and text in problem.message
    assert "without quotes" not in problem.message or value == "1e-3"


def test_real_kinds_bounds_and_optional() -> None:
    assert checks.real(math.inf, ("x",))[0].kind == "value"
    assert checks.real("1", ("x",))[0].kind == "type"
    assert checks.real(None, ("x",), optional=True) == []
    assert checks.real(1.0, ("x",), low=0, high=1, high_open=True)[0].message == "must be a number in [0, 1), got 1.0"
    assert checks.real(0, ("x",), low=0, low_open=True, meaning="a scale")[0].message == (
        "must be a number > 0 (a scale), got 0")
    assert checks.real(2**1000, ("x",)) == []


def test_integer_shows_its_bounds_exactly() -> None:
    (problem,) = checks.integer(0, ("n",), low=1, high=2**31 - 1)
    assert problem.message == "must be a whole number in [1, 2147483647], got 0"
    (problem,) = checks.integer(2.0, ("n",))
    assert problem.message == "must be a whole number, got 2.0" and problem.kind == "type"


def test_one_of_and_known_keys() -> None:
    (problem,) = checks.one_of("nrom", ("k",), ("norm", "value"))
    assert problem.message == "must be one of 'norm', 'value', got 'nrom'. Did you mean 'norm'?"
    (problem,) = checks.one_of("x" * 300, ("k",), ("norm",))
    assert problem.message.endswith("....")  # a shortened repr keeps its dots, then the sentence's
    (problem,) = checks.known_keys({"init_scal": 1}, ("s",), ["init_scale"], what="GradScaler")
    assert problem.path == ("s", "init_scal") and "Did you mean 'init_scale'?" in problem.message


def test_real_value() -> None:
    assert checks.real_value(3) == 3.0
    assert [checks.real_value(v) for v in (math.nan, 10**400, True, "1", None)] == [None] * 5
