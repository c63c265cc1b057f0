"""RateBudget timing logic on Trio's MockClock (no real HTTP, no real waiting)."""

from __future__ import annotations

import httpx
import pytest
import trio
import trio.testing

from intercom import RateBudget

EPOCH = 1_800_000_000.0


def wall() -> float:
    """A wall clock that moves with Trio's (mock) clock."""
    return EPOCH + trio.current_time()


def headers(limit: int, remaining: int, reset: float) -> httpx.Headers:
    return httpx.Headers(
        {
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": str(int(reset)),
        }
    )


async def _burst(budget: RateBudget, count: int) -> list[float]:
    times: list[float] = []

    async def one() -> None:
        await budget.acquire()
        times.append(trio.current_time())
        budget.release()

    async with trio.open_nursery() as nursery:
        for _ in range(count):
            nursery.start_soon(one)
    return sorted(times)


async def test_without_headers_allows_limit_per_window(
    autojump_clock: trio.testing.MockClock,
) -> None:
    budget = RateBudget(limit=3, window_seconds=10, wall_clock=wall)
    start = trio.current_time()
    times = [t - start for t in await _burst(budget, 7)]
    assert times == pytest.approx([0, 0, 0, 10, 10, 10, 20])
    assert budget.acquired == 7
    assert budget.waits == 4
    assert budget.wait_seconds == pytest.approx(10 * 3 + 20)


async def test_adopts_intercom_window_from_headers(autojump_clock: trio.testing.MockClock) -> None:
    budget = RateBudget(limit=100, window_seconds=10, margin_seconds=0, wall_clock=wall)
    await budget.acquire()
    budget.observe(headers(limit=5, remaining=0, reset=wall() + 4), 200)
    assert budget.limit == 5
    started = trio.current_time()
    await budget.acquire()
    assert trio.current_time() - started == pytest.approx(4, abs=1)
    assert budget.remaining == 4


async def test_remaining_counts_requests_still_in_flight(
    autojump_clock: trio.testing.MockClock,
) -> None:
    budget = RateBudget(limit=10, window_seconds=10, wall_clock=wall)
    for _ in range(4):
        await budget.acquire()
    # Intercom has counted only the first request so far: it says 9 remain, but 3 are on
    # their way, so only 6 may still be sent in this window.
    budget.observe(headers(limit=10, remaining=9, reset=wall() + 8), 200)
    assert budget.in_flight == 3
    assert budget.remaining == 6


async def test_news_about_an_old_window_is_ignored(autojump_clock: trio.testing.MockClock) -> None:
    budget = RateBudget(limit=10, window_seconds=10, margin_seconds=0, wall_clock=wall)
    await budget.acquire()
    budget.observe(headers(limit=10, remaining=9, reset=wall() + 2), 200)
    await trio.sleep(3)  # that window ended; a new one (ending at +12) has begun
    await budget.acquire()
    await budget.acquire()
    budget.observe(headers(limit=10, remaining=0, reset=wall() - 1), 200)  # a late answer
    assert budget.remaining == 8


async def test_429_without_headers_waits_retry_after(
    autojump_clock: trio.testing.MockClock,
) -> None:
    budget = RateBudget(limit=10, window_seconds=10, wall_clock=wall)
    await budget.acquire()
    budget.observe(httpx.Headers({"Retry-After": "7"}), 429)
    assert budget.rate_limited == 1
    started = trio.current_time()
    await budget.acquire()
    assert trio.current_time() - started == pytest.approx(7)


async def test_cancelled_wait_takes_nothing(autojump_clock: trio.testing.MockClock) -> None:
    budget = RateBudget(limit=1, window_seconds=10, wall_clock=wall)
    await budget.acquire()
    with trio.move_on_after(1):
        await budget.acquire()
    assert budget.acquired == 1
    assert budget.in_flight == 1


def test_invalid_budget_is_refused() -> None:
    with pytest.raises(ValueError, match="limit"):
        RateBudget(limit=0)


async def test_limit_header_only_lowers_the_configured_limit(
    autojump_clock: trio.testing.MockClock,
) -> None:
    budget = RateBudget(limit=1666, window_seconds=10, wall_clock=wall)
    await budget.acquire()
    budget.observe(headers(limit=10000, remaining=9999, reset=wall() + 5), 200)
    assert budget.limit == 1666
    await budget.acquire()
    budget.observe(headers(limit=50, remaining=48, reset=wall() + 5), 200)
    assert budget.limit == 50


async def test_a_429_waits_at_least_a_second(autojump_clock: trio.testing.MockClock) -> None:
    budget = RateBudget(limit=10, window_seconds=10, margin_seconds=0, wall_clock=wall)
    await budget.acquire()
    budget.observe(headers(limit=10, remaining=0, reset=wall()), 429)  # reset already "now"
    started = trio.current_time()
    await budget.acquire()
    assert trio.current_time() - started == pytest.approx(1.0)


async def test_a_ticket_discounts_only_requests_sent_after_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # Five requests in flight; the last one's answer says the server counted all five.
    budget = RateBudget(limit=10, window_seconds=10, margin_seconds=0, wall_clock=wall)
    tickets = [await budget.acquire() for _ in range(5)]
    assert tickets == [1, 2, 3, 4, 5]
    budget.observe(headers(limit=10, remaining=5, reset=wall() + 5), 200, tickets[-1])
    assert budget.remaining == 5  # the four earlier ones are in its count already
    untracked = RateBudget(limit=10, window_seconds=10, margin_seconds=0, wall_clock=wall)
    for _ in range(5):
        await untracked.acquire()
    untracked.observe(headers(limit=10, remaining=5, reset=wall() + 5), 200)
    assert untracked.remaining == 1  # without a ticket, every one in flight is discounted


async def test_out_of_order_answers_do_not_shrink_our_own_count(
    autojump_clock: trio.testing.MockClock,
) -> None:
    budget = RateBudget(limit=10, window_seconds=10, margin_seconds=0, wall_clock=wall)
    tickets = [await budget.acquire() for _ in range(4)]
    budget.observe(headers(limit=10, remaining=6, reset=wall() + 5), 200, tickets[3])
    assert budget.remaining == 6
    later = [await budget.acquire() for _ in range(2)]
    assert budget.remaining == 4
    # The first request was counted first by Intercom: its Remaining is stale, not news.
    budget.observe(headers(limit=10, remaining=9, reset=wall() + 5), 200, tickets[0])
    assert budget.remaining == 4
    # Fewer left than we spent: another process shares the budget; ours in flight count too.
    budget.observe(headers(limit=10, remaining=2, reset=wall() + 5), 200, later[0])
    assert budget.remaining == 1
