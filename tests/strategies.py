"""Hypothesis building blocks shared by the differential and property tests."""

from __future__ import annotations

import copy
import functools
import math
from typing import Any

import torch
from hypothesis import strategies as st

from model_zoo import ZOO, build, module_name_substrings
from paramwise import ParamwiseError

MULTS = (0.0, 0.1, 0.5, 1.0, 2.0)
LR_MULT_KEYS = ("bias_lr_mult", "dcn_offset_lr_mult")
DECAY_MULT_KEYS = ("bias_decay_mult", "norm_decay_mult", "dwconv_decay_mult", "flat_decay_mult")
# options a custom key may set, per optimizer family, with values to draw from
EXTRA_OPTIONS = {
    "AdamW": dict(eps=(1e-8, 1e-6), betas=((0.9, 0.999), (0.8, 0.95)), amsgrad=(False, True)),
    "SGD": dict(momentum=(0.0, 0.5, 0.9), dampening=(0.0, 0.1), nesterov=(False,)),
}
# model name -> real substrings of its parameter names (candidate custom keys)
SUBSTRINGS = {name: module_name_substrings(build(name)) for name in ZOO}


@st.composite
def custom_key_entry(draw: st.DrawFn, family: str, has_wd: bool) -> dict[str, Any]:
    """One custom_keys entry: maybe lr_mult, maybe decay_mult (with a base weight decay), up to two options."""
    entry: dict[str, Any] = {}
    if draw(st.booleans()):
        entry["lr_mult"] = draw(st.sampled_from(MULTS))
    if has_wd and draw(st.booleans()):
        entry["decay_mult"] = draw(st.sampled_from(MULTS))
    options = EXTRA_OPTIONS[family]
    for option in draw(st.lists(st.sampled_from(sorted(options)), unique=True, max_size=2)):
        entry[option] = draw(st.sampled_from(options[option]))
    return entry


def same(a: Any, b: Any) -> bool:
    """Deep equality that copes with tensors, nan and objects without a plain ``==``."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.shape == b.shape and bool(
            torch.equal(a, b) or (a.is_floating_point() and torch.equal(a.isnan(), b.isnan()))
        )
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, functools.partial):  # no __eq__ of its own, and deepcopy makes a new one
        return a.func is b.func and same(a.args, b.args) and same(a.keywords, b.keywords)
    if isinstance(a, dict):
        return len(a) == len(b) and all(k in b and same(v, b[k]) for k, v in a.items())
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    try:
        return bool(a == b)
    except Exception:
        return a is b


def check_outcome(call: Any, inputs: Any, needles: tuple[str, ...] = (), must_fail: bool = False,
                  builtins: tuple[type, ...] = (ValueError, TypeError, KeyError)) -> Any:
    """Run ``call``: its result, or a paramwise error that is one of ``builtins`` too, has a message and names
    one of ``needles``; ``inputs`` must come out unchanged. The fuzz and hardening tests' one outcome check."""
    snapshot = copy.deepcopy(inputs)
    try:
        result = call()
    except ParamwiseError as e:
        assert isinstance(e, builtins), f"{type(e).__mro__} is not one of {builtins}: {e}"
        text = str(e)
        assert text.strip(), f"{type(e).__name__} has an empty message"
        assert not needles or any(n in text for n in needles), f"none of {needles} in: {text}"
        result = e
    else:
        assert not must_fail, f"accepted silently: {inputs!r}"
    assert same(inputs, snapshot), "the input was changed"
    return result
