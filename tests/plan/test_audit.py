"""``audit_plan`` and ``paramwise audit``: outcomes a reviewer would question, as data and on the command line."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

from paramwise import plan_params
from paramwise.cli import EXIT_OK, EXIT_PROBLEMS, main
from paramwise.plan.audit import MANY_GROUPS, Finding, audit_plan

pytestmark = pytest.mark.filterwarnings("ignore::paramwise.ParamwiseWarning")

BASE = dict(type="AdamW", lr=1e-3, weight_decay=0.05)
CLEAN = dict(compose=True, norm_decay_mult=0.0, bias_decay_mult=0.0, no_weight_decay="auto", custom_keys={
    "fc": dict(lr_mult=2.0), "tok": dict(decay_mult=0.0), "pos_embed": dict(decay_mult=0.0),
    "cls_token": dict(decay_mult=0.0)})


class Reviewed(nn.Module):
    """One of everything the audit looks at: an embedding, tokens, tags, a norm, biases, frozen layers."""

    def __init__(self, typo: bool = True) -> None:
        super().__init__()
        self.typo = typo
        self.tok = nn.Embedding(10, 4)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, 4))
        self.pos_embed = nn.Parameter(torch.zeros(1, 3, 4))
        self.mask_token = nn.Parameter(torch.zeros(1, 1, 4))
        self.A_log = nn.Parameter(torch.zeros(4, 2))
        self.A_log._no_weight_decay = True  # type: ignore[attr-defined]
        self.norm = nn.LayerNorm(4)
        self.fc = nn.Linear(4, 4)
        self.out = nn.Linear(4, 2)
        self.frozen = nn.Linear(4, 4)
        self.frozen.requires_grad_(False)

    def no_weight_decay(self) -> set[str]:
        return {"mask_token", "scale"} if self.typo else {"mask_token"}


def reviewed(typo: bool = True) -> Reviewed:
    """The model for `paramwise audit --model test_audit:reviewed`."""
    return Reviewed(typo)


def wide(layers: int = MANY_GROUPS + 2) -> nn.Module:
    return nn.Sequential(*(nn.Linear(2, 2, bias=False) for _ in range(layers)))


FROZEN = Finding("frozen", ("frozen.weight", "frozen.bias"),
                 "2 frozen parameters (requires_grad=False) left out of the optimizer", "note")


def test_every_kind_of_finding() -> None:
    model = Reviewed()
    plan = plan_params(model, dict(BASE, paramwise_cfg=dict(custom_keys={"fc": dict(lr_mult=2.0)})))
    assert audit_plan(plan, model) == [
        Finding("tagged", ("mask_token", "A_log"),
                "2 tagged parameters get weight decay 0.05: the model declares them not to be decayed "
                "(_no_weight_decay tag, no_weight_decay() of the model); set no_weight_decay='auto' in paramwise_cfg"),
        Finding("position", ("cls_token", "pos_embed"),
                "2 positional embeddings and tokens get weight decay 0.05: positional embeddings and learned tokens "
                "are usually not decayed; if that is not meant, give them a custom key with decay_mult=0.0, e.g. "
                "custom_keys={'cls_token': dict(decay_mult=0.0), 'pos_embed': dict(decay_mult=0.0)}"),
        Finding("embedding", ("tok.weight",),
                "1 embedding weight gets weight decay 0.05: nn.Embedding weights are often not decayed; if that is "
                "not meant, give them a custom key with decay_mult=0.0, e.g. "
                "custom_keys={'tok': dict(decay_mult=0.0)}"),
        Finding("norm", ("norm.weight", "norm.bias"),
                "2 norm-layer parameters get weight decay 0.05: norm layers are usually not decayed; "
                "set norm_decay_mult=0.0"),
        Finding("bias", ("fc.bias", "out.bias"),
                "2 biases get weight decay 0.05: biases are usually not decayed; set bias_decay_mult=0.0; "
                "custom_keys['fc'] decided 1 of them, which switches the built-in multipliers off for its "
                "parameters (mmengine): mmengine applies only the longest matching custom key, so give them "
                "decay_mult=0.0 in a key that wins, with the values they have now: "
                "custom_keys={'fc.bias': dict(lr_mult=2.0, decay_mult=0.0)}"),
        Finding("tag-unmatched", ("scale",),
                "no_weight_decay() of the model gives the name 'scale', which matches no parameter of it; its "
                "weight decay is unchanged."),
        Finding("groups", (), "2 parameter groups", "note"),
        Finding("undecided", ("cls_token", "pos_embed", "mask_token", "A_log", "tok.weight", "norm.weight",
                              "norm.bias", "out.weight", "out.bias"),
                "9 parameters no rule decided: they keep the optimizer's values (lr=0.001, weight_decay=0.05)", "note"),
        FROZEN,
    ]


def test_a_clean_config_has_only_notes() -> None:
    model = Reviewed(typo=False)
    plan = plan_params(model, dict(BASE, paramwise_cfg=CLEAN))
    assert audit_plan(plan, model) == [
        Finding("groups", (), "4 parameter groups", "note"),
        Finding("undecided", ("out.weight",),
                "1 parameter no rule decided: it keeps the optimizer's values (lr=0.001, weight_decay=0.05)", "note"),
        FROZEN,
    ]


def test_a_custom_key_that_switches_the_norm_rule_off() -> None:
    """An mmengine config gets mmengine's fix; compose=True only where the config already speaks paramwise."""
    model = Reviewed(typo=False)
    mm = dict(norm_decay_mult=0.0, custom_keys={"norm": dict(lr_mult=0.5)})
    [norm] = [f for f in audit_plan(plan_params(model, dict(BASE, paramwise_cfg=mm)), model, paramwise_cfg=mm)
              if f.kind == "norm"]
    assert norm.message.endswith("norm layers are usually not decayed; custom_keys['norm'] decided them, which "
                                 "switches the built-in multipliers off for its parameters (mmengine): mmengine "
                                 "applies only the longest matching custom key, so give them decay_mult=0.0 in a "
                                 "key that wins, with the values they have now: "
                                 "custom_keys={'norm': dict(lr_mult=0.5, decay_mult=0.0)}")
    assert "compose" not in norm.message
    pw = dict(mm, group_by="hyperparams")  # a paramwise-only key: the config is in paramwise's dialect
    [norm] = [f for f in audit_plan(plan_params(model, dict(BASE, paramwise_cfg=pw)), model, paramwise_cfg=pw)
              if f.kind == "norm"]
    assert norm.message.endswith("(mmengine): set compose=True to apply both")


def test_the_optimizer_default_decay_counts() -> None:
    """AdamW decays by 0.01 when the config says nothing; SGD does not decay at all."""
    model = nn.Sequential(nn.Linear(2, 2), nn.LayerNorm(2))
    adamw = audit_plan(plan_params(model, dict(type="AdamW", lr=1e-3)), model)
    assert [(f.kind, f.names) for f in adamw if f.level == "warning"] == [
        ("norm", ("1.weight", "1.bias")), ("bias", ("0.bias",))]
    assert "weight decay 0.01" in adamw[0].message
    sgd = audit_plan(plan_params(model, dict(type="SGD", lr=0.1)), model)
    assert sgd == [Finding("groups", (), "1 parameter group", "note")]  # no rules: nothing is "undecided"


def test_norms_by_class_name() -> None:
    class LlamaRMSNorm(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.weight = nn.Parameter(torch.ones(2))

    model = nn.Sequential(nn.Linear(2, 2, bias=False), LlamaRMSNorm())
    findings = audit_plan(plan_params(model, BASE), model)
    assert [(f.kind, f.names) for f in findings] == [("norm", ("1.weight",)), ("groups", ())]


def test_many_groups() -> None:
    model = wide()
    plan = plan_params(model, dict(BASE, paramwise_cfg=dict(group_by="param")))
    assert audit_plan(plan, model) == [Finding("groups", (), (
        f"{MANY_GROUPS + 2} parameter groups, more than {MANY_GROUPS}: each group is stepped on its own, and the "
        "state is hard to read; look for rules that give nearly equal values (group_by='param' gives one group "
        "per parameter)"))]
    assert audit_plan(plan, model, many_groups=100) == [Finding("groups", (), "34 parameter groups", "note")]


# ----------------------------------------------------------------------------- the command


def write_config(folder: Path, paramwise_cfg: dict) -> str:
    path = folder / "cfg.py"
    path.write_text(textwrap.dedent(f"""
        optim_wrapper = dict(optimizer=dict(type="AdamW", lr=1e-3, weight_decay=0.05), paramwise_cfg={paramwise_cfg!r})
    """))
    return str(path)


def test_cli_strict_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    questioned = write_config(tmp_path, dict(custom_keys={"fc": dict(lr_mult=2.0)}))
    assert main(["audit", questioned, "--model", "test_audit:reviewed"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "audit: 6 warnings, 3 notes" in out and "tag-unmatched" in out and "'mask_token', 'A_log'" in out
    assert main(["audit", questioned, "--model", "test_audit:reviewed", "--strict"]) == EXIT_PROBLEMS
    clean = write_config(tmp_path, CLEAN)
    args = ["audit", clean, "--model", "test_audit:reviewed", "--model-args", '{"typo": false}', "--strict"]
    assert main(args) == EXIT_OK
    assert "audit: 0 warnings, 3 notes" in capsys.readouterr().out


def test_cli_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, dict(custom_keys={"fc": dict(lr_mult=2.0)}))
    assert main(["audit", config, "-m", "test_audit:reviewed", "--format", "json", "--strict"]) == EXIT_PROBLEMS
    data = json.loads(capsys.readouterr().out)
    assert list(data) == ["findings"]
    assert [f["kind"] for f in data["findings"]] == [
        "tagged", "position", "embedding", "norm", "bias", "tag-unmatched", "groups", "undecided", "frozen"]
    assert data["findings"][0] == {
        "kind": "tagged", "names": ["mask_token", "A_log"], "level": "warning",
        "message": "2 tagged parameters get weight decay 0.05: the model declares them not to be decayed "
                   "(_no_weight_decay tag, no_weight_decay() of the model); set no_weight_decay='auto' in "
                   "paramwise_cfg"}


def test_cli_cfg_options_and_plain_text(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    for name in ("rich", "rich.console"):
        monkeypatch.setitem(sys.modules, name, None)  # no rich: plain lines
    config = write_config(tmp_path, dict(custom_keys={"fc": dict(lr_mult=2.0)}))
    fixed = ["optim_wrapper.paramwise_cfg.no_weight_decay=auto"]
    assert main(["audit", config, "-m", "test_audit:reviewed", "--cfg-options", *fixed]) == EXIT_OK
    out = capsys.readouterr().out
    assert out.startswith("audit: 5 warnings, 3 notes\n  warning [position]: 2 positional embeddings")
    assert "\n      'cls_token', 'pos_embed'\n" in out and "[tagged]" not in out


def test_cli_config_errors_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, dict(no_weight_decay="yes"))
    assert main(["audit", config, "-m", "tiny_vit"]) == EXIT_PROBLEMS
    assert "paramwise_cfg -> no_weight_decay: must be 'auto'" in capsys.readouterr().err
