"""Tables at every terminal width: names and headers break only between words, the rule gives way
first, and a pipe or a file gets lines without padding."""

from __future__ import annotations

import io
import itertools
import json
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

import paramwise
from paramwise.cli import main
from paramwise.plan.plan import Plan
from paramwise.render import NAME_BREAKS, RULE_BREAKS, fold_words, plan_table, rule_text, unpadded
from swin_like import SWIN_PARAMWISE_CFG, SwinLike

WIDTHS = [60, 80, 110, 200]
SWIN_NAMES = ("backbone.absolute_pos_embed", "backbone.stages.0.blocks.0.attn.w_msa.relative_position_bias_table")


def swin_plan() -> Plan:
    with pytest.warns(paramwise.ParamwiseWarning, match="norm_decay_mult"):  # the backbone key decides the norms
        return paramwise.plan_params(SwinLike(), dict(type="AdamW", lr=0.001, weight_decay=0.05,
                                                      paramwise_cfg=SWIN_PARAMWISE_CFG))


def table_lines(plan: Plan, width: int) -> list[str]:
    console = Console(width=width, record=True, file=io.StringIO())
    console.print(plan_table(plan))
    return console.export_text().splitlines()


def cells(lines: list[str], header: str, next_header: str | None) -> list[list[str]]:
    """The cells of one column of the parameter table: each cell's lines, stripped, rows split where
    the name column starts a new row (a row starts where the group column has a number)."""
    top = next(i for i, line in enumerate(lines) if line.split()[:1] == ["name"] and "rule" in line)
    start = lines[top].index(header)
    end = lines[top].index(next_header) if next_header else None
    group = slice(lines[top].index("numel") + len("numel"), lines[top].index("group") + len("group"))
    rows: list[list[str]] = []
    for line in lines[top + 2:]:
        if not line.strip():
            break
        if line[group].strip():
            rows.append([])
        part = line[start:end].strip()
        if part:
            rows[-1].append(part)
    return rows


def breaks_between_words(lines: list[str], seps: str) -> bool:
    """Every line but the last ends with a separator (or the next starts with one): no cut inside a word."""
    return all(a[-1] in seps or b[0] in seps for a, b in itertools.pairwise(lines))


@pytest.mark.parametrize("width", WIDTHS)
def test_swin_names_never_break_inside_a_word(width: int) -> None:
    plan = swin_plan()
    lines = table_lines(plan, width)
    assert all(len(line) <= width for line in lines)
    names = cells(lines, "name", "shape")
    assert ["".join(n) for n in names] == [e.name for e in plan.entries]
    for name in names:
        assert breaks_between_words(name, NAME_BREAKS), name
    shown = {"".join(n): n for n in names}
    for name in SWIN_NAMES:  # the names the issue names, as whole words
        assert name in shown
        words = re.split(r"[._]", name)
        assert all(w in re.split(r"[._]", ".".join(shown[name])) for w in words)
    rules = cells(lines, "rule", None)
    assert ["".join(r) for r in rules] == ["".join(rule_text(e).split()) for e in plan.entries]
    assert "…" not in "\n".join(lines)


def test_at_110_columns_the_names_the_issue_shows_stay_whole() -> None:
    lines = table_lines(swin_plan(), 110)
    assert any(line.startswith("backbone.absolute_pos_embed ") for line in lines)
    assert not any(line.rstrip().endswith("absolute_pos_e") for line in lines)
    assert any(line.startswith("relative_position_bias_table ") for line in lines)  # broken after its dot


@pytest.mark.parametrize("width", WIDTHS)
def test_headers_break_only_after_underscores(width: int) -> None:
    lines = table_lines(swin_plan(), width)
    top = next(i for i, line in enumerate(lines) if line.split()[:1] == ["name"] and "rule" in line)
    header = " ".join(lines[top - 1:top + 1]) if not lines[top - 1].startswith("AdamW") else lines[top]
    assert "weight_decay" in header or ("weight_" in lines[top - 1] and "decay" in lines[top])
    for word in ("name", "shape", "numel", "group", "lr", "rule"):
        assert re.search(rf"\b{word}\b", lines[top])


def test_the_rule_wraps_before_any_name_breaks() -> None:
    plan = swin_plan()
    seen = set()
    for width in range(70, 200, 10):
        lines = table_lines(plan, width)
        names_whole = all(len(n) == 1 for n in cells(lines, "name", "shape"))
        rules_whole = all(len(r) == 1 for r in cells(lines, "rule", None))
        assert names_whole or not rules_whole, width  # never a broken name beside a whole rule
        seen.add((names_whole, rules_whole))
    assert (True, False) in seen and (False, False) in seen and (True, True) in seen


@given(st.lists(st.sampled_from(["backbone", "stages", "0", "w_msa", "relative_position_bias_table", "qkv",
                                 "absolute_pos_embed", "x", "a_very_long_component_without_dots"]),
                min_size=1, max_size=8),
       st.integers(1, 80))
def test_fold_words_gives_the_name_back_and_cuts_only_what_cannot_fit(parts: list[str], width: int) -> None:
    name = ".".join(parts)
    lines = fold_words(name, width)
    assert "".join(lines) == name
    assert all(0 < len(line) <= width for line in lines)
    pieces = re.split(r"(?<=[._])", name)
    if max(map(len, pieces)) <= width:  # every word fits: no line ends inside a word
        assert breaks_between_words(lines, NAME_BREAKS)
    if len(name) <= width:
        assert lines == [name]


@given(st.text(st.sampled_from("ab_.[' ;:"), max_size=60), st.integers(1, 30))
def test_fold_words_keeps_rule_text_but_spaces_at_line_ends(text: str, width: int) -> None:
    lines = fold_words(text, width, RULE_BREAKS)
    assert all(len(line) <= width for line in lines)
    assert "".join("".join(lines).split()) == "".join(text.split())


def test_unpadded_keeps_text_and_styles_and_drops_trailing_spaces() -> None:
    plan = swin_plan()
    padded = io.StringIO()
    Console(width=200, file=padded).print(plan_table(plan))
    assert any(line != line.rstrip() for line in padded.getvalue().splitlines())  # what rich does alone
    plain = io.StringIO()
    Console(width=200, file=plain).print(unpadded(plan_table(plan)))
    assert plain.getvalue().splitlines() == [line.rstrip() for line in padded.getvalue().splitlines()]
    coloured = io.StringIO()
    Console(width=200, file=coloured, force_terminal=True, color_system="standard").print(unpadded(plan_table(plan)))
    assert "\x1b[" in coloured.getvalue()
    assert not any(re.sub(r"\x1b\[[0-9;]*m", "", line).endswith(" ") for line in coloured.getvalue().splitlines())


@pytest.mark.parametrize("command", ["audit", "show"])
def test_cli_output_to_a_pipe_has_no_trailing_spaces(command: str, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "swin.json"
    config.write_text(json.dumps({"optimizer": {"type": "AdamW", "lr": 0.001, "weight_decay": 0.05,
                                                "paramwise_cfg": SWIN_PARAMWISE_CFG}}))
    assert main([command, str(config), "--model", "swin_like:SwinLike"]) == 0
    out = capsys.readouterr().out
    assert ("backbone.absolute_pos_embed" if command == "show" else "audit: ") in out
    assert [line for line in out.splitlines() if line != line.rstrip()] == []
