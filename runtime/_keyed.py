"""Keyed actors: one actor per key, activated on demand, passivated when idle, supervised.

The life of each key's actor (serving its mailbox, retries, restarts, parking, passivation)
is in ``_incarnations.py``; this module holds the registry of keys: activation, sending,
inspection and shutdown.

Cap: with ``max_live``, at most that many keys have an actor. ``try_tell`` for a key without one
first passivates the least recently idle actor (idle: mailbox empty, no timer) when the cap is
reached, and raises :class:`AtCapacity` when every live actor is busy; the caller keeps the
message (the dispatcher leaves it in the journal) and offers it again when :meth:`has_room`.
``tell`` and ``ask`` are not capped.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import trio

from ._actor import Actor, ActorContext, ActorRef
from ._cell import EMPTY, Ask, Cell, Empty
from ._errors import ActorStopped, MailboxFull, RestartLimitExceeded
from ._incarnations import GiveUpHook, Incarnations
from ._metrics import ActorStats, RuntimeMetrics
from ._retry import Classifier, crash_always
from ._supervisor import RestartIntensity

__all__ = [
    "AtCapacity",
    "KeyedActors",
    "KeyedStatistics",
    "ShutdownReport",
    "open_keyed_actors",
]

M = TypeVar("M")
R = TypeVar("R")


class AtCapacity(MailboxFull):
    """``try_tell`` would activate an actor beyond ``max_live`` and no live actor is idle.
    Nothing was enqueued; ``capacity`` is ``max_live``."""

    def __init__(self, capacity: int) -> None:
        super().__init__(capacity)
        self.args = (f"{capacity} live actors, none idle",)


@dataclass(frozen=True, slots=True)
class ShutdownReport:
    """What a shutdown left behind."""

    drained: bool
    """True if every actor finished its mailbox before the deadline."""
    abandoned_messages: int
    """Messages accepted but never handled to completion (asks among them got ActorStopped)."""
    abandoned_keys: int
    """Keys that still had messages when the system stopped."""
    parked_keys: int
    """Keys that were parked at shutdown."""


@dataclass(frozen=True, slots=True)
class KeyedStatistics:
    """A snapshot of a :class:`KeyedActors` system."""

    live_actors: int
    parked_actors: int
    queued_messages: int
    busy_actors: int
    accepting: bool


class KeyedActors(Incarnations[M, R]):
    """A supervised set of actors, one per key, created by ``factory`` on a key's first message.

    Start it in a nursery with ``await nursery.start(system.run)`` (or use
    :func:`open_keyed_actors`). Every actor task lives in the system's own nursery.

    Args:
        factory: builds the actor for a key from its context; called again on each restart.
        name: the ``actor_kind`` label of this system's metrics.
        mailbox_capacity: per-key bound; ``tell`` waits and ``try_tell`` raises when it is full.
        idle_timeout: seconds of empty mailbox after which an actor is passivated.
        classify: ``(exc, attempt) -> Decision`` for a failed message; defaults to CRASH.
        restart: the per-key restart budget. Exhausting it parks the key: the failing message is
            given up (``on_give_up``), the key's other messages wait, and the key resumes after
            ``resume_parked_after`` seconds (or on :meth:`resume`).
        escalate: the system-wide restart budget. Exhausting it stops the system and raises
            :class:`RestartLimitExceeded` from :meth:`run` into the parent nursery. None: never.
        on_give_up: where given-up messages go; by default they are kept in :attr:`given_up`.
        metrics: the metrics to report into; None keeps counters unexported.
        max_live: the most keys with an actor at once (parked ones included) for ``try_tell``;
            None: no cap. See the module's docstring.
    """

    def __init__(
        self,
        factory: Callable[[ActorContext[M]], Actor[M, R]],
        *,
        name: str = "actor",
        mailbox_capacity: int = 64,
        idle_timeout: float = 60.0,
        classify: Classifier = crash_always,
        restart: RestartIntensity = RestartIntensity(),  # noqa: B008 - frozen, immutable
        escalate: RestartIntensity | None = RestartIntensity(1000, 10.0),  # noqa: B008
        resume_parked_after: float | None = None,
        on_give_up: GiveUpHook | None = None,
        metrics: RuntimeMetrics | None = None,
        max_live: int | None = None,
    ) -> None:
        if idle_timeout <= 0:
            raise ValueError("idle_timeout must be > 0")
        if max_live is not None and max_live < 1:
            raise ValueError("max_live must be >= 1")
        self._max_live = max_live
        self.name = name
        self._factory = factory
        self._capacity = mailbox_capacity
        self._idle_timeout = idle_timeout
        self._classify = classify
        self._restart = restart
        self._escalate = escalate
        self._resume_after = resume_parked_after
        self._on_give_up = on_give_up or self._keep_given_up
        self.given_up: deque[tuple[str, Any, str]] = deque(maxlen=1000)
        self.stats = ActorStats()
        if metrics is not None:
            metrics.watch(self)

        self._cells: dict[str, Cell[M, R]] = {}
        self._idle: dict[Cell[M, R], None] = {}  # insertion-ordered by idle_since
        self._parked: dict[str, Cell[M, R]] = {}
        self._stopping: dict[str, trio.Event] = {}  # key -> old incarnation's on_stop finished
        self._restart_times: deque[float] = deque()
        self._queued = 0
        self._busy = 0
        self._tasks = 0
        self._accepting = True
        self._nursery: trio.Nursery | None = None
        self._all_done: trio.Event | None = None
        self._finished = trio.Event()
        self._escalation: RestartLimitExceeded | None = None

    # --- life cycle ---------------------------------------------------------------------------

    async def run(
        self, *, task_status: trio.TaskStatus[KeyedActors[M, R]] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Run the system until :meth:`shutdown` finishes or the surrounding scope is cancelled.

        Raises:
            RestartLimitExceeded: the system-wide restart budget ran out (escalation).
        """
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(self._sweep)
                task_status.started(self)
                await self._finished.wait()
                nursery.cancel_scope.cancel()
        finally:
            self._accepting = False
            self._nursery = None
        if self._escalation is not None:
            self._abandon_all()
            raise self._escalation

    async def shutdown(self, deadline: float) -> ShutdownReport:
        """Stop intake, let every actor drain its mailbox for up to ``deadline`` seconds, then
        cancel what is left and account for it.

        Actors that drain in time stop cleanly (``on_stop`` runs). Pending asks of abandoned
        messages fail with :class:`ActorStopped`. Idempotent in effect; the system's :meth:`run`
        returns afterwards.
        """
        self._accepting = False
        for cell in list(self._cells.values()):
            cell.mailbox.close()
        self._idle.clear()
        drained = True
        if self._tasks:
            self._all_done = trio.Event()
            with trio.move_on_after(deadline):
                await self._all_done.wait()
            drained = self._tasks == 0
        if self._nursery is not None:
            self._nursery.cancel_scope.cancel()
        # Cancelled actor tasks finish at their next checkpoint; give them that chance so
        # their in-flight messages are back in the cells before we count.
        await trio.lowlevel.checkpoint()
        report = self._abandon_all()
        self._finished.set()
        return ShutdownReport(
            drained=drained and report[0] == 0,
            abandoned_messages=report[0],
            abandoned_keys=report[1],
            parked_keys=report[2],
        )

    def _abandon_all(self) -> tuple[int, int, int]:
        messages = keys = 0
        parked = len(self._parked)
        stopped = ActorStopped("the actor system shut down before this message was handled")
        for cell in itertools.chain(self._cells.values(), self._parked.values()):
            left = cell.mailbox.drain()
            inflight = cell.inflight
            if not isinstance(inflight, Empty):
                left.insert(0, inflight)
                cell.inflight = EMPTY
            if left:
                keys += 1
                messages += len(left)
                for message in left:
                    if isinstance(message, Ask):
                        message.reply.set_error(stopped)
            cell.cancel_timers()
        self._queued = 0
        self._cells.clear()
        self._parked.clear()
        return messages, keys, parked

    # --- sending ------------------------------------------------------------------------------

    def ref(self, key: str) -> ActorRef[M, R]:
        """A handle on the actor for ``key``."""
        return ActorRef(self, key)

    async def tell(self, key: str, message: M) -> None:
        """Deliver ``message`` to the actor for ``key``, activating it if needed, and wait while
        its mailbox is full. Messages for one key run in acceptance order. If cancelled, the
        message was either accepted or not.

        Raises:
            ActorStopped: shutdown has begun.
        """
        if not self._accepting:
            raise ActorStopped(f"{self.name}: shutting down")
        cell = self._cells.get(key)
        if cell is None:
            cell = self._activate(key)
        await self.deliver(cell, message)

    def try_tell(self, key: str, message: M) -> None:
        """Deliver ``message`` without waiting. Not a checkpoint.

        Raises:
            MailboxFull: the key's mailbox is at capacity; nothing was enqueued.
            AtCapacity: (a MailboxFull) the key has no actor, ``max_live`` keys have one and
                none of them is idle; nothing was enqueued.
            ActorStopped: shutdown has begun.
        """
        if not self._accepting:
            raise ActorStopped(f"{self.name}: shutting down")
        cell = self._cells.get(key)
        if cell is None:
            if not self._make_room():
                raise AtCapacity(self._max_live or 0)
            cell = self._activate(key)
        try:
            cell.mailbox.put_nowait(message)
        except MailboxFull:
            self.stats.mailbox_rejected += 1
            raise
        self._queued += 1

    async def ask(self, key: str, message: M) -> R:
        """Deliver ``message`` and wait for the handler's return value.

        If the caller is cancelled after the message was accepted, the actor still handles it
        and the answer is dropped.

        Raises:
            ActorStopped: shutdown began before the message was handled.
            Exception: what the handler raised, when the message was given up (DISCARD).
        """
        if not self._accepting:
            raise ActorStopped(f"{self.name}: shutting down")
        cell = self._cells.get(key)
        if cell is None:
            cell = self._activate(key)
        envelope: Ask[M, R] = Ask(message)
        await self.deliver(cell, envelope)
        return await envelope.reply.wait()

    async def deliver(self, cell: Cell[M, R], message: M | Ask[M, R]) -> None:
        """Put into a cell's mailbox, keeping the queued-message count exact under cancellation."""
        self._queued += 1
        accepted = False
        try:
            await cell.mailbox.put(message)
            accepted = True
        finally:
            if not accepted:
                self._queued -= 1

    # --- inspection and control ---------------------------------------------------------------

    def statistics(self) -> KeyedStatistics:
        """A snapshot of the system's state."""
        return KeyedStatistics(
            live_actors=len(self._cells) - len(self._parked),
            parked_actors=len(self._parked),
            queued_messages=self._queued,
            busy_actors=self._busy,
            accepting=self._accepting,
        )

    def live(self, key: str) -> bool:
        """Whether ``key`` has an actor (live or parked). Not a checkpoint."""
        return key in self._cells

    def has_room(self) -> bool:
        """Whether ``try_tell`` may activate a new key now (below the cap, or an actor is idle
        and can be passivated to make room). Not a checkpoint."""
        return self._max_live is None or len(self._cells) < self._max_live or bool(self._idle)

    def parked(self) -> list[str]:
        """Keys whose actors exhausted their restart budget and wait for :meth:`resume`."""
        return list(self._parked)

    # --- internals ----------------------------------------------------------------------------

    def _activate(self, key: str) -> Cell[M, R]:
        if self._nursery is None:
            raise ActorStopped(f"{self.name}: not running (start it with nursery.start(run))")
        cell: Cell[M, R] = Cell(self, key, self._capacity)
        self._cells[key] = cell
        self.stats.activations += 1
        self._start_task(cell)
        return cell

    async def _keep_given_up(self, key: str, message: object, exc: Exception, reason: str) -> None:
        self.given_up.append((key, message, reason))


@asynccontextmanager
async def open_keyed_actors(
    system: KeyedActors[M, R], *, shutdown_deadline: float = 10.0
) -> AsyncIterator[KeyedActors[M, R]]:
    """Run ``system`` for the duration of an ``async with`` block.

    On leaving the block the system shuts down: it drains for up to ``shutdown_deadline``
    seconds, then cancels what is left (see :meth:`KeyedActors.shutdown`).
    """
    async with trio.open_nursery() as nursery:
        await nursery.start(system.run)
        try:
            yield system
        finally:
            with trio.CancelScope(shield=True):
                await system.shutdown(shutdown_deadline)
