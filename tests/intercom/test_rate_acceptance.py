"""Acceptance: a burst of 5x the per-window budget through one RateBudget completes with at
most 1% of requests answered 429 by a sandbox enforcing that limit.

Three geometries: 1-second windows over real HTTP (fast), Intercom's real 10-second windows
on Trio's MockClock through an in-process ASGI transport (fast, virtual time), and 10-second
windows over real HTTP (slow, about 50 s)."""

from __future__ import annotations

import random
from dataclasses import dataclass

import httpx
import pytest
import trio
import trio.testing

from intercom import IntercomClient, IntercomRateLimited, RateBudget
from intercom.sandbox import IntercomSandbox, SandboxConfig
from runtime import hypercorn_config, serve_asgi

from .conftest import TOKEN, asgi_transport

EPOCH = 1_800_000_000.0


@dataclass
class Outcome:
    ok: int = 0
    rate_limited: int = 0


async def _burst(client: IntercomClient, count: int) -> Outcome:
    outcome = Outcome()

    async def one() -> None:
        try:
            await client.list_admins()
        except IntercomRateLimited:
            outcome.rate_limited += 1
        else:
            outcome.ok += 1

    async with trio.open_nursery() as nursery:
        for _ in range(count):
            nursery.start_soon(one)
    return outcome


def _check(sandbox: IntercomSandbox, outcome: Outcome, count: int) -> None:
    stats = sandbox.stats()
    assert outcome.ok + outcome.rate_limited == count
    assert stats["requests_total"] == count
    assert stats["rate_limited"] == outcome.rate_limited
    assert stats["rate_limited"] <= 0.01 * count, stats


async def _over_http(nursery: trio.Nursery, limit: int, window: float) -> tuple[float, float]:
    sandbox = IntercomSandbox(
        access_tokens=[TOKEN],
        config=SandboxConfig(rate_limit=limit, rate_window_seconds=window),
        rng=random.Random(5),
    )
    address = await nursery.start(serve_asgi, sandbox.app, hypercorn_config("127.0.0.1:0"))
    budget = RateBudget(limit=limit, window_seconds=window)
    limits = httpx.Limits(max_connections=limit * 5)
    async with httpx.AsyncClient(base_url=address.url, timeout=30, limits=limits) as http:
        client = IntercomClient(http, access_token=TOKEN, budget=budget)
        started = trio.current_time()
        outcome = await _burst(client, 5 * limit)
        elapsed = trio.current_time() - started
    _check(sandbox, outcome, 5 * limit)
    assert budget.waits > 0
    return elapsed, budget.wait_seconds


async def test_burst_over_http_with_one_second_windows(nursery: trio.Nursery) -> None:
    elapsed, _ = await _over_http(nursery, limit=20, window=1.0)
    assert elapsed >= 3.0  # five windows' worth cannot fit in fewer than four boundaries


async def test_burst_at_ten_second_geometry_on_virtual_time(
    autojump_clock: trio.testing.MockClock,
) -> None:
    def wall() -> float:
        return EPOCH + trio.current_time()

    limit = 166  # Intercom's 1,000/min spread over 10-second windows
    sandbox = IntercomSandbox(
        access_tokens=[TOKEN],
        config=SandboxConfig(rate_limit=limit, rate_window_seconds=10),
        clock=wall,
        rng=random.Random(6),
    )
    budget = RateBudget(limit=limit, window_seconds=10, wall_clock=wall)
    transport = asgi_transport(sandbox)
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as http:
        client = IntercomClient(http, access_token=TOKEN, budget=budget, wall_clock=wall)
        started = trio.current_time()
        outcome = await _burst(client, 5 * limit)
        elapsed = trio.current_time() - started
    _check(sandbox, outcome, 5 * limit)
    assert 40 <= elapsed <= 51
    assert budget.waits >= 4 * limit


async def test_budget_without_configured_limit_learns_from_the_first_429s(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A budget configured far above the real limit: one answer's X-RateLimit-Limit teaches
    it the real limit, and the burst that follows stays within it."""

    def wall() -> float:
        return EPOCH + trio.current_time()

    sandbox = IntercomSandbox(
        access_tokens=[TOKEN],
        config=SandboxConfig(rate_limit=50, rate_window_seconds=10),
        clock=wall,
    )
    budget = RateBudget(limit=1666, window_seconds=10, wall_clock=wall)
    transport = asgi_transport(sandbox)
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as http:
        client = IntercomClient(http, access_token=TOKEN, budget=budget, wall_clock=wall)
        await client.list_admins()  # one answer teaches the budget the limit
        outcome = await _burst(client, 250)
    assert budget.limit == 50
    assert outcome.rate_limited <= 0.01 * 250


@pytest.mark.slow
async def test_burst_over_http_with_real_ten_second_windows(nursery: trio.Nursery) -> None:
    elapsed, _ = await _over_http(nursery, limit=40, window=10.0)
    assert elapsed >= 30.0
