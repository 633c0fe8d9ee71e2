"""Every optimizer's own arguments are checked against its signature before torch sees them (issue 17, 6a),
and the base class ``torch.optim.Optimizer`` is registered as in mmengine but cannot be built (issue 17, 5).

The cases are generated from the signatures of every optimizer in ``torch.optim``: a value of the wrong
type for each argument must be a ``ConfigError`` naming ``optimizer -> <argument>``, in the optimizer
config and in a custom key.
"""

from __future__ import annotations

import inspect
import math
import warnings
from typing import Any

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

import paramwise
from paramwise import OPTIMIZERS, ConfigError, build_optimizer
from paramwise.optimizers import annotation_names, argument_choices
from paramwise.plan.spec import resolve_config

TORCH_OPTIMIZERS = sorted(
    name for name, obj in vars(torch.optim).items()
    if inspect.isclass(obj) and issubclass(obj, torch.optim.Optimizer) and obj is not torch.optim.Optimizer
)


def _wrong_value(cls: type, param: inspect.Parameter) -> Any:
    """A value of the wrong type for ``param``, read off its default (or its annotation and known names)."""
    default = param.default
    allowed = annotation_names(param.annotation) - {"None"}
    if isinstance(default, bool) or (default is None and allowed == {"bool"}):
        return "yes"
    if isinstance(default, (int, float)):
        return [0.1]
    if isinstance(default, tuple):
        return "ab"
    if default is None and argument_choices(cls, param.name) is not None:
        return "no-such-choice"
    if default is None and allowed == {"int"}:
        return 2.5
    raise AssertionError(f"no wrong value known for {cls.__name__}.{param.name} (default {default!r})")


ARGUMENT_CASES = [
    pytest.param(name, param.name, id=f"{name}-{param.name}")
    for name in TORCH_OPTIMIZERS
    for param in list(inspect.signature(getattr(torch.optim, name)).parameters.values())[1:]
]


def _model() -> nn.Module:
    return nn.Linear(3, 2, bias=False)  # 2-D only: Muon takes nothing else


def test_cases_cover_every_argument_of_every_torch_optimizer() -> None:
    assert len(TORCH_OPTIMIZERS) >= 14
    assert {"Adagrad", "LBFGS", "Rprop", "Adafactor"} <= set(TORCH_OPTIMIZERS)
    assert len(ARGUMENT_CASES) >= 100


@pytest.mark.parametrize("name, argument", ARGUMENT_CASES)
def test_a_wrong_typed_argument_is_a_config_error_at_its_path(name: str, argument: str) -> None:
    cls = getattr(torch.optim, name)
    value = _wrong_value(cls, inspect.signature(cls).parameters[argument])
    cfg = {"type": name, argument: value} if argument == "lr" else {"type": name, "lr": 0.01, argument: value}
    with pytest.raises(ConfigError) as info:
        build_optimizer(_model(), cfg)
    assert f"optimizer -> {argument}" in str(info.value)
    assert all(p.path[:2] == ("optimizer", argument) for p in info.value.problems), str(info.value)


@pytest.mark.parametrize("name, argument", [c for c in ARGUMENT_CASES if c.values[1] != "lr"])
def test_a_wrong_typed_argument_in_a_custom_key_is_a_config_error_at_its_path(name: str, argument: str) -> None:
    cls = getattr(torch.optim, name)
    value = _wrong_value(cls, inspect.signature(cls).parameters[argument])
    pw = {"custom_keys": {"weight": {argument: value}}}
    with pytest.raises(ConfigError, match=f"custom_keys -> weight -> {argument}:"):
        resolve_config({"type": name, "lr": 0.01}, pw)


def test_the_issue_example_names_the_argument() -> None:
    with pytest.raises(ConfigError, match=r"optimizer -> lr_decay: must be a finite number, got \[0.1\]") as info:
        build_optimizer(_model(), dict(type="Adagrad", lr=0.01, lr_decay=[0.1]))
    assert isinstance(info.value, TypeError)  # a value of the wrong type, as mmengine's TypeError is


@pytest.mark.parametrize("cfg, path, message", [
    (dict(type="LBFGS", line_search_fn="wolfe"), "optimizer -> line_search_fn", "must be one of 'strong_wolfe'"),
    (dict(type="LBFGS", max_iter=2.5), "optimizer -> max_iter", "must be a whole number"),
    (dict(type="LBFGS", max_eval=2.5), "optimizer -> max_eval", "must be a whole number"),
    (dict(type="Rprop", etas=(0.5,)), "optimizer -> etas", "must be a tuple of 2 numbers"),
    (dict(type="Rprop", step_sizes=(1e-6, math.nan)), r"optimizer -> step_sizes -> \[1\]", "must be a finite"),
    (dict(type="Adafactor", eps=(None, "x")), r"optimizer -> eps -> \[1\]", "must be a finite number"),
    (dict(type="Adafactor", eps=0.1), "optimizer -> eps", "must be a tuple of 2 numbers or None"),
    (dict(type="Adam", foreach="yes"), "optimizer -> foreach", "must be True or False"),
    (dict(type="Adagrad", lr_decay=None), "optimizer -> lr_decay", r"is empty \(None\)"),
    (dict(type="ASGD", t0=math.inf), "optimizer -> t0", "must be a finite number"),
])
def test_argument_checks_by_default_shape(cfg: dict[str, Any], path: str, message: str) -> None:
    with pytest.raises(ConfigError, match=f"{path}: {message}"):
        build_optimizer(_model(), cfg)


@pytest.mark.parametrize("cfg", [
    dict(type="Adafactor", eps=(None, 1e-3)),
    dict(type="Adafactor", eps=[1e-30, 1e-3]),
    dict(type="LBFGS", line_search_fn="strong_wolfe", max_eval=None, max_iter=5),
    dict(type="Rprop", etas=[0.4, 1.3], step_sizes=(1e-6, 50)),
    dict(type="SGD", lr=torch.tensor(0.1), weight_decay=torch.tensor(0.0)),
    dict(type="Adagrad", lr_decay=0, initial_accumulator_value=0.1, foreach=None, fused=None),
    dict(type="Adam", betas=(0.9, 0.99), capturable=False, maximize=True),
])
def test_valid_arguments_still_build(cfg: dict[str, Any]) -> None:
    assert isinstance(build_optimizer(_model(), cfg), torch.optim.Optimizer)


def test_a_value_torch_refuses_is_a_config_error_at_the_argument() -> None:
    # the type fits (a number), the value does not: torch's own ValueError, with the config path
    with pytest.raises(ConfigError, match=r"optimizer -> lr_decay: Adagrad refused its arguments: ValueError: "
                                          r"Invalid lr_decay value: -1.0") as info:
        build_optimizer(_model(), dict(type="Adagrad", lr_decay=-1.0))
    assert isinstance(info.value.__cause__, ValueError)


class ThirdParty(torch.optim.Optimizer):
    """An optimizer from another library: its arguments are found by signature only."""

    def __init__(self, params: Any, lr: float = 0.1, gamma: float = 0.5, steps: int = 3,
                 pair: tuple[float, float] = (0.1, 0.2), safe: bool = False, mode: Any = None) -> None:
        if mode not in (None, "fast"):
            raise ValueError(f"unknown mode {mode!r}")
        super().__init__(params, dict(lr=lr, gamma=gamma, steps=steps, pair=pair, safe=safe, mode=mode))


@pytest.mark.parametrize("key, value, message", [
    ("gamma", "0.5", "must be a finite number, got the text '0.5': write 0.5 without quotes"),
    ("steps", 1.5, "must be a whole number"),
    ("pair", (0.1, 0.2, 0.3), "must be a tuple of 2 numbers"),
    ("safe", 1, "must be True or False"),
])
def test_third_party_arguments_are_checked_by_signature(key: str, value: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=f"optimizer -> {key}: {message}"):
        build_optimizer(_model(), {"type": ThirdParty, key: value})


def test_third_party_error_on_an_argument_without_default_is_wrapped_at_the_optimizer() -> None:
    with pytest.raises(ConfigError, match=r"optimizer -> mode: ThirdParty refused its arguments: ValueError: "
                                          r"unknown mode 'slow'"):
        build_optimizer(_model(), {"type": ThirdParty, "mode": "slow"})
    assert isinstance(build_optimizer(_model(), {"type": ThirdParty, "mode": "fast"}), ThirdParty)


@given(case=st.sampled_from([c.values for c in ARGUMENT_CASES]),
       value=st.one_of(st.text(max_size=3), st.lists(st.floats(), max_size=2), st.none(), st.booleans(),
                       st.floats(allow_nan=True), st.integers(), st.tuples(st.floats(), st.floats()),
                       st.dictionaries(st.text(max_size=2), st.integers(), max_size=2)))
def test_any_value_of_any_argument_is_built_or_a_config_error(case: tuple[str, str], value: Any) -> None:
    name, argument = case
    try:
        build_optimizer(_model(), {"type": name, argument: value})
    except ConfigError as e:
        assert any(p.path[:1] == ("optimizer",) for p in e.problems)


# ------------------------------------------------------------------------ item 5: the base class
def test_the_base_class_is_registered_as_in_mmengine() -> None:
    with warnings.catch_warnings():  # torch.distributed.optim, imported by mmengine.optim, uses torch.jit.script
        warnings.simplefilter("ignore", DeprecationWarning)
        import mmengine.optim  # noqa: F401  (registers torch's optimizers, the base class too)
    from mmengine.registry import OPTIMIZERS as MM_OPTIMIZERS

    assert MM_OPTIMIZERS.get("Optimizer") is torch.optim.Optimizer
    assert OPTIMIZERS.get("Optimizer") is MM_OPTIMIZERS.get("Optimizer")


@pytest.mark.parametrize("type_", ["Optimizer", torch.optim.Optimizer])
def test_building_the_base_class_is_a_config_error_at_type(type_: Any) -> None:
    with pytest.raises(ConfigError, match=r"optimizer -> type: is torch.optim.Optimizer, the base class .* no update "
                                          r"rule .* e.g. type='AdamW'"):
        build_optimizer(_model(), dict(type=type_, lr=0.1))
    with pytest.raises(ConfigError, match="optim_wrapper -> optimizer -> type: is torch.optim.Optimizer"):
        paramwise.build_optim_wrapper(_model(), dict(optimizer=dict(type=type_, lr=0.1)))
