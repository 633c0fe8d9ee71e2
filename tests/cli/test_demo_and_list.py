"""``paramwise demo`` (quiet, epoch-based schedules, wrapper lines that apply) and ``paramwise list`` descriptions."""

from __future__ import annotations

import json
import re
import textwrap
import warnings
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paramwise.cli import main
from paramwise.cli.listing import describe, plain_text
from paramwise.errors import ParamwiseWarning

EPOCH_BASED = """
    optim_wrapper = dict(optimizer=dict(type="SGD", lr=0.02, momentum=0.9))
    param_scheduler = [dict(type="MultiStepLR", by_epoch=True, begin=0, end=4, milestones=[2], gamma=0.1)]
"""


def write(folder: Path, text: str) -> str:
    path = folder / "cfg.py"
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_default_demo_emits_no_paramwise_warning(capsys: pytest.CaptureFixture[str]) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["demo", "--steps", "6"]) == 0
    assert [str(w.message) for w in caught if issubclass(w.category, ParamwiseWarning)] == []
    out = capsys.readouterr().out
    # what the demo shows stays: accumulation and clipping by the wrapper, resume by name
    assert re.search(r"wrapper: 3 optimizer steps for 6 iterations \(accumulation over 2\); "
                     r"last gradient norm before clipping \d", out)
    assert "resume:" in out and "norm_decay_mult" in out


def test_demo_without_clipping_or_accumulation_says_neither(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write(tmp_path, "optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.05, momentum=0.9))\n")
    assert main(["demo", "--config", config, "--steps", "4"]) == 0
    out = capsys.readouterr().out
    assert "trained 4 steps" in out
    assert "accumulation" not in out and "gradient norm" not in out and "wrapper:" not in out


def test_demo_clipping_without_accumulation(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write(tmp_path, "optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.05), clip_grad=dict(max_norm=1))\n")
    assert main(["demo", "--config", config, "--steps", "3"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"wrapper: last gradient norm before clipping \d", out) and "accumulation" not in out


def test_demo_and_schedule_run_an_epoch_based_schedule(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write(tmp_path, EPOCH_BASED)
    assert main(["demo", "--config", config, "--steps", "8", "--epoch-length", "2"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"\n\s*4\s+0\.002\s*\n", out)  # epoch 2 = iteration 4: times gamma
    assert main(["schedule", config, "-m", "tiny_mlp", "--iters", "8", "--epoch-length", "2", "-f", "json"]) == 0
    rows = {m["step"]: m["values"] for m in json.loads(capsys.readouterr().out)["milestones"]}
    assert rows[0] == [0.02] and rows[4] == [pytest.approx(0.002)]


@pytest.mark.parametrize("command", [["demo", "--steps", "2", "--config"], ["schedule", "-m", "tiny_mlp",
                                                                            "--iters", "8"]])
def test_missing_epoch_length_names_the_flag_and_the_argument(tmp_path: Path, command: list[str],
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    config = write(tmp_path, EPOCH_BASED)
    args = [*command, config] if command[0] == "demo" else [command[0], config, *command[1:]]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "param_scheduler[0] -> by_epoch" in err
    assert "--epoch-length" in err and "build_scheduler(..., epoch_length=" in err


# ----------------------------------------------------------------------------- list


def _third_party(name: str) -> bool:
    from paramwise import OPTIMIZERS

    return getattr(OPTIMIZERS.get(name), "__module__", "").split(".")[0] not in ("torch", "paramwise", "tests")


def test_list_descriptions_are_plain_whole_sentences(capsys: pytest.CaptureFixture[str]) -> None:
    for what in ("optimizers", "constructors", "schedulers", "models"):
        assert main(["list", what, "-f", "json"]) == 0
        rows = {r["name"]: r["description"] for r in json.loads(capsys.readouterr().out)}
        for name, text in rows.items():  # empty: a class other tests register without a docstring
            if what == "optimizers" and _third_party(name):
                continue  # an installed library's docstring is its own (heavyball's are bare names)
            assert "``" not in text and not re.search(r":\w+:`", text), (name, text)
            assert not text or text.endswith((".", ")", "!", "?")), (name, text)
    # the modern shapes are listed beside mmengine's schedulers
    assert main(["list", "schedulers", "-f", "json"]) == 0
    schedulers = {r["name"]: r["description"] for r in json.loads(capsys.readouterr().out)}
    assert {"WarmupStableDecayLR", "CosineWithMinLR", "InverseSqrtLR", "CosineLRScheduler"} <= set(schedulers)
    assert "gamma ** (t // step_size)" in schedulers["StepLR"]
    assert main(["list", "optimizers", "-f", "json"]) == 0
    optimizers = {r["name"]: r["description"] for r in json.loads(capsys.readouterr().out)}
    # was cut at the end of the docstring's first line, mid-sentence
    assert optimizers["SparseAdam"].endswith("the Adam algorithm suitable for sparse gradients.")


def test_rst_is_shown_as_its_text() -> None:
    doc = """Wraps :class:`~torch.optim.SGD` and :func:`paramwise.build_optimizer` with ``lr * 2``, see
    `the docs <https://x.y>`_ and :ref:`groups <param-groups>`. Second sentence.

    Details.
    """
    assert describe(type("X", (), {"__doc__": doc})) == (
        "Wraps SGD and paramwise.build_optimizer with lr * 2, see the docs and groups.")
    assert describe(type("Y", (), {"__doc__": "No sentence end, e.g. this one"})) == "No sentence end, e.g. this one"


words = st.text(alphabet=st.characters(whitelist_categories=("Ll", "Lu", "Nd"), whitelist_characters="._-:()"),
                min_size=1, max_size=12)


@given(st.lists(words, min_size=1, max_size=40), st.sampled_from(["\n", " ", "\n    "]))
def test_description_is_whole_words_from_the_start(parts: list[str], gap: str) -> None:
    # never cut mid-word: the description is the plain text up to a word boundary
    doc = gap.join(parts)
    text = plain_text(doc)
    shown = describe(type("Z", (), {"__doc__": doc}))
    assert text.startswith(shown)
    assert shown == text or text[len(shown)] == " "
