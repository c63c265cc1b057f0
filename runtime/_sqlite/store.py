"""The SQLite journal's connections and its writer: the base the query classes build on.

Group commit (:mod:`runtime._group_commit`): every write (append, complete, bury, state, replay)
becomes an operation on a queue; one writer task takes everything queued, applies it in a single
transaction on a worker thread (each operation inside its own savepoint, so one failing operation
cannot undo the others) and wakes the callers after the commit. Concurrent webhooks therefore
share one fsync, and a caller is answered only once its write is durable. Reads use a second
connection, which WAL lets run beside the writer.

Whatever an operation raises, its caller is woken with an error and the writer goes on with the
next batch: a SQLite failure is :class:`JournalUnavailable` (transient); a value SQLite cannot
hold (one it cannot bind, say a string with a lone surrogate, or too big) is a plain
:class:`JournalError`, since the same write would fail again.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self, TypeVar

import trio

from .._errors import JournalError, JournalUnavailable
from .._group_commit import GroupCommit, Pending
from .._journal import DEFAULT_PARTITIONS
from .._locks import NamedLocks
from .schema import connect

__all__ = ["SQLiteStore"]

T = TypeVar("T")


class _Op(Pending[T]):
    """One write waiting for the group commit that carries it: a function of the writer's
    connection, run inside the batch's transaction."""

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[[sqlite3.Connection], T]) -> None:
        super().__init__()
        self.fn = fn


class SQLiteStore:
    """The connections of a SQLite journal, its writer, and :meth:`_read` / :meth:`_write` for
    the query classes. Start with ``await nursery.start(journal.run)``."""

    def __init__(
        self,
        path: str | Path,
        *,
        partitions: int = DEFAULT_PARTITIONS,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._path = str(path)
        self._partitions = partitions
        self._now = wall_clock
        self._group: GroupCommit[_Op[Any]] = GroupCommit()
        self._writer: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        self._read_limiter = trio.CapacityLimiter(1)
        self._locks = NamedLocks()

    @property
    def partitions(self) -> int:
        return self._partitions

    @property
    def commits(self) -> int:
        """Transactions committed (each carries one or more writes)."""
        return self._group.commits

    @property
    def writes(self) -> int:
        """Writes committed."""
        return self._group.writes

    # --- life cycle ---------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[Self] = trio.TASK_STATUS_IGNORED) -> None:
        """Open the database and run the group-commit writer until cancelled."""
        try:
            self._writer = await trio.to_thread.run_sync(self._connect, False)
            self._reader = await trio.to_thread.run_sync(self._connect, True)
        except sqlite3.Error as exc:
            raise JournalUnavailable(f"cannot open SQLite journal {self._path}: {exc}") from exc
        try:
            task_status.started(self)
            await self._group.run(self._commit, lambda exc: write_error(exc, "commit"))
        finally:
            with trio.CancelScope(shield=True):
                self._group.fail_queued()
                for conn in (self._writer, self._reader):
                    await trio.to_thread.run_sync(conn.close)
                self._writer = self._reader = None

    def _connect(self, read_only: bool) -> sqlite3.Connection:
        return connect(self._path, self._partitions, read_only=read_only)

    # --- the group-commit writer --------------------------------------------------------------

    async def _commit(self, batch: list[_Op[Any]]) -> bool:
        """Apply one batch in one transaction; a failed commit fails every write of it."""
        try:
            await trio.to_thread.run_sync(self._apply, batch)
        except Exception as exc:  # noqa: BLE001 - any failure is answered to its callers
            failure = write_error(exc, "commit")
            for op in batch:
                op.fail(failure)
            return False
        return True

    def _apply(self, batch: list[_Op[Any]]) -> None:
        conn = self._writer
        assert conn is not None
        conn.execute("BEGIN IMMEDIATE")
        try:
            for op in batch:
                conn.execute("SAVEPOINT op")
                try:
                    op.succeed(op.fn(conn))
                except Exception as exc:  # noqa: BLE001 - fails this write alone
                    conn.execute("ROLLBACK TO op")
                    op.fail(write_error(exc, "write"))
                conn.execute("RELEASE op")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._writer is None:
            raise JournalUnavailable("the journal is not running")
        op: _Op[T] = _Op(fn)
        await self._group.submit(op)
        return op.result  # type: ignore[return-value]  # set by _apply when error is None

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._reader
        if conn is None:
            raise JournalUnavailable("the journal is not running")
        try:
            return await trio.to_thread.run_sync(fn, conn, limiter=self._read_limiter)
        except sqlite3.Error as exc:
            raise JournalUnavailable(f"SQLite read failed: {exc}") from exc


def write_error(exc: Exception, what: str) -> JournalError:
    """The error a caller gets for a failed write: transient for SQLite's own failures, plain
    (not retried) for a value SQLite cannot hold (binding, encoding, size)."""
    if isinstance(exc, sqlite3.Error) and not isinstance(exc, sqlite3.DataError):
        return JournalUnavailable(f"SQLite {what} failed: {exc}")
    error = JournalError(f"SQLite cannot store this {what}: {type(exc).__name__}: {exc}"[:500])
    error.__cause__ = exc
    return error
