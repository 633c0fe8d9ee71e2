"""Schedules: mmengine's ``param_scheduler`` lists and the modern shapes, as one stepped object.

Owns: the one curve interface (``curve``), its curves (``mmengine``: mmengine's schedulers; ``shapes``:
the modern shapes), their one registry ``SCHEDULERS``, the runtime ``Schedule`` built by
``build_scheduler`` (``schedule``), and the schedule report and plot (``report``).

May import: the base (errors, suggestions, checks, registry) and torch. Never the plan or the
builder: a schedule sees only param groups.
"""

from __future__ import annotations

from paramwise.schedule.curve import SCHEDULERS
from paramwise.schedule.schedule import Schedule, build_scheduler

__all__ = [
    "SCHEDULERS", "Schedule", "build_scheduler"
]
