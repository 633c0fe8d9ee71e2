"""``paramwise demo``: a small model trained end to end from the embedded config.

Owns: the demo's synthetic task, its training loop and report, and its config files (``configs/``).

May import: everything below the command line.
"""
