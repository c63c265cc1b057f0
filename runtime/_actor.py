"""What an actor is, and the handles for talking to one.

An actor is an object with ``handle(message)``; the runtime calls it strictly one message at a
time, in the order the messages were accepted, from one Trio task that owns the actor's mailbox.
``on_start`` runs before the first message of each incarnation (a restart is a new incarnation)
and ``on_stop`` after the last one when the actor is passivated or the system shuts down cleanly.
"""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

if TYPE_CHECKING:
    from ._keyed import KeyedActors

__all__ = ["Actor", "ActorContext", "ActorRef", "Timer"]

M = TypeVar("M")
R = TypeVar("R")
M_contra = TypeVar("M_contra", contravariant=True)


class Timer(Protocol):
    """A pending timer owned by an actor. It dies with the actor's incarnation."""

    def cancel(self) -> None:
        """Stop the timer; a message not yet delivered never will be. Idempotent."""


class ActorContext(Protocol[M_contra]):
    """What an actor knows of its place in the runtime: its key and its timers."""

    @property
    def key(self) -> str:
        """The key this actor serves."""

    def send_after(self, delay: float, message: M_contra) -> Timer:
        """Deliver ``message`` to this actor's own mailbox after ``delay`` seconds.

        The timer is cancelled when this incarnation stops (passivation, crash, shutdown). An
        actor with a pending timer is not passivated for idleness.
        """

    def send_every(self, interval: float, message: M_contra) -> Timer:
        """Deliver ``message`` to this actor every ``interval`` seconds until cancelled."""


class Actor(abc.ABC, Generic[M, R]):
    """Base class for actors: override :meth:`handle`, optionally the life-cycle hooks."""

    async def on_start(self) -> None:
        """Called before the first message of each incarnation (after a restart too).

        An exception here counts as a crash of the incarnation.
        """

    @abc.abstractmethod
    async def handle(self, message: M) -> R:
        """Handle one message. The return value answers an ``ask``; ``tell`` ignores it.

        An exception is classified by the system's classifier into retry, discard or crash.
        """

    async def on_stop(self) -> None:
        """Called after the last message when the actor is passivated or shut down cleanly.

        Not called after a crash: the incarnation's state is suspect then.
        """


class ActorRef(Generic[M, R]):
    """A handle on the actor for one key of a :class:`KeyedActors` system.

    Cheap to create; holding one does not keep the actor alive (it is activated on demand).
    """

    __slots__ = ("_key", "_system")

    def __init__(self, system: KeyedActors[M, R], key: str) -> None:
        self._system = system
        self._key = key

    @property
    def key(self) -> str:
        """The key this reference points at."""
        return self._key

    async def tell(self, message: M) -> None:
        """Deliver ``message``, waiting while the mailbox is full. See :meth:`KeyedActors.tell`."""
        await self._system.tell(self._key, message)

    def try_tell(self, message: M) -> None:
        """Deliver ``message`` or raise MailboxFull at once. See :meth:`KeyedActors.try_tell`."""
        self._system.try_tell(self._key, message)

    async def ask(self, message: M) -> R:
        """Deliver ``message`` and wait for the handler's result. See :meth:`KeyedActors.ask`."""
        return await self._system.ask(self._key, message)
