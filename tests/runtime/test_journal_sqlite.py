"""SQLite-only journal behaviour: a journal file of an earlier schema version is brought up to
date in place (the backend-neutral promises are in ``test_journal_contract.py``)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import trio

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


async def test_state_reads_asked_together_share_queries(tmp_path: Path) -> None:
    # Thread actors activated together (a backlog over many threads) each read their state
    # first: one query (and worker-thread hop) each made activation cost more than delivery.
    async with open_sqlite_journal(tmp_path / "journal.db") as journal:
        await journal.put_state({f"thread:{n}": f"s{n}".encode() for n in range(300)})
        statements: list[str] = []
        assert journal._reader is not None  # the reader connection: count what it runs
        journal._reader.set_trace_callback(statements.append)
        got: dict[str, bytes | None] = {}

        async def read(key: str) -> None:
            got[key] = await journal.get_state(key)

        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                for n in range(301):  # thread:300 has no state
                    nursery.start_soon(read, f"thread:{n}")
        journal._reader.set_trace_callback(None)
    assert got == {f"thread:{n}": (f"s{n}".encode() if n < 300 else None) for n in range(301)}
    assert 1 <= len([s for s in statements if "journal_state" in s]) <= 5


async def test_state_readers_cancelled_while_waiting_leave_the_others_answered(
    tmp_path: Path,
) -> None:
    async with open_sqlite_journal(tmp_path / "journal.db") as journal:
        await journal.put_state({f"k{n}": str(n).encode() for n in range(200)})
        got: dict[str, bytes | None] = {}
        scopes: list[trio.CancelScope] = []

        async def read(key: str, cancelled: bool) -> None:
            if cancelled:
                with trio.CancelScope() as scope:
                    scopes.append(scope)
                    await journal.get_state(key)
                return
            got[key] = await journal.get_state(key)

        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                for n in range(200):
                    nursery.start_soon(read, f"k{n}", n % 7 == 1)
                for _ in range(3):  # cancel them at different points of their wait
                    await trio.lowlevel.checkpoint()
                    for scope in scopes:
                        scope.cancel()
        assert await journal.get_state("k1") == b"1"
    assert got == {f"k{n}": str(n).encode() for n in range(200) if n % 7 != 1}
