"""Registry and build_from_cfg: registration, lookup, building, and every error message."""

from __future__ import annotations

import copy
import sys
import types

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paramwise import (
    BuildArgumentError,
    BuildTargetError,
    DuplicateRegistrationError,
    NotRegisteredError,
    ParamwiseError,
    Registry,
    build_from_cfg,
)


class Adam:
    def __init__(self, lr: float = 1e-3, weight_decay: float = 0.0, betas=(0.9, 0.999)):
        self.lr = lr
        self.weight_decay = weight_decay
        self.betas = betas


class AdamW(Adam):
    pass


class Needs:
    def __init__(self, required, optional=1):
        self.required = required
        self.optional = optional


class Flexible:
    def __init__(self, **kwargs):
        self.kwargs = kwargs


class Raises:
    def __init__(self, value=0):
        raise ValueError(f"bad value {value}")


def make_fn(x=1, y=2):
    return x + y


@pytest.fixture
def reg() -> Registry:
    r = Registry("optimizer")
    r.register_module(module=Adam)
    r.register_module(module=AdamW)
    return r


def test_register_forms() -> None:
    r = Registry("thing")

    @r.register_module()
    class A:
        pass

    @r.register_module(name="Bee")
    class B:
        pass

    @r.register_module(name=["Cee", "cee_alias"])
    class C:
        pass

    r.register_module(module=make_fn)
    assert r.get("A") is A and r.get("Bee") is B
    assert r.get("Cee") is C and r.get("cee_alias") is C
    assert r.get("make_fn") is make_fn
    assert "B" not in r and "Bee" in r
    assert len(r) == 5
    assert list(r) == sorted(["A", "Bee", "Cee", "cee_alias", "make_fn"])
    assert "Bee" in repr(r) and "thing" in repr(r)


def test_duplicate_names_both_objects(reg: Registry) -> None:
    class Adam:  # same name, different object
        pass

    with pytest.raises(DuplicateRegistrationError) as info:
        reg.register_module(module=Adam)
    msg = str(info.value)
    assert "'Adam' is already registered in the optimizer registry" in msg
    assert "test_registry.Adam" in msg and "test_duplicate_names_both_objects.<locals>.Adam" in msg
    assert "force=True" in msg
    assert isinstance(info.value, KeyError) and isinstance(info.value, ParamwiseError)
    reg.register_module(module=Adam, force=True)
    assert reg.get("Adam") is Adam


def test_reregistering_same_object_is_fine(reg: Registry) -> None:
    reg.register_module(module=Adam)
    assert reg.get("Adam") is Adam


def test_register_rejects_non_callables() -> None:
    r = Registry("thing")
    with pytest.raises(TypeError, match="only classes and functions can be registered in the thing registry"):
        r.register_module(module=42)
    with pytest.raises(TypeError, match="string or a non-empty list of strings"):
        r.register_module(name=[1, 2], module=Adam)


def test_module_dict_is_read_only(reg: Registry) -> None:
    view = reg.module_dict
    assert view["Adam"] is Adam
    with pytest.raises(TypeError):
        view["x"] = Adam  # type: ignore[index]


def test_unknown_name_suggests(reg: Registry) -> None:
    with pytest.raises(NotRegisteredError) as info:
        reg.get("AdamWW")
    assert str(info.value) == "'AdamWW' is not in the optimizer registry. Did you mean 'AdamW' or 'Adam'?"
    assert info.value.suggestions[0] == "AdamW"
    assert isinstance(info.value, KeyError)
    with pytest.raises(NotRegisteredError, match="'adam' is not in .* Did you mean 'Adam'"):
        reg.get("adam")
    with pytest.raises(NotRegisteredError, match="It holds 2 names"):
        reg.get("zzzzzz")


def test_parent_lookup_child_first(reg: Registry) -> None:
    child = Registry("project optimizer", parent=reg)

    class MyAdam:
        pass

    child.register_module(name="Adam", module=MyAdam)
    assert child.get("Adam") is MyAdam
    assert child.get("AdamW") is AdamW
    assert reg.get("Adam") is Adam
    assert "AdamW" in child and len(child) == 1
    assert child.names() == ["Adam", "AdamW"]
    with pytest.raises(NotRegisteredError, match="Did you mean 'AdamW'"):
        child.get("AdamWW")


def test_locations_import_lazily(monkeypatch) -> None:
    r = Registry("lazy", locations=["paramwise_lazy_fill"])
    mod = types.ModuleType("paramwise_lazy_fill")
    calls = []

    def fill():
        calls.append(1)
        r.register_module(name="filled", module=make_fn)

    # a fake import: the first lookup imports the location, which registers
    monkeypatch.setitem(sys.modules, "paramwise_lazy_fill", mod)
    monkeypatch.setattr("importlib.import_module", lambda name: (fill(), mod)[1])
    assert calls == []
    assert r.get("filled") is make_fn
    assert "filled" in r
    assert calls == [1]  # imported once only


def test_build_basic_and_defaults(reg: Registry) -> None:
    obj = build_from_cfg({"type": "Adam", "lr": 0.1}, reg, {"weight_decay": 0.5, "lr": 9.0})
    assert (obj.lr, obj.weight_decay) == (0.1, 0.5)
    obj = reg.build({"type": AdamW}, lr=0.2)
    assert isinstance(obj, AdamW) and obj.lr == 0.2
    assert build_from_cfg({"type": make_fn, "x": 5}, reg) == 7


def test_build_unexpected_keyword(reg: Registry) -> None:
    with pytest.raises(BuildArgumentError) as info:
        reg.build({"type": "AdamW", "weight_decy": 0.1})
    msg = str(info.value)
    assert "AdamW (from the optimizer registry) got an unexpected argument 'weight_decy'" in msg
    assert "Did you mean 'weight_decay'?" in msg
    assert info.value.key == "weight_decy" and info.value.type_name == "AdamW"
    assert isinstance(info.value, TypeError)


def test_build_missing_required() -> None:
    r = Registry("thing")
    r.register_module(module=Needs)
    with pytest.raises(BuildArgumentError, match="Needs .* missing the required argument 'required'"):
        r.build({"type": "Needs"})
    assert r.build({"type": "Needs"}, required=3).required == 3


def test_build_kwargs_target_takes_anything() -> None:
    r = Registry("thing")
    r.register_module(module=Flexible)
    assert r.build({"type": "Flexible", "anything": 1}).kwargs == {"anything": 1}


def test_build_needs_type_and_mapping(reg: Registry) -> None:
    with pytest.raises(BuildArgumentError, match="needs a 'type' key .* got keys \\['lr'\\]"):
        reg.build({"lr": 1})
    with pytest.raises(TypeError, match="must be a mapping with a 'type' key, got list"):
        build_from_cfg([("type", "Adam")], reg)  # type: ignore[arg-type]
    with pytest.raises(BuildArgumentError, match="'type' .* must be a name or a class/function, got 3"):
        reg.build({"type": 3})
    with pytest.raises(TypeError, match="needs a Registry"):
        build_from_cfg({"type": "Adam"}, {})  # type: ignore[arg-type]


def test_error_inside_target_is_chained() -> None:
    r = Registry("thing")
    r.register_module(module=Raises)
    with pytest.raises(BuildTargetError) as info:
        r.build({"type": "Raises", "value": 7})
    err = info.value
    assert isinstance(err, ValueError)  # existing `except ValueError` still catches it
    assert "building 'Raises' from the thing registry failed: ValueError: bad value 7" in str(err)
    assert isinstance(err.__cause__, ValueError) and str(err.__cause__) == "bad value 7"
    assert err.registry == "thing" and err.type_name == "Raises"


def test_dotted_type_not_imported_by_default(reg: Registry) -> None:
    for path in ("os.system", "torch.optim:SGD"):
        with pytest.raises(NotRegisteredError, match="allow_import=True"):
            reg.build({"type": path})


def test_dotted_type_imported_when_allowed() -> None:
    r = Registry("opt", allow_import=True)
    assert r.get("collections:OrderedDict").__name__ == "OrderedDict"
    assert r.get("collections.OrderedDict").__name__ == "OrderedDict"
    with pytest.raises(NotRegisteredError, match="could not import 'collections:Nope'"):
        r.get("collections:Nope")


plain = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3),
    max_leaves=10,
)


class Mutator:
    """Mutates what it is given, to prove build_from_cfg hands it copies."""

    def __init__(self, **kwargs):
        for v in kwargs.values():
            if isinstance(v, list):
                v.append("mutated")
            elif isinstance(v, dict):
                v["mutated"] = True


@given(
    cfg=st.dictionaries(st.sampled_from(["a", "b", "c"]), plain, max_size=3),
    defaults=st.dictionaries(st.sampled_from(["b", "c", "d"]), plain, max_size=3),
)
def test_build_never_mutates_inputs(cfg, defaults) -> None:
    r = Registry("thing")
    r.register_module(module=Mutator)
    cfg = {"type": "Mutator", **cfg}
    before_cfg, before_defaults = copy.deepcopy(cfg), copy.deepcopy(defaults)
    r.build(cfg, **defaults)
    assert cfg == before_cfg
    assert defaults == before_defaults
