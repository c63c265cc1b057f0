"""Journal backends for the contract suite: every test runs against SQLite and PostgreSQL.

PostgreSQL tests get a fresh database on the session's throwaway server (``tests/postgres.py``);
where PostgreSQL is missing they skip locally and fail under ``CI=true``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
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


OpenJournal = Callable[[], AbstractAsyncContextManager[Journal]]


@pytest.fixture(params=["sqlite", "postgres"])
def open_journal(request: pytest.FixtureRequest, tmp_path: Path) -> OpenJournal:
    """Opens a fresh journal of each backend where the test wants it, even in a Trio run of its
    own (the ``journal`` fixture lives in the test's run)."""
    if request.param == "sqlite":
        path = tmp_path / "journal.db"
        return lambda: open_sqlite_journal(path)
    server: PostgresServer = request.getfixturevalue("postgres_server")
    url = server.create_database()
    return lambda: open_postgres_journal(url)
