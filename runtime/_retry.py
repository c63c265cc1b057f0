"""Pure retry decisions: exponential backoff with full jitter, a cap, and Retry-After.

The policy decides; the runtime applies the decision (sleeps, re-delivers, counts). Nothing here
sleeps or does I/O, so every property can be checked with plain values.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["Classifier", "Decision", "DecisionKind", "RetryPolicy", "crash_always"]


class DecisionKind(enum.Enum):
    """What to do with a message whose handler raised."""

    RETRY = "retry"
    """Deliver the same message again after ``Decision.after`` seconds."""
    DISCARD = "discard"
    """Give the message up (it goes to the dead-letter hook) and move on to the next one."""
    CRASH = "crash"
    """Let the supervisor restart the actor; the message is delivered again to the new one."""


@dataclass(frozen=True, slots=True)
class Decision:
    """A classification of one failure. Build with :meth:`retry`, :data:`DISCARD`, :data:`CRASH`."""

    kind: DecisionKind
    after: float = 0.0
    reason: str = ""
    counts: bool = True
    """Whether this failure counts towards the message's attempts (a wait does not)."""

    @staticmethod
    def retry(after: float, reason: str = "") -> Decision:
        """Retry the same message after ``after`` seconds (clamped at zero)."""
        return Decision(DecisionKind.RETRY, max(0.0, after), reason)

    @staticmethod
    def wait(after: float, reason: str = "") -> Decision:
        """Deliver the same message again after ``after`` seconds without counting an attempt:
        nothing failed, something has to settle first."""
        return Decision(DecisionKind.RETRY, max(0.0, after), reason, counts=False)

    @staticmethod
    def discard(reason: str = "") -> Decision:
        """Give the message up and continue with the next one."""
        return Decision(DecisionKind.DISCARD, 0.0, reason)

    @staticmethod
    def crash(reason: str = "") -> Decision:
        """Let the supervisor restart the actor."""
        return Decision(DecisionKind.CRASH, 0.0, reason)


def crash_always(exc: Exception, attempt: int) -> Decision:
    """The default classifier: every failure crashes the actor (the supervisor restarts it)."""
    return Decision.crash(type(exc).__name__)


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, capped, honouring a server's Retry-After.

    ``attempt`` counts failures of one message so far, starting at 1 for the first failure.
    Without a Retry-After the delay is uniform in ``[0, min(cap, base * 2**(attempt-1))]``
    ("full jitter"); with one, it is the server's delay plus a jitter of at most ``base`` so that
    many actors waiting for the same reset do not all fire in the same instant. After
    ``max_attempts`` failures the decision is DISCARD.

    Args:
        max_attempts: failures after which the message is given up (>= 1).
        base: the first backoff ceiling in seconds.
        cap: no backoff ceiling exceeds this (a Retry-After may).
        max_retry_after: a Retry-After beyond this is treated as this (a misbehaving server must
            not park a thread for a day).
        rng: the source of jitter; inject a seeded ``random.Random`` for reproducible tests.
    """

    max_attempts: int = 8
    base: float = 0.5
    cap: float = 30.0
    max_retry_after: float = 300.0
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        if not (0 < self.base <= self.cap):
            raise ValueError("need 0 < base <= cap")

    def ceiling(self, attempt: int) -> float:
        """The backoff ceiling for the given failure count, before jitter."""
        # min() on the exponent first, so a huge attempt count cannot overflow a float.
        exponent = min(max(attempt - 1, 0), 62)
        return min(self.cap, self.base * float(2**exponent))

    def backoff(self, attempt: int, retry_after: float | None = None) -> float:
        """The delay before the next try, in seconds."""
        if retry_after is not None and retry_after > 0:
            return min(retry_after, self.max_retry_after) + self.rng.uniform(0.0, self.base)
        return self.rng.uniform(0.0, self.ceiling(attempt))

    def decide(self, attempt: int, retry_after: float | None = None, reason: str = "") -> Decision:
        """RETRY after a backoff while attempts remain, DISCARD once ``max_attempts`` is reached."""
        if attempt >= self.max_attempts:
            return Decision.discard(reason or f"gave up after {attempt} attempts")
        return Decision.retry(self.backoff(attempt, retry_after), reason)


Classifier = Callable[[Exception, int], Decision]
"""``classify(exc, attempt) -> Decision`` for a message whose handler raised."""
