"""One torch optimizer made of several: Muon for the hidden matrices, AdamW for the rest (issue 18).

``HybridOptimizer`` holds one child optimizer per route and *is* a ``torch.optim.Optimizer``: its
``param_groups`` are the children's own group dicts, so whatever drives one optimizer (torch's and
paramwise's schedulers, the optimizer wrapper, Lightning, HF's Trainer) drives every child at once.
Its ``state_dict`` is torch's format over all groups, each group naming its parameters and its route,
and ``load_state_dict`` goes by parameter name: a parameter that changed route since the checkpoint
starts fresh in its new child, and the load report lists it. ``docs/hybrid.md`` has the details.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from typing import Any

import torch

from paramwise.errors import ConfigError, Problem, StateLoadError, UsageTypeError
from paramwise.state.by_name import MAIN_ROUTE, check_structure, enable_state_by_name, load_converted
from paramwise.suggestions import did_you_mean, safe_repr

__all__ = ["HybridOptimizer", "Router"]

#: Picks the route (a child's name) of a parameter group added after construction.
Router = Callable[[dict[str, Any]], str]

_HOOK_DICTS = (
    "_optimizer_step_pre_hooks", "_optimizer_step_post_hooks", "_optimizer_state_dict_pre_hooks",
    "_optimizer_state_dict_post_hooks", "_optimizer_load_state_dict_pre_hooks",
    "_optimizer_load_state_dict_post_hooks",
)


class _ChildrenState(MutableMapping[Any, Any]):
    """The composite's ``state``: parameter -> its state, read from (and written to) the child that owns it."""

    def __init__(self, owner: HybridOptimizer) -> None:
        self._owner = owner

    def _holder(self, param: Any) -> torch.optim.Optimizer | None:
        for child in self._owner._child_list:
            if param in child.state:
                return child
        return self._owner._child_of(param)

    def __getitem__(self, param: Any) -> Any:
        child = self._holder(param)
        if child is None:
            raise KeyError(param)
        return child.state[param]  # a child's defaultdict: {} for its parameter without state yet, as torch's

    def __setitem__(self, param: Any, value: Any) -> None:
        child = self._holder(param)
        if child is None:
            raise KeyError(f"not a parameter of this optimizer: {safe_repr(param, 60)}")
        child.state[param] = value

    def __delitem__(self, param: Any) -> None:
        for child in self._owner._child_list:
            if param in child.state:
                del child.state[param]
                return
        raise KeyError(param)

    def __contains__(self, param: object) -> bool:
        return any(param in child.state for child in self._owner._child_list)

    def __iter__(self) -> Iterator[Any]:
        for child in self._owner._child_list:
            yield from child.state

    def __len__(self) -> int:
        return sum(len(child.state) for child in self._owner._child_list)

    def __repr__(self) -> str:
        return f"{{{', '.join(f'{name}: {len(c.state)} parameters' for name, c in self._owner.children.items())}}}"


class HybridOptimizer(torch.optim.Optimizer):
    """Several optimizers stepped as one (e.g. Muon for hidden matrices, AdamW for the rest).

    Args:
        children: route name -> that route's optimizer, the main one ("main") first; the order is the
            order of ``param_groups``, of ``step`` and of the saved state.
        router: picks the child of a group given to ``add_param_group``; without it the group's
            ``"route"`` key must name a child.

    Every group carries ``"route"`` (its child's name; written where a child's group lacks it). ``defaults``
    are the first child's (a copy). ``step(closure)`` evaluates the closure once, then steps every child
    without it. Loading goes by parameter name when every group has ``param_names``; else by position.
    """

    def __init__(self, children: Mapping[str, torch.optim.Optimizer], router: Router | None = None) -> None:
        self.children: dict[str, torch.optim.Optimizer] = _checked_children(children)
        self.router = router
        self._child_list = tuple(self.children.values())
        # what torch.optim.Optimizer.__init__ sets, without its add_param_group: the groups are the children's
        self.defaults = dict(self._child_list[0].defaults)
        for attr in _HOOK_DICTS:
            setattr(self, attr, OrderedDict())
        self._patch_step_function()  # the composite's own step hooks run once per composite step
        self._warned_capturable_if_run_uncaptured = True
        self._stamp_routes()
        _check_disjoint(self.children)
        if all("param_names" in group for group in self.param_groups):
            enable_state_by_name(self)  # load_state_dict matches saved state by parameter name

    # ------------------------------------------------------------------ the children's groups and state
    @property  # type: ignore[override]
    def param_groups(self) -> list[dict[str, Any]]:
        """The children's group dicts (the same objects: writing ``group["lr"]`` sets the child's), in child order."""
        return [group for child in self._child_list for group in child.param_groups]

    @param_groups.setter
    def param_groups(self, value: Any) -> None:
        raise UsageTypeError("a HybridOptimizer's param_groups are its children's; change a child's groups, or use "
                             "add_param_group, which routes the group to its child")

    @property  # type: ignore[override]
    def state(self) -> MutableMapping[Any, Any]:
        """Parameter -> its state, over every child (reads and writes go to the child holding the parameter)."""
        return _ChildrenState(self)

    @state.setter
    def state(self, value: Any) -> None:
        raise UsageTypeError("a HybridOptimizer's state is its children's; load a state with load_state_dict")

    def _child_of(self, param: Any) -> torch.optim.Optimizer | None:
        for child in self._child_list:
            if any(p is param for group in child.param_groups for p in group["params"]):
                return child
        return None

    def _stamp_routes(self) -> None:
        """Make every group's ``"route"`` its child's name (the contract every reader of groups relies on)."""
        for name, child in self.children.items():
            for gi, group in enumerate(child.param_groups):
                route = group.setdefault("route", name)
                if route != name:
                    raise ConfigError([Problem(("children", name, "param_groups", str(gi), "route"), (
                        f"is {safe_repr(route)}, but the group belongs to the child {name!r}: a group's route names "
                        "the optimizer that holds it; drop the key or fix it"))], title="mixed-up routes")

    # ------------------------------------------------------------------ stepping
    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        """Step every child, in order; the closure (if any) is evaluated once, before, and its loss returned.

        Children get no closure: an optimizer that re-evaluates the loss (LBFGS) does not fit a composite.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for child in self._child_list:
            child.step()
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients of every child's parameters (none kept: KempnerForge #183)."""
        for child in self._child_list:
            child.zero_grad(set_to_none=set_to_none)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add ``param_group`` to the child that the router (or its ``"route"`` key) names."""
        if not isinstance(param_group, dict):
            raise UsageTypeError(f"param_group must be a dict, got {type(param_group).__name__}")
        given = param_group.get("route")
        route = self.router(param_group) if self.router is not None else given
        where = ("add_param_group", "route")
        if not isinstance(route, str) or route not in self.children:
            how = "the router returned" if self.router is not None else "the group's 'route' is"
            raise ConfigError([Problem(where, (
                f"{how} {safe_repr(route)}, not one of this optimizer's routes ({', '.join(self.children)})."
                f"{did_you_mean(route, list(self.children)) if isinstance(route, str) else ''} "
                + ("" if self.router is not None else "Give the group route=<one of them>, or build the optimizer "
                   "with a router")))], title="unknown route")
        if given is not None and given != route:
            raise ConfigError([Problem(where, (
                f"the group says {safe_repr(given)} but the router sends it to {route!r}; drop the group's "
                "'route' key or change the rules"))], title="conflicting routes")
        params = param_group.get("params")
        new = [params] if isinstance(params, torch.Tensor) else list(params) if params is not None else []
        for other_name, other in self.children.items():
            if other_name != route and any(p is q for q in new if isinstance(q, torch.Tensor)
                                           for group in other.param_groups for p in group["params"]):
                raise ConfigError([Problem(("add_param_group", "params"), (
                    f"holds a parameter the child {other_name!r} already optimizes; a parameter belongs to one "
                    "route only"))], title="parameter in two routes")
        param_group["route"] = route
        self.children[route].add_param_group(param_group)

    # ------------------------------------------------------------------ state dicts
    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:  # type: ignore[override]
        """Load a state of ``state_dict()``: by parameter name (see ``paramwise.last_load_report``), else by
        position; the composite's load hooks run around it, each child's load gets its own groups."""
        converted: Any = dict(state_dict)  # shallow, as torch's
        for pre_hook in self._optimizer_load_state_dict_pre_hooks.values():
            result = pre_hook(self, converted)
            if result is not None:
                converted = result
        state, groups = check_structure(converted, "the state to load")
        sizes = [[len(g["params"]) for g in child.param_groups] for child in self._child_list]
        saved_sizes = [len(g["params"]) for g in groups]
        if saved_sizes != [n for child_sizes in sizes for n in child_sizes]:
            raise StateLoadError(
                f"the state's groups hold {saved_sizes} parameters, this optimizer's {sizes} (per child): it is not "
                "this optimizer's layout, and without param_names in every group it cannot be matched by name")
        start = 0
        parts = []
        for child, child_sizes in zip(self._child_list, sizes):
            own = groups[start:start + len(child_sizes)]
            start += len(child_sizes)
            ids = {pid for g in own for pid in g["params"]}
            parts.append((child, {"state": {pid: v for pid, v in state.items() if pid in ids},
                                  "param_groups": own}))
        for child, part in parts:
            load_converted(child, part)
        for name, child in self.children.items():  # torch's load replaced the groups; a positional load may
            for group in child.param_groups:     # have brought another route's name
                group["route"] = name
        for post_hook in self._optimizer_load_state_dict_post_hooks.values():
            post_hook(self)

    # ------------------------------------------------------------------ copies and pickles
    def __getstate__(self) -> dict[str, Any]:
        return {"defaults": self.defaults, "children": self.children, "router": self.router}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["children"], state["router"])  # type: ignore[misc]
        self.defaults = state["defaults"]

    def __repr__(self) -> str:
        inner = ", ".join(f"{name}={type(child).__name__}" for name, child in self.children.items())
        return f"HybridOptimizer({inner}; {len(self.param_groups)} groups)"


def _checked_children(children: Any) -> dict[str, torch.optim.Optimizer]:
    """``children`` as a dict; a ``ConfigError`` naming every child that is not a named torch optimizer."""
    if not isinstance(children, Mapping) or not children:
        raise UsageTypeError(f"HybridOptimizer takes a dict of route name -> torch optimizer (the main one first), "
                             f"got {safe_repr(children, 80)}")
    problems = []
    seen: dict[int, str] = {}
    for name, child in children.items():
        if not isinstance(name, str) or not name:
            problems.append(Problem(("children",), f"route names are non-empty strings, got {safe_repr(name)}",
                                    kind="type"))
            continue
        if not isinstance(child, torch.optim.Optimizer):
            problems.append(Problem(("children", name), f"must be a torch.optim.Optimizer, got "
                                    f"{type(child).__name__}", kind="type"))
        elif id(child) in seen:
            problems.append(Problem(("children", name), f"is the same optimizer object as {seen[id(child)]!r}; "
                                    "give each route its own optimizer"))
        else:
            seen[id(child)] = name
    if problems:
        raise ConfigError(problems, title="invalid HybridOptimizer children")
    if MAIN_ROUTE in children and next(iter(children)) != MAIN_ROUTE:
        raise ConfigError([Problem(("children", MAIN_ROUTE), (
            "the main optimizer's route comes first (the order of param_groups and of saved state); put it first"))],
            title="invalid HybridOptimizer children")
    return dict(children)


def _check_disjoint(children: Mapping[str, torch.optim.Optimizer]) -> None:
    """A ``ConfigError`` when one parameter is in two children (it would be stepped twice)."""
    owner: dict[int, str] = {}
    for name, child in children.items():
        for group in child.param_groups:
            names = group.get("param_names") or [None] * len(group["params"])
            for param, pname in zip(group["params"], names):
                first = owner.setdefault(id(param), name)
                if first != name:
                    what = repr(pname) if pname else f"of shape {tuple(param.shape)}"
                    raise ConfigError([Problem(("children", name), (
                        f"optimizes a parameter ({what}) that {first!r} optimizes too; each parameter belongs to "
                        "one route only"))], title="parameter in two routes")
