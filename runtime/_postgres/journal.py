"""The PostgreSQL journal backend: asyncpg, bridged into Trio with trio-asyncio.

asyncpg speaks only asyncio. :meth:`PostgresJournal.run` opens a trio-asyncio loop and keeps it;
every call hands its asyncpg coroutine to that loop (``loop.run_aio_coroutine``), so any Trio task
may call the journal (an HTTP handler in Hypercorn's tasks, an actor) without running inside the
loop's context. This module is the only place asyncio appears. trio-asyncio runs one asyncio
callback per Trio scheduling round, so every round trip is dearer than under plain asyncio; hence
appends are group-committed (many callers, one transaction, a few round trips) by a writer task.

Append order is commit order: every append transaction first takes one transaction-level
advisory lock, so a sequence id is drawn only after the previous append is visible, and a reader
walking ``read_pending(after_id=cursor)`` never later finds a pending entry at or below its
cursor. That holds across nodes too, since the lock lives in the database. (Replayed dead letters
keep their old ids; whoever replays hands them on.)

Cluster mode: partitions are owned through leases (:meth:`PostgresJournal.acquire_lease`), each
tenure with a new epoch. ``complete``/``bury`` carrying a :class:`Fence` check the lease row in
the same transaction (``FOR SHARE``, so a takeover waits for the write to commit) and write
nothing when it has moved on. Appends send ``NOTIFY threadline_journal, '<partition>'``; a
listener connection turns those into wake-up hints (:meth:`PostgresJournal.appended_hint`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import time
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Collection,
    Coroutine,
    Iterator,
    Mapping,
    Sequence,
)
from contextlib import asynccontextmanager, contextmanager
from typing import Any, Protocol, TypeAlias, TypeVar

import asyncpg
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
    Lease,
    NewEntry,
    StoredMedia,
    partition_of,
)
from .._locks import NamedLocks

__all__ = ["AppendedHint", "PostgresJournal", "open_postgres_journal"]

T = TypeVar("T")
_Conn: TypeAlias = "asyncpg.pool.PoolConnectionProxy[asyncpg.Record]"

logger = logging.getLogger("threadline.runtime.journal")

NOTIFY_CHANNEL = "threadline_journal"
# 1: entries, state, leases, meta, windows. 2: media (journal_media, journal_media_links), added
# in place by _migrate on a journal of version 1.
_SCHEMA_VERSION = 2
# Advisory lock keys (per database): one for schema set-up, one that orders appends.
_SCHEMA_LOCK = 0x7468_726C_0000_0001
_APPEND_LOCK = 0x7468_726C_0000_0002
_MAX_BATCH = 500  # appends per group commit
_CONTROL_POOL_SIZE = 2  # connections for partition leases, apart from deliveries
_LISTEN_RETRY_MIN, _LISTEN_RETRY_MAX = 0.1, 2.0  # seconds between listener reconnects

_SCHEMA = """
CREATE TABLE IF NOT EXISTS journal_entries (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key         TEXT             NOT NULL,
    partition   INTEGER          NOT NULL,
    dedupe_id   TEXT             NOT NULL UNIQUE,
    payload     BYTEA            NOT NULL,
    created_at  DOUBLE PRECISION NOT NULL,
    status      SMALLINT         NOT NULL DEFAULT 0,
    last_error  TEXT,
    finished_at DOUBLE PRECISION
);
CREATE INDEX IF NOT EXISTS journal_pending ON journal_entries (id) WHERE status = 0;
CREATE INDEX IF NOT EXISTS journal_pending_partition
    ON journal_entries (partition, id) WHERE status = 0;
CREATE INDEX IF NOT EXISTS journal_pending_key ON journal_entries (key, id) WHERE status = 0;
CREATE INDEX IF NOT EXISTS journal_dead ON journal_entries (id) WHERE status = 2;
CREATE INDEX IF NOT EXISTS journal_done ON journal_entries (finished_at) WHERE status = 1;
CREATE TABLE IF NOT EXISTS journal_state (
    key        TEXT             PRIMARY KEY,
    value      BYTEA            NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS journal_leases (
    partition  INTEGER     PRIMARY KEY,
    owner      TEXT        NOT NULL,
    epoch      BIGINT      NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS journal_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS journal_windows (
    name    TEXT    PRIMARY KEY,
    window_ BIGINT  NOT NULL,
    used    INTEGER NOT NULL,
    granted INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS journal_media (
    digest    TEXT             PRIMARY KEY,
    size      BIGINT           NOT NULL,
    stored_at DOUBLE PRECISION NOT NULL,
    content   BYTEA            NOT NULL
);
CREATE INDEX IF NOT EXISTS journal_media_stored ON journal_media (stored_at);
CREATE TABLE IF NOT EXISTS journal_media_links (
    token     TEXT             PRIMARY KEY,
    digest    TEXT             NOT NULL REFERENCES journal_media (digest) ON DELETE CASCADE,
    mime_type TEXT             NOT NULL,
    filename  TEXT             NOT NULL,
    stored_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS journal_media_links_digest ON journal_media_links (digest);
"""
_COLUMNS = "id, key, partition, dedupe_id, payload, created_at, status"
_INSERT = (
    "INSERT INTO journal_entries (key, partition, dedupe_id, payload, created_at)"
    " SELECT k, p, d, b, c"
    " FROM unnest($1::text[], $2::int[], $3::text[], $4::bytea[], $5::float8[])"
    " WITH ORDINALITY AS t (k, p, d, b, c, n) ORDER BY n"
    " ON CONFLICT (dedupe_id) DO NOTHING RETURNING id, dedupe_id"
)
_ACQUIRE_LEASE = (
    "INSERT INTO journal_leases AS l (partition, owner, epoch, expires_at)"
    " VALUES ($1, $2, 1, clock_timestamp() + make_interval(secs => $3))"
    " ON CONFLICT (partition) DO UPDATE"
    " SET owner = excluded.owner, epoch = l.epoch + 1, expires_at = excluded.expires_at"
    " WHERE l.owner = excluded.owner OR l.expires_at <= clock_timestamp()"
    " RETURNING epoch"
)
# One row per counter, holding its latest window: a newer window starts from the floor, the
# same window grows up to the limit, an older one (a caller whose clock lags) gets nothing.
# ``granted`` is computed from the old row in the same statement, so one round trip suffices.
_CLAIM_WINDOW = (
    "INSERT INTO journal_windows AS w (name, window_, used, granted)"
    " SELECT n, k, GREATEST(f, LEAST(l, f + q)), GREATEST(f, LEAST(l, f + q)) - f"
    " FROM (SELECT $1::text, $2::bigint, $3::int, $4::int, $5::int) AS p (n, k, q, l, f)"
    " ON CONFLICT (name) DO UPDATE SET"
    " window_ = GREATEST(w.window_, excluded.window_),"
    " used = CASE WHEN w.window_ < excluded.window_ THEN excluded.used"
    " WHEN w.window_ > excluded.window_ THEN w.used"
    " ELSE GREATEST(w.used, $5, LEAST($4, GREATEST(w.used, $5) + $3)) END,"
    " granted = CASE WHEN w.window_ < excluded.window_ THEN excluded.granted"
    " WHEN w.window_ > excluded.window_ THEN 0"
    " ELSE GREATEST(w.used, $5, LEAST($4, GREATEST(w.used, $5) + $3)) - GREATEST(w.used, $5) END"
    " RETURNING granted"
)
_FENCE_HOLDS = (
    "SELECT 1 FROM journal_leases WHERE partition = $1 AND owner = $2 AND epoch = $3 FOR SHARE"
)

# What a lost, refused or broken connection (or a failed statement) looks like from asyncpg.
_FAILURES: tuple[type[Exception], ...] = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,  # includes TimeoutError (connect, command and pool timeouts)
)


class _AioLoop(Protocol):
    """The part of trio-asyncio's loop this module uses."""

    async def run_aio_coroutine(self, coro: Coroutine[Any, Any, T]) -> T: ...

    def set_exception_handler(
        self, handler: Callable[[asyncio.AbstractEventLoop, dict[str, Any]], object] | None
    ) -> None: ...

    def is_closed(self) -> bool: ...


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


def _log_loop_error(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    # trio-asyncio's default handler re-raises into the loop's nursery, which would take the
    # whole journal down for what asyncpg reports only as a warning (a failed cancel request,
    # a reset connection): log it instead.
    logger.warning(
        "asyncpg: %s",
        context.get("message", "error in event loop"),
        exc_info=context.get("exception"),
    )


class AppendedHint:
    """A wake-up hint that entries were appended to some of the watched partitions.

    :meth:`wait` returns as soon as an append was noticed since the previous :meth:`wait`
    returned (or since the hint was made), so a consumer that makes the hint before its first
    read misses none. A hint only: it may fire for entries already read, and it fires (once)
    whenever the listener connection is re-established, since notices may have been missed
    while it was down. Poll as well, at a longer interval.
    """

    def __init__(self, partitions: Collection[int] | None) -> None:
        self.partitions = None if partitions is None else frozenset(partitions)
        self._fired = False
        self._event = trio.Event()

    def _fire(self, partition: int | None) -> None:
        if partition is None or self.partitions is None or partition in self.partitions:
            self._fired = True
            self._event.set()

    async def wait(self) -> None:
        """Wait until an append was noticed since the last call returned."""
        if not self._fired:
            await self._event.wait()
        self._fired = False
        self._event = trio.Event()


class PostgresJournal:
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
        self._loop: _AioLoop | None = None
        self._pool: asyncpg.Pool[asyncpg.Record] | None = None
        self._control_pool: asyncpg.Pool[asyncpg.Record] | None = None
        self._send, self._receive = trio.open_memory_channel[_AppendOp](math.inf)
        self._hints: set[AppendedHint] = set()
        self._locks = NamedLocks()
        self._lock_conn: asyncpg.Connection[asyncpg.Record] | None = None
        self._lock_conn_mutex = trio.Lock()
        self.commits = 0
        """Append transactions committed (each carries one or more appends)."""

    @property
    def partitions(self) -> int:
        return self._partitions

    # --- life cycle ---------------------------------------------------------------------------

    async def run(
        self, *, task_status: trio.TaskStatus[PostgresJournal] = trio.TASK_STATUS_IGNORED
    ) -> None:
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
        loop: _AioLoop
        async with trio_asyncio.open_loop() as loop:
            loop.set_exception_handler(_log_loop_error)
            try:
                pool, control = await loop.run_aio_coroutine(self._open())
            except JournalError as exc:
                # Raised outside the loop's block, which would wrap it in an exception group.
                failure = exc
            else:
                try:
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(self._write_loop, loop, pool)
                        await nursery.start(self._listen_loop, loop)
                        self._loop, self._pool, self._control_pool = loop, pool, control
                        task_status.started(self)
                        await trio.sleep_forever()
                finally:
                    self._loop = self._pool = self._control_pool = None
                    self._fail_queued()
                    # Shielded with its own deadline: let in-flight calls finish, then close.
                    with trio.CancelScope(shield=True):
                        with trio.move_on_after(self._command_timeout):
                            await loop.run_aio_coroutine(pool.close())
                            await loop.run_aio_coroutine(control.close())
                        pool.terminate()
                        control.terminate()
                        if self._lock_conn is not None:
                            self._lock_conn.terminate()
                            self._lock_conn = None
        if failure is not None:
            raise failure

    async def _open(self) -> tuple[asyncpg.Pool[asyncpg.Record], asyncpg.Pool[asyncpg.Record]]:
        """The pool for everything, then (once the schema is there) the leases' own pool."""
        try:
            pool = await self._open_pool(self._pool_size)
        except _FAILURES as exc:
            raise JournalUnavailable(f"cannot open PostgreSQL journal: {exc}") from exc
        ready = False
        try:
            await self._migrate(pool)
            control = await self._open_pool(_CONTROL_POOL_SIZE)
            ready = True
        except _FAILURES as exc:
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
        )

    async def _migrate(self, pool: asyncpg.Pool[asyncpg.Record]) -> None:
        async with pool.acquire() as conn, conn.transaction():
            # Serialised, since nodes starting together would race on CREATE ... IF NOT EXISTS.
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _SCHEMA_LOCK)
            await conn.execute(_SCHEMA)
            for name, value in (
                ("schema_version", _SCHEMA_VERSION),
                ("partitions", self._partitions),
            ):
                await conn.execute(
                    "INSERT INTO journal_meta (name, value) VALUES ($1, $2)"
                    " ON CONFLICT (name) DO NOTHING",
                    name,
                    str(value),
                )
            # A journal of an earlier version has just got what it lacked (never a downgrade:
            # a newer one stays as it is, and is refused below).
            await conn.execute(
                "UPDATE journal_meta SET value = $1 WHERE name = 'schema_version'"
                " AND value::int < $2",
                str(_SCHEMA_VERSION),
                _SCHEMA_VERSION,
            )
            rows: dict[str, str] = {
                row[0]: row[1] for row in await conn.fetch("SELECT name, value FROM journal_meta")
            }
        if int(rows["schema_version"]) > _SCHEMA_VERSION:
            raise JournalError(
                f"journal schema version {rows['schema_version']} is newer than this program's"
                f" ({_SCHEMA_VERSION})"
            )
        if int(rows["partitions"]) != self._partitions:
            raise JournalError(
                f"journal was created with {rows['partitions']} partitions, not {self._partitions}"
            )

    # --- the bridge ---------------------------------------------------------------------------

    async def _call(
        self,
        fn: Callable[[_Conn], Awaitable[T]],
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
        except _FAILURES as exc:
            raise JournalUnavailable(f"PostgreSQL {what} failed: {exc}") from exc
        except asyncio.CancelledError as exc:
            # asyncio's, not Trio's: the loop is shutting down under us (a Trio cancellation
            # of this caller arrives as trio.Cancelled and is not caught here).
            raise JournalUnavailable("the journal is shutting down") from exc
        return result

    @asynccontextmanager
    async def lock(self, name: str) -> AsyncIterator[None]:
        """A session advisory lock keyed by a 64-bit hash of ``name``: other processes wait
        for it, and it ends with the session if this process dies.

        All of this process's locks live on one dedicated connection (a session holds any
        number of advisory locks), so holding them costs no pooled connection: the bodies'
        own journal calls and the lease renewals never wait behind lock holders. Waiters of
        this process queue on a local lock first (advisory locks are re-entrant per session);
        the one at the front polls ``pg_try_advisory_lock``, so waiting stays cancellable. If
        the dedicated connection is lost, its locks go with it; the next lock reconnects."""
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
        loop = self._loop
        if loop is None or loop.is_closed():
            raise JournalUnavailable("the journal is not running")
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
            except _FAILURES as exc:
                if self._lock_conn is not None:
                    self._lock_conn.terminate()
                    self._lock_conn = None
                raise JournalUnavailable(f"PostgreSQL lock failed: {exc}") from exc

    # --- the group-commit writer for appends ---------------------------------------------------

    async def _write_loop(self, loop: _AioLoop, pool: asyncpg.Pool[asyncpg.Record]) -> None:
        while True:
            batch = [await self._receive.receive()]
            while len(batch) < _MAX_BATCH:
                try:
                    batch.append(self._receive.receive_nowait())
                except trio.WouldBlock:
                    break
            # Shielded: a commit under way finishes (bounded by command_timeout) even when the
            # journal stops, so its callers learn the outcome.
            try:
                with trio.CancelScope(shield=True):
                    await self._commit(loop, pool, batch)
                self.commits += 1
            except Exception as exc:
                # _commit answers every failure it knows; this is one it did not (a bug). The
                # callers learn it below and the writer goes on with the next batch.
                logger.exception("journal writer: an append batch failed")
                for op in batch:
                    if op.result is None and op.error is None:
                        op.error = _append_error(exc)
            finally:
                for op in batch:
                    if op.result is None and op.error is None:  # the writer is being stopped
                        op.error = JournalUnavailable("the journal's writer stopped")
                    op.done.set()

    async def _commit(
        self, loop: _AioLoop, pool: asyncpg.Pool[asyncpg.Record], batch: list[_AppendOp]
    ) -> None:
        rows = [row for op in batch for row in op.rows]
        try:
            results = await loop.run_aio_coroutine(_insert(pool, rows))
        except asyncio.CancelledError as exc:  # asyncio's: the loop is shutting down under us
            for op in batch:
                op.error = JournalUnavailable("the journal is shutting down")
                op.error.__cause__ = exc
            return
        except Exception as exc:  # noqa: BLE001 - any failure is answered to its callers
            if len(batch) > 1 and _is_permanent(exc):
                # One caller's bad value (say a NUL in a key) must not fail the others: retry
                # each alone, as SQLite's per-write savepoints do.
                for op in batch:
                    await self._commit(loop, pool, [op])
                return
            for op in batch:
                op.error = _append_error(exc)
            return
        for op in batch:
            op.result, results = results[: len(op.rows)], results[len(op.rows) :]
        # Local consumers need not wait for the NOTIFY to come back.
        for partition in {row[1] for row in rows}:
            self._wake(partition)

    def _fail_queued(self) -> None:
        while True:
            try:
                op = self._receive.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel):
                return
            op.error = JournalUnavailable("the journal is shutting down")
            op.done.set()

    # --- wake-up hints (LISTEN/NOTIFY) -----------------------------------------------------------

    @contextmanager
    def appended_hint(self, partitions: Collection[int] | None = None) -> Iterator[AppendedHint]:
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
        hint = AppendedHint(partitions)
        self._hints.add(hint)
        try:
            yield hint
        finally:
            self._hints.discard(hint)

    def _wake(self, partition: int | None) -> None:
        for hint in self._hints:
            hint._fire(partition)

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: object) -> None:
        # Called by asyncpg on the loop's own Trio task, so setting Trio events is fine.
        if isinstance(payload, str) and payload.isdigit():
            self._wake(int(payload))
        else:
            self._wake(None)

    async def _listen_loop(
        self, loop: _AioLoop, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Keep one connection LISTENing, reconnecting with backoff when it is lost. Reports
        started after the first attempt, so a journal that has started is listening unless the
        database went away meanwhile."""
        delay = _LISTEN_RETRY_MIN
        while True:
            lost = trio.Event()
            try:
                conn = await loop.run_aio_coroutine(self._listen(lost))
            except _FAILURES as exc:
                logger.info("journal listener cannot connect (retrying in %.1fs): %s", delay, exc)
                task_status.started()
                task_status = trio.TASK_STATUS_IGNORED
                await trio.sleep(delay)
                delay = min(delay * 2, _LISTEN_RETRY_MAX)
                continue
            delay = _LISTEN_RETRY_MIN
            self._wake(None)  # notices sent while nobody listened are lost
            task_status.started()
            task_status = trio.TASK_STATUS_IGNORED
            try:
                await lost.wait()
            finally:
                conn.terminate()

    async def _listen(self, lost: trio.Event) -> asyncpg.Connection[asyncpg.Record]:
        conn: asyncpg.Connection[asyncpg.Record] = await asyncpg.connect(
            self._url, timeout=self._connect_timeout, command_timeout=self._command_timeout
        )
        listening = False
        try:
            conn.add_termination_listener(lambda _conn: lost.set())
            await conn.add_listener(NOTIFY_CHANNEL, self._on_notify)
            listening = True
        finally:
            if not listening:
                conn.terminate()
        return conn

    # --- the Journal protocol -----------------------------------------------------------------

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
            op = _AppendOp(
                [
                    (e.key, partition_of(e.key, self._partitions), e.dedupe_id, e.payload, now)
                    for e in entries
                ]
            )
        except UnicodeEncodeError as exc:  # a key that cannot be stored either
            raise JournalError(f"a journal key is not UTF-8-encodable: {exc}") from exc
        self._send.send_nowait(op)
        # Shielded: once queued the write will commit or fail; the caller must learn which.
        with trio.CancelScope(shield=True):
            await op.done.wait()
        if op.error is not None:
            raise op.error
        assert op.result is not None
        return op.result

    async def read_pending(
        self, *, after_id: int, limit: int, partitions: Collection[int] | None = None
    ) -> list[Entry]:
        if partitions is not None and not partitions:
            return []
        wanted = None if partitions is None else list(partitions)

        async def query(conn: _Conn) -> list[Entry]:
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
        async def query(conn: _Conn) -> list[Entry]:
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
        async def query(conn: _Conn) -> Entry | None:
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

        async def finish(conn: _Conn) -> bool:
            if fence is not None and not await _fence_holds(conn, fence, entry_id):
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

        async def put(conn: _Conn) -> None:
            await _apply_state(conn, updates, now)

        await self._call(put, write=True, what="state write")

    async def get_state(self, key: str) -> bytes | None:
        async def query(conn: _Conn) -> bytes | None:
            value: bytes | None = await conn.fetchval(
                "SELECT value FROM journal_state WHERE key = $1", key
            )
            return value

        return await self._call(query, write=False, what="read")

    async def bury(self, entry_id: int, error: str, *, fence: Fence | None = None) -> bool:
        """See :meth:`Journal.bury`; ``fence`` as for :meth:`complete`."""
        now = self._now()

        async def mark(conn: _Conn) -> bool:
            if fence is not None and not await _fence_holds(conn, fence, entry_id):
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
        async def query(conn: _Conn) -> list[DeadLetter]:
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

        async def revive(conn: _Conn) -> list[Entry]:
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
        async def query(conn: _Conn) -> JournalStatistics:
            pending = await conn.fetchrow(
                "SELECT count(*), min(created_at) FROM journal_entries WHERE status = 0"
            )
            dead = await conn.fetchval("SELECT count(*) FROM journal_entries WHERE status = 2")
            assert pending is not None
            return JournalStatistics(
                pending=pending[0], oldest_pending_created_at=pending[1], dead=dead
            )

        return await self._call(query, write=False, what="read")

    async def prune(self, *, done_before: float) -> int:
        async def delete(conn: _Conn) -> int:
            status = await conn.execute(
                "DELETE FROM journal_entries WHERE status = 1 AND finished_at < $1", done_before
            )
            return int(status.rsplit(" ", 1)[1])  # "DELETE <count>"

        return await self._call(delete, write=True, what="prune")

    # --- partition leases (cluster mode) ------------------------------------------------------

    async def acquire_lease(self, partition: int, owner: str, *, ttl: float) -> Fence | None:
        """Start a tenure of ``owner`` over ``partition`` for ``ttl`` seconds, or None when
        another owner's lease has not expired yet.

        Every tenure gets a new epoch, even when ``owner`` held the partition before (a restarted
        node re-acquiring under the same name fences out its stale predecessor). Expiry is
        judged by the database clock, so node clocks need not agree.
        """

        async def take(conn: _Conn) -> int | None:
            epoch: int | None = await conn.fetchval(_ACQUIRE_LEASE, partition, owner, ttl)
            return epoch

        epoch = await self._call(take, write=True, what="lease acquire", control=True)
        return None if epoch is None else Fence(partition, owner, epoch)

    async def renew_lease(self, fence: Fence, *, ttl: float) -> bool:
        """Extend the tenure ``fence`` proves to ``ttl`` seconds from now. False when another
        tenure has begun (then stop working on the partition). An expired lease nobody took over
        is renewed: no one else can have written under it."""

        async def extend(conn: _Conn) -> bool:
            status = await conn.execute(
                "UPDATE journal_leases"
                " SET expires_at = clock_timestamp() + make_interval(secs => $4)"
                " WHERE partition = $1 AND owner = $2 AND epoch = $3",
                fence.partition,
                fence.owner,
                fence.epoch,
                ttl,
            )
            return status == "UPDATE 1"

        return await self._call(extend, write=True, what="lease renew", control=True)

    async def renew_leases(self, fences: Sequence[Fence], *, ttl: float) -> set[int]:
        """:meth:`renew_lease` for many tenures in one round trip; returns the partitions
        renewed (the others have moved). A node renews all its partitions at each tick: one
        statement keeps that fast while its deliveries keep the process busy."""
        if not fences:
            return set()

        async def extend(conn: _Conn) -> set[int]:
            rows = await conn.fetch(
                "UPDATE journal_leases AS l"
                " SET expires_at = clock_timestamp() + make_interval(secs => $4)"
                " FROM unnest($1::int[], $2::text[], $3::bigint[]) AS f (partition, owner, epoch)"
                " WHERE l.partition = f.partition AND l.owner = f.owner AND l.epoch = f.epoch"
                " RETURNING l.partition",
                [f.partition for f in fences],
                [f.owner for f in fences],
                [f.epoch for f in fences],
                ttl,
            )
            return {row["partition"] for row in rows}

        return await self._call(
            extend, write=True, what="lease renew", transaction=False, control=True
        )

    async def leases(self) -> list[Lease]:
        """Every lease row (live or expired), judged by the database clock."""

        async def query(conn: _Conn) -> list[Lease]:
            rows = await conn.fetch(
                "SELECT partition, owner, epoch, expires_at > clock_timestamp() AS live"
                " FROM journal_leases ORDER BY partition"
            )
            return [Lease(r["partition"], r["owner"], r["epoch"], r["live"]) for r in rows]

        return await self._call(query, write=False, what="lease read", control=True)

    async def release_lease(self, fence: Fence) -> bool:
        """End the tenure ``fence`` proves, so another node may acquire the partition at once.
        The row stays (expired) so that epochs keep growing. False when it had already moved."""

        async def end(conn: _Conn) -> bool:
            status = await conn.execute(
                "UPDATE journal_leases SET expires_at = '-infinity'"
                " WHERE partition = $1 AND owner = $2 AND epoch = $3",
                fence.partition,
                fence.owner,
                fence.epoch,
            )
            return status == "UPDATE 1"

        return await self._call(end, write=True, what="lease release", control=True)

    # --- operator tools -----------------------------------------------------------------------

    async def dead_letter(self, entry_id: int) -> DeadLetter | None:
        async def query(conn: _Conn) -> DeadLetter | None:
            row = await conn.fetchrow(
                f"SELECT {_COLUMNS}, last_error, finished_at FROM journal_entries"
                " WHERE status = 2 AND id = $1",
                entry_id,
            )
            return None if row is None else DeadLetter(_entry(row), row[7] or "", row[8])

        return await self._call(query, write=False, what="read")

    async def dead_letters_for_key(self, key: str, *, limit: int = 100) -> list[DeadLetter]:
        async def query(conn: _Conn) -> list[DeadLetter]:
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
        async def query(conn: _Conn) -> list[tuple[str, bytes]]:
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

        async def delete(conn: _Conn) -> Erased:
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
                state = int(gone.rsplit(" ", 1)[1])  # "DELETE <count>"
            return Erased(
                pending=counts.get(EntryStatus.PENDING, 0),
                done=counts.get(EntryStatus.DONE, 0),
                dead=counts.get(EntryStatus.DEAD, 0),
                state=state,
            )

        return await self._call(delete, write=True, what="erase")

    async def prune_dead(self, *, dead_before: float) -> int:
        async def delete(conn: _Conn) -> int:
            status = await conn.execute(
                "DELETE FROM journal_entries WHERE status = 2 AND finished_at < $1", dead_before
            )
            return int(status.rsplit(" ", 1)[1])  # "DELETE <count>"

        return await self._call(delete, write=True, what="prune")

    async def prune_state(self, *, prefix: str, updated_before: float) -> int:
        if not prefix:
            raise ValueError("prune_state needs a non-empty prefix")

        async def delete(conn: _Conn) -> int:
            status = await conn.execute(
                "DELETE FROM journal_state WHERE starts_with(key, $1) AND updated_at < $2",
                prefix,
                updated_before,
            )
            return int(status.rsplit(" ", 1)[1])  # "DELETE <count>"

        return await self._call(delete, write=True, what="prune")

    # --- shared counters per time window (cluster mode) ---------------------------------------

    async def claim_window(
        self, name: str, window: int, want: int, *, limit: int, floor: int = 0
    ) -> int:
        """Take up to ``want`` units of counter ``name`` in ``window`` (any increasing window
        number the callers agree on), never more than ``limit`` per window across every
        process; first raise the window's count to at least ``floor``. Returns the units taken:
        0 when the window is full, or when the counter has already moved to a later window.

        One statement, one round trip; concurrent claims serialise on the counter's row.
        """
        if want < 0 or limit < 0 or floor < 0:
            raise ValueError("want, limit and floor must be >= 0")

        async def take(conn: _Conn) -> int:
            granted: int = await conn.fetchval(_CLAIM_WINDOW, name, window, want, limit, floor)
            return granted

        return await self._call(take, write=True, what="window claim", transaction=False)

    # --- media --------------------------------------------------------------------------------

    async def put_media(
        self, token: str, content: bytes, *, digest: str, mime_type: str, filename: str
    ) -> None:
        now = self._now()

        async def store(conn: _Conn) -> None:
            # The content crosses the wire only when it is not stored yet.
            renewed = await conn.execute(
                "UPDATE journal_media SET stored_at = GREATEST(stored_at, $2) WHERE digest = $1",
                digest,
                now,
            )
            if renewed == "UPDATE 0":
                await conn.execute(
                    "INSERT INTO journal_media (digest, size, stored_at, content)"
                    " VALUES ($1, $2, $3, $4) ON CONFLICT (digest) DO UPDATE"
                    " SET stored_at = GREATEST(journal_media.stored_at, excluded.stored_at)",
                    digest,
                    len(content),
                    now,
                    content,
                )
            await conn.execute(
                "INSERT INTO journal_media_links (token, digest, mime_type, filename, stored_at)"
                " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (token) DO UPDATE SET"
                " digest = excluded.digest, mime_type = excluded.mime_type,"
                " filename = excluded.filename,"
                " stored_at = GREATEST(journal_media_links.stored_at, excluded.stored_at)",
                token,
                digest,
                mime_type,
                filename,
                now,
            )

        try:
            await self._call(store, write=True, what="media write")
        except JournalUnavailable as exc:
            cause = exc.__cause__
            if isinstance(cause, Exception) and _is_permanent(cause):  # say a NUL in the name
                raise _media_error(cause) from cause
            raise
        except (ValueError, TypeError) as exc:  # a value asyncpg cannot encode
            raise _media_error(exc) from exc

    async def get_media(self, token: str, *, stored_after: float) -> StoredMedia | None:
        async def query(conn: _Conn) -> StoredMedia | None:
            row = await conn.fetchrow(
                "SELECT m.content, l.mime_type, l.filename, l.stored_at"
                " FROM journal_media_links AS l JOIN journal_media AS m USING (digest)"
                " WHERE l.token = $1 AND l.stored_at >= $2",
                token,
                stored_after,
            )
            return None if row is None else StoredMedia(row[0], row[1], row[2], row[3])

        return await self._call(query, write=False, what="media read", transaction=False)

    async def prune_media(
        self, *, stored_before: float, max_bytes: int = 0, keep: str | None = None
    ) -> int:
        async def delete(conn: _Conn) -> int:
            links = await conn.execute(
                "DELETE FROM journal_media_links WHERE stored_at < $1", stored_before
            )
            expired = await conn.fetch(
                "SELECT digest FROM journal_media WHERE stored_at < $1", stored_before
            )
            deleted = _count(links) + await _delete_media(conn, [row[0] for row in expired])
            if max_bytes > 0:
                # Newest first, as long as they fit; the rest (the oldest) go.
                over = await conn.fetch(
                    "SELECT digest FROM (SELECT digest, sum(size) OVER"
                    " (ORDER BY stored_at DESC, digest DESC) AS newer FROM journal_media) AS t"
                    " WHERE newer > $1 AND digest IS DISTINCT FROM $2",
                    max_bytes,
                    keep,
                )
                deleted += await _delete_media(conn, [row[0] for row in over])
            return deleted

        return await self._call(delete, write=True, what="media prune")


def _media_error(exc: Exception) -> JournalError:
    return JournalError(f"PostgreSQL cannot store this media: {type(exc).__name__}: {exc}"[:500])


def _count(status: str) -> int:
    """The row count of a command status such as ``DELETE 3``."""
    return int(status.rsplit(" ", 1)[1])


async def _delete_media(conn: _Conn, digests: list[str]) -> int:
    """Delete these contents and their tokens; returns how many rows went."""
    if not digests:
        return 0
    links = await conn.execute(
        "DELETE FROM journal_media_links WHERE digest = ANY($1::text[])", digests
    )
    media = await conn.execute("DELETE FROM journal_media WHERE digest = ANY($1::text[])", digests)
    return _count(links) + _count(media)


_Row: TypeAlias = tuple[str, int, str, bytes, float]


class _AppendOp:
    """One append waiting for the group commit that carries it."""

    __slots__ = ("done", "error", "result", "rows")

    def __init__(self, rows: list[_Row]) -> None:
        self.rows = rows
        self.done = trio.Event()
        self.result: list[Appended] | None = None
        self.error: JournalError | None = None


def _is_permanent(exc: Exception) -> bool:
    """Whether an append failed for its values, so the same append would fail again: a value
    asyncpg cannot encode (a ValueError, such as a lone surrogate), a data exception or a
    program limit from the server (SQLSTATE classes 22 and 54: a NUL in text, an index entry
    too large), or anything that is no database or connection failure at all."""
    if isinstance(exc, asyncpg.PostgresError):
        return str(exc.sqlstate)[:2] in {"22", "54"}
    return isinstance(exc, ValueError | TypeError) or not isinstance(exc, _FAILURES)


def _append_error(exc: Exception) -> JournalError:
    """What the caller of a failed append gets: :class:`JournalUnavailable` (transient, worth a
    retry) unless the failure is permanent (:func:`_is_permanent`)."""
    error = (
        JournalError(f"PostgreSQL cannot store this append: {type(exc).__name__}: {exc}"[:500])
        if _is_permanent(exc)
        else JournalUnavailable(f"PostgreSQL append failed: {exc}")
    )
    error.__cause__ = exc
    return error


async def _insert(pool: asyncpg.Pool[asyncpg.Record], rows: list[_Row]) -> list[Appended]:
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


async def _fence_holds(conn: _Conn, fence: Fence, entry_id: int) -> bool:
    # FOR SHARE: a takeover (which updates the row) waits until this transaction commits, so
    # the new owner reads pending entries only after this write is visible.
    held = await conn.fetchval(_FENCE_HOLDS, fence.partition, fence.owner, fence.epoch)
    if held is None:
        return False
    partition = await conn.fetchval("SELECT partition FROM journal_entries WHERE id = $1", entry_id)
    return partition is None or partition == fence.partition


async def _apply_state(conn: _Conn, updates: Mapping[str, bytes | None], now: float) -> None:
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
