"""The thread actors' classifier: each row of its table, and its order."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from actors.bridge import ConversationGone
from actors.delivery import DeliveryInDoubt, InDoubt, OwnershipUncertain, make_classifier
from channels import SendInDoubt, SendRateLimited, SendRejected, SendTransient
from intercom import (
    IntercomNotFound,
    IntercomRateLimited,
    IntercomTimeout,
    IntercomTransportError,
    IntercomUnavailable,
)
from runtime import Decision, DecisionKind, JournalUnavailable, RetryPolicy

RETRY, DISCARD, CRASH = DecisionKind.RETRY, DecisionKind.DISCARD, DecisionKind.CRASH


def _validation_error() -> ValidationError:
    class Model(BaseModel):
        n: int

    try:
        Model.model_validate({"n": "x"})
    except ValidationError as exc:
        return exc
    raise AssertionError("not refused")


def _decide(exc: Exception, attempt: int = 1) -> Decision:
    return make_classifier(RetryPolicy(max_attempts=3, base=0.5, cap=4.0))(exc, attempt)


@pytest.mark.parametrize(
    ("exc", "kind", "reason", "counts"),
    [
        (DeliveryInDoubt(7, 2.0), RETRY, "delivery in doubt", False),
        (InDoubt("the contact", 3.0), RETRY, "creation in doubt", False),
        (SendInDoubt("no answer"), RETRY, "send in doubt", False),
        (OwnershipUncertain(3), RETRY, "lease renewal pending", True),
        (IntercomRateLimited("429", retry_after=0), RETRY, "intercom 429", True),
        (SendRateLimited("429", retry_after=None), RETRY, "channel 429", True),
        (IntercomUnavailable("503", status=503), RETRY, "intercom IntercomUnavailable", True),
        (IntercomTransportError("reset"), RETRY, "intercom IntercomTransportError", True),
        (IntercomTimeout("slow"), RETRY, "intercom IntercomTimeout", True),
        (SendTransient("502"), RETRY, "SendTransient", True),
        (JournalUnavailable("down"), RETRY, "JournalUnavailable", True),
        (ConversationGone("c1"), RETRY, "ConversationGone", True),
        (IntercomNotFound("gone", status=404), DISCARD, "IntercomNotFound: gone", True),
        (SendRejected("no"), DISCARD, "SendRejected: no", True),
        (_validation_error(), DISCARD, "ValidationError", True),
        (KeyError("bug"), CRASH, "KeyError", True),
    ],
)
def test_each_row(exc: Exception, kind: DecisionKind, reason: str, counts: bool) -> None:
    decision = _decide(exc)
    assert decision.kind is kind
    assert decision.reason.startswith(reason)
    assert decision.counts is counts


def test_waits_last_what_they_say() -> None:
    assert _decide(DeliveryInDoubt(7, 2.5)).after == 2.5
    assert _decide(SendInDoubt("no answer")).after == 0.1
    assert _decide(OwnershipUncertain(3), attempt=20).after == 1.0


def test_a_retry_after_is_honoured_and_transient_failures_give_up_at_the_last_attempt() -> None:
    assert _decide(SendRateLimited("429", retry_after=9.0)).after >= 9.0
    assert _decide(IntercomRateLimited("429", retry_after=9.0)).after >= 9.0
    assert _decide(SendTransient("502"), attempt=3).kind is DISCARD
    assert _decide(SendInDoubt("no answer"), attempt=3).kind is RETRY  # a wait, not counted
