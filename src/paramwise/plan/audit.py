"""What a reviewer would question in a plan: decayed norms, biases, embeddings and tags; many groups.

``paramwise check`` asks whether a config is sound (every entry decides something); the audit asks
whether its outcome is what recipes usually want. Each finding is data (a kind, the parameters, a
sentence with the likely fix); the CLI renders them. Warnings are outcomes worth a second look
(``paramwise audit --strict`` fails on them); notes give context (groups, frozen, undecided).

Advice is given in the config's own dialect: a config that uses only mmengine's ``paramwise_cfg``
keys gets fixes mmengine can run; paramwise-only options (``compose=True``) are suggested only to a
config that already uses paramwise-only keys.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from torch import nn

from paramwise.layers import NormMatcher
from paramwise.plan.no_decay import find_no_decay_tags
from paramwise.plan.plan import Plan
from paramwise.plan.rules import DEFAULT_RULE, ParamEntry
from paramwise.suggestions import format_value, plural
from paramwise.walk import model_sites, unwrap_model

__all__ = ["FINDING_KINDS", "LEVELS", "MANY_GROUPS", "MMENGINE_KEYS", "POSITION_NAMES", "Finding", "audit_plan"]

#: More parameter groups than this is a warning: each group is a separate set of kernel launches.
MANY_GROUPS = 32

#: Name components of positional embeddings and learned tokens (timm, Swin, SAM, BLIP-2, HF).
POSITION_NAMES = frozenset({
    "pos_embed", "pos_embedding", "pos_embeddings", "pos_emb", "position_embedding", "position_embeddings",
    "absolute_pos_embed", "relative_position_bias_table", "rel_pos_h", "rel_pos_w", "rel_pos",
    "cls_token", "dist_token", "reg_token", "mask_token", "register_tokens", "query_tokens",
})

#: Every kind of finding, in the order they are listed.
FINDING_KINDS = ("dropped-mult", "tagged", "position", "embedding", "norm", "bias", "tag-unmatched", "groups",
                 "undecided", "frozen")

#: The levels of a finding, as the table and the JSON both name them.
LEVELS = ("warning", "note")

#: ``paramwise_cfg`` keys that mmengine and OpenMMLab's constructors read: a config with no other key
#: is in mmengine's dialect, and the audit's advice stays in it.
MMENGINE_KEYS = frozenset({
    "custom_keys", "bias_lr_mult", "bias_decay_mult", "norm_decay_mult", "dwconv_decay_mult", "flat_decay_mult",
    "dcn_offset_lr_mult", "bypass_duplicate", "force_default_settings",  # mmsegmentation's constructor
    "num_layers", "decay_rate", "decay_type", "layer_decay_rate", "model_type",  # layer-decay constructors
})


@dataclass(frozen=True)
class Finding:
    """One outcome worth a look: its kind, the parameters (or declarations) concerned, and why.

    ``level`` is ``'warning'`` (a reviewer would question it; ``--strict`` fails) or ``'note'``
    (context), the words the table shows too (``LEVELS``).
    """

    kind: str
    names: tuple[str, ...]
    message: str
    level: str = "warning"

    def __str__(self) -> str:
        return f"{self.level} [{self.kind}]: {self.message}"


def _is_position(name: str) -> bool:
    return any(part in POSITION_NAMES or part.endswith(("_token", "_tokens", "_pos_embed"))
               for part in name.split("."))


def _is_norm(module: nn.Module, matcher: NormMatcher) -> bool:
    """A registered norm class or one named like a norm (``LlamaRMSNorm``, ``LayerNorm2d``): the audit
    would rather ask about a norm the config's ``norm_types`` do not list than miss it."""
    if matcher(module):
        return True
    return any(cls.__name__.rstrip("0123456789d").endswith("Norm") for cls in type(module).__mro__)


def _default_weight_decay(plan: Plan) -> Any:
    """The optimizer's own weight decay, for parameters whose value neither config nor rules set."""
    from paramwise.optimizers import OPTIMIZERS, optimizer_default

    cls = plan.spec.cls if plan.spec is not None else None
    if cls is None:  # a plan put together by hand: the optimizer by its name
        try:
            cls = OPTIMIZERS.get(plan.optimizer)
        except Exception:  # a name only the config's lazy import knows: no default to read
            return 0.0
    return optimizer_default(cls, "weight_decay", 0.0)


def _decided(entry: ParamEntry) -> bool:
    """Whether any rule (not only the base values) made this parameter's values."""
    if any(f.op != "base" for factors in entry.factors.values() for f in factors):
        return True
    return any(rule != DEFAULT_RULE for rule in entry.rules.values())


def _values(decays: Iterable[Any]) -> str:
    shown = sorted(set(decays))
    text = ", ".join(format_value(v) for v in shown[:3])
    return text + (", ..." if len(shown) > 3 else "")


_WHY = {
    "tagged": "the model declares them not to be decayed ({rules})",
    "position": "positional embeddings and learned tokens are usually not decayed",
    "embedding": "nn.Embedding weights are often not decayed",
    "norm": "norm layers are usually not decayed",
    "bias": "biases are usually not decayed",
}
_MULTIPLIER = {"norm": "norm_decay_mult", "bias": "bias_decay_mult"}
_WHAT = {  # kind -> (one, many)
    "tagged": ("tagged parameter", "tagged parameters"),
    "position": ("positional embedding or token", "positional embeddings and tokens"),
    "embedding": ("embedding weight", "embedding weights"),
    "norm": ("norm-layer parameter", "norm-layer parameters"),
    "bias": ("bias", "biases"),
}
_CUSTOM_KEY = re.compile(r"custom_keys\[[^\]]*\]")


def _match_name(name: str) -> str:
    """The text custom keys are matched against: mmengine tests a root parameter as ``'.name'``."""
    return name if "." in name else f".{name}"


def _key_of(entry: ParamEntry, key: str = "weight_decay") -> str | None:
    """The custom key that decided ``entry``'s ``key`` (mmengine: the longest matching key alone)."""
    found = _CUSTOM_KEY.search(entry.rules.get(key, "")) or next(
        (m for m in map(_CUSTOM_KEY.search, entry.rules.values()) if m), None)
    return found.group(0)[len("custom_keys["):-1].strip("'\"") if found else None


_MULTS = {"lr_mult": "lr", "decay_mult": "weight_decay"}  # a custom key's multiplier -> the value it scales


def _key_values(plan: Plan, key: str, declared: Mapping[str, Any]) -> dict[str, Any]:
    """What custom key ``key`` sets: as the config declares it, else its multipliers as the plan shows them."""
    given = declared.get(key)
    if isinstance(given, Mapping):
        return dict(given)
    rule = f"custom_keys[{key!r}]"
    for entry in plan.entries:
        if _key_of(entry) == key or rule in entry.rules.values():
            return {mult: f.value for mult, value in _MULTS.items() for f in entry.factors.get(value, ())
                    if f.op == "mult" and f.rule == rule}
    return {}


def _dict_text(values: Mapping[str, Any]) -> str:
    """``dict(lr_mult=0.1, decay_mult=0.0)``: Python a config can take as it is (floats keep their point)."""
    return "dict(" + ", ".join(f"{k}={v!r}" if isinstance(v, float) else f"{k}={format_value(v)}"
                               for k, v in values.items()) + ")"


def _example(keys: Mapping[str, Mapping[str, Any]]) -> str:
    """``custom_keys={...}`` with the first three keys, and how many more."""
    shown = ", ".join(f"{k!r}: {_dict_text(v)}" for k, v in list(keys.items())[:3])
    more = f", ... ({len(keys)} keys)" if len(keys) > 3 else ""
    return f"custom_keys={{{shown}{more}}}"


def _winning_keys(targets: Sequence[str], names: Sequence[str], key: str) -> list[str]:
    """Custom keys that match ``targets`` and nothing else, each longer than ``key`` so that it wins
    where ``key`` decides today: for each target, its shortest ending after a dot that qualifies."""
    chosen: list[str] = []
    wanted = set(targets)
    for target in targets:
        if any(k in _match_name(target) for k in chosen):
            continue
        parts = target.split(".")
        for start in range(len(parts) - 1, -1, -1):
            candidate = ".".join(parts[start:])
            if len(candidate) > len(key) and all(n in wanted for n in names if candidate in _match_name(n)):
                chosen.append(candidate)
                break
    return chosen


def _keyed_fix(kind: str, keyed: Sequence[ParamEntry], plan: Plan, declared: Mapping[str, Any]) -> str:
    """mmengine's way to stop decaying parameters a custom key decides: decay_mult=0.0 in a key that wins."""
    names = [e.name for e in plan.entries]
    wanted = {e.name for e in keyed}
    keys: dict[str, dict[str, Any]] = {}
    for key in dict.fromkeys(k for e in keyed if (k := _key_of(e)) is not None):
        values = {k: v for k, v in _key_values(plan, key, declared).items() if k != "decay_mult"}
        targets = [e.name for e in keyed if _key_of(e) == key]
        decided = [e.name for e in plan.entries if _key_of(e) == key]
        if set(decided) <= wanted:  # the key decides only these: it can carry decay_mult itself
            keys[key] = {**values, "decay_mult": 0.0}
        else:
            keys.update((k, {**values, "decay_mult": 0.0}) for k in _winning_keys(targets, names, key))
    return (f"mmengine applies only the longest matching custom key, so give them decay_mult=0.0 in a key that "
            f"wins, with the values they have now: {_example(keys)}")


def _fix(kind: str, entries: Sequence[ParamEntry], plan: Plan, declared: Mapping[str, Any], dialect: str) -> str:
    """What to change in the config, for decayed parameters of ``kind``, in the config's dialect."""
    if kind == "tagged":
        return "set no_weight_decay='auto' in paramwise_cfg"
    if kind in ("position", "embedding"):
        parts = [e.name.split(".") for e in entries]
        # the name that says what it is: the position component, or the embedding module's name
        keys = sorted({next((p for p in reversed(ps) if _is_position(p)), ps[-1]) if kind == "position"
                       else ".".join(ps[-2:-1]) or ps[-1] for ps in parts})
        example = {}
        for key in keys:  # a key that decides them today: the new one must keep its values (mmengine)
            now = next((k for e in entries if key in e.name and (k := _key_of(e)) is not None), None)
            values = {k: v for k, v in _key_values(plan, now, declared).items() if k != "decay_mult"} if now else {}
            example[key] = {**values, "decay_mult": 0.0}
        return f"if that is not meant, give them a custom key with decay_mult=0.0, e.g. {_example(example)}"
    keyed = [e for e in entries if _CUSTOM_KEY.search(e.rules.get("weight_decay", ""))]
    fixes = [] if len(keyed) == len(entries) else [f"set {_MULTIPLIER[kind]}=0.0"]
    if keyed:
        keys = sorted({k for e in keyed for k in _CUSTOM_KEY.findall(e.rules.get("weight_decay", ""))})
        if len(keyed) < len(entries):
            decided = f"{len(keyed)} of them"
        else:
            decided = "it" if len(keyed) == 1 else "them"
        how = ("set compose=True to apply both" if dialect == "paramwise"
               else _keyed_fix(kind, keyed, plan, declared))
        fixes.append(f"{', '.join(keys)} decided {decided}, which switches the built-in multipliers off for "
                     f"its parameters (mmengine): {how}")
    return "; ".join(fixes)


def _dropped_mults(plan: Plan, declared: Mapping[str, Any]) -> list[Finding]:
    """Custom keys that drop the multiplier of a shorter key that also matches their parameters.

    mmengine applies only the longest matching custom key: with ``'backbone': dict(lr_mult=0.1)`` and
    ``'absolute_pos_embed': dict(decay_mult=0.)``, ``backbone.absolute_pos_embed`` trains at lr_mult 1,
    ten times the rest of the backbone. A multiplier the longer key sets itself is taken as meant.
    """
    keys = list(declared) or list(dict.fromkeys(k for e in plan.entries if (k := _key_of(e)) is not None))
    values = {key: _key_values(plan, key, declared) for key in keys}
    found: dict[tuple[str, str], dict[str, list[str]]] = {}  # (enclosing key, mult) -> winning key -> names
    for entry in plan.entries:
        winner = _key_of(entry)
        if winner is None or not entry.trainable:
            continue
        others = sorted((k for k in keys if k != winner and k in _match_name(entry.name)), key=len, reverse=True)
        for mult in _MULTS:
            if mult in values[winner] and winner in declared:
                continue  # the longer key says what it wants
            mine = values[winner].get(mult, 1.0)
            outer = next((k for k in others if values[k].get(mult, 1.0) != mine), None)
            if outer is not None and mult in values[outer]:
                found.setdefault((outer, mult), {}).setdefault(winner, []).append(entry.name)
    findings = []
    for (outer, mult), winners in found.items():
        names = tuple(n for group in winners.values() for n in group)
        value = values[outer][mult]
        fix = {w: {**values[w], mult: value} for w in winners}
        inner = ", ".join(f"custom_keys[{w!r}]" for w in winners)
        ratio = 1.0 / value if value else float("inf")
        effect = (f"{format_value(ratio)}x the {_MULTS[mult].replace('_', ' ')} that custom_keys[{outer!r}] gives "
                  "the rest" if value else f"where custom_keys[{outer!r}] gives the rest none")
        findings.append(Finding("dropped-mult", names, (
            f"{inner} {'drops' if len(winners) == 1 else 'drop'} the {mult}={format_value(value)} of "
            f"custom_keys[{outer!r}] for {plural(len(names), 'parameter')}: mmengine applies only the longest "
            f"matching custom key, so {'it trains' if len(names) == 1 else 'they train'} at {mult} 1, {effect}; "
            f"if that is not meant, repeat it in the longer key: {_example(fix)}")))
    return findings


def audit_plan(plan: Plan, model: nn.Module, *, norm_types: Sequence[type | str] = (),
               many_groups: int = MANY_GROUPS, paramwise_cfg: Mapping[str, Any] | None = None) -> list[Finding]:
    """The findings for ``plan`` made for ``model``: warnings first, in ``FINDING_KINDS`` order.

    ``norm_types`` are the config's extra norm classes (``paramwise_cfg['norm_types']``); classes
    named like norms count as norms anyway. ``paramwise_cfg`` is the config's, when known: its keys
    choose the dialect of the advice (paramwise-only options only where it already uses one) and its
    custom keys are read as declared; without it the advice is mmengine's, which paramwise runs too.
    The owner of each parameter comes from the plan's walk
    of the model (``plan.sites``) when the plan was made for ``model``; otherwise the model is walked.
    """
    walk = plan.sites if plan.sites is not None and plan.sites.root is unwrap_model(model) else model_sites(model)
    sites: dict[str, tuple[nn.Module | None, str]] = {}
    for name, _, module, _, leaf, _ in walk.params:
        sites.setdefault(name, (module, leaf))
    cfg = paramwise_cfg if isinstance(paramwise_cfg, Mapping) else {}
    dialect = "paramwise" if any(k not in MMENGINE_KEYS for k in cfg) else "mmengine"
    given = cfg.get("custom_keys")
    declared: Mapping[str, Any] = given if isinstance(given, Mapping) else {}
    tags = find_no_decay_tags(model)
    matcher = NormMatcher(norm_types)
    default_wd = _default_weight_decay(plan)
    decayed: dict[str, list[ParamEntry]] = {kind: [] for kind in _WHY}
    decay_of: dict[str, Any] = {}
    for entry in plan.entries:
        if not entry.trainable:
            continue
        wd = plan.value_of(entry, "weight_decay")
        wd = default_wd if wd is None else wd
        if isinstance(wd, bool) or not isinstance(wd, (int, float)) or wd <= 0:
            continue
        owner, leaf = sites.get(entry.name, (None, entry.name.rpartition(".")[2]))
        if entry.name in tags.tagged:
            kind = "tagged"
        elif _is_position(entry.name):
            kind = "position"
        elif isinstance(owner, (nn.Embedding, nn.EmbeddingBag)) and leaf == "weight":
            kind = "embedding"
        elif owner is not None and _is_norm(owner, matcher):
            kind = "norm"
        elif leaf == "bias":
            kind = "bias"
        else:
            continue
        decayed[kind].append(entry)
        decay_of[entry.name] = wd

    findings = _dropped_mults(plan, declared)
    for kind, entries in decayed.items():
        if not entries:
            continue
        names = tuple(e.name for e in entries)
        rules = ", ".join(sorted({tags.tagged[n].rule for n in names})) if kind == "tagged" else ""
        one, many = _WHAT[kind]
        message = (f"{plural(len(names), one, many)} {'gets' if len(names) == 1 else 'get'} weight decay "
                   f"{_values(decay_of[n] for n in names)}: {_WHY[kind].format(rules=rules)}; "
                   f"{_fix(kind, entries, plan, declared, dialect)}")
        findings.append(Finding(kind, names, message))
    for name, message in tags.unmatched:
        findings.append(Finding("tag-unmatched", (name,), message))
    groups = len(plan.groups)
    if groups > many_groups:
        findings.append(Finding("groups", (), (
            f"{plural(groups, 'parameter group')}, more than {many_groups}: each group is stepped on its own, "
            "and the state is hard to read; look for rules that give nearly equal values (group_by='param' "
            "gives one group per parameter)")))
    else:
        findings.append(Finding("groups", (), f"{plural(groups, 'parameter group')}", level="note"))
    if any(_decided(e) for e in plan.entries):
        # with routes, each parameter keeps its own route's values: one note per route
        for route, kind in plan.route_names().items():
            names = tuple(e.name for e in plan.entries if e.trainable and not _decided(e) and e.route == route)
            if not names:
                continue
            base = ", ".join(f"{k}={format_value(v)}" for k, v in plan.route_base(route).items()
                             if k in ("lr", "weight_decay"))
            whose = f"{kind}'s" if plan.routes else "the optimizer's"
            findings.append(Finding("undecided", names, (
                f"{plural(len(names), 'parameter')} no rule decided: "
                f"{'it keeps' if len(names) == 1 else 'they keep'} {whose} values"
                f"{f' ({base})' if base else ''}"), level="note"))
    if plan.frozen:
        findings.append(Finding("frozen", tuple(plan.frozen), (
            f"{plural(len(plan.frozen), 'frozen parameter')} (requires_grad=False) left out of the optimizer"),
            level="note"))
    return sorted(findings, key=lambda f: (f.level != "warning", FINDING_KINDS.index(f.kind)))
