"""Hypothesis properties of the sandbox search paging and the rate budget."""

from __future__ import annotations

import collections
import itertools

import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from intercom import RateBudget
from intercom.sandbox import SandboxState, search_contacts


@given(
    phones=st.lists(st.sampled_from(["+1", "+2", "+3"]), max_size=40),
    per_page=st.integers(1, 7),
    wanted=st.sampled_from(["+1", "+2", "+3"]),
)
def test_paging_returns_every_match_once_in_creation_order(
    phones: list[str], per_page: int, wanted: str
) -> None:
    state = SandboxState()
    created = [state.create_contact({"role": "lead", "phone": p}, 0.0, strict=True) for p in phones]
    expected = [c.id for c in created if c.phone == wanted]
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(len(phones) + 2):
        pagination: dict[str, object] = {"per_page": per_page}
        if cursor is not None:
            pagination["starting_after"] = cursor
        body = {
            "query": {"field": "phone", "operator": "=", "value": wanted},
            "pagination": pagination,
        }
        page, total, cursor, _ = search_contacts(state, body, now=1.0, lag=0.0)
        assert total == len(expected)
        assert len(page) <= per_page
        seen.extend(c.id for c in page)
        if cursor is None:
            break
    assert seen == expected


@settings(max_examples=30, deadline=None)
@given(
    limit=st.integers(1, 20),
    window=st.sampled_from([1.0, 10.0]),
    arrivals=st.lists(st.floats(0, 30, allow_nan=False), min_size=1, max_size=80),
)
def test_budget_never_exceeds_its_limit_in_any_window(
    limit: int, window: float, arrivals: list[float]
) -> None:
    grants: list[tuple[float, float]] = []  # (granted at, end of the window it was granted in)

    async def main() -> None:
        budget = RateBudget(limit=limit, window_seconds=window, margin_seconds=0)

        async def caller(at: float) -> None:
            await trio.sleep(at)
            await budget.acquire()
            grants.append((trio.current_time(), budget.window_end))
            budget.release()

        async with trio.open_nursery() as nursery:
            for at in arrivals:
                nursery.start_soon(caller, at)

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert len(grants) == len(arrivals)
    per_window = collections.Counter(end for _, end in grants)
    assert max(per_window.values()) <= limit
    for granted, end in grants:
        assert end - window - 1e-9 <= granted < end
    ends = sorted(per_window)
    assert all(b - a >= window - 1e-9 for a, b in itertools.pairwise(ends))


def test_a_request_exactly_one_window_after_the_last_window_gets_a_live_window() -> None:
    """Found by Hypothesis in CI: a window ending at 20 s, the next request at exactly 30 s."""
    ends: list[tuple[float, float]] = []

    async def main() -> None:
        budget = RateBudget(limit=1, window_seconds=10.0, margin_seconds=0)
        for at in (10.0, 30.0):
            await trio.sleep_until(at)
            await budget.acquire()
            ends.append((trio.current_time(), budget.window_end))
            budget.release()

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert all(granted < end for granted, end in ends)
