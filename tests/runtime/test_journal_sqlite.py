"""SQLite-only journal behaviour: a journal file of an earlier schema version is brought up to
date in place (the backend-neutral promises are in ``test_journal_contract.py``)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from runtime import NewEntry, open_sqlite_journal


async def test_a_journal_of_schema_version_1_gets_the_media_tables_and_keeps_its_entries(
    tmp_path: Path,
) -> None:
    path = tmp_path / "journal.db"
    async with open_sqlite_journal(path) as journal:
        await journal.append([NewEntry("a", "1", b"{}")])
    # What a journal file written by the previous version looks like: no media, version 1.
    with sqlite3.connect(path) as conn:
        conn.executescript(
            "DROP TABLE journal_media_links; DROP TABLE journal_media;"
            " UPDATE journal_meta SET value = '1' WHERE name = 'schema_version';"
        )
    conn.close()
    async with open_sqlite_journal(path) as journal:
        assert [e.dedupe_id for e in await journal.read_pending(after_id=0, limit=10)] == ["1"]
        await journal.put_media("tok", b"m" * 100, digest="d", mime_type="a/b", filename="f")
        stored = await journal.get_media("tok", stored_after=0.0)
        assert stored is not None
        assert stored.content == b"m" * 100
    with sqlite3.connect(path) as conn:
        (version,) = conn.execute(
            "SELECT value FROM journal_meta WHERE name = 'schema_version'"
        ).fetchone()
    conn.close()
    assert version == "2"
