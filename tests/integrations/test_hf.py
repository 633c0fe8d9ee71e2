"""``paramwise.integrations.hf``: Hugging Face's Trainer driven by a paramwise config (tiny model, CPU).

The three checks of issue 20: every group's lr at every step equals ``build_scheduler``'s for the same
config; the config's clipping is in force; a run stopped, regrouped and resumed from the Trainer's
checkpoint loads the optimizer state by name, and the new config wins.
"""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import paramwise
from paramwise.errors import ConfigError, UsageTypeError

transformers = pytest.importorskip("transformers")
hf = pytest.importorskip("paramwise.integrations.hf")

STEPS = 8


class Tiny(nn.Module):
    """Three modules, three groups under the config below: embed (decay), norm (no decay), head (lr x10)."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(4, 8)
        self.norm = nn.LayerNorm(8)
        self.head = nn.Linear(8, 1)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        out = self.head(torch.relu(self.norm(self.embed(x)))).squeeze(-1)
        return {"loss": F.mse_loss(out, y) * 100.0}  # large gradients, so clipping always acts


def _data(n: int = 16) -> list[dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    return [{"x": torch.randn(4, generator=g), "y": torch.randn((), generator=g)} for _ in range(n)]


def _config(clip_grad: dict[str, Any] | None = None, head_mult: float = 10.0, **wrapper: Any) -> dict[str, Any]:
    optim_wrapper: dict[str, Any] = dict(
        optimizer=dict(type="AdamW", lr=1e-2, weight_decay=0.1),
        paramwise_cfg=dict(custom_keys={"head": dict(lr_mult=head_mult)}, norm_decay_mult=0.0), **wrapper)
    if clip_grad is not None:
        optim_wrapper["clip_grad"] = clip_grad
    return dict(optim_wrapper=optim_wrapper, param_scheduler=[
        dict(type="LinearLR", start_factor=0.1, by_epoch=False, end=3),
        dict(type="CosineAnnealingLR", by_epoch=False, begin=3, eta_min=0.0),  # ends at max_iters
    ])


def _args(tmp_path: Path, **kwargs: Any) -> Any:
    base = dict(output_dir=str(tmp_path), report_to="none", max_steps=STEPS, per_device_train_batch_size=2,
                logging_steps=1, save_strategy="no", use_cpu=True, disable_tqdm=True, seed=0)
    return transformers.TrainingArguments(**{**base, **kwargs})


class Recorder(transformers.TrainerCallback):  # type: ignore[misc]
    """Each optimizer step: every group's lr and gradients as the optimizer sees them (after clipping)."""

    def __init__(self, trainer: Any) -> None:
        self.trainer = trainer
        self.lrs: list[list[float]] = []
        self.grads: list[list[list[torch.Tensor]]] = []
        self.at_train_begin: dict[str, Any] = {}

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        opt = self.trainer.optimizer
        self.at_train_begin = {
            "state": {name: {k: v.clone() for k, v in opt.state[p].items()}
                      for g in opt.param_groups for name, p in zip(g["param_names"], g["params"]) if p in opt.state},
            "step": self.trainer.lr_scheduler.last_epoch,
        }

    def on_pre_optimizer_step(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        groups = self.trainer.optimizer.param_groups
        self.grads.append([[p.grad.clone() for p in g["params"]] for g in groups])

    def on_optimizer_step(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.lrs.append([g["lr"] for g in self.trainer.optimizer.param_groups])


def _train(tmp_path: Path, cfg: dict[str, Any], model: nn.Module | None = None, resume: str | None = None,
           **kwargs: Any) -> tuple[Any, Recorder]:
    trainer = hf.ParamwiseTrainer(model=model or Tiny(), args=_args(tmp_path, **kwargs), train_dataset=_data(),
                                  paramwise_config=cfg)
    recorder = Recorder(trainer)
    trainer.add_callback(recorder)  # after ParamwiseCallback: sees the gradients it clipped
    trainer.train(resume_from_checkpoint=resume)
    return trainer, recorder


def _expected_lrs(cfg: dict[str, Any], model: nn.Module, steps: range, max_iters: int = STEPS,
                  **kwargs: Any) -> list[list[float]]:
    """What build_scheduler gives every group at each step, for an optimizer built apart from the Trainer."""
    optimizer = hf.paramwise_optimizer(copy.deepcopy(model), cfg)
    schedule = paramwise.build_scheduler(optimizer, cfg["param_scheduler"], max_iters=max_iters, **kwargs)
    return [schedule.values_at(k)["lr"] for k in steps]


@pytest.mark.slow
def test_importing_paramwise_and_integrations_does_not_import_transformers() -> None:
    code = ("import sys, paramwise, paramwise.integrations; paramwise.build_optimizer; "
            "print(any(m.split('.')[0] in ('transformers', 'accelerate') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(Path(paramwise.__file__).parents[1])})
    assert out.stdout.strip() == "False"


def test_every_group_lr_at_every_step_is_build_schedulers_and_logged_by_label(tmp_path: Path) -> None:
    cfg = _config()
    model = Tiny()
    trainer, recorder = _train(tmp_path, cfg, model=copy.deepcopy(model))
    expected = _expected_lrs(cfg, model, range(STEPS))
    assert len(trainer.optimizer.param_groups) == 3
    assert _flat(recorder.lrs) == pytest.approx(_flat(expected), rel=1e-12)
    labels = paramwise.group_labels(trainer.optimizer.param_groups)
    assert labels == ["embed", "norm", "head"]
    logs = [h for h in trainer.state.log_history if "loss" in h]
    assert len(logs) == STEPS
    for log, values in zip(logs, expected):
        assert {k: log[f"lr/{k}"] for k in labels} == pytest.approx(dict(zip(labels, values)), rel=1e-12)
        assert log["lr/embed"] == log["learning_rate"]  # the Trainer's own lr is group 0's, at the same moment
    assert expected[-1][2] == pytest.approx(10 * expected[-1][0])  # the head's lr_mult holds through the schedule


@pytest.mark.slow
def test_epoch_based_entries_count_the_trainers_optimizer_steps_per_epoch(tmp_path: Path) -> None:
    cfg = _config()
    cfg["param_scheduler"] = [dict(type="MultiStepLR", milestones=[1], gamma=0.5)]  # by_epoch=True: mmengine's default
    model = Tiny()
    _, recorder = _train(tmp_path, cfg, model=copy.deepcopy(model), max_steps=-1, num_train_epochs=2)
    per_epoch = len(_data()) // 2
    assert len(recorder.lrs) == 2 * per_epoch
    expected = _expected_lrs(cfg, model, range(2 * per_epoch), max_iters=2 * per_epoch, epoch_length=per_epoch)
    assert _flat(recorder.lrs) == pytest.approx(_flat(expected), rel=1e-12)
    assert recorder.lrs[per_epoch][0] == pytest.approx(0.5 * recorder.lrs[per_epoch - 1][0])


def _flat(rows: list[list[float]]) -> list[float]:
    return [x for row in rows for x in row]


def _norm(grads: list[torch.Tensor]) -> float:
    return float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads])))


def test_plain_norm_clipping_becomes_max_grad_norm_and_is_in_force(tmp_path: Path) -> None:
    args = _args(tmp_path)
    trainer_args = hf.paramwise_training_args(args, _config(dict(type="norm", max_norm=0.05)))
    assert trainer_args.max_grad_norm == 0.05 and args.max_grad_norm == 1.0  # the caller's arguments unchanged
    assert hf.paramwise_training_args(args, _config()).max_grad_norm == 0.0  # no clip_grad: no clipping, as mmengine
    trainer, recorder = _train(tmp_path, _config(dict(type="norm", max_norm=0.05)))
    assert trainer.args.max_grad_norm == 0.05
    unclipped = [h["grad_norm"] for h in trainer.state.log_history if "grad_norm" in h]
    assert all(n > 0.05 for n in unclipped)
    for step in recorder.grads:
        assert _norm([g for group in step for g in group]) == pytest.approx(0.05, rel=1e-4)


def test_per_group_clipping_is_done_by_the_callback_and_logged(tmp_path: Path) -> None:
    trainer, recorder = _train(tmp_path, _config(dict(type="norm", max_norm=0.05, per_group=True)))
    assert trainer.args.max_grad_norm == 0.0  # the Trainer does not clip; ParamwiseCallback does, per group
    for step in recorder.grads:
        assert [_norm(group) for group in step] == pytest.approx([0.05] * 3, rel=1e-4)
    log = next(h for h in trainer.state.log_history if "loss" in h)
    assert {k for k in log if k.startswith("grad_norm/")} == {"grad_norm/embed", "grad_norm/norm", "grad_norm/head"}


@pytest.mark.slow
def test_value_clipping_is_in_force(tmp_path: Path) -> None:
    _, recorder = _train(tmp_path, _config(dict(type="value", clip_value=1e-3)))
    largest = max(float(g.abs().max()) for step in recorder.grads for group in step for g in group)
    assert largest == pytest.approx(1e-3)


def test_accumulative_counts_sets_gradient_accumulation_steps_and_a_conflict_is_an_error(tmp_path: Path) -> None:
    cfg = _config(accumulative_counts=2)
    assert hf.paramwise_training_args(_args(tmp_path), cfg).gradient_accumulation_steps == 2
    assert hf.paramwise_training_args(_args(tmp_path, gradient_accumulation_steps=2), cfg) is not None
    with pytest.raises(ConfigError, match=r"accumulative_counts.*gradient_accumulation_steps=4"):
        hf.paramwise_training_args(_args(tmp_path, gradient_accumulation_steps=4), cfg)
    # without the key the Trainer's own accumulation stays
    assert hf.paramwise_training_args(_args(tmp_path, gradient_accumulation_steps=4),
                                      _config()).gradient_accumulation_steps == 4


def test_wrapper_keys_the_trainer_cannot_honour_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"optim_wrapper -> type.*bf16=True"):
        hf.paramwise_training_args(_args(tmp_path), _config(type="AmpOptimWrapper", dtype="bfloat16"))
    with pytest.raises(ConfigError, match=r"clip_grad -> groups\[0\]"):
        hf.paramwise_optimizer(Tiny(), _config(dict(max_norm=1.0, groups=["backbone"])))
    with pytest.raises(UsageTypeError, match="not both"):
        hf.ParamwiseTrainer(model=Tiny(), args=_args(tmp_path), paramwise_config=_config(),
                            optimizers=(torch.optim.SGD(Tiny().parameters(), lr=0.1), None))
    with pytest.warns(paramwise.ParamwiseWarning, match="max_grad_norm=3.0"):
        hf.paramwise_training_args(_args(tmp_path, max_grad_norm=3.0), _config(dict(max_norm=0.5)))


def test_resume_after_regrouping_loads_state_by_name_and_the_new_config_wins(tmp_path: Path) -> None:
    first = _config()

    class StopAt4(transformers.TrainerCallback):  # type: ignore[misc]
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.global_step == 4:
                control.should_save = control.should_training_stop = True

    trainer = hf.ParamwiseTrainer(model=Tiny(), args=_args(tmp_path), train_dataset=_data(), paramwise_config=first,
                                  callbacks=[StopAt4()])
    trainer.train()
    checkpoint = tmp_path / "checkpoint-4"
    saved = torch.load(checkpoint / "optimizer.pt", weights_only=True)
    saved_by_name = {name: saved["state"][i] for g in saved["param_groups"]
                     for name, i in zip(g["param_names"], g["params"])}
    assert len(saved["param_groups"]) == 3

    # regrouped: the head's lr_mult changes and embed's bias moves to the no-decay group
    second = _config(head_mult=5.0)
    second["optim_wrapper"]["paramwise_cfg"]["bias_decay_mult"] = 0.0
    model = Tiny()
    with pytest.warns(paramwise.ParamwiseWarning, match=r"(?s)loaded by parameter name.*lr: 0.1 in the checkpoint"):
        resumed, recorder = _train(tmp_path, second, model=model, resume=str(checkpoint))
    groups = resumed.optimizer.param_groups
    assert [g["param_names"] for g in groups] != [g["param_names"] for g in saved["param_groups"]]
    assert {"embed.bias", "norm.weight", "norm.bias"} in [set(g["param_names"]) for g in groups]
    assert set(recorder.at_train_begin["state"]) == set(saved_by_name)
    for name, state in recorder.at_train_begin["state"].items():
        for key in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(state[key], saved_by_name[name][key]), (name, key)
    report = paramwise.last_load_report(resumed.optimizer.optimizer)
    assert report is not None and not report.missing and not report.unexpected
    assert any(c.key == "lr" for c in report.changed)  # the head's lr differs from the checkpoint: the config wins
    assert recorder.at_train_begin["step"] == 4  # the schedule continues from the checkpoint's step
    expected = _expected_lrs(second, model, range(4, STEPS))
    assert _flat(recorder.lrs) == pytest.approx(_flat(expected), rel=1e-12)  # the new config's lr_mult and grouping
    head = paramwise.group_labels(groups).index("head")
    assert recorder.lrs[0][head] == pytest.approx(5 * recorder.lrs[0][0])
    assert next(g["weight_decay"] for g in groups if "embed.bias" in g["param_names"]) == 0.0  # was 0.1
