"""Journal backends for the contract suite."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from runtime import Journal, open_sqlite_journal


@pytest.fixture(params=["sqlite"])
async def journal(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Journal]:
    if request.param == "sqlite":
        async with open_sqlite_journal(tmp_path / "journal.db") as opened:
            yield opened
    else:  # pragma: no cover - every parameter is handled above
        raise AssertionError(request.param)
