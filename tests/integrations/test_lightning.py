"""paramwise under PyTorch Lightning: the config's optimizer, schedule, clipping, accumulation, logs and
resume by name, each checked against paramwise's own builders on a tiny model for a few CPU steps."""

from __future__ import annotations

import copy
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

pl = pytest.importorskip("pytorch_lightning")

from paramwise import ConfigError, build_optimizer, build_scheduler, group_labels, last_load_report  # noqa: E402
from paramwise.integrations.lightning import ParamwiseCallback, configure_optimizers  # noqa: E402
from paramwise.wrapper.clipping import ClipPolicy, clip_gradients, clip_units  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
BATCHES = 6


class Net(nn.Module):
    def __init__(self, width: int = 8) -> None:
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(4, width), nn.LayerNorm(width), nn.Linear(width, width))
        self.head = nn.Linear(width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.backbone(x)))


class Module(pl.LightningModule):
    """A LightningModule whose optimizer and schedule come from ``cfg``; it records what each step saw."""

    def __init__(self, cfg: dict[str, Any], net: nn.Module | None = None, loss_scale: float = 1.0) -> None:
        super().__init__()
        self.cfg = cfg
        self.net = net if net is not None else Net()
        self.loss_scale = loss_scale
        self.seen_lrs: list[list[float]] = []
        self.clipped_norms: list[list[float]] = []
        self.states_at_start: dict[str, dict[str, torch.Tensor]] = {}

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        out = self.net(x)
        if out.shape != y.shape:  # a language model: logits over the vocabulary
            return self.loss_scale * nn.functional.cross_entropy(out.flatten(0, 1), y.flatten())
        return self.loss_scale * nn.functional.mse_loss(out, y)

    def configure_optimizers(self) -> Any:
        return configure_optimizers(self, self.cfg)

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        # runs after every callback's hook: the gradients as the optimizer will use them
        self.seen_lrs.append([g["lr"] for g in optimizer.param_groups])
        self.clipped_norms.append([float(torch.linalg.vector_norm(torch.cat(
            [p.grad.flatten() for p in g["params"] if p.grad is not None]))) for g in optimizer.param_groups])

    def on_train_start(self) -> None:
        optimizer = self.trainer.optimizers[0]
        self.states_at_start = {name: {k: v.clone() for k, v in optimizer.state[p].items() if torch.is_tensor(v)}
                                for g in optimizer.param_groups for name, p in zip(g["param_names"], g["params"])
                                if p in optimizer.state}


class Recorder(pl.loggers.logger.Logger):
    """A logger that keeps every metric it is given, by step."""

    def __init__(self) -> None:
        super().__init__()
        self.metrics: list[tuple[int, dict[str, float]]] = []

    @property
    def name(self) -> str:
        return "recorder"

    @property
    def version(self) -> int:
        return 0

    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        return None

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        self.metrics.append((step or 0, dict(metrics)))


def loader(batches: int = BATCHES, seed: int = 0) -> DataLoader:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batches * 2, 4, generator=gen)
    return DataLoader(TensorDataset(x, x.sum(1, keepdim=True)), batch_size=2)


def trainer(**kwargs: Any) -> pl.Trainer:
    options: dict[str, Any] = dict(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                                   enable_progress_bar=False, enable_model_summary=False, max_epochs=2)
    options.update(kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pl.Trainer(**options)


def fit(module: pl.LightningModule, cfg: dict[str, Any], data: DataLoader | None = None, **kwargs: Any) -> pl.Trainer:
    callbacks = [ParamwiseCallback(cfg), *kwargs.pop("callbacks", [])]
    run = trainer(callbacks=callbacks, **kwargs)
    ckpt = kwargs.pop("ckpt_path", None)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module="pytorch_lightning")
        warnings.filterwarnings("ignore", module="lightning_fabric")
        run.fit(module, data if data is not None else loader(), ckpt_path=ckpt)
    return run


def config(**wrapper: Any) -> dict[str, Any]:
    return dict(
        optim_wrapper=dict(
            optimizer=dict(type="AdamW", lr=0.01, weight_decay=0.05),
            paramwise_cfg=dict(custom_keys={"head": dict(lr_mult=0.1)}, norm_decay_mult=0.0), **wrapper),
        param_scheduler=[
            dict(type="LinearLR", start_factor=0.1, by_epoch=False, begin=0, end=3),
            dict(type="CosineAnnealingLR", by_epoch=True, begin=0),  # to the trainer's last epoch
        ])


def expected_lrs(cfg: dict[str, Any], max_iters: int, epoch_length: int, steps: int) -> list[list[float]]:
    """Each group's lr at each step from paramwise's own builders, outside Lightning."""
    optimizer = build_optimizer(Module(cfg), {**cfg["optim_wrapper"]["optimizer"],
                                              "paramwise_cfg": cfg["optim_wrapper"]["paramwise_cfg"]})
    schedule = build_scheduler(optimizer, cfg["param_scheduler"], epoch_length=epoch_length, max_iters=max_iters)
    return [schedule.values_at(step)["lr"] for step in range(steps)]


def assert_lrs(got: list[list[float]], want: list[list[float]]) -> None:
    assert [len(g) for g in got] == [len(w) for w in want]
    assert [v for g in got for v in g] == pytest.approx([v for w in want for v in w], rel=1e-12)


# ------------------------------------------------------------------------------------------------ import
def test_importing_paramwise_does_not_import_lightning() -> None:
    code = ("import sys, paramwise, paramwise.integrations; "
            "print(any(m.split('.')[0] in ('lightning', 'pytorch_lightning') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(ROOT / "src")})
    assert out.stdout.strip() == "False"


# ------------------------------------------------------------------------------------------------ schedule
def test_every_group_lr_at_every_step_equals_build_scheduler() -> None:
    cfg = config()
    logger = Recorder()
    module = Module(cfg)
    run = fit(module, cfg, logger=logger, log_every_n_steps=1)
    steps = 2 * BATCHES
    assert run.global_step == steps and len(module.seen_lrs) == steps
    want = expected_lrs(cfg, max_iters=steps, epoch_length=BATCHES, steps=steps)
    assert_lrs(module.seen_lrs, want)
    assert len(want[0]) == 3 and len({tuple(w) for w in want}) > 3  # three groups, values that move
    # the logs hold every group's lr under its label, at every step
    labels = group_labels(run.optimizers[0].param_groups)
    logged = [m for _, m in logger.metrics if any(k.startswith("lr/") for k in m)]
    assert len(logged) == steps
    for metrics, lrs in zip(logged, want):
        assert {k: v for k, v in metrics.items() if k.startswith("lr/")} == pytest.approx(
            {f"lr/{label}": lr for label, lr in zip(labels, lrs)}, rel=1e-6)


def test_schedule_without_trainer_sizes_from_config() -> None:
    cfg = config()
    cfg["param_scheduler"] = [dict(type="LinearLR", start_factor=0.5, by_epoch=False, end=4)]
    out = configure_optimizers(Net(), cfg)
    assert isinstance(out, dict) and out["lr_scheduler"]["interval"] == "step"
    assert isinstance(configure_optimizers(Net(), {"optim_wrapper": cfg["optim_wrapper"]}), torch.optim.Optimizer)


def test_plateau_schedule_is_refused_with_its_path() -> None:
    cfg = config()
    cfg["param_scheduler"] = [dict(type="ReduceOnPlateauLR", monitor="loss", by_epoch=False)]
    with pytest.raises(ConfigError, match=r"param_scheduler\[0\].*ReduceOnPlateau"):
        configure_optimizers(Net(), cfg)


# ------------------------------------------------------------------------------------------------ clipping
@pytest.mark.parametrize("per_group", [False, True])
def test_config_clipping_is_in_force(per_group: bool) -> None:
    max_norm = 0.01
    cfg = config(clip_grad=dict(type="norm", max_norm=max_norm, per_group=per_group))
    logger = Recorder()
    module = Module(cfg, loss_scale=100.0)
    fit(module, cfg, logger=logger, log_every_n_steps=1, max_epochs=1)
    assert module.clipped_norms
    for norms in module.clipped_norms:
        if per_group:
            assert all(n <= max_norm * (1 + 1e-5) for n in norms)
        else:
            assert sum(n * n for n in norms) ** 0.5 <= max_norm * (1 + 1e-5)
    key = "grad_norm/net.head" if per_group else "grad_norm"
    logged = [m[key] for _, m in logger.metrics if key in m]
    assert len(logged) == BATCHES and min(logged) > max_norm  # clipping acted on every step


def test_clipping_by_value_matches_the_wrapper_policy() -> None:
    cfg = config(clip_grad=dict(type="value", clip_value=0.001))
    module = Module(cfg, loss_scale=100.0)
    grads: list[torch.Tensor] = []

    class Grab(pl.Callback):
        def on_before_optimizer_step(self, trainer: Any, pl_module: Any, optimizer: Any) -> None:
            grads.extend(p.grad.abs().max() for g in optimizer.param_groups for p in g["params"])

    fit(module, cfg, callbacks=[Grab()], max_epochs=1)
    assert grads and max(float(g) for g in grads) <= 0.001 + 1e-9


def test_clipping_twice_is_an_error() -> None:
    cfg = config(clip_grad=dict(max_norm=1.0))
    with pytest.raises(ConfigError, match=r"optim_wrapper -> clip_grad.*gradient_clip_val=0.5"):
        fit(Module(cfg), cfg, gradient_clip_val=0.5)


def test_clip_groups_that_select_nothing_name_the_path() -> None:
    cfg = config(clip_grad=dict(max_norm=1.0, groups=["heda"]))
    with pytest.raises(ConfigError, match=r"clip_grad -> groups\[0\]: .heda. is in no parameter name"):
        fit(Module(cfg), cfg, max_epochs=1)


def test_same_clipping_as_the_optim_wrapper() -> None:
    """The callback clips with the wrapper's own policy: the same gradients after one step."""
    torch.manual_seed(0)
    cfg = config(clip_grad=dict(max_norm=0.05, per_group=True))
    module = Module(cfg, loss_scale=50.0)
    x, y = next(iter(loader()))
    twin = copy.deepcopy(module.net)
    nn.functional.mse_loss(twin(x) * 1, y).mul(50.0).backward()
    optimizer = build_optimizer(twin, {**cfg["optim_wrapper"]["optimizer"],
                                       "paramwise_cfg": cfg["optim_wrapper"]["paramwise_cfg"]})
    policy = ClipPolicy.from_config(cfg["optim_wrapper"]["clip_grad"])
    assert policy is not None
    clip_gradients(policy, clip_units(policy, optimizer.param_groups, group_labels(optimizer.param_groups)))
    want = {n: p.grad.clone() for n, p in twin.named_parameters()}
    got: dict[str, torch.Tensor] = {}

    class Grab(pl.Callback):
        def on_before_optimizer_step(self, trainer: Any, pl_module: Any, optimizer: Any) -> None:
            got.update((n.removeprefix("net."), p.grad.clone()) for n, p in pl_module.named_parameters())

    fit(module, cfg, data=DataLoader(TensorDataset(x, y), batch_size=2), callbacks=[Grab()], max_steps=1)
    assert got.keys() == want.keys()
    for name in want:
        torch.testing.assert_close(got[name], want[name])


# ------------------------------------------------------------------------------------------------ accumulation
def test_accumulative_counts_sets_the_trainer() -> None:
    cfg = config(accumulative_counts=3)
    module = Module(cfg)
    run = fit(module, cfg)
    assert run.accumulate_grad_batches == 3
    assert run.global_step == 2 * BATCHES // 3
    # the schedule counts optimizer steps: epochs of BATCHES / 3 steps, the run's steps in all
    want = expected_lrs(cfg, max_iters=4, epoch_length=2, steps=4)
    assert_lrs(module.seen_lrs, want)


def test_accumulation_disagreeing_with_the_trainer_is_an_error() -> None:
    cfg = config(accumulative_counts=2)
    with pytest.raises(ConfigError, match=r"accumulative_counts.*is 2.*accumulate_grad_batches=3"):
        fit(Module(cfg), cfg, accumulate_grad_batches=3)


def test_callback_refuses_a_bad_wrapper_config() -> None:
    with pytest.raises(ConfigError, match=r"optim_wrapper -> clip_grad -> max_nrom"):
        ParamwiseCallback(config(clip_grad=dict(max_nrom=1.0)))
    with pytest.raises(ConfigError, match=r"optim_wrapper -> type"):
        ParamwiseCallback(config(type="OptimWrapperDict"))


# ------------------------------------------------------------------------------------------------ resume
def test_resume_from_lightning_checkpoint_loads_by_name_and_the_config_wins(tmp_path: Path) -> None:
    first = config(clip_grad=dict(max_norm=1.0))
    module = Module(first)
    run = fit(module, first, max_epochs=1)
    ckpt = tmp_path / "stop.ckpt"
    run.save_checkpoint(ckpt)
    saved_state = {n: {k: v.clone() for k, v in run.optimizers[0].state[p].items() if torch.is_tensor(v)}
                   for g in run.optimizers[0].param_groups for n, p in zip(g["param_names"], g["params"])}
    saved = torch.load(ckpt, weights_only=False)
    assert saved["callbacks"]["ParamwiseCallback"] == {"inner_count": BATCHES, "max_counts": BATCHES,
                                                       "step_count": BATCHES}

    # a new grouping: the head's lr_mult moves to the backbone, biases without decay
    second = copy.deepcopy(first)
    second["optim_wrapper"]["paramwise_cfg"] = dict(custom_keys={"backbone.0": dict(lr_mult=0.5)}, bias_decay_mult=0.0)
    resumed = Module(second)
    callback = ParamwiseCallback(second)
    run2 = trainer(callbacks=[callback], max_epochs=2)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module="pytorch_lightning")
        warnings.filterwarnings("ignore", module="lightning_fabric")
        warnings.simplefilter("ignore")  # paramwise reports the regrouping as a warning; the report is checked below
        run2.fit(resumed, loader(), ckpt_path=str(ckpt))
    # the state followed each parameter by name into its new group
    assert resumed.states_at_start.keys() == saved_state.keys()
    for name, state in saved_state.items():
        for key, value in state.items():
            torch.testing.assert_close(resumed.states_at_start[name][key], value)
    report = last_load_report(run2.optimizers[0])
    assert report is not None
    # the counters came back and went on; the lrs are the new config's from the saved step on
    assert callback.step_count == 2 * BATCHES and callback.inner_count == 2 * BATCHES
    want = expected_lrs(second, max_iters=2 * BATCHES, epoch_length=BATCHES, steps=2 * BATCHES)[BATCHES:]
    assert_lrs(resumed.seen_lrs, want)
    groups = run2.optimizers[0].param_groups
    assert [g["param_names"] for g in groups] != [g["param_names"] for g in run.optimizers[0].param_groups]


# ------------------------------------------------------------------------------------------------ hybrid
def test_hybrid_optimizer_trains_under_automatic_optimization() -> None:
    from gpt_like import GPT, issue_config

    torch.manual_seed(0)
    net = GPT()
    cfg = dict(optim_wrapper=dict(optimizer=issue_config(), clip_grad=dict(max_norm=1.0, per_group=True)),
               param_scheduler=[dict(type="LinearLR", start_factor=0.5, by_epoch=False, end=4)])
    tokens = torch.randint(0, 64, (8, 9), generator=torch.Generator().manual_seed(1))
    data = DataLoader(TensorDataset(tokens[:, :-1], tokens[:, 1:]), batch_size=2)
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    module = Module(cfg, net=net)
    run = fit(module, cfg, data=data, max_epochs=1)
    optimizer = run.optimizers[0]
    assert type(optimizer).__name__ == "HybridOptimizer"
    assert {g["route"] for g in optimizer.param_groups} == {"main", "Muon"}
    assert run.global_step == 4
    assert all(not torch.equal(before[n], p) for n, p in net.named_parameters())
    assert all(n <= 1.0 + 1e-5 for norms in module.clipped_norms for n in norms)


# ------------------------------------------------------------------------------------------------ LightningCLI
def test_lightning_cli_example_configures_groups_from_yaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("jsonargparse")
    import importlib.util

    folder = ROOT / "examples" / "lightning_cli"
    spec = importlib.util.spec_from_file_location("lightning_cli_example", folder / "main.py")
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    monkeypatch.chdir(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Lightning's advice about workers and logging intervals
        cli = example.main(["fit", "--config", str(folder / "config.yaml"), "--trainer.fast_dev_run=4"],
                           save_config_callback=None)
    run = cli.trainer
    assert run.accumulate_grad_batches == 2 and run.global_step == 2  # accumulative_counts from the YAML
    groups = run.optimizers[0].param_groups
    labels = group_labels(groups)
    initial = {label: g["initial_lr"] for label, g in zip(labels, groups)}
    assert initial["head"] == pytest.approx(0.0003) and max(initial.values()) == pytest.approx(0.003)
    assert {g["weight_decay"] for g in groups} == {0.0, 0.05}
    assert any(isinstance(c, ParamwiseCallback) and c.step_count == 2 for c in run.callbacks)


# ------------------------------------------------------------------------------------------------ epochs
@pytest.mark.slow
@settings(max_examples=8, deadline=None)
@given(batches=st.integers(1, 7), accumulate=st.integers(1, 4))
def test_schedule_epochs_are_lightning_epochs(batches: int, accumulate: int) -> None:
    """Whatever the batches per epoch and the accumulation, an epoch-based entry changes the lr exactly
    where Lightning's epochs begin: every step of epoch e runs at 0.5**e."""
    cfg = config(accumulative_counts=accumulate)
    cfg["param_scheduler"] = [dict(type="StepLR", step_size=1, gamma=0.5, by_epoch=True)]
    module = Module(cfg)
    epochs: list[int] = []

    class Epoch(pl.Callback):
        def on_before_optimizer_step(self, trainer: Any, pl_module: Any, optimizer: Any) -> None:
            epochs.append(trainer.current_epoch)

    fit(module, cfg, data=loader(batches), callbacks=[Epoch()], max_epochs=3)
    assert len(epochs) == 3 * -(-batches // accumulate)
    assert [lrs[0] for lrs in module.seen_lrs] == pytest.approx([0.01 * 0.5**e for e in epochs], rel=1e-12)
