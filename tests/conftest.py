"""Shared test settings: a hypothesis profile fit for shared, noisy CI machines."""

from __future__ import annotations

from hypothesis import HealthCheck, settings

settings.register_profile(
    "paramwise",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    max_examples=60,
)
settings.load_profile("paramwise")
