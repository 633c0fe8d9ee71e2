"""Every numeric, bool or choice option of every registered curve, given a bad value, ends in a ConfigError at its key.

The options come from the registry (each entry's signature), not from a list kept here, so a new
curve is covered as soon as it is registered. A bad value is one no option accepts (nan, +-inf,
10**400, a number in quotes, a bool for a number, None where None is not the default, and -1: no
option takes a negative number). The build is also stepped, so a value that got through would
have to stay finite in the param groups.
"""

from __future__ import annotations

import inspect
import json
import math
import warnings
from typing import Any

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from paramwise.errors import ConfigError
from paramwise.schedule.curve import SCHEDULERS, SchedulerType
from paramwise.schedule.schedule import build_scheduler

#: values for the arguments an entry requires (or, for eta_min, needs one of), so that the rest can be varied
FILL: dict[str, Any] = {"gamma": 0.9, "step_size": 2, "milestones": [3], "periods": [5], "param_name": "lr",
                        "eta_min": 0.0}
EPOCH_LENGTH = 5
STEPS = 30
BAD: list[Any] = [math.nan, math.inf, -math.inf, 10**400, "1e-3", True, None, -1]


def _entries() -> list[SchedulerType]:
    seen: dict[int, SchedulerType] = {}
    for name in SCHEDULERS.names():
        entry = SCHEDULERS.get(name)
        seen.setdefault(id(entry), entry)
    return sorted(seen.values(), key=lambda e: e.__name__)


def _numeric(annotation: Any) -> bool:
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation))
    return any(word in text for word in ("int", "float", "bool"))


def _baseline(entry: SchedulerType) -> dict[str, Any]:
    """A config of ``entry`` that builds: its required arguments filled, the window closed at 20."""
    cfg: dict[str, Any] = {"type": entry.__name__, "end": 20}
    for key, p in entry.__signature__.parameters.items():
        if key in FILL and (p.default is p.empty or (key == "eta_min" and p.default is None)):
            cfg[key] = FILL[key]
    return cfg


OPTIONS = [(entry.__name__, key, p) for entry in _entries()
           for key, p in entry.__signature__.parameters.items() if _numeric(p.annotation)]


def _optimizer() -> torch.optim.Optimizer:
    a, b = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2))
    return torch.optim.SGD([{"params": [a], "lr": 0.1}, {"params": [b], "lr": 0.01}], lr=0.1, momentum=0.9,
                           weight_decay=1e-4)


def _valid(p: inspect.Parameter, value: Any) -> bool:
    """Values an option accepts by its type: a bool for a bool, None where None is the default."""
    text = str(p.annotation)
    if isinstance(value, bool):
        return text == "bool"
    return value is None and (p.default is None or "None" in text)


def _run(cfg: dict[str, Any]) -> None:
    """Build ``cfg`` and step it; every value in the param groups stays finite."""
    optimizer = _optimizer()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        schedule = build_scheduler(optimizer, [cfg], epoch_length=EPOCH_LENGTH)
    for _ in range(STEPS):
        schedule.step()
        for group in optimizer.param_groups:
            assert all(math.isfinite(float(group[k])) for k in ("lr", "momentum", "weight_decay")), cfg


def test_the_options_come_from_every_entry() -> None:
    names = {name for name, _, _ in OPTIONS}
    assert {"LinearLR", "CosineAnnealingMomentum", "OneCycleLR", "WarmupStableDecayLR", "CosineCycleLR"} <= names
    keys = {key for _, key, _ in OPTIONS}
    assert {"begin", "end", "by_epoch", "eta_min", "T_max", "min_ratio", "cycle_mul", "patience", "eps"} <= keys


@pytest.mark.parametrize("entry", _entries(), ids=lambda e: e.__name__)
def test_every_baseline_builds(entry: SchedulerType) -> None:
    _run(_baseline(entry))


def check_bad_value(name: str, key: str, p: inspect.Parameter, value: Any, listed: bool) -> None:
    """``value`` (or ``[value]`` when ``listed``) at ``key`` ends in a ConfigError whose problems name the key."""
    if not listed and _valid(p, value):
        return
    cfg = {**_baseline(SCHEDULERS.get(name)), key: [value] if listed else value}
    with pytest.raises(ConfigError) as info:
        _run(cfg)
    paths = [problem.path for problem in info.value.problems]
    assert all(path and path[0] == "param_scheduler[0]" for path in paths), paths
    assert ("param_scheduler[0]", key) in {path[:2] for path in paths}, (cfg, str(info.value))


@given(st.sampled_from(OPTIONS), st.sampled_from(BAD), st.booleans())
def test_a_bad_value_is_a_config_error_at_its_key(option: tuple[str, str, inspect.Parameter], value: Any,
                                                  listed: bool) -> None:
    name, key, p = option
    check_bad_value(name, key, p, value, listed and "tuple" in str(p.annotation))


@pytest.mark.parametrize("value", BAD, ids=repr)
def test_every_option_every_bad_value(value: Any) -> None:
    """The sweep the property samples from, whole: every option of every entry, this value."""
    for name, key, p in OPTIONS:
        check_bad_value(name, key, p, value, False)
        if "tuple" in str(p.annotation):
            check_bad_value(name, key, p, value, True)


# ------------------------------------------------------------------ the bugs of issue 16, and after the build
@pytest.mark.parametrize(("cfg", "key"), [
    (dict(type="CosineAnnealingLR", T_max=10, eta_min=math.nan, by_epoch=False), "eta_min"),  # was nan after a step
    (dict(type="CosineAnnealingLR", T_max=10, eta_min=10**400, by_epoch=False), "eta_min"),  # was an OverflowError
    (dict(type="WarmupStableDecayLR", warmup_steps=2, decay_steps=3, min_ratio=10**400), "min_ratio"),
])
def test_reported_bugs_are_config_errors_at_build(cfg: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        build_scheduler(_optimizer(), [cfg])
    assert [p.path for p in info.value.problems] == [("param_scheduler[0]", key)]


def test_a_value_that_overflows_later_is_never_written() -> None:
    optimizer = _optimizer()
    schedule = build_scheduler(optimizer, dict(type="ExponentialLR", gamma=10.0, by_epoch=False))
    schedule.step(300)
    before = [g["lr"] for g in optimizer.param_groups]
    with pytest.raises(ConfigError, match=r"param_scheduler\[0\]: ExponentialLR gives group 0's lr .* iteration 400"):
        schedule.step(400)
    assert [g["lr"] for g in optimizer.param_groups] == before and all(math.isfinite(v) for v in before)


def test_list_schedulers_shows_both_kinds(capsys: pytest.CaptureFixture[str]) -> None:
    from paramwise.cli import main

    assert main(["list", "schedulers", "--format", "json"]) == 0
    names = {row["name"] for row in json.loads(capsys.readouterr().out)}
    assert {"LinearLR", "CosineAnnealingMomentum", "WarmupStableDecayLR", "warmup_stable_decay",
            "CosineLRScheduler"} <= names
