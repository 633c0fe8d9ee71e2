"""Layer-wise lr decay: the ``layer_decay`` option of ``paramwise_cfg``, a rule of the ``param`` stage.

Fine-tuning a pretrained network trains the layers near the input less than the layers near the
output: a parameter in layer ``i`` of ``L`` gets ``lr x rate ** (L - 1 - i)``. This module finds each
parameter's layer (from the model's own ``get_layer_depth`` (mmpretrain) or ``group_matcher`` (timm),
from built-in families of layer names, or from regexes in the config) and turns it into one
``x scale`` factor on the lr, multiplied after every other rule, so it composes with custom keys,
norm/bias rules and any constructor. The decayed lr is written into the parameter's ``lr`` (not a
separate ``lr_scale`` key that only timm's schedulers read), so every torch scheduler keeps the ratios.

The option, in full (``docs/layer_decay.md`` has the reference)::

    layer_decay=dict(rate=0.65, min_scale=0.0, source='auto', layer_rules=None,
                     formula='timm', unplaced='error')

``layer_decay=0.65`` is short for ``dict(rate=0.65)``.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from paramwise import checks
from paramwise.errors import ConfigError, ParamwiseWarning, Problem, format_path
from paramwise.plan.rules import Factor
from paramwise.plan.spec import PARAM_RULE_OPTIONS, OptimizerSpec
from paramwise.suggestions import did_you_mean, plural, safe_repr, safe_str, short_list
from paramwise.walk import named_parameters, unwrap_model

__all__ = [
    "FORMULAS",
    "LAYER_DECAY_KEYS",
    "MATCH_PREVIOUS",
    "SOURCES",
    "UNPLACED",
    "LayerDecayRule",
    "LayerPlacement",
    "decay_note",
    "family_layer_keys",
    "matcher_layer_keys",
    "rank_layer_keys",
    "resolve_layer_decay",
]

SOURCES = ("auto", "get_layer_depth", "group_matcher", "families", "rules")
FORMULAS = ("timm", "beit")
UNPLACED = ("error", "last")
LAYER_DECAY_KEYS = ("rate", "min_scale", "source", "layer_rules", "formula", "unplaced")

#: the last element of a timm group key that puts a parameter in the group before it (timm's ``MATCH_PREV_GROUP``)
MATCH_PREVIOUS = 99999

# what users of the peers write, and what it is called here
_PEER_SPELLINGS = {
    "decay_rate": "rate",
    "layer_decay_rate": "rate",
    "layer_decay": "rate",
    "num_layers": "nothing: the number of layers comes from the model",
    "decay_type": "source",
}

LayerKey = tuple[float, ...]


# ---------------------------------------------------------------------------------------- scales
def decay_note(rate: float, exponent: int, layer: int, top: int, floor: float | None = None) -> str:
    """The text a layer-decay factor shows: ``'0.65^3, layer 9 of 12'`` (``floor``: min_scale took over)."""
    power = f"{rate:g}^{exponent}"
    if floor is not None:
        power = f"min_scale {floor:g} (> {power})"
    return f"{power}, layer {layer} of {top}"


# ---------------------------------------------------------------------------- timm's group keys
def matcher_layer_keys(names: Iterable[str], matcher: Any) -> dict[str, LayerKey]:
    """Each name's group key under a timm ``group_matcher()`` result, as timm's ``group_with_matcher`` forms it.

    A dict matcher maps group names to a regex or to a list of ``(regex, suffix)`` pairs; its keys
    are ``(ordinal of the group, *captured numbers, *suffix)`` for the first regex that matches at
    the start of the name (ordinals count ``None`` entries too), and ``(inf,)`` for names that none
    matches (timm's heads and necks: the last layer). A callable matcher gives the key itself.
    """
    if callable(matcher) and not isinstance(matcher, Mapping):
        keys: dict[str, LayerKey] = {}
        for name in names:
            found = matcher(name)
            keys[name] = tuple(found) if isinstance(found, Iterable) else (found,)
        return keys
    if not isinstance(matcher, Mapping):
        raise TypeError(f"group_matcher() must return a dict or a callable, got {type(matcher).__name__}")
    compiled: list[tuple[re.Pattern[str], tuple[float, ...], tuple[float, ...]]] = []
    for ordinal, spec in enumerate(matcher.values()):
        if spec is None:
            continue
        if isinstance(spec, (list, tuple)):
            for pattern, suffix in spec:
                compiled.append((re.compile(pattern), (float(ordinal),), tuple(map(float, suffix or ()))))
        else:
            compiled.append((re.compile(spec), (float(ordinal),), ()))
    keys = {}
    for name in names:
        keys[name] = (math.inf,)
        for regex, head, tail in compiled:
            match = regex.match(name)
            if match:
                keys[name] = (*head, *map(float, match.groups()), *tail)
                break
    return keys


def rank_layer_keys(keys: Iterable[LayerKey]) -> dict[LayerKey, int]:
    """Number distinct keys 0, 1, ... in sorted order; a key ending in ``MATCH_PREVIOUS`` joins the one before.

    This is how timm turns group keys into layer ids, so ``L`` counts the layers the model has.
    """
    ranks: dict[LayerKey, int] = {}
    layer = -1
    for key in sorted(set(keys)):
        if layer < 0 or key[-1] != MATCH_PREVIOUS:
            layer += 1
        ranks[key] = layer
    return ranks


# ------------------------------------------------------------------------------ built-in families
#: name components that mark an embedding (layer 0) outside the blocks
_EMBEDDINGS = frozenset({
    "cls_token", "pos_embed", "patch_embed", "dist_token", "mask_token", "reg_token", "absolute_pos_embed",
    "pos_embedding", "class_embedding", "positional_embedding", "embeddings", "embed_tokens", "embed_positions",
    "wte", "wpe", "tok_embeddings", "word_embeddings", "position_embeddings", "stem", "conv_stem",
})

# (family, regex with the root, stage and block): two-level families first, so Swin's
# `layers.N.blocks.M` is not read as a transformer's `layers.N`; roots are the shortest prefix
_FAMILIES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("stages of blocks (Swin, timm ConvNeXt)",
     re.compile(r"(?P<root>(?:.+?\.)??)(?P<box>layers|stages)\.(?P<stage>\d+)\.blocks\.(?P<block>\d+)\.")),
    ("stages of blocks (mm ConvNeXt)",
     re.compile(r"(?P<root>(?:.+?\.)??)(?P<box>stages)\.(?P<stage>\d+)\.(?P<block>\d+)\.")),
    ("transformer blocks (ViT/DeiT/BEiT/EVA, Hugging Face)",
     re.compile(r"(?P<root>(?:.+?\.)??)(?P<box>blocks|layers|layer|h|block|resblocks)\.(?P<block>\d+)\.")),
)

_EMBED, _BLOCK, _REST = 0.0, 1.0, 2.0


def _is_embedding(name: str) -> bool:
    return any(part in _EMBEDDINGS for part in name.split("."))


def family_layer_keys(names: Sequence[str]) -> tuple[str, dict[str, LayerKey]] | str:
    """Layer keys from the names alone: embeddings first, then each block in order, then the rest.

    Returns ``(family, keys)``, or the reason no family fits. Blocks are ``blocks.N`` / ``layers.N`` /
    ``layer.N`` / ``h.N`` / ``block.N`` / ``resblocks.N`` (one level) or ``layers|stages.N.blocks.M`` and
    ``stages.N.M`` (two levels: stage, then block). Embeddings (``patch_embed``, ``cls_token``,
    ``pos_embed``, ``embeddings``, ``embed_tokens``, ``wte``, ``stem``, mm ConvNeXt's
    ``downsample_layers.0``, ...) are layer 0; a stage's other parameters (a downsample) join the
    stage's first block when they come before its blocks in the model, its last block when after
    (timm and mmpretrain place them so), and mm ConvNeXt's ``downsample_layers.N`` joins stage N's
    first block. The rest (final norms, heads, necks, decoders) is the last layer.
    """
    for family, pattern in _FAMILIES:
        found = {name: m for name in names if (m := pattern.match(name))}
        if not found:
            continue
        roots = sorted({m["root"] for m in found.values()})
        if len(roots) > 1:
            shown = ", ".join(repr(r.rstrip(".") or "(the model)") for r in roots)
            return (f"found {family} under more than one module ({shown}), so the order of layers is not "
                    "clear; write layer_rules to say which blocks count and in what order")
        root = roots[0]
        two_level = "stage" in pattern.groupindex
        return family, _family_keys(names, found, root, two_level)
    return ("no built-in family fits: the model has no blocks.N, layers.N, layer.N, h.N, block.N, "
            "resblocks.N, stages.N.M or layers.N.blocks.M parameters")


def _family_keys(
    names: Sequence[str], found: Mapping[str, re.Match[str]], root: str, two_level: bool
) -> dict[str, LayerKey]:
    keys: dict[str, LayerKey] = {}
    if not two_level:
        for name in names:
            m = found.get(name)
            keys[name] = (_BLOCK, float(m["block"])) if m else (_EMBED,) if _is_embedding(name) else (_REST,)
        return keys
    box = next(iter(found.values()))["box"]
    blocks: dict[int, list[int]] = {}  # stage -> its blocks, in model order
    first_at: dict[int, int] = {}  # stage -> position of its first block parameter
    for position, name in enumerate(names):
        m = found.get(name)
        if m:
            stage = int(m["stage"])
            blocks.setdefault(stage, []).append(int(m["block"]))
            first_at.setdefault(stage, position)
    in_stage = re.compile(rf"{re.escape(root)}{box}\.(\d+)\.")
    downsample = re.compile(rf"{re.escape(root)}downsample_layers\.(\d+)\.")
    for position, name in enumerate(names):
        m = found.get(name)
        if m:
            keys[name] = (_BLOCK, float(m["stage"]), float(m["block"]))
        elif (d := downsample.match(name)) and int(d[1]) > 0:
            stage = int(d[1])
            keys[name] = (_BLOCK, float(stage), float(min(blocks.get(stage, [0]))))
        elif (s := in_stage.match(name)) and int(s[1]) in blocks:
            stage = int(s[1])
            before = position < first_at[stage]
            keys[name] = (_BLOCK, float(stage), float(min(blocks[stage]) if before else max(blocks[stage])))
        elif _is_embedding(name) or downsample.match(name):
            keys[name] = (_EMBED,)
        else:
            keys[name] = (_REST,)
    return keys


# ---------------------------------------------------------------------------------------- the rule
@dataclass(frozen=True)
class LayerPlacement:
    """Where one parameter sits: its layer, the top layer, and whether no rule placed it."""

    layer: int
    top: int  # L - 1: the layer that keeps the full lr
    unplaced: bool = False


@dataclass(frozen=True, repr=False)
class LayerDecayRule:
    """``paramwise_cfg['layer_decay']``: ``lr x max(min_scale, rate ** (L - 1 - layer))`` for each parameter."""

    rate: float
    min_scale: float = 0.0
    source: str = "auto"
    layer_rules: tuple[tuple[str, re.Pattern[str]], ...] = ()  # (label, regex), in the config's order
    formula: str = "timm"
    unplaced: str = "error"
    path: tuple[str, ...] = ("optimizer", "paramwise_cfg", "layer_decay")
    stage: str = "param"

    def __repr__(self) -> str:
        return "layer_decay"

    # -- placing parameters ---------------------------------------------------------------
    def _error(self, key: str | None, message: str, kind: str = "value") -> ConfigError:
        path = self.path if key is None else (*self.path, key)
        return ConfigError([Problem(path, message, kind=kind)], title="layer decay cannot place the model's parameters")

    def place(self, model: nn.Module) -> dict[str, LayerPlacement]:
        """Every parameter's layer (frozen ones too: they count among the layers, as in timm)."""
        root = unwrap_model(model)
        names = [n for n, _ in named_parameters(root)]
        source = self.source
        if source == "auto":
            source = self._auto_source(root, names)
        if source == "get_layer_depth":
            return self._from_depths(root, names)
        if source == "group_matcher":
            keys = self._from_matcher(root, names)
        elif source == "families":
            result = family_layer_keys(names)
            if isinstance(result, str):
                raise self._error("source", f"{result}. Set source='rules' and write layer_rules, e.g. "
                                            r"layer_rules=[r'^embed', r'blocks\.(\d+)\.', r'.'] (embeddings, "
                                            "each block, then the rest)")
            keys = result[1]
        else:
            return self._from_rules(names)
        ranks = rank_layer_keys(keys.values())
        top = max(ranks.values())
        return {name: LayerPlacement(ranks[key], top) for name, key in keys.items()}

    def _auto_source(self, root: nn.Module, names: Sequence[str]) -> str:
        if self.layer_rules:
            return "rules"
        if callable(getattr(root, "get_layer_depth", None)) and names:
            try:
                root.get_layer_depth(names[0])  # type: ignore[operator]
            except NotImplementedError:  # mmpretrain's classifier when its backbone has no depths
                pass
            else:
                return "get_layer_depth"
        if callable(getattr(root, "group_matcher", None)):
            return "group_matcher"
        return "families"

    def _from_depths(self, root: nn.Module, names: Sequence[str]) -> dict[str, LayerPlacement]:
        get_layer_depth = getattr(root, "get_layer_depth", None)
        if not callable(get_layer_depth):
            raise self._error("source", f"is 'get_layer_depth' but {type(root).__name__} has no get_layer_depth"
                                        "(name) method; use source='auto' or another source", kind="type")
        depths: dict[str, tuple[int, int]] = {}
        for name in names:
            try:
                found = get_layer_depth(name)
            except Exception as e:  # the model's own code: say where it failed and keep the cause
                raise self._error("source", f"{type(root).__name__}.get_layer_depth({safe_repr(name)}) raised "
                                            f"{type(e).__name__}: {e}") from e
            if (not isinstance(found, tuple) or len(found) != 2 or not all(isinstance(v, int) for v in found)
                    or not 0 <= found[0] < found[1]):
                raise self._error("source", f"{type(root).__name__}.get_layer_depth({safe_repr(name)}) returned "
                                            f"{safe_repr(found)}; "
                                            "expected (layer_id, num_layers) with 0 <= layer_id < num_layers")
            depths[name] = found
        if self.formula == "beit":  # the model's own count of layers, gaps and all
            return {name: LayerPlacement(layer, total - 1) for name, (layer, total) in depths.items()}
        ranks = rank_layer_keys((float(layer),) for layer, _ in depths.values())
        top = max(ranks.values())
        return {name: LayerPlacement(ranks[(float(layer),)], top) for name, (layer, _) in depths.items()}

    def _from_matcher(self, root: nn.Module, names: Sequence[str]) -> dict[str, LayerKey]:
        group_matcher = getattr(root, "group_matcher", None)
        if not callable(group_matcher):
            raise self._error("source", f"is 'group_matcher' but {type(root).__name__} has no group_matcher() "
                                        "method (timm's models have one); use source='auto' or another source",
                              kind="type")
        try:
            return matcher_layer_keys(names, group_matcher(coarse=False))
        except (TypeError, ValueError, re.error) as e:
            raise self._error("source", f"{type(root).__name__}.group_matcher(coarse=False) gave a matcher "
                                        f"paramwise cannot read: {e}") from e

    def _from_rules(self, names: Sequence[str]) -> dict[str, LayerPlacement]:
        if not self.layer_rules:
            raise self._error("layer_rules", "is needed for source='rules': a list of regexes, one per kind of "
                                             r"layer, in order, e.g. [r'^embed', r'blocks\.(\d+)\.', r'.']",
                              kind="missing")
        keys: dict[str, LayerKey] = {}
        lost: list[str] = []
        for name in names:
            for ordinal, (label, regex) in enumerate(self.layer_rules):
                match = regex.search(name)
                if match is None:
                    continue
                captured = [g for g in match.groups() if g is not None]
                bad = [g for g in captured if not g.isdigit()]
                if bad:
                    raise self._error(f"layer_rules[{label}]", f"captured {safe_repr(bad[0])} from "
                                                               f"{safe_repr(name)}; a group must "
                                                               r"capture a layer number, e.g. (\d+); make other "
                                                               "groups non-capturing: (?:...)")
                keys[name] = (float(ordinal), *(float(g) for g in captured))
                break
            else:
                lost.append(name)
        if not keys:
            raise self._error("layer_rules", f"match none of the model's {plural(len(names), 'parameter')} "
                                             f"({short_list(list(names))})")
        if lost and self.unplaced == "error":
            raise self._error("layer_rules", f"place no layer for {plural(len(lost), 'parameter')}: "
                                             f"{short_list(lost)}. Add a rule for them (a last rule r'.' takes "
                                             "the rest), or set unplaced='last' to give them the full lr")
        if lost:
            warnings.warn(f"{format_path(self.path)}: {plural(len(lost), 'parameter')} that no layer rule places "
                          f"{'goes' if len(lost) == 1 else 'go'} to the last layer (unplaced='last'): "
                          f"{short_list(lost)}", ParamwiseWarning, stacklevel=2)
        # like the names a timm matcher misses (heads): one layer of their own, above every placed one
        keys.update({name: (math.inf,) for name in lost})
        ranks = rank_layer_keys(keys.values())
        top = max(ranks.values())
        return {name: LayerPlacement(ranks[keys[name]], top, unplaced=name in lost) for name in names}

    # -- the factors ----------------------------------------------------------------------
    def scale(self, place: LayerPlacement) -> tuple[float, str]:
        """The lr multiplier of a layer and the note that explains it."""
        exponent = place.top - place.layer
        power = self.rate ** exponent
        floor = self.min_scale if self.min_scale > power else None
        note = decay_note(self.rate, exponent, place.layer, place.top, floor)
        if place.unplaced:
            note += ", placed by no rule: last (unplaced='last')"
        return (power if floor is None else floor), note

    def bind(self, model: nn.Module) -> Callable[[str, torch.Tensor, nn.Module], tuple[Factor, ...]]:
        placements = self.place(model)
        cache: dict[LayerPlacement, tuple[Factor, ...]] = {}
        rule = repr(self)

        def factors(name: str, param: torch.Tensor, module: nn.Module) -> tuple[Factor, ...]:
            place = placements.get(name)
            if place is None:  # a name the walk sees but named_parameters() does not (cannot happen for torch modules)
                return ()
            found = cache.get(place)
            if found is None:
                value, note = self.scale(place)
                found = cache[place] = (Factor("lr", "mult", value, rule, note),)
            return found

        return factors


# -------------------------------------------------------------------------------- the option
def _compile_rules(raw: Any, path: tuple[str, ...], problems: list[Problem]) -> tuple[tuple[str, re.Pattern[str]], ...]:
    where = (*path, "layer_rules")
    if isinstance(raw, str):
        raw = [raw]
    if isinstance(raw, Mapping):
        items = [(str(k), v) for k, v in raw.items()]
    elif isinstance(raw, (list, tuple)):
        items = [(str(i), v) for i, v in enumerate(raw)]
    else:
        problems.append(Problem(where, "must be a list of regexes (one per kind of layer, in order) or a dict of "
                                       f"name -> regex, got {type(raw).__name__}", kind="type"))
        return ()
    if not items:
        problems.append(Problem(where, "is empty: give at least one regex, or leave layer_rules out"))
    out = []
    for label, pattern in items:
        if not isinstance(pattern, str):
            problems.append(Problem((*where, label), f"must be a regex string, got {safe_repr(pattern)}", kind="type"))
            continue
        try:
            out.append((label, re.compile(pattern)))
        except re.error as e:
            problems.append(Problem((*where, label), f"is not a valid regex ({e}): {safe_repr(pattern)}"))
    return tuple(out)


def resolve_layer_decay(
    value: Any, spec: OptimizerSpec | None, path: tuple[str, ...], problems: list[Problem]
) -> LayerDecayRule | None:
    """Check a ``layer_decay`` value, appending a Problem (at its path, with the fix) for each mistake."""
    if checks.is_int(value) or isinstance(value, float):  # short for dict(rate=value): its problems are here
        found = checks.real(value, path, low=0, high=1, low_open=True, meaning="the lr decay per layer")
        if found:
            problems += found
            return None
        value = {"rate": value}
    if not isinstance(value, Mapping):
        problems.append(Problem(path, "must be a rate (e.g. 0.65) or a dict like dict(rate=0.65, "
                                      f"source='auto'), {checks.not_a_number(value)}", kind="type"))
        return None
    good = True
    for key in value:
        if key not in LAYER_DECAY_KEYS:
            hint = _PEER_SPELLINGS.get(safe_str(key))
            fix = f" It is called {hint!r} here." if hint and " " not in hint else f" It takes {hint}." if hint else (
                did_you_mean(safe_str(key), LAYER_DECAY_KEYS) or f" Keys: {', '.join(LAYER_DECAY_KEYS)}")
            problems.append(Problem((*path, safe_str(key)), f"is not a layer_decay key.{fix}"))
            good = False
    rate = value.get("rate")
    if rate is None:
        problems.append(Problem((*path, "rate"), "is missing: the decay per layer, e.g. rate=0.65", kind="missing"))
        good = False
    else:
        found = checks.real(rate, (*path, "rate"), low=0, high=1, low_open=True, meaning="the lr decay per layer")
        problems += found
        good = good and not found
    min_scale = value.get("min_scale", 0.0)
    found = checks.real(min_scale, (*path, "min_scale"), low=0, high=1, meaning="the smallest lr multiplier")
    problems += found
    good = good and not found
    choices = {"source": (SOURCES, "auto"), "formula": (FORMULAS, "timm"), "unplaced": (UNPLACED, "error")}
    picked: dict[str, str] = {}
    for key, (allowed, default) in choices.items():
        picked[key] = value.get(key, default)
        found = checks.one_of(picked[key], (*path, key), allowed)
        problems += found
        good = good and not found
    rules: tuple[tuple[str, re.Pattern[str]], ...] = ()
    if value.get("layer_rules") is not None:
        count = len(problems)
        rules = _compile_rules(value["layer_rules"], path, problems)
        good = good and len(problems) == count
        if picked["source"] not in ("auto", "rules"):
            problems.append(Problem((*path, "layer_rules"), f"are only read with source='rules' (or 'auto'), "
                                                           f"not source={safe_repr(picked['source'])}; drop one"))
            good = False
    elif picked["source"] == "rules":
        problems.append(Problem((*path, "layer_rules"), "is needed for source='rules': a list of regexes, e.g. "
                                                        r"[r'^embed', r'blocks\.(\d+)\.', r'.']", kind="missing"))
        good = False
    if spec is not None and spec.base_lr is None and "lr" not in spec.kwargs:
        problems.append(Problem(path, "needs a base lr to decay: set lr in the optimizer config"))
        good = False
    if not good or rate is None:
        return None
    return LayerDecayRule(float(rate), float(min_scale), picked["source"], rules, picked["formula"],
                          picked["unplaced"], path)


@PARAM_RULE_OPTIONS.register_module(name="layer_decay")
def layer_decay_option(
    value: Any, paramwise_cfg: Mapping[str, Any], spec: OptimizerSpec | None, path: tuple[str, ...],
    problems: list[Problem],
) -> LayerDecayRule | None:
    """``paramwise_cfg['layer_decay']``: layer-wise lr decay as a rule of the param stage."""
    return resolve_layer_decay(value, spec, path, problems)
