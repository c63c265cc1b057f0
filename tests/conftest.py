"""Suite-wide configuration: Hypothesis profiles (CI runs more examples), shared fixtures."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

from tests.postgres import postgres_server

__all__ = ["postgres_server"]

settings.register_profile(
    "ci",
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.register_profile("dev", max_examples=50, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))
