"""Shared test settings: a hypothesis profile fit for shared, noisy CI machines.

``PARAMWISE_FUZZ_EXAMPLES`` sets how many examples each property tries (60 by default, bounded for
CI, and the same examples every run; with the variable set, new random ones each run); a long fuzz
run is ``PARAMWISE_FUZZ_EXAMPLES=10000 bash scripts/test.sh -k hardening``.
A test's own ``@settings(max_examples=...)`` takes precedence over the profile.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, is_hypothesis_test, settings

_EXAMPLES_VAR = "PARAMWISE_FUZZ_EXAMPLES"


def _fuzz_examples(default: int = 60) -> int:
    raw = os.environ.get(_EXAMPLES_VAR, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{_EXAMPLES_VAR} must be a positive whole number, got {raw!r}") from None
    if value < 1:
        raise ValueError(f"{_EXAMPLES_VAR} must be a positive whole number, got {raw!r}")
    return value


settings.register_profile(
    "paramwise",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    max_examples=_fuzz_examples(),
    # the test command's examples are the same every run, so a red CI is a change's, not a draw's; a long
    # fuzz run (PARAMWISE_FUZZ_EXAMPLES set) draws new examples each time
    derandomize=not os.environ.get(_EXAMPLES_VAR, "").strip(),
)
settings.load_profile("paramwise")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Property tests draw random configs, and a warning is one of their valid outcomes: pyproject's
    filter turns an unexpected ParamwiseWarning into an error everywhere else, not in them."""
    for item in items:
        if is_hypothesis_test(getattr(item, "obj", None)):
            item.add_marker(pytest.mark.filterwarnings("ignore::paramwise.errors.ParamwiseWarning"))
