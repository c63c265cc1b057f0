"""SharedRateBudget: several processes' budgets over one counter per window in a real PostgreSQL
journal, against the sandbox Intercom over real HTTP (1-second windows, so it is quick)."""

from __future__ import annotations

import math
import random
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import httpx
import trio

from intercom import IntercomClient, IntercomRateLimited, RateBudget, SharedRateBudget, WindowClaim
from intercom.sandbox import IntercomSandbox, SandboxConfig
from runtime import PostgresJournal, hypercorn_config, open_postgres_journal, serve_asgi
from tests.postgres import PostgresServer

from .conftest import TOKEN

LIMIT = 20
WINDOW = 1.0


def claim_on(journal: PostgresJournal) -> WindowClaim:
    async def claim(window: int, want: int, limit: int, floor: int) -> int:
        return await journal.claim_window("intercom", window, want, limit=limit, floor=floor)

    return claim


@asynccontextmanager
async def processes(
    url: str, count: int, *, per_process: bool = False
) -> AsyncIterator[list[RateBudget]]:
    """``count`` budgets, each on its own journal connection pool, as separate nodes have;
    ``per_process``: each with a fixed share of the limit instead (the former design)."""
    async with AsyncExitStack() as stack:
        budgets: list[RateBudget] = []
        for _ in range(count):
            journal = await stack.enter_async_context(open_postgres_journal(url, pool_size=2))
            budgets.append(
                RateBudget(limit=LIMIT // count, window_seconds=WINDOW)
                if per_process
                else SharedRateBudget(
                    claim_on(journal), limit=LIMIT, window_seconds=WINDOW, tail_seconds=0.1
                )
            )
        yield budgets


async def burst(budgets: list[RateBudget], count: int) -> tuple[int, IntercomSandbox]:
    """``count`` requests spread over the budgets' clients at once; returns the 429s."""
    sandbox = IntercomSandbox(
        access_tokens=[TOKEN],
        config=SandboxConfig(rate_limit=LIMIT, rate_window_seconds=WINDOW),
        rng=random.Random(7),
    )
    refused = 0
    async with trio.open_nursery() as nursery:
        address = await nursery.start(serve_asgi, sandbox.app, hypercorn_config("127.0.0.1:0"))
        async with AsyncExitStack() as stack:
            clients = []
            for budget in budgets:
                http = await stack.enter_async_context(
                    httpx.AsyncClient(base_url=address.url, timeout=30)
                )
                clients.append(IntercomClient(http, access_token=TOKEN, budget=budget))

            async def one(client: IntercomClient) -> None:
                nonlocal refused
                try:
                    await client.list_admins()
                except IntercomRateLimited:
                    refused += 1

            async with trio.open_nursery() as requests:
                for number in range(count):
                    requests.start_soon(one, clients[number % len(clients)])
        nursery.cancel_scope.cancel()
    return refused, sandbox


async def test_three_processes_share_each_window_without_429s(
    postgres_server: PostgresServer,
) -> None:
    url = postgres_server.create_database()
    async with processes(url, 3) as budgets:
        refused, sandbox = await burst(budgets, 6 * LIMIT)
    windows = sandbox.stats()["windows"]
    assert refused <= 0.01 * 6 * LIMIT, windows
    # The windows between the first and the last (partial ones) are used to 0.95 on average;
    # with 1-second windows a loaded machine can push a few requests into the next window, so
    # no single one may fall below 0.75.
    assert len(windows) >= 5, windows
    inner = [w["allowed"] for w in windows[1:-1]]
    assert sum(inner) >= 0.95 * LIMIT * len(inner), windows
    assert min(inner) >= 0.75 * LIMIT, windows
    claims = sum(b.claims for b in budgets if isinstance(b, SharedRateBudget))
    assert claims < 6 * LIMIT  # several slots per round trip


async def test_fixed_shares_per_process_collect_429s(postgres_server: PostgresServer) -> None:
    """What the shared counter replaces: each process with ``limit / processes`` in windows of
    its own — the processes' windows are not Intercom's, and they collect 429s (or, with
    them, under-use the windows)."""
    url = postgres_server.create_database()
    async with processes(url, 3, per_process=True) as budgets:
        refused, sandbox = await burst(budgets, 6 * LIMIT)
    windows = sandbox.stats()["windows"]
    short = [w for w in windows[1:-1] if w["allowed"] < 0.95 * LIMIT]
    assert refused > 0.01 * 6 * LIMIT or short, windows


def mid_window() -> float:
    """A wall time in the middle of the current window (requests may go out)."""
    now = time.time()
    return math.floor(now / WINDOW) * WINDOW + WINDOW / 2


def shared(journal: PostgresJournal, frozen: float) -> SharedRateBudget:
    """A budget of 10 per window whose wall clock stands still at ``frozen``."""
    return SharedRateBudget(
        claim_on(journal),
        limit=10,
        window_seconds=WINDOW,
        tail_seconds=0.1,
        wall_clock=lambda: frozen,
    )


def rate_headers(limit: int, remaining: int, reset: float) -> httpx.Headers:
    return httpx.Headers(
        {
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": str(int(reset)),
        }
    )


async def test_a_429_spends_the_window_for_every_process(postgres_server: PostgresServer) -> None:
    url = postgres_server.create_database()
    frozen = mid_window()
    async with AsyncExitStack() as stack:
        budgets = []
        for _ in range(2):
            journal = await stack.enter_async_context(open_postgres_journal(url, pool_size=2))
            budgets.append(shared(journal, frozen))
        a, b = budgets
        await a.acquire()
        a.observe(rate_headers(10, 0, frozen + WINDOW / 2), 429)
        # a has no slot and wants one: it tells the counter the window is spent, and waits.
        with trio.move_on_after(0.3):
            await a.acquire()
        with trio.move_on_after(0.3) as waited:
            await b.acquire()
        assert waited.cancelled_caught, "b took a slot of a window Intercom refused"
        assert a.rate_limited == 1


async def test_a_lower_remaining_raises_the_shared_count(postgres_server: PostgresServer) -> None:
    url = postgres_server.create_database()
    frozen = mid_window()
    async with open_postgres_journal(url, pool_size=2) as journal:
        budget = shared(journal, frozen)
        await budget.acquire()
        # Intercom counts 7 in this window: someone else (another app on the token) sent 6.
        budget.observe(rate_headers(10, 3, frozen + WINDOW / 2), 200, 1)
        taken = 0
        with trio.move_on_after(0.5):
            while True:
                await budget.acquire()
                taken += 1
        assert taken == 3
        window = math.floor(frozen / WINDOW)
        assert await journal.claim_window("intercom", window, 1, limit=10) == 0
