"""Registry and build_from_cfg: registration, lookup, building, and every error message."""

from __future__ import annotations

import copy
import functools
import sys
import types

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paramwise import (
    BuildArgumentError,
    BuildTargetError,
    DuplicateRegistrationError,
    MissingTypeError,
    NotRegisteredError,
    ParamwiseError,
    Registry,
    UsageTypeError,
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
    with pytest.raises(TypeError, match="only callables .* registered in the thing registry, got 42 of type int"):
        r.register_module(module=42)
    assert len(r) == 0


@pytest.mark.parametrize("name", [3, [1, 2], [], ("a", 1), {"a"}, b"a"])
def test_register_rejects_bad_names_with_its_own_message(name) -> None:
    r = Registry("thing")
    with pytest.raises(TypeError) as info:
        r.register_module(name=name, module=Adam)
    msg = str(info.value)
    assert msg.startswith("register_module(name=...) takes a string or a non-empty list of strings")
    assert f"got {name!r} of type {type(name).__name__}" in msg
    assert "not iterable" not in msg
    with pytest.raises(TypeError, match="register_module\\(name=...\\)"):  # the decorator form fails at once
        r.register_module(name=name)
    assert len(r) == 0


def test_register_accepts_a_tuple_of_names() -> None:
    r = Registry("thing")
    r.register_module(name=("Adam", "adam_alias"), module=Adam)
    assert r.get("Adam") is Adam and r.get("adam_alias") is Adam


@pytest.mark.parametrize("force", ["yes", 1, 0, None, "False"])
def test_force_must_be_a_bool(reg: Registry, force) -> None:
    with pytest.raises(TypeError, match=f"register_module\\(force=...\\) takes True or False, got {force!r}"):
        reg.register_module(module=AdamW, force=force)
    with pytest.raises(TypeError, match="takes True or False"):  # checked before the decorator is applied
        reg.register_module(force=force)
    # a truthy non-bool must not replace an entry
    class Adam:
        pass

    with pytest.raises(TypeError):
        reg.register_module(module=Adam, force=force)
    assert reg.get("Adam") is not Adam


def test_register_and_build_a_partial() -> None:
    r = Registry("thing")
    five = functools.partial(make_fn, 5)
    r.register_module(name="five", module=five)
    assert r.get("five") is five
    assert r.build({"type": "five"}) == 7
    assert r.build({"type": "five", "y": 10}) == 15
    # the signature check sees through the partial: x is bound, so it is no longer an argument
    with pytest.raises(BuildArgumentError, match="five .* unexpected argument 'x'. It accepts: y"):
        r.build({"type": "five", "x": 1})
    with pytest.raises(BuildArgumentError, match="unexpected argument 'yy'. Did you mean 'y'?"):
        r.build({"type": "five", "yy": 1})
    # a keyword bound in the partial stays overridable, as calling the partial allows
    keyword = functools.partial(make_fn, y=100)
    r.register_module(name="keyword", module=keyword)
    assert r.build({"type": "keyword"}) == 101
    assert r.build({"type": "keyword", "y": 0, "x": 2}) == 2
    # a partial of a class, with a required argument left open
    needs = functools.partial(Needs, optional=9)
    r.register_module(name="needs", module=needs)
    with pytest.raises(BuildArgumentError, match="needs .* missing the required argument 'required'"):
        r.build({"type": "needs"})
    built = r.build({"type": "needs", "required": 1})
    assert isinstance(built, Needs) and (built.required, built.optional) == (1, 9)


def test_partial_as_type_and_in_messages() -> None:
    r = Registry("thing")
    five = functools.partial(make_fn, 5)
    assert build_from_cfg({"type": five, "y": 1}, r) == 6
    with pytest.raises(BuildArgumentError, match="^partial\\(make_fn\\) \\(from the thing registry\\) got an"):
        build_from_cfg({"type": five, "z": 1}, r)
    r.register_module(name="five", module=five)
    with pytest.raises(DuplicateRegistrationError, match="registered .* as functools.partial\\(<function make_fn"):
        r.register_module(name="five", module=functools.partial(make_fn, 6))


def test_nameless_callables_need_a_name() -> None:
    r = Registry("thing")
    five = functools.partial(make_fn, 5)
    with pytest.raises(TypeError, match="has no __name__ to register it under in the thing registry; pass name="):
        r.register_module(module=five)
    with pytest.raises(TypeError, match="pass name="):
        r.register_module()(five)

    class Scale:
        def __call__(self, value: float = 1.0, factor: float = 2.0) -> float:
            return value * factor

    with pytest.raises(TypeError, match="pass name="):
        r.register_module(module=Scale())
    assert len(r) == 0
    r.register_module(name="scale", module=Scale())
    assert r.build({"type": "scale", "value": 3.0}) == 6.0
    with pytest.raises(BuildArgumentError, match="unexpected argument 'fator'. Did you mean 'factor'"):
        r.build({"type": "scale", "fator": 3.0})


def test_partial_registration_matches_mmengine() -> None:
    mm_registry = pytest.importorskip("mmengine.registry")
    ours, theirs = Registry("thing"), mm_registry.Registry("thing")
    five = functools.partial(make_fn, 5)
    for r in (ours, theirs):
        r.register_module(name="five", module=five)
    for cfg in ({"type": "five"}, {"type": "five", "y": 10}, {"type": five, "y": 3}):
        assert build_from_cfg(cfg, ours) == mm_registry.build_from_cfg(cfg, theirs)
    assert ours.get("five") is theirs.get("five") is five
    # without a name both refuse (mmengine with an AttributeError, paramwise with a TypeError that says why)
    with pytest.raises(AttributeError):
        theirs.register_module(module=five)
    with pytest.raises(TypeError, match="pass name="):
        ours.register_module(module=five)
    # a bad force or name is a TypeError in both
    for kwargs in ({"force": "yes"}, {"name": 3}):
        with pytest.raises(TypeError):
            theirs.register_module(module=make_fn, **kwargs)
        with pytest.raises(TypeError):
            ours.register_module(module=make_fn, **kwargs)


def test_get_with_default(reg: Registry) -> None:
    assert reg.get("Nope", None) is None
    assert reg.get("Nope", default=AdamW) is AdamW
    assert reg.get("Adam", None) is Adam  # a registered name ignores the default
    assert reg.get("os.system", None) is None  # an import that is not allowed is a miss too
    with pytest.raises(NotRegisteredError):
        reg.get("Nope")  # without a default, still an error
    with pytest.raises(TypeError, match="names are strings"):
        reg.get(3, None)  # type: ignore[arg-type]
    child = Registry("child", parent=reg)
    assert child.get("AdamW", None) is AdamW and child.get("Nope", 0) == 0
    allowing = Registry("opt", allow_import=True)
    assert allowing.get("collections:Nope", None) is None


def test_get_default_none_matches_mmengine() -> None:
    mm_registry = pytest.importorskip("mmengine.registry")
    ours, theirs = Registry("thing"), mm_registry.Registry("thing")
    for r in (ours, theirs):
        r.register_module(module=Adam)
    for name in ("Adam", "Nope", "adam"):
        assert ours.get(name, None) is theirs.get(name)


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
    with pytest.raises(BuildArgumentError, match="'type' .* must be a name or a callable .*, got 3 of type int"):
        reg.build({"type": 3})
    with pytest.raises(TypeError, match="needs a Registry"):
        build_from_cfg({"type": "Adam"}, {})  # type: ignore[arg-type]


def test_missing_type_is_a_key_error(reg: Registry) -> None:
    with pytest.raises(MissingTypeError) as info:
        reg.build({"lr": 1})
    err = info.value
    assert str(err) == "a config for the optimizer registry needs a 'type' key naming what to build; got keys ['lr']."
    assert (err.key, err.registry, err.type_name) == ("type", "optimizer", "?")
    assert isinstance(err, KeyError) and isinstance(err, BuildArgumentError) and isinstance(err, ParamwiseError)
    with pytest.raises(KeyError, match="got keys \\['lr'\\] \\(and default_args keys \\['weight_decay'\\]\\)"):
        build_from_cfg({"lr": 1}, reg, {"weight_decay": 0.1})
    assert build_from_cfg({"lr": 1}, reg, {"type": "Adam"}).lr == 1  # 'type' from default_args, as in mmengine


def test_missing_type_matches_mmengine_key_error(reg: Registry) -> None:
    mm_registry = pytest.importorskip("mmengine.registry")
    theirs = mm_registry.Registry("optimizer")
    theirs.register_module(module=Adam)
    for build, r in ((mm_registry.build_from_cfg, theirs), (build_from_cfg, reg)):
        with pytest.raises(KeyError):
            build({"lr": 1}, r)


@pytest.mark.parametrize("cfg", [[("type", "Adam")], "Adam", None, 3])
def test_config_that_is_not_a_mapping_is_a_type_error(reg: Registry, cfg) -> None:
    with pytest.raises(BuildArgumentError) as info:
        build_from_cfg(cfg, reg)  # type: ignore[arg-type]
    assert isinstance(info.value, TypeError)  # as mmengine raises
    assert f"must be a mapping with a 'type' key, got {type(cfg).__name__}: {cfg!r}" in str(info.value)
    mm_registry = pytest.importorskip("mmengine.registry")
    with pytest.raises(TypeError):
        mm_registry.build_from_cfg(cfg, mm_registry.Registry("optimizer"))


def test_default_args_that_are_not_a_mapping(reg: Registry) -> None:
    with pytest.raises(BuildArgumentError, match="default_args for the optimizer registry must be a mapping or None"):
        build_from_cfg({"type": "Adam"}, reg, [("lr", 1)])  # type: ignore[arg-type]


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


# ------------------------------------------------------------------------- hardening (issue 13)
class _BadRepr:
    def __repr__(self) -> str:
        raise RuntimeError("repr exploded")

    __str__ = __repr__

    def __call__(self, **kwargs):
        return kwargs


def test_import_allowlist_admits_only_its_prefixes() -> None:
    r = Registry("opt", allow_import=("torch.optim", "collections."))
    assert r.allow_import and r.import_prefixes == ("torch.optim", "collections")
    import torch

    assert r.get("torch.optim:SGD") is torch.optim.SGD
    assert r.get("torch.optim.sgd.SGD") is torch.optim.SGD
    assert r.get("collections:OrderedDict").__name__ == "OrderedDict"
    for outside in ("os:getcwd", "torch:nn", "torch.optimx:SGD", "collectionsx.abc:Mapping"):
        with pytest.raises(NotRegisteredError, match=r"not under the modules this registry may import from "
                                                     r"\('torch.optim', 'collections'\)"):
            r.get(outside)
    assert Registry("opt", allow_import="os").get("os:getcwd") is __import__("os").getcwd
    assert Registry("opt", allow_import=True).import_prefixes is None  # True: any module, as before
    with pytest.raises(NotRegisteredError, match="allow_import=True"):
        Registry("opt", allow_import=()).get("os:getcwd")


def test_import_allowlist_is_checked_before_importing(monkeypatch: pytest.MonkeyPatch) -> None:
    imported = []
    monkeypatch.setattr("importlib.import_module", lambda name: imported.append(name))
    with pytest.raises(NotRegisteredError):
        Registry("opt", allow_import=["mypkg"]).get("evil.module:thing")
    assert imported == []


@pytest.mark.parametrize("bad", [1, [None], ["", "x"], [b"torch"], object()])
def test_import_allowlist_must_be_prefixes(bad) -> None:
    with pytest.raises(TypeError, match="allow_import"):
        Registry("opt", allow_import=bad)


@pytest.mark.parametrize("path", ["", ":x", "a..b", "x.\0y", ".rel:thing", "os:getcwd.__nothing__"])
def test_bad_import_paths_are_not_registered_errors(path: str) -> None:
    r = Registry("opt", allow_import=True)
    with pytest.raises(NotRegisteredError):
        r.get(path)


@pytest.mark.parametrize(
    "name", [1, None, b"Adam", ("Adam",), _BadRepr(), 10**5000], ids=["int", "none", "bytes", "tuple", "bad", "big"]
)
def test_non_string_names_are_usage_type_errors(reg: Registry, name) -> None:
    with pytest.raises(UsageTypeError, match="optimizer registry names are strings"):
        reg.get(name)
    if not isinstance(name, tuple):  # a tuple of strings is a name and its aliases
        with pytest.raises(TypeError, match="register_module"):
            reg.register_module(name=name if name is not None else 3, module=make_fn)
    assert name not in reg and not reg.holds(name)


def test_messages_survive_values_whose_repr_raises(reg: Registry) -> None:
    with pytest.raises(UsageTypeError, match="its repr raised RuntimeError"):
        reg.register_module(force=_BadRepr())
    with pytest.raises(UsageTypeError, match="has no __name__"):
        reg.register_module(module=_BadRepr())
    with pytest.raises(BuildArgumentError, match="must be a name or a callable"):
        build_from_cfg({"type": 10**5000}, reg)
    with pytest.raises(MissingTypeError, match="its repr raised"):
        build_from_cfg({_BadRepr(): 1}, reg)
    reg.register_module(name="bad", module=_BadRepr())
    with pytest.raises(DuplicateRegistrationError, match="its repr raised"):
        reg.register_module(name="bad", module=_BadRepr())


def test_non_string_argument_names_are_build_argument_errors(reg: Registry) -> None:
    reg.register_module(module=Flexible)
    for key in (1, None, b"lr", _BadRepr()):
        with pytest.raises(BuildArgumentError, match="argument names are strings") as info:
            build_from_cfg({"type": "Flexible", key: 1}, reg)
        assert isinstance(info.value, TypeError)
        with pytest.raises(BuildArgumentError):
            build_from_cfg({"type": "Adam", key: 1}, reg)  # a fixed signature: no AttributeError in did-you-mean


def test_target_errors_whose_str_raises_are_wrapped(reg: Registry) -> None:
    class Odd(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no text")

    def raises_odd():
        raise Odd()

    reg.register_module(module=raises_odd)
    with pytest.raises(BuildTargetError, match="building 'raises_odd' .* failed: Odd: Odd\\(\\)"):
        build_from_cfg({"type": "raises_odd"}, reg)


class _Point(tuple):
    pass


def test_build_from_cfg_copies_every_plain_container_all_the_way_down(reg: Registry) -> None:
    import collections

    import torch

    Pair = collections.namedtuple("Pair", "a b")
    seen = {}

    def grab(**kwargs):
        seen.update(kwargs)
        return kwargs

    reg.register_module(module=grab)
    tensor, module = torch.zeros(2), torch.nn.Linear(1, 1)
    cfg = {
        "type": "grab",
        "nested": ([1, {"s": {1, 2}}], (bytearray(b"ab"), frozenset({1}))),
        "pair": Pair([1], 2),
        "point": _Point(([1],)),
        "plain": (1, "a", None),
        "objects": [tensor, module, module.weight],
    }
    snapshot = copy.deepcopy(cfg)
    got = build_from_cfg(cfg, reg)
    got["nested"][0].append(9)
    got["nested"][0][1]["s"].add(3)
    got["nested"][1][0].extend(b"!")
    got["pair"].a.append(9)
    got["point"][0].append(9)
    assert type(got["pair"]) is Pair and type(got["point"]) is _Point
    assert got["plain"] is cfg["plain"]  # nothing mutable inside: shared
    assert got["objects"][0] is tensor and got["objects"][1] is module and got["objects"][2] is module.weight
    assert got["nested"][1][1] is cfg["nested"][1][1]  # frozensets cannot change
    for key in ("nested", "pair", "point", "plain"):
        assert cfg[key] == snapshot[key]
