"""The PostgreSQL journal's entries, state and dead letters: the :class:`Journal` protocol
(but ``append``, which :mod:`.appends` group-commits) and the operator tools."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

import asyncpg

from .._journal import DeadLetter, Entry, EntryStatus, Erased, Fence, JournalStatistics
from .aio import Conn, count
from .bridge import PostgresBridge
from .leases import fence_holds

__all__ = ["PostgresEntries"]

_COLUMNS = "id, key, partition, dedupe_id, payload, created_at, status"


def _entry(row: asyncpg.Record) -> Entry:
    return Entry(
        id=row[0],
        key=row[1],
        partition=row[2],
        dedupe_id=row[3],
        payload=row[4],
        created_at=row[5],
        status=EntryStatus(row[6]),
    )


class PostgresEntries(PostgresBridge):
    """The entry, state and dead-letter methods of :class:`PostgresJournal`."""

    async def read_pending(
        self, *, after_id: int, limit: int, partitions: Collection[int] | None = None
    ) -> list[Entry]:
        if partitions is not None and not partitions:
            return []
        wanted = None if partitions is None else list(partitions)

        async def query(conn: Conn) -> list[Entry]:
            if wanted is None:
                rows = await conn.fetch(
                    f"SELECT {_COLUMNS} FROM journal_entries WHERE status = 0 AND id > $1"
                    " ORDER BY id LIMIT $2",
                    after_id,
                    limit,
                )
            else:
                rows = await conn.fetch(
                    f"SELECT {_COLUMNS} FROM journal_entries WHERE status = 0 AND id > $1"
                    " AND partition = ANY($2::int[]) ORDER BY id LIMIT $3",
                    after_id,
                    wanted,
                    limit,
                )
            return [_entry(row) for row in rows]

        return await self._call(query, write=False, what="read")

    async def read_pending_for_key(self, key: str, *, after_id: int, limit: int) -> list[Entry]:
        async def query(conn: Conn) -> list[Entry]:
            rows = await conn.fetch(
                f"SELECT {_COLUMNS} FROM journal_entries WHERE status = 0 AND key = $1"
                " AND id > $2 ORDER BY id LIMIT $3",
                key,
                after_id,
                limit,
            )
            return [_entry(row) for row in rows]

        return await self._call(query, write=False, what="read")

    async def get(self, entry_id: int) -> Entry | None:
        async def query(conn: Conn) -> Entry | None:
            row = await conn.fetchrow(
                f"SELECT {_COLUMNS} FROM journal_entries WHERE id = $1", entry_id
            )
            return None if row is None else _entry(row)

        return await self._call(query, write=False, what="read")

    async def complete(
        self,
        entry_id: int,
        *,
        state: Mapping[str, bytes | None] | None = None,
        fence: Fence | None = None,
    ) -> bool:
        """See :meth:`Journal.complete`. With a ``fence``, the entry must be in the fenced
        partition and the lease row must still name that owner and epoch, checked in the same
        transaction. Expiry alone does not void a fence; only another tenure does."""
        now = self._now()
        updates = dict(state or {})

        async def finish(conn: Conn) -> bool:
            if fence is not None and not await fence_holds(conn, fence, entry_id):
                return False
            await conn.execute(
                "UPDATE journal_entries SET status = 1, finished_at = $2 WHERE id = $1",
                entry_id,
                now,
            )
            await _apply_state(conn, updates, now)
            return True

        return await self._call(finish, write=True, what="complete")

    async def put_state(self, state: Mapping[str, bytes | None]) -> None:
        now = self._now()
        updates = dict(state)

        async def put(conn: Conn) -> None:
            await _apply_state(conn, updates, now)

        await self._call(put, write=True, what="state write")

    async def get_state(self, key: str) -> bytes | None:
        async def query(conn: Conn) -> bytes | None:
            value: bytes | None = await conn.fetchval(
                "SELECT value FROM journal_state WHERE key = $1", key
            )
            return value

        return await self._call(query, write=False, what="read")

    async def bury(self, entry_id: int, error: str, *, fence: Fence | None = None) -> bool:
        """See :meth:`Journal.bury`; ``fence`` as for :meth:`complete`."""
        now = self._now()

        async def mark(conn: Conn) -> bool:
            if fence is not None and not await fence_holds(conn, fence, entry_id):
                return False
            await conn.execute(
                "UPDATE journal_entries SET status = 2, last_error = $2, finished_at = $3"
                " WHERE id = $1",
                entry_id,
                error,
                now,
            )
            return True

        return await self._call(mark, write=True, what="bury")

    async def dead_letters(self, *, limit: int = 100) -> list[DeadLetter]:
        async def query(conn: Conn) -> list[DeadLetter]:
            rows = await conn.fetch(
                f"SELECT {_COLUMNS}, last_error, finished_at FROM journal_entries"
                " WHERE status = 2 ORDER BY id LIMIT $1",
                limit,
            )
            return [DeadLetter(_entry(row), row[7] or "", row[8]) for row in rows]

        return await self._call(query, write=False, what="read")

    async def replay(self, entry_ids: Sequence[int] | None = None) -> list[Entry]:
        ids = None if entry_ids is None else list(entry_ids)
        if ids == []:
            return []

        async def revive(conn: Conn) -> list[Entry]:
            if ids is None:
                rows = await conn.fetch(
                    "UPDATE journal_entries SET status = 0, last_error = NULL, finished_at = NULL"
                    f" WHERE status = 2 RETURNING {_COLUMNS}"
                )
            else:
                rows = await conn.fetch(
                    "UPDATE journal_entries SET status = 0, last_error = NULL, finished_at = NULL"
                    f" WHERE status = 2 AND id = ANY($1::bigint[]) RETURNING {_COLUMNS}",
                    ids,
                )
            return sorted((_entry(row) for row in rows), key=lambda e: e.id)

        return await self._call(revive, write=True, what="replay")

    async def statistics(self) -> JournalStatistics:
        async def query(conn: Conn) -> JournalStatistics:
            # The oldest is the first pending entry by id (entries are stamped as they are
            # numbered): min(created_at) read every pending row of a large backlog.
            pending = await conn.fetchval("SELECT count(*) FROM journal_entries WHERE status = 0")
            oldest = await conn.fetchval(
                "SELECT created_at FROM journal_entries WHERE status = 0 ORDER BY id LIMIT 1"
            )
            dead = await conn.fetchval("SELECT count(*) FROM journal_entries WHERE status = 2")
            return JournalStatistics(pending=pending, oldest_pending_created_at=oldest, dead=dead)

        return await self._call(query, write=False, what="read")

    async def prune(self, *, done_before: float) -> int:
        return await self._prune(
            "DELETE FROM journal_entries WHERE status = 1 AND finished_at < $1", done_before
        )

    async def dead_letter(self, entry_id: int) -> DeadLetter | None:
        async def query(conn: Conn) -> DeadLetter | None:
            row = await conn.fetchrow(
                f"SELECT {_COLUMNS}, last_error, finished_at FROM journal_entries"
                " WHERE status = 2 AND id = $1",
                entry_id,
            )
            return None if row is None else DeadLetter(_entry(row), row[7] or "", row[8])

        return await self._call(query, write=False, what="read")

    async def dead_letters_for_key(self, key: str, *, limit: int = 100) -> list[DeadLetter]:
        async def query(conn: Conn) -> list[DeadLetter]:
            rows = await conn.fetch(
                f"SELECT {_COLUMNS}, last_error, finished_at FROM journal_entries"
                " WHERE status = 2 AND key = $1 ORDER BY id LIMIT $2",
                key,
                limit,
            )
            return [DeadLetter(_entry(row), row[7] or "", row[8]) for row in rows]

        return await self._call(query, write=False, what="read")

    async def find_state(
        self, prefix: str, *, value: bytes | None = None, after: str = "", limit: int = 1000
    ) -> list[tuple[str, bytes]]:
        async def query(conn: Conn) -> list[tuple[str, bytes]]:
            # COLLATE "C": code-point order (UTF-8 bytes), whatever the database's collation.
            rows = await conn.fetch(
                "SELECT key, value FROM journal_state WHERE starts_with(key, $1)"
                ' AND key COLLATE "C" > $2 AND ($3::bytea IS NULL OR value = $3)'
                ' ORDER BY key COLLATE "C" LIMIT $4',
                prefix,
                after,
                value,
                limit,
            )
            return [(row[0], bytes(row[1])) for row in rows]

        return await self._call(query, write=False, what="read")

    async def erase(self, key: str, *, state_keys: Collection[str] = ()) -> Erased:
        names = list(dict.fromkeys(state_keys))

        async def delete(conn: Conn) -> Erased:
            rows = await conn.fetch(
                "WITH gone AS (DELETE FROM journal_entries WHERE key = $1 RETURNING status)"
                " SELECT status, count(*) FROM gone GROUP BY status",
                key,
            )
            counts = {EntryStatus(row[0]): int(row[1]) for row in rows}
            state = 0
            if names:
                gone = await conn.execute(
                    "DELETE FROM journal_state WHERE key = ANY($1::text[])", names
                )
                state = count(gone)
            return Erased(
                pending=counts.get(EntryStatus.PENDING, 0),
                done=counts.get(EntryStatus.DONE, 0),
                dead=counts.get(EntryStatus.DEAD, 0),
                state=state,
            )

        return await self._call(delete, write=True, what="erase")

    async def prune_dead(self, *, dead_before: float) -> int:
        return await self._prune(
            "DELETE FROM journal_entries WHERE status = 2 AND finished_at < $1", dead_before
        )

    async def prune_state(self, *, prefix: str, updated_before: float) -> int:
        if not prefix:
            raise ValueError("prune_state needs a non-empty prefix")
        return await self._prune(
            "DELETE FROM journal_state WHERE starts_with(key, $1) AND updated_at < $2",
            prefix,
            updated_before,
        )

    async def _prune(self, sql: str, *args: object) -> int:
        """Run one DELETE statement; returns how many rows went."""

        async def delete(conn: Conn) -> int:
            return count(await conn.execute(sql, *args))

        return await self._call(delete, write=True, what="prune")


async def _apply_state(conn: Conn, updates: Mapping[str, bytes | None], now: float) -> None:
    for key, value in updates.items():
        if value is None:
            await conn.execute("DELETE FROM journal_state WHERE key = $1", key)
        else:
            await conn.execute(
                "INSERT INTO journal_state (key, value, updated_at) VALUES ($1, $2, $3)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value,"
                " updated_at = excluded.updated_at",
                key,
                value,
                now,
            )
