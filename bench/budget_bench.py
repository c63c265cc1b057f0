"""Intercom budget benchmark: one budget for the whole cluster (a counter per Intercom window in
PostgreSQL, ``SharedRateBudget``) against the per-process budget, measured in the same run.

- ``cost``: what the budget adds to each Intercom request, with a limit so high that nobody
  waits: ``acquire`` + ``observe`` per request, R requests at concurrency C (the bridge's 64
  connections, and 1: every request its own round trip). Baseline: the per-process
  ``RateBudget`` (no I/O). Reported: microseconds per request, round trips per request, and
  the shared budget's cost as a ratio of the per-process one and of a 100 ms Intercom request.
- ``share``: N budgets (one journal connection pool each, as N nodes) send a backlog to the
  sandbox Intercom over loopback HTTP, limited to L requests per window (epoch-aligned).
  Reported for the shared budget and for the former fixed share (``limit / nodes`` each, in
  windows of its own): requests answered 429 and the use of each whole window.

A throwaway PostgreSQL server is started (the suite's fixture) unless ``--database-url`` names
one. Run: ``.venv/bin/python bench/budget_bench.py [--quick] [--json]``.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import random
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import trio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from intercom import (  # noqa: E402
    IntercomClient,
    IntercomRateLimited,
    RateBudget,
    SharedRateBudget,
    WindowClaim,
)
from intercom.sandbox import IntercomSandbox, SandboxConfig  # noqa: E402
from runtime import (  # noqa: E402
    PostgresJournal,
    hypercorn_config,
    open_postgres_journal,
    serve_asgi,
)

TOKEN = "bench-token"  # noqa: S105 - the sandbox's, not a secret
OK = httpx.Headers({"X-RateLimit-Limit": "1000000000", "X-RateLimit-Remaining": "999999999"})


def claim_on(journal: PostgresJournal, name: str) -> WindowClaim:
    async def claim(window: int, want: int, limit: int, floor: int) -> int:
        return await journal.claim_window(name, window, want, limit=limit, floor=floor)

    return claim


@contextlib.asynccontextmanager
async def journals(url: str, count: int) -> AsyncIterator[list[PostgresJournal]]:
    async with AsyncExitStack() as stack:
        yield [
            await stack.enter_async_context(open_postgres_journal(url, pool_size=4))
            for _ in range(count)
        ]


async def cost_of(budget: RateBudget, requests: int, concurrency: int) -> float:
    """Seconds per request of acquire + observe, ``concurrency`` callers at once."""
    per_task = requests // concurrency

    async def caller() -> None:
        for _ in range(per_task):
            ticket = await budget.acquire()
            budget.observe(OK, 200, ticket)

    started = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for _ in range(concurrency):
            nursery.start_soon(caller)
    return (time.perf_counter() - started) / (per_task * concurrency)


async def cost(url: str, requests: int, rounds: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    async with journals(url, 1) as (journal,):
        for concurrency in (64, 1):
            n = requests if concurrency > 1 else max(200, requests // 20)
            best_local, best_shared, claims = float("inf"), float("inf"), 0.0
            for number in range(rounds):  # interleaved rounds, best of each side
                local = RateBudget(limit=10**9)
                best_local = min(best_local, await cost_of(local, n, concurrency))
                shared = SharedRateBudget(claim_on(journal, f"bench-{concurrency}-{number}"),
                                          limit=10**9)  # fmt: skip
                best_shared = min(best_shared, await cost_of(shared, n, concurrency))
                claims = shared.claims / shared.acquired
            out[f"c{concurrency}"] = {
                "requests": n,
                "per_process_us": round(best_local * 1e6, 2),
                "shared_us": round(best_shared * 1e6, 2),
                "ratio": round(best_shared / best_local, 1),
                "round_trips_per_request": round(claims, 3),
                "shared_share_of_100ms_request": round(best_shared / 0.1, 5),
            }
    return out


async def share(
    url: str, *, nodes: int, limit: int, window: float, windows: int, shared: bool
) -> dict[str, Any]:
    sandbox = IntercomSandbox(
        access_tokens=[TOKEN],
        config=SandboxConfig(rate_limit=limit, rate_window_seconds=window),
        rng=random.Random(3),
    )
    name = f"share-{time.time_ns()}"
    async with journals(url, nodes) as pools, trio.open_nursery() as nursery:
        address = await nursery.start(serve_asgi, sandbox.app, hypercorn_config("127.0.0.1:0"))
        budgets: list[RateBudget] = [
            SharedRateBudget(claim_on(pool, name), limit=limit, window_seconds=window,
                             tail_seconds=min(0.25, window / 10))
            if shared
            else RateBudget(limit=max(1, limit // nodes), window_seconds=window)
            for pool in pools
        ]  # fmt: skip
        refused = 0
        deadline = trio.current_time() + windows * window

        async def worker(client: IntercomClient) -> None:
            nonlocal refused
            while trio.current_time() < deadline:
                try:
                    await client.list_admins()
                except IntercomRateLimited:
                    refused += 1

        async with AsyncExitStack() as stack:
            clients = [
                IntercomClient(
                    await stack.enter_async_context(
                        httpx.AsyncClient(base_url=address.url, timeout=30)
                    ),
                    access_token=TOKEN,
                    budget=budget,
                )
                for budget in budgets
            ]
            async with trio.open_nursery() as load:
                for number in range(limit * 2):  # always more callers waiting than slots
                    load.start_soon(worker, clients[number % nodes])
        nursery.cancel_scope.cancel()
    stats = sandbox.stats()
    whole = [w["allowed"] / w["limit"] for w in stats["windows"][1:-1]]
    return {
        "requests": stats["requests_total"],
        "rate_limited": stats["rate_limited"],
        "rate_limited_share": round(stats["rate_limited"] / max(1, stats["requests_total"]), 4),
        "whole_windows_used": [round(u, 3) for u in whole],
        "min_window_use": round(min(whole), 3) if whole else None,
        "round_trips": sum(b.claims for b in budgets if isinstance(b, SharedRateBudget)),
    }


@contextlib.contextmanager
def database(url: str | None) -> Iterator[str]:
    if url is not None:
        yield url
        return
    from tests.postgres import throwaway_server  # the suite's fixture, outside pytest

    with throwaway_server() as server:
        yield server.create_database()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="small runs (a smoke test)")
    parser.add_argument("--json", action="store_true", help="print one JSON object at the end")
    parser.add_argument("--database-url", help="a PostgreSQL database to use")
    parser.add_argument("--window", type=float, default=10.0, help="share: window seconds")
    parser.add_argument("--limit", type=int, default=30, help="share: requests per window")
    args = parser.parse_args()
    requests, rounds, windows = (2_000, 1, 3) if args.quick else (40_000, 3, 6)
    window = min(args.window, 2.0) if args.quick else args.window
    result: dict[str, Any] = {}
    with database(args.database_url) as url:
        result["cost"] = trio.run(cost, url, requests, rounds)
        for shared in (True, False):
            run = functools.partial(
                share, url, nodes=3, limit=args.limit, window=window, windows=windows, shared=shared
            )
            result["share_shared" if shared else "share_fixed"] = trio.run(run)
    for key, row in result["cost"].items():
        print(
            f"cost, concurrency {key[1:]}: per-process {row['per_process_us']} us/request,"
            f" shared {row['shared_us']} us/request ({row['ratio']} x;"
            f" {row['round_trips_per_request']} PostgreSQL round trips per request;"
            f" {row['shared_share_of_100ms_request'] * 100:.3f} % of a 100 ms Intercom request)"
        )
    for key, label in (("share_shared", "shared counter"), ("share_fixed", "limit / nodes")):
        row = result[key]
        print(
            f"3 nodes, {args.limit} per {window:g} s window, {label}: {row['requests']} requests,"
            f" {row['rate_limited']} answered 429 ({row['rate_limited_share'] * 100:.1f} %),"
            f" whole windows used {row['whole_windows_used']}"
        )
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
