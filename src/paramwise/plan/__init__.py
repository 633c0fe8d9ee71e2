"""The plan: every parameter's hyperparameters, each the product of factors with the rule behind it.

Owns: the checked optimizer spec (``paramwise_cfg`` and the optimizer's arguments), the rules
(custom keys, multipliers, layer decay, width scaling, no-decay tags, safe expressions), grouping
of equal entries, the idle-rule diagnostics and the audit.

May import: the base, ``layers``, ``walk``, ``optimizers``, ``models`` and ``config`` (lazy objects).
A ``Plan`` renders itself through ``paramwise.render`` with a lazy import: the one documented
upward import (ARCHITECTURE.md).
"""

from __future__ import annotations

from paramwise.plan.audit import Finding, audit_plan
from paramwise.plan.groups import GroupSpec
from paramwise.plan.plan import Plan, make_plan
from paramwise.plan.rules import Factor, ParamEntry, fold

__all__ = [
    "Factor", "Finding", "GroupSpec", "ParamEntry", "Plan", "audit_plan", "fold", "make_plan"
]
