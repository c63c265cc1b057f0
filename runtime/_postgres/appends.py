"""The PostgreSQL journal's appends: the batch insert, and the ``commit`` its group commit runs.

Append order is commit order: every append transaction first takes one transaction-level
advisory lock, so a sequence id is drawn only after the previous append is visible, and a reader
walking ``read_pending(after_id=cursor)`` never later finds a pending entry at or below its
cursor. That holds across nodes too, since the lock lives in the database. (Replayed dead letters
keep their old ids; whoever replays hands them on.) Each append transaction sends
``NOTIFY threadline_journal, '<partition>'`` for the partitions it added to (:mod:`.notify`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeAlias

import asyncpg

from .._errors import JournalError, JournalUnavailable
from .._group_commit import Pending
from .._journal import Appended
from .aio import AioLoop, is_permanent
from .notify import NOTIFY_CHANNEL

__all__ = ["MAX_BATCH", "AppendOp", "Row", "append_error", "commit"]

MAX_BATCH = 500  # appends per group commit
# Advisory lock key (per database) that orders appends; schema.py has the schema set-up's.
_APPEND_LOCK = 0x7468_726C_0000_0002

_INSERT = (
    "INSERT INTO journal_entries (key, partition, dedupe_id, payload, created_at)"
    " SELECT k, p, d, b, c"
    " FROM unnest($1::text[], $2::int[], $3::text[], $4::bytea[], $5::float8[])"
    " WITH ORDINALITY AS t (k, p, d, b, c, n) ORDER BY n"
    " ON CONFLICT (dedupe_id) DO NOTHING RETURNING id, dedupe_id"
)

Row: TypeAlias = tuple[str, int, str, bytes, float]
"""One entry to insert: key, partition, dedupe id, payload, created at."""


class AppendOp(Pending[list[Appended]]):
    """One append (one caller's entries) waiting for the group commit that carries it."""

    __slots__ = ("rows",)

    def __init__(self, rows: list[Row]) -> None:
        super().__init__()
        self.rows = rows


def append_error(exc: Exception) -> JournalError:
    """What the caller of a failed append gets: :class:`JournalUnavailable` (transient, worth a
    retry) unless the failure is permanent (:func:`is_permanent`)."""
    error = (
        JournalError(f"PostgreSQL cannot store this append: {type(exc).__name__}: {exc}"[:500])
        if is_permanent(exc)
        else JournalUnavailable(f"PostgreSQL append failed: {exc}")
    )
    error.__cause__ = exc
    return error


async def commit(
    loop: AioLoop,
    pool: asyncpg.Pool[asyncpg.Record],
    wake: Callable[[int], None],
    batch: list[AppendOp],
) -> bool:
    """Insert one batch of appends in one transaction and answer each of them; then ``wake``
    the local consumers of the partitions appended to. Returns True: the batch counts in the
    journal's ``commits`` (answered failures included, as it always has)."""
    rows = [row for op in batch for row in op.rows]
    try:
        results = await loop.run_aio_coroutine(_insert(pool, rows))
    except asyncio.CancelledError as exc:  # asyncio's: the loop is shutting down under us
        for op in batch:
            error = JournalUnavailable("the journal is shutting down")
            error.__cause__ = exc
            op.fail(error)
        return True
    except Exception as exc:  # noqa: BLE001 - any failure is answered to its callers
        if len(batch) > 1 and is_permanent(exc):
            # One caller's bad value (say a NUL in a key) must not fail the others: retry
            # each alone, as SQLite's per-write savepoints do.
            for op in batch:
                await commit(loop, pool, wake, [op])
            return True
        for op in batch:
            op.fail(append_error(exc))
        return True
    for op in batch:
        answer, results = results[: len(op.rows)], results[len(op.rows) :]
        op.succeed(answer)
    # Local consumers need not wait for the NOTIFY to come back.
    for partition in {row[1] for row in rows}:
        wake(partition)
    return True


async def _insert(pool: asyncpg.Pool[asyncpg.Record], rows: list[Row]) -> list[Appended]:
    keys, parts, dedupes, payloads, created = (list(column) for column in zip(*rows, strict=True))
    async with pool.acquire() as conn, conn.transaction():
        # Ids are drawn under the lock, and the lock is released only once the commit is
        # visible, so ids become visible in id order (across nodes as well).
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _APPEND_LOCK)
        inserted = await conn.fetch(_INSERT, keys, parts, dedupes, payloads, created)
        fresh: dict[str, int] = {row[1]: row[0] for row in inserted}
        missing = [d for d in dedupes if d not in fresh]
        old: dict[str, int] = {}
        if missing:
            found = await conn.fetch(
                "SELECT dedupe_id, id FROM journal_entries WHERE dedupe_id = ANY($1)", missing
            )
            old = {row[0]: row[1] for row in found}
        if fresh:
            touched = sorted({p for p, d in zip(parts, dedupes, strict=True) if d in fresh})
            await conn.execute(
                "SELECT pg_notify($1, p::text) FROM unnest($2::int[]) AS p",
                NOTIFY_CHANNEL,
                touched,
            )
    out: list[Appended] = []
    for dedupe in dedupes:
        if dedupe in fresh:
            # Of several entries with one dedupe id in a batch, the first is the new one.
            out.append(Appended(fresh.pop(dedupe), duplicate=False))
            old[dedupe] = out[-1].id
        else:
            out.append(Appended(old[dedupe], duplicate=True))
    return out
