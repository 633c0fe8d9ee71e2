"""Hardening of values: registries, build_from_cfg and optimizer configs under generated bad input.

Every entry point ends in a result or a paramwise error that is also a ValueError, TypeError or
KeyError and names where the problem is; no input is ever changed. The fuzz tests run the shared
hypothesis profile (tests/conftest.py: 60 examples), and ``PARAMWISE_FUZZ_EXAMPLES=10000`` makes a long run.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from paramwise import ParamwiseError, Registry, build_from_cfg, build_optimizer, plan_params
from strategies import check_outcome

BUILTINS = (ValueError, TypeError, KeyError)


class BadRepr:
    """An object whose repr and str raise, as some half-initialised objects do."""

    def __repr__(self) -> str:
        raise RuntimeError("repr exploded")

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BadRepr)

    def __hash__(self) -> int:
        return 7


# ---------------------------------------------------------------------------------------- helpers
def _str_works(value: Any) -> bool:
    try:
        str(value)
    except Exception:
        return False
    return True


# ------------------------------------------------------------------------------------ strategies
def pick(items: list[Any]) -> st.SearchStrategy[Any]:
    """``sampled_from`` for values whose repr raises or is huge (hypothesis shows its elements)."""
    return st.integers(0, len(items) - 1).map(lambda i: items[i])


leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    pick([10**400, -(10**400), 10**5000, 2**63, -1, 0]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.binary(max_size=4),
    st.builds(bytearray, st.binary(max_size=4)),
    st.builds(BadRepr),
    pick([torch.tensor(0.1), torch.tensor([1.0, 2.0]), torch.tensor(3)]),
)
keys = st.one_of(
    st.text(max_size=8),
    st.sampled_from(["lr", "momentum", "betas", "eps", "type", "custom_keys", "bias_lr_mul", "weight_decay"]),
    st.integers(),
    st.none(),
    st.binary(max_size=3),
    st.tuples(st.integers(), st.text(max_size=2)),
    st.frozensets(st.integers(), max_size=2),
    st.builds(BadRepr),
)
values = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.tuples(inner, inner),
        st.sets(st.integers(), max_size=3),
        st.dictionaries(keys, inner, max_size=3),
    ),
    max_leaves=8,
)


# ---------------------------------------------------------------------------------- build_from_cfg
def _mutate(value: Any) -> None:
    """Change every container reachable from ``value`` in place, as a careless target would."""
    if isinstance(value, list):
        for v in value:
            _mutate(v)
        value.append("mutated")
    elif isinstance(value, dict):
        for v in list(value.values()):
            _mutate(v)
        value["mutated"] = True
    elif isinstance(value, set):
        value.add("mutated")
    elif isinstance(value, bytearray):
        value.extend(b"!")
    elif isinstance(value, tuple):
        for v in value:
            _mutate(v)


class Mutator:
    """A target that mutates everything it is given."""

    def __init__(self, **kwargs: Any) -> None:
        for v in kwargs.values():
            _mutate(v)
        self.kwargs = kwargs


def strict(a: int = 0, b: Any = None) -> tuple[int, Any]:
    return a, b


def _registry() -> Registry:
    reg = Registry("fuzzed")
    reg.register_module(module=Mutator)
    reg.register_module(module=strict)
    reg.register_module(name="partial", module=functools.partial(strict, 1))
    return reg


# weighted by hand: hypothesis's one_of flattens its branches, and the leaves would swamp the rest
type_values = st.integers(0, 9).flatmap(lambda kind: (
    st.sampled_from(["Mutator", Mutator]) if kind < 6
    else st.sampled_from(["strict", "partial", "mutator", "Strict", "", "no.such:thing", "a..b"]) if kind < 8
    else st.sampled_from([strict, dict, len]) if kind == 8
    else leaves
))


@st.composite
def build_cfgs(draw: st.DrawFn) -> dict[Any, Any]:
    names = st.one_of(st.from_regex(r"[a-z]{1,3}", fullmatch=True), st.from_regex(r"[a-z]{1,3}", fullmatch=True), keys)
    cfg = draw(st.dictionaries(names, values, max_size=3))
    if draw(st.integers(0, 3)):
        cfg["type"] = draw(type_values)
    return cfg


@given(cfg=build_cfgs(), default_args=st.one_of(st.none(), st.dictionaries(keys, values, max_size=2), leaves))
def test_build_from_cfg_fuzz(cfg: Any, default_args: Any) -> None:
    reg = _registry()
    check_outcome(lambda: build_from_cfg(cfg, reg, default_args), (cfg, default_args), ("fuzzed",))


@given(name=st.one_of(keys, values), default=st.sampled_from([None, "d", ...]))
def test_registry_get_fuzz(name: Any, default: Any) -> None:
    reg = _registry()
    args = () if default is ... else (default,)
    check_outcome(lambda: reg.get(name, *args), (name, default), ("fuzzed", "registry"))


@given(name=st.one_of(st.none(), keys, values, st.lists(keys, max_size=3)), force=st.one_of(st.booleans(), leaves),
       module=st.one_of(st.sampled_from([strict, Mutator, functools.partial(strict, 2)]), leaves))
def test_register_module_fuzz(name: Any, force: Any, module: Any) -> None:
    reg = _registry()
    check_outcome(lambda: reg.register_module(name=name, force=force, module=module), (name, force))


# ------------------------------------------------------------------------ build_optimizer / plan_params
def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))


# per optimizer: a valid value and invalid values of each common argument it takes
VALID = {
    "SGD": {"momentum": [0.0, 0.9], "dampening": [0.0], "weight_decay": [0.0, 1e-4], "nesterov": [False]},
    "AdamW": {"betas": [(0.9, 0.999), [0.8, 0.95], (0.0, 0.5)], "eps": [1e-8, 0], "weight_decay": [0.01],
              "amsgrad": [False, True]},
    "RMSprop": {"alpha": [0.99], "eps": [1e-8], "momentum": [0.0, 0.5], "weight_decay": [0.0]},
}
INVALID = {
    "lr": [-1.0, math.nan, math.inf, 10**400, "0.1", "fast", None, [0.1], BadRepr(), torch.tensor([0.1, 0.2])],
    "weight_decay": [-math.inf, -0.1, math.nan, "x", 10**400, (1,)],
    "momentum": [-0.5, math.inf, "0.9", None, 10**400, BadRepr()],
    "dampening": [-1.0, "no", math.nan],
    "eps": [-1e-8, math.nan, "tiny", None],
    "alpha": [-0.1, math.inf, "a"],
    "betas": [(0.9,), (0.9, 1.0), (1.5, 0.9), (-0.1, 0.9), "ab", 0.9, (0.9, "x"), (0.9, 0.99, 0.1), None,
              (0.9, 10**400), {0.9, 0.99}],
    "nesterov": ["yes", 1, None],
    "amsgrad": ["no", 0, 2.0],
}


def _a_multiplier(value: Any) -> bool:
    """What a multiplier may be: a finite number >= 0, or a one-element floating tensor holding one (as torch
    takes a tensor lr, so that compiled steps do not recompile)."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1 or not value.is_floating_point():
            return False
        value = value.item()
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < math.inf


@st.composite
def optimizer_cfgs(draw: st.DrawFn) -> tuple[dict[Any, Any], tuple[str, ...]]:
    """An optimizer config and the texts its error must name (empty: the config is valid)."""
    family = draw(st.sampled_from(sorted(VALID)))
    cfg: dict[Any, Any] = {"type": family, "lr": draw(pick([0.1, 1e-3, 0, torch.tensor(0.01)]))}
    needles: list[str] = []
    for key in draw(st.lists(st.sampled_from(sorted(VALID[family])), unique=True, max_size=3)):
        cfg[key] = draw(pick(VALID[family][key]))
    if draw(st.integers(0, 3)) == 0:  # a bad value for an argument the optimizer takes
        key = draw(st.sampled_from(sorted(k for k in INVALID if k == "lr" or k in VALID[family])))
        cfg[key] = draw(pick(INVALID[key]))
        needles.append(f"optimizer -> {key}")
    if draw(st.integers(0, 5)) == 0:  # a key no optimizer takes, or a type that is not an optimizer
        if draw(st.booleans()):
            key = draw(keys.filter(lambda k: not isinstance(k, str) or k not in ("lr", "type", "weight_decay")))
            cfg[key] = draw(values)
            needles.append("optimizer ->")
        else:
            # only types whose str() works: constructors._split str()s it (see test_type_whose_str_raises)
            cfg["type"] = draw(st.one_of(st.sampled_from([dict, int, "Adamw", "", len]), leaves.filter(_str_works)))
            needles.append("optimizer ->")
    pw, pw_needles = draw(paramwise_cfgs(family, cfg))
    if pw is not None or draw(st.booleans()):
        cfg["paramwise_cfg"] = pw
    return cfg, (*needles, *pw_needles)


@st.composite
def paramwise_cfgs(draw: st.DrawFn, family: str, cfg: dict[Any, Any]) -> tuple[Any, list[str]]:
    if draw(st.integers(0, 3)) == 0:
        return None, []
    pw: dict[Any, Any] = {}
    needles: list[str] = []
    if draw(st.booleans()):
        pw["bias_lr_mult"] = draw(st.sampled_from([0.0, 2.0, None]))
    if "weight_decay" in cfg and draw(st.booleans()):
        pw["norm_decay_mult"] = draw(st.sampled_from([0.0, 1.0]))
    if draw(st.integers(0, 3)) == 0:
        key, value = draw(st.sampled_from(["bias_lr_mult", "frozen", "strict", "group_by"])), draw(values)
        pw[key] = value
        if value is not None and not (key == "bias_lr_mult" and _a_multiplier(value)):
            needles.append(f"paramwise_cfg -> {key}")
            if key == "frozen" and value in ("exclude", "include"):  # type: ignore[comparison-overlap]
                needles.pop()
            if key == "group_by" and value in ("hyperparams", "param"):  # type: ignore[comparison-overlap]
                needles.pop()
            if key == "strict" and isinstance(value, bool):
                needles.pop()
    if draw(st.integers(0, 3)) == 0:  # an unknown key: reported whatever its value, None included
        key = draw(st.one_of(st.sampled_from(["bias_lr_mul", "custom_key", "Frozen"]), keys).filter(
            lambda k: k not in ("custom_keys", "bias_lr_mult")))
        pw[key] = draw(st.one_of(st.none(), values))
        needles.append("paramwise_cfg ->")
    if draw(st.booleans()):
        custom: dict[Any, Any] = {}
        for name in draw(st.lists(st.sampled_from(["0", "1.bias", "2", "weight"]), unique=True, max_size=2)):
            entry: dict[Any, Any] = {}
            if draw(st.booleans()):
                entry["lr_mult"] = draw(st.sampled_from([0.0, 0.5, 3]))
            for key in draw(st.lists(st.sampled_from(sorted(VALID[family])), unique=True, max_size=2)):
                entry[key] = draw(pick(VALID[family][key]))
            if draw(st.integers(0, 3)) == 0:
                key = draw(st.sampled_from(sorted(k for k in INVALID if k == "lr" or k in VALID[family])))
                entry[key] = draw(pick([v for v in INVALID[key] if v is not None]))
                needles.append(f"custom_keys -> {name} -> {key}")
            custom[name] = entry
        if draw(st.integers(0, 4)) == 0:
            bad_key = draw(keys.filter(lambda k: not isinstance(k, str)))
            custom[bad_key] = draw(values)
            needles.append("custom_keys ->")
        pw["custom_keys"] = custom
    return pw, needles


def _exercise(entry: Callable[[nn.Module, Any], Any], cfg: dict[Any, Any], needles: tuple[str, ...]) -> None:
    model = _model()
    outcome = check_outcome(lambda: entry(model, cfg), cfg, needles, must_fail=bool(needles))
    if needles:
        assert isinstance(outcome, ParamwiseError)


@given(drawn=optimizer_cfgs())
def test_build_optimizer_fuzz(drawn: tuple[dict[Any, Any], tuple[str, ...]]) -> None:
    cfg, needles = drawn
    _exercise(build_optimizer, cfg, needles)


@given(drawn=optimizer_cfgs())
def test_plan_params_fuzz(drawn: tuple[dict[Any, Any], tuple[str, ...]]) -> None:
    cfg, needles = drawn
    _exercise(plan_params, cfg, needles)


@given(cfg=st.dictionaries(keys, values, max_size=4),
       pw=st.one_of(st.none(), st.dictionaries(keys, values, max_size=3)))
def test_optimizer_config_of_noise(cfg: dict[Any, Any], pw: Any) -> None:
    """Noise around a valid base: a result or a paramwise error, never anything else."""
    full = {**cfg, "type": "SGD", "lr": 0.1}
    if pw is not None:
        full["paramwise_cfg"] = pw
    model = _model()
    check_outcome(lambda: build_optimizer(model, full), full)


@pytest.mark.parametrize("entry", [build_optimizer, plan_params])
def test_valid_configs_still_build(entry: Callable[[nn.Module, Any], Any]) -> None:
    for cfg in (
        dict(type="SGD", lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4),
        dict(type="AdamW", lr=torch.tensor(1e-3), betas=(0.9, 0.95), eps=1e-8, amsgrad=True),
        dict(type="RMSprop", lr=1e-2, alpha=0.9, momentum=0.5,
             paramwise_cfg=dict(custom_keys={"0": dict(lr_mult=0.5, momentum=0.1)})),
        dict(type="Adafactor", lr=1e-2, eps=(None, 1e-3)),
    ):
        assert not isinstance(check_outcome(lambda cfg=cfg: entry(_model(), cfg), cfg), ParamwiseError)


# ------------------------------------------------------------------------- pinned examples
@pytest.mark.parametrize(
    ("cfg", "needle", "builtin"),
    [
        (dict(type="SGD", lr=10**400), "optimizer -> lr: must be a finite number >= 0", ValueError),
        (dict(type="SGD", lr=0.1, weight_decay=-(10**400)), "optimizer -> weight_decay", ValueError),
        (dict(type="SGD", lr=0.1, paramwise_cfg=dict(bias_lr_mult=10**5000)), "too large for a float", ValueError),
        (dict(type="SGD", lr=0.1, momentum=-1), "optimizer -> momentum", ValueError),
        (dict(type="SGD", lr=0.1, momentum="0.9"), "write 0.9 without quotes", ValueError),
        (dict(type="SGD", lr=0.1, momentum=None), "remove the key to use the default 0", ValueError),
        (dict(type="SGD", lr=0.1, nesterov="yes"), "optimizer -> nesterov: must be True or False", ValueError),
        (dict(type="SGD", lr=0.1, nesterov=True), "optimizer -> nesterov: needs momentum > 0", ValueError),
        (dict(type="AdamW", lr=0.1, eps=-1.0), "optimizer -> eps", ValueError),
        (dict(type="AdamW", lr=0.1, betas=(0.9,)), "optimizer -> betas: must be a pair", ValueError),
        (dict(type="AdamW", lr=0.1, betas=(0.9, 1.0)), "betas -> [1]: must be a number in [0, 1), got 1.0", ValueError),
        (dict(type="AdamW", lr=0.1, amsgrad=1), "optimizer -> amsgrad", ValueError),
        (dict(type="RMSprop", lr=0.1, alpha=-0.5), "optimizer -> alpha", ValueError),
        (dict(type=dict, lr=0.1), "optimizer -> type: is <class 'dict'>, which is not an optimizer", ValueError),
        (dict(type=functools.partial(dict), lr=0.1), "which is not an optimizer", ValueError),
        (dict(type=BadRepr, lr=0.1), "which is not an optimizer", ValueError),
        ({"type": "SGD", "lr": 0.1, 3: 4}, "optimizer -> 3: is a key of type int", TypeError),
        ({"type": "SGD", "lr": BadRepr()}, "its repr raised RuntimeError", ValueError),
        (dict(type="SGD", lr=0.1, paramwise_cfg=dict(bias_lr_mul=None)), "bias_lr_mul: is not a", ValueError),
        (dict(type="SGD", lr=0.1, paramwise_cfg={1: None}), "paramwise_cfg -> 1: is not", ValueError),
        (dict(type="SGD", lr=0.1, paramwise_cfg={BadRepr(): None}), "its repr raised", ValueError),
        (dict(type="SGD", lr=0.1, paramwise_cfg=dict(frozen=torch.tensor([1, 2]))), "frozen: must be", ValueError),
        (dict(type="SGD", lr=0.1, weight_decay=0.1,
              paramwise_cfg=dict(custom_keys={"0": dict(weight_decay=-math.inf)})),
         "custom_keys -> 0 -> weight_decay: must be a finite number >= 0, got -inf", ValueError),
        (dict(type="SGD", lr=0.1, paramwise_cfg=dict(custom_keys={"0": dict(lr="fast")})),
         "custom_keys -> 0 -> lr: must be a finite number >= 0, got the text 'fast'", ValueError),
        (dict(type="SGD", lr=0.1, paramwise_cfg=dict(custom_keys={"0": dict(momentum=BadRepr())})),
         "custom_keys -> 0 -> momentum", ValueError),
        (dict(type="AdamW", lr=0.1, paramwise_cfg=dict(custom_keys={"0": dict(betas=(1.5, 0.9))})),
         "custom_keys -> 0 -> betas -> [0]", ValueError),
        (dict(type="SGD", lr=0.1, paramwise_cfg=dict(custom_keys={"0": {7: 1}})), "custom_keys -> 0 -> 7", TypeError),
        (dict(type="SGD", lr=0.1, paramwise_cfg=dict(custom_keys={"0": BadRepr()})), "custom_keys -> 0", TypeError),
    ],
)
def test_bad_values_are_reported_at_their_path(cfg: dict[Any, Any], needle: str, builtin: type) -> None:
    for entry in (build_optimizer, plan_params):
        error = check_outcome(lambda entry=entry: entry(_model(), cfg), cfg, (needle,), must_fail=True)
        assert isinstance(error, builtin)


def test_none_still_means_unset_for_known_keys() -> None:
    cfg = dict(type="SGD", lr=0.1, paramwise_cfg=dict(bias_lr_mult=None, frozen=None, layer_decay=None))
    model = _model()
    unset = plan_params(model, dict(type="SGD", lr=0.1))
    plan = plan_params(model, cfg)
    def outcome(plan: Any) -> Any:
        return [(e.name, dict(e.hyperparams), dict(e.rules)) for e in plan], plan.warnings, plan.frozen

    assert outcome(plan) == outcome(unset)  # as if the keys were not written


def test_deeply_nested_and_self_referencing_values() -> None:
    deep: Any = 0.1
    for _ in range(5000):
        deep = [deep]
    loop: list[Any] = []
    loop.append(loop)
    reg = _registry()
    with pytest.raises(ParamwiseError, match=r"fuzzed registry: x -> \[0\] -> \[0\]") as info:
        build_from_cfg({"type": "Mutator", "x": deep}, reg)
    assert isinstance(info.value, ValueError)
    _, built = build_from_cfg({"type": "strict", "b": loop}, reg)
    assert built[0] is built and built is not loop and loop[0] is loop


@pytest.mark.parametrize("type_value", [BadRepr(), 10**5000], ids=["bad-repr", "huge-int"])
def test_type_whose_str_raises(type_value: Any) -> None:
    cfg = dict(type=type_value, lr=0.1)
    check_outcome(lambda: build_optimizer(_model(), cfg), cfg, ("optimizer -> type",), must_fail=True)


def test_factory_that_returns_no_optimizer() -> None:
    cfg = dict(type=lambda params, lr: {"not": "an optimizer"}, lr=0.1)
    check_outcome(lambda: build_optimizer(_model(), cfg), cfg, ("optimizer -> type",), must_fail=True)


@pytest.mark.parametrize("value, accepted", [(torch.tensor(0.1), True), (torch.tensor([0.5]), True),
                                             (torch.tensor(3), False), (torch.tensor([1.0, 2.0]), False),
                                             (torch.tensor(-0.1), False)])
def test_a_multiplier_may_be_a_one_element_floating_tensor(value: torch.Tensor, accepted: bool) -> None:
    """Found by the fuzz: its own expectation refused scalar tensors, which the spec takes by design."""
    cfg = {"type": "AdamW", "lr": 0.1, "paramwise_cfg": {"bias_lr_mult": value}}
    outcome = check_outcome(lambda: build_optimizer(_model(), cfg), cfg, ("bias_lr_mult",), must_fail=not accepted)
    assert _a_multiplier(value) is accepted and isinstance(outcome, ParamwiseError) is not accepted
