"""What in a config decides nothing, and why: idle custom keys, idle multipliers, unknown norm types.

mmengine applies a ``paramwise_cfg`` entry that matches nothing without a word; a user then trains
with the config they did not mean. Each idle entry here becomes a Problem that says why it is idle
(no such parameter, shadowed by a longer custom key, only frozen or shared parameters) and what to
do. ``strict`` turns the ones that match nothing at all into errors (see paramwise.build.constructors).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from operator import attrgetter

from torch import nn

from paramwise.errors import Problem
from paramwise.layers import NormMatcher, is_depthwise_conv
from paramwise.plan.rules import RuleOutcome
from paramwise.plan.spec import DECAY_MULTS, LR_MULTS, ParamwiseOptions
from paramwise.suggestions import LIST_AT_MOST, short_list, suggest
from paramwise.walk import Sites

__all__ = ["Idle", "idle_entries"]

_PW = ("optimizer", "paramwise_cfg")
_factors_of = attrgetter("factors")

# what each multiplier applies to, in words, for "the model has no ..." messages
_TARGETS = {
    "bias_lr_mult": "bias parameters outside norm layers and deformable convs",
    "dcn_offset_lr_mult": "deformable-conv offset layers (conv_offset inside DeformConv2d)",
    "norm_decay_mult": "parameters of norm layers",
    "bias_decay_mult": "bias parameters outside deformable convs",
    "dwconv_decay_mult": "depthwise Conv2d parameters (groups == in_channels)",
    "flat_decay_mult": "1-D parameters outside deformable convs",
}


@dataclass(frozen=True)
class Idle:
    """Entries of a paramwise_cfg that decide nothing: ``unmatched`` (nothing to match; errors under
    ``strict``) and ``shadowed`` (they match, but other rules or frozen/shared parameters win)."""

    unmatched: tuple[Problem, ...]
    shadowed: tuple[Problem, ...]


def _match_name(name: str) -> str:
    """The text custom keys are matched against: root parameters as '.name', as in mmengine."""
    return name if "." in name else f".{name}"


def _name_candidates(outcome: RuleOutcome) -> set[str]:
    """Module prefixes and parameter names: what a misspelt custom key was probably meant to be."""
    names = {e.name for e in outcome.entries} | set(outcome.frozen)
    out: set[str] = set()
    for name in names:
        parts = name.split(".")
        out.update(".".join(parts[: i + 1]) for i in range(len(parts)))
        out.update(parts)
    return out


def _idle_keys(outcome: RuleOutcome) -> Idle:
    unmatched: list[Problem] = []
    shadowed: list[Problem] = []
    idle = [k for k, n in outcome.key_matches.items() if n == 0]
    candidates = _name_candidates(outcome) if idle else set()
    for key in idle:
        path = (*_PW, "custom_keys", key)
        decided_by_others = [e for e in outcome.entries if key in _match_name(e.name)]
        frozen = [n for n in outcome.frozen if key in _match_name(n)]
        shared = [(skipped, kept) for skipped, kept in outcome.duplicates if key in _match_name(skipped)]
        if decided_by_others:
            winners = sorted({r for e in decided_by_others for r in e.rules.values() if r.startswith("custom_keys")})
            shadowed.append(Problem(path, f"decides no parameter: the {len(decided_by_others)} it matches (e.g. "
                                          f"{decided_by_others[0].name!r}) are decided first by {', '.join(winners)}; "
                                          "keys are tried longest first, then alphabetically"))
        elif shared:
            pairs = ", ".join(f"{s!r} (= {k!r})" for s, k in shared[:LIST_AT_MOST])
            shadowed.append(Problem(path, f"matches only shared parameters, which are optimized once under their "
                                          f"first name ({pairs}, bypass_duplicate); match the first name instead"))
        elif frozen:
            shadowed.append(Problem(path, f"matches only frozen parameters ({short_list(frozen)}), which are "
                                          "left out of the optimizer"))
        else:
            close = suggest(key, candidates)
            near = f"; closest names: {', '.join(map(repr, close))}" if close else ""
            unmatched.append(Problem(path, f"matches no parameter of the model{near}"))
    return Idle(tuple(unmatched), tuple(shadowed))


def _qualifies(key: str, module: nn.Module, leaf: str, ndim: int, norm: bool, in_dcn: bool, prefix: str) -> bool:
    """Whether ``key``'s built-in rule would apply to this parameter if no custom key decided it."""
    if key == "bias_lr_mult":
        return leaf == "bias" and not (norm or in_dcn)
    if key == "dcn_offset_lr_mult":
        return in_dcn and "conv_offset" in prefix and isinstance(module, nn.Conv2d)
    if key == "norm_decay_mult":
        return norm
    if key == "bias_decay_mult":
        return leaf == "bias" and not in_dcn
    if key == "dwconv_decay_mult":
        return is_depthwise_conv(module)
    return ndim == 1 and not in_dcn  # flat_decay_mult


def _idle_multipliers(outcome: RuleOutcome, options: ParamwiseOptions, sites: Sites) -> Idle:
    """Multipliers set in the config that decided no parameter, each with the reason."""
    set_keys = [k for k in (*LR_MULTS, *DECAY_MULTS) if getattr(options, k) is not None]
    if not set_keys:
        return Idle((), ())
    # entries with equal outcomes share one factors mapping: look at each distinct outcome once
    # (found by id in C-level passes: this runs on every plan, over every entry)
    factors_of = list(map(_factors_of, outcome.entries))
    outcomes = dict(zip(map(id, factors_of), factors_of))
    used = {f.rule for factors in outcomes.values() for chain in factors.values() for f in chain}
    idle = [k for k in set_keys if k not in used]
    if not idle:
        return Idle((), ())
    is_norm = NormMatcher(options.norm_types)
    decided = {e.name: e for e in outcome.entries}
    frozen = set(outcome.frozen)
    qualifying: dict[str, list[str]] = {k: [] for k in idle}
    for name, param, module, prefix, leaf, in_dcn in sites.params:
        norm = is_norm(module)
        for key in idle:
            if _qualifies(key, module, leaf, param.ndim, norm, in_dcn, prefix):
                qualifying[key].append(name)
    unmatched: list[Problem] = []
    shadowed: list[Problem] = []
    for key in idle:
        path = (*_PW, key)
        names = qualifying[key]
        keyed = [n for n in names if n in decided]
        value = "lr" if key in LR_MULTS else "weight_decay"
        winners = sorted({decided[n].rules.get(value, "") for n in keyed} - {"", "default"})
        if keyed and winners and all(w.startswith("custom_keys") for w in winners):
            shadowed.append(Problem(path, f"decides no parameter: every parameter it applies to ({short_list(keyed)}) "
                                          f"is decided by {', '.join(winners)}, and a custom key switches the built-in "
                                          "rules off for its parameters (mmengine's semantics)"))
        elif keyed and winners:
            shadowed.append(Problem(path, f"decides no parameter: the {value} of every parameter it applies to "
                                          f"({short_list(keyed)}) is set by {', '.join(winners)} first (precedence: "
                                          "custom keys; then norm, bias, depthwise conv, flat for weight decay)"))
        elif names and all(n in frozen for n in names):
            shadowed.append(Problem(path, f"decides no parameter: the {len(names)} it applies to are frozen"))
        elif names:
            shadowed.append(Problem(path, f"decides no parameter: the parameters it applies to ({short_list(names)}) "
                                          "are shared and optimized under another name"))
        else:
            hint = _norm_hint(sites.module_classes()) if key == "norm_decay_mult" else ""
            unmatched.append(Problem(path, f"decides no parameter: the model has no {_TARGETS[key]}{hint}"))
    return Idle(tuple(unmatched), tuple(shadowed))


def _norm_hint(classes: Iterable[type]) -> str:
    """Module classes that look like norms by name but are not recognised as ones."""
    looks = sorted({c.__name__ for c in classes if "norm" in c.__name__.lower()})
    if not looks:
        return ""
    return (f"; these classes look like norms but are not known as ones: {', '.join(looks)}. "
            f"Add them to paramwise_cfg['norm_types'] (e.g. norm_types=[{looks[0]!r}])")


def idle_entries(outcome: RuleOutcome, options: ParamwiseOptions, sites: Sites) -> Idle:
    """Every entry of ``options`` that decides no parameter of the model walked in ``sites``, with the reason."""
    keys = _idle_keys(outcome)
    mults = _idle_multipliers(outcome, options, sites)
    norms = tuple(
        Problem((*_PW, "norm_types"), f"{name!r} matches no module of the model (by class or class name)")
        for name in outcome.unmatched_norm_types
    )
    return Idle(keys.unmatched + mults.unmatched + norms, keys.shadowed + mults.shadowed)
