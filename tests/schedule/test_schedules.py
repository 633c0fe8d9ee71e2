"""build_scheduler: closed forms, mmengine parity step by step, resume, ratios, tensor lr, errors."""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import pytest
import torch
from torch import nn

import paramwise
from paramwise.errors import ConfigError, MetricMissingError, ParamwiseWarning, ScheduleStateError
from paramwise.schedule.curve import INF, SCHEDULERS
from paramwise.schedule.schedule import Schedule, build_scheduler

Row = list[tuple[float, ...]]
OptimizerFactory = Callable[[], torch.optim.Optimizer]


# ------------------------------------------------------------------------------------ helpers
def _params() -> list[nn.Parameter]:
    torch.manual_seed(0)
    return [nn.Parameter(torch.randn(3)) for _ in range(3)]


def sgd() -> torch.optim.Optimizer:
    a, b, c = _params()
    return torch.optim.SGD(
        [{"params": [a], "lr": 0.1, "param_names": ["a"]},
         {"params": [b], "lr": 0.01, "param_names": ["b"]},
         {"params": [c], "lr": 0.025, "weight_decay": 0.0, "param_names": ["c"]}],
        lr=0.1, momentum=0.9, weight_decay=1e-4,
    )


def adamw() -> torch.optim.Optimizer:
    a, b, c = _params()
    return torch.optim.AdamW(
        [{"params": [a], "lr": 1e-3}, {"params": [b], "lr": 1e-4}, {"params": [c], "lr": 5e-4, "betas": (0.9, 0.99)}],
        lr=1e-3, betas=(0.95, 0.999), weight_decay=0.05,
    )


def snapshot(optimizer: torch.optim.Optimizer) -> tuple[float, ...]:
    out: list[float] = []
    for g in optimizer.param_groups:
        momentum = g["betas"][0] if "betas" in g else g.get("momentum", 0.0)
        out += [float(g["lr"]), float(momentum), float(g["weight_decay"])]
    return tuple(out)


def run_mmengine(make: OptimizerFactory, cfgs: Sequence[dict[str, Any]], epoch_length: int, iters: int,
                 metrics: Sequence[float] = ()) -> Row:
    """mmengine's runner loop: iteration parts step after each iteration, epoch parts after each epoch."""
    import mmengine.optim  # noqa: F401  (registers the schedulers)
    from mmengine.registry import PARAM_SCHEDULERS

    optimizer = make()
    schedulers = [PARAM_SCHEDULERS.build(copy.deepcopy(c), default_args={"optimizer": optimizer,
                                                                          "epoch_length": epoch_length})
                  for c in cfgs]
    rows = []
    for n in range(iters):
        rows.append(snapshot(optimizer))
        optimizer.step()
        for s in schedulers:
            if not s.by_epoch:
                s.step()
        if (n + 1) % epoch_length == 0:
            for s in schedulers:
                if s.by_epoch:
                    s.step()
            epoch = (n + 1) // epoch_length - 1
            if epoch < len(metrics):
                for s in schedulers:
                    if getattr(s, "need_val_args", False):
                        s.step({"loss": metrics[epoch]})
    return rows


def run_ours(make: OptimizerFactory, cfgs: Sequence[dict[str, Any]], epoch_length: int, iters: int,
             metrics: Sequence[float] = ()) -> Row:
    optimizer = make()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ParamwiseWarning)
        schedule = build_scheduler(optimizer, copy.deepcopy(list(cfgs)), epoch_length=epoch_length)
    rows = []
    for n in range(iters):
        rows.append(snapshot(optimizer))
        optimizer.step()
        schedule.step()
        epoch = (n + 1) // epoch_length - 1
        if (n + 1) % epoch_length == 0 and epoch < len(metrics):
            schedule.observe({"loss": metrics[epoch]})
    return rows


def assert_rows_close(ours: Row, theirs: Row, tol: float = 1e-12) -> None:
    assert len(ours) == len(theirs)
    for n, (a, b) in enumerate(zip(ours, theirs)):
        for k, (x, y) in enumerate(zip(a, b)):
            assert abs(x - y) <= tol, f"step {n}, value {k}: ours {x!r}, mmengine {y!r}"


def assert_matches_mmengine(make: OptimizerFactory, cfgs: Sequence[dict[str, Any]], epoch_length: int,
                            iters: int) -> None:
    """Every group's every scheduled value at every step equals what mmengine's schedulers give, to 1e-12."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # mmengine's own warnings (e.g. on by_epoch conversions)
        theirs = run_mmengine(make, cfgs, epoch_length, iters)
    assert_rows_close(run_ours(make, cfgs, epoch_length, iters), theirs)


# ------------------------------------------------------------------- differential vs mmengine
DIFFERENTIAL: dict[str, tuple[list[dict[str, Any]], int, int]] = {
    # mmdet's 1x schedule: linear warmup by iteration, multistep by epoch (overlapping, chained)
    "warmup+multistep": ([
        dict(type="LinearLR", start_factor=0.001, by_epoch=False, begin=0, end=50),
        dict(type="MultiStepLR", begin=0, end=12, by_epoch=True, milestones=[8, 11], gamma=0.1),
    ], 20, 12 * 20 + 5),
    # warmup + cosine, both converted to iterations (rtmdet / mmpose shape)
    "warmup+cosine converted": ([
        dict(type="LinearLR", start_factor=1e-3, by_epoch=True, begin=0, end=2, convert_to_iter_based=True),
        dict(type="CosineAnnealingLR", T_max=8, eta_min=1e-5, by_epoch=True, begin=2, end=10,
             convert_to_iter_based=True),
    ], 7, 75),
    # mmpretrain: converted warmup, cosine stepped per epoch with eta_min_ratio
    "warmup+cosine by epoch": ([
        dict(type="LinearLR", start_factor=1e-3, by_epoch=True, begin=0, end=5, convert_to_iter_based=True),
        dict(type="CosineAnnealingLR", T_max=15, eta_min_ratio=1e-2, by_epoch=True, begin=5, end=20),
    ], 5, 110),
    # mmseg: warmup then poly with an absolute floor
    "warmup+poly": ([
        dict(type="LinearLR", start_factor=1e-6, by_epoch=False, begin=0, end=15),
        dict(type="PolyLR", eta_min=1e-4, power=0.9, begin=15, end=200, by_epoch=False),
    ], 10, 210),
    # overlapping chainable parts: warmup on a zero-floor poly and cosine-free decay
    "warmup over poly": ([
        dict(type="LinearLR", start_factor=0.1, by_epoch=False, begin=0, end=10),
        dict(type="PolyLR", eta_min=0.0, power=2.0, begin=0, end=100, by_epoch=False),
    ], 10, 105),
    "one-cycle": ([
        dict(type="OneCycleLR", eta_max=0.2, total_steps=100, pct_start=0.3, by_epoch=False),
    ], 10, 100),
    "one-cycle three-phase linear": ([
        dict(type="OneCycleLR", eta_max=[0.2, 0.02, 0.05], total_steps=60, pct_start=0.25, three_phase=True,
             anneal_strategy="linear", by_epoch=False, end=60),
    ], 10, 60),
    "momentum schedules": ([
        dict(type="CosineAnnealingLR", T_max=8, eta_min=1.0, begin=0, end=8, by_epoch=True,
             convert_to_iter_based=True),
        dict(type="CosineAnnealingLR", T_max=12, eta_min=1e-6, begin=8, end=20, by_epoch=True,
             convert_to_iter_based=True),
        dict(type="CosineAnnealingMomentum", T_max=8, eta_min=0.85 / 0.95, begin=0, end=8, by_epoch=True,
             convert_to_iter_based=True),
        dict(type="CosineAnnealingMomentum", T_max=12, eta_min=1.0, begin=8, end=20, by_epoch=True,
             convert_to_iter_based=True),
    ], 4, 85),
    "step+exponential+constant": ([
        dict(type="ConstantLR", factor=0.5, begin=0, end=7, by_epoch=False),
        dict(type="StepLR", step_size=3, gamma=0.5, begin=2, end=12, by_epoch=True),
        dict(type="ExponentialLR", gamma=0.97, begin=12, end=20, by_epoch=True),
        dict(type="LinearMomentum", start_factor=0.5, begin=0, end=25, by_epoch=False),
        dict(type="MultiStepMomentum", milestones=[0, 3, 3], gamma=0.9, begin=1, end=6, by_epoch=True),
    ], 5, 110),
    "cosine past T_max": ([
        dict(type="CosineAnnealingLR", T_max=7, eta_min_ratio=0.1, begin=0, end=40, by_epoch=False),
    ], 10, 45),
    "cosine restarts": ([
        dict(type="LinearLR", start_factor=0.1, begin=0, end=5, by_epoch=False),
        dict(type="CosineRestartLR", periods=[10, 20, 15], restart_weights=[1, 0.5, 0.25], eta_min_ratio=0.05,
             begin=5, end=60, by_epoch=False),
        dict(type="CosineRestartMomentum", periods=[2, 3], restart_weights=[1, 0.9], eta_min=0.5, by_epoch=True,
             convert_to_iter_based=True, begin=0, end=5),
    ], 6, 70),
    "weight decay": ([
        dict(type="CosineAnnealingParamScheduler", param_name="weight_decay", T_max=30, eta_min_ratio=0.1,
             begin=0, end=30, by_epoch=False),
        dict(type="LinearParamScheduler", param_name="weight_decay", start_factor=1.0, end_factor=0.5,
             begin=3, end=6, by_epoch=True),
    ], 10, 70),
}


@pytest.mark.parametrize("make", [sgd, adamw], ids=["SGD", "AdamW"])
@pytest.mark.parametrize("name", sorted(DIFFERENTIAL))
def test_matches_mmengine_step_by_step(name: str, make: OptimizerFactory) -> None:
    assert_matches_mmengine(make, *DIFFERENTIAL[name])


def test_reduce_on_plateau_matches_mmengine() -> None:
    cfgs = [dict(type="ReduceOnPlateauLR", monitor="loss", factor=0.5, patience=1, cooldown=1, begin=1, end=12,
                 min_value=0.004),
            dict(type="ReduceOnPlateauMomentum", monitor="loss", factor=0.9, patience=0, threshold_rule="abs",
                 threshold=0.01)]
    losses = [1.0, 0.9, 0.95, 0.95, 0.96, 0.97, 0.5, 0.6, 0.61, 0.62, 0.63, 0.64, 0.65, 0.66]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = run_mmengine(sgd, cfgs, 3, 45, losses)
    assert_rows_close(run_ours(sgd, cfgs, 3, 45, losses), theirs)


# ------------------------------------------------------------------------------ closed forms
def lrs(schedule: Schedule, steps: Sequence[int]) -> dict[int, float]:
    out = {}
    for n in range(max(steps) + 1):
        if n:
            schedule.step()
        if n in steps:
            out[n] = schedule.get_last_lr()[0]
    return out


def test_closed_forms_at_chosen_steps() -> None:
    got = lrs(build_scheduler(sgd(), [dict(type="LinearLR", start_factor=0.25, end=5, by_epoch=False),
                                      dict(type="CosineAnnealingLR", begin=5, end=15, by_epoch=False)]),
              [0, 2, 4, 5, 10, 14, 30])
    assert got[0] == pytest.approx(0.025)
    assert got[2] == pytest.approx(0.1 * (0.25 + 0.75 * 2 / 4))
    assert got[4] == pytest.approx(0.1)  # the warmup's last step reaches end_factor
    assert got[5] == pytest.approx(0.1)
    assert got[10] == pytest.approx(0.05)  # half way down the cosine
    assert got[14] == pytest.approx(0.1 * (1 + math.cos(math.pi * 9 / 10)) / 2)
    assert got[30] == got[14]  # held after the last part's end

    step = lrs(build_scheduler(sgd(), dict(type="MultiStepLR", milestones=[2, 4], gamma=0.5, by_epoch=True),
                               epoch_length=10), [19, 20, 39, 40])
    assert step == pytest.approx({19: 0.1, 20: 0.05, 39: 0.05, 40: 0.025})

    poly = lrs(build_scheduler(sgd(), dict(type="PolyLR", power=2.0, eta_min=0.0, end=11, by_epoch=False)), [5, 10])
    assert poly[5] == pytest.approx(0.1 * 0.25)
    assert poly[10] == pytest.approx(0.0)


def test_default_end_comes_from_max_iters() -> None:
    schedule = build_scheduler(sgd(), [dict(type="CosineAnnealingLR", by_epoch=True, convert_to_iter_based=True)],
                               epoch_length=10, max_iters=100)
    assert schedule.parts[0].end == 100 and schedule.parts[0].curve.period(100) == 100  # type: ignore[union-attr]


# ----------------------------------------------------------------------------------- resume
RESUME_CFG = [
    dict(type="LinearLR", start_factor=0.01, by_epoch=False, begin=0, end=30),
    dict(type="CosineAnnealingLR", eta_min_ratio=0.01, by_epoch=True, begin=3, end=10, convert_to_iter_based=True),
    dict(type="MultiStepMomentum", milestones=[4, 8], gamma=0.5, by_epoch=True, end=10),
    dict(type="ReduceOnPlateauParamScheduler", param_name="weight_decay", patience=0, factor=0.5),
]


def test_resume_equals_uninterrupted_run() -> None:
    losses = [1.0, 1.1, 1.2, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1]

    def run(stop_at: int | None) -> list[tuple[float, ...]]:
        optimizer = sgd()
        schedule = build_scheduler(optimizer, RESUME_CFG, epoch_length=10)
        rows = []
        for n in range(100):
            if n == stop_at:  # new objects from the config, then the saved state
                state = copy.deepcopy(schedule.state_dict())
                optimizer = sgd()
                schedule = build_scheduler(optimizer, RESUME_CFG, epoch_length=10)
                schedule.load_state_dict(state)
            rows.append(snapshot(optimizer))
            schedule.step()
            if (n + 1) % 10 == 0:
                schedule.observe({"loss": losses[(n + 1) // 10 - 1]})
        return rows

    whole = run(None)
    for k in (1, 29, 30, 47, 71):
        assert run(k) == whole  # exactly: the values are functions of the step


def test_resume_after_regrouping_uses_current_bases() -> None:
    def grouped(order: Sequence[str]) -> torch.optim.Optimizer:
        params = dict(zip("abc", _params()))
        lr = {"a": 0.1, "b": 0.01, "c": 0.02}
        return torch.optim.SGD([{"params": [params[n]], "lr": lr[n], "param_names": [n]} for n in order],
                               lr=0.1, momentum=0.9)

    cfg = [dict(type="LinearLR", start_factor=0.1, end=10, by_epoch=False),
           dict(type="CosineAnnealingLR", begin=10, end=50, by_epoch=False)]
    first = build_scheduler(grouped("abc"), cfg)
    for _ in range(23):
        first.step()
    regrouped = grouped("cab")
    second = build_scheduler(regrouped, cfg)
    second.load_state_dict(first.state_dict())
    by_name = {g["param_names"][0]: g["lr"] for g in regrouped.param_groups}
    expected = dict(zip("abc", first.get_last_lr()))
    assert by_name == pytest.approx(expected, abs=0, rel=1e-15)


def test_load_rejects_a_state_from_another_list() -> None:
    schedule = build_scheduler(sgd(), RESUME_CFG, epoch_length=10)
    other = build_scheduler(sgd(), RESUME_CFG[:2], epoch_length=10)
    with pytest.raises(ScheduleStateError, match="ReduceOnPlateau"):
        other.load_state_dict(schedule.state_dict())
    with pytest.raises(ScheduleStateError, match="step"):
        other.load_state_dict({"step": -1, "plateau": {}})


# ----------------------------------------------------------------------------------- ratios
@pytest.mark.parametrize("cfg", [
    [dict(type="LinearLR", start_factor=0.001, by_epoch=False, end=20),
     dict(type="MultiStepLR", milestones=[3, 5], by_epoch=True, end=8)],
    [dict(type="LinearLR", start_factor=0.001, by_epoch=False, end=20),
     dict(type="CosineAnnealingLR", eta_min_ratio=0.01, begin=20, end=80, by_epoch=False)],
    [dict(type="PolyLR", eta_min_ratio=0.001, power=0.9, end=80, by_epoch=False)],
    [dict(type="OneCycleLR", eta_max_ratio=10.0, total_steps=80, by_epoch=False)],
    [dict(type="CosineRestartLR", periods=[30, 50], restart_weights=[1, 0.5], eta_min_ratio=0.1, by_epoch=False)],
    [dict(type="WarmupStableDecayLR", warmup_steps=10, decay_steps=30, stable_steps=20, min_ratio=0.1,
          decay_type="cosine")],
], ids=["multistep", "cosine", "poly", "one-cycle", "restarts", "wsd"])
def test_lr_mult_ratios_hold_at_every_step(cfg: list[dict[str, Any]]) -> None:
    optimizer = sgd()
    schedule = build_scheduler(optimizer, cfg, epoch_length=10)
    assert not schedule.notes
    for _ in range(90):
        lr = schedule.get_last_lr()
        assert lr[1] / lr[0] == pytest.approx(0.1, rel=1e-12)
        assert lr[2] / lr[0] == pytest.approx(0.25, rel=1e-12)
        schedule.step()


def test_absolute_eta_min_is_kept_and_noted() -> None:
    optimizer = sgd()
    with pytest.warns(ParamwiseWarning, match="eta_min_ratio=0.01"):
        schedule = build_scheduler(optimizer, dict(type="CosineAnnealingLR", eta_min=1e-3, end=10, by_epoch=False))
    assert [p.path for p in schedule.notes] == [("param_scheduler[0]", "eta_min")]
    schedule.step(9)
    assert schedule.get_last_lr() == pytest.approx([1e-3 + (0.1 - 1e-3) * (1 + math.cos(0.9 * math.pi)) / 2,
                                                    1e-3 + (0.01 - 1e-3) * (1 + math.cos(0.9 * math.pi)) / 2,
                                                    1e-3 + (0.025 - 1e-3) * (1 + math.cos(0.9 * math.pi)) / 2])


def test_one_group_gets_no_note() -> None:
    optimizer = torch.optim.SGD(_params(), lr=0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not build_scheduler(optimizer, dict(type="CosineAnnealingLR", eta_min=1e-3, end=10,
                                                   by_epoch=False)).notes


# ------------------------------------------------------------------------------- tensor lr
def test_tensor_lr_is_written_in_place() -> None:
    a, b, _ = _params()
    optimizer = torch.optim.Adam([{"params": [a], "lr": torch.tensor(0.01)}, {"params": [b], "lr": torch.tensor(1e-3)}],
                                 lr=torch.tensor(0.01), betas=(torch.tensor(0.9), torch.tensor(0.99)))
    tensors = [g["lr"] for g in optimizer.param_groups]
    schedule = build_scheduler(optimizer, [dict(type="LinearLR", start_factor=0.1, end=5, by_epoch=False),
                                           dict(type="CosineAnnealingLR", begin=5, end=20, by_epoch=False)])
    for _ in range(12):
        schedule.step()
        assert [g["lr"] for g in optimizer.param_groups] == tensors  # the same objects
        assert all(g["lr"] is t for g, t in zip(optimizer.param_groups, tensors))
    assert float(tensors[0]) == pytest.approx(0.005 * (1 + math.cos(math.pi * 7 / 15)))
    assert schedule.get_last_lr()[1] == pytest.approx(float(tensors[1]))


# ----------------------------------------------------------------------------------- errors
def test_unknown_argument_names_index_key_and_suggestion() -> None:
    with pytest.raises(ConfigError) as info:
        build_scheduler(sgd(), [dict(type="LinearLR", by_epoch=False, end=5),
                                dict(type="MultiStepLR", milestone=[3], by_epoch=False)])
    text = str(info.value)
    assert "param_scheduler[1] -> milestone" in text and "Did you mean 'milestones'?" in text
    assert "param_scheduler[1] -> milestones" in text  # the required argument is missing too
    assert isinstance(info.value, KeyError)  # a 'missing' problem, as mmengine's errors are


def test_unknown_type_suggests_names() -> None:
    with pytest.raises(ConfigError, match=r"param_scheduler\[0\] -> type.*Did you mean 'CosineAnnealingLR'"):
        build_scheduler(sgd(), dict(type="CosineAnealingLR", by_epoch=False))


def test_epoch_based_without_epoch_length() -> None:
    with pytest.raises(ConfigError, match=r"param_scheduler\[0\] -> by_epoch: .*epoch_length"):
        build_scheduler(sgd(), dict(type="MultiStepLR", milestones=[8, 11]))


def test_chainable_overlaps_are_allowed_and_other_params_are_separate() -> None:
    warmup = dict(type="LinearLR", by_epoch=False, end=100)
    cosine = dict(type="CosineAnnealingLR", by_epoch=False, end=200)  # zero floor: chainable
    momentum = dict(type="CosineAnnealingMomentum", eta_min=0.8, by_epoch=False, end=200)
    ours = run_ours(sgd, [warmup, cosine, momentum], 10, 205)
    # the overlap multiplies, as mmengine's recursive updates compose (group 0: lr 0.1, momentum 0.9)
    for n in (0, 1, 50, 99, 100, 150, 199, 204):
        expected = 0.1 * (1 / 3 + (2 / 3) * min(n, 99) / 99) * (1 + math.cos(math.pi * min(n, 199) / 200)) / 2
        assert ours[n][0] == pytest.approx(expected, rel=1e-12, abs=1e-15), n
    # momentum (every group's index 1 of 3) follows its own entry, whatever the lr entries do
    alone = run_ours(sgd, [momentum], 10, 205)
    assert [row[1::3] for row in ours] == [row[1::3] for row in alone]
    assert [row[0::3] for row in ours] == [row[0::3] for row in run_ours(sgd, [warmup, cosine], 10, 205)]
    assert ours[100][1] == pytest.approx(0.8 + 0.1 * (1 + math.cos(math.pi * 100 / 200)) / 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = run_mmengine(sgd, [warmup, cosine, momentum], 10, 205)
    assert_rows_close(ours, theirs)


@pytest.mark.parametrize("cfg, where", [
    (dict(type="LinearLR", start_factor=2.0, by_epoch=False), "start_factor"),
    (dict(type="CosineAnnealingLR", eta_min=0.0, eta_min_ratio=0.1, by_epoch=False), "eta_min_ratio"),
    (dict(type="CosineRestartLR", periods=[5], by_epoch=False), "eta_min"),
    (dict(type="StepLR", step_size=0, by_epoch=False), "step_size"),
    (dict(type="LinearLR", begin=5, end=5, by_epoch=False), "end"),
    (dict(type="LinearLR", by_epoch=False, convert_to_iter_based=True), "convert_to_iter_based"),
    (dict(type="OneCycleLR", eta_max=0.1, by_epoch=False), "end"),
    (dict(type="OneCycleMomentum", by_epoch=False), "type"),
    (dict(type="ReduceOnPlateauLR", by_epoch=False), "by_epoch"),
    (dict(type="LinearParamScheduler", param_name="weight_decy", by_epoch=False), "param_name"),
    (dict(type="WarmupStableDecayLR", warmup_steps=-1, decay_steps=3, stable_steps=3), "warmup_steps"),
    (dict(type="WarmupStableDecayLR", warmup_steps=1, decay_stepz=3), "decay_stepz"),
])
def test_bad_values_name_their_key(cfg: dict[str, Any], where: str) -> None:
    with pytest.raises(ConfigError) as info:
        build_scheduler(sgd(), cfg)
    assert any(p.path == ("param_scheduler[0]", where) for p in info.value.problems), str(info.value)


def test_param_name_typo_suggests_a_group_key() -> None:
    with pytest.raises(ConfigError, match="Did you mean 'weight_decay'"):
        build_scheduler(sgd(), dict(type="LinearParamScheduler", param_name="weight_decy", by_epoch=False))


def test_momentum_without_momentum_or_betas() -> None:
    optimizer = torch.optim.Adagrad(_params(), lr=0.1)
    with pytest.raises(ConfigError, match="neither 'momentum' nor 'betas'"):
        build_scheduler(optimizer, dict(type="LinearMomentum", by_epoch=False))


def test_missing_metric_names_the_monitor() -> None:
    cfg = dict(type="ReduceOnPlateauLR", monitor="accuracy", rule="greater")
    schedule = build_scheduler(sgd(), cfg, epoch_length=2)
    schedule.step()
    schedule.step()
    with pytest.raises(MetricMissingError, match="'accuracy'.*Did you mean 'acuracy'"):
        schedule.observe({"acuracy": 0.5})


# -------------------------------------------------------------------------- registry, torch
def test_registry_holds_every_mmengine_name() -> None:
    import mmengine.optim  # noqa: F401
    from mmengine.registry import PARAM_SCHEDULERS

    theirs = {n for n in PARAM_SCHEDULERS.module_dict if n.endswith(("LR", "Momentum", "ParamScheduler"))}
    assert theirs <= set(SCHEDULERS.names())


def test_torch_interface() -> None:
    optimizer = sgd()
    schedule = build_scheduler(optimizer, dict(type="ExponentialLR", gamma=0.5, by_epoch=False, end=INF))
    assert isinstance(schedule, torch.optim.lr_scheduler.LRScheduler)
    assert schedule.last_epoch == 0 and schedule.base_lrs == [0.1, 0.01, 0.025]
    schedule.step()
    assert schedule.get_last_lr() == pytest.approx([0.05, 0.005, 0.0125])
    assert schedule.values_at(3)["lr"] == pytest.approx([0.0125, 0.00125, 0.003125])
    assert schedule.state_dict() == {"step": 1, "plateau": {}}
    assert all(g["initial_lr"] == lr for g, lr in zip(optimizer.param_groups, [0.1, 0.01, 0.025]))


def test_tensor_lr_from_the_config_is_copied_and_scheduled_in_place() -> None:
    """lr=torch.tensor(...) in the config: the groups get their own tensors, the schedule fills them."""
    model = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Linear(3, 2))
    lr = torch.tensor(0.01)
    cfg = dict(type="AdamW", lr=lr, foreach=False, paramwise_cfg=dict(custom_keys={"1": dict(lr_mult=10.0)}))
    optimizer = paramwise.build_optimizer(model, cfg)
    tensors = [g["lr"] for g in optimizer.param_groups]
    assert all(isinstance(t, torch.Tensor) for t in tensors) and all(t is not lr for t in tensors)
    schedule = paramwise.build_scheduler(optimizer, dict(type="LinearLR", start_factor=0.5, by_epoch=False,
                                                         begin=0, end=4))
    for _ in range(3):
        schedule.step()
    assert all(g["lr"] is t for g, t in zip(optimizer.param_groups, tensors))  # written in place
    assert float(tensors[1]) / float(tensors[0]) == pytest.approx(10.0)
    assert float(lr) == pytest.approx(0.01)  # the config's tensor is untouched
