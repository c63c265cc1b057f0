"""Shared helpers for the channel tests: where the provider fixtures live."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def shared_dir() -> Path:
    """``$THREADLINE_SHARED_DIR`` or ``<repo root>/../shared``; fails loudly when absent."""
    configured = os.environ.get("THREADLINE_SHARED_DIR")
    path = Path(configured) if configured else REPO_ROOT.parent / "shared"
    fixtures = path / "fixtures" / "channels"
    if not fixtures.is_dir():
        pytest.fail(
            f"channel fixtures not found at {fixtures}: check out the shared/ directory beside "
            "the repository or set THREADLINE_SHARED_DIR",
            pytrace=False,
        )
    return path


def fixtures_dir() -> Path:
    return shared_dir() / "fixtures" / "channels"
