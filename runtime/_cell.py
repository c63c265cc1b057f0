"""The per-key record behind an actor: its mailbox, in-flight message, restart history, timers.

Kept small (``__slots__``, lazily created collections) because a busy system holds one for every
live key: an idle actor costs its Trio task plus this.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import trio
from outcome import Error, Outcome, Value

from ._errors import ActorStopped
from ._mailbox import Mailbox

if TYPE_CHECKING:
    from ._keyed import KeyedActors

M = TypeVar("M")
R = TypeVar("R")


class Empty:
    """Marker for "no message in flight" (distinct from any message, including None)."""

    __slots__ = ()


EMPTY = Empty()


class Reply(Generic[R]):
    """The answer slot of an ``ask``: set exactly once, awaited by the asker."""

    __slots__ = ("_event", "_outcome")

    def __init__(self) -> None:
        self._event = trio.Event()
        self._outcome: Outcome[R] | None = None

    def set_result(self, value: R) -> None:
        if self._outcome is None:
            self._outcome = Value(value)
            self._event.set()

    def set_error(self, exc: BaseException) -> None:
        if self._outcome is None:
            self._outcome = Error(exc)
            self._event.set()

    async def wait(self) -> R:
        await self._event.wait()
        assert self._outcome is not None
        return self._outcome.unwrap()


class Ask(Generic[M, R]):
    """A message wrapped with the slot its answer goes to."""

    __slots__ = ("message", "reply")

    def __init__(self, message: M) -> None:
        self.message = message
        self.reply: Reply[R] = Reply()


class CellTimer:
    """A timer task's cancel scope, registered with the cell that owns it."""

    __slots__ = ("_cell", "scope")

    def __init__(self, cell: Cell[Any, Any]) -> None:
        self._cell = cell
        self.scope = trio.CancelScope()

    def cancel(self) -> None:
        self.scope.cancel()
        timers = self._cell.timers
        if timers is not None:
            timers.discard(self)


class Cell(Generic[M, R]):
    """One key's actor record. Implements :class:`ActorContext` for the actor it hosts."""

    __slots__ = (
        "attempts",
        "idle_since",
        "inflight",
        "key",
        "mailbox",
        "parked",
        "restart_times",
        "stopped",
        "system",
        "timers",
    )

    def __init__(self, system: KeyedActors[M, R], key: str, capacity: int) -> None:
        self.system = system
        self.key = key
        self.mailbox: Mailbox[M | Ask[M, R]] = Mailbox(capacity)
        self.inflight: M | Ask[M, R] | Empty = EMPTY
        self.attempts = 0
        self.idle_since = 0.0
        self.parked = False
        self.restart_times: deque[float] | None = None
        self.timers: set[CellTimer] | None = None
        self.stopped: trio.Event | None = None

    # --- ActorContext -----------------------------------------------------------------------

    def send_after(self, delay: float, message: M) -> CellTimer:
        return self._start_timer(delay, None, message)

    def send_every(self, interval: float, message: M) -> CellTimer:
        if interval <= 0:
            raise ValueError("interval must be > 0")
        return self._start_timer(interval, interval, message)

    def _start_timer(self, delay: float, every: float | None, message: M) -> CellTimer:
        timer = CellTimer(self)
        if self.timers is None:
            self.timers = set()
        self.timers.add(timer)
        self.system.spawn(self._run_timer, timer, delay, every, message)
        return timer

    async def _run_timer(self, timer: CellTimer, delay: float, every: float | None, msg: M) -> None:
        with timer.scope:
            try:
                await trio.sleep(delay)
                await self.system.deliver(self, msg)
                while every is not None:
                    await trio.sleep(every)
                    await self.system.deliver(self, msg)
            except ActorStopped:
                pass  # the actor stopped while the timer fired: it dies with it
        timers = self.timers
        if timers is not None:
            timers.discard(timer)

    def cancel_timers(self) -> None:
        """Cancel every timer of this incarnation."""
        timers = self.timers
        if timers:
            for timer in list(timers):
                timer.scope.cancel()
            timers.clear()
