"""Tests for paramwise.config.config: loading every format, _base_ inheritance, overrides, dumping, safety."""

from __future__ import annotations

import copy
import json
import pickle
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paramwise.config.config import (
    Config,
    ConfigAttributeError,
    ConfigDependencyError,
    ConfigDict,
    ConfigFileError,
    ConfigFileNotFoundError,
    ConfigKeyError,
    parse_cfg_options,
    parse_value,
)
from paramwise.errors import ConfigError, ParamwiseError

MMDET_OPTIMIZER = {"type": "SGD", "lr": 0.00125, "momentum": 0.9, "weight_decay": 0.0001}


def write(directory: Path, name: str, text: str) -> Path:
    """Write a fixture file and return its path."""
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# --------------------------------------------------------------------------- formats


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("c.py", "optimizer = dict(type='SGD', lr=0.1, betas=[0.9, 0.99])\nname = 'x'\n"),
        ("c.yaml", "optimizer:\n  type: SGD\n  lr: 0.1\n  betas: [0.9, 0.99]\nname: x\n"),
        ("c.yml", "optimizer: {type: SGD, lr: 0.1, betas: [0.9, 0.99]}\nname: x\n"),
        ("c.json", '{"optimizer": {"type": "SGD", "lr": 0.1, "betas": [0.9, 0.99]}, "name": "x"}'),
        ("c.toml", 'name = "x"\n[optimizer]\ntype = "SGD"\nlr = 0.1\nbetas = [0.9, 0.99]\n'),
    ],
)
def test_each_format_loads(tmp_path: Path, name: str, text: str) -> None:
    cfg = Config.fromfile(write(tmp_path, name, text))
    assert cfg.to_dict() == {"optimizer": {"type": "SGD", "lr": 0.1, "betas": [0.9, 0.99]}, "name": "x"}
    assert cfg.optimizer.lr == 0.1
    assert cfg.filename == str(tmp_path / name)


def test_python_config_keeps_only_plain_top_level_names(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "c.py",
        "import os\nfrom math import sqrt\nfrom collections import OrderedDict\n"
        "_private = 1\n__dunder = 2\n"
        "def helper():\n    return 3\n"
        "class Thing:\n    pass\n"
        "lr = sqrt(4) / 100\nsteps = [helper(), 5]\n",
    )
    assert Config.fromfile(path).to_dict() == {"lr": 0.02, "steps": [3, 5]}


def test_python_config_sees_its_own_file_name(tmp_path: Path) -> None:
    path = write(tmp_path, "c.py", "import os\nwork_dir = os.path.basename(__file__)\n")
    assert Config.fromfile(path).work_dir == "c.py"


def test_mmdetection_seed_example(tmp_path: Path) -> None:
    path = write(tmp_path, "mmdet.py", "optimizer = dict(type='SGD', lr=0.00125, momentum=0.9, weight_decay=0.0001)\n")
    cfg = Config.fromfile(path)
    assert cfg.optimizer.lr == 0.00125
    assert cfg.to_dict()["optimizer"] == MMDET_OPTIMIZER
    assert type(cfg.to_dict()["optimizer"]) is dict


def test_empty_yaml_is_an_empty_config(tmp_path: Path) -> None:
    assert Config.fromfile(write(tmp_path, "c.yaml", "")) == {}


# --------------------------------------------------------------------------- _base_


def test_yaml_inherits_from_python_base(tmp_path: Path) -> None:
    write(tmp_path, "base.py", "optimizer = dict(type='SGD', lr=0.1, momentum=0.9)\nepochs = 12\n")
    child = write(tmp_path, "child.yaml", "_base_: base.py\noptimizer:\n  lr: 0.01\n")
    cfg = Config.fromfile(child)
    assert cfg.to_dict() == {"optimizer": {"type": "SGD", "lr": 0.01, "momentum": 0.9}, "epochs": 12}
    assert "_base_" not in cfg


def test_three_deep_chain_across_formats(tmp_path: Path) -> None:
    write(tmp_path, "bases/root.py", "optimizer = dict(type='SGD', lr=0.1, momentum=0.9)\nseed = 0\n")
    write(tmp_path, "bases/mid.json", '{"_base_": "root.py", "optimizer": {"momentum": 0.5}, "epochs": 3}')
    top = write(tmp_path, "top.toml", '_base_ = "bases/mid.json"\nseed = 7\n[optimizer]\nlr = 0.01\n')
    cfg = Config.fromfile(top)
    assert cfg.to_dict() == {
        "optimizer": {"type": "SGD", "lr": 0.01, "momentum": 0.5},
        "seed": 7,
        "epochs": 3,
    }


def test_several_bases_merge_in_order_then_the_file(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "x: 1\nshared: {a: 1, b: 1}\n")
    write(tmp_path, "b.json", '{"y": 2, "shared": {"b": 2, "c": 2}}')
    top = write(tmp_path, "top.py", "_base_ = ['a.yaml', 'b.json']\nshared = dict(c=3)\n")
    assert Config.fromfile(top).to_dict() == {"x": 1, "y": 2, "shared": {"a": 1, "b": 2, "c": 3}}


def test_delete_replaces_the_base_dict(tmp_path: Path) -> None:
    write(tmp_path, "base.py", "optimizer = dict(type='SGD', lr=0.1, momentum=0.9, nesterov=True)\n")
    top = write(tmp_path, "top.yaml", "_base_: base.py\noptimizer:\n  _delete_: true\n  type: AdamW\n  lr: 0.001\n")
    assert Config.fromfile(top).to_dict() == {"optimizer": {"type": "AdamW", "lr": 0.001}}


def test_delete_key_never_reaches_the_result(tmp_path: Path) -> None:
    path = write(tmp_path, "c.py", "a = dict(_delete_=True, b=dict(_delete_=True, c=1), items=[dict(_delete_=True)])\n")
    assert Config.fromfile(path).to_dict() == {"a": {"b": {"c": 1}, "items": [{}]}}


def test_lists_are_replaced_not_merged(tmp_path: Path) -> None:
    write(tmp_path, "base.yaml", "steps: [8, 11]\nmodel: {layers: [1, 2, 3]}\n")
    top = write(tmp_path, "top.py", "_base_ = 'base.yaml'\nsteps = [20]\nmodel = dict(layers=[])\n")
    assert Config.fromfile(top).to_dict() == {"steps": [20], "model": {"layers": []}}


def test_cycle_names_the_chain(tmp_path: Path) -> None:
    write(tmp_path, "a.py", "_base_ = 'b.yaml'\nx = 1\n")
    write(tmp_path, "b.yaml", "_base_: a.py\ny: 2\n")
    with pytest.raises(ConfigFileError) as info:
        Config.fromfile(tmp_path / "a.py")
    assert "a.py -> b.yaml -> a.py" in str(info.value)
    assert "cycle" in str(info.value)
    assert info.value.chain == ("a.py", "b.yaml", "a.py")


def test_a_file_that_inherits_from_itself_is_a_cycle(tmp_path: Path) -> None:
    path = write(tmp_path, "self.json", '{"_base_": "./self.json"}')
    with pytest.raises(ConfigFileError, match=r"self\.json -> self\.json"):
        Config.fromfile(path)


def test_missing_base_names_the_file_that_asked(tmp_path: Path) -> None:
    write(tmp_path, "top.py", "_base_ = 'mid.yaml'\n")
    write(tmp_path, "mid.yaml", "_base_: [nothere.json]\n")
    with pytest.raises(ConfigFileNotFoundError) as info:
        Config.fromfile(tmp_path / "top.py")
    message = str(info.value)
    assert info.value.filename == str(tmp_path / "mid.yaml")
    assert "mid.yaml" in message and "nothere.json" in message
    assert "top.py -> mid.yaml -> nothere.json" in message
    assert isinstance(info.value, FileNotFoundError)


def test_bad_base_value_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigFileError, match="_base_ must be a path or a list of paths"):
        Config.fromfile(write(tmp_path, "c.json", '{"_base_": 3}'))


def test_error_in_a_base_shows_the_chain(tmp_path: Path) -> None:
    write(tmp_path, "base.json", '{"a": }')
    with pytest.raises(ConfigFileError) as info:
        Config.fromfile(write(tmp_path, "top.yaml", "_base_: base.json\n"))
    assert info.value.filename == str(tmp_path / "base.json")
    assert "top.yaml -> base.json" in str(info.value)


# --------------------------------------------------------------------------- file errors


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigFileNotFoundError, match="nope.yaml"):
        Config.fromfile(tmp_path / "nope.yaml")


def test_unknown_extension_names_the_supported_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigFileError) as info:
        Config.fromfile(write(tmp_path, "c.ini", "[a]\n"))
    for suffix in (".py", ".yaml", ".yml", ".json", ".toml"):
        assert suffix in str(info.value)


@pytest.mark.parametrize(
    ("name", "text", "line"),
    [
        ("c.yaml", "a: 1\nb: [1, 2\nc: 3\n", None),
        ("c.json", '{\n  "a": 1,\n  "b": ,\n}', 3),
        ("c.toml", "a = 1\nb = = 2\n", 2),
        ("c.py", "a = 1\nb = (\n", None),
        ("c.py", "a = 1\nb = 1 / 0\n", 2),
    ],
)
def test_syntax_errors_name_file_and_line(tmp_path: Path, name: str, text: str, line: int | None) -> None:
    with pytest.raises(ConfigFileError) as info:
        Config.fromfile(write(tmp_path, name, text))
    assert info.value.filename == str(tmp_path / name)
    assert info.value.line is not None
    if line is not None:
        assert info.value.line == line
    assert f"line {info.value.line}" in str(info.value)


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    with pytest.raises(ConfigFileError, match="top level must be a mapping"):
        Config.fromfile(write(tmp_path, "c.yaml", "- 1\n- 2\n"))


def test_non_string_keys_load_as_written(tmp_path: Path) -> None:
    assert Config.fromfile(write(tmp_path, "c.yaml", "a:\n  1: x\n")).to_dict() == {"a": {1: "x"}}
    cfg = Config({"a": {2: 3}})
    assert cfg.a[2] == 3 and isinstance(cfg.a, ConfigDict)


def test_missing_pyyaml_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "c.yaml", "a: 1\n")
    monkeypatch.setitem(sys.modules, "yaml", None)
    with pytest.raises(ConfigDependencyError, match=r"pip install paramwise\[yaml\]"):
        Config.fromfile(path)
    with pytest.raises(ImportError, match=r"pip install paramwise\[yaml\]"):
        Config({"a": 1}).dump(tmp_path / "out.yaml")


def test_missing_toml_reader_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "c.toml", "a = 1\n")
    monkeypatch.setitem(sys.modules, "tomllib", None)
    monkeypatch.setitem(sys.modules, "tomli", None)
    with pytest.raises(ConfigDependencyError, match="tomli"):
        Config.fromfile(path)


# --------------------------------------------------------------------------- YAML safety


def test_yaml_python_tags_are_rejected_and_not_run(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = write(tmp_path, "evil.yaml", f"a: 1\nb: !!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(ConfigFileError) as info:
        Config.fromfile(path)
    assert "python tags are not allowed" in str(info.value)
    assert "evil.yaml" in str(info.value) and info.value.line == 2
    assert not marker.exists()


def test_unknown_yaml_tags_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigFileError, match="unknown YAML tag"):
        Config.fromfile(write(tmp_path, "c.yaml", "a: !custom 3\n"))


# --------------------------------------------------------------------------- overrides


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.01", 0.01),
        ("1e-3", 0.001),
        ("-3", -3),
        ("True", True),
        ("true", True),
        ("false", False),
        ("None", None),
        ("null", None),
        ("[1, 2]", [1, 2]),
        ("[true, null]", [True, None]),
        ("(0.9, 0.999)", (0.9, 0.999)),
        ("{'a': 1}", {"a": 1}),
        ("'quoted'", "quoted"),
        ('"10"', "10"),
        ("AdamW", "AdamW"),
        ("torch.optim.SGD", "torch.optim.SGD"),
        ("", ""),
        ("{1, 2}", "{1, 2}"),
        ("1+2j", "1+2j"),
        ("b'x'", "b'x'"),
    ],
)
def test_parse_value(text: str, expected: Any) -> None:
    value = parse_value(text)
    assert value == expected
    assert type(value) is type(expected)


def test_parse_cfg_options() -> None:
    assert parse_cfg_options(["optimizer.lr=0.01", "optimizer.type=AdamW", "a.b=x=y"]) == {
        "optimizer.lr": 0.01,
        "optimizer.type": "AdamW",
        "a.b": "x=y",
    }


def test_parse_cfg_options_without_equals_is_an_error() -> None:
    with pytest.raises(ConfigError) as info:
        parse_cfg_options(["optimizer.lr=0.1", "optimizer.lr", "=3"])
    assert len(info.value.problems) == 2
    assert "expected KEY=VALUE" in str(info.value)


def seed_config() -> Config:
    return Config({"optimizer": {**MMDET_OPTIMIZER, "paramwise_cfg": {"custom_keys": {"backbone": {"lr_mult": 1.0}}}}})


def test_merge_from_dotlist() -> None:
    cfg = seed_config()
    view = cfg.optimizer
    cfg.merge_from_dotlist(
        ["optimizer.lr=0.01", "optimizer.paramwise_cfg.custom_keys.backbone.lr_mult=0.1", "optimizer.type=AdamW"]
    )
    assert cfg.optimizer.lr == 0.01
    assert cfg.optimizer.paramwise_cfg.custom_keys.backbone.lr_mult == 0.1
    assert cfg.optimizer.type == "AdamW"
    assert view is cfg.optimizer  # views taken before the merge still see the config


def test_bad_override_path_suggests_and_changes_nothing() -> None:
    cfg = seed_config()
    before = cfg.to_dict()
    with pytest.raises(ConfigError) as info:
        cfg.merge_from_dotlist(
            ["optimizer.lr=0.5", "optimizer.paramwise_cfg.custom_keys.backbone.lr_mlt=0.1"], allow_new_keys=False
        )
    message = str(info.value)
    assert "Did you mean 'lr_mult'?" in message
    assert "lr_mult" in message and "allow_new_keys" in message
    assert info.value.problems[0].path == ("optimizer", "paramwise_cfg", "custom_keys", "backbone", "lr_mlt")
    assert cfg.to_dict() == before


def test_bad_override_at_top_level_lists_the_keys() -> None:
    with pytest.raises(ConfigError, match=r"Did you mean 'optimizer'\?.*Available keys here: optimizer"):
        seed_config().merge_from_dotlist(["optimzer.lr=1"])


def test_override_through_a_scalar_is_an_error_even_with_new_keys() -> None:
    with pytest.raises(ConfigError, match="not a section"):
        seed_config().merge_from_dotlist(["optimizer.lr.x=1"], allow_new_keys=True)


def test_allow_new_keys() -> None:
    cfg = seed_config()
    cfg.merge_from_dotlist(
        ["optimizer.paramwise_cfg.custom_keys.head.lr_mult=10", "runner.max_epochs=3"], allow_new_keys=True
    )
    assert cfg.optimizer.paramwise_cfg.custom_keys.head.lr_mult == 10
    assert cfg.runner.max_epochs == 3
    assert isinstance(cfg.runner, ConfigDict)


def test_override_a_list_element() -> None:
    cfg = Config({"steps": [8, 11]})
    cfg.merge_from_dotlist(["steps.1=12"])
    assert cfg.steps == [8, 12]
    with pytest.raises(ConfigError, match="not an index"):
        cfg.merge_from_dotlist(["steps.2=1"])


# --------------------------------------------------------------------------- access


def test_attribute_and_key_access() -> None:
    cfg = Config({"optimizer": MMDET_OPTIMIZER, "steps": [{"a": 1}]})
    assert cfg.optimizer.lr == cfg["optimizer"]["lr"] == 0.00125
    assert isinstance(cfg.optimizer, ConfigDict)
    assert cfg.steps[0].a == 1
    assert "optimizer" in cfg and "nope" not in cfg
    assert list(cfg) == ["optimizer", "steps"]
    assert cfg.get("nope", 3) == 3 and cfg.optimizer.get("lr") == 0.00125
    cfg.optimizer.lr = 0.5
    cfg["extra"] = {"x": {"y": 1}}
    assert cfg["optimizer"]["lr"] == 0.5 and cfg.extra.x.y == 1
    del cfg.extra
    assert "extra" not in cfg


def test_to_dict_is_plain() -> None:
    plain = Config({"a": {"b": [{"c": 1}]}}).to_dict()
    assert type(plain["a"]) is dict and type(plain["a"]["b"][0]) is dict
    assert json.dumps(plain) == '{"a": {"b": [{"c": 1}]}}'


def test_missing_attribute_suggests() -> None:
    cfg = Config({"optimizer": MMDET_OPTIMIZER})
    with pytest.raises(AttributeError, match=r"Did you mean 'optimizer'\?") as info:
        cfg.optimzer  # noqa: B018
    assert isinstance(info.value, ConfigAttributeError) and isinstance(info.value, ParamwiseError)
    with pytest.raises(AttributeError, match=r"Did you mean 'momentum'\?"):
        cfg.optimizer.momentun  # noqa: B018
    assert not hasattr(cfg, "nope")


def test_missing_key_suggests() -> None:
    with pytest.raises(KeyError, match=r"Did you mean 'optimizer'\?") as info:
        Config({"optimizer": {}})["optimiser"]
    assert isinstance(info.value, ConfigKeyError)


def test_equality() -> None:
    assert Config({"a": {"b": 1}}) == {"a": {"b": 1}}
    assert Config({"a": {"b": 1}}) == Config({"a": {"b": 1}}, filename="x.py")
    assert Config({"a": {"b": 1}}) != {"a": {"b": 2}}
    assert Config({"a": [1]}) != {"a": (1,)}


def test_config_copies_and_pickles(tmp_path: Path) -> None:
    cfg = Config({"a": {"b": [1, {"c": 2}]}}, filename="x.py")
    for clone in (copy.deepcopy(cfg), pickle.loads(pickle.dumps(cfg)), cfg.copy()):
        assert clone == cfg and clone.filename == "x.py" and isinstance(clone.a, ConfigDict)
    deep = copy.deepcopy(cfg)
    deep.a.b[1].c = 3
    assert cfg.a.b[1].c == 2


def test_method_names_cannot_be_set_as_attributes() -> None:
    cfg = Config()
    with pytest.raises(AttributeError, match=r"cfg\['items'\]"):
        cfg.items = 3  # type: ignore[method-assign]
    cfg["items"] = 3
    assert cfg["items"] == 3


# --------------------------------------------------------------------------- dumping


@pytest.mark.parametrize("suffix", [".py", ".json", ".yaml", ".yml", ".toml"])
def test_dump_round_trips_the_seed_config(tmp_path: Path, suffix: str) -> None:
    cfg = seed_config()
    cfg.dump(tmp_path / f"out{suffix}")
    assert Config.fromfile(tmp_path / f"out{suffix}") == cfg


def test_python_dump_is_readable_source(tmp_path: Path) -> None:
    cfg = Config({"optimizer": MMDET_OPTIMIZER, "model": {"depth": 50, "frozen": (1, 2)}})
    cfg.dump(tmp_path / "out.py")
    text = (tmp_path / "out.py").read_text()
    assert text == cfg.pretty_text
    assert text.startswith("optimizer = dict(type='SGD', lr=0.00125, momentum=0.9, weight_decay=0.0001)\n")
    assert "model = dict(depth=50, frozen=(1, 2))" in text
    assert Config.fromfile(tmp_path / "out.py").model.frozen == (1, 2)


def test_python_dump_breaks_long_values_over_lines() -> None:
    text = Config({"x": {f"key_{i}": "v" * 10 for i in range(8)}}).pretty_text
    lines = text.splitlines()
    assert lines[0] == "x = dict(" and lines[-1] == ")"
    assert all(line.startswith("    key_") and line.endswith(",") for line in lines[1:-1])
    assert all(len(line) <= 88 for line in lines)


def test_python_dump_handles_names_that_cannot_be_assigned(tmp_path: Path) -> None:
    cfg = Config({"if": 1, "dict": {"a": 2}, "x": {"b": 3}, "float": 4.5, "a-b": [float("inf")]})
    cfg.dump(tmp_path / "out.py")
    assert Config.fromfile(tmp_path / "out.py") == cfg


def test_python_dump_refuses_private_top_level_names(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="starting with '_'"):
        Config({"_hidden": 1}).dump(tmp_path / "out.py")


def test_toml_dump_refuses_none(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        Config({"a": {"b": None}, "c": [1, None]}).dump(tmp_path / "out.toml")
    assert [p.path for p in info.value.problems] == [("a", "b"), ("c", "1")]
    assert "TOML has no None" in str(info.value)
    assert not (tmp_path / "out.toml").exists()


def test_dump_refuses_objects_and_unknown_suffix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="a type cannot be written"):
        Config({"a": {"type": int}}).dump(tmp_path / "out.json")
    with pytest.raises(ConfigFileError, match=r"\.toml"):
        Config({"a": 1}).dump(tmp_path / "out.ini")


def test_yaml_and_json_dump_keep_key_order(tmp_path: Path) -> None:
    cfg = Config({"z": 1, "a": {"y": 2, "b": 3}})
    cfg.dump(tmp_path / "out.yaml")
    cfg.dump(tmp_path / "out.json")
    assert (tmp_path / "out.yaml").read_text() == "z: 1\na:\n  y: 2\n  b: 3\n"
    assert (tmp_path / "out.json").read_text() == '{\n  "z": 1,\n  "a": {\n    "y": 2,\n    "b": 3\n  }\n}\n'


def test_errors_derive_from_paramwise_error(tmp_path: Path) -> None:
    for cls in (ConfigFileError, ConfigFileNotFoundError, ConfigDependencyError, ConfigKeyError, ConfigAttributeError):
        assert issubclass(cls, ParamwiseError)


# --------------------------------------------------------------------------- round trip property

RESERVED = {"_base_", "_delete_"}
keys = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True).filter(lambda k: k not in RESERVED)
# .py configs drop top-level names that start with '_' by design, so top-level keys do not.
top_keys = keys.filter(lambda k: not k.startswith("_"))


def config_values(with_none: bool) -> st.SearchStrategy[Any]:
    scalars = st.one_of(
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),
        st.booleans(),
        st.text(),
        st.sampled_from(["null", "true", "1e3", "0x10", "1_000", "~", "12:30", "", " x ", "- a", "'", '"']),
        *([st.none()] if with_none else []),
    )
    return st.recursive(
        scalars,
        lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=4),
        max_leaves=12,
    )


def configs(with_none: bool) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(top_keys, config_values(with_none), max_size=5)


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".py", ".json", ".yaml", ".toml"])
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_dump_then_load_round_trips(tmp_path: Path, suffix: str, data: st.DataObject) -> None:
    # the same file is overwritten by each example, so sharing tmp_path between them is safe
    cfg = Config(data.draw(configs(with_none=suffix != ".toml")))
    path = tmp_path / f"cfg{suffix}"
    cfg.dump(path)
    assert Config.fromfile(path) == cfg


any_keys = st.text().filter(lambda k: k not in RESERVED)


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".py", ".json", ".yaml", ".toml"])
@settings(max_examples=75, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_round_trip_with_any_string_keys(tmp_path: Path, suffix: str, data: st.DataObject) -> None:
    scalars = st.one_of(st.integers(), st.text(), st.booleans(), st.floats(allow_nan=False))
    values = st.recursive(scalars, lambda c: st.lists(c, max_size=3) | st.dictionaries(any_keys, c, max_size=3))
    top = any_keys.filter(lambda k: not k.startswith("_"))
    cfg = Config(data.draw(st.dictionaries(top, values, max_size=4)))
    cfg.dump(tmp_path / f"cfg{suffix}")
    assert Config.fromfile(tmp_path / f"cfg{suffix}") == cfg


@pytest.mark.parametrize("suffix", [".py", ".json", ".yaml", ".toml"])
@pytest.mark.parametrize(
    "cfg",
    [
        {"a": "\x85", "b": "x\u2028y\u2029", "c": "tab\there\r\n\x00\x7f"},  # PyYAML folds \x85 unless quoted
        {"º": 1, "ﬁ": {"ª": 2}},  # Python reads the name º as o (NFKC), so it cannot be written bare
        {"s": ["null", "true", "1e3", "0x10", "12:30", "~", "", "- a", "#x", "a: b", "[1]"]},
        {"f": [1e300, -0.0, 5e-324, 1e16, 0.1, 123456789.123], "i": [2**70, -(2**70)]},
        {"k": {"a b": {"": 1, "a.b": 2, '"q"': 3}}},
        {"nested": {"empty": {}, "list": [[], {}, [{}]]}},
    ],
)
def test_round_trip_edge_cases(tmp_path: Path, suffix: str, cfg: dict[str, Any]) -> None:
    Config(cfg).dump(tmp_path / f"cfg{suffix}")
    assert Config.fromfile(tmp_path / f"cfg{suffix}") == cfg
