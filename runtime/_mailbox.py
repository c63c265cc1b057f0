"""A bounded, ordered, single-consumer mailbox.

Like ``trio.open_memory_channel`` with one receiver, in one small object: an actor has exactly
one consumer, so there is no need for two channel endpoints, clone counting or per-endpoint task
sets. That keeps an idle actor's footprint and the per-message cost low; the semantics
(checkpoints, cancellation, FIFO wake-ups of blocked senders) follow trio's memory channel.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Generic, TypeVar

import trio
from outcome import Error, Value

from ._errors import ActorStopped, MailboxFull

__all__ = ["Mailbox", "MailboxStatistics"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class MailboxStatistics:
    """A snapshot of a mailbox, as returned by :meth:`Mailbox.statistics`."""

    current_buffer_used: int
    """Messages waiting in the buffer."""
    max_buffer_size: int
    """The capacity: ``put_nowait`` raises MailboxFull beyond it and ``put`` waits."""
    tasks_waiting_put: int
    """Senders blocked in ``put`` because the buffer is full."""
    tasks_waiting_get: int
    """0 or 1: whether the consumer is blocked in ``get`` on an empty buffer."""
    closed: bool
    """Whether :meth:`Mailbox.close` was called."""


class Mailbox(Generic[T]):
    """A bounded FIFO of messages for one consumer.

    Messages come out in the order they were accepted. A sender blocked on a full mailbox is
    woken in FIFO order as the consumer takes messages, so order holds across blocked senders
    too. After :meth:`close`, puts raise :class:`ActorStopped` while the consumer can still drain
    what was accepted, then gets ``trio.EndOfChannel``.
    """

    __slots__ = ("_buffer", "_capacity", "_closed", "_getter", "_putters")

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self._capacity = capacity
        self._buffer: deque[T] = deque()
        self._getter: trio.lowlevel.Task | None = None
        # Created on first use: most mailboxes never see a blocked sender.
        self._putters: OrderedDict[trio.lowlevel.Task, T] | None = None
        self._closed = False

    def __len__(self) -> int:
        return len(self._buffer)

    @property
    def capacity(self) -> int:
        """The most messages the buffer holds."""
        return self._capacity

    @property
    def closed(self) -> bool:
        """Whether the mailbox was closed."""
        return self._closed

    @property
    def consumer_waiting(self) -> bool:
        """True when the buffer is empty and the consumer is blocked in :meth:`get`."""
        return self._getter is not None

    def statistics(self) -> MailboxStatistics:
        """Return a frozen snapshot of the mailbox's state."""
        return MailboxStatistics(
            current_buffer_used=len(self._buffer),
            max_buffer_size=self._capacity,
            tasks_waiting_put=len(self._putters) if self._putters else 0,
            tasks_waiting_get=0 if self._getter is None else 1,
            closed=self._closed,
        )

    def put_nowait(self, message: T) -> None:
        """Enqueue a message without waiting. Not a checkpoint.

        Raises:
            MailboxFull: the buffer is at capacity; nothing was enqueued.
            ActorStopped: the mailbox is closed.
        """
        if self._closed:
            raise ActorStopped("mailbox is closed")
        getter = self._getter
        if getter is not None:
            self._getter = None
            trio.lowlevel.reschedule(getter, Value(message))
        elif len(self._buffer) < self._capacity:
            self._buffer.append(message)
        else:
            raise MailboxFull(self._capacity)

    async def put(self, message: T) -> None:
        """Enqueue a message, waiting while the mailbox is full.

        Blocked senders are served in FIFO order. If cancelled, the message was either enqueued
        (the call returned) or not (Cancelled was raised) — never half.

        Raises:
            ActorStopped: the mailbox is closed, or was closed while this call waited.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        try:
            self.put_nowait(message)
        except MailboxFull:
            pass
        else:
            await trio.lowlevel.cancel_shielded_checkpoint()
            return
        task = trio.lowlevel.current_task()
        if self._putters is None:
            self._putters = OrderedDict()
        putters = self._putters
        putters[task] = message

        def abort_fn(_: trio.lowlevel.RaiseCancelT) -> trio.lowlevel.Abort:
            del putters[task]
            return trio.lowlevel.Abort.SUCCEEDED

        await trio.lowlevel.wait_task_rescheduled(abort_fn)

    def get_nowait(self) -> T:
        """Take the oldest message without waiting. Not a checkpoint.

        Raises:
            trio.WouldBlock: nothing is waiting.
            trio.EndOfChannel: the mailbox is closed and drained.
        """
        buffer = self._buffer
        if buffer:
            message = buffer.popleft()
            putters = self._putters
            if putters:
                task, waiting = putters.popitem(last=False)
                buffer.append(waiting)
                trio.lowlevel.reschedule(task)
            return message
        if self._closed:
            raise trio.EndOfChannel
        raise trio.WouldBlock

    async def get(self) -> T:
        """Take the oldest message, waiting while the mailbox is empty.

        Only one task may wait at a time (the owning actor).

        Raises:
            trio.EndOfChannel: the mailbox is closed and drained.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        try:
            message = self.get_nowait()
        except trio.WouldBlock:
            pass
        else:
            await trio.lowlevel.cancel_shielded_checkpoint()
            return message
        if self._getter is not None:
            raise RuntimeError("a mailbox has one consumer; another task is already waiting")
        task = trio.lowlevel.current_task()
        self._getter = task

        def abort_fn(_: trio.lowlevel.RaiseCancelT) -> trio.lowlevel.Abort:
            self._getter = None
            return trio.lowlevel.Abort.SUCCEEDED

        result: T = await trio.lowlevel.wait_task_rescheduled(abort_fn)
        return result

    def close(self) -> None:
        """Refuse further puts. Not a checkpoint; idempotent.

        Blocked senders get :class:`ActorStopped` (their messages were not accepted). A consumer
        blocked on an empty mailbox gets ``trio.EndOfChannel``. Accepted messages stay and can be
        drained with :meth:`get_nowait` or :meth:`drain`.
        """
        if self._closed:
            return
        self._closed = True
        if self._putters:
            for task in self._putters:
                trio.lowlevel.reschedule(task, Error(ActorStopped("mailbox closed")))
            self._putters.clear()
        if self._getter is not None:
            getter, self._getter = self._getter, None
            trio.lowlevel.reschedule(getter, Error(trio.EndOfChannel()))

    def drain(self) -> list[T]:
        """Remove and return every buffered message, oldest first. Not a checkpoint."""
        messages = list(self._buffer)
        self._buffer.clear()
        return messages
