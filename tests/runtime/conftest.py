"""Journal backends for the contract suite: every test runs against SQLite and PostgreSQL.

PostgreSQL tests get a fresh database on the session's throwaway server (``tests/postgres.py``);
where PostgreSQL is missing they skip locally and fail under ``CI=true``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from runtime import Journal, open_postgres_journal, open_sqlite_journal
from tests.postgres import PostgresServer


@pytest.fixture(params=["sqlite", "postgres"])
async def journal(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Journal]:
    if request.param == "sqlite":
        async with open_sqlite_journal(tmp_path / "journal.db") as opened:
            yield opened
    elif request.param == "postgres":
        server: PostgresServer = request.getfixturevalue("postgres_server")
        async with open_postgres_journal(server.create_database()) as pg:
            yield pg
    else:  # pragma: no cover - every parameter is handled above
        raise AssertionError(request.param)
