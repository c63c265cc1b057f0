"""Entries recorded before replies were split (issue 17): their one ``{prefix}text`` step stands
for every ``{prefix}text:{i}`` piece, so an upgrade never sends a text again."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from actors.delivery import Outcome, Steps, steps_key
from runtime import Journal, open_postgres_journal, open_sqlite_journal
from tests.postgres import PostgresServer


@pytest.fixture(params=["sqlite", "postgres"])
async def journal(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Journal]:
    if request.param == "sqlite":
        async with open_sqlite_journal(tmp_path / "journal.db") as opened:
            yield opened
    else:
        server: PostgresServer = request.getfixturevalue("postgres_server")
        async with open_postgres_journal(server.create_database()) as pg:
            yield pg


async def test_an_older_text_step_stands_for_every_piece(journal: Journal) -> None:
    recorded = {"41:text": "done", "42:text": "started@1700000000.000", "text": "done"}
    await journal.put_state({steps_key(7): json.dumps(recorded).encode()})
    steps = await Steps.load(journal, 7)
    calls: list[str] = []

    def effect(name: str) -> Callable[[], Awaitable[str | None]]:
        async def run() -> str | None:
            calls.append(name)
            return None

        return run

    for name in ("41:text:0", "41:text:1", "text:0", "text:3"):
        result = await steps.run(name, effect(name), retryable=())
        assert result.outcome is Outcome.DONE, name
    for name in ("42:text:0", "42:text:1"):
        result = await steps.run(name, effect(name), retryable=())
        assert result.outcome is Outcome.IN_DOUBT, name
    assert steps.in_doubt == ["42:text:0", "42:text:1"]
    # Other steps are not affected: a piece of another part, an attachment, a new entry's text.
    for name in ("43:text:0", "41:media:0", "41:inline:0"):
        assert (await steps.run(name, effect(name), retryable=())).outcome is Outcome.DONE
    assert calls == ["43:text:0", "41:media:0", "41:inline:0"]
