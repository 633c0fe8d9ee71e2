"""Hardening of the config entry points: hostile files, paths and overrides end in a paramwise error.

Every entry point (``Config.fromfile``, ``Config(...)``, ``merge_from_dict``/``merge_from_dotlist``,
``parse_cfg_options``, ``dump`` and the CLI's loading) either returns a result or raises a
``ParamwiseError`` that also subclasses a fitting built-in and names the file or the key path. The
fuzz tests at the end draw as many inputs as the hypothesis profile in conftest.py says (60; a long
run: ``PARAMWISE_FUZZ_EXAMPLES=5000 pytest tests/config/test_config_hardening.py -k "fuzz or mutate"``).
"""

from __future__ import annotations

import copy
import json
import os
import pickle
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

import paramwise.config.config as config_module
import paramwise.config.configdict as configdict_module
from paramwise.cli import main as cli_main
from paramwise.config.config import Config, parse_cfg_options
from paramwise.config.formats import MAX_DEPTH, MAX_INHERITANCE, MAX_VALUES
from paramwise.errors import ConfigError, ConfigFileError, ParamwiseError

# The built-ins a paramwise error may also be, so that existing `except` clauses keep working.
BUILTIN_BASES = (ValueError, TypeError, KeyError, OSError, ImportError, AttributeError)


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def nested(opening: str, closing: str, depth: int, inner: str = "") -> str:
    return opening * depth + inner + closing * depth


# --------------------------------------------------------------------------- self-references


def test_self_referencing_yaml_anchor_is_an_error_naming_the_key(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", "x: 1\nloop: &a [1, *a]\n")
    with pytest.raises(ConfigFileError) as info:
        Config.fromfile(path)
    message = str(info.value)
    assert str(path) in message and "loop -> 1" in message and "contains itself" in message


def test_self_referencing_yaml_mapping_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", "m: &m {x: 1, again: *m}\n")
    with pytest.raises(ConfigFileError, match=r"m -> again: .*contains itself"):
        Config.fromfile(path)


def test_shared_yaml_aliases_are_fine(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", "base: &b {lr: 0.1}\nfirst: *b\nsecond: [*b, *b]\n")
    cfg = Config.fromfile(path)
    assert cfg.second == [{"lr": 0.1}, {"lr": 0.1}]
    cfg.first.lr = 1.0  # loaded values share nothing, even where the YAML shared them
    assert cfg.base.lr == 0.1 and cfg.second[0].lr == 0.1


@pytest.mark.parametrize(
    "code",
    ["a = []\na.append(a)\n", "a = {}\na['me'] = a\n", "a = [1, {'b': []}]\na[1]['b'].append(a)\n"],
)
def test_python_config_holding_itself_is_an_error(tmp_path: Path, code: str) -> None:
    path = write(tmp_path, "c.py", code)
    with pytest.raises(ConfigFileError, match="contains itself") as info:
        Config.fromfile(path)
    assert str(path) in str(info.value)


def test_config_from_self_referencing_dict_is_an_error() -> None:
    data: dict[str, Any] = {"a": {"b": []}}
    data["a"]["b"].append(data)
    with pytest.raises(ConfigError, match=r"a -> b -> 0: .*contains itself"):
        Config(data)


def test_override_value_holding_itself_is_an_error_and_changes_nothing() -> None:
    cfg = Config({"a": 1})
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(ConfigError, match=r"a -> 0: .*contains itself"):
        cfg.merge_from_dict({"a": loop})
    assert cfg.to_dict() == {"a": 1}


def test_dump_of_a_config_made_to_hold_itself_is_an_error(tmp_path: Path) -> None:
    cfg = Config({"a": [1]})
    cfg.a.append(cfg.a)  # a list inside a config can still be changed in place
    with pytest.raises(ConfigError, match="contains itself"):
        cfg.dump(tmp_path / "out.yaml")
    with pytest.raises(ConfigError, match="contains itself"):
        cfg.to_dict()
    assert "contains itself" in repr(cfg)
    assert not (tmp_path / "out.yaml").exists()


# --------------------------------------------------------------------------- nesting


@pytest.mark.parametrize(
    ("name", "template"),
    [
        ("deep.json", '{{"a": {}}}'),
        ("deep.yaml", "a: {}\n"),
        ("deep.toml", "a = {}\n"),
        ("deep.py", "a = {}\n"),
    ],
)
@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 5000])
def test_deep_nesting_is_an_error_naming_the_file(tmp_path: Path, name: str, template: str, depth: int) -> None:
    path = write(tmp_path, name, template.format(nested("[", "]", depth)))
    with pytest.raises(ConfigFileError, match="nested|too many nested") as info:
        Config.fromfile(path)
    assert str(path) in str(info.value)


def test_nesting_at_the_limit_loads(tmp_path: Path) -> None:
    path = write(tmp_path, "ok.json", '{"a": ' + nested("[", "]", MAX_DEPTH - 2) + "}")
    cfg = Config.fromfile(path)
    assert cfg.dump(tmp_path / "back.yaml") is None
    assert Config.fromfile(tmp_path / "back.yaml") == cfg


def test_deep_nesting_built_by_python_code_names_the_path(tmp_path: Path) -> None:
    code = "a = {'b': []}\nx = a['b']\nfor _ in range(5000):\n    x.append([])\n    x = x[0]\n"
    with pytest.raises(ConfigFileError, match=r"a -> b -> 0 -> 0 .*nested more than 100") as info:
        Config.fromfile(write(tmp_path, "c.py", code))
    assert "c.py" in str(info.value)


def test_deep_nesting_through_base_substitution_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, "base.json", '{"deep": ' + nested("[", "]", 60) + "}")
    path = write(tmp_path, "child.yaml", "_base_: base.json\nmore: " + nested("[", "]", 60, "{{_base_.deep}}") + "\n")
    with pytest.raises(ConfigFileError, match="nested more than") as info:
        Config.fromfile(path)
    assert "child.yaml" in str(info.value)


def test_deep_override_paths_and_values_are_errors() -> None:
    cfg = Config({"a": 1})
    with pytest.raises(ConfigError, match="nested more than"):
        cfg.merge_from_dotlist([".".join(["k"] * 500) + "=1"], allow_new_keys=True)
    with pytest.raises(ConfigError, match="nested more than"):
        cfg.merge_from_dotlist(["a=" + nested("[", "]", 150)])
    with pytest.raises(ConfigError, match="nested more than"):
        Config({"a": json.loads(nested("[", "]", 500))})
    assert cfg.to_dict() == {"a": 1}


# --------------------------------------------------------------------------- alias expansion


def laughs(levels: int, fan_out: int) -> str:
    lines = [f"l0: &l0 [{', '.join(['lol'] * fan_out)}]"]
    for level in range(1, levels):
        refs = ", ".join([f"*l{level - 1}"] * fan_out)
        lines.append(f"l{level}: &l{level} [{refs}]")
    return "\n".join(lines) + "\n"


def test_billion_laughs_is_refused_quickly(tmp_path: Path) -> None:
    path = write(tmp_path, "laughs.yaml", laughs(9, 9))  # 9**9 = 387 million strings once expanded
    with pytest.raises(ConfigFileError, match=f"more than {MAX_VALUES:,} values") as info:
        Config.fromfile(path)
    assert str(path) in str(info.value)


def test_expansion_limit_counts_expanded_values(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(configdict_module, "MAX_VALUES", 1000)  # the structure check reads the limit there
    cfg = Config.fromfile(write(tmp_path, "ok.yaml", laughs(2, 30)))  # 30 + 900 strings, + containers: loads
    assert cfg.l0 == ["lol"] * 30 and cfg.l1 == [["lol"] * 30] * 30
    with pytest.raises(ConfigFileError, match="more than 1,000 values"):
        Config.fromfile(write(tmp_path, "big.yaml", laughs(3, 10)))


# --------------------------------------------------------------------------- paths


def test_non_string_paths_are_type_errors() -> None:
    for bad in (3, None, b"c.py", ["c.py"]):
        with pytest.raises(ParamwiseError) as info:
            Config.fromfile(bad)  # type: ignore[arg-type]
        assert isinstance(info.value, TypeError)
        assert type(bad).__name__ in str(info.value)


def test_nul_byte_in_a_path_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigFileError, match="NUL"):
        Config.fromfile(str(tmp_path / "a\0b.py"))
    with pytest.raises(ConfigFileError, match="NUL"):
        Config({"a": 1}).dump(str(tmp_path / "a\0b.json"))


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("c.yaml", '_base_: "x\\0.py"\n'),
        ("c.py", "_base_ = ['ok.py', 'x\\x00.py']\n"),
        ("c.json", '{"_base_": "mmdet::x\\u0000.py"}'),
    ],
)
def test_nul_byte_in_a_base_entry_names_the_entry(tmp_path: Path, name: str, text: str) -> None:
    write(tmp_path, "ok.py", "a = 1\n")
    path = write(tmp_path, name, text)
    with pytest.raises(ConfigFileError, match=r"_base_ entry .*NUL") as info:
        Config.fromfile(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("entry", ["3", "[3]", "['a.py', None]", "{'a': 1}", "['']"])
def test_bad_base_entries_name_the_file(tmp_path: Path, entry: str) -> None:
    path = write(tmp_path, "c.py", f"_base_ = {entry}\n")
    with pytest.raises(ConfigFileError, match="_base_") as info:
        Config.fromfile(path)
    assert str(path) in str(info.value)


@pytest.mark.skipif(sys.platform == "win32", reason="symlinks need privileges on Windows")
def test_symlink_loops_are_errors(tmp_path: Path) -> None:
    (tmp_path / "loop.py").symlink_to(tmp_path / "loop2.py")
    (tmp_path / "loop2.py").symlink_to(tmp_path / "loop.py")
    with pytest.raises(ConfigFileError, match="symlink") as info:
        Config.fromfile(tmp_path / "loop.py")
    assert "loop.py" in str(info.value)
    child = write(tmp_path, "child.yaml", "_base_: loop.py\n")
    with pytest.raises(ConfigFileError, match="symlink") as info:
        Config.fromfile(child)
    assert "child.yaml" in str(info.value) and "loop.py" in str(info.value)


# --------------------------------------------------------------------------- inheritance


def test_long_inheritance_chain_is_an_error_naming_its_length(tmp_path: Path) -> None:
    count = 800
    write(tmp_path, f"c{count - 1}.yaml", "a: 1\n")
    for index in range(count - 1):
        write(tmp_path, f"c{index}.yaml", f"_base_: c{index + 1}.yaml\n")
    with pytest.raises(ConfigFileError, match=f"more than {MAX_INHERITANCE} files deep") as info:
        Config.fromfile(tmp_path / "c0.yaml")
    assert "c0.yaml" in str(info.value)


def test_inheritance_at_the_limit_loads(tmp_path: Path) -> None:
    write(tmp_path, f"c{MAX_INHERITANCE - 1}.json", '{"a": 1}')
    for index in range(MAX_INHERITANCE - 1):
        write(tmp_path, f"c{index}.json", json.dumps({"_base_": f"c{index + 1}.json", f"k{index}": index}))
    cfg = Config.fromfile(tmp_path / "c0.json")
    assert cfg.a == 1 and cfg[f"k{MAX_INHERITANCE - 2}"] == MAX_INHERITANCE - 2


def test_diamond_inheritance_reads_each_file_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # 30 layers of two files, each inheriting both files of the layer below: 2**30 paths to the bottom
    layers = 30
    write(tmp_path, f"l{layers}_a.yaml", "value: {bottom: true}\n")
    write(tmp_path, f"l{layers}_b.py", "other = [1, 2]\n")
    for layer in range(layers):
        below = f"[l{layer + 1}_a.yaml, l{layer + 1}_b.py]"
        write(tmp_path, f"l{layer}_a.yaml", f"_base_: {below}\nvalue: {{layer{layer}: {layer}}}\n")
        write(tmp_path, f"l{layer}_b.py", f"_base_ = ['l{layer + 1}_a.yaml', 'l{layer + 1}_b.py']\n")
    reads: list[Path] = []
    real_read = config_module._read_text
    monkeypatch.setattr(config_module, "_read_text", lambda path, chain: reads.append(path) or real_read(path, chain))
    cfg = Config.fromfile(tmp_path / "l0_a.yaml")
    assert cfg.value.bottom is True and cfg.value.layer0 == 0 and cfg.other == [1, 2]
    assert len(reads) == len(set(reads)) == 2 * layers + 1
    reads.clear()
    Config.fromfile(tmp_path / "l0_a.yaml")  # a new load reads the files again: edits are seen
    assert len(reads) == 2 * layers + 1


def test_cached_bases_are_not_shared_between_children(tmp_path: Path) -> None:
    write(tmp_path, "base.py", "opt = dict(lr=0.1, steps=[1, 2])\n")
    write(tmp_path, "left.py", "_base_ = 'base.py'\nopt = dict(lr=0.2)\n")
    write(tmp_path, "right.py", "_base_ = 'base.py'\n_base_.opt.steps.append(3)\nsteps = _base_.opt.steps\n")
    path = write(tmp_path, "top.py", "_base_ = ['right.py', 'left.py']\n")
    cfg = Config.fromfile(path)
    # right's edit of its _base_ is right's own: left, loaded from the same cached base, keeps [1, 2]
    assert cfg.opt.to_dict() == {"lr": 0.2, "steps": [1, 2]} and cfg.steps == [1, 2, 3]
    assert Config.fromfile(tmp_path / "right.py").opt.to_dict() == {"lr": 0.1, "steps": [1, 2, 3]}


# --------------------------------------------------------------------------- silent accepts


@pytest.mark.parametrize(
    ("name", "text", "kind"),
    [
        ("c.json", "null", "null"),
        ("c.json", "[1, 2]", "list"),
        ("c.json", '"text"', "str"),
        ("c.yaml", "null\n", "null"),
        ("c.yaml", "~\n", "null"),
        ("c.yaml", "- 1\n", "list"),
        ("c.yaml", "just text\n", "str"),
    ],
)
def test_top_level_that_is_not_a_mapping_is_an_error(tmp_path: Path, name: str, text: str, kind: str) -> None:
    path = write(tmp_path, name, text)
    with pytest.raises(ConfigFileError, match=f"top level .* got {kind}") as info:
        Config.fromfile(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "---\n"])
def test_an_empty_yaml_file_is_an_empty_config(tmp_path: Path, text: str) -> None:
    assert Config.fromfile(write(tmp_path, "c.yaml", text)) == {}


@pytest.mark.parametrize(
    "item",
    ["_base_=['x.py']", "_delete_=True", "optimizer._delete_=True", 'optimizer."_base_"=1', "a={'_delete_': True}"],
)
def test_overrides_of_reserved_keys_are_errors(item: str) -> None:
    cfg = Config({"a": {"b": 1}, "optimizer": {"lr": 0.1}})
    before = cfg.to_dict()
    with pytest.raises(ConfigError, match="reserved"):
        cfg.merge_from_dotlist([item], allow_new_keys=True)
    with pytest.raises(ConfigError, match="_base_|_delete_"):
        cfg.merge_from_dict(parse_cfg_options([item]), allow_new_keys=True)
    assert cfg.to_dict() == before


@pytest.mark.parametrize("item", [3, None, b"a=1", ("a", "1"), 1.5])
def test_non_string_dotlist_items_name_the_item_and_index(item: Any) -> None:
    with pytest.raises(ConfigError) as info:
        parse_cfg_options(["a=1", item])
    assert isinstance(info.value, TypeError)
    assert "item 1" in str(info.value) and type(item).__name__ in str(info.value)


def test_non_iterable_dotlist_and_non_mapping_options_are_type_errors() -> None:
    with pytest.raises(ConfigError) as info:
        parse_cfg_options(3)  # type: ignore[arg-type]
    assert isinstance(info.value, TypeError)
    with pytest.raises(ConfigError) as info:
        Config({"a": 1}).merge_from_dict(["a=1"])  # type: ignore[arg-type]
    assert isinstance(info.value, TypeError)


@pytest.mark.parametrize("key", [3, None, ("a", "b"), b"a"])
def test_non_string_override_keys_are_type_errors(key: Any) -> None:
    cfg = Config({"a": 1})
    with pytest.raises(ConfigError) as info:
        cfg.merge_from_dict({key: 1})
    assert isinstance(info.value, TypeError) and repr(key) in str(info.value)


# --------------------------------------------------------------------------- code that exits


@pytest.mark.parametrize("code", ["exit(2)", "import sys\nsys.exit('bye')", "raise SystemExit", "raise GeneratorExit"])
def test_python_config_that_exits_is_an_error_naming_the_file(tmp_path: Path, code: str) -> None:
    path = write(tmp_path, "c.py", code + "\n")
    with pytest.raises(ConfigFileError) as info:
        Config.fromfile(path)
    assert str(path) in str(info.value)


def test_keyboard_interrupt_in_a_config_still_interrupts(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt):
        Config.fromfile(write(tmp_path, "c.py", "raise KeyboardInterrupt\n"))


@pytest.mark.parametrize("command", ["show", "check"])
def test_cli_reports_a_config_that_exits(tmp_path: Path, command: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "c.py", "optimizer = dict(type='SGD', lr=0.1)\nexit(0)\n")
    assert cli_main([command, str(path), "-m", "tiny_mlp"]) == 1
    assert "c.py" in capsys.readouterr().err


def test_cli_reports_self_references_and_laughs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for name, text in [("a.yaml", "optimizer: &a [*a]\n"), ("b.yaml", laughs(9, 9))]:
        assert cli_main(["check", str(write(tmp_path, name, text)), "-m", "tiny_mlp"]) == 1
        assert name in capsys.readouterr().err


# --------------------------------------------------------------------------- huge numbers


def test_huge_integers_load_and_refuse_to_dump_with_their_path(tmp_path: Path) -> None:
    big = "9" * 5000
    with pytest.raises(ConfigFileError, match="digits") as info:
        Config.fromfile(write(tmp_path, "c.json", '{"a": ' + big + "}"))
    assert "c.json" in str(info.value)
    with pytest.raises(ConfigFileError, match="digits"):
        Config.fromfile(write(tmp_path, "c.yaml", "a: " + big + "\n"))
    cfg = Config({"a": {"b": 10**5000, 10**5000: 1}})
    for suffix in (".json", ".yaml", ".toml"):
        with pytest.raises(ConfigError, match=r"a -> b: .*digits"):
            cfg.dump(tmp_path / f"out{suffix}")
    cfg.dump(tmp_path / "out.py")  # written in hex, which has no digit limit
    assert Config.fromfile(tmp_path / "out.py") == cfg
    with pytest.raises(ParamwiseError, match="no key 'zz'"):
        cfg.a.zz  # noqa: B018


# --------------------------------------------------------------------------- inputs are not mutated

JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20,
)


@given(
    data=st.dictionaries(st.text(max_size=6), JSONISH, max_size=5),
    options=st.dictionaries(st.text(max_size=6), JSONISH, max_size=4),
)
def test_config_and_merge_never_mutate_their_inputs(data: dict[str, Any], options: dict[str, Any]) -> None:
    data_before, options_before = pickle.dumps(data), pickle.dumps(options)
    cfg = Config(data)
    try:
        cfg.merge_from_dict(options, allow_new_keys=True)
    except ConfigError:
        pass
    for value in cfg.values():  # change everything reachable through the config
        if isinstance(value, list):
            value.append("changed")
        elif isinstance(value, dict):
            value["changed"] = True
    assert pickle.dumps(data) == data_before and pickle.dumps(options) == options_before


# --------------------------------------------------------------------------- fuzz

KEY_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=6) | st.sampled_from(
    ["_base_", "_delete_", "type", "a.b", "x\0y", "0", "lr"]
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.builds(pow, st.just(10), st.sampled_from([20, 5000]))
    | st.floats()
    | st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=10)
)
VALUES = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEY_TEXT, inner, max_size=4), max_leaves=25
)
NOISE_PIECES = [*"[]{}():,&*!|>-'\"#=\\\n\t \0aZ9._\u2028", "_base_", "{{_base_.a}}", "&a", "*a"]
NOISE = st.lists(st.sampled_from(NOISE_PIECES), max_size=30).map("".join)


def _yaml_text(value: Any) -> str:
    try:
        return yaml.safe_dump({"k": value}, allow_unicode=True)
    except (yaml.YAMLError, ValueError):
        return "k: 1\n"


def _json_text(value: Any) -> str:
    try:
        return json.dumps({"k": value}, ensure_ascii=False)
    except ValueError:
        return '{"k": 1}'


def _python_text(value: Any) -> str:
    try:
        return f"k = {value!r}\n"
    except ValueError:
        return "k = 1\n"


@st.composite
def config_texts(draw: st.DrawFn) -> tuple[str, str]:
    """(file name, text): serialised values, mutated or noisy text, deep nesting, aliases, hostile code."""
    suffix = draw(st.sampled_from([".yaml", ".json", ".py", ".toml"]))
    kind = draw(st.sampled_from(["value", "mutated", "noise", "nested", "laughs", "special"]))
    if kind in ("value", "mutated"):
        value = draw(VALUES)
        text = {".yaml": _yaml_text, ".json": _json_text, ".py": _python_text}.get(suffix, lambda v: "k = 1\n")(value)
        if kind == "mutated" and text:
            at = draw(st.integers(0, len(text)))
            text = text[:at] + draw(NOISE) + text[at + draw(st.integers(0, 3)) :]
    elif kind == "noise":
        text = draw(NOISE)
    elif kind == "nested":
        depth = draw(st.sampled_from([1, 50, MAX_DEPTH - 1, MAX_DEPTH, MAX_DEPTH + 1, 199, 201, 1000, 5000]))
        opening, closing = draw(st.sampled_from([("[", "]"), ("{a: ", "}"), ("[{x: ", "}]")]))
        if suffix == ".json":
            opening, closing = opening.replace("{a: ", '{"a": ').replace("{x: ", '{"x": '), closing
        elif suffix == ".toml":
            opening, closing = opening.replace("{a: ", "{a = ").replace("{x: ", "{x = "), closing
        elif suffix == ".py":
            opening, closing = opening.replace("{a: ", "{'a': ").replace("{x: ", "{'x': "), closing
        body = nested(opening, closing, depth, "1")
        texts = {".json": f'{{"k": {body}}}', ".toml": f"k = {body}\n", ".py": f"k = {body}\n"}
        text = texts.get(suffix, f"k: {body}\n")
    elif kind == "laughs":
        suffix = ".yaml"
        text = laughs(draw(st.integers(1, 9)), draw(st.integers(1, 12)))
        if draw(st.booleans()):
            text += "self: &s [1, *s]\n"
    else:
        suffix, text = draw(
            st.sampled_from(
                [
                    (".py", "a = []\na.append(a)\n"),
                    (".py", "a = {}\nx = a\nfor _ in range(3000):\n    x['n'] = {}\n    x = x['n']\n"),
                    (".py", "exit(1)\n"),
                    (".py", "raise SystemExit('x')\n"),
                    (".py", "_base_ = [3]\n"),
                    (".py", "_base_ = 'x\\x00.py'\n"),
                    (".py", "k = 10 ** 5000\n"),
                    (".py", "k = {10 ** 5000: 1}\n"),
                    (".yaml", "_base_: [null]\n"),
                    (".yaml", "_base_: loop.yaml\n"),
                    (".yaml", "_base_: self.yaml\n"),
                    (".json", "null"),
                    (".json", '{"_base_": "\\u0000"}'),
                    (".toml", "_base_ = [1]\n"),
                    (".yaml", "k: {{_base_.a}}\n"),
                    (".yaml", "a: " + "9" * 5000 + "\n"),
                    (".json", '{"a": ' + "9" * 5000 + "}"),
                ]
            )
        )
    return draw(st.sampled_from(["self", "c", "loop"])) + suffix, text


def check_outcome(action: Callable[[], Any], *names: str) -> str:
    """Run ``action``: it must return, or raise a ParamwiseError that is also a built-in and names one of
    ``names``. Returns what happened: 'ok' or the error class."""
    try:
        action()
    except ParamwiseError as exc:
        assert isinstance(exc, BUILTIN_BASES), f"{type(exc).__mro__} is no built-in: {exc}"
        message = str(exc)
        # a key in a problem's path may be shown in repr quotes (errors.format_path: empty, padded, control characters)
        assert any(name in message or repr(name) in message for name in names), f"{message!r} names none of {names!r}"
        return type(exc).__name__
    return "ok"


@pytest.mark.slow
@given(file=config_texts())
def test_fuzz_fromfile(file: tuple[str, str]) -> None:
    name, text = file
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        if not name.startswith("loop") and os.name != "nt":  # a base named loop.* is a symlink to itself
            Path(folder, "loop" + path.suffix).symlink_to(Path(folder, "loop" + path.suffix))
        check_outcome(lambda: Config.fromfile(path), name)


DOT_ITEMS = st.one_of(
    st.builds(lambda k, v: f"{k}={v}", KEY_TEXT, NOISE),
    st.builds(lambda k, v: f"{k}={_python_text(v)[4:]}", st.sampled_from(["a", "a.b", "a.0", "l.1", "n.x.y"]), VALUES),
    NOISE,
    st.integers(),
    st.none(),
    st.binary(max_size=5),
)


@given(items=st.lists(DOT_ITEMS, max_size=5), allow_new=st.booleans())
def test_fuzz_dotlist(items: list[Any], allow_new: bool) -> None:
    cfg = Config({"a": {"b": 1}, "l": [1, {"x": 2}], "n": None})
    before_items, before_cfg = copy.deepcopy(items), pickle.dumps(cfg.to_dict())
    names = [text for item in items for text in _texts_of(item)]
    outcome = check_outcome(lambda: cfg.merge_from_dotlist(items, allow_new_keys=allow_new), *names)
    assert items == before_items
    if outcome != "ok":  # all or nothing
        assert pickle.dumps(cfg.to_dict()) == before_cfg


def _texts_of(item: Any) -> list[str]:
    if isinstance(item, str):
        key = item.partition("=")[0]
        return [item, key.strip(), *key.strip().split("."), *(s.strip("'\"") for s in key.split("."))]
    return [f"item {i}" for i in range(5)]


@given(options=st.dictionaries(st.one_of(KEY_TEXT, st.integers(), st.tuples(st.text(max_size=2))), VALUES, max_size=4))
def test_fuzz_merge_from_dict_and_dump(options: dict[Any, Any]) -> None:
    cfg = Config({"a": {"b": 1}, "l": [1, 2]})
    before = pickle.dumps(options)
    names = ["(top level)"] + [s for k in options for s in (repr(k), *str(k).split("."))] if options else ["?"]
    check_outcome(lambda: cfg.merge_from_dict(options, allow_new_keys=True), *names)
    assert pickle.dumps(options) == before
    with tempfile.TemporaryDirectory() as folder:
        for suffix in (".py", ".json", ".yaml", ".toml"):
            path = Path(folder) / f"out{suffix}"
            outcome = check_outcome(lambda: cfg.dump(path), "->", "(top level)", str(path))  # noqa: B023
            if outcome == "ok" and suffix != ".toml":
                check_outcome(lambda: Config.fromfile(path), str(path))  # noqa: B023


@given(data=st.one_of(VALUES, st.dictionaries(st.one_of(KEY_TEXT, st.integers()), VALUES, max_size=4)))
def test_fuzz_config_from_data(data: Any) -> None:
    before = pickle.dumps(data)
    check_outcome(lambda: Config(data).to_dict(), "Config", "->", "(top level)")
    assert pickle.dumps(data) == before


def test_a_dump_that_cannot_write_is_also_an_oserror(tmp_path) -> None:
    from paramwise.errors import ConfigFileWriteError

    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(ConfigFileWriteError, match="cannot write") as info:
        Config({"a": 1}).dump(blocker / "x.py")
    assert isinstance(info.value, OSError) and isinstance(info.value, ValueError)
