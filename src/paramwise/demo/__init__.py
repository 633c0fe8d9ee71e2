"""``paramwise demo``: a small model trained end to end from the embedded config.

Owns: the demo's synthetic task, its training loop and report, and its config files (``configs/``).

May import: everything below the command line.
"""

from __future__ import annotations

from paramwise.demo.run import (
    DEFAULT_CONFIG,
    DEFAULT_MODEL,
    DemoResult,
    SyntheticTask,
    input_shape_of,
    num_classes_of,
    report_table,
    report_text,
    train,
    train_with_progress,
)

__all__ = [
    "DEFAULT_CONFIG",
    "DEFAULT_MODEL",
    "DemoResult",
    "SyntheticTask",
    "input_shape_of",
    "num_classes_of",
    "report_table",
    "report_text",
    "train",
    "train_with_progress",
]
