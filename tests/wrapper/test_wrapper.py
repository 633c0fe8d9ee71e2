"""The optimizer wrapper: mmengine's OptimWrapper/AmpOptimWrapper as the reference, then what paramwise adds.

Deliberate differences from mmengine, and how the comparison accounts for them:

- mmengine's ``AmpOptimWrapper`` refuses to build without a GPU; its ``is_cuda_available`` is patched
  to say yes. Its ``torch.cuda.amp.GradScaler`` then disables itself on the CPU, which is what
  paramwise does for bfloat16 (nothing to scale).
- mmengine's ``AmpOptimWrapper.optim_context`` imports ``mmengine.runner.amp``, whose package imports
  OpenCV; the ``amp`` module alone is loaded from its file under a stub ``mmengine.runner`` package.
- mmengine builds one group per parameter, paramwise merges equal ones: clipping sums the same
  squares in another order, so parameters are compared with ``allclose`` at float32 precision.
"""

from __future__ import annotations

import copy
import importlib.util
import math
import sys
import types
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from unittest import mock

import pytest
import torch
from torch import nn

import paramwise
from model_zoo import Transformer
from paramwise.errors import ConfigError, ParamwiseWarning, UsageTypeError
from paramwise.wrapper.optim_wrapper import (
    OPTIM_WRAPPERS,
    AmpOptimWrapper,
    OptimWrapper,
    OptimWrapperDict,
    build_optim_wrapper,
    check_wrapper_config,
    group_labels,
)

CUDA = torch.cuda.is_available()
SGD = dict(type="SGD", lr=0.1, momentum=0.9, weight_decay=1e-3)
PW = dict(custom_keys={"head": dict(lr_mult=2.0)}, norm_decay_mult=0.0)
NORM = dict(type="norm", max_norm=0.05, norm_type=2)
VALUE = dict(type="value", clip_value=0.01)


class Net(nn.Module):
    """A backbone with a norm layer and a head: three groups under ``PW``."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(6, 16), nn.LayerNorm(16), nn.GELU(), nn.Linear(16, 16))
        self.head = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))


def net(seed: int = 0) -> Net:
    torch.manual_seed(seed)
    return Net()


def batches(n: int, size: int = 2, seed: int = 1) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(size, 6, generator=g), torch.randn(size, 3, generator=g)) for _ in range(n)]


def loss_of(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return nn.functional.mse_loss(model(x).float(), y)


def train(wrapper: Any, model: nn.Module, data: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> None:
    for x, y in data:
        with wrapper.optim_context(model):
            loss = loss_of(model, x, y)
        wrapper.update_params(loss)


def params(model: nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def assert_close(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], exact: bool = False) -> None:
    assert a.keys() == b.keys()
    for name in a:
        if exact:
            assert torch.equal(a[name], b[name]), name
        else:
            torch.testing.assert_close(a[name], b[name], rtol=1e-5, atol=1e-6, msg=name)


# ------------------------------------------------------------------------------- mmengine, the reference
@contextmanager
def mmengine_on_cpu() -> Iterator[Any]:
    """mmengine's optim package, its AmpOptimWrapper allowed on the CPU (see the module docstring)."""
    mm_optim = pytest.importorskip("mmengine.optim")
    amp_wrapper = sys.modules["mmengine.optim.optimizer.amp_optimizer_wrapper"]
    patches: dict[str, Any] = {}
    if "mmengine.runner.amp" not in sys.modules:
        import mmengine

        path = f"{mmengine.__path__[0]}/runner/amp.py"
        spec = importlib.util.spec_from_file_location("mmengine.runner.amp", path)
        assert spec is not None and spec.loader is not None
        amp = importlib.util.module_from_spec(spec)
        runner = types.ModuleType("mmengine.runner")
        runner.__path__ = []  # a package, so `mmengine.runner.amp` resolves through sys.modules
        patches = {"mmengine.runner": runner, "mmengine.runner.amp": amp}
    # only these two entries: mock.patch.dict would also drop every module imported meanwhile (torch's too)
    saved = {name: sys.modules.get(name) for name in patches}
    sys.modules.update(patches)
    try:
        with mock.patch.object(amp_wrapper, "is_cuda_available", lambda: True), warnings.catch_warnings():
            if patches:
                spec.loader.exec_module(patches["mmengine.runner.amp"])
            warnings.simplefilter("ignore")  # torch.cuda.amp's deprecation and "CUDA is not available"
            yield mm_optim
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def mm_config(wrapper_type: str, acc: int, clip: dict[str, Any] | None) -> dict[str, Any]:
    cfg: dict[str, Any] = dict(type=wrapper_type, optimizer=dict(SGD), paramwise_cfg=copy.deepcopy(PW),
                               accumulative_counts=acc)
    if clip is not None:
        cfg["clip_grad"] = dict(clip)
    if wrapper_type == "AmpOptimWrapper":
        cfg["dtype"] = "bfloat16"
    return cfg


@pytest.mark.parametrize("wrapper_type", ["OptimWrapper", "AmpOptimWrapper"])
@pytest.mark.parametrize("acc", [1, 4])
@pytest.mark.parametrize("clip", [None, NORM, VALUE], ids=["no-clip", "norm", "value"])
def test_same_parameters_as_mmengine(wrapper_type: str, acc: int, clip: dict[str, Any] | None) -> None:
    data = batches(10)  # with 4: windows of 4, 4 and a partial 2
    ours_model, mm_model = net(), net()
    with mmengine_on_cpu() as mm_optim, warnings.catch_warnings():
        warnings.simplefilter("ignore", ParamwiseWarning)
        mm = mm_optim.build_optim_wrapper(mm_model, mm_config(wrapper_type, acc, clip))
        ours = build_optim_wrapper(ours_model, mm_config(wrapper_type, acc, clip))
        assert type(mm).__name__ == type(ours).__name__ == wrapper_type
        mm.initialize_count_status(mm_model, 0, len(data))
        ours.initialize_count_status(ours_model, 0, len(data))
        train(mm, mm_model, data)
        train(ours, ours_model, data)
    assert ours.step_count == math.ceil(len(data) / acc)
    assert ours.inner_count == mm.inner_count == len(data)
    assert_close(params(ours_model), params(mm_model))
    assert params(ours_model)["head.weight"].ne(params(net())["head.weight"]).any()  # it did train


OptimizerState = tuple[dict[str, Any], dict[str, Any]]


def optimizer_state(model: nn.Module, wrapper: Any) -> OptimizerState:
    """(state tensors, hyperparameters) per parameter name: comparable whatever the groups and their order."""
    optimizer = wrapper.optimizer
    names = {id(p): n for n, p in model.named_parameters()}
    state = {names[id(p)]: {k: v.clone() for k, v in s.items()} for p, s in optimizer.state.items()}
    hyper = {names[id(p)]: {k: group[k] for k in optimizer.defaults} for group in optimizer.param_groups
             for p in group["params"]}
    return state, hyper


def assert_same_optimizer_state(a: OptimizerState, b: OptimizerState) -> None:
    (a_state, a_hyper), (b_state, b_hyper) = a, b
    assert a_hyper == b_hyper
    assert a_state.keys() == b_state.keys()
    for name in a_state:
        assert a_state[name].keys() == b_state[name].keys(), name
        for key in a_state[name]:
            assert torch.equal(a_state[name][key], b_state[name][key]), (name, key)


def counters(wrapper: Any) -> tuple[int, int, int | None]:
    """inner_count, max_counts and (paramwise only) step_count."""
    return wrapper.inner_count, wrapper._max_counts, getattr(wrapper, "step_count", None)


def test_mmengine_loads_our_state_dict_and_we_load_its() -> None:
    """Each load gives the loading side the source's optimizer state and hyperparameters, and the same next step.

    mmengine's state dict holds only the optimizer's (its runner sets the counters), so counters travel
    only between paramwise wrappers; a load from mmengine keeps ours, and mmengine ignores our extra key.
    Each state dict is loaded as a copy, as from a checkpoint file: torch's optimizer keeps the tensors it
    is given, so a state dict loaded in-process would leave the two sides stepping the same tensors.
    """
    ours_model, mm_model = net(), net()
    with mmengine_on_cpu() as mm_optim:
        mm = mm_optim.build_optim_wrapper(mm_model, dict(optimizer=dict(type="AdamW", lr=3e-3, weight_decay=0.1)))
        ours = build_optim_wrapper(ours_model, dict(optimizer=dict(type="AdamW", lr=1e-2, betas=(0.8, 0.9))))
        train(ours, ours_model, batches(3, seed=1))
        train(mm, mm_model, batches(5, seed=2))  # other data, steps and hyperparameters: nothing is equal yet
        assert optimizer_state(mm_model, mm)[1] != optimizer_state(ours_model, ours)[1]
        step = batches(1, seed=9)

        # ours -> mmengine
        mm_counters = counters(mm)
        mm_model.load_state_dict(ours_model.state_dict())
        mm.load_state_dict(copy.deepcopy(ours.state_dict()))  # our extra key is left for torch, which ignores it
        assert_same_optimizer_state(optimizer_state(mm_model, mm), optimizer_state(ours_model, ours))
        assert counters(mm) == mm_counters
        train(mm, mm_model, step)
        train(ours, ours_model, step)
        assert_close(params(mm_model), params(ours_model))

        # mmengine -> ours: the state moves by name; our config wins for hyperparameters (docs/checkpoint.md)
        train(mm, mm_model, batches(2, seed=3))
        mm.optimizer.param_groups[0]["lr"] = 5e-3  # as a schedule would have set it
        ours_counters, ours_hyper = counters(ours), optimizer_state(ours_model, ours)[1]
        ours_model.load_state_dict(mm_model.state_dict())
        with pytest.warns(ParamwiseWarning, match="lr: 0.005 in the checkpoint -> 0.01 now"):
            ours.load_state_dict(copy.deepcopy(mm.state_dict()))
        assert_same_optimizer_state(optimizer_state(ours_model, ours), (optimizer_state(mm_model, mm)[0], ours_hyper))
        report = paramwise.last_load_report(ours.optimizer)
        assert report is not None and [(c.key, c.saved, c.current) for c in report.changed] == [("lr", 5e-3, 1e-2)]
        assert counters(ours) == ours_counters
        mm.optimizer.param_groups[0]["lr"] = 1e-2  # the same hyperparameters again: the same step
        train(mm, mm_model, step)
        train(ours, ours_model, step)
        assert_close(params(ours_model), params(mm_model))

    # ours -> ours (a resumed run, the same config): the counters travel too
    again_model = net(seed=5)
    again = build_optim_wrapper(again_model, dict(optimizer=dict(type="AdamW", lr=1e-2, betas=(0.8, 0.9))))
    again_model.load_state_dict(ours_model.state_dict())
    again.load_state_dict(copy.deepcopy(ours.state_dict()))
    assert_same_optimizer_state(optimizer_state(again_model, again), optimizer_state(ours_model, ours))
    assert counters(again) == counters(ours) == (5, -1, 5)
    train(again, again_model, step)
    train(ours, ours_model, step)
    assert_close(params(again_model), params(ours_model), exact=True)


# ---------------------------------------------------------------------------------------- accumulation
@pytest.mark.parametrize("windows", [[4, 4], [4, 4, 2]], ids=["even", "partial-last-window"])
def test_accumulating_micro_batches_equals_one_larger_batch(windows: list[int]) -> None:
    micro = batches(sum(windows), size=2)
    a_model, b_model = net(), net()
    accumulated = build_optim_wrapper(a_model, dict(optimizer=dict(SGD), accumulative_counts=4))
    accumulated.initialize_count_status(a_model, 0, len(micro))
    train(accumulated, a_model, micro)
    single = build_optim_wrapper(b_model, dict(optimizer=dict(SGD)))
    start = 0
    for size in windows:  # one batch as large as the window: the mean over all its samples
        chunk = micro[start:start + size]
        start += size
        single.update_params(loss_of(b_model, torch.cat([c[0] for c in chunk]), torch.cat([c[1] for c in chunk])))
    assert accumulated.step_count == single.step_count == len(windows)
    assert_close(params(a_model), params(b_model))


def test_without_the_run_length_every_window_is_full() -> None:
    model = net()
    wrapper = build_optim_wrapper(model, dict(optimizer=dict(SGD), accumulative_counts=4))
    sizes = []
    for x, y in batches(6):
        sizes.append(wrapper.window_size())
        wrapper.update_params(loss_of(model, x, y))
    assert sizes == [4] * 6 and wrapper.step_count == 1
    wrapper.initialize_count_status(model, 0, 6)
    assert [wrapper.window_size() for wrapper._inner_count in range(6)] == [4, 4, 4, 4, 2, 2]


class FakeDDP(nn.Module):
    """Records the iterations whose forward ran under ``no_sync()``, as DDP's would skip the all-reduce."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module
        self.unsynced = 0

    @contextmanager
    def no_sync(self) -> Iterator[None]:
        self.unsynced += 1
        yield

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x)


def test_optim_context_skips_the_gradient_sync_on_iterations_that_do_not_step() -> None:
    model = FakeDDP(net())
    wrapper = build_optim_wrapper(model, dict(optimizer=dict(SGD), accumulative_counts=3))
    wrapper.initialize_count_status(model, 0, 7)
    synced = []
    for x, y in batches(7):
        before = model.unsynced
        with wrapper.optim_context(model):
            loss = loss_of(model, x, y)
        synced.append(model.unsynced == before)
        wrapper.update_params(loss)
    assert synced == [False, False, True, False, False, True, True]  # the last window (1 iteration) syncs
    assert list(dict(model.named_parameters())) == [f"module.{n}" for n in dict(net().named_parameters())]


def test_initialize_count_status_warns_and_checks() -> None:
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    wrapper = build_optim_wrapper(model, dict(optimizer=dict(SGD), accumulative_counts=2))
    with pytest.warns(ParamwiseWarning) as caught:
        wrapper.initialize_count_status(model, 3, 10)
    text = " ".join(str(w.message) for w in caught)
    assert "inside an accumulation window" in text and "BatchNorm" in text
    with pytest.raises(UsageTypeError, match="max_counts"):
        wrapper.initialize_count_status(model, 0, -1)


# -------------------------------------------------------------------------------------------- clipping
def hand_loop(model: nn.Module, data: Sequence[tuple[torch.Tensor, torch.Tensor]],
              clip: Callable[[torch.optim.Optimizer], list[torch.Tensor]]) -> list[list[torch.Tensor]]:
    optimizer = paramwise.build_optimizer(model, dict(SGD, paramwise_cfg=PW))
    norms = []
    for x, y in data:
        loss_of(model, x, y).backward()
        norms.append(clip(optimizer))
        optimizer.step()
        optimizer.zero_grad()
    return norms


def wrapper_loop(model: nn.Module, data: Sequence[tuple[torch.Tensor, torch.Tensor]],
                 clip_grad: dict[str, Any]) -> tuple[OptimWrapper, list[Any]]:
    wrapper = build_optim_wrapper(model, dict(optimizer=dict(SGD), paramwise_cfg=PW, clip_grad=clip_grad))
    norms = []
    for x, y in data:
        wrapper.update_params(loss_of(model, x, y))
        norms.append(wrapper.last_grad_norm)
    assert isinstance(wrapper, OptimWrapper)
    return wrapper, norms


def all_params(optimizer: torch.optim.Optimizer) -> list[torch.Tensor]:
    return [p for g in optimizer.param_groups for p in g["params"]]


def test_norm_clipping_equals_clipping_by_hand() -> None:
    a, b, data = net(), net(), batches(5)
    _, norms = wrapper_loop(a, data, dict(max_norm=0.05))  # type defaults to 'norm', as mmengine
    by_hand = hand_loop(b, data, lambda o: [nn.utils.clip_grad_norm_(all_params(o), 0.05)])
    assert_close(params(a), params(b))
    assert norms == pytest.approx([float(n[0]) for n in by_hand])
    assert all(n > 0.05 for n in norms)  # the bound was hit: clipping did something


def test_value_clipping_equals_clipping_by_hand_and_reports_no_norm() -> None:
    a, b, data = net(), net(), batches(5)
    wrapper, norms = wrapper_loop(a, data, VALUE)
    hand_loop(b, data, lambda o: [nn.utils.clip_grad_value_(all_params(o), 0.01)] and [])
    assert_close(params(a), params(b), exact=True)
    assert norms == [None] * 5 and wrapper.last_grad_norm is None


def test_per_group_clipping_equals_clipping_each_group_by_hand() -> None:
    a, b, data = net(), net(), batches(5)
    wrapper, norms = wrapper_loop(a, data, dict(type="norm", max_norm=0.05, per_group=True))
    by_hand = hand_loop(b, data, lambda o: [nn.utils.clip_grad_norm_(g["params"], 0.05) for g in o.param_groups])
    assert_close(params(a), params(b), exact=True)
    labels = wrapper.group_names
    assert len(labels) == 3 and all(isinstance(n, dict) and list(n) == labels for n in norms)
    assert [list(n.values()) for n in norms] == [[float(v) for v in row] for row in by_hand]


def test_clipping_only_named_parameters() -> None:
    a, b, data = net(), net(), batches(5)
    wrapper, norms = wrapper_loop(a, data, dict(type="norm", max_norm=0.05, groups=["head"]))

    def head_only(o: torch.optim.Optimizer) -> list[torch.Tensor]:
        head = [p for g in o.param_groups for n, p in zip(g["param_names"], g["params"]) if "head" in n]
        return [nn.utils.clip_grad_norm_(head, 0.05)]

    by_hand = hand_loop(b, data, head_only)
    assert_close(params(a), params(b), exact=True)
    assert norms == [float(n[0]) for n in by_hand]
    assert "only ['head']" in repr(wrapper.clip_policy)


def test_clipping_groups_by_index_and_infinity_norm() -> None:
    a, b, data = net(), net(), batches(3)
    wrapper_loop(a, data, dict(type="norm", max_norm=0.01, norm_type="inf", groups=[0, 2], per_group=True))
    hand_loop(b, data, lambda o: [nn.utils.clip_grad_norm_(o.param_groups[i]["params"], 0.01, norm_type=math.inf)
                                  for i in (0, 2)])
    assert_close(params(a), params(b), exact=True)


# ------------------------------------------------------------------------------------- mixed precision
def test_bfloat16_autocasts_on_the_cpu_without_a_scaler() -> None:
    model = net()
    wrapper = build_optim_wrapper(model, dict(type="AmpOptimWrapper", dtype="bfloat16", optimizer=dict(SGD)))
    assert isinstance(wrapper, AmpOptimWrapper) and wrapper.loss_scaler is None
    with wrapper.optim_context(model):
        assert model(torch.randn(2, 6)).dtype == torch.bfloat16
    assert model(torch.randn(2, 6)).dtype == torch.float32
    assert "loss_scaler" not in wrapper.state_dict() and wrapper.skipped_steps == 0


def test_bfloat16_with_a_loss_scale_warns_that_it_is_unused() -> None:
    with pytest.warns(ParamwiseWarning, match="not used"):
        build_optim_wrapper(net(), dict(type="AmpOptimWrapper", dtype="bfloat16", loss_scale=512.0,
                                        optimizer=dict(SGD)))


@pytest.mark.skipif(CUDA, reason="checks the CPU's refusal of float16; CUDA runs the float16 tests below")
def test_float16_needs_cuda() -> None:
    with pytest.raises(ConfigError, match="float16 mixed precision needs a CUDA model") as e:
        build_optim_wrapper(net(), dict(type="AmpOptimWrapper", dtype="float16", optimizer=dict(SGD)))
    assert e.value.problems[0].path == ("optim_wrapper", "dtype")


@pytest.mark.skipif(not CUDA, reason="float16 mixed precision with a GradScaler runs on CUDA only")
@pytest.mark.parametrize("loss_scale", ["dynamic", 1024.0, dict(init_scale=256.0, growth_interval=2)])
def test_float16_skips_and_counts_a_step_with_inf_gradients(loss_scale: Any) -> None:
    model = net().cuda()
    wrapper = build_optim_wrapper(model, dict(type="AmpOptimWrapper", dtype="float16", loss_scale=loss_scale,
                                              optimizer=dict(SGD), clip_grad=dict(max_norm=1.0)))
    assert isinstance(wrapper, AmpOptimWrapper) and wrapper.loss_scaler is not None
    x, y = (t.cuda() for t in batches(1)[0])
    with wrapper.optim_context(model):
        assert model(x).dtype == torch.float16
        loss = loss_of(model, x, y)
    before = params(model)
    wrapper.update_params(loss * float("inf"))
    assert_close(params(model), before, exact=True)
    assert wrapper.skipped_steps == 1 and wrapper.step_count == 1
    with wrapper.optim_context(model):
        loss = loss_of(model, x, y)
    wrapper.update_params(loss)
    assert wrapper.skipped_steps == 1 and wrapper.step_count == 2
    assert not torch.equal(params(model)["head.weight"], before["head.weight"])
    assert wrapper.last_grad_norm is not None and math.isfinite(wrapper.last_grad_norm)  # unscaled: the real norm
    assert wrapper.state_dict()["paramwise_wrapper"]["skipped_steps"] == 1


# ------------------------------------------------------------------------------------------ lr and logs
def test_get_lr_keeps_mmengines_list_and_adds_every_group() -> None:
    model = net()
    wrapper = build_optim_wrapper(model, dict(optimizer=dict(SGD), paramwise_cfg=PW))
    got = wrapper.get_lr()
    assert got["lr"] == [g["lr"] for g in wrapper.param_groups]
    assert got == {"lr": [0.1, 0.1, 0.2], "lr/backbone": [0.1], "lr/backbone.1": [0.1], "lr/head": [0.2]}
    assert wrapper.get_momentum()["momentum/head"] == [0.9]
    adam = build_optim_wrapper(model, dict(optimizer=dict(type="AdamW", lr=1e-3)))
    assert adam.get_lr() == {"lr": [1e-3], "lr/all": [1e-3]} and adam.get_momentum()["momentum"] == [0.9]


def test_group_labels() -> None:
    def groups(*names: list[str]) -> list[dict[str, Any]]:
        return [{"param_names": n} for n in names]

    assert group_labels(groups(["a.b.w", "a.b.c.w"], ["a.x"], ["p.w", "q.w"], ["p.b", "q.b", "r.b", "s.b"])) == [
        "a.b", "a.x", "p+q", "group3"]
    assert group_labels([{"params": []}, {"params": []}]) == ["group0", "group1"]
    assert group_labels(groups(["a.w", "a.b"], ["a.c.w", "a.d.w"])) == ["a#0", "a#1"]


def test_a_schedule_drives_the_wrappers_optimizer() -> None:
    model = net()
    wrapper = build_optim_wrapper(model, dict(optimizer=dict(SGD), paramwise_cfg=PW, accumulative_counts=2))
    schedule = paramwise.build_scheduler(wrapper.optimizer, dict(type="LinearLR", start_factor=0.5, by_epoch=False,
                                                                 begin=0, end=4))
    seen = []
    for x, y in batches(6):
        seen.append(wrapper.get_lr()["lr/head"][0])
        wrapper.update_params(loss_of(model, x, y))
        schedule.step()
    # mmengine's LinearLR reaches the full lr at end - 1
    assert seen == pytest.approx([0.1, 0.1 + 0.1 / 3, 0.2 - 0.1 / 3, 0.2, 0.2, 0.2])
    assert wrapper.get_lr()["lr"] == pytest.approx([0.1, 0.1, 0.2])


# ------------------------------------------------------------------------------------------------ resume
@pytest.mark.parametrize("wrapper_type", ["OptimWrapper", "AmpOptimWrapper"])
@pytest.mark.parametrize("stop", [6, 7], ids=["window-boundary", "mid-window"])
def test_resume_through_the_state_dict_continues_bit_identically(wrapper_type: str, stop: int) -> None:
    cfg = dict(type=wrapper_type, optimizer=dict(type="AdamW", lr=1e-2, weight_decay=0.05), paramwise_cfg=PW,
               clip_grad=dict(max_norm=0.05), accumulative_counts=2)
    if wrapper_type == "AmpOptimWrapper":
        cfg["dtype"] = "bfloat16"
    data = batches(11)
    model = net()
    wrapper = build_optim_wrapper(model, cfg)
    wrapper.initialize_count_status(model, 0, len(data))
    train(wrapper, model, data[:stop])
    saved = copy.deepcopy((model.state_dict(), wrapper.state_dict()))
    train(wrapper, model, data[stop:])

    resumed_model = net(seed=5)  # other weights: everything must come from the state
    resumed = build_optim_wrapper(resumed_model, cfg)
    resumed_model.load_state_dict(saved[0])
    state = saved[1]
    resumed.load_state_dict(state)
    assert "paramwise_wrapper" in state  # the caller's dict is left as it was
    with warnings.catch_warnings():
        warnings.simplefilter("error", ParamwiseWarning)  # the window's gradients came back: no warning
        resumed.initialize_count_status(resumed_model, stop, len(data))
    train(resumed, resumed_model, data[stop:])
    assert_close(params(resumed_model), params(model), exact=True)
    assert (resumed.step_count, resumed.inner_count) == (wrapper.step_count, wrapper.inner_count) == (6, 11)


# ------------------------------------------------------------------------------------------ constructors
def test_any_constructor_builds_the_optimizer() -> None:
    model = Transformer()
    wrapper = build_optim_wrapper(model, dict(optimizer=dict(type="AdamW", lr=1e-3),
                                              paramwise_cfg=dict(layer_decay=0.5), clip_grad=dict(max_norm=1.0)))
    lrs = {v[0] for k, v in wrapper.get_lr().items() if k != "lr"}
    assert len(lrs) > 2  # layer-wise decay made several learning rates

    @paramwise.OPTIMIZER_BUILDERS.register_module(name="HeadOnlyForWrapperTest", force=True)
    class HeadOnly(paramwise.DefaultOptimWrapperConstructor):
        def add_params(self, params: list[dict[str, Any]], module: nn.Module, prefix: str = "",
                       is_dcn_module: Any = None) -> None:
            if prefix == "head":
                params.append({"params": list(module.parameters()), "lr": self.base_lr * 10})
            elif prefix == "":
                for name, child in module.named_children():
                    self.add_params(params, child, name)

    small = net()
    for p in small.backbone.parameters():
        p.requires_grad_(False)
    with pytest.warns(ParamwiseWarning, match="requires_grad=False"):
        custom = build_optim_wrapper(small, dict(optimizer=dict(SGD), constructor="HeadOnlyForWrapperTest"))
    assert custom.get_lr() == {"lr": [1.0], "lr/all": [1.0]}


def test_registry_builds_the_wrappers_by_name() -> None:
    assert {"OptimWrapper", "AmpOptimWrapper", "OptimWrapperDict"} <= set(OPTIM_WRAPPERS.names())
    optimizer = torch.optim.SGD(net().parameters(), lr=0.1)
    built = OPTIM_WRAPPERS.build(dict(type="OptimWrapper", optimizer=optimizer, accumulative_counts=2))
    assert isinstance(built, OptimWrapper) and built.accumulative_counts == 2 and built.group_names == ["all"]


def test_a_wrapper_per_submodule_gives_an_optim_wrapper_dict() -> None:
    model = net()
    wrappers = build_optim_wrapper(model, dict(backbone=dict(optimizer=dict(SGD)),
                                               head=dict(type="AmpOptimWrapper", dtype="bfloat16",
                                                         optimizer=dict(type="AdamW", lr=1e-3))))
    assert isinstance(wrappers, OptimWrapperDict) and list(wrappers) == ["backbone", "head"]
    assert wrappers.get_lr() == {"backbone.lr": [0.1], "backbone.lr/all": [0.1], "head.lr": [1e-3],
                                 "head.lr/all": [1e-3]}
    x, y = batches(1)[0]
    with wrappers["head"].optim_context(model):
        loss = loss_of(model, x, y)
    wrappers["head"].update_params(loss)
    wrappers.load_state_dict(wrappers.state_dict())
    with pytest.raises(NotImplementedError):
        wrappers.update_params(loss)
    with pytest.raises(ConfigError, match="Did you mean 'head'") as e:
        build_optim_wrapper(model, dict(heads=dict(optimizer=dict(SGD))))
    assert e.value.problems[0].path == ("optim_wrapper", "heads")
    with pytest.raises(ConfigError) as e:
        build_optim_wrapper(model, dict(head=dict(optimizer=dict(SGD), accumulative_count=2)))
    assert e.value.problems[0].path == ("optim_wrapper", "head", "accumulative_count")


# ----------------------------------------------------------------------------------------- config errors
def paths(problems: Sequence[paramwise.Problem]) -> dict[tuple[str, ...], str]:
    return {p.path: p.message for p in problems}


def test_typos_get_a_did_you_mean_at_their_path() -> None:
    found = paths(check_wrapper_config(dict(type="OptimWrapper", clip_grads=dict(max_norm=1), accumulative_count=2,
                                            lr=0.1, dtype="float16")))
    assert "Did you mean 'clip_grad'?" in found[("optim_wrapper", "clip_grads")]
    assert "Did you mean 'accumulative_counts'?" in found[("optim_wrapper", "accumulative_count")]
    assert "move it into optim_wrapper['optimizer']" in found[("optim_wrapper", "lr")]
    assert "type='AmpOptimWrapper'" in found[("optim_wrapper", "dtype")]
    found = paths(check_wrapper_config(dict(type="AmpOptimWraper", clip_grads=None)))
    assert "Did you mean 'AmpOptimWrapper'" in found[("optim_wrapper", "type")]
    assert ("optim_wrapper", "clip_grads") in found  # the other keys are still checked


@pytest.mark.parametrize("wrapper, path, text", [
    (dict(clip_grad=dict(type="norms", max_norm=1)), ("clip_grad", "type"), "Did you mean 'norm'?"),
    (dict(clip_grad=dict(max_norm=0)), ("clip_grad", "max_norm"), "must be a number > 0, got 0"),
    (dict(clip_grad=dict(max_norm="1")), ("clip_grad", "max_norm"), "write 1 without quotes"),
    (dict(clip_grad=dict(type="norm")), ("clip_grad", "max_norm"), "is missing"),
    (dict(clip_grad=dict(max_norm=1, norm_type=-2)), ("clip_grad", "norm_type"), "must be a number > 0"),
    (dict(clip_grad=dict(max_norm=1, norm_type="l2")), ("clip_grad", "norm_type"), "'inf'"),
    (dict(clip_grad=dict(max_norm=1, clip_value=1)), ("clip_grad", "clip_value"), "type='value'"),
    (dict(clip_grad=dict(type="value", clip_value=-1)), ("clip_grad", "clip_value"), "must be a number > 0"),
    (dict(clip_grad=dict(type="value", clip_value=1, per_group=True)), ("clip_grad", "per_group"), "type='norm'"),
    (dict(clip_grad=dict(max_norm=1, per_group=1)), ("clip_grad", "per_group"), "True or False"),
    (dict(clip_grad=dict(max_norm=1, groups="head")), ("clip_grad", "groups"), "list"),
    (dict(clip_grad=dict(max_norm=1, groups=["head", 1.5])), ("clip_grad", "groups[1]"), "substring"),
    (dict(clip_grad=1.0), ("clip_grad",), "dict"),
    (dict(accumulative_counts=0), ("accumulative_counts",), "whole number in [1, 2147483647]"),
    (dict(accumulative_counts=2.0), ("accumulative_counts",), "whole number"),
    (dict(accumulative_counts=True), ("accumulative_counts",), "whole number"),
    (dict(type="AmpOptimWrapper", dtype="bf16"), ("dtype",), "Did you mean 'bfloat16'?"),
    (dict(type="AmpOptimWrapper", dtype="float32"), ("dtype",), "full precision"),
    (dict(type="AmpOptimWrapper", dtype=3), ("dtype",), "'float16', 'bfloat16' or None"),
    (dict(type="AmpOptimWrapper", loss_scale="dynamc"), ("loss_scale",), "Did you mean 'dynamic'?"),
    (dict(type="AmpOptimWrapper", loss_scale=-1.0), ("loss_scale",), "must be a number > 0"),
    (dict(type="AmpOptimWrapper", loss_scale=dict(init_scal=2.0)), ("loss_scale", "init_scal"), "'init_scale'"),
    (dict(type="AmpOptimWrapper", loss_scale=dict(backoff_factor=2.0)), ("loss_scale", "backoff_factor"),
     "must be a number in (0, 1), got 2.0"),
    (dict(type="AmpOptimWrapper", use_fsdp="yes"), ("use_fsdp",), "True or False"),
    (dict(type="OptimWrapperDict"), ("type",), "one wrapper per submodule"),
    (dict(type=3), ("type",), "name of an optimizer wrapper"),
])
def test_invalid_values_are_reported_at_their_path(wrapper: dict[str, Any], path: tuple[str, ...], text: str) -> None:
    found = paths(check_wrapper_config(wrapper))
    assert text in found[("optim_wrapper", *path)], found


def test_valid_configs_have_no_problems() -> None:
    for wrapper in [dict(), dict(type="OptimWrapper", clip_grad=None, accumulative_counts=3),
                    dict(clip_grad=dict(max_norm=1, norm_type="inf", error_if_nonfinite=True, foreach=None)),
                    dict(clip_grad=dict(type="value", clip_value=0.5, groups=["head", 0])),
                    dict(type="AmpOptimWrapper", dtype=None, loss_scale="dynamic"),
                    dict(type="AmpOptimWrapper", dtype=torch.bfloat16, loss_scale=512),
                    dict(type="AmpOptimWrapper", loss_scale=dict(init_scale=2.0**10, growth_interval=100)),
                    paramwise.optimizer_config(dict(optim_wrapper=dict(
                        type="AmpOptimWrapper", optimizer=dict(SGD), clip_grad=dict(max_norm=1),
                        dtype="bfloat16"))).wrapper]:
        assert check_wrapper_config(wrapper) == [], wrapper


def test_build_raises_every_problem_at_once_with_paths() -> None:
    with pytest.raises(ConfigError) as e:
        build_optim_wrapper(net(), dict(type="OptimWrapper", optimizer=dict(SGD), clip_grads=dict(max_norm=1),
                                        accumulative_counts=0))
    assert set(paths(e.value.problems)) == {("optim_wrapper", "clip_grads"), ("optim_wrapper", "accumulative_counts")}
    with pytest.raises(ConfigError) as e:
        build_optim_wrapper(net(), dict(optimizer=dict(SGD), clip_grad=dict(max_norm=1, groups=["haed", 7])))
    found = paths(e.value.problems)
    assert "Did you mean 'head'?" in found[("optim_wrapper", "clip_grad", "groups[0]")]
    assert "1 group (0 to 0)" in found[("optim_wrapper", "clip_grad", "groups[1]")]
    with pytest.raises(ConfigError) as e:  # the optimizer's problems keep their place in the optim_wrapper
        build_optim_wrapper(net(), dict(optimizer=dict(SGD), paramwise_cfg=dict(custom_keys={"head": {"lr_mul": 2}})))
    assert e.value.problems[0].path[:3] == ("optim_wrapper", "paramwise_cfg", "custom_keys")
    with pytest.raises(ConfigError, match="whole config"):
        build_optim_wrapper(net(), dict(optim_wrapper=dict(optimizer=dict(SGD))))
    with pytest.raises(UsageTypeError):
        build_optim_wrapper("model", dict(optimizer=dict(SGD)))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="accumulative_counts"):
        OptimWrapper(torch.optim.SGD(net().parameters(), lr=0.1), accumulative_counts=-1)


def test_build_optim_wrapper_warnings_name_their_optim_wrapper_path() -> None:
    model = nn.Sequential(nn.Linear(2, 2))
    cfg = dict(type="OptimWrapper", optimizer=dict(type="SGD", lr=0.1),
               paramwise_cfg=dict(custom_keys={"nothing_here": dict(lr_mult=0.1)}))
    with pytest.warns(ParamwiseWarning, match=r"^optim_wrapper -> paramwise_cfg -> custom_keys -> nothing_here: "
                                              r"matches no parameter"):
        paramwise.build_optim_wrapper(model, cfg)
