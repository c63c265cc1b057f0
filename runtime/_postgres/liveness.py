"""Cluster mode: the session that proves a node alive (the lease writes' own connection).

Every lease write (acquire, renew, release) runs on one dedicated connection, which also holds
a session advisory lock per owner name it wrote for (:data:`NODE_LOCK_CLASS`,
``hashtext(owner)``). That lock ends with the session: at once when the process dies (its
socket closes), after TCP keepalive / ``tcp_user_timeout`` when its host or network does. Other
nodes then take its partitions over without waiting for the leases to expire
(:meth:`PostgresLeases.lease_owners`, ``acquire_lease(..., dead=...)``).

The keepalive timeouts are set to the lease term: the server cannot drop a session for silence
sooner than a lease term after the last renewal it received, which is no sooner than the
leases it renewed expire; so a node cut off from the database keeps its validity (two thirds of
a term after asking) clear of an early takeover, as with expiry. Being the leases' own
connection, renewals never queue behind deliveries, the pool or the group commit.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg
import trio

from .._errors import JournalUnavailable
from .aio import FAILURES, AioLoop, SessionConn

__all__ = ["NODE_LOCK_CLASS", "NodeSession", "session_held_sql"]

T = TypeVar("T")

NODE_LOCK_CLASS = 0x544C  # first key of the two-key advisory locks naming live lease owners


def session_held_sql(owner: str) -> str:
    """SQL: whether a session holds the liveness lock of the owner name in column ``owner``."""
    return (
        "EXISTS (SELECT 1 FROM pg_locks k WHERE k.locktype = 'advisory' AND k.granted"
        f" AND k.classid = {NODE_LOCK_CLASS} AND k.objid = hashtext({owner})::oid"
        " AND k.objsubid = 2"
        " AND k.database = (SELECT oid FROM pg_database WHERE datname = current_database()))"
    )


class NodeSession:
    """The dedicated lease connection and the liveness locks it holds.

    Args:
        url: the database's connection URL.
        running_loop: the journal's trio-asyncio loop, or raises :class:`JournalUnavailable`.
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
        self._conn: asyncpg.Connection[asyncpg.Record] | None = None
        self._held: set[str] = set()  # owner names whose lock this session holds
        self._mutex = trio.Lock()
        self._ttl = 15.0  # the lease term the keepalives follow (the last one asked for)
        self.sessions = 0
        """Sessions opened so far (a new one means the previous one's locks were lost)."""

    def close(self) -> None:
        """End the session (and so every liveness lock it holds)."""
        if self._conn is not None:
            self._conn.terminate()
            self._conn = None
        self._held.clear()

    def holds(self, owner: str) -> bool:
        """Whether this session is up and holds ``owner``'s liveness lock, as far as this
        process knows (a connection the server dropped shows as closed once its socket does)."""
        return self._conn is not None and not self._conn.is_closed() and owner in self._held

    async def run(self, owner: str, ttl: float, fn: Callable[[SessionConn], Awaitable[T]]) -> T:
        """Run ``fn`` on the session after making sure it holds ``owner``'s lock (shielded:
        a lease write's answer must be read), for leases of ``ttl`` seconds (0: not a lease
        term). Raises :class:`JournalUnavailable` on failure."""
        loop = self._running_loop()
        async with self._mutex:
            try:
                with trio.CancelScope(shield=True):
                    result = await loop.run_aio_coroutine(self._run(owner, ttl, fn))
            except FAILURES as exc:
                self.close()
                raise JournalUnavailable(f"PostgreSQL lease session failed: {exc}") from exc
            return result

    async def _run(
        self,
        owner: str,
        ttl: float,
        fn: Callable[[SessionConn], Awaitable[T]],
    ) -> T:
        if ttl > 0:
            self._ttl = ttl
        conn = self._conn
        if conn is None or conn.is_closed():
            self._held.clear()
            # Silence is noticed after a lease term, not sooner (see the module docstring).
            quiet = max(1, math.ceil(self._ttl))
            conn = await asyncpg.connect(
                self._url,
                timeout=self._connect_timeout,
                command_timeout=self._command_timeout,
                server_settings={
                    "tcp_keepalives_idle": str(quiet),
                    "tcp_keepalives_interval": "1",
                    "tcp_keepalives_count": "3",
                    "tcp_user_timeout": str(quiet * 1000),
                    "application_name": "threadline leases",
                },
            )
            self._conn = conn
            self.sessions += 1
        if owner not in self._held and await conn.fetchval(
            "SELECT pg_try_advisory_lock($1, hashtext($2))", NODE_LOCK_CLASS, owner
        ):
            # Not got: another session holds the name (a previous incarnation of this node
            # that is still alive); asked again at the next write.
            self._held.add(owner)
        return await fn(conn)
