"""Named locks across processes: PostgreSQL session advisory locks, all on one dedicated
connection (``Journal.lock`` of :class:`PostgresJournal`)."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import asyncpg
import trio

from .._errors import JournalUnavailable
from .._locks import NamedLocks
from .aio import FAILURES, AioLoop

__all__ = ["AdvisoryLocks"]


class AdvisoryLocks:
    """This process's advisory locks and their connection (opened on first use).

    Args:
        url: the database's connection URL.
        running_loop: the journal's trio-asyncio loop, or raises :class:`JournalUnavailable`
            when the journal is not running.
    """

    def __init__(
        self,
        url: str,
        running_loop: Callable[[], AioLoop],
        *,
        connect_timeout: float,
        command_timeout: float,
    ) -> None:
        self._url = url
        self._running_loop = running_loop
        self._connect_timeout = connect_timeout
        self._command_timeout = command_timeout
        self._locks = NamedLocks()
        self._lock_conn: asyncpg.Connection[asyncpg.Record] | None = None
        self._lock_conn_mutex = trio.Lock()

    def close(self) -> None:
        """End the lock connection (and so every lock it holds)."""
        if self._lock_conn is not None:
            self._lock_conn.terminate()
            self._lock_conn = None

    @asynccontextmanager
    async def hold(self, name: str) -> AsyncIterator[None]:
        """Hold the advisory lock of ``name`` (see :meth:`PostgresJournal.lock`): a local lock
        first, then ``pg_try_advisory_lock`` polled on the lock connection."""
        digest = hashlib.blake2b(name.encode(), digest_size=8).digest()
        key = int.from_bytes(digest, "big", signed=True)
        async with self._locks.hold(name):
            delay = 0.005
            while not await self._lock_statement("SELECT pg_try_advisory_lock($1)", key):
                await trio.sleep(delay)
                delay = min(delay * 2, 0.1)
            try:
                yield
            finally:
                unlocked = False
                with (
                    trio.CancelScope(shield=True),
                    trio.move_on_after(self._command_timeout),
                    contextlib.suppress(JournalUnavailable),  # the session is gone, and its locks
                ):
                    await self._lock_statement("SELECT pg_advisory_unlock($1)", key)
                    unlocked = True
                if not unlocked and self._lock_conn is not None:
                    # Never leave a lock held on a live session: ending it releases the lock
                    # (and this process's others: their holders go on unaware, a rare race).
                    self._lock_conn.terminate()
                    self._lock_conn = None

    async def _lock_statement(self, sql: str, key: int) -> bool:
        """Run one advisory-lock statement on the dedicated lock connection."""
        loop = self._running_loop()
        async with self._lock_conn_mutex:
            try:
                if self._lock_conn is None or self._lock_conn.is_closed():
                    with trio.CancelScope(shield=True):
                        fresh: asyncpg.Connection[asyncpg.Record] = await loop.run_aio_coroutine(
                            asyncpg.connect(
                                self._url,
                                timeout=self._connect_timeout,
                                command_timeout=self._command_timeout,
                            )
                        )
                    self._lock_conn = fresh
                conn = self._lock_conn
                with trio.CancelScope(shield=True):  # an answer in flight must be read
                    value = await loop.run_aio_coroutine(conn.fetchval(sql, key))
                return bool(value)
            except FAILURES as exc:
                if self._lock_conn is not None:
                    self._lock_conn.terminate()
                    self._lock_conn = None
                raise JournalUnavailable(f"PostgreSQL lock failed: {exc}") from exc
