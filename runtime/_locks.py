"""Named locks within one process: one :class:`trio.Lock` per name while anyone holds or waits
for it, forgotten when the last user leaves (so memory follows the names in use, not every
name ever locked)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

__all__ = ["NamedLocks"]


class NamedLocks:
    """``async with locks.hold(name):`` — exclusive per name, FIFO among waiters (Trio's
    locks are fair)."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[trio.Lock, int]] = {}

    def __len__(self) -> int:
        """Names held or waited for now."""
        return len(self._locks)

    @asynccontextmanager
    async def hold(self, name: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(name, (None, 0))
        if lock is None:
            lock = trio.Lock()
        self._locks[name] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock_now, users_now = self._locks[name]
            if users_now == 1:
                del self._locks[name]
            else:
                self._locks[name] = (lock_now, users_now - 1)
