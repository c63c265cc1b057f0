"""Wake-up hints from LISTEN/NOTIFY: a consumer that would otherwise only poll learns that
entries were appended to its partitions, by this node (at once, from the writer) or by any other
(through ``NOTIFY threadline_journal, '<partition>'``, which every append transaction sends)."""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterator
from contextlib import contextmanager

import asyncpg
import trio

from .aio import FAILURES, AioLoop

__all__ = ["NOTIFY_CHANNEL", "AppendedHint", "Notices"]

logger = logging.getLogger("threadline.runtime.journal")

NOTIFY_CHANNEL = "threadline_journal"
_LISTEN_RETRY_MIN, _LISTEN_RETRY_MAX = 0.1, 2.0  # seconds between listener reconnects


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


class Notices:
    """The hints of one journal and the connection that LISTENs for them (:meth:`run`)."""

    def __init__(self, url: str, *, connect_timeout: float, command_timeout: float) -> None:
        self._url = url
        self._connect_timeout = connect_timeout
        self._command_timeout = command_timeout
        self._hints: set[AppendedHint] = set()

    @contextmanager
    def hint(self, partitions: Collection[int] | None) -> Iterator[AppendedHint]:
        """A hint on appends to ``partitions`` (all when None), for the ``with`` block."""
        hint = AppendedHint(partitions)
        self._hints.add(hint)
        try:
            yield hint
        finally:
            self._hints.discard(hint)

    def wake(self, partition: int | None) -> None:
        for hint in self._hints:
            hint._fire(partition)

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: object) -> None:
        # Called by asyncpg on the loop's own Trio task, so setting Trio events is fine.
        if isinstance(payload, str) and payload.isdigit():
            self.wake(int(payload))
        else:
            self.wake(None)

    async def run(
        self, loop: AioLoop, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Keep one connection LISTENing, reconnecting with backoff when it is lost. Reports
        started after the first attempt, so a journal that has started is listening unless the
        database went away meanwhile."""
        delay = _LISTEN_RETRY_MIN
        while True:
            lost = trio.Event()
            try:
                conn = await loop.run_aio_coroutine(self._listen(lost))
            except FAILURES as exc:
                logger.info("journal listener cannot connect (retrying in %.1fs): %s", delay, exc)
                task_status.started()
                task_status = trio.TASK_STATUS_IGNORED
                await trio.sleep(delay)
                delay = min(delay * 2, _LISTEN_RETRY_MAX)
                continue
            delay = _LISTEN_RETRY_MIN
            self.wake(None)  # notices sent while nobody listened are lost
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
