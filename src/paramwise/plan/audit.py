"""What a reviewer would question in a plan: decayed norms, biases, embeddings and tags; many groups.

``paramwise check`` asks whether a config is sound (every entry decides something); the audit asks
whether its outcome is what recipes usually want. Each finding is data (a kind, the parameters, a
sentence with the likely fix); the CLI renders them. Warnings are outcomes worth a second look
(``paramwise audit --strict`` fails on them); notes give context (groups, frozen, undecided).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from torch import nn

from paramwise.layers import NormMatcher
from paramwise.plan.no_decay import find_no_decay_tags
from paramwise.plan.plan import Plan
from paramwise.plan.rules import DEFAULT_RULE, ParamEntry
from paramwise.suggestions import format_value, plural
from paramwise.walk import model_sites, unwrap_model

__all__ = ["FINDING_KINDS", "MANY_GROUPS", "POSITION_NAMES", "Finding", "audit_plan"]

#: More parameter groups than this is a warning: each group is a separate set of kernel launches.
MANY_GROUPS = 32

#: Name components of positional embeddings and learned tokens (timm, Swin, SAM, BLIP-2, HF).
POSITION_NAMES = frozenset({
    "pos_embed", "pos_embedding", "pos_embeddings", "pos_emb", "position_embedding", "position_embeddings",
    "absolute_pos_embed", "relative_position_bias_table", "rel_pos_h", "rel_pos_w", "rel_pos",
    "cls_token", "dist_token", "reg_token", "mask_token", "register_tokens", "query_tokens",
})

#: Every kind of finding, in the order they are listed.
FINDING_KINDS = ("tagged", "position", "embedding", "norm", "bias", "tag-unmatched", "groups", "undecided",
                 "frozen")


@dataclass(frozen=True)
class Finding:
    """One outcome worth a look: its kind, the parameters (or declarations) concerned, and why.

    ``level`` is ``'warning'`` (a reviewer would question it; ``--strict`` fails) or ``'info'``.
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


def _fix(kind: str, entries: Sequence[ParamEntry]) -> str:
    """What to change in the config, for decayed parameters of ``kind``."""
    if kind == "tagged":
        return "set no_weight_decay='auto' in paramwise_cfg"
    if kind in ("position", "embedding"):
        parts = [e.name.split(".") for e in entries]
        # the name that says what it is: the position component, or the embedding module's name
        keys = sorted({next((p for p in reversed(ps) if _is_position(p)), ps[-1]) if kind == "position"
                       else ".".join(ps[-2:-1]) or ps[-1] for ps in parts})
        example = ", ".join(f"{k!r}: dict(decay_mult=0.0)" for k in keys[:3])
        return f"if that is not meant, give them a custom key with decay_mult=0.0, e.g. custom_keys={{{example}}}"
    keyed = [e for e in entries if _CUSTOM_KEY.search(e.rules.get("weight_decay", ""))]
    fixes = [] if len(keyed) == len(entries) else [f"set {_MULTIPLIER[kind]}=0.0"]
    if keyed:
        keys = sorted({k for e in keyed for k in _CUSTOM_KEY.findall(e.rules.get("weight_decay", ""))})
        if len(keyed) < len(entries):
            decided = f"{len(keyed)} of them"
        else:
            decided = "it" if len(keyed) == 1 else "them"
        fixes.append(f"{', '.join(keys)} decided {decided}, which switches the built-in multipliers off for "
                     "its parameters (mmengine): set compose=True to apply both")
    return "; ".join(fixes)


def audit_plan(plan: Plan, model: nn.Module, *, norm_types: Sequence[type | str] = (),
               many_groups: int = MANY_GROUPS) -> list[Finding]:
    """The findings for ``plan`` made for ``model``: warnings first, in ``FINDING_KINDS`` order.

    ``norm_types`` are the config's extra norm classes (``paramwise_cfg['norm_types']``); classes
    named like norms count as norms anyway. The owner of each parameter comes from the plan's walk
    of the model (``plan.sites``) when the plan was made for ``model``; otherwise the model is walked.
    """
    walk = plan.sites if plan.sites is not None and plan.sites.root is unwrap_model(model) else model_sites(model)
    sites: dict[str, tuple[nn.Module | None, str]] = {}
    for name, _, module, _, leaf, _ in walk.params:
        sites.setdefault(name, (module, leaf))
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

    findings: list[Finding] = []
    for kind, entries in decayed.items():
        if not entries:
            continue
        names = tuple(e.name for e in entries)
        rules = ", ".join(sorted({tags.tagged[n].rule for n in names})) if kind == "tagged" else ""
        one, many = _WHAT[kind]
        message = (f"{plural(len(names), one, many)} {'gets' if len(names) == 1 else 'get'} weight decay "
                   f"{_values(decay_of[n] for n in names)}: {_WHY[kind].format(rules=rules)}; {_fix(kind, entries)}")
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
        findings.append(Finding("groups", (), f"{plural(groups, 'parameter group')}", level="info"))
    if any(_decided(e) for e in plan.entries):
        undecided = tuple(e.name for e in plan.entries if e.trainable and not _decided(e))
        if undecided:
            base = ", ".join(f"{k}={format_value(v)}" for k, v in plan.base.items() if k in ("lr", "weight_decay"))
            findings.append(Finding("undecided", undecided, (
                f"{plural(len(undecided), 'parameter')} no rule decided: "
                f"{'it keeps' if len(undecided) == 1 else 'they keep'} the optimizer's values"
                f"{f' ({base})' if base else ''}"), level="info"))
    if plan.frozen:
        findings.append(Finding("frozen", tuple(plan.frozen), (
            f"{plural(len(plan.frozen), 'frozen parameter')} (requires_grad=False) left out of the optimizer"),
            level="info"))
    return sorted(findings, key=lambda f: (f.level != "warning", FINDING_KINDS.index(f.kind)))
