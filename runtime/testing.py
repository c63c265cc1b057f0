"""Helpers for testing code built on the runtime (public, used by our own tests too)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from ._actor import Actor, ActorContext

__all__ = ["RecordingActor", "Recorder"]

M = TypeVar("M")


class Recorder(Generic[M]):
    """What a family of :class:`RecordingActor` saw: ``handled[key]`` in handling order, plus
    life-cycle events ``(event, key)`` with event in start|stop."""

    def __init__(self) -> None:
        self.handled: dict[str, list[M]] = {}
        self.events: list[tuple[str, str]] = []

    def factory(
        self, fail: Callable[[str, M], Exception | None] | None = None
    ) -> Callable[[ActorContext[M]], RecordingActor[M]]:
        """An actor factory whose actors record into this recorder.

        ``fail(key, message)`` may return an exception for the actor to raise instead of
        recording the message (to script failures).
        """

        def build(ctx: ActorContext[M]) -> RecordingActor[M]:
            return RecordingActor(ctx.key, self, fail)

        return build


class RecordingActor(Actor[M, int], Generic[M]):
    """Records each message it handles; answers an ask with how many it has handled."""

    __slots__ = ("_fail", "_key", "_recorder")

    def __init__(
        self,
        key: str,
        recorder: Recorder[M],
        fail: Callable[[str, M], Exception | None] | None = None,
    ) -> None:
        self._key = key
        self._recorder = recorder
        self._fail = fail

    async def on_start(self) -> None:
        self._recorder.events.append(("start", self._key))

    async def handle(self, message: M) -> int:
        if self._fail is not None:
            exc = self._fail(self._key, message)
            if exc is not None:
                raise exc
        seen = self._recorder.handled.setdefault(self._key, [])
        seen.append(message)
        return len(seen)

    async def on_stop(self) -> None:
        self._recorder.events.append(("stop", self._key))
