"""Imported on the first optimizer lookup: registers installed third-party optimizers."""

from .optimizers import _scan_third_party

_scan_third_party()
