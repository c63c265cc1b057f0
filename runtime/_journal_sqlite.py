"""The embedded journal backend: one SQLite file in WAL mode with ``synchronous=FULL``.

Group commit: every write (append, complete, bury, state, replay) becomes an operation on a
queue; one writer task takes everything queued, applies it in a single transaction on a worker
thread (each operation inside its own savepoint, so one failing operation cannot undo the others)
and wakes the callers after the commit. Concurrent webhooks therefore share one fsync, and a
caller is answered only once its write is durable. Reads use a second connection, which WAL
lets run beside the writer.

Whatever an operation raises, its caller is woken with an error and the writer goes on with the
next batch: a SQLite failure is :class:`JournalUnavailable` (transient); a value SQLite cannot
hold (one it cannot bind, say a string with a lone surrogate, or too big) is a plain
:class:`JournalError`, since the same write would fail again.

One process owns the file (single-node mode); the ``deadletters`` command may open it alongside,
since WAL serialises writers with a busy timeout.
"""

from __future__ import annotations

import math
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any, Generic, TypeVar

import trio

from ._errors import JournalError, JournalUnavailable
from ._journal import (
    DEFAULT_PARTITIONS,
    Appended,
    DeadLetter,
    Entry,
    EntryStatus,
    Erased,
    Fence,
    JournalStatistics,
    NewEntry,
    StoredMedia,
    partition_of,
)
from ._locks import NamedLocks

__all__ = ["SQLiteJournal", "open_sqlite_journal"]

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS journal_entries (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    key         TEXT    NOT NULL,
    partition   INTEGER NOT NULL,
    dedupe_id   TEXT    NOT NULL UNIQUE,
    payload     BLOB    NOT NULL,
    created_at  REAL    NOT NULL,
    status      INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT,
    finished_at REAL
);
CREATE INDEX IF NOT EXISTS journal_pending ON journal_entries (id) WHERE status = 0;
CREATE INDEX IF NOT EXISTS journal_pending_key ON journal_entries (key, id) WHERE status = 0;
CREATE INDEX IF NOT EXISTS journal_dead ON journal_entries (id) WHERE status = 2;
CREATE INDEX IF NOT EXISTS journal_done ON journal_entries (finished_at) WHERE status = 1;
CREATE TABLE IF NOT EXISTS journal_state (
    key        TEXT PRIMARY KEY,
    value      BLOB NOT NULL,
    updated_at REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS journal_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS journal_media (
    digest    TEXT    PRIMARY KEY,
    size      INTEGER NOT NULL,
    stored_at REAL    NOT NULL,
    content   BLOB    NOT NULL
);
CREATE INDEX IF NOT EXISTS journal_media_stored ON journal_media (stored_at);
CREATE TABLE IF NOT EXISTS journal_media_links (
    token     TEXT PRIMARY KEY,
    digest    TEXT NOT NULL REFERENCES journal_media (digest) ON DELETE CASCADE,
    mime_type TEXT NOT NULL,
    filename  TEXT NOT NULL,
    stored_at REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS journal_media_links_digest ON journal_media_links (digest);
"""
# 1: entries, state, meta. 2: media (journal_media, journal_media_links), added in place.
_SCHEMA_VERSION = "2"
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


class _Op(Generic[T]):
    """One write waiting for the group commit that carries it."""

    __slots__ = ("done", "error", "fn", "result")

    def __init__(self, fn: Callable[[sqlite3.Connection], T]) -> None:
        self.fn = fn
        self.done = trio.Event()
        self.result: T | None = None
        self.error: BaseException | None = None


class SQLiteJournal:
    """A :class:`Journal` in one SQLite file. Start with ``await nursery.start(journal.run)``.

    Args:
        path: the database file (created with its schema if missing).
        partitions: the fixed number of partitions keys hash into.
        wall_clock: UNIX time source for ``created_at`` and ``finished_at``.
    """

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
        self._send, self._receive = trio.open_memory_channel[_Op[Any]](math.inf)
        self._writer: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        self._read_limiter = trio.CapacityLimiter(1)
        self._locks = NamedLocks()
        self.commits = 0
        """Transactions committed (each carries one or more writes)."""
        self.writes = 0
        """Writes committed."""

    @property
    def partitions(self) -> int:
        return self._partitions

    # --- life cycle ---------------------------------------------------------------------------

    async def run(
        self, *, task_status: trio.TaskStatus[SQLiteJournal] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Open the database and run the group-commit writer until cancelled."""
        try:
            self._writer = await trio.to_thread.run_sync(self._connect, False)
            self._reader = await trio.to_thread.run_sync(self._connect, True)
        except sqlite3.Error as exc:
            raise JournalUnavailable(f"cannot open SQLite journal {self._path}: {exc}") from exc
        try:
            task_status.started(self)
            await self._write_loop()
        finally:
            with trio.CancelScope(shield=True):
                self._fail_queued()
                for conn in (self._writer, self._reader):
                    await trio.to_thread.run_sync(conn.close)
                self._writer = self._reader = None

    def _connect(self, read_only: bool) -> sqlite3.Connection:
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout = 5000")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")  # a media content's tokens go with it
        if read_only:
            conn.execute("PRAGMA query_only = 1")
        else:
            conn.executescript(_SCHEMA)
            conn.execute(
                "INSERT INTO journal_meta (name, value) VALUES ('schema_version', ?) "
                "ON CONFLICT (name) DO NOTHING",
                (_SCHEMA_VERSION,),
            )
            # A journal of an earlier version has just got the tables it lacked (never a
            # downgrade: a newer version stays as it is).
            conn.execute(
                "UPDATE journal_meta SET value = ? WHERE name = 'schema_version'"
                " AND CAST(value AS INTEGER) < CAST(? AS INTEGER)",
                (_SCHEMA_VERSION, _SCHEMA_VERSION),
            )
            stored = conn.execute(
                "SELECT value FROM journal_meta WHERE name = 'partitions'"
            ).fetchone()
            if stored is None:
                conn.execute(
                    "INSERT INTO journal_meta (name, value) VALUES ('partitions', ?)",
                    (str(self._partitions),),
                )
            elif int(stored[0]) != self._partitions:
                raise sqlite3.DatabaseError(
                    f"journal was created with {stored[0]} partitions, not {self._partitions}"
                )
        return conn

    # --- the group-commit writer --------------------------------------------------------------

    async def _write_loop(self) -> None:
        while True:
            batch = [await self._receive.receive()]
            while True:
                try:
                    batch.append(self._receive.receive_nowait())
                except trio.WouldBlock:
                    break
            committed = False
            try:
                await trio.to_thread.run_sync(self._apply, batch)
                committed = True
            except Exception as exc:  # noqa: BLE001 - any failure is answered to its callers
                failure = _write_error(exc, "commit")
                for op in batch:
                    op.error = failure
            finally:
                # Whatever happened, every caller of the batch learns it: they wait shielded.
                for op in batch:
                    if not committed and op.error is None:
                        op.error = JournalUnavailable("the journal's writer stopped")
                    op.done.set()
            if committed:
                self.commits += 1
                self.writes += len(batch)

    def _apply(self, batch: list[_Op[Any]]) -> None:
        conn = self._writer
        assert conn is not None
        conn.execute("BEGIN IMMEDIATE")
        try:
            for op in batch:
                conn.execute("SAVEPOINT op")
                try:
                    op.result = op.fn(conn)
                except Exception as exc:  # noqa: BLE001 - fails this write alone
                    conn.execute("ROLLBACK TO op")
                    op.error = _write_error(exc, "write")
                conn.execute("RELEASE op")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _fail_queued(self) -> None:
        while True:
            try:
                op = self._receive.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel):
                return
            op.error = JournalUnavailable("the journal is shutting down")
            op.done.set()

    async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._writer is None:
            raise JournalUnavailable("the journal is not running")
        op: _Op[T] = _Op(fn)
        self._send.send_nowait(op)
        # Shielded: once queued the write will commit or fail; the caller must learn which.
        with trio.CancelScope(shield=True):
            await op.done.wait()
        if op.error is not None:
            raise op.error
        return op.result  # type: ignore[return-value]  # set by _apply when error is None

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._reader
        if conn is None:
            raise JournalUnavailable("the journal is not running")
        try:
            return await trio.to_thread.run_sync(fn, conn, limiter=self._read_limiter)
        except sqlite3.Error as exc:
            raise JournalUnavailable(f"SQLite read failed: {exc}") from exc

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
        def query(conn: sqlite3.Connection) -> bytes | None:
            row = conn.execute("SELECT value FROM journal_state WHERE key = ?", (key,)).fetchone()
            return None if row is None else bytes(row[0])

        return await self._read(query)

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
            pending, oldest = conn.execute(
                "SELECT count(*), min(created_at) FROM journal_entries WHERE status = 0"
            ).fetchone()
            (dead,) = conn.execute(
                "SELECT count(*) FROM journal_entries WHERE status = 2"
            ).fetchone()
            return JournalStatistics(pending=pending, oldest_pending_created_at=oldest, dead=dead)

        return await self._read(query)

    def lock(self, name: str) -> AbstractAsyncContextManager[None]:
        """One process owns a SQLite journal, so a lock within the process is enough."""
        return self._locks.hold(name)

    async def prune(self, *, done_before: float) -> int:
        def delete(conn: sqlite3.Connection) -> int:
            cursor = conn.execute(
                "DELETE FROM journal_entries WHERE status = 1 AND finished_at < ?", (done_before,)
            )
            return cursor.rowcount

        return await self._write(delete)

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
        def delete(conn: sqlite3.Connection) -> int:
            cursor = conn.execute(
                "DELETE FROM journal_entries WHERE status = 2 AND finished_at < ?", (dead_before,)
            )
            return cursor.rowcount

        return await self._write(delete)

    async def prune_state(self, *, prefix: str, updated_before: float) -> int:
        if not prefix:
            raise ValueError("prune_state needs a non-empty prefix")
        upper = _prefix_upper_bound(prefix)

        def delete(conn: sqlite3.Connection) -> int:
            # The key range lets the primary key find the prefix; substr() is the test itself.
            cursor = conn.execute(
                "DELETE FROM journal_state WHERE key >= ? AND (? IS NULL OR key < ?)"
                " AND substr(key, 1, ?) = ? AND updated_at < ?",
                (prefix, upper, upper, len(prefix), prefix, updated_before),
            )
            return cursor.rowcount

        return await self._write(delete)

    # --- media --------------------------------------------------------------------------------

    async def put_media(
        self, token: str, content: bytes, *, digest: str, mime_type: str, filename: str
    ) -> None:
        now = self._now()

        def store(conn: sqlite3.Connection) -> None:
            renewed = conn.execute(
                "UPDATE journal_media SET stored_at = max(stored_at, ?) WHERE digest = ?",
                (now, digest),
            ).rowcount
            if not renewed:
                conn.execute(
                    "INSERT INTO journal_media (digest, size, stored_at, content)"
                    " VALUES (?, ?, ?, ?)",
                    (digest, len(content), now, content),
                )
            conn.execute(
                "INSERT INTO journal_media_links (token, digest, mime_type, filename, stored_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (token) DO UPDATE SET"
                " digest = excluded.digest, mime_type = excluded.mime_type,"
                " filename = excluded.filename, stored_at = max(stored_at, excluded.stored_at)",
                (token, digest, mime_type, filename, now),
            )

        await self._write(store)

    async def get_media(self, token: str, *, stored_after: float) -> StoredMedia | None:
        def query(conn: sqlite3.Connection) -> StoredMedia | None:
            row = conn.execute(
                "SELECT m.content, l.mime_type, l.filename, l.stored_at"
                " FROM journal_media_links AS l JOIN journal_media AS m USING (digest)"
                " WHERE l.token = ? AND l.stored_at >= ?",
                (token, stored_after),
            ).fetchone()
            return None if row is None else StoredMedia(bytes(row[0]), row[1], row[2], row[3])

        return await self._read(query)

    async def prune_media(
        self, *, stored_before: float, max_bytes: int = 0, keep: str | None = None
    ) -> int:
        def delete(conn: sqlite3.Connection) -> int:
            deleted = conn.execute(
                "DELETE FROM journal_media_links WHERE stored_at < ?", (stored_before,)
            ).rowcount
            deleted += _delete_media(
                conn,
                [
                    row[0]
                    for row in conn.execute(
                        "SELECT digest FROM journal_media WHERE stored_at < ?", (stored_before,)
                    )
                ],
            )
            if max_bytes > 0:
                # Newest first, as long as they fit; the rest (the oldest) go.
                over = conn.execute(
                    "SELECT digest FROM (SELECT digest, sum(size) OVER"
                    " (ORDER BY stored_at DESC, digest DESC) AS newer FROM journal_media)"
                    " WHERE newer > ? AND digest IS NOT ?",
                    (max_bytes, keep),
                ).fetchall()
                deleted += _delete_media(conn, [row[0] for row in over])
            return deleted

        return await self._write(delete)


def _delete_media(conn: sqlite3.Connection, digests: list[str]) -> int:
    """Delete these contents and their tokens; returns how many rows went."""
    deleted = 0
    for digest in digests:
        deleted += conn.execute(
            "DELETE FROM journal_media_links WHERE digest = ?", (digest,)
        ).rowcount
        deleted += conn.execute("DELETE FROM journal_media WHERE digest = ?", (digest,)).rowcount
    return deleted


def _prefix_upper_bound(prefix: str) -> str | None:
    """The least string above every string starting with ``prefix`` (code-point order), or
    None when there is none to name (an empty prefix, or one ending in the last code point)."""
    if not prefix or ord(prefix[-1]) >= 0x10FFFF:
        return None
    following = ord(prefix[-1]) + 1
    if 0xD800 <= following <= 0xDFFF:  # no surrogates in stored text: skip past them
        following = 0xE000
    return prefix[:-1] + chr(following)


def _write_error(exc: Exception, what: str) -> JournalError:
    """The error a caller gets for a failed write: transient for SQLite's own failures, plain
    (not retried) for a value SQLite cannot hold (binding, encoding, size)."""
    if isinstance(exc, sqlite3.Error) and not isinstance(exc, sqlite3.DataError):
        return JournalUnavailable(f"SQLite {what} failed: {exc}")
    error = JournalError(f"SQLite cannot store this {what}: {type(exc).__name__}: {exc}"[:500])
    error.__cause__ = exc
    return error


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
