"""The embedded journal backend: one SQLite file in WAL mode with ``synchronous=FULL``.

:class:`SQLiteJournal` is assembled from :mod:`.store` (the connections and the group-commit
writer: every write shares a transaction, and one fsync, with the writes queued beside it),
:mod:`.media` (the media store) and this module (entries, state, dead letters). The schema and
its migrations are in :mod:`.schema`.

One process owns the file (single-node mode); the ``deadletters`` command may open it alongside,
since WAL serialises writers with a busy timeout.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import trio

from .._errors import JournalError, JournalUnavailable
from .._journal import (
    DEFAULT_PARTITIONS,
    Appended,
    DeadLetter,
    Entry,
    EntryStatus,
    Erased,
    Fence,
    JournalStatistics,
    NewEntry,
    partition_of,
)
from .media import SQLiteMedia

__all__ = ["SQLiteJournal", "open_sqlite_journal"]

_COLUMNS = "id, key, partition, dedupe_id, payload, created_at, status"


def _entry(row: tuple[Any, ...]) -> Entry:
    return Entry(
        id=row[0],
        key=row[1],
        partition=row[2],
        dedupe_id=row[3],
        payload=bytes(row[4]),
        created_at=row[5],
        status=EntryStatus(row[6]),
    )


class _StateRead:
    """One query of state values answering every ``get_state`` asked before it began."""

    __slots__ = ("done", "error", "keys", "values")

    def __init__(self, key: str) -> None:
        self.keys = {key}
        self.done = trio.Event()
        self.values: dict[str, bytes] | None = None
        self.error: str | None = None


def _read_states(conn: sqlite3.Connection, keys: list[str]) -> dict[str, bytes]:
    values: dict[str, bytes] = {}
    for start in range(0, len(keys), 500):  # well below SQLite's limit on parameters
        chunk = keys[start : start + 500]
        marks = ",".join("?" * len(chunk))
        for name, value in conn.execute(
            f"SELECT key, value FROM journal_state WHERE key IN ({marks})", chunk
        ):
            values[name] = bytes(value)
    return values


class SQLiteJournal(SQLiteMedia):
    """A :class:`Journal` in one SQLite file. Start with ``await nursery.start(journal.run)``.

    Args:
        path: the database file (created with its schema if missing).
        partitions: the fixed number of partitions keys hash into.
        wall_clock: UNIX time source for ``created_at`` and ``finished_at``.
    """

    _state_read: _StateRead | None = None  # the state query callers can still join

    # --- the Journal protocol -----------------------------------------------------------------

    async def append(self, entries: Sequence[NewEntry]) -> list[Appended]:
        now = self._now()
        try:
            rows = [
                (e.key, partition_of(e.key, self._partitions), e.dedupe_id, e.payload, now)
                for e in entries
            ]
        except UnicodeEncodeError as exc:  # a key that cannot be stored either
            raise JournalError(f"a journal key is not UTF-8-encodable: {exc}") from exc

        def insert(conn: sqlite3.Connection) -> list[Appended]:
            out: list[Appended] = []
            for row in rows:
                got = conn.execute(
                    "INSERT INTO journal_entries (key, partition, dedupe_id, payload, created_at)"
                    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (dedupe_id) DO NOTHING RETURNING id",
                    row,
                ).fetchone()
                if got is not None:
                    out.append(Appended(got[0], duplicate=False))
                else:
                    old = conn.execute(
                        "SELECT id FROM journal_entries WHERE dedupe_id = ?", (row[2],)
                    ).fetchone()
                    out.append(Appended(old[0], duplicate=True))
            return out

        return await self._write(insert)

    async def read_pending(
        self, *, after_id: int, limit: int, partitions: Collection[int] | None = None
    ) -> list[Entry]:
        if partitions is not None and not partitions:
            return []

        def query(conn: sqlite3.Connection) -> list[Entry]:
            if partitions is None:
                cursor = conn.execute(
                    f"SELECT {_COLUMNS} FROM journal_entries WHERE status = 0 AND id > ?"
                    " ORDER BY id LIMIT ?",
                    (after_id, limit),
                )
            else:
                marks = ",".join("?" * len(partitions))
                cursor = conn.execute(
                    f"SELECT {_COLUMNS} FROM journal_entries WHERE status = 0 AND id > ?"
                    f" AND partition IN ({marks}) ORDER BY id LIMIT ?",
                    (after_id, *partitions, limit),
                )
            return [_entry(row) for row in cursor]

        return await self._read(query)

    async def read_pending_for_key(self, key: str, *, after_id: int, limit: int) -> list[Entry]:
        def query(conn: sqlite3.Connection) -> list[Entry]:
            cursor = conn.execute(
                f"SELECT {_COLUMNS} FROM journal_entries WHERE status = 0 AND key = ?"
                " AND id > ? ORDER BY id LIMIT ?",
                (key, after_id, limit),
            )
            return [_entry(row) for row in cursor]

        return await self._read(query)

    async def get(self, entry_id: int) -> Entry | None:
        def query(conn: sqlite3.Connection) -> Entry | None:
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM journal_entries WHERE id = ?", (entry_id,)
            ).fetchone()
            return None if row is None else _entry(row)

        return await self._read(query)

    async def complete(
        self,
        entry_id: int,
        *,
        state: Mapping[str, bytes | None] | None = None,
        fence: Fence | None = None,
    ) -> bool:
        now = self._now()
        updates = dict(state or {})

        def finish(conn: sqlite3.Connection) -> bool:
            conn.execute(
                "UPDATE journal_entries SET status = 1, finished_at = ? WHERE id = ?",
                (now, entry_id),
            )
            _apply_state(conn, updates, now)
            return True

        return await self._write(finish)

    async def put_state(self, state: Mapping[str, bytes | None]) -> None:
        now = self._now()
        updates = dict(state)
        await self._write(lambda conn: _apply_state(conn, updates, now))

    async def get_state(self, key: str) -> bytes | None:
        # Coalesced: thread actors activated together (a backlog spread over many threads)
        # each read their state first; every read asked while the reader is busy is answered
        # by the next query, for all of them, instead of one worker-thread hop each.
        while (batch := self._state_read) is not None:
            batch.keys.add(key)
            await batch.done.wait()
            if batch.values is not None:
                return batch.values.get(key)
            if batch.error is not None:
                raise JournalUnavailable(batch.error)
            # Its reader was cancelled before it read: join (or start) the next one.
        batch = self._state_read = _StateRead(key)
        try:
            async with self._read_limiter:
                self._state_read = None  # joining it from here on would be too late
                conn = self._reader
                if conn is None:
                    raise JournalUnavailable("the journal is not running")
                try:
                    batch.values = await trio.to_thread.run_sync(_read_states, conn, [*batch.keys])
                except sqlite3.Error as exc:
                    batch.error = f"SQLite read failed: {exc}"
                    raise JournalUnavailable(batch.error) from exc
        except JournalUnavailable as exc:
            batch.error = batch.error or str(exc)
            raise
        finally:
            if self._state_read is batch:
                self._state_read = None
            batch.done.set()
        return batch.values.get(key)

    async def bury(self, entry_id: int, error: str, *, fence: Fence | None = None) -> bool:
        now = self._now()

        def mark(conn: sqlite3.Connection) -> bool:
            conn.execute(
                "UPDATE journal_entries SET status = 2, last_error = ?, finished_at = ?"
                " WHERE id = ?",
                (error, now, entry_id),
            )
            return True

        return await self._write(mark)

    async def dead_letters(self, *, limit: int = 100) -> list[DeadLetter]:
        def query(conn: sqlite3.Connection) -> list[DeadLetter]:
            cursor = conn.execute(
                f"SELECT {_COLUMNS}, last_error, finished_at FROM journal_entries"
                " WHERE status = 2 ORDER BY id LIMIT ?",
                (limit,),
            )
            return [DeadLetter(_entry(row), row[7] or "", row[8]) for row in cursor]

        return await self._read(query)

    async def replay(self, entry_ids: Sequence[int] | None = None) -> list[Entry]:
        ids = None if entry_ids is None else list(entry_ids)

        def revive(conn: sqlite3.Connection) -> list[Entry]:
            if ids is None:
                cursor = conn.execute(
                    "UPDATE journal_entries SET status = 0, last_error = NULL, finished_at = NULL"
                    f" WHERE status = 2 RETURNING {_COLUMNS}"
                )
            else:
                marks = ",".join("?" * len(ids))
                cursor = conn.execute(
                    "UPDATE journal_entries SET status = 0, last_error = NULL, finished_at = NULL"
                    f" WHERE status = 2 AND id IN ({marks}) RETURNING {_COLUMNS}",
                    ids,
                )
            return sorted((_entry(row) for row in cursor), key=lambda e: e.id)

        if ids == []:
            return []
        return await self._write(revive)

    async def statistics(self) -> JournalStatistics:
        def query(conn: sqlite3.Connection) -> JournalStatistics:
            # The count reads the pending index only. The oldest is the first pending entry by
            # id (entries are stamped as they are numbered): min(created_at) read every pending
            # row, 3.8 s for a million on the one reader connection, every 5 s.
            (pending,) = conn.execute(
                "SELECT count(*) FROM journal_entries WHERE status = 0"
            ).fetchone()
            first = conn.execute(
                "SELECT created_at FROM journal_entries WHERE status = 0 ORDER BY id LIMIT 1"
            ).fetchone()
            oldest = None if first is None else first[0]
            (dead,) = conn.execute(
                "SELECT count(*) FROM journal_entries WHERE status = 2"
            ).fetchone()
            return JournalStatistics(pending=pending, oldest_pending_created_at=oldest, dead=dead)

        return await self._read(query)

    def lock(self, name: str) -> AbstractAsyncContextManager[None]:
        """One process owns a SQLite journal, so a lock within the process is enough."""
        return self._locks.hold(name)

    async def prune(self, *, done_before: float) -> int:
        return await self._prune(
            "DELETE FROM journal_entries WHERE status = 1 AND finished_at < ?", (done_before,)
        )

    # --- operator tools -----------------------------------------------------------------------

    async def dead_letter(self, entry_id: int) -> DeadLetter | None:
        def query(conn: sqlite3.Connection) -> DeadLetter | None:
            row = conn.execute(
                f"SELECT {_COLUMNS}, last_error, finished_at FROM journal_entries"
                " WHERE status = 2 AND id = ?",
                (entry_id,),
            ).fetchone()
            return None if row is None else DeadLetter(_entry(row), row[7] or "", row[8])

        return await self._read(query)

    async def dead_letters_for_key(self, key: str, *, limit: int = 100) -> list[DeadLetter]:
        def query(conn: sqlite3.Connection) -> list[DeadLetter]:
            cursor = conn.execute(
                f"SELECT {_COLUMNS}, last_error, finished_at FROM journal_entries"
                " WHERE status = 2 AND key = ? ORDER BY id LIMIT ?",
                (key, limit),
            )
            return [DeadLetter(_entry(row), row[7] or "", row[8]) for row in cursor]

        return await self._read(query)

    async def find_state(
        self, prefix: str, *, value: bytes | None = None, after: str = "", limit: int = 1000
    ) -> list[tuple[str, bytes]]:
        upper = _prefix_upper_bound(prefix)

        def query(conn: sqlite3.Connection) -> list[tuple[str, bytes]]:
            # Keys compare as UTF-8 bytes (BINARY), i.e. in code-point order; the range lets
            # the primary key find the prefix, substr() is the test itself.
            cursor = conn.execute(
                "SELECT key, value FROM journal_state WHERE key >= ? AND key > ?"
                " AND (? IS NULL OR key < ?) AND substr(key, 1, ?) = ?"
                " AND (? IS NULL OR value = ?) ORDER BY key LIMIT ?",
                (prefix, after, upper, upper, len(prefix), prefix, value, value, limit),
            )
            return [(row[0], bytes(row[1])) for row in cursor]

        return await self._read(query)

    async def erase(self, key: str, *, state_keys: Collection[str] = ()) -> Erased:
        names = list(dict.fromkeys(state_keys))

        def delete(conn: sqlite3.Connection) -> Erased:
            counts = dict.fromkeys(EntryStatus, 0)
            for (status,) in conn.execute(
                "DELETE FROM journal_entries WHERE key = ? RETURNING status", (key,)
            ).fetchall():
                counts[EntryStatus(status)] += 1
            state = 0
            for name in names:
                state += conn.execute("DELETE FROM journal_state WHERE key = ?", (name,)).rowcount
            return Erased(
                pending=counts[EntryStatus.PENDING],
                done=counts[EntryStatus.DONE],
                dead=counts[EntryStatus.DEAD],
                state=state,
            )

        return await self._write(delete)

    async def prune_dead(self, *, dead_before: float) -> int:
        return await self._prune(
            "DELETE FROM journal_entries WHERE status = 2 AND finished_at < ?", (dead_before,)
        )

    async def prune_state(self, *, prefix: str, updated_before: float) -> int:
        if not prefix:
            raise ValueError("prune_state needs a non-empty prefix")
        upper = _prefix_upper_bound(prefix)
        # The key range lets the primary key find the prefix; substr() is the test itself.
        return await self._prune(
            "DELETE FROM journal_state WHERE key >= ? AND (? IS NULL OR key < ?)"
            " AND substr(key, 1, ?) = ? AND updated_at < ?",
            (prefix, upper, upper, len(prefix), prefix, updated_before),
        )

    async def _prune(self, sql: str, params: tuple[object, ...]) -> int:
        """Run one DELETE statement; returns how many rows went."""
        return await self._write(lambda conn: conn.execute(sql, params).rowcount)


def _prefix_upper_bound(prefix: str) -> str | None:
    """The least string above every string starting with ``prefix`` (code-point order), or
    None when there is none to name (an empty prefix, or one ending in the last code point)."""
    if not prefix or ord(prefix[-1]) >= 0x10FFFF:
        return None
    following = ord(prefix[-1]) + 1
    if 0xD800 <= following <= 0xDFFF:  # no surrogates in stored text: skip past them
        following = 0xE000
    return prefix[:-1] + chr(following)


def _apply_state(conn: sqlite3.Connection, updates: Mapping[str, bytes | None], now: float) -> None:
    for key, value in updates.items():
        if value is None:
            conn.execute("DELETE FROM journal_state WHERE key = ?", (key,))
        else:
            conn.execute(
                "INSERT INTO journal_state (key, value, updated_at) VALUES (?, ?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value,"
                " updated_at = excluded.updated_at",
                (key, value, now),
            )


@asynccontextmanager
async def open_sqlite_journal(
    path: str | Path, *, partitions: int = DEFAULT_PARTITIONS
) -> AsyncIterator[SQLiteJournal]:
    """Run a :class:`SQLiteJournal` for the duration of an ``async with`` block."""
    journal = SQLiteJournal(path, partitions=partitions)
    async with trio.open_nursery() as nursery:
        await nursery.start(journal.run)
        try:
            yield journal
        finally:
            nursery.cancel_scope.cancel()
