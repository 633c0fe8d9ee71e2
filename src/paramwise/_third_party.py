"""Imported when the whole optimizer registry is read (its names, its length): registers every installed
third-party optimizer. A single lookup imports only the packages that may define the name."""

from paramwise.optimizers import scan_third_party

scan_third_party()
