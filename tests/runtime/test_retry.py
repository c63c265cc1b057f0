from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runtime import Decision, DecisionKind, RetryPolicy, crash_always

policies = st.builds(
    lambda base, factor, attempts, seed: RetryPolicy(
        max_attempts=attempts, base=base, cap=base * factor, rng=random.Random(seed)
    ),
    base=st.floats(0.001, 10.0),
    factor=st.floats(1.0, 1000.0),
    attempts=st.integers(1, 50),
    seed=st.integers(0, 2**32),
)


@given(policies, st.integers(1, 10_000))
def test_backoff_never_exceeds_the_cap(policy: RetryPolicy, attempt: int) -> None:
    delay = policy.backoff(attempt)
    assert 0.0 <= delay <= policy.cap


@given(policies, st.integers(1, 200))
def test_ceiling_grows_with_attempts_until_the_cap(policy: RetryPolicy, attempt: int) -> None:
    assert policy.ceiling(attempt) <= policy.ceiling(attempt + 1) <= policy.cap
    assert policy.ceiling(1) == policy.base


@given(policies, st.integers(1, 60))
def test_full_jitter_stays_within_the_ceiling(policy: RetryPolicy, attempt: int) -> None:
    delays = [policy.backoff(attempt) for _ in range(20)]
    assert all(0.0 <= d <= policy.ceiling(attempt) for d in delays)


@given(policies, st.integers(1, 60), st.floats(0.001, 10_000.0))
def test_retry_after_is_honoured_with_bounded_jitter(
    policy: RetryPolicy, attempt: int, retry_after: float
) -> None:
    delay = policy.backoff(attempt, retry_after)
    honoured = min(retry_after, policy.max_retry_after)
    assert honoured <= delay <= honoured + policy.base


@given(policies, st.data())
def test_decide_retries_until_max_attempts_then_discards(
    policy: RetryPolicy, data: st.DataObject
) -> None:
    attempt = data.draw(st.integers(1, policy.max_attempts + 5))
    decision = policy.decide(attempt)
    if attempt < policy.max_attempts:
        assert decision.kind is DecisionKind.RETRY
        assert 0.0 <= decision.after <= policy.cap
    else:
        assert decision.kind is DecisionKind.DISCARD


def test_seeded_policies_are_reproducible() -> None:
    a = RetryPolicy(rng=random.Random(7))
    b = RetryPolicy(rng=random.Random(7))
    assert [a.backoff(n) for n in range(1, 10)] == [b.backoff(n) for n in range(1, 10)]


def test_default_classifier_crashes() -> None:
    assert crash_always(ValueError("x"), 1).kind is DecisionKind.CRASH


def test_decision_constructors() -> None:
    assert Decision.retry(-1.0).after == 0.0
    assert Decision.discard("why").reason == "why"
    assert Decision.crash().kind is DecisionKind.CRASH


@pytest.mark.parametrize(("attempts", "base", "cap"), [(0, 1.0, 2.0), (1, 0.0, 1.0), (1, 2.0, 1.0)])
def test_invalid_policies_are_refused(attempts: int, base: float, cap: float) -> None:
    with pytest.raises(ValueError, match=r"max_attempts|base"):
        RetryPolicy(max_attempts=attempts, base=base, cap=cap)
