"""Hypothesis building blocks shared by the differential and property tests."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from model_zoo import ZOO, build, module_name_substrings

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
