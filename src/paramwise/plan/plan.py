"""The plan: every parameter's resolved hyperparameters with their rules, and the groups made of them.

Planning has one home, here: walk the model -> match the rules -> apply them -> group the results
(``make_plan``), with what decides nothing collected as Problems. A ``Plan`` is plain data computed
before any optimizer exists, so it can be printed, exported to records (pandas), rendered in a
notebook, or compared between two configs; it keeps the optimizer spec it was made from, so it
cannot be built with another config's optimizer. Rendering lives in render.py, imported only
when a plan is shown.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence, Set
from dataclasses import dataclass, field, replace
from operator import attrgetter
from typing import Any

from torch import nn

from paramwise.errors import ConfigError, InternalError, Problem
from paramwise.plan.diagnostics import idle_entries
from paramwise.plan.groups import GroupSpec, group_entries
from paramwise.plan.routes import MAIN_ROUTE, RouteSpec, route_rules
from paramwise.plan.rules import DEFAULT_RULE, ParamEntry, apply_rules
from paramwise.plan.spec import OptimizerSpec, ParamwiseOptions
from paramwise.suggestions import format_value, plural, short_list
from paramwise.walk import Sites, model_sites, named_parameters, unwrap_model

__all__ = ["Plan", "check_entries_cover", "format_value", "frozen_notes", "make_plan", "plan_from_entries"]


@dataclass(frozen=True)
class Plan:
    """What an optimizer config means for one model, parameter by parameter."""

    optimizer: str
    base: Mapping[str, Any]  # the optimizer's keyword arguments from the config
    entries: tuple[ParamEntry, ...]
    groups: tuple[GroupSpec, ...]
    warnings: tuple[Problem, ...] = ()  # probably not what the author meant: `check` fails on them
    notes: tuple[Problem, ...] = ()  # worth knowing but normal (frozen parameters when fine-tuning)
    frozen: tuple[str, ...] = ()  # names left out (requires_grad=False)
    duplicates: tuple[tuple[str, str], ...] = ()  # (skipped name, kept name)
    spec: OptimizerSpec | None = field(default=None, repr=False, compare=False)  # what it was made from
    sites: Sites | None = field(default=None, repr=False, compare=False)  # the walk of the model it was made for
    routes: tuple[RouteSpec, ...] = ()  # paramwise_cfg['routes'], checked; empty without routes

    def __iter__(self) -> Iterator[ParamEntry]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, name: str) -> ParamEntry:
        for entry in self.entries:
            if entry.name == name:
                return entry
        raise KeyError(f"no parameter named {name!r} in the plan")

    def group_of(self) -> list[int]:
        """The group index of each entry, in entry order."""
        index = [0] * len(self.entries)
        for group in self.groups:
            for i in group.members:
                index[i] = group.index
        return index

    def value_of(self, entry: ParamEntry, key: str) -> Any:
        """``entry``'s value of ``key``: its own, else its optimizer config's (None when neither has it)."""
        return entry.hyperparams.get(key, self.route_base(entry.route).get(key))

    def route_base(self, route: str) -> Mapping[str, Any]:
        """The keyword arguments of a route's optimizer (the main one's for ``"main"``)."""
        for spec in self.routes:
            if spec.name == route:
                return spec.spec.kwargs
        return self.base

    def route_names(self) -> dict[str, str]:
        """Route name -> its optimizer's type, main first, then the routes in config order."""
        return {MAIN_ROUTE: self.optimizer, **{r.name: r.spec.type_name for r in self.routes}}

    def option_keys(self) -> list[str]:
        """Every hyperparameter named in any entry: lr and weight_decay first, then the rest sorted.

        ``route`` is left out: it is a column of its own (see ``to_records``).
        """
        keys = {k for e in self.entries for k in e.hyperparams} - {"route"}
        head = [k for k in ("lr", "weight_decay") if k in keys]
        return head + sorted(keys - set(head))

    def to_records(self) -> list[dict[str, Any]]:
        """One dict per parameter: name, shape, numel, group, and per hyperparameter its value, rule and factors."""
        groups = self.group_of()
        keys = self.option_keys()
        records = []
        for entry, group in zip(self.entries, groups):
            record: dict[str, Any] = {
                "name": entry.name,
                "shape": list(entry.shape),
                "numel": entry.numel,
                "group": group,
                "trainable": entry.trainable,
            }
            if self.routes:
                record["route"] = entry.route
                record["optimizer"] = self.route_names()[entry.route]
                record["route_reason"] = entry.route_reason
            for key in keys:
                record[key] = self.value_of(entry, key)
                record[f"{key}_rule"] = entry.rules.get(key, DEFAULT_RULE)
                # the value as the product of its factors, e.g. "0.001 x 0.1 custom_keys['head']"
                record[f"{key}_factors"] = " ".join(str(f) for f in entry.factors.get(key, ()))
            records.append(record)
        return records

    def group_records(self) -> list[dict[str, Any]]:
        """One dict per group: index, number of parameters, total numel, hyperparameters."""
        return [
            {
                "group": g.index,
                "params": len(g.members),
                "numel": sum(self.entries[i].numel for i in g.members),
                "hyperparams": dict(g.hyperparams),
            }
            for g in self.groups
        ]

    # Rendering lives in render.py; these hooks import it only when a plan is shown.
    def __str__(self) -> str:
        from paramwise.render import plan_text

        return plan_text(self)

    def __rich__(self) -> Any:
        """Render with rich (``rich.print(plan)``); rich is imported only then."""
        from paramwise.render import plan_table

        return plan_table(self)

    def _repr_html_(self) -> str:
        from paramwise.render import plan_html

        return plan_html(self)


def frozen_notes(frozen: Sequence[str]) -> list[Problem]:
    """The note about frozen parameters left out (normal when fine-tuning, so a note, not a warning)."""
    if not frozen:
        return []
    return [Problem(("model",), f"has {plural(len(frozen), 'parameter')} with requires_grad=False, left out of "
                                f"the optimizer ({short_list(list(frozen))}); set paramwise_cfg['frozen']='include' "
                                "to keep frozen parameters for later unfreezing")]


def _all_parameters(root: nn.Module) -> list[Any]:
    """Every parameter slot of every module under ``root`` (a shared tensor may come twice), by its own walk.

    Independent of the rules' walk on purpose, and level by level in comprehensions: at 72k modules
    this is a third of the cost of ``root.parameters()``.
    """
    seen = {id(root)}
    level = [root]
    modules = [root]
    while level:
        level = [child for module in level for child in module._modules.values()
                 if child is not None and id(child) not in seen and not seen.add(id(child))]  # type: ignore[func-returns-value]
        modules += level
    return [p for module in modules for p in module._parameters.values() if p is not None]


_param_of = attrgetter("param")
_requires_grad = attrgetter("requires_grad")


#: Above this many planned tensors the coverage check skips its independent walk of the model (see below).
COVERAGE_WALK_LIMIT = 20_000


def check_entries_cover(model: nn.Module, entries: Sequence[ParamEntry]) -> None:
    """Raise ``InternalError`` unless each trainable parameter of ``model`` is in exactly one entry.

    Frozen parameters may be left out (``plan.frozen``) and a shared tensor is one parameter
    (``plan.duplicates`` names its other places), so what is checked is by identity: no tensor in
    two entries, none that is not the model's, and none trainable missing. Linear time, and cheap:
    set operations over ids, and ``requires_grad`` read only for what no entry holds. A failure is
    paramwise's bug, never the user's, and is raised rather than handed on as a silently smaller
    optimizer. Above ``COVERAGE_WALK_LIMIT`` entries only duplicates are checked (the walk would cost a
    fifth of the build); the property tests run the full check on generated models of every shape.
    """
    placed = set(map(id, map(_param_of, entries)))
    if len(entries) > COVERAGE_WALK_LIMIT:
        # large models: the independent walk would cost ~20% of the build (80 ms at 96k tensors, pushing it
        # past 2x torch's own construction); check what is cheap, that no tensor is planned twice
        if len(placed) != len(entries):
            _raise_coverage_error(model, entries, placed, {id(p) for p in _all_parameters(unwrap_model(model))})
        return
    params = _all_parameters(unwrap_model(model))
    if len(placed) == len(entries) == len(params) and placed.issuperset(map(id, params)):
        return  # the common case (nothing shared, nothing left out): entries and slots are one set
    owned = set(map(id, params))
    if len(placed) == len(entries) and placed <= owned:
        left_out = owned - placed  # frozen tensors, when they are left out
        if not left_out or not any(map(_requires_grad, (p for p in params if id(p) in left_out))):
            return
    _raise_coverage_error(model, entries, placed, owned)


def _raise_coverage_error(
    model: nn.Module, entries: Sequence[ParamEntry], placed: set[int], owned: Set[int]
) -> None:
    """Name the first parameter the plan lost, placed twice, or took from outside the model (slow path)."""
    seen: set[int] = set()
    for entry in entries:
        if id(entry.param) in seen:
            raise InternalError(f"paramwise duplicated parameter {entry.name!r} (it is in two plan entries)",
                                name=entry.name)
        seen.add(id(entry.param))
        if id(entry.param) not in owned:
            raise InternalError(f"paramwise planned {entry.name!r}, a tensor that is not a parameter of the model",
                                name=entry.name)
    for name, param in named_parameters(model):
        if param.requires_grad and id(param) not in placed:
            raise InternalError(f"paramwise lost parameter {name!r} (trainable, but in no plan entry)", name=name)
    raise InternalError("paramwise lost a parameter (trainable, but in no plan entry)")


def plan_from_entries(
    spec: OptimizerSpec,
    options: ParamwiseOptions,
    entries: Sequence[ParamEntry],
    warnings: Sequence[Problem] = (),
    notes: Sequence[Problem] = (),
    frozen: Sequence[str] = (),
    duplicates: Sequence[tuple[str, str]] = (),
    model: nn.Module | None = None,
    sites: Sites | None = None,
    routes: Sequence[RouteSpec] = (),
) -> Plan:
    """Group resolved entries into a Plan (the last step of planning, shared by every constructor).

    With ``model``, first check that the entries hold each of its trainable parameters exactly
    once (:func:`check_entries_cover`); every constructor that plans a model should pass it.
    ``sites`` is the walk of the model the entries came from, kept for the audit. With ``routes``
    the groups come route by route (main first, then the routes in config order), the order of the
    composite optimizer's children.
    """
    if model is not None:
        check_entries_cover(model, entries)
    groups = group_entries(entries, spec.kwargs, options.group_by)
    if routes:
        rank = {name: i for i, name in enumerate((MAIN_ROUTE, *(r.name for r in routes)))}
        ordered = sorted(groups, key=lambda g: rank[entries[g.members[0]].route])
        groups = tuple(replace(g, index=i) for i, g in enumerate(ordered))
    return Plan(
        optimizer=spec.type_name,
        base=dict(spec.kwargs),
        entries=tuple(entries),
        groups=groups,
        warnings=tuple(warnings),
        notes=tuple(notes),
        frozen=tuple(frozen),
        duplicates=tuple(duplicates),
        spec=spec,
        sites=sites,
        routes=tuple(routes),
    )


def make_plan(
    model: nn.Module, spec: OptimizerSpec, options: ParamwiseOptions, extra_rules: Sequence[Any] = ()
) -> Plan:
    """Walk ``model``, apply every rule, collect what decides nothing, and group: the whole plan.

    The model is walked once (:func:`~paramwise.walk.model_sites`); the rules, the diagnostics and
    later the audit read those sites. Only the coverage check looks at the model again, on purpose
    by other means (:func:`check_entries_cover`). Raises ``ConfigError`` for entries that match
    nothing when ``options.strict`` is set, and ``InternalError`` (a bug to report) when the plan
    lost or doubled a trainable parameter.
    """
    sites = model_sites(model)
    if options.routes:
        outcome = route_rules(model, spec, options, extra_rules, sites)
    else:
        outcome = apply_rules(model, spec, options, extra_rules=extra_rules, sites=sites)
    idle = idle_entries(outcome, options, sites)
    if idle.unmatched and options.strict:
        title = "config entries that match nothing in the model (paramwise_cfg['strict']=True)"
        raise ConfigError(idle.unmatched, title=title)
    found = [*idle.unmatched, *idle.shadowed]
    for rule in (*options.param_rules, *extra_rules):  # rules that read declarations from the model
        check = getattr(rule, "problems", None)
        if check is not None:
            found.extend(check(model))
    if outcome.duplicates:
        pairs = [f"{skipped} (= {kept})" for skipped, kept in outcome.duplicates]
        found.insert(0, Problem(("model",), "has shared parameters, optimized once under their first name: "
                                            f"{short_list(pairs)}"))
    return plan_from_entries(spec, options, outcome.entries, found, frozen_notes(outcome.frozen),
                             outcome.frozen, outcome.duplicates, model=model, sites=sites, routes=options.routes)
