"""Schedules: mmengine's ``param_scheduler`` lists and the modern shapes, as one stepped object.

Owns: the curves (mmengine's schedulers and the modern shapes), their registry ``SCHEDULERS``, the
runtime ``Schedule`` built by ``build_scheduler``, and the schedule report and plot.

May import: the base and torch. Never the plan or the builder: a schedule sees only param groups.
"""

from __future__ import annotations

from paramwise.schedule.mmengine import SCHEDULERS
from paramwise.schedule.schedule import Schedule, build_scheduler

__all__ = [
    "SCHEDULERS", "Schedule", "build_scheduler"
]
