"""Routes: which optimizer each parameter goes to (Muon for the hidden matrices, AdamW for the rest), and why.

``paramwise_cfg['routes']`` is an ordered list of ``dict(params=SELECTOR, optimizer=dict(type=...),
name=..., allow_empty=False)``. The first route whose selector takes a parameter wins; the rest stay
with the main optimizer (the route named ``"main"``). Every decision carries a reason
(``ParamEntry.route_reason``), also for a matrix that stayed with main ("embedding (nn.Embedding)",
"output head ('lm_head')", "unit dimension (1x768)"), so ``paramwise show`` can say why.

A selector is a built-in name (``BUILTIN_SELECTORS``), a list of name patterns matched as
``custom_keys`` match (a substring of the parameter's name), or the name of a predicate registered in
``ROUTE_SELECTORS``: ``predicate(name, param, module) -> bool``, where ``module`` is the module that
owns the parameter (``None`` for a group added later by ``add_param_group`` whose names the plan
does not know).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import nn

from paramwise import checks
from paramwise.checks import Path
from paramwise.errors import ConfigError, Problem
from paramwise.layers import NormMatcher
from paramwise.optimizers import optimizer_default
from paramwise.plan.rules import RuleOutcome, apply_rules
from paramwise.plan.spec import CustomKey, OptimizerSpec, ParamwiseOptions, _resolve_optimizer, resolve_custom_keys
from paramwise.registry import Registry, copy_config
from paramwise.suggestions import did_you_mean, plural, safe_repr, short_list
from paramwise.walk import ParamSite, Sites

__all__ = [
    "BUILTIN_SELECTORS",
    "HEAD_NAMES",
    "MAIN_ROUTE",
    "MAX_ASPECT_RATIO",
    "MIN_SIDE",
    "ROUTE_KEYS",
    "ROUTE_SELECTORS",
    "RouteSpec",
    "Router",
    "assign_routes",
    "matrix_refusal",
    "resolve_routes",
    "route_rules",
    "shape_refusal",
]

MAIN_ROUTE = "main"
ROUTE_KEYS = ("params", "optimizer", "name", "allow_empty")
#: the built-in selectors and what each takes
BUILTIN_SELECTORS: dict[str, str] = {
    "hidden_matrices": "2-D weights (conv kernels too where the route's optimizer flattens them) that are not "
                       "embeddings, the output head, or shapes Muon handles badly",
    "matrices": "every 2-D weight (conv kernels too where the route's optimizer flattens them)",
    "embeddings": "nn.Embedding / nn.EmbeddingBag weights, get_input_embeddings() / get_output_embeddings(), and "
                  "weights tied to them",
    "output_head": "the final projection of a module named lm_head, head, classifier or output",
    "norms": "the parameters of norm layers (paramwise_cfg['norm_types'] included)",
    "biases": "parameters named 'bias'",
}
#: module names that mark the output head (the last component of the module's name)
HEAD_NAMES = frozenset({"lm_head", "head", "classifier", "output"})
#: timm's ``_is_suitable_for_muon`` thresholds: the smaller side of the matrix (conv kernels viewed as
#: (out, in*h*w)) must be at least MIN_SIDE, and the longer side at most MAX_ASPECT_RATIO times it
MIN_SIDE = 4
MAX_ASPECT_RATIO = 128.0

#: Predicates a route may name as its ``params``: ``predicate(name, param, module) -> bool`` (see the module docstring)
ROUTE_SELECTORS = Registry("route selector")

_PW = ("optimizer", "paramwise_cfg")
_ROUTES = (*_PW, "routes")
_MISSING = object()
_EMBEDDINGS = (nn.Embedding, nn.EmbeddingBag)


@dataclass(frozen=True)
class RouteSpec:
    """One checked entry of ``paramwise_cfg['routes']``: its name, selector and optimizer."""

    name: str
    index: int
    selector: str | tuple[str, ...]  # a built-in or registered selector's name, or name patterns
    spec: OptimizerSpec
    custom_keys: tuple[CustomKey, ...] = ()  # the config's custom keys, checked against this optimizer
    key_problems: Mapping[str, tuple[Problem, ...]] = field(default_factory=dict)  # raised if the key matches here
    allow_empty: bool = False

    @property
    def path(self) -> Path:
        """Where the route is in the config: ``optimizer -> paramwise_cfg -> routes -> [i]``."""
        return (*_ROUTES, f"[{self.index}]")


# ----------------------------------------------------------------------------- config checks


def _resolve_selector(value: Any, path: Path, problems: list[Problem]) -> str | tuple[str, ...] | None:
    """A route's ``params`` as a selector name or a tuple of name patterns; None after a problem."""
    if value is _MISSING:
        problems.append(Problem(path, "is missing: say which parameters the route takes, e.g. "
                                      "params='hidden_matrices' or params=['attn', 'mlp']", kind="missing"))
        return None
    if isinstance(value, str):
        if value in BUILTIN_SELECTORS or value in ROUTE_SELECTORS:
            return value
        known = [*BUILTIN_SELECTORS, *ROUTE_SELECTORS.names()]
        problems.append(Problem(path, (
            f"{value!r} is not a selector.{did_you_mean(value, known)} Selectors: {', '.join(known)}; for name "
            f"patterns write a list (params=[{value!r}]); register a predicate with "
            "ROUTE_SELECTORS.register_module()")))
        return None
    if isinstance(value, (list, tuple)) and value and all(isinstance(p, str) and p for p in value):
        return tuple(value)
    problems.append(Problem(path, (
        f"must be a selector name such as 'hidden_matrices', or a non-empty list of name patterns, got "
        f"{safe_repr(value)}"), kind="type"))
    return None


def _route_name(route: Mapping[str, Any], spec: OptimizerSpec | None, where: Path,
                problems: list[Problem]) -> str | None:
    """The route's name: ``name`` if given, else its optimizer's type."""
    name = route.get("name")
    if name is None:
        return spec.type_name if spec is not None else None
    if not isinstance(name, str) or not name:
        problems.append(Problem((*where, "name"), f"must be a non-empty string, got {safe_repr(name)}", kind="type"))
        return None
    if name == MAIN_ROUTE:
        problems.append(Problem((*where, "name"), f"{MAIN_ROUTE!r} is the main optimizer's route; choose another"))
        return None
    return name


def _key_problems(raw_keys: Any, spec: OptimizerSpec, flags: frozenset[str]
                  ) -> tuple[tuple[CustomKey, ...], dict[str, tuple[Problem, ...]]]:
    """The custom keys checked against a route's optimizer, and each key's problems there (by key)."""
    if not isinstance(raw_keys, Mapping):
        return (), {}
    found: list[Problem] = []
    keys = resolve_custom_keys(raw_keys, spec, flags, found)
    by_key: dict[str, list[Problem]] = {}
    for problem in found:
        if len(problem.path) > 3:  # a problem of the whole custom_keys is the main optimizer's to report
            by_key.setdefault(problem.path[3], []).append(problem)
    return keys, {k: tuple(v) for k, v in by_key.items()}


def resolve_routes(raw: Any, raw_keys: Any, flags: frozenset[str], main: OptimizerSpec | None,
                   problems: list[Problem]) -> tuple[RouteSpec, ...]:
    """Check ``paramwise_cfg['routes']``: each route's keys, selector, optimizer (as the main one) and name."""
    if not isinstance(raw, (list, tuple)):
        problems.append(Problem(_ROUTES, (
            "must be a list of routes, e.g. [dict(params='hidden_matrices', optimizer=dict(type='Muon', lr=0.02))], "
            f"got {type(raw).__name__}"), kind="type"))
        return ()
    out: list[RouteSpec] = []
    named: dict[str, int] = {}
    for index, route in enumerate(raw):
        where = (*_ROUTES, f"[{index}]")
        if not isinstance(route, Mapping):
            problems.append(Problem(where, (
                f"must be a dict(params=..., optimizer=dict(type=...)), got {safe_repr(route)}"), kind="type"))
            continue
        for key in route:
            if key not in ROUTE_KEYS:
                problems.append(Problem((*where, key if isinstance(key, str) else safe_repr(key)), (
                    f"is not a route option.{did_you_mean(key, ROUTE_KEYS)} A route takes: {', '.join(ROUTE_KEYS)}")))
        selector = _resolve_selector(route.get("params", _MISSING), (*where, "params"), problems)
        spec = None
        if route.get("optimizer") is None:
            problems.append(Problem((*where, "optimizer"), "is missing: give the route its optimizer, e.g. "
                                                           "optimizer=dict(type='Muon', lr=0.02)", kind="missing"))
        else:
            root = (*where, "optimizer")
            spec = _resolve_optimizer(copy_config(route["optimizer"], root), problems, root)
        allow_empty = route.get("allow_empty", False)
        bad_flag = checks.boolean(allow_empty, (*where, "allow_empty"))
        problems += bad_flag
        name = _route_name(route, spec, where, problems)
        if name is not None and name in named:
            problems.append(Problem((*where, "name") if "name" in route else where, (
                f"the route name {name!r} is taken by routes[{named[name]}]; give each route a distinct "
                "name=, e.g. name='muon_attn'")))
        elif name is not None:
            named[name] = index
        if spec is None or selector is None or name is None:
            continue
        keys, key_problems = _key_problems(raw_keys, spec, flags)
        out.append(RouteSpec(name, index, selector, spec, keys, key_problems, bool(allow_empty) and not bad_flag))
    return tuple(out)


# ----------------------------------------------------------------------------- shapes


def _flattens(spec: OptimizerSpec) -> bool:
    """Whether the optimizer treats conv kernels as matrices (``flatten=True``, as paramwise's BatchedMuon)."""
    return spec.kwargs.get("flatten", optimizer_default(spec.cls, "flatten", False)) is True


def _is_batched_muon(cls: Any) -> bool:
    return isinstance(cls, type) and any(c.__name__ == "BatchedMuon" for c in cls.__mro__)


def _is_torch_muon(cls: Any) -> bool:
    muon = getattr(torch.optim, "Muon", None)
    return muon is not None and isinstance(cls, type) and issubclass(cls, muon)


def matrix_refusal(spec: OptimizerSpec, shape: Sequence[int]) -> str | None:
    """Why a Muon-type optimizer cannot take a parameter of ``shape`` (None where it can, or is no Muon).

    torch's Muon takes 2-D parameters only; paramwise's BatchedMuon 2-D, or more with ``flatten=True``.
    """
    if _is_batched_muon(spec.cls):
        if len(shape) == 2 or (len(shape) > 2 and _flattens(spec)):
            return None
        return "is not 2-D" if len(shape) < 2 else f"is {len(shape)}-D and flatten is not set"
    if _is_torch_muon(spec.cls) and len(shape) != 2:
        return "is not 2-D"
    return None


def _matrix_shape(shape: Sequence[int], flatten: bool) -> tuple[int, int] | None:
    """The matrix a parameter is to the optimizer: itself when 2-D, ``view(out, -1)`` when flattened."""
    if len(shape) == 2:
        return shape[0], shape[1]
    if len(shape) > 2 and flatten:
        return shape[0], math.prod(shape[1:])
    return None


def _shape_text(shape: Sequence[int]) -> str:
    return "x".join(map(str, shape))


def shape_refusal(shape: Sequence[int]) -> str | None:
    """Why Muon handles a matrix of ``shape`` badly, with timm's ``_is_suitable_for_muon`` rules; None if fine.

    A unit dimension (fewer than two sides above 1, or 1 in either of the first two), a side below
    ``MIN_SIDE`` or an aspect ratio above ``MAX_ASPECT_RATIO``, conv kernels as (out, in*h*w).
    """
    if len(shape) < 2 or sum(1 for d in shape if d > 1) < 2 or shape[0] == 1 or shape[1] == 1:
        return f"unit dimension ({_shape_text(shape)})"
    rows, cols = shape[0], math.prod(shape[1:])
    small, large = min(rows, cols), max(rows, cols)
    if small < MIN_SIDE:
        return f"very small side ({small} < {MIN_SIDE})"
    if large / small > MAX_ASPECT_RATIO:
        return f"extreme aspect ratio ({large / small:.4g}:1 > {MAX_ASPECT_RATIO:g}:1)"
    return None


# ----------------------------------------------------------------------------- the model's facts


def _model_embeddings(root: nn.Module) -> dict[int, str]:
    """``id(weight)`` -> reason, for what ``get_input_embeddings()`` / ``get_output_embeddings()`` return."""
    found: dict[int, str] = {}
    for method in ("get_input_embeddings", "get_output_embeddings"):
        getter = getattr(root, method, None)
        if not callable(getter):
            continue
        try:
            module = getter()
        except Exception:  # a model's own method that fails (HF models without an output layer): no answer
            continue
        weight = getattr(module, "weight", None) if isinstance(module, nn.Module) else None
        if isinstance(weight, torch.Tensor):
            kind = "input" if method == "get_input_embeddings" else "output"
            found.setdefault(id(weight), f"{kind} embeddings ({method}())")
    return found


@dataclass
class _Facts:
    """What the built-in selectors look at, computed once per model from the plan's sites."""

    first: dict[int, ParamSite]  # id(tensor) -> the site of its first name
    embedding: dict[int, str]  # id(tensor) -> why it is an embedding (or tied to one)
    head: dict[int, str]  # id(tensor) -> why it is the output head
    norm: set[int]
    norm_class: dict[int, str]


def _facts(sites: Sites, options: ParamwiseOptions) -> _Facts:
    first: dict[int, ParamSite] = {}
    embedding: dict[int, str] = {}
    tied: dict[int, str] = {}
    is_norm = NormMatcher(options.norm_types)
    norm: set[int] = set()
    norm_class: dict[int, str] = {}
    for site in sites.params:
        name, param, module = site[0], site[1], site[2]
        pid = id(param)
        new = pid not in first
        if new:
            first[pid] = site
        if isinstance(module, _EMBEDDINGS):
            if new:
                embedding[pid] = f"embedding (nn.{type(module).__name__})"
            else:
                tied.setdefault(pid, f"tied to an embedding ({name!r})")
        if new and is_norm(module):
            norm.add(pid)
            norm_class[pid] = type(module).__name__
    for pid, reason in tied.items():
        embedding.setdefault(pid, reason)
    for pid, reason in _model_embeddings(sites.root).items():
        embedding.setdefault(pid, reason)
    return _Facts(first, embedding, _heads(sites), norm, norm_class)


def _heads(sites: Sites) -> dict[int, str]:
    """The final projection (last weight of 2 or more dimensions, in model order) of each head-named module."""
    heads = [prefix for prefix, _module, _dcn in sites.modules if prefix.rpartition(".")[2] in HEAD_NAMES]
    found: dict[int, str] = {}
    for head in heads:
        inside = [site for site in sites.params
                  if site[1].ndim >= 2 and (site[3] == head or site[3].startswith(f"{head}."))]
        if inside:
            found.setdefault(id(inside[-1][1]), f"output head ({head!r})")
    return found


# ----------------------------------------------------------------------------- selection


def _matches(patterns: Sequence[str], name: str, prefix: str) -> str | None:
    """The first pattern contained in ``name`` (root parameters tested as '.name', as custom_keys do)."""
    match_name = name if prefix else f".{name}"
    return next((p for p in patterns if p in match_name), None)


def _hidden_matrix(route: RouteSpec, pid: int, shape: Sequence[int], facts: _Facts) -> tuple[bool, str]:
    """Whether 'hidden_matrices' takes a parameter, with the reason either way."""
    if len(shape) < 2:
        return False, f"not a matrix ({len(shape)}-D)"
    if pid in facts.embedding:
        return False, facts.embedding[pid]
    if pid in facts.head:
        return False, facts.head[pid]
    flatten = _flattens(route.spec)
    if _matrix_shape(shape, flatten) is None:
        return False, (f"conv kernel ({_shape_text(shape)}): {route.spec.type_name} does not flatten it "
                       "(BatchedMuon with flatten=True does)")
    refusal = shape_refusal(shape)
    if refusal is not None:
        return False, refusal
    return True, "hidden matrix" if len(shape) == 2 else f"hidden matrix (conv kernel flattened to " \
                                                         f"{_shape_text(_matrix_shape(shape, True) or ())})"


def _select(route: RouteSpec, site: ParamSite, facts: _Facts | None) -> tuple[bool, str]:
    """Whether ``route`` takes the parameter at ``site``, and why (a reason also where it does not).

    Without ``facts`` (a group added later, not in the model's walk) only what the name and shape
    tell is known: embeddings, heads and norms are not taken.
    """
    name, param, module, prefix = site[0], site[1], site[2], site[3]
    selector, pid, shape = route.selector, id(param), tuple(param.shape)
    if isinstance(selector, tuple):
        pattern = _matches(selector, name, prefix)
        return (True, f"matches {pattern!r}") if pattern is not None else (False, "")
    if selector == "hidden_matrices":
        if facts is None:
            facts = _Facts({}, {}, {}, set(), {})
        return _hidden_matrix(route, pid, shape, facts)
    if selector == "matrices":
        if _matrix_shape(shape, _flattens(route.spec)) is not None:
            return True, "matrix"
        return False, ""
    if selector == "biases":
        return (True, "bias") if site[4] == "bias" else (False, "")
    if facts is None:
        return False, ""
    if selector == "embeddings":
        return (True, facts.embedding[pid]) if pid in facts.embedding else (False, "")
    if selector == "output_head":
        return (True, facts.head[pid]) if pid in facts.head else (False, "")
    if selector == "norms":
        return (True, f"norm ({facts.norm_class[pid]})") if pid in facts.norm else (False, "")
    return _predicate(route, selector, name, param, module)


def _predicate(route: RouteSpec, selector: str, name: str, param: torch.Tensor,
               module: nn.Module | None) -> tuple[bool, str]:
    """Ask a registered predicate; its exception is a ConfigError at the route's ``params``."""
    predicate: Callable[..., Any] = ROUTE_SELECTORS.get(selector)
    try:
        taken = bool(predicate(name, param, module))
    except Exception as e:
        raise ConfigError([Problem((*route.path, "params"), (
            f"the selector {selector!r} raised {type(e).__name__}: {e} for {name!r}; a selector is called as "
            "predicate(name, param, module) and returns True or False"))], title="route selector failed") from e
    return (True, f"selector {selector!r}") if taken else (False, "")


def assign_routes(sites: Sites, routes: Sequence[RouteSpec], options: ParamwiseOptions) -> dict[int, tuple[str, str]]:
    """``id(tensor)`` -> (route name, reason) for every tensor of the walk: the first route that takes it
    wins; the others stay with main, with the first reason a route gave for not taking them."""
    facts = _facts(sites, options)
    out: dict[int, tuple[str, str]] = {}
    for pid, site in facts.first.items():
        stayed = ""
        for route in routes:
            taken, reason = _select(route, site, facts)
            if taken:
                out[pid] = (route.name, reason)
                break
            stayed = stayed or reason
        else:
            out[pid] = (MAIN_ROUTE, stayed)
    return out


# ----------------------------------------------------------------------------- planning per route


def _route_problems(route: RouteSpec, outcome: RuleOutcome, why_not: Sequence[str] = ()) -> list[Problem]:
    """What is wrong with a route once its parameters are known: none at all (with ``why_not``, the
    reasons its selector gave for the model's parameters), a parameter its optimizer cannot take, or a
    custom key that matched here but sets what this optimizer does not take."""
    where = (*route.path, "params")
    if not outcome.entries and not route.allow_empty:
        kinds = Counter(re.sub(r" \(\d+(x\d+)*\)", "", r) for r in why_not if r).most_common()
        reasons = [f"{plural(count, 'parameter')}: {reason}" for reason, count in kinds[:4]]
        more = f"; and {len(kinds) - 4} other reasons" if len(kinds) > 4 else ""
        because = f". It left them to main: {'; '.join(reasons)}{more}" if reasons else ""
        return [Problem(where, (
            f"takes no parameter of the model (selector {safe_repr(route.selector)}){because}. Fix the selector, "
            "or set allow_empty=True on this route if it may be empty"))]
    problems: list[Problem] = []
    refused = [(e, why) for e in outcome.entries if (why := matrix_refusal(route.spec, e.shape)) is not None]
    if refused:
        shown = [f"{e.name} {_shape_text(e.shape) or '()'} ({why})" for e, why in refused]
        problems.append(Problem(where, (
            f"selects {plural(len(refused), 'parameter')} that {route.spec.type_name} cannot take: "
            f"{short_list(shown)}; "
            "narrow the selector (e.g. params='hidden_matrices'), or use BatchedMuon with flatten=True for conv "
            "kernels")))
    for key, count in outcome.key_matches.items():
        if count:
            problems += [replace(p, message=f"{p.message} (it matches parameters of the route {route.name!r})")
                         for p in route.key_problems.get(key, ())]
    return problems


def route_rules(model: nn.Module, spec: OptimizerSpec, options: ParamwiseOptions, extra_rules: Sequence[Any],
                sites: Sites) -> RuleOutcome:
    """The rules applied inside each route, on that route's own base values, merged in model order.

    Every entry's hyperparameters hold ``route``, so groups never mix routes; each entry says its
    route and why (``route_reason``). Raises one ``ConfigError`` for every route problem.
    """
    assignment = assign_routes(sites, options.routes, options)
    by_route: dict[str, list[ParamSite]] = {MAIN_ROUTE: [], **{r.name: [] for r in options.routes}}
    for site in sites.params:
        by_route[assignment[id(site[1])][0]].append(site)
    main_options = replace(options, routes=())
    parts = [(MAIN_ROUTE, spec, main_options, None),
             *((r.name, r.spec, replace(main_options, custom_keys=r.custom_keys), r) for r in options.routes)]
    outcomes: list[RuleOutcome] = []
    problems: list[Problem] = []
    for name, route_spec, route_options, route in parts:
        outcome = apply_rules(model, route_spec, route_options, extra_rules=extra_rules,
                              sites=Sites(sites.root, sites.modules, by_route[name]), route=name)
        entries = tuple(e._replace(route_reason=assignment[id(e.param)][1]) for e in outcome.entries)
        outcome = replace(outcome, entries=entries)
        if route is not None:
            why_not = [] if outcome.entries else [_select(route, site, _facts(sites, options))[1]
                                                  for site in sites.params]
            problems += _route_problems(route, outcome, why_not)
        outcomes.append(outcome)
    if problems:
        raise ConfigError(problems, title="invalid routes")
    return _merged(outcomes, sites)


def _merged(outcomes: Sequence[RuleOutcome], sites: Sites) -> RuleOutcome:
    """One outcome of the routes' outcomes: entries and names in model order, custom-key matches summed."""
    order: dict[int, int] = {}
    position: dict[str, int] = {}
    for i, site in enumerate(sites.params):
        order.setdefault(id(site[1]), i)
        position.setdefault(site[0], i)
    entries = sorted((e for o in outcomes for e in o.entries), key=lambda e: order[id(e.param)])
    frozen = sorted((n for o in outcomes for n in o.frozen), key=lambda n: position.get(n, 0))
    duplicates = sorted((d for o in outcomes for d in o.duplicates), key=lambda d: position.get(d[0], 0))
    matches: dict[str, int] = dict.fromkeys(outcomes[0].key_matches, 0)
    for outcome in outcomes:
        for key, count in outcome.key_matches.items():
            matches[key] = matches.get(key, 0) + count
    return RuleOutcome(tuple(entries), tuple(frozen), tuple(duplicates), matches, outcomes[0].unmatched_norm_types)


# ----------------------------------------------------------------------------- groups added later


class Router:
    """Picks the route of a parameter group added later (``add_param_group``), by the plan's rules.

    Names the plan knows go where the plan put them; new names go through the routes' selectors in
    order (what the name and shape tell: patterns, matrices, hidden matrices by shape, biases,
    predicates with ``module=None``), else to main. A group whose parameters belong to two routes, or
    a ``route`` key naming no route, is a ``ConfigError``.
    """

    def __init__(self, routes: Sequence[RouteSpec], known: Mapping[str, str]) -> None:
        self.routes = tuple(routes)
        self.known = dict(known)  # parameter name -> route, from the plan

    def route_of(self, name: str, param: torch.Tensor) -> str:
        """The route of one parameter called ``name``."""
        if name in self.known:
            return self.known[name]
        prefix, _, leaf = name.rpartition(".")
        site = (name, param, None, prefix, leaf, False)
        for route in self.routes:
            if _select(route, site, None)[0]:  # type: ignore[arg-type]
                return route.name
        return MAIN_ROUTE

    def __call__(self, group: Mapping[str, Any]) -> str:
        names = {MAIN_ROUTE, *(r.name for r in self.routes)}
        given = group.get("route")
        if given is not None:
            if given not in names:
                raise ConfigError([Problem(("param_group", "route"), (
                    f"{safe_repr(given)} is not a route of this optimizer.{did_you_mean(given, names)} Routes: "
                    f"{', '.join(sorted(names))}"))], title="unknown route")
            return str(given)
        params = group.get("params", [])
        params = [params] if isinstance(params, torch.Tensor) else list(params)
        param_names = list(group.get("param_names") or [f"<param {i}>" for i in range(len(params))])
        chosen = {self.route_of(n, p) for n, p in zip(param_names, params)} or {MAIN_ROUTE}
        if len(chosen) > 1:
            raise ConfigError([Problem(("param_group", "params"), (
                f"holds parameters of {plural(len(chosen), 'route')} ({', '.join(sorted(chosen))}); add one group "
                "per route, or set group['route']"))], title="a group that mixes routes")
        return chosen.pop()
