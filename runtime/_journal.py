"""The durable journal: what every backend promises (the :class:`Journal` protocol).

The journal is the system of record between "accepted" and "done". An entry is appended (and
acknowledged upstream) only once it is durable; it stays *pending* until its handler finishes it
as *done* or *dead* (a dead letter, which an operator can replay). Entries carry an opaque key
(ordering holds per key, by ascending id), a dedupe id (an entry whose dedupe id is already
journaled is not appended again), and an opaque payload. Keys hash into a fixed number of
partitions so that a cluster can split the work. Beside the entries the journal keeps a small
key/value state (bytes), written atomically with the entry that changed it, and media: files
linked from conversations (stored once per content, found by a token), so that every node
sharing the journal can serve them.

Backends: SQLite (embedded, group-committed) and PostgreSQL (through asyncpg). Both pass one
contract test suite. The runtime's public names stay backend-neutral; the SQL lives in the
backend modules.
"""

from __future__ import annotations

import enum
import zlib
from collections.abc import Collection, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "Appended",
    "DeadLetter",
    "Entry",
    "EntryStatus",
    "Erased",
    "Fence",
    "Journal",
    "JournalStatistics",
    "Lease",
    "NewEntry",
    "StoredMedia",
    "partition_of",
]

DEFAULT_PARTITIONS = 64


def partition_of(key: str, partitions: int) -> int:
    """The partition of ``key``: a stable hash (CRC-32 of its UTF-8 bytes) modulo ``partitions``.

    Stable across processes and machines (unlike ``hash()``), so every node agrees.
    """
    return zlib.crc32(key.encode()) % partitions


class EntryStatus(enum.IntEnum):
    """Where an entry is in its life."""

    PENDING = 0
    DONE = 1
    DEAD = 2


@dataclass(frozen=True, slots=True)
class NewEntry:
    """An entry to append."""

    key: str
    dedupe_id: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class Appended:
    """The result of appending one entry: its id, and whether it was already journaled."""

    id: int
    duplicate: bool


@dataclass(frozen=True, slots=True)
class Entry:
    """A journaled entry."""

    id: int
    key: str
    partition: int
    dedupe_id: str
    payload: bytes
    created_at: float
    """Wall-clock UNIX time of the append, for latency and age metrics."""
    status: EntryStatus = EntryStatus.PENDING


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """An entry given up on, with the last error."""

    entry: Entry
    error: str
    dead_at: float


@dataclass(frozen=True, slots=True)
class JournalStatistics:
    """Backlog figures for metrics and alerts."""

    pending: int
    oldest_pending_created_at: float | None
    dead: int


@dataclass(frozen=True, slots=True)
class Erased:
    """What :meth:`Journal.erase` deleted: entries by status, and state keys."""

    pending: int
    done: int
    dead: int
    state: int


@dataclass(frozen=True, slots=True)
class Lease:
    """One row of the lease table: who holds ``partition`` at which epoch, and whether the
    tenure is still live (not expired, not released)."""

    partition: int
    owner: str
    epoch: int
    live: bool


@dataclass(frozen=True, slots=True)
class Fence:
    """Proof of partition ownership in cluster mode: a write carrying a fence succeeds only
    while ``owner`` still holds ``partition`` at ``epoch``. Single-node backends ignore it."""

    partition: int
    owner: str
    epoch: int


@dataclass(frozen=True, slots=True)
class StoredMedia:
    """A file kept by :meth:`Journal.put_media`, read whole (files are bounded by the caller)."""

    content: bytes
    mime_type: str
    filename: str
    stored_at: float
    """UNIX time of the token's latest :meth:`Journal.put_media`."""


class Journal(Protocol):
    """What the bridge needs from durable storage. Every method may raise
    :class:`JournalUnavailable` when the backend cannot be reached or cannot commit."""

    @property
    def partitions(self) -> int:
        """The fixed number of partitions keys hash into."""

    async def append(self, entries: Sequence[NewEntry]) -> list[Appended]:
        """Durably append ``entries`` in one commit, in order; duplicates are not appended.

        Concurrent calls may share a commit (group commit). Returns one result per entry.
        """

    async def read_pending(
        self, *, after_id: int, limit: int, partitions: Collection[int] | None = None
    ) -> list[Entry]:
        """Pending entries with ``id > after_id`` in id order, optionally only of ``partitions``."""

    async def read_pending_for_key(self, key: str, *, after_id: int, limit: int) -> list[Entry]:
        """Pending entries of one key with ``id > after_id``, in id order."""

    async def get(self, entry_id: int) -> Entry | None:
        """One entry by id, in any status."""

    async def complete(
        self,
        entry_id: int,
        *,
        state: Mapping[str, bytes | None] | None = None,
        fence: Fence | None = None,
    ) -> bool:
        """Mark an entry done and apply ``state`` updates (None deletes) in one commit.

        Returns False (and writes nothing) when ``fence`` no longer holds.
        """

    async def put_state(self, state: Mapping[str, bytes | None]) -> None:
        """Apply key/value state updates (None deletes) in one commit."""

    async def get_state(self, key: str) -> bytes | None:
        """The state value stored under ``key``."""

    async def bury(self, entry_id: int, error: str, *, fence: Fence | None = None) -> bool:
        """Make an entry a dead letter with its last error. False when ``fence`` failed."""

    async def dead_letters(self, *, limit: int = 100) -> list[DeadLetter]:
        """Dead letters, oldest first."""

    async def replay(self, entry_ids: Sequence[int] | None = None) -> list[Entry]:
        """Make dead letters pending again (all of them when ``entry_ids`` is None).

        Returns the entries made pending.
        """

    async def statistics(self) -> JournalStatistics:
        """Backlog figures."""

    def lock(self, name: str) -> AbstractAsyncContextManager[None]:
        """``async with journal.lock(name):`` holds an exclusive lock named ``name`` against
        every process sharing this journal (a single-process backend: this process). Waiting
        for it is cancellable; a process that dies releases what it held."""

    async def prune(self, *, done_before: float) -> int:
        """Delete done entries finished before ``done_before`` (UNIX time). Their dedupe ids
        are forgotten with them, so this sets the redelivery-dedupe window."""

    # --- operator tools (inspection, erasure, dead-letter retention) --------------------------

    async def dead_letter(self, entry_id: int) -> DeadLetter | None:
        """One dead letter by id, or None when that entry is missing or not dead."""

    async def dead_letters_for_key(self, key: str, *, limit: int = 100) -> list[DeadLetter]:
        """The dead letters of one key, oldest first."""

    async def find_state(
        self, prefix: str, *, value: bytes | None = None, after: str = "", limit: int = 1000
    ) -> list[tuple[str, bytes]]:
        """State items whose key starts with ``prefix`` (and whose value is ``value``, when
        given), with keys greater than ``after``, in code-point order of their keys; at most
        ``limit``. Page by passing the last key as ``after``. A scan: for operator tools."""

    async def erase(self, key: str, *, state_keys: Collection[str] = ()) -> Erased:
        """Delete every entry of ``key`` (pending, done and dead, with their dedupe ids) and
        the state under ``state_keys``, in one commit."""

    async def prune_dead(self, *, dead_before: float) -> int:
        """Delete dead letters buried before ``dead_before`` (UNIX time); returns how many."""

    async def prune_state(self, *, prefix: str, updated_before: float) -> int:
        """Delete the state items whose key starts with ``prefix`` (a non-empty literal, no
        wildcards) and that were last written before ``updated_before`` (UNIX time); returns
        how many. The retention of state that would otherwise grow forever."""

    # --- media: files linked from conversations ----------------------------------------------

    async def put_media(
        self, token: str, content: bytes, *, digest: str, mime_type: str, filename: str
    ) -> None:
        """Keep ``content`` under its ``digest`` (once: content stored already is not sent
        again) and ``token`` naming it with a type and a file name, in one commit; both are
        stamped now (a renewal when they were stored before). ``digest`` identifies the
        content (say its SHA-256); the caller vouches for it."""

    async def get_media(self, token: str, *, stored_after: float) -> StoredMedia | None:
        """The file under ``token``, or None: unknown, or last stored before ``stored_after``."""

    async def prune_media(
        self, *, stored_before: float, max_bytes: int = 0, keep: str | None = None
    ) -> int:
        """Delete tokens and contents last stored before ``stored_before`` (UNIX time); then,
        while ``max_bytes`` > 0 and the contents add up to more, the least recently stored
        contents (with their tokens), never the content of digest ``keep``. Returns how many
        tokens and contents were deleted."""
