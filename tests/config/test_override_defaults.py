"""Overrides from Python (``merge_from_dotlist``) and from the CLI (``--cfg-options``) follow one rule.

New keys below a section the config has are added, as mmengine's ``merge_from_dict`` adds them; a
new top-level key is refused; a custom key with dots that was not quoted is an error that says how
to quote it. README's own example runs as written.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import paramwise
from paramwise.cli.common import UsageError, load_config
from paramwise.config.config import Config, parse_cfg_options
from paramwise.errors import ConfigError

README = Path(__file__).resolve().parents[2] / "README.md"
NO_PARAMWISE_CFG = "optimizer = dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=0.0001)\n"


def readme_override_example() -> str:
    """The README's Python block that calls merge_from_dotlist, exactly as written there."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
    found = [block for block in blocks if "merge_from_dotlist" in block and "Config.fromfile" in block]
    assert found, "README has no Python example with Config.fromfile and merge_from_dotlist"
    return found[0]


class Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.backbone = torch.nn.Linear(3, 3)
        self.head = torch.nn.Linear(3, 2)


def test_readme_override_example_runs_on_a_config_without_paramwise_cfg(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code = readme_override_example()
    match = re.search(r'Config\.fromfile\("([^"]+)"\)', code)
    assert match is not None
    config = tmp_path / match.group(1)
    config.parent.mkdir(parents=True)
    config.write_text("optimizer:\n  type: SGD\n  lr: 0.1\n  momentum: 0.9\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {"paramwise": paramwise, "model": Net()}
    exec(compile(code, str(README), "exec"), namespace)
    optimizer = namespace["optimizer"]
    lrs = {name: group["lr"] for group in optimizer.param_groups for name in group["param_names"]}
    assert lrs["backbone.weight"] == pytest.approx(0.001) and lrs["head.weight"] == pytest.approx(0.01)


ITEMS = [
    "optimizer.paramwise_cfg.custom_keys.backbone.lr_mult=0.1",
    "optimizer.paramwise_cfg.norm_decay_mult=0",
    'optimizer.paramwise_cfg.custom_keys."backbone.stages".decay_mult=0.5',
    "optimizer.betas=(0.9,0.95)",
    "optimizer.lr=0.01",
]


@given(items=st.lists(st.sampled_from(ITEMS), min_size=1, max_size=4))
def test_the_cli_and_the_api_apply_the_same_overrides(
    tmp_path_factory: pytest.TempPathFactory, items: list[str]
) -> None:
    path = tmp_path_factory.mktemp("cfg") / "c.py"
    path.write_text(NO_PARAMWISE_CFG, encoding="utf-8")
    api = Config.fromfile(path)
    api.merge_from_dotlist(items)
    assert load_config(str(path), items).to_dict() == api.to_dict()
    assert api.optimizer.to_dict() == {**Config.fromfile(path).optimizer.to_dict(), **api.optimizer.to_dict()}


def test_new_keys_below_a_section_are_added_as_mmengine_adds_them(tmp_path: Path) -> None:
    mm_config = pytest.importorskip("mmengine.config")
    path = tmp_path / "c.py"
    path.write_text(NO_PARAMWISE_CFG, encoding="utf-8")
    options = parse_cfg_options(ITEMS[:2])
    ours = Config.fromfile(path)
    ours.merge_from_dict(options)
    theirs = mm_config.Config.fromfile(str(path))
    theirs.merge_from_dict(options)
    assert ours.to_dict() == theirs.to_dict()


def test_a_new_top_level_key_is_refused_by_both_with_a_suggestion(tmp_path: Path) -> None:
    path = tmp_path / "c.py"
    path.write_text(NO_PARAMWISE_CFG, encoding="utf-8")
    with pytest.raises(ConfigError, match=r"no top-level key 'optimzer'\. Did you mean 'optimizer'\?"):
        Config.fromfile(path).merge_from_dotlist(["optimzer.lr=1"])
    with pytest.raises(UsageError, match=r"no top-level key 'optimzer'.*Did you mean 'optimizer'\?"):
        load_config(str(path), ["optimzer.lr=1"])
    cfg = Config.fromfile(path)
    cfg.merge_from_dotlist(["runner.max_epochs=3"], allow_new_keys=True)  # asked for: anywhere
    assert cfg.runner.max_epochs == 3


def test_allow_new_keys_false_adds_nothing(tmp_path: Path) -> None:
    cfg = Config({"optimizer": {"type": "SGD", "lr": 0.1}})
    with pytest.raises(ConfigError, match="Pass allow_new_keys=True"):
        cfg.merge_from_dotlist([ITEMS[0]], allow_new_keys=False)
    assert cfg.to_dict() == {"optimizer": {"type": "SGD", "lr": 0.1}}


@pytest.mark.parametrize(
    ("item", "fix"),
    [
        (
            "optimizer.paramwise_cfg.custom_keys.backbone.stages.lr_mult=0.1",
            'optimizer.paramwise_cfg.custom_keys."backbone.stages".lr_mult=',
        ),
        (
            "optim_wrapper.paramwise_cfg.custom_keys.backbone.layers.0.norm.decay_mult=0",
            'optim_wrapper.paramwise_cfg.custom_keys."backbone.layers.0.norm".decay_mult=',
        ),
        (
            'optimizer.paramwise_cfg.custom_keys.a.b"c.lr_mult=1',
            "",  # a quote inside a key: the path itself is refused first
        ),
    ],
)
def test_an_unquoted_dotted_custom_key_says_how_to_quote_it(item: str, fix: str) -> None:
    cfg = Config({"optimizer": {"type": "AdamW", "lr": 0.001}, "optim_wrapper": {"optimizer": {"type": "AdamW"}}})
    with pytest.raises(ConfigError) as info:
        cfg.merge_from_dotlist([item])
    assert fix in str(info.value)
    if fix:  # and the fix it names works
        cfg.merge_from_dotlist([fix + "0.5"])
        assert "." in next(iter(cfg[item.partition(".")[0]].paramwise_cfg.custom_keys))


def test_the_cli_gives_the_quoting_hint(tmp_path: Path) -> None:
    path = tmp_path / "c.py"
    path.write_text(NO_PARAMWISE_CFG, encoding="utf-8")
    with pytest.raises(UsageError, match=r'custom_keys\."backbone\.stages"\.lr_mult=') as info:
        load_config(str(path), ["optimizer.paramwise_cfg.custom_keys.backbone.stages.lr_mult=0.1"])
    assert "does not take" not in str(info.value)
