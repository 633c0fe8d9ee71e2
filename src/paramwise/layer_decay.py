"""layer_decay rules (param stage); see rules.py for the rule interface."""

from __future__ import annotations
