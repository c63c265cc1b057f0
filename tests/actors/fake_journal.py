"""An in-memory :class:`runtime.Journal`: a fake of the storage boundary for unit tests of the
thread actor and the contact resolver (no database, no threads, no wall-clock waits).

It keeps what the real journals keep (entries, state, dead letters, media, named locks) with
their commit semantics (each call one atomic step; a fence that no longer holds writes
nothing), and counts the writes so that a test can see what reached the journal."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, replace

import trio

from runtime import (
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

__all__ = ["FakeJournal"]


@dataclass
class _Media:
    digest: str
    mime_type: str
    filename: str
    stored_at: float


class FakeJournal:
    """Every method of :class:`runtime.Journal`, in memory; ``live_fences`` are the fences
    that still hold (None: every fence holds)."""

    def __init__(self, *, partitions: int = 8) -> None:
        self._partitions = partitions
        self._entries: dict[int, Entry] = {}
        self._dedupe: dict[str, int] = {}
        self._dead: dict[int, DeadLetter] = {}
        self._done_at: dict[int, float] = {}
        self.state: dict[str, bytes] = {}
        self._state_at: dict[str, float] = {}
        self._contents: dict[str, bytes] = {}
        self._media: dict[str, _Media] = {}
        self._locks: dict[str, trio.Lock] = {}
        self.live_fences: set[Fence] | None = None
        self.state_writes = 0
        """Calls that wrote state (``put_state`` and ``complete``)."""

    @property
    def partitions(self) -> int:
        return self._partitions

    def _holds(self, fence: Fence | None) -> bool:
        return fence is None or self.live_fences is None or fence in self.live_fences

    async def append(self, entries: Sequence[NewEntry]) -> list[Appended]:
        await trio.lowlevel.checkpoint()
        results = []
        for new in entries:
            known = self._dedupe.get(new.dedupe_id)
            if known is not None:
                results.append(Appended(known, duplicate=True))
                continue
            entry_id = max(self._entries, default=0) + 1
            self._entries[entry_id] = Entry(
                id=entry_id,
                key=new.key,
                partition=partition_of(new.key, self._partitions),
                dedupe_id=new.dedupe_id,
                payload=new.payload,
                created_at=time.time(),
            )
            self._dedupe[new.dedupe_id] = entry_id
            results.append(Appended(entry_id, duplicate=False))
        return results

    def _pending(self) -> list[Entry]:
        return [e for _, e in sorted(self._entries.items()) if e.status is EntryStatus.PENDING]

    async def read_pending(
        self, *, after_id: int, limit: int, partitions: Collection[int] | None = None
    ) -> list[Entry]:
        await trio.lowlevel.checkpoint()
        found = [
            e
            for e in self._pending()
            if e.id > after_id and (partitions is None or e.partition in partitions)
        ]
        return found[:limit]

    async def read_pending_for_key(self, key: str, *, after_id: int, limit: int) -> list[Entry]:
        await trio.lowlevel.checkpoint()
        return [e for e in self._pending() if e.key == key and e.id > after_id][:limit]

    async def get(self, entry_id: int) -> Entry | None:
        await trio.lowlevel.checkpoint()
        return self._entries.get(entry_id)

    def _apply(self, state: Mapping[str, bytes | None]) -> None:
        self.state_writes += 1
        for key, value in state.items():
            if value is None:
                self.state.pop(key, None)
                self._state_at.pop(key, None)
            else:
                self.state[key] = value
                self._state_at[key] = time.time()

    async def complete(
        self,
        entry_id: int,
        *,
        state: Mapping[str, bytes | None] | None = None,
        fence: Fence | None = None,
    ) -> bool:
        await trio.lowlevel.checkpoint()
        if not self._holds(fence):
            return False
        entry = self._entries.get(entry_id)
        if entry is not None:
            self._entries[entry_id] = replace(entry, status=EntryStatus.DONE)
            self._done_at[entry_id] = time.time()
        self._apply(state or {})
        return True

    async def put_state(self, state: Mapping[str, bytes | None]) -> None:
        await trio.lowlevel.checkpoint()
        self._apply(state)

    async def get_state(self, key: str) -> bytes | None:
        await trio.lowlevel.checkpoint()
        return self.state.get(key)

    async def bury(self, entry_id: int, error: str, *, fence: Fence | None = None) -> bool:
        await trio.lowlevel.checkpoint()
        if not self._holds(fence):
            return False
        entry = self._entries.get(entry_id)
        if entry is not None:
            dead = replace(entry, status=EntryStatus.DEAD)
            self._entries[entry_id] = dead
            self._dead[entry_id] = DeadLetter(dead, error, time.time())
        return True

    async def dead_letters(self, *, limit: int = 100) -> list[DeadLetter]:
        await trio.lowlevel.checkpoint()
        return [d for _, d in sorted(self._dead.items())][:limit]

    async def replay(self, entry_ids: Sequence[int] | None = None) -> list[Entry]:
        await trio.lowlevel.checkpoint()
        chosen = sorted(self._dead) if entry_ids is None else list(entry_ids)
        replayed = []
        for entry_id in chosen:
            dead = self._dead.pop(entry_id, None)
            if dead is not None:
                entry = replace(dead.entry, status=EntryStatus.PENDING)
                self._entries[entry_id] = entry
                replayed.append(entry)
        return replayed

    async def statistics(self) -> JournalStatistics:
        await trio.lowlevel.checkpoint()
        pending = self._pending()
        return JournalStatistics(
            pending=len(pending),
            dead=len(self._dead),
            oldest_pending_created_at=pending[0].created_at if pending else None,
        )

    def lock(self, name: str) -> AbstractAsyncContextManager[None]:
        return self._held(self._locks.setdefault(name, trio.Lock()))

    @asynccontextmanager
    async def _held(self, lock: trio.Lock) -> AsyncIterator[None]:
        async with lock:
            yield

    async def prune(self, *, done_before: float) -> int:
        await trio.lowlevel.checkpoint()
        gone = [i for i, at in self._done_at.items() if at < done_before]
        for entry_id in gone:
            entry = self._entries.pop(entry_id)
            self._dedupe.pop(entry.dedupe_id, None)
            del self._done_at[entry_id]
        return len(gone)

    async def dead_letter(self, entry_id: int) -> DeadLetter | None:
        await trio.lowlevel.checkpoint()
        return self._dead.get(entry_id)

    async def dead_letters_for_key(self, key: str, *, limit: int = 100) -> list[DeadLetter]:
        await trio.lowlevel.checkpoint()
        return [d for _, d in sorted(self._dead.items()) if d.entry.key == key][:limit]

    async def find_state(
        self, prefix: str, *, value: bytes | None = None, after: str = "", limit: int = 1000
    ) -> list[tuple[str, bytes]]:
        await trio.lowlevel.checkpoint()
        found = sorted(
            (k, v)
            for k, v in self.state.items()
            if k.startswith(prefix) and k > after and (value is None or v == value)
        )
        return found[:limit]

    async def erase(self, key: str, *, state_keys: Collection[str] = ()) -> Erased:
        await trio.lowlevel.checkpoint()
        counts = dict.fromkeys(EntryStatus, 0)
        for entry_id, entry in list(self._entries.items()):
            if entry.key == key:
                counts[entry.status] += 1
                del self._entries[entry_id]
                self._dedupe.pop(entry.dedupe_id, None)
                self._dead.pop(entry_id, None)
        erased_state = sum(1 for k in state_keys if self.state.pop(k, None) is not None)
        return Erased(
            pending=counts[EntryStatus.PENDING],
            done=counts[EntryStatus.DONE],
            dead=counts[EntryStatus.DEAD],
            state=erased_state,
        )

    async def prune_dead(self, *, dead_before: float) -> int:
        await trio.lowlevel.checkpoint()
        gone = [i for i, d in self._dead.items() if d.dead_at < dead_before]
        for entry_id in gone:
            del self._dead[entry_id]
            self._entries.pop(entry_id, None)
        return len(gone)

    async def prune_state(self, *, prefix: str, updated_before: float) -> int:
        await trio.lowlevel.checkpoint()
        gone = [
            k for k, at in self._state_at.items() if k.startswith(prefix) and at < updated_before
        ]
        for key in gone:
            self.state.pop(key, None)
            del self._state_at[key]
        return len(gone)

    async def put_media(
        self, token: str, content: bytes, *, digest: str, mime_type: str, filename: str
    ) -> None:
        await trio.lowlevel.checkpoint()
        self._contents[digest] = content
        self._media[token] = _Media(digest, mime_type, filename, time.time())

    async def get_media(self, token: str, *, stored_after: float) -> StoredMedia | None:
        await trio.lowlevel.checkpoint()
        media = self._media.get(token)
        if media is None or media.stored_at < stored_after:
            return None
        return StoredMedia(
            self._contents[media.digest], media.mime_type, media.filename, media.stored_at
        )

    async def prune_media(
        self, *, stored_before: float, max_bytes: int = 0, keep: str | None = None
    ) -> int:
        await trio.lowlevel.checkpoint()
        gone = [t for t, m in self._media.items() if m.stored_at < stored_before]
        for token in gone:
            del self._media[token]
        used = {m.digest for m in self._media.values()}
        for digest in [d for d in self._contents if d not in used and d != keep]:
            del self._contents[digest]
        return len(gone)
