"""Tests for paramwise.config.configdict: ConfigDict.update (and ``|``, ``|=``) merge as mmengine's ConfigDict does.

mmengine's ``ConfigDict`` is the reference: the same start and the same updates must give the same data.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paramwise.config.config import Config, ConfigDict
from paramwise.errors import ConfigError, UsageTypeError

mm_config = pytest.importorskip("mmengine.config")
MMConfigDict = mm_config.ConfigDict

# Few key names, so that updates often meet keys that are already there (and dicts meet dicts).
KEYS = st.sampled_from(["a", "b", "c", "lr", "head"])
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.floats(allow_nan=False), st.text(max_size=3))


def values(max_leaves: int = 12) -> st.SearchStrategy[Any]:
    """Config values: scalars, and dicts, lists and tuples of them, nested a few levels."""
    return st.recursive(
        SCALARS,
        lambda inner: st.one_of(
            st.dictionaries(KEYS, inner, max_size=4),
            st.lists(inner, max_size=3),
            st.lists(inner, max_size=3).map(tuple),
        ),
        max_leaves=max_leaves,
    )


DICTS = st.dictionaries(KEYS, values(), max_size=5)


def plain(value: Any) -> Any:
    """Any dict (ours, mmengine's, addict's) as a plain dict, all the way down, for comparing."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in dict.items(value)}
    if isinstance(value, (list, tuple)):
        return type(value)(plain(v) for v in value)
    return value


def dicts_are(cls: type, value: Any) -> bool:
    """Whether every dict inside ``value`` (lists and tuples included) is a ``cls``, so it reads by attribute."""
    if isinstance(value, dict):
        return type(value) is cls and all(dicts_are(cls, v) for v in dict.values(value))
    if isinstance(value, (list, tuple)):
        return all(dicts_are(cls, v) for v in value)
    return True


@given(start=DICTS, updates=st.lists(st.tuples(DICTS, DICTS), min_size=1, max_size=3))
def test_update_matches_mmengine(start: dict[str, Any], updates: list[tuple[dict[str, Any], dict[str, Any]]]) -> None:
    ours, theirs = ConfigDict(start), MMConfigDict(start)
    for positional, keywords in updates:
        given_before = copy.deepcopy((positional, keywords))
        ours.update(positional, **keywords)
        theirs.update(positional, **keywords)
        assert plain(ours) == plain(theirs)
        assert (positional, keywords) == given_before  # the arguments are read, never changed
        assert dicts_are(ConfigDict, ours)
    positional, keywords = updates[0]
    ours.update(**keywords)  # keywords alone
    theirs.update(**keywords)
    assert plain(ours) == plain(theirs)


@given(start=DICTS, other=DICTS)
def test_merge_operators_match_mmengine(start: dict[str, Any], other: dict[str, Any]) -> None:
    ours, theirs = ConfigDict(start), MMConfigDict(start)
    merged = ours | other
    assert plain(merged) == plain(theirs | other)
    assert type(merged) is ConfigDict and dicts_are(ConfigDict, merged)
    assert plain(ours) == start  # `|` leaves both operands as they were
    assert plain(other | ours) == plain(other | theirs)
    assert plain(ours) == start
    ours |= other
    theirs |= other
    assert plain(ours) == plain(theirs)
    assert plain(ours) == plain(merged)


def test_update_merges_nested_dicts_and_replaces_everything_else() -> None:
    cfg = ConfigDict(model=dict(head=dict(num_classes=80, loss=dict(type="CE")), depths=[2, 2]), lr=0.1)
    cfg.update(dict(model=dict(head=dict(num_classes=3), depths=[3]), lr=dict(base=0.2)))
    assert cfg.to_dict() == {
        "model": {"head": {"num_classes": 3, "loss": {"type": "CE"}}, "depths": [3]},
        "lr": {"base": 0.2},  # a dict where a number was replaces it
    }
    assert cfg.lr.base == 0.2
    cfg.update(model=None)  # a non-dict value replaces a dict
    assert cfg.to_dict() == {"model": None, "lr": {"base": 0.2}}


def test_update_keywords_replace_the_positional_value_then_merge() -> None:
    cfg = ConfigDict(a=dict(keep=1))
    cfg.update(dict(a=dict(x=1)), a=dict(y=2))
    assert cfg.to_dict() == {"a": {"keep": 1, "y": 2}}
    reference = MMConfigDict(a=dict(keep=1))
    reference.update(dict(a=dict(x=1)), a=dict(y=2))
    assert plain(reference) == cfg.to_dict()


def test_delete_key_in_update_replaces_instead_of_merging() -> None:
    """A deliberate difference: mmengine's update keeps ``_delete_`` as a key and still merges."""
    start = dict(optimizer=dict(type="SGD", lr=0.1, momentum=0.9), other=1)
    cfg = ConfigDict(start)
    cfg.update(optimizer=dict(_delete_=True, type="AdamW", lr=1e-3, betas=[dict(_delete_=False, b=1)]))
    assert cfg.to_dict() == {"optimizer": {"type": "AdamW", "lr": 1e-3, "betas": [{"b": 1}]}, "other": 1}
    reference = MMConfigDict(start)
    reference.update(optimizer=dict(_delete_=True, type="AdamW", lr=1e-3))
    assert plain(reference)["optimizer"] == {"type": "AdamW", "lr": 1e-3, "momentum": 0.9, "_delete_": True}
    cfg.update(dict(_delete_=True, fresh=dict(x=1)))  # at the top: this dict's old keys go
    assert cfg.to_dict() == {"fresh": {"x": 1}}
    cfg.update(fresh=dict(_delete_=False, y=2))  # a false _delete_ merges, and is not stored either
    assert cfg.to_dict() == {"fresh": {"x": 1, "y": 2}}


def test_update_keeps_a_config_its_type_and_filename() -> None:
    cfg = Config(dict(optimizer=dict(type="SGD", lr=0.1)), filename="x.py")
    cfg.update(optimizer=dict(lr=0.2))
    assert cfg.optimizer.to_dict() == {"type": "SGD", "lr": 0.2}
    merged = cfg | dict(optimizer=dict(momentum=0.9))
    assert type(merged) is Config and merged.filename == "x.py"
    assert merged.optimizer.momentum == 0.9 and "momentum" not in cfg.optimizer


def test_update_copies_plain_dicts_and_shares_configdicts() -> None:
    """Plain dicts and lists are copied in (as mmengine's hook does); a ConfigDict is kept, like assignment."""
    given = dict(x=dict(y=1), items=[1])
    shared = ConfigDict(z=1)
    cfg = ConfigDict()
    cfg.update(given, view=shared)
    given["x"]["y"] = 2
    given["items"].append(2)
    assert cfg.to_dict() == {"x": {"y": 1}, "items": [1], "view": {"z": 1}}
    assert cfg.view is shared


def test_update_refuses_bad_arguments_and_changes_nothing() -> None:
    cfg = ConfigDict(a=dict(b=1))
    with pytest.raises(UsageTypeError, match="at most 1 positional argument"):
        cfg.update({}, {})
    with pytest.raises(UsageTypeError, match="a dict or \\(key, value\\) pairs, got int"):
        cfg.update(5)
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(ConfigError, match="a -> c -> 0: the value contains itself"):
        cfg.update(a=dict(c=loop), d=1)
    assert cfg.to_dict() == {"a": {"b": 1}}
    cfg.update([("a", dict(c=2))])  # (key, value) pairs, as dict.update takes them
    assert cfg.to_dict() == {"a": {"b": 1, "c": 2}}


def test_python_config_code_gets_the_same_configdict(tmp_path: Path) -> None:
    """``_base_`` and ``read_base()`` values in a .py config are ConfigDicts: the same update, the same errors."""
    (tmp_path / "base.py").write_text("model = dict(head=dict(n=1, loss=dict(type='CE')), neck=dict(a=1))\n")
    (tmp_path / "child.py").write_text(
        "from mmengine.config import read_base\n"
        "with read_base():\n"
        "    from .base import *\n"
        "kind = type(model).__name__\n"
        "model.update(dict(head=dict(n=3)), neck=dict(b=2))\n"
        "model |= dict(extra=dict(c=1))\n"
    )
    cfg = Config.fromfile(tmp_path / "child.py")
    assert cfg.kind == "ConfigDict"
    assert cfg.model.to_dict() == {
        "head": {"n": 3, "loss": {"type": "CE"}},
        "neck": {"a": 1, "b": 2},
        "extra": {"c": 1},
    }
    assert cfg.to_dict() == {**plain(mm_config.Config.fromfile(tmp_path / "child.py").to_dict()), "kind": "ConfigDict"}


# --------------------------------------------------------------------------- merge (new-style configs)


def with_delete_keys(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Dicts of ``inner`` that may hold ``_delete_`` (true or false, first or last), as a merge's argument."""
    plain_dicts = st.dictionaries(KEYS, inner, max_size=4)
    flag = st.one_of(st.none(), st.booleans(), st.booleans().map(int))
    return st.tuples(plain_dicts, flag, st.booleans()).map(
        lambda t: t[0] if t[1] is None else ({DELETE: t[1], **t[0]} if t[2] else {**t[0], DELETE: t[1]})
    )


DELETE = "_delete_"
MERGE_VALUES = st.recursive(
    SCALARS, lambda inner: st.one_of(with_delete_keys(inner), st.lists(inner, max_size=2)), max_leaves=12
)
MERGE_DICTS = st.dictionaries(KEYS, MERGE_VALUES, max_size=5)


def ordered(value: Any, *, drop_delete: bool = False) -> Any:
    """A dict as its (key, value) items in order, all the way down, so comparing also compares key order."""
    if isinstance(value, dict):
        items = [(k, v) for k, v in dict.items(value) if not drop_delete or k != DELETE]
        return [(k, ordered(v, drop_delete=drop_delete)) for k, v in items]
    if isinstance(value, (list, tuple)):
        return type(value)(ordered(v, drop_delete=drop_delete) for v in value)
    return value


def stores_delete(value: Any) -> bool:
    if isinstance(value, dict):
        return DELETE in value or any(stores_delete(v) for v in dict.values(value))
    if isinstance(value, (list, tuple)):
        return any(stores_delete(v) for v in value)
    return False


@given(start=DICTS, merges=st.lists(MERGE_DICTS, min_size=1, max_size=3))
def test_merge_matches_mmengine(start: dict[str, Any], merges: list[dict[str, Any]]) -> None:
    """mmengine's ConfigDict.merge is the reference, key order included; only its stored ``_delete_`` differs."""
    ours, theirs = ConfigDict(start), MMConfigDict(start)
    for other in merges:
        other_before = copy.deepcopy(other)
        ours.merge(other)
        theirs.merge(other)
        assert ordered(ours) == ordered(theirs, drop_delete=True)
        assert other == other_before  # the argument is read, never changed
        assert dicts_are(ConfigDict, ours)
        assert not stores_delete(ours)


def test_merge_in_place_with_delete() -> None:
    """centerpoint's ``train_dataloader.merge(dict(_delete_=True, ...))``: the dict is replaced, in place."""
    loader = ConfigDict(batch_size=2, dataset=dict(type="A", pipeline=[1]), sampler=dict(shuffle=True))
    dataset = loader.dataset  # a view into the config
    loader.merge(dict(dataset=dict(pipeline=[2], ann=dict(x=1))))
    assert loader.to_dict() == {
        "batch_size": 2,
        "dataset": {"type": "A", "pipeline": [2], "ann": {"x": 1}},
        "sampler": {"shuffle": True},
    }
    assert loader.dataset is dataset and dataset.ann.x == 1  # merged into: views see the change
    loader.merge(dict(_delete_=True, batch_size=4, sampler=dict(_delete_=True, seed=0)))
    assert loader.to_dict() == {"batch_size": 4, "sampler": {"seed": 0}}
    loader.merge(dict(sampler=dict(shuffle=dict(_delete_=True, x=1))))  # a dict where a bool was
    assert loader.to_dict() == {"batch_size": 4, "sampler": {"seed": 0, "shuffle": {"x": 1}}}


def test_merge_copies_what_it_is_given() -> None:
    given = ConfigDict(a=dict(b=[1]))
    cfg = ConfigDict()
    cfg.merge(given)
    given.a.b.append(2)
    given.a.c = 3
    assert cfg.to_dict() == {"a": {"b": [1]}}
    assert cfg.a is not given.a


def test_merge_refuses_bad_arguments_and_changes_nothing() -> None:
    cfg = ConfigDict(a=dict(b=1))
    for bad in (5, [("a", 1)], None):
        with pytest.raises(UsageTypeError, match="merge\\(\\) takes a dict, got"):
            cfg.merge(bad)  # type: ignore[arg-type]
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(ConfigError, match="a -> c -> 0: the value contains itself"):
        cfg.merge(dict(a=dict(c=loop), d=1))
    assert cfg.to_dict() == {"a": {"b": 1}}
    keyed = ConfigDict(merge=1)  # a key named like the method is kept, and read with cfg['merge']
    assert keyed["merge"] == 1 and callable(keyed.merge)
