"""``python -m paramwise``: the same command line as the ``paramwise`` script."""

from __future__ import annotations

from paramwise.cli import main

raise SystemExit(main())
