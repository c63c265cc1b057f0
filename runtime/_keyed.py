"""Keyed actors: one actor per key, activated on demand, passivated when idle, supervised.

Message flow for one key::

    tell(key, m) ──► cell.mailbox (bounded, FIFO) ──► actor task: handle(m)
                                                        │ raises
                                                        ▼
                                     classify(exc, attempt) ─► RETRY: sleep, handle(m) again
                                                             ─► DISCARD: give up m, next one
                                                             ─► CRASH: restart the actor, m again
                                                                 (N restarts in T s: park the key,
                                                                  give up m; too many restarts
                                                                  system-wide: escalate)

Ordering holds per key: the same message is retried or re-delivered before any later one, so a
message is never handled after a later message of its key has succeeded.

Passivation: an actor whose mailbox has been empty for ``idle_timeout`` is stopped by a single
sweeper task that walks an insertion-ordered set of idle cells from the oldest; there is no cancel
scope or timer per message. The cell leaves the key map at the same instant its mailbox closes
(no checkpoint in between), so a message sent a moment later activates a fresh incarnation, which
waits for the old one's ``on_stop`` before its ``on_start``: nothing is lost or reordered.

Cap: with ``max_live``, at most that many keys have an actor. ``try_tell`` for a key without one
first passivates the least recently idle actor (idle: mailbox empty, no timer) when the cap is
reached, and raises :class:`AtCapacity` when every live actor is busy; the caller keeps the
message (the dispatcher leaves it in the journal) and offers it again when :meth:`has_room`.
``tell`` and ``ask`` are not capped.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, TypeVarTuple, Unpack

import trio

from ._actor import Actor, ActorContext, ActorRef
from ._cell import EMPTY, Ask, Cell, Empty
from ._errors import ActorStopped, MailboxFull, RestartLimitExceeded
from ._metrics import ActorStats, RuntimeMetrics
from ._retry import Classifier, DecisionKind, crash_always
from ._supervisor import RestartIntensity

logger = logging.getLogger("threadline.runtime.actors")

__all__ = [
    "AtCapacity",
    "GiveUpHook",
    "KeyedActors",
    "KeyedStatistics",
    "ShutdownReport",
    "open_keyed_actors",
]

M = TypeVar("M")
R = TypeVar("R")
Ts = TypeVarTuple("Ts")

GiveUpHook = Callable[[str, Any, Exception, str], Awaitable[None]]
"""``async hook(key, message, exc, reason)``: a message the runtime gave up on (discarded by the
classifier, or the one that exhausted its actor's restart budget). It is where dead letters go."""


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


class KeyedActors(Generic[M, R]):
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

    def _make_room(self) -> bool:
        """Below the cap, or passivate the least recently idle actor. Not a checkpoint."""
        if self._max_live is None or len(self._cells) < self._max_live:
            return True
        for cell in self._idle:  # least recently idle first
            if (
                not cell.timers
                and cell.mailbox.consumer_waiting
                and self._cells.get(cell.key) is cell
            ):
                del self._idle[cell]
                self._passivate(cell)
                return True
        return False

    def parked(self) -> list[str]:
        """Keys whose actors exhausted their restart budget and wait for :meth:`resume`."""
        return list(self._parked)

    def resume(self, key: str) -> bool:
        """Restart a parked key's actor with a fresh restart budget. Returns False if not parked."""
        cell = self._parked.pop(key, None)
        if cell is None or not self._accepting:
            return False
        cell.parked = False
        cell.restart_times = None
        self._start_task(cell)
        return True

    def spawn(self, fn: Callable[[Unpack[Ts]], Awaitable[None]], *args: *Ts) -> None:
        """Run a helper task (a timer) in the system's nursery."""
        assert self._nursery is not None, "the system is not running"
        self._nursery.start_soon(fn, *args)

    # --- internals ----------------------------------------------------------------------------

    def _activate(self, key: str) -> Cell[M, R]:
        if self._nursery is None:
            raise ActorStopped(f"{self.name}: not running (start it with nursery.start(run))")
        cell: Cell[M, R] = Cell(self, key, self._capacity)
        self._cells[key] = cell
        self.stats.activations += 1
        self._start_task(cell)
        return cell

    def _start_task(self, cell: Cell[M, R]) -> None:
        assert self._nursery is not None
        self._tasks += 1
        self._nursery.start_soon(self._run_cell, cell)

    async def _keep_given_up(self, key: str, message: object, exc: Exception, reason: str) -> None:
        self.given_up.append((key, message, reason))

    async def _run_cell(self, cell: Cell[M, R]) -> None:
        try:
            previous = self._stopping.get(cell.key)
            if previous is not None:
                await previous.wait()
            while True:
                try:
                    actor = self._factory(cell)
                    await actor.on_start()
                    await self._serve(cell, actor)
                except Exception as exc:  # noqa: BLE001 - the supervisor boundary: any failure restarts
                    cell.cancel_timers()
                    if not await self._restart_or_park(cell, exc):
                        return
                else:
                    cell.cancel_timers()
                    await actor.on_stop()
                    return
        finally:
            self._task_finished(cell)

    async def _serve(self, cell: Cell[M, R], actor: Actor[M, R]) -> None:
        """Handle messages until the mailbox is closed and drained (returns) or a CRASH (raises)."""
        mailbox = cell.mailbox
        stats = self.stats
        idle = self._idle
        while True:
            message = cell.inflight
            if message is EMPTY:
                try:
                    message = mailbox.get_nowait()
                except trio.WouldBlock:
                    cell.idle_since = trio.current_time()
                    idle[cell] = None
                    try:
                        message = await mailbox.get()
                    except trio.EndOfChannel:
                        return
                    finally:
                        idle.pop(cell, None)
                except trio.EndOfChannel:
                    return
                self._queued -= 1
                self._busy += 1
                cell.inflight = message
                cell.attempts = 0
            if isinstance(message, Ask):
                payload, reply = message.message, message.reply
            else:
                payload, reply = message, None
            started = time.perf_counter()
            try:
                result = await actor.handle(payload)
            except Exception as exc:
                stats.observe(time.perf_counter() - started)
                cell.attempts += 1
                decision = self._classify(exc, cell.attempts)
                if decision.kind is DecisionKind.RETRY:
                    stats.retried += 1
                    if not decision.counts:
                        cell.attempts -= 1
                    await trio.sleep(decision.after)
                    continue
                if decision.kind is DecisionKind.DISCARD:
                    stats.discarded += 1
                    if reply is not None:
                        reply.set_error(exc)
                    await self._on_give_up(cell.key, payload, exc, decision.reason)
                    self._clear_inflight(cell)
                    continue
                stats.crashed += 1
                raise
            stats.observe(time.perf_counter() - started)
            stats.ok += 1
            if reply is not None:
                reply.set_result(result)
            self._clear_inflight(cell)

    def _clear_inflight(self, cell: Cell[M, R]) -> None:
        cell.inflight = EMPTY
        cell.attempts = 0
        self._busy -= 1

    async def _restart_or_park(self, cell: Cell[M, R], exc: Exception) -> bool:
        """After a crash: True to restart the incarnation, False when the key was parked."""
        now = trio.current_time()
        if self._escalate is not None and self._escalate.record(self._restart_times, now):
            self._escalation = RestartLimitExceeded(
                f"{self.name} actors", self._escalate.max_restarts, self._escalate.period
            )
            self._escalation.__cause__ = exc
            self._accepting = False
            self._finished.set()
            return False
        if cell.restart_times is None:
            cell.restart_times = deque()
        if not self._restart.record(cell.restart_times, now):
            self.stats.restarts += 1
            # Keys can hold personal data (phone numbers): the system's name only.
            logger.warning("%s actor crashed; restarting it", self.name, exc_info=exc)
            return True
        logger.error("%s actor crashed past its restart budget; parking it", self.name,
                     exc_info=exc)  # fmt: skip
        # The budget is spent: give up the message that keeps crashing it, and park the key.
        # A crash before any message was taken (the factory or on_start) is blamed on the
        # message at the head of the mailbox: its delivery is what keeps activating the actor.
        message = cell.inflight
        if isinstance(message, Empty):
            try:
                message = cell.mailbox.get_nowait()
            except (trio.WouldBlock, trio.EndOfChannel):
                pass
            else:
                self._queued -= 1
                self._busy += 1
                cell.inflight = message
        if not isinstance(message, Empty):
            if isinstance(message, Ask):
                message.reply.set_error(exc)
                message = message.message
            reason = (
                f"restart budget exhausted ({self._restart.max_restarts} restarts "
                f"in {self._restart.period:g}s)"
            )
            await self._on_give_up(cell.key, message, exc, reason)
            self._clear_inflight(cell)
        self.stats.parks += 1
        cell.parked = True
        self._parked[cell.key] = cell
        if self._resume_after is not None:
            self.spawn(self._resume_later, cell.key, self._resume_after)
        return False

    async def _resume_later(self, key: str, delay: float) -> None:
        await trio.sleep(delay)
        self.resume(key)

    def _task_finished(self, cell: Cell[M, R]) -> None:
        self._tasks -= 1
        if cell.stopped is not None:
            cell.stopped.set()
            if self._stopping.get(cell.key) is cell.stopped:
                del self._stopping[cell.key]
        if self._all_done is not None and self._tasks == 0:
            self._all_done.set()

    def _passivate(self, cell: Cell[M, R]) -> None:
        # No checkpoint between leaving the map and closing the mailbox: the next tell for
        # this key creates a new cell instead of finding a closing one.
        del self._cells[cell.key]
        cell.stopped = self._stopping[cell.key] = trio.Event()
        cell.mailbox.close()
        self.stats.passivations += 1

    async def _sweep(self) -> None:
        interval = max(self._idle_timeout / 4, 0.001)
        while True:
            await trio.sleep(interval)
            self._sweep_once(trio.current_time() - self._idle_timeout)

    def _sweep_once(self, horizon: float) -> int:
        """Passivate actors idle since before ``horizon``; returns how many. Not a checkpoint."""
        idle = self._idle
        expired: list[Cell[M, R]] = []
        for cell in idle:  # oldest first: stop at the first one still fresh
            if cell.idle_since > horizon:
                break
            expired.append(cell)
        passivated = 0
        for cell in expired:
            del idle[cell]
            if cell.timers or not cell.mailbox.consumer_waiting:
                continue  # a timer is pending, or a message was just handed over
            if self._cells.get(cell.key) is cell:
                self._passivate(cell)
                passivated += 1
        return passivated


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
