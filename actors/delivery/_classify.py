"""What the runtime does when delivering an entry raised: a short table, first match wins.

==========================================  ==============================================
the error                                   the decision
==========================================  ==============================================
:class:`InDoubt` (creation, delivery)       wait its ``seconds`` (not a failure)
``channels.SendInDoubt``                    wait 0.1 s (the next attempt leaves the note)
:class:`OwnershipUncertain`                 retry, counted, pausing up to a second
marked ``transient`` (``retry_after``       retry with backoff honouring ``retry_after``,
when rate-limited), the journal down        until the policy gives up
any other Intercom, channel or payload      give up (dead letter)
error
anything else (a bug)                       crash (the actor restarts)
==========================================  ==============================================

The markers are the error classes' own (``transient`` on ``channels`` and ``intercom`` errors,
and on the thread's ``ConversationGone``; ``retry_after`` on the rate-limited ones): the table
needs no list of them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from pydantic import ValidationError

from channels import ChannelError, SendInDoubt
from intercom import IntercomError
from runtime import Classifier, Decision, DecisionKind, JournalUnavailable, RetryPolicy

from ..core import LogLimiter
from ._doubt import InDoubt
from ._machine import OwnershipUncertain

__all__ = ["make_classifier"]

logger = logging.getLogger("threadline.thread")


def _transient(exc: Exception) -> bool:
    return getattr(exc, "transient", False) is True or isinstance(exc, JournalUnavailable)


def _retry_reason(exc: Exception) -> str:
    origin = "intercom" if isinstance(exc, IntercomError) else "channel"
    if hasattr(exc, "retry_after"):
        return f"{origin} 429"
    return f"intercom {type(exc).__name__}" if origin == "intercom" else type(exc).__name__


def make_classifier(policy: RetryPolicy, limiter: LogLimiter | None = None) -> Classifier:
    """The thread actors' ``classify(exc, attempt)``. Transient failures (Intercom or a
    provider down, 429s, the journal) are logged through ``limiter``: one warning per kind
    every ``LOG_REPEAT_SECONDS``, with the count of those left out, however many threads
    retry."""
    limiter = limiter or LogLimiter()

    def retry(exc: Exception, attempt: int) -> Decision:
        retry_after = getattr(exc, "retry_after", None) or None
        return policy.decide(attempt, retry_after=retry_after, reason=_retry_reason(exc))

    # Waits first: they do not spend the retry budget of a later real failure. A send in
    # doubt is not a failure to count either: the next attempt finds it in doubt, leaves the
    # note and goes on (a last counted attempt would bury the entry without it). Ownership
    # pauses are counted, so the pause grows to a second: thousands of live actors polling
    # every 0.1 s starved the very lease renewal they wait for.
    table: tuple[tuple[Callable[[Exception], bool], Callable[[Exception, int], Decision]], ...] = (
        (
            lambda exc: isinstance(exc, InDoubt),
            lambda exc, _: Decision.wait(_seconds(exc), _wait_reason(exc)),
        ),
        (
            lambda exc: isinstance(exc, SendInDoubt),
            lambda exc, _: Decision.wait(0.1, "send in doubt"),
        ),
        (
            lambda exc: isinstance(exc, OwnershipUncertain),
            lambda exc, attempt: Decision.retry(min(1.0, 0.1 * attempt), "lease renewal pending"),
        ),
        (_transient, retry),
        (
            lambda exc: isinstance(exc, IntercomError | ChannelError | ValidationError),
            lambda exc, _: Decision.discard(f"{type(exc).__name__}: {exc}"[:500]),
        ),
    )

    def classify(exc: Exception, attempt: int) -> Decision:
        for matches, decide in table:
            if matches(exc):
                decision = decide(exc, attempt)
                break
        else:
            decision = Decision.crash(type(exc).__name__)
        if (
            decision.kind is DecisionKind.RETRY
            and decision.counts
            and not isinstance(exc, OwnershipUncertain)
        ):
            status = getattr(exc, "status", None)
            limiter.log(
                logger, logging.WARNING, f"retry:{decision.reason}",
                "delivery failed (%s%s); retrying with backoff",
                decision.reason, f", status {status}" if status else "",
                extra={"request_id": getattr(exc, "request_id", None)},
            )  # fmt: skip
        return decision

    return classify


def _seconds(exc: Exception) -> float:
    assert isinstance(exc, InDoubt)
    return exc.seconds


def _wait_reason(exc: Exception) -> str:
    assert isinstance(exc, InDoubt)
    return exc.wait_reason
