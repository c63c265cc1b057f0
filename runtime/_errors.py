"""The runtime's exceptions.

::

    ActorError(Exception)          misuse or state of the runtime
      ActorStopped                 tell/ask after stop; pending asks fail with it
      MailboxFull                  try_tell / put_nowait on a full mailbox
      RestartLimitExceeded         a supervisor gave up; raised into its parent nursery
    JournalError(Exception)        durable storage failed
      JournalUnavailable           cannot reach the store or cannot commit (transient)

Names say what happened. Attributes are for code, the message is for humans.
"""

from __future__ import annotations

__all__ = [
    "ActorError",
    "ActorStopped",
    "JournalError",
    "JournalUnavailable",
    "MailboxFull",
    "RestartLimitExceeded",
]


class ActorError(Exception):
    """Base class for misuse or state errors of the actor runtime."""


class ActorStopped(ActorError):
    """The actor (or the whole system) has stopped, or is stopping, and takes no more messages.

    Raised by ``tell``/``ask`` after shutdown has begun, and given to every pending ``ask`` whose
    message was abandoned by a shutdown.
    """


class MailboxFull(ActorError):
    """A non-blocking put found the mailbox at capacity. Nothing was enqueued."""

    def __init__(self, capacity: int) -> None:
        super().__init__(f"mailbox is full ({capacity} messages)")
        self.capacity = capacity


class RestartLimitExceeded(ActorError):
    """More restarts than the intensity budget allows (N within T seconds).

    A supervisor raises it into its parent nursery: this is the failure it cannot absorb.
    The triggering exception is chained as ``__cause__``.
    """

    def __init__(self, who: str, restarts: int, period: float) -> None:
        super().__init__(f"{who}: more than {restarts} restarts within {period:g}s; giving up")
        self.who = who
        self.restarts = restarts
        self.period = period


class JournalError(Exception):
    """Durable storage failed."""


class JournalUnavailable(JournalError):
    """The journal cannot be reached or cannot commit right now; nothing was (or can be known
    to have been) written. Transient: callers answer 503 with Retry-After, or retry."""
