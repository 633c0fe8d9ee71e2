"""Imported on the first optimizer lookup: registers installed third-party optimizers."""

from paramwise.optimizers import scan_third_party

scan_third_party()
