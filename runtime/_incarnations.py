"""The life of keyed actors: how one key's actor serves its mailbox, fails, restarts, is parked
and is passivated. :class:`KeyedActors` (``_keyed.py``: the registry of keys, sending,
inspection, shutdown) builds on :class:`Incarnations`, which holds this half.

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
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar, TypeVarTuple, Unpack

import trio

from ._actor import Actor, ActorContext
from ._cell import EMPTY, Ask, Cell, Empty
from ._errors import RestartLimitExceeded
from ._metrics import ActorStats
from ._retry import Classifier, DecisionKind
from ._supervisor import RestartIntensity

logger = logging.getLogger("threadline.runtime.actors")

__all__ = ["GiveUpHook", "Incarnations"]

M = TypeVar("M")
R = TypeVar("R")
Ts = TypeVarTuple("Ts")

GiveUpHook = Callable[[str, Any, Exception, str], Awaitable[None]]
"""``async hook(key, message, exc, reason)``: a message the runtime gave up on (discarded by the
classifier, or the one that exhausted its actor's restart budget). It is where dead letters go."""


class Incarnations(Generic[M, R]):
    """The actor tasks of a :class:`KeyedActors` system, their restarts, parking and
    passivation. The state below is set by :meth:`KeyedActors.__init__`."""

    name: str
    stats: ActorStats
    _factory: Callable[[ActorContext[M]], Actor[M, R]]
    _idle_timeout: float
    _classify: Classifier
    _restart: RestartIntensity
    _escalate: RestartIntensity | None
    _resume_after: float | None
    _on_give_up: GiveUpHook
    _max_live: int | None
    _cells: dict[str, Cell[M, R]]
    _idle: dict[Cell[M, R], None]  # insertion-ordered by idle_since
    _parked: dict[str, Cell[M, R]]
    _stopping: dict[str, trio.Event]  # key -> old incarnation's on_stop finished
    _restart_times: deque[float]
    _queued: int
    _busy: int
    _tasks: int
    _accepting: bool
    _nursery: trio.Nursery | None
    _all_done: trio.Event | None
    _finished: trio.Event
    _escalation: RestartLimitExceeded | None

    # --- an actor task: serving, retrying, restarting -----------------------------------------

    def _start_task(self, cell: Cell[M, R]) -> None:
        assert self._nursery is not None
        self._tasks += 1
        self._nursery.start_soon(self._run_cell, cell)

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

    def _task_finished(self, cell: Cell[M, R]) -> None:
        self._tasks -= 1
        if cell.stopped is not None:
            cell.stopped.set()
            if self._stopping.get(cell.key) is cell.stopped:
                del self._stopping[cell.key]
        if self._all_done is not None and self._tasks == 0:
            self._all_done.set()

    # --- parking -------------------------------------------------------------------------------

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

    # --- passivation ---------------------------------------------------------------------------

    def _passivate(self, cell: Cell[M, R]) -> None:
        # No checkpoint between leaving the map and closing the mailbox: the next tell for
        # this key creates a new cell instead of finding a closing one.
        del self._cells[cell.key]
        cell.stopped = self._stopping[cell.key] = trio.Event()
        cell.mailbox.close()
        self.stats.passivations += 1

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
