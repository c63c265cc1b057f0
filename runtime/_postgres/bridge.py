"""The bridge from Trio to asyncpg: what a PostgreSQL journal holds open, and how a call
crosses over. The base the query classes (:mod:`.entries`, :mod:`.media`, :mod:`.leases`)
build on.

asyncpg speaks only asyncio. :meth:`PostgresBridge.run` opens a trio-asyncio loop and keeps it;
every call hands its asyncpg coroutine to that loop (``loop.run_aio_coroutine``, in
:meth:`PostgresBridge._call`), so any Trio task may call the journal (an HTTP handler in
Hypercorn's tasks, an actor) without running inside the loop's context. This subpackage is the
only place asyncio appears. trio-asyncio runs one asyncio callback per Trio scheduling round, so
every round trip is dearer than under plain asyncio; hence appends are group-committed by a
writer task (:mod:`.appends`).

What it holds: the loop; a pool for everything and a small one for the partition leases (a pool
saturated by deliveries must not hold up the renewals that keep them valid); the appends' group
commit; the LISTEN connection (:mod:`.notify`); the advisory locks' connection (:mod:`.locks`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Self, TypeVar

import asyncpg
import trio

from .._errors import JournalError, JournalUnavailable
from .._group_commit import GroupCommit
from .._journal import DEFAULT_PARTITIONS
from .aio import FAILURES, AioLoop, Conn, log_loop_error
from .appends import MAX_BATCH, AppendOp, append_error, commit
from .liveness import NodeSession
from .locks import AdvisoryLocks
from .notify import Notices
from .schema import migrate

__all__ = ["PostgresBridge"]

T = TypeVar("T")

_CONTROL_POOL_SIZE = 2  # connections for partition leases, apart from deliveries


async def _keep_session(conn: asyncpg.Connection[asyncpg.Record]) -> None:
    """A pooled connection's release sends nothing. asyncpg's default sends a reset query (unlock
    all advisory locks, close cursors, UNLISTEN, RESET ALL): a round trip on every release, for
    session state no pooled call leaves behind: their locks are transaction-level, LISTEN and the
    named locks have connections of their own, and nothing sets session variables or keeps
    cursors. (asyncpg still rolls back a transaction left open.)"""


class PostgresBridge:
    """The trio-asyncio loop and the connections of a PostgreSQL journal, and :meth:`_call` for
    the query classes. Its arguments are described on :class:`PostgresJournal`."""

    def __init__(
        self,
        url: str,
        *,
        partitions: int = DEFAULT_PARTITIONS,
        pool_size: int = 10,
        connect_timeout: float = 5.0,
        command_timeout: float = 10.0,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._url = url
        self._partitions = partitions
        self._pool_size = pool_size
        self._connect_timeout = connect_timeout
        self._command_timeout = command_timeout
        self._now = wall_clock
        self._loop: AioLoop | None = None
        self._pool: asyncpg.Pool[asyncpg.Record] | None = None
        self._control_pool: asyncpg.Pool[asyncpg.Record] | None = None
        self._group: GroupCommit[AppendOp] = GroupCommit(max_batch=MAX_BATCH)
        self._notices = Notices(
            url, connect_timeout=connect_timeout, command_timeout=command_timeout
        )
        self._advisory = AdvisoryLocks(
            url,
            self._running_loop,
            connect_timeout=connect_timeout,
            command_timeout=command_timeout,
        )
        self._session = NodeSession(
            url,
            self._running_loop,
            connect_timeout=connect_timeout,
            command_timeout=command_timeout,
        )

    @property
    def partitions(self) -> int:
        return self._partitions

    @property
    def commits(self) -> int:
        """Append transactions committed (each carries one or more appends)."""
        return self._group.commits

    # --- life cycle ---------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[Self] = trio.TASK_STATUS_IGNORED) -> None:
        """Open the pool, create or check the schema, and serve calls until cancelled.

        Raises:
            JournalUnavailable: the database cannot be reached at start.
            JournalError: the database holds a journal of another partition count or a newer
                schema version.
        """
        # Imported here, not at module level: trio-asyncio patches asyncio's loop policy when
        # imported, which a process that never opens a PostgreSQL journal need not undergo.
        import trio_asyncio  # type: ignore[import-untyped]  # ships no type information

        failure: JournalError | None = None
        loop: AioLoop
        async with trio_asyncio.open_loop() as loop:
            loop.set_exception_handler(log_loop_error)
            try:
                pool, control = await loop.run_aio_coroutine(self._open())
            except JournalError as exc:
                # Raised outside the loop's block, which would wrap it in an exception group.
                failure = exc
            else:
                try:
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(
                            self._group.run,
                            partial(commit, loop, pool, self._notices.wake),
                            append_error,
                        )
                        await nursery.start(self._notices.run, loop)
                        self._loop, self._pool, self._control_pool = loop, pool, control
                        task_status.started(self)
                        await trio.sleep_forever()
                finally:
                    self._loop = self._pool = self._control_pool = None
                    self._group.fail_queued()
                    # Shielded with its own deadline: let in-flight calls finish, then close.
                    with trio.CancelScope(shield=True):
                        with trio.move_on_after(self._command_timeout):
                            await loop.run_aio_coroutine(pool.close())
                            await loop.run_aio_coroutine(control.close())
                        pool.terminate()
                        control.terminate()
                        self._advisory.close()
                        self._session.close()
        if failure is not None:
            raise failure

    async def _open(self) -> tuple[asyncpg.Pool[asyncpg.Record], asyncpg.Pool[asyncpg.Record]]:
        """The pool for everything, then (once the schema is there) the leases' own pool."""
        try:
            pool = await self._open_pool(self._pool_size)
        except FAILURES as exc:
            raise JournalUnavailable(f"cannot open PostgreSQL journal: {exc}") from exc
        ready = False
        try:
            await migrate(pool, self._partitions)
            control = await self._open_pool(_CONTROL_POOL_SIZE)
            ready = True
        except FAILURES as exc:
            raise JournalUnavailable(f"cannot set up PostgreSQL journal: {exc}") from exc
        finally:
            if not ready:
                pool.terminate()
        return pool, control

    async def _open_pool(self, size: int) -> asyncpg.Pool[asyncpg.Record]:
        return await asyncpg.create_pool(
            self._url,
            min_size=1,
            max_size=size,
            timeout=self._connect_timeout,
            command_timeout=self._command_timeout,
            reset=_keep_session,
        )

    def _running_loop(self) -> AioLoop:
        """The loop, or :class:`JournalUnavailable` when the journal is not running."""
        loop = self._loop
        if loop is None or loop.is_closed():
            raise JournalUnavailable("the journal is not running")
        return loop

    # --- the bridge ---------------------------------------------------------------------------

    async def _call(
        self,
        fn: Callable[[Conn], Awaitable[T]],
        *,
        write: bool,
        what: str,
        transaction: bool = True,
        control: bool = False,
    ) -> T:
        """Run ``fn`` on a pooled connection inside one transaction (without one: a single
        statement, one round trip fewer each side), from any Trio task. ``control`` calls (the
        partition leases) use their own small pool, so they never queue behind deliveries."""
        loop, pool = self._loop, self._control_pool if control else self._pool
        if loop is None or pool is None or loop.is_closed():
            raise JournalUnavailable("the journal is not running")

        async def in_transaction() -> T:
            async with pool.acquire() as conn:
                if not transaction:
                    return await fn(conn)
                async with conn.transaction():
                    return await fn(conn)

        try:
            # Writes are shielded: once sent, the caller must learn whether they committed;
            # command_timeout bounds the wait.
            with trio.CancelScope(shield=write):
                result = await loop.run_aio_coroutine(in_transaction())
        except FAILURES as exc:
            raise JournalUnavailable(f"PostgreSQL {what} failed: {exc}") from exc
        except asyncio.CancelledError as exc:
            # asyncio's, not Trio's: the loop is shutting down under us (a Trio cancellation
            # of this caller arrives as trio.Cancelled and is not caught here).
            raise JournalUnavailable("the journal is shutting down") from exc
        return result
