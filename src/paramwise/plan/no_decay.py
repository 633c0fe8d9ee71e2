"""No weight decay where the model says so: ``no_weight_decay()``, its keywords, ``_no_weight_decay`` tags.

Models declare the parameters that must not be decayed in three ways, each read by the training
code of its own family rather than by a shared library:

- ``no_weight_decay()``, a method returning parameter names relative to the module that has it
  (timm's ViT/DeiT/BEiT/Swin: ``{'pos_embed', 'cls_token'}``; timm matches them whole, or as
  ``fnmatch`` patterns);
- ``no_weight_decay_keywords()``, substrings of those names (Microsoft's Swin:
  ``{'relative_position_bias_table'}``);
- ``param._no_weight_decay = True`` on the tensor itself (mamba's ``A_log`` and ``D``,
  flash-linear-attention).

``paramwise_cfg['no_weight_decay'] = 'auto'`` honours all three (or a list names the sources to
use); each tagged parameter's weight decay becomes 0, and the plan shows which declaration decided
it. ``find_no_decay_tags`` is the same reading as data, which ``audit`` uses on any config.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from paramwise import checks
from paramwise.errors import Problem
from paramwise.optimizers import optimizer_default
from paramwise.plan.rules import Factor
from paramwise.plan.spec import PARAM_RULE_OPTIONS, OptimizerSpec
from paramwise.suggestions import did_you_mean
from paramwise.walk import clean_name, iter_module_sites

__all__ = [
    "NO_DECAY_SOURCES",
    "NoDecayTag",
    "NoDecayTags",
    "NoWeightDecayRule",
    "find_no_decay_tags",
]

METHOD, KEYWORDS, ATTRIBUTE = "no_weight_decay", "no_weight_decay_keywords", "_no_weight_decay"
#: The declarations ``no_weight_decay='auto'`` reads, in the order they decide a parameter's reason.
NO_DECAY_SOURCES: tuple[str, ...] = (ATTRIBUTE, METHOD, KEYWORDS)
_PATTERN_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class NoDecayTag:
    """One declaration that a parameter is not decayed: which source, from which module, what it named."""

    source: str  # one of NO_DECAY_SOURCES
    module: str = ""  # the declaring module's name ('' for the model itself)
    entry: str = ""  # the name, pattern or keyword as the module wrote it

    @property
    def rule(self) -> str:
        """The reason the plan shows: ``no_weight_decay() of backbone``, ``_no_weight_decay tag``."""
        if self.source == ATTRIBUTE:
            return "_no_weight_decay tag"
        return f"{self.source}() of {self.module or 'the model'}"

    @property
    def note(self) -> str:
        if self.source == METHOD:
            return f"names {self.entry!r}"
        return f"keyword {self.entry!r}" if self.source == KEYWORDS else ""


@dataclass(frozen=True)
class NoDecayTags:
    """What a model declares: tagged parameters by name, and declarations that tag nothing.

    ``unmatched`` pairs the full name of each declaration that matches no parameter (``backbone.pos_embd``)
    with the sentence that says so; ``by_id`` maps ``id(param)`` to its tag, for the rule's hot loop.
    """

    tagged: Mapping[str, NoDecayTag]
    unmatched: tuple[tuple[str, str], ...] = ()
    by_id: Mapping[int, NoDecayTag] = field(default_factory=dict, repr=False)


def _declared(module: nn.Module, method: str) -> tuple[list[str], str | None]:
    """The names ``module.<method>()`` returns, and why they could not be read (None when they could).

    The method is looked up on the class, so a child module or parameter of that name is not mistaken
    for it.
    """
    fn = getattr(type(module), method, None)
    if not callable(fn):
        return [], None
    try:
        found = getattr(module, method)()
    except Exception as e:  # the model's own code: say so, but let the plan go on
        return [], f"calling {method}() raised {type(e).__name__}: {e}"
    if isinstance(found, str):
        found = [found]
    if not isinstance(found, Iterable) or not all(isinstance(n, str) for n in found):
        return [], f"{method}() returned {found!r}; expected a set of strings"
    return sorted(set(found)), None


def _matches(relative: str, entry: str) -> bool:
    return fnmatch.fnmatchcase(relative, entry) if _PATTERN_CHARS & set(entry) else relative == entry


def find_no_decay_tags(model: nn.Module, sources: Sequence[str] = NO_DECAY_SOURCES) -> NoDecayTags:
    """Read every no-decay declaration of ``model`` (and its submodules) from ``sources``.

    Names are the plan's (wrappers removed). A declaration by a submodule covers only that submodule's
    parameters, named relative to it; the first declaration met (outer modules first) is the reason
    given. Frozen parameters count as matches, so freezing a tagged parameter is not a mismatch.
    """
    params: dict[str, torch.Tensor] = {}
    site_list = list(iter_module_sites(model))
    for prefix, module, _ in site_list:
        for leaf, param in module._parameters.items():
            if param is not None:
                params.setdefault(f"{prefix}.{leaf}" if prefix else leaf, param)
    tagged: dict[str, NoDecayTag] = {}
    unmatched: list[tuple[str, str]] = []
    if ATTRIBUTE in sources:
        for name, tensor in params.items():
            if getattr(tensor, ATTRIBUTE, False) is True:
                tagged[name] = NoDecayTag(ATTRIBUTE)
    module_names = {prefix for prefix, _, _ in site_list}
    declaring = [(prefix, module) for prefix, module, _ in site_list
                 if any(s in sources and callable(getattr(type(module), s, None)) for s in (METHOD, KEYWORDS))]
    for prefix, module in declaring:
        start = f"{prefix}." if prefix else ""
        own = {name[len(start):]: name for name in params if name.startswith(start)}
        for source in (METHOD, KEYWORDS):
            if source not in sources:
                continue
            entries, error = _declared(module, source)
            where = f"{source}() of {prefix or 'the model'}"
            if error is not None:
                unmatched.append((f"{start}{source}()", f"{where}: {error}"))
            for entry in entries:
                cleaned = clean_name(entry)
                hits = [full for rel, full in own.items() if (
                    cleaned in rel if source == KEYWORDS else _matches(rel, cleaned))]
                for full in hits:
                    tagged.setdefault(full, NoDecayTag(source, prefix, entry))
                if not hits:
                    unmatched.append((start + cleaned, _unmatched_message(where, source, entry, start + cleaned,
                                                                          own, module_names)))
    order = {name: i for i, name in enumerate(params)}
    tagged = dict(sorted(tagged.items(), key=lambda kv: order[kv[0]]))
    by_id = {id(params[name]): tag for name, tag in tagged.items()}
    return NoDecayTags(tagged, tuple(unmatched), by_id)


def _unmatched_message(where: str, source: str, entry: str, full: str, own: Mapping[str, str],
                       module_names: Iterable[str]) -> str:
    what = "keyword" if source == KEYWORDS else "name"
    if source == METHOD and full in module_names:
        return (f"{where} names {entry!r}, a module, not a parameter: names are matched whole, as timm does, "
                f"so its parameters stay decayed (name them, or use a pattern such as '{entry}.*')")
    return (f"{where} gives the {what} {entry!r}, which matches no parameter of it; its weight decay "
            f"is unchanged.{did_you_mean(entry, own)}")


@dataclass(frozen=True, repr=False)
class NoWeightDecayRule:
    """``paramwise_cfg['no_weight_decay']``: weight decay 0 for every parameter the model tags (param stage).

    ``op`` is ``'mult'`` (x 0, beside the other multipliers) when the config has a base weight decay,
    ``'set'`` (= 0) when it has none but the optimizer decays by default (AdamW's 0.01), and ``None``
    when there is no weight decay to remove.
    """

    sources: tuple[str, ...] = NO_DECAY_SOURCES
    op: str | None = "mult"
    path: tuple[str, ...] = field(default=("optimizer", "paramwise_cfg", "no_weight_decay"), compare=False)
    stage: ClassVar[str] = "param"

    def __repr__(self) -> str:
        value = "'auto'" if self.sources == NO_DECAY_SOURCES else repr(list(self.sources))
        return f"no_weight_decay={value}"

    def bind(self, model: nn.Module) -> Callable[[str, torch.Tensor, nn.Module], tuple[Factor, ...]]:
        """The factors of each parameter: one weight-decay factor of 0 when the model tags it."""
        op = self.op
        if op is None:
            return _nothing
        by_id = find_no_decay_tags(model, self.sources).by_id
        factors = {key: (Factor("weight_decay", op, 0.0, tag.rule, tag.note),) for key, tag in by_id.items()}

        def tagged(name: str, param: torch.Tensor, module: nn.Module) -> tuple[Factor, ...]:
            return factors.get(id(param), ())

        return tagged

    def problems(self, model: nn.Module) -> tuple[Problem, ...]:
        """Declarations of ``model`` that tag no parameter (a misspelt name, a module name): warnings."""
        return tuple(Problem(self.path, message) for _, message in find_no_decay_tags(model, self.sources).unmatched)


def _nothing(name: str, param: torch.Tensor, module: nn.Module) -> tuple[Factor, ...]:
    return ()


def _decay_op(spec: OptimizerSpec | None) -> str | None:
    """How a tag removes weight decay under ``spec``: see NoWeightDecayRule."""
    if spec is None or spec.base_wd is not None:
        return "mult"
    default = optimizer_default(spec.cls, "weight_decay", 0)
    return "set" if checks.is_finite_real(default) and default else None


@PARAM_RULE_OPTIONS.register_module(name="no_weight_decay")
def no_weight_decay_option(
    value: Any, paramwise_cfg: Mapping[str, Any], spec: OptimizerSpec | None, path: tuple[str, ...],
    problems: list[Problem],
) -> NoWeightDecayRule | None:
    """``no_weight_decay='auto'`` (every source), a list of sources, or False (off)."""
    if value is False:
        return None
    if value == "auto" or value is True:
        return NoWeightDecayRule(NO_DECAY_SOURCES, _decay_op(spec), path)
    expected = (f"must be 'auto' (the model's {METHOD}(), {KEYWORDS}() and {ATTRIBUTE} tags), a list of "
                f"those sources, or False")
    if isinstance(value, str):
        problems.append(Problem(path, f"{expected}, got {value!r}.{did_you_mean(value, ['auto', *NO_DECAY_SOURCES])}"))
        return None
    if not isinstance(value, (list, tuple)) or not value or not all(isinstance(v, str) for v in value):
        problems.append(Problem(path, f"{expected}, got {value!r}", kind="type"))
        return None
    unknown = [v for v in value if v not in NO_DECAY_SOURCES]
    for v in unknown:
        bare = v.rstrip("()")
        near = f" Did you mean {bare!r}?" if bare in NO_DECAY_SOURCES else did_you_mean(bare, NO_DECAY_SOURCES)
        by_name = f" To exclude parameters by name, use custom_keys, e.g. custom_keys={{{v!r}: dict(decay_mult=0.0)}}"
        problems.append(Problem((*path, v), (
            f"is not a source of no-decay declarations ({', '.join(map(repr, NO_DECAY_SOURCES))}).{near or by_name}")))
    if unknown:
        return None
    return NoWeightDecayRule(tuple(s for s in NO_DECAY_SOURCES if s in value), _decay_op(spec), path)
