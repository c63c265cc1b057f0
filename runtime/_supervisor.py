"""A one-for-one supervisor for long-lived services (servers, dispatchers, sweepers).

Each child runs in its own nursery under the supervisor's; when one raises, only that one is
restarted. More than ``intensity.max_restarts`` restarts within ``intensity.period`` seconds
(counted over all children, as Erlang does) is a failure the supervisor cannot absorb: it cancels
its children and raises :class:`RestartLimitExceeded` into its parent nursery.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import trio

from ._errors import RestartLimitExceeded
from ._metrics import RuntimeMetrics

__all__ = ["ChildSpec", "RestartIntensity", "Supervisor"]

logger = logging.getLogger("threadline.runtime.supervisor")


@dataclass(frozen=True, slots=True)
class RestartIntensity:
    """At most ``max_restarts`` restarts within ``period`` seconds (Erlang's intensity/period)."""

    max_restarts: int = 3
    period: float = 5.0

    def record(self, history: deque[float], now: float) -> bool:
        """Record a restart at ``now``; return True if that exceeds the budget."""
        history.append(now)
        horizon = now - self.period
        while history and history[0] <= horizon:
            history.popleft()
        return len(history) > self.max_restarts


@dataclass(frozen=True)
class ChildSpec:
    """A supervised child: ``run`` is started with ``nursery.start`` (it must accept
    ``task_status`` and call ``task_status.started(value)`` when ready). A child that returns
    normally is finished and not restarted; one that raises is restarted."""

    name: str
    run: Callable[..., Awaitable[Any]]


class Supervisor:
    """Start children in order, each ready before the next; restart one-for-one.

    Args:
        name: used in logs and in the escalation error.
        children: started in this order.
        intensity: the restart budget shared by all children.
        restart_delay: seconds to wait before a restart (0 restarts at once).
        metrics: counts restarts under ``actor_kind=<child name>``.
    """

    def __init__(
        self,
        name: str,
        children: Sequence[ChildSpec],
        *,
        intensity: RestartIntensity = RestartIntensity(3, 5.0),
        restart_delay: float = 0.0,
        metrics: RuntimeMetrics | None = None,
    ) -> None:
        self.name = name
        self._children = tuple(children)
        self._intensity = intensity
        self._restart_delay = restart_delay
        self._metrics = metrics
        self._history: deque[float] = deque()
        self._failure: RestartLimitExceeded | None = None
        self.ready: dict[str, Any] = {}
        """What each child passed to ``task_status.started`` on its latest start."""

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run until every child has finished or the scope is cancelled.

        Signals readiness once every child has signalled its own.

        Raises:
            RestartLimitExceeded: the restart budget ran out (chained from the last failure).
        """
        async with trio.open_nursery() as nursery:
            for child in self._children:
                await nursery.start(self._supervise, child, nursery.cancel_scope)
            task_status.started()
        if self._failure is not None:
            raise self._failure

    async def _supervise(
        self,
        child: ChildSpec,
        scope: trio.CancelScope,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        signalled = False
        while True:
            try:
                async with trio.open_nursery() as inner:
                    self.ready[child.name] = await inner.start(child.run)
                    if not signalled:
                        signalled = True
                        task_status.started()
            except Exception as exc:
                cause = _unwrap(exc)
                if self._intensity.record(self._history, trio.current_time()):
                    self._failure = RestartLimitExceeded(
                        f"supervisor {self.name}",
                        self._intensity.max_restarts,
                        self._intensity.period,
                    )
                    self._failure.__cause__ = cause
                    logger.error("%s: child %s failed; restart budget spent", self.name, child.name)
                    scope.cancel()
                    return
                logger.warning(
                    "%s: child %s failed; restarting", self.name, child.name, exc_info=cause
                )
                if self._metrics is not None:
                    self._metrics.count_restart(child.name)
                await trio.sleep(self._restart_delay)
            else:
                if not signalled:
                    task_status.started()
                return


def _unwrap(exc: Exception) -> Exception:
    """The single exception inside (nested) one-member exception groups, for readable logs."""
    while isinstance(exc, ExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc
