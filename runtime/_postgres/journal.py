"""The PostgreSQL journal backend: asyncpg, bridged into Trio with trio-asyncio.

:class:`PostgresJournal` is assembled from :mod:`.bridge` (the trio-asyncio loop, the pools and
how a call crosses over; :mod:`.aio` has the asyncio side's types and failures), the query
classes :mod:`.entries` (entries, state, dead letters), :mod:`.media` and :mod:`.leases`
(cluster mode), and this module (appends, locks, hints). Appends are group-committed
(:mod:`.appends`, with :mod:`runtime._group_commit`); :mod:`.notify` turns LISTEN/NOTIFY into
wake-up hints; :mod:`.locks` holds the advisory locks; :mod:`.schema` sets up and migrates the
tables.

Append order is commit order (see :mod:`.appends`). Cluster mode: partitions are owned through
leases (:meth:`PostgresJournal.acquire_lease`), each tenure with a new epoch. ``complete``/``bury``
carrying a :class:`Fence` check the lease row in the same transaction (``FOR SHARE``, so a
takeover waits for the write to commit) and write nothing when it has moved on. Appends send
``NOTIFY threadline_journal, '<partition>'``; a listener connection turns those into wake-up
hints (:meth:`PostgresJournal.appended_hint`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Sequence
from contextlib import AbstractAsyncContextManager, AbstractContextManager, asynccontextmanager

import trio

from .._errors import JournalError, JournalUnavailable
from .._journal import DEFAULT_PARTITIONS, Appended, NewEntry, partition_of
from .appends import AppendOp
from .entries import PostgresEntries
from .leases import PostgresLeases
from .media import PostgresMedia
from .notify import AppendedHint

__all__ = ["PostgresJournal", "open_postgres_journal"]


class PostgresJournal(PostgresEntries, PostgresMedia, PostgresLeases):
    """A :class:`Journal` in a PostgreSQL database. Start with ``await nursery.start(journal.run)``.

    Args:
        url: a ``postgresql://`` connection URL.
        partitions: the fixed number of partitions keys hash into; stored with the schema, and
            a journal opened with a different number is refused.
        pool_size: the most connections the pool holds (besides one for LISTEN, one for named
            locks, and up to two for partition leases: a pool saturated
            by deliveries must not hold up the renewals that keep them valid).
        connect_timeout: seconds to wait for a new connection.
        command_timeout: seconds any one statement may take before it fails.
        wall_clock: UNIX time source for ``created_at`` and ``finished_at``.
    """

    # --- the Journal protocol: appends and locks -----------------------------------------------

    async def append(self, entries: Sequence[NewEntry]) -> list[Appended]:
        """See :meth:`Journal.append`. Queued for the group-commit writer: concurrent appends
        share one transaction. Once queued, the caller waits (shielded from cancellation) for
        the commit, bounded by ``command_timeout``."""
        if not entries:
            return []
        if self._loop is None:
            raise JournalUnavailable("the journal is not running")
        now = self._now()
        try:
            op = AppendOp(
                [
                    (e.key, partition_of(e.key, self._partitions), e.dedupe_id, e.payload, now)
                    for e in entries
                ]
            )
        except UnicodeEncodeError as exc:  # a key that cannot be stored either
            raise JournalError(f"a journal key is not UTF-8-encodable: {exc}") from exc
        await self._group.submit(op)
        assert op.result is not None
        return op.result

    def lock(self, name: str) -> AbstractAsyncContextManager[None]:
        """A session advisory lock keyed by a 64-bit hash of ``name``: other processes wait
        for it, and it ends with the session if this process dies.

        All of this process's locks live on one dedicated connection (a session holds any
        number of advisory locks), so holding them costs no pooled connection: the bodies'
        own journal calls and the lease renewals never wait behind lock holders. Waiters of
        this process queue on a local lock first (advisory locks are re-entrant per session);
        the one at the front polls ``pg_try_advisory_lock``, so waiting stays cancellable. If
        the dedicated connection is lost, its locks go with it; the next lock reconnects."""
        return self._advisory.hold(name)

    # --- wake-up hints (LISTEN/NOTIFY) ---------------------------------------------------------

    def appended_hint(
        self, partitions: Collection[int] | None = None
    ) -> AbstractContextManager[AppendedHint]:
        """Watch for appends to ``partitions`` (all when None) by any node, for a dispatcher
        that would otherwise only poll. Make the hint before the first read::

            with journal.appended_hint(mine) as hint:
                while True:
                    entries = await journal.read_pending(after_id=cursor, limit=100, ...)
                    if not entries:
                        with trio.move_on_after(poll_interval):
                            await hint.wait()
                    ...
        """
        return self._notices.hint(partitions)


@asynccontextmanager
async def open_postgres_journal(
    url: str,
    *,
    partitions: int = DEFAULT_PARTITIONS,
    pool_size: int = 10,
    connect_timeout: float = 5.0,
    command_timeout: float = 10.0,
) -> AsyncIterator[PostgresJournal]:
    """Run a :class:`PostgresJournal` for the duration of an ``async with`` block.

    Raises:
        JournalUnavailable: the database cannot be reached at start.
        JournalError: the database holds an incompatible journal.
    """
    journal = PostgresJournal(
        url,
        partitions=partitions,
        pool_size=pool_size,
        connect_timeout=connect_timeout,
        command_timeout=command_timeout,
    )
    failure: JournalError | None = None
    async with trio.open_nursery() as nursery:
        try:
            await nursery.start(journal.run)
        except JournalError as exc:
            failure = exc  # raised below, outside the nursery, not wrapped in a group
        else:
            try:
                yield journal
            finally:
                nursery.cancel_scope.cancel()
    if failure is not None:
        raise failure
