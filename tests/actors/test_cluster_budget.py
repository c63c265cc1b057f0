"""One Intercom rate budget for the whole cluster: ``threadline serve`` nodes on one PostgreSQL,
30 customers writing at once, the sandbox Intercom allowing 30 requests per 10-second window
(aligned to the UNIX epoch, as Intercom's). Every window in which work was waiting is used to
at least 95 % of its limit, and at most 1 % of all requests are answered 429 — with three
steady nodes, and with a node joining and another killed (-9) mid-run.

Set ``THREADLINE_BUDGET_REPORT=budget.json`` to write the per-window figures."""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import trio

from actors.tools import SandboxApp
from runtime import hypercorn_config, serve_asgi
from tests.actors.customers import Customers, delivered
from tests.actors.processes import ServeProcess, serve_env
from tests.postgres import PostgresServer
from tests.quirks import HTTPX_3686

LIMIT = 30  # requests per window, for the whole cluster
WINDOW = 10.0
THREADS = 30
MESSAGES = 12  # 360 messages: far more than the windows measured can deliver
LEASE = 5.0


def window_end(now: float) -> float:
    return (math.floor(now / WINDOW) + 1) * WINDOW


async def until_window(index_after_start: int, first: float) -> None:
    """Sleep until ``index_after_start`` windows after the one containing ``first``."""
    await trio.sleep_until(
        trio.current_time() + window_end(first) + (index_after_start - 1) * WINDOW - time.time()
    )


async def measure(
    postgres_server: PostgresServer,
    tmp_path: Path,
    *,
    nodes: int,
    windows: int,
    script: Callable[[list[ServeProcess], float], Awaitable[None]] | None = None,
) -> dict[str, Any]:
    """Run ``nodes`` nodes (``script`` may start or kill some) under a backlog for ``windows``
    whole windows after the first; the sandbox's per-window counts of those windows."""
    url = postgres_server.create_database()
    sandbox = SandboxApp()
    sandbox.intercom.configure(rate_limit=LIMIT, rate_window_seconds=WINDOW)
    report: dict[str, Any] = {}
    async with trio.open_nursery() as nursery:
        address = await nursery.start(serve_asgi, sandbox, hypercorn_config("127.0.0.1:0"))
        procs = [
            ServeProcess(
                serve_env(
                    address.url,
                    url,
                    tmp_path,
                    node_id=f"node-{i}",
                    lease_seconds=str(LEASE),
                    intercom_rate_limit_per_window=str(LIMIT),
                ),
                tmp_path / f"node-{i}.log",
            )
            for i in range(nodes)
        ]
        running = procs if script is None else procs[:2]
        for proc in running:
            await proc.start()
        customers = Customers([p.url for p in running], THREADS, MESSAGES, interval=0.05, run="b")
        async with trio.open_nursery() as load:
            load.start_soon(customers.play)
            first = time.time()
            if script is not None:
                load.start_soon(script, procs, first)
            await until_window(windows + 1, first)
            measured_until = time.time()
            stats = sandbox.intercom.stats()
            done = sum(map(len, delivered(sandbox.intercom.conversations()).values()))
            load.cancel_scope.cancel()
        async with trio.open_nursery() as stopping:
            for proc in procs:
                stopping.start_soon(proc.stop)
        nursery.cancel_scope.cancel()

    assert done < customers.total_acked, "the backlog ran dry: windows were not all wanted"
    whole = [
        w
        for w in stats["windows"]
        if w["start"] >= window_end(first) and w["start"] + WINDOW <= measured_until
    ]
    assert len(whole) >= windows - 1, stats["windows"]
    report.update(
        requests=stats["requests_total"],
        rate_limited=stats["rate_limited"],
        windows=[{k: w[k] for k in ("start", "allowed", "refused")} for w in stats["windows"]],
        # The first whole window is the warm-up (30 contacts searched and created, their
        # conversations opened); it is reported but not held to the target.
        whole_windows_used=[w["allowed"] / w["limit"] for w in whole],
        delivered=done,
        acked=customers.total_acked,
    )
    if path := os.environ.get("THREADLINE_BUDGET_REPORT"):
        await trio.Path(path).write_text(json.dumps(report, indent=2))
    return report


def check(report: dict[str, Any]) -> None:
    assert report["rate_limited"] <= 0.01 * report["requests"], report
    assert min(report["whole_windows_used"][1:]) >= 0.95, report


@pytest.mark.slow
async def test_three_nodes_share_one_window_budget(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    check(await measure(postgres_server, tmp_path, nodes=3, windows=6))


@pytest.mark.slow
@HTTPX_3686  # requests die with the killed process, mid-upload
async def test_a_node_joining_and_one_dying_keep_the_budget(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    async def churn(procs: list[ServeProcess], first: float) -> None:
        await until_window(2, first)
        await trio.sleep(3.0)  # mid-window
        await procs[2].start()
        await until_window(4, first)
        await trio.sleep(5.0)
        await procs[0].kill()

    check(await measure(postgres_server, tmp_path, nodes=3, windows=7, script=churn))
