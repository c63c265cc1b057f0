"""Group commit, shared by both journal backends: many callers, one transaction.

A caller queues a :class:`Pending` write and waits for it; one writer task (:meth:`GroupCommit.run`)
takes everything queued (up to ``max_batch``), hands the batch to the backend's ``commit``
coroutine, and wakes every caller of the batch once the outcome is known. Concurrent writers
therefore share one fsync (SQLite) or one round trip (PostgreSQL), and a caller is answered only
once its write is durable.

The backend's ``commit`` answers each write of the batch (:meth:`Pending.succeed` or
:meth:`Pending.fail`) and returns whether the batch counts in ``commits`` and ``writes`` (SQLite:
when its transaction committed; PostgreSQL: whenever it was answered). Whatever happens besides, no
caller is left waiting: a failure ``commit`` did not answer (a bug) is logged and answered with
``describe(exc)``; a writer stopped mid-batch answers :class:`JournalUnavailable`; writes still
queued when the journal stops are answered by :meth:`GroupCommit.fail_queued`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

import trio

from ._errors import JournalError, JournalUnavailable

__all__ = ["GroupCommit", "Pending"]

T = TypeVar("T")
P = TypeVar("P", bound="Pending[Any]")

logger = logging.getLogger("threadline.runtime.journal")


class Pending(Generic[T]):
    """One write waiting for the group commit that carries it. A backend subclasses it to
    carry what the write is (a function, rows)."""

    __slots__ = ("answered", "done", "error", "result")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.result: T | None = None
        self.error: JournalError | None = None
        self.answered = False

    def succeed(self, result: T) -> None:
        """The write's result, should the batch commit."""
        self.result = result
        self.answered = True

    def fail(self, error: JournalError) -> None:
        """The error the caller gets (it replaces a result set before)."""
        self.error = error
        self.answered = True


class GroupCommit(Generic[P]):
    """The queue of pending writes and the writer that commits them in batches.

    Args:
        max_batch: the most writes one transaction carries; None: everything queued.
    """

    def __init__(self, *, max_batch: int | None = None) -> None:
        self._max_batch: float = math.inf if max_batch is None else max_batch
        self._send, self._receive = trio.open_memory_channel[P](math.inf)
        self.commits = 0
        """Transactions committed (each carries one or more writes)."""
        self.writes = 0
        """Writes committed."""

    async def submit(self, op: P) -> None:
        """Queue ``op`` and wait until its batch is committed or failed; raises its error.
        Once queued the write will commit or fail, and the caller must learn which: the wait
        is shielded from cancellation (the backend bounds how long a commit may take)."""
        self._send.send_nowait(op)
        with trio.CancelScope(shield=True):
            await op.done.wait()
        if op.error is not None:
            raise op.error

    async def run(
        self,
        commit: Callable[[list[P]], Awaitable[bool]],
        describe: Callable[[Exception], JournalError],
    ) -> None:
        """Commit batches until cancelled. ``commit`` answers every write of its batch and
        returns whether the batch counts as committed; ``describe`` turns a failure it let
        escape into the error its callers get."""
        while True:
            batch = [await self._receive.receive()]
            while len(batch) < self._max_batch:
                try:
                    batch.append(self._receive.receive_nowait())
                except trio.WouldBlock:
                    break
            committed = False
            try:
                # Shielded: a commit under way finishes (bounded by the backend) even when
                # the journal stops, so its callers learn the outcome.
                with trio.CancelScope(shield=True):
                    committed = await commit(batch)
            except Exception as exc:
                # commit answers every failure it knows; this is one it did not (a bug). The
                # callers learn it here and the writer goes on with the next batch.
                logger.exception("journal writer: a batch failed")
                for op in batch:
                    if not op.answered:
                        op.fail(describe(exc))
            finally:
                # Whatever happened, every caller of the batch learns it: they wait shielded.
                for op in batch:
                    if not op.answered:  # the writer is being stopped
                        op.fail(JournalUnavailable("the journal's writer stopped"))
                    op.done.set()
            if committed:
                self.commits += 1
                self.writes += len(batch)

    def fail_queued(self) -> None:
        """Answer every write still queued: the journal is shutting down."""
        while True:
            try:
                op = self._receive.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel):
                return
            op.fail(JournalUnavailable("the journal is shutting down"))
            op.done.set()
